//! HTTPS for a route: where its certificate comes from, whether plain HTTP
//! is redirected, and HSTS. As a deploy request carries it and as the
//! compose file's `x-cutover.tls`, `tls_redirect` and `hsts` resolve to.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::diag::Report;

/// A route's HTTPS settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsRoute {
    pub certificate: CertificateSource,
    /// Plain HTTP to one of the route's hosts gets a 308 to `https://`
    /// (the ACME HTTP-01 path excepted).
    #[serde(default = "yes")]
    pub redirect: bool,
    /// `Strict-Transport-Security: max-age=...` on HTTPS responses; none
    /// when unset (HSTS is hard to take back, so it is opt-in).
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub hsts: Option<Duration>,
}

fn yes() -> bool {
    true
}

/// The HSTS max-age `hsts: true` stands for: one year, as browsers' preload
/// lists ask.
pub const HSTS_DEFAULT: Duration = Duration::from_secs(365 * 24 * 3600);

/// Where a route's certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum CertificateSource {
    /// Ordered from the daemon's ACME CA for each of the route's hosts.
    Automatic,
    /// Ordered at a client's first handshake for a name the route matches,
    /// if the daemon's `--tls-on-demand-ask` endpoint allows it.
    OnDemand,
    /// PEM files on the daemon's host, reloaded when they change.
    Files { cert: String, key: String },
}

impl TlsRoute {
    /// What the wire contract cannot express: automatic certificates need
    /// exact host names, files need absolute paths.
    pub fn validate(&self, hosts: &[String]) -> Result<(), Report> {
        match &self.certificate {
            CertificateSource::Automatic => {
                if hosts.is_empty() {
                    return Err(Report::new(
                        "tls: automatic certificates need the route's hosts",
                    )
                    .hint("list the names to order certificates for in hosts, or give the certificate as files"));
                }
            }
            CertificateSource::OnDemand => {}
            CertificateSource::Files { cert, key } => {
                for (field, path) in [("cert", cert), ("key", key)] {
                    if !path.starts_with('/') {
                        return Err(Report::new(format!(
                            "tls.certificate.files.{field}: {path:?} is not an absolute path"
                        ))
                        .hint("name the PEM file by its absolute path on the daemon's host"));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Automatic TLS on `*.example.com` from a daemon with no DNS hook: the CA
/// only gives wildcard certificates to DNS-01.
pub fn wildcard_needs_dns(host: &str) -> Report {
    Report::new(format!(
        "automatic TLS cannot cover the wildcard host {host:?}: a CA issues wildcard certificates only by DNS-01, and this daemon publishes no DNS records"
    ))
    .hint("start `cutover serve` with --acme-dns-hook (a script that sets the TXT record at your DNS provider), give a wildcard certificate as files (tls: {cert: FILE, key: FILE}), or use tls: on_demand to order one per name as clients arrive")
}

/// The first host of an automatic-TLS route that only DNS-01 can cover.
pub fn wildcard_host<'a>(tls: Option<&TlsRoute>, hosts: &'a [String]) -> Option<&'a str> {
    let automatic = tls.is_some_and(|t| t.certificate == CertificateSource::Automatic);
    hosts
        .iter()
        .find(|h| automatic && h.starts_with("*."))
        .map(String::as_str)
}

/// One certificate the daemon serves or is getting, as `GET /certificates`
/// answers and `cutover status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateStatus {
    /// The names it is served for.
    pub hosts: Vec<String>,
    /// The routes that asked for it.
    #[serde(default)]
    pub services: Vec<String>,
    /// `acme`, `on_demand` or `files`.
    pub source: String,
    /// Absent until a certificate is there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub not_after: Option<std::time::SystemTime>,
    /// The next order (ACME) or check of the files.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub next_renewal: Option<std::time::SystemTime>,
    /// The CA's suggested renewal window (ARI, RFC 9773), when its
    /// directory offers renewal information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewal_window: Option<RenewalWindow>,
    /// Why the last order or load failed; cleared by the next success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// When the CA would like a certificate renewed: `next_renewal` is a time
/// drawn in it (or the lifetime rule's, when that comes first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenewalWindow {
    #[serde(with = "humantime_serde")]
    pub start: std::time::SystemTime,
    #[serde(with = "humantime_serde")]
    pub end: std::time::SystemTime,
    /// The CA's page on why the window is where it is (after a mass
    /// revocation, say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(certificate: CertificateSource) -> TlsRoute {
        TlsRoute {
            certificate,
            redirect: true,
            hsts: None,
        }
    }

    #[test]
    fn automatic_needs_hosts_and_a_wildcard_needs_dns_01() {
        let auto = route(CertificateSource::Automatic);
        assert!(auto.validate(&["a.example.com".into()]).is_ok());
        let err = auto.validate(&[]).unwrap_err();
        assert!(err.message.contains("need the route's hosts"), "{err:?}");
        let hosts = ["a.example.com".to_string(), "*.example.com".into()];
        assert!(auto.validate(&hosts).is_ok(), "the daemon judges DNS-01");
        assert_eq!(wildcard_host(Some(&auto), &hosts), Some("*.example.com"));
        let files = route(CertificateSource::Files {
            cert: "/c.pem".into(),
            key: "/k.pem".into(),
        });
        assert_eq!(wildcard_host(Some(&files), &hosts), None);
        let err = wildcard_needs_dns("*.example.com");
        assert!(err.message.contains("\"*.example.com\""), "{err:?}");
        let hint = err.hint.unwrap();
        assert!(
            hint.contains("--acme-dns-hook") && hint.contains("on_demand"),
            "{hint}"
        );
    }

    #[test]
    fn files_are_absolute_and_may_cover_a_wildcard() {
        let files = |cert: &str| {
            route(CertificateSource::Files {
                cert: cert.into(),
                key: "/etc/ssl/k.pem".into(),
            })
        };
        assert!(files("/etc/ssl/c.pem")
            .validate(&["*.example.com".into()])
            .is_ok());
        let err = files("c.pem").validate(&[]).unwrap_err();
        assert!(
            err.message.starts_with("tls.certificate.files.cert"),
            "{err:?}"
        );
    }

    #[test]
    fn wire_form_reads_back() {
        let json = r#"{"certificate":{"files":{"cert":"/c","key":"/k"}},"hsts":"1day"}"#;
        let t: TlsRoute = serde_json::from_str(json).unwrap();
        assert!(t.redirect);
        assert_eq!(t.hsts, Some(Duration::from_secs(86400)));
        let auto: TlsRoute = serde_json::from_str(r#"{"certificate":"automatic"}"#).unwrap();
        assert_eq!(auto.certificate, CertificateSource::Automatic);
    }
}
