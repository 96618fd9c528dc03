//! TLS for the control API on TCP, both sides: the certificate the daemon's
//! `--control-listen` serves (given PEM files, or one it makes for itself
//! and keeps in the state dir), and what the CLI trusts (the system's
//! roots, a CA file, or the SHA-256 fingerprint of the daemon's
//! certificate, pinned as `ssh` pins a host key).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use sha2::{Digest, Sha256};

/// The file names of the certificate a daemon makes for itself, under
/// `<state dir>/control-tls/`.
const SELF_SIGNED_CERT: &str = "cert.pem";
const SELF_SIGNED_KEY: &str = "key.pem";

/// What the control listener serves.
#[derive(Clone)]
pub struct ControlTls {
    pub config: Arc<ServerConfig>,
    /// `AB:CD:...`, the SHA-256 of the leaf certificate, for
    /// `--tls-fingerprint`; `None` for an ordered certificate, which
    /// changes at each renewal (clients trust its CA instead).
    pub fingerprint: Option<String>,
    /// The PEM file holding the leaf (and chain), for `--tls-ca`, or the
    /// host whose ordered certificate is served.
    pub serves: String,
}

impl std::fmt::Debug for ControlTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlTls")
            .field("fingerprint", &self.fingerprint)
            .field("serves", &self.serves)
            .finish_non_exhaustive()
    }
}

impl ControlTls {
    /// The certificate and key the user gave (`--control-tls-cert/-key`).
    pub fn from_files(cert: &Path, key: &Path) -> Result<ControlTls, String> {
        let read =
            |p: &Path| std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
        let (chain, key_pem) = (read(cert)?, read(key)?);
        ControlTls::new(&chain, &key_pem, cert.to_path_buf())
            .map_err(|e| format!("{} and {}: {e}", cert.display(), key.display()))
    }

    /// The daemon's own certificate in `dir`, made on first use for `names`
    /// (DNS names or IP addresses) and kept, so a pinned fingerprint stays
    /// valid across restarts. A kept one is used as it is, whatever names
    /// are asked now: delete the folder to make a new one.
    pub fn self_signed(dir: &Path, names: &[String]) -> Result<ControlTls, String> {
        let (cert_file, key_file) = (dir.join(SELF_SIGNED_CERT), dir.join(SELF_SIGNED_KEY));
        if !cert_file.exists() {
            let key = rcgen::KeyPair::generate().map_err(|e| format!("cannot make a key: {e}"))?;
            let mut params = rcgen::CertificateParams::new(names.to_vec())
                .map_err(|e| format!("cannot make a certificate for {names:?}: {e}"))?;
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, "cutover control API");
            // Ten years: nothing renews it, and its trust is the pin.
            params.not_after = rcgen::date_time_ymd(2036, 1, 1);
            let cert = params
                .self_signed(&key)
                .map_err(|e| format!("cannot sign the certificate: {e}"))?;
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            // write_atomic's files are 0600: right for the key, and the
            // certificate (no secret) is what users copy for --tls-ca.
            let write = |path: &Path, text: &str| {
                cutover_fs::write_atomic(path, text.as_bytes())
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))
            };
            write(&key_file, &key.serialize_pem())?;
            write(&cert_file, &cert.pem())?;
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&cert_file, std::fs::Permissions::from_mode(0o644));
        }
        ControlTls::from_files(&cert_file, &key_file)
    }

    /// The certificate `certs` orders and renews for `host` (the daemon's
    /// ACME CA, as for a route with `tls: true`), whatever name the client
    /// asks for. Until it is issued, handshakes fail.
    pub fn ordered(certs: Arc<crate::Certificates>, host: &str) -> Result<ControlTls, String> {
        let resolver = Ordered {
            certs,
            host: host.to_ascii_lowercase(),
        };
        Ok(ControlTls {
            config: server_config(Arc::new(resolver))?,
            fingerprint: None,
            serves: format!("the certificate ordered for {host}"),
        })
    }

    fn new(chain_pem: &[u8], key_pem: &[u8], cert_file: PathBuf) -> Result<ControlTls, String> {
        let loaded = crate::pem::load(chain_pem, key_pem)?;
        let leaf = loaded.key.cert.first().expect("load checks for a leaf");
        let fingerprint = fingerprint(leaf);
        Ok(ControlTls {
            config: server_config(Arc::new(One(loaded.key)))?,
            fingerprint: Some(fingerprint),
            serves: cert_file.display().to_string(),
        })
    }
}

