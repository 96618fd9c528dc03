//! The TCP control listener's settings: its address, its admin token
//! file, and where its TLS certificate comes from (or plain HTTP, which
//! only a loopback address may have).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use cutover_proxy::admin::BearerToken;

use crate::args::ServeArgs;
use crate::error::CliError;

#[derive(Debug, Clone)]
pub struct ControlListen {
    pub addr: SocketAddr,
    /// `--control-token-file`'s token, accepted with the admin scope.
    pub token: Option<BearerToken>,
    pub tls: ControlTlsSource,
}

/// What the TCP control listener serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlTlsSource {
    /// The daemon's own certificate, in this folder, for these names.
    OwnCertificate {
        dir: PathBuf,
        names: Vec<String>,
    },
    Files {
        cert: PathBuf,
        key: PathBuf,
    },
    /// `--control-tls-host`: the certificate ordered for that host.
    Ordered {
        host: String,
    },
    /// `--control-insecure-http`, on a loopback address.
    PlainHttp,
}

impl ControlListen {
    /// The TLS the listener serves; `None` for plain HTTP. `certs` orders
    /// the `--control-tls-host` certificate.
    pub fn tls(
        &self,
        certs: &std::sync::Arc<cutover_tls::Certificates>,
    ) -> Result<Option<cutover_tls::ControlTls>, CliError> {
        let hint = "check the files' paths and that they hold a PEM certificate chain and its key";
        match &self.tls {
            ControlTlsSource::PlainHttp => Ok(None),
            ControlTlsSource::Ordered { host } => cutover_tls::ControlTls::ordered(certs.clone(), host)
                .map(Some)
                .map_err(|e| CliError::failure(format!("--control-tls-host: {e}"))),
            ControlTlsSource::Files { cert, key } => cutover_tls::ControlTls::from_files(cert, key)
                .map(Some)
                .map_err(|e| CliError::bad_input(format!("--control-tls-cert: {e}")).with_hint(hint)),
            ControlTlsSource::OwnCertificate { dir, names } => {
                cutover_tls::ControlTls::self_signed(dir, names)
                    .map(Some)
                    .map_err(|e| {
                        CliError::failure(format!("the control listener's certificate: {e}"))
                            .with_hint(format!("check that {} can be written, or pass --control-tls-cert and --control-tls-key", dir.display()))
                    })
            }
        }
    }
}

/// TLS for the control listener: plain HTTP only where no other machine
/// can listen in (a loopback address), else the given certificate or the
/// daemon's own.
pub(super) fn control_tls_source(
    args: &ServeArgs,
    addr: SocketAddr,
    state_dir: &Path,
) -> Result<ControlTlsSource, CliError> {
    if args.control_insecure_http {
        if !addr.ip().is_loopback() {
            return Err(CliError::bad_input(format!(
                "--control-insecure-http: {addr} is not a loopback address; tokens and deploys would cross the network in clear text"
            ))
            .with_hint("drop --control-insecure-http to serve TLS (clients pin the certificate with --tls-fingerprint), or listen on 127.0.0.1"));
        }
        return Ok(ControlTlsSource::PlainHttp);
    }
    if let Some(host) = &args.control_tls_host {
        if args.control_tls_cert.is_some() || args.no_acme {
            return Err(CliError::bad_input(
                "--control-tls-host orders a certificate from the ACME CA: it goes with neither --control-tls-cert nor --no-acme",
            )
            .with_hint("choose one source for the control listener's certificate"));
        }
        if host.starts_with("*.") || host.parse::<std::net::IpAddr>().is_ok() || !host.contains('.')
        {
            return Err(CliError::bad_input(format!(
                "--control-tls-host: {host:?} is not a host name a CA issues a certificate for"
            ))
            .with_hint("give the DNS name CI reaches this host by, e.g. deploy.example.com"));
        }
        return Ok(ControlTlsSource::Ordered {
            host: host.to_ascii_lowercase(),
        });
    }
    if let (Some(cert), Some(key)) = (&args.control_tls_cert, &args.control_tls_key) {
        return Ok(ControlTlsSource::Files {
            cert: cert.clone(),
            key: key.clone(),
        });
    }
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    if !addr.ip().is_unspecified() && !addr.ip().is_loopback() {
        names.push(addr.ip().to_string());
    }
    for name in &args.control_tls_name {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    Ok(ControlTlsSource::OwnCertificate {
        dir: state_dir.join("control-tls"),
        names,
    })
}