/// TLS 1.3 and 1.2, HTTP/1.1 only (the control API's one protocol).
fn server_config(
    resolver: Arc<dyn rustls::server::ResolvesServerCert>,
) -> Result<Arc<ServerConfig>, String> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("cannot set up TLS: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves its one certificate whatever the client asks for.
#[derive(Debug)]
struct One(Arc<rustls::sign::CertifiedKey>);

impl rustls::server::ResolvesServerCert for One {
    fn resolve(
        &self,
        _: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// Serves the certificate ordered for one host, renewed as it is.
struct Ordered {
    certs: Arc<crate::Certificates>,
    host: String,
}

impl std::fmt::Debug for Ordered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ordered").field("host", &self.host).finish()
    }
}

impl rustls::server::ResolvesServerCert for Ordered {
    fn resolve(
        &self,
        _: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.certs.served(&self.host)
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// `AB:CD:...`, as `openssl x509 -fingerprint -sha256` prints it.
fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let digest = Sha256::digest(cert.as_ref());
    digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Reads a fingerprint as people copy it: with or without colons, any
/// case, with or without a `sha256:` prefix.
pub fn parse_fingerprint(raw: &str) -> Result<[u8; 32], String> {
    let trimmed = raw.trim();
    let body = trimmed
        .strip_prefix("sha256:")
        .or_else(|| trimmed.strip_prefix("SHA256:"))
        .unwrap_or(trimmed);
    let hex: String = body.chars().filter(|c| *c != ':').collect();
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<Vec<u8>>>();
    match bytes.and_then(|b| <[u8; 32]>::try_from(b).ok()) {
        Some(pin) => Ok(pin),
        None => Err(format!(
            "{raw:?} is not a SHA-256 fingerprint (64 hex digits, colons allowed)"
        )),
    }
}

/// What the CLI trusts for an `https://` daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// The system's roots: a daemon serving a public CA's certificate.
    System,
    /// A CA (or the daemon's own certificate) in a PEM file.
    Ca(PathBuf),
    /// Exactly the certificate with this SHA-256; its names do not matter.
    Fingerprint([u8; 32]),
}

/// The CLI's TLS settings for `trust`.
pub fn client_config(trust: &Trust) -> Result<ClientConfig, String> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("cannot set up TLS: {e}"))?;
    let mut config = match trust {
        Trust::System => {
            let mut roots = RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err("this machine has no CA certificates (install ca-certificates), and no --tls-ca or --tls-fingerprint was given".into());
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Trust::Ca(file) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(file)
                .map_err(|e| format!("cannot read --tls-ca {}: {e}", file.display()))?
                .collect::<Result<_, _>>()
                .map_err(|e| format!("--tls-ca {} is not PEM: {e}", file.display()))?;
            let mut roots = RootCertStore::empty();
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(format!(
                    "--tls-ca {} holds no usable CERTIFICATE",
                    file.display()
                ));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Trust::Fingerprint(pin) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pinned {
                pin: *pin,
                provider: provider(),
            }))
            .with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Accepts exactly one certificate, by its SHA-256; the handshake's
/// signature is still checked, so only the holder of its key passes.
#[derive(Debug)]
struct Pinned {
    pin: [u8; 32],
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        if got == self.pin {
            return Ok(ServerCertVerified::assertion());
        }
        Err(rustls::Error::General(format!(
            "the daemon's certificate has fingerprint {}, not the pinned one",
            fingerprint(end_entity)
        )))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_reads_as_people_copy_it() {
        let pin = [0xABu8; 32];
        let colons = vec!["AB"; 32].join(":");
        assert_eq!(parse_fingerprint(&colons).unwrap(), pin);
        assert_eq!(parse_fingerprint(&"ab".repeat(32)).unwrap(), pin);
        assert_eq!(
            parse_fingerprint(&format!("sha256:{}", "ab".repeat(32))).unwrap(),
            pin
        );
        assert!(parse_fingerprint("AB:CD").is_err());
        assert!(parse_fingerprint(&"zz".repeat(32)).is_err());
        assert!(parse_fingerprint(&"a".repeat(63)).is_err());
    }

    #[test]
    fn the_own_certificate_is_kept_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let first = ControlTls::self_signed(dir.path(), &names).unwrap();
        let again = ControlTls::self_signed(dir.path(), &names).unwrap();
        assert_eq!(first.fingerprint, again.fingerprint);
        assert_eq!(first.fingerprint.unwrap().len(), 32 * 3 - 1);
        let key = dir.path().join(SELF_SIGNED_KEY);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
