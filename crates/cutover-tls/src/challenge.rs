//! The ACME challenges under way: HTTP-01 answers (a token's key
//! authorization at `/.well-known/acme-challenge/TOKEN` on the HTTP
//! listener) and TLS-ALPN-01 certificates (a self-signed certificate
//! carrying the key authorization's digest, served to an `acme-tls/1`
//! handshake on the HTTPS listener).
//!
//! Each is kept in memory and written to the shared storage, so a daemon
//! that did not order the certificate answers the CA too: two daemons on
//! one storage (or the nodes of a cluster) behind one name all succeed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use cutover_core::sync::lock;
use rustls::sign::CertifiedKey;

/// Where an HTTP-01 token is asked for.
pub const HTTP01_PREFIX: &str = "/.well-known/acme-challenge/";

/// The ALPN protocol of TLS-ALPN-01 (RFC 8737).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

pub(crate) struct Challenges {
    dir: PathBuf,
    http: Mutex<HashMap<String, String>>,
    alpn: Mutex<HashMap<String, Arc<CertifiedKey>>>,
}

impl Challenges {
    pub fn new(dir: PathBuf) -> Self {
        Challenges {
            dir,
            http: Mutex::default(),
            alpn: Mutex::default(),
        }
    }

    pub fn put_http01(&self, token: &str, key_authorization: &str) -> std::io::Result<()> {
        lock(&self.http).insert(token.into(), key_authorization.into());
        self.write("http-01", token, key_authorization.as_bytes())
    }

    /// The key authorization for `token`, if an order of this daemon or of
    /// another one on the same storage is waiting for it.
    pub fn http01(&self, token: &str) -> Option<String> {
        if !plain_name(token) {
            return None;
        }
        if let Some(k) = lock(&self.http).get(token) {
            return Some(k.clone());
        }
        std::fs::read_to_string(self.dir.join("http-01").join(token)).ok()
    }

    pub fn put_tls_alpn01(&self, host: &str, digest: &[u8]) -> Result<(), String> {
        let key = alpn_certificate(host, digest)?;
        lock(&self.alpn).insert(host.into(), key);
        self.write("tls-alpn-01", host, hex(digest).as_bytes())
            .map_err(|e| format!("cannot write the challenge: {e}"))
    }

    pub fn tls_alpn01(&self, host: &str) -> Option<Arc<CertifiedKey>> {
        if !plain_name(host) {
            return None;
        }
        if let Some(k) = lock(&self.alpn).get(host) {
            return Some(k.clone());
        }
        let text = std::fs::read_to_string(self.dir.join("tls-alpn-01").join(host)).ok()?;
        let key = alpn_certificate(host, &unhex(text.trim())?).ok()?;
        lock(&self.alpn).insert(host.into(), key.clone());
        Some(key)
    }

    /// The order is over: nothing is answered for it any more.
    pub fn clear(&self, token: Option<&str>, host: &str) {
        if let Some(t) = token {
            lock(&self.http).remove(t);
            let _ = std::fs::remove_file(self.dir.join("http-01").join(t));
        }
        lock(&self.alpn).remove(host);
        let _ = std::fs::remove_file(self.dir.join("tls-alpn-01").join(host));
    }

    fn write(&self, kind: &str, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        let dir = self.dir.join(kind);
        std::fs::create_dir_all(&dir)?;
        cutover_fs::write_atomic(&Path::new(&dir).join(name), bytes)
    }
}

/// A token (base64url) or a host name: safe as a file name, so a request
/// path can never reach outside the challenge folder.
fn plain_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// RFC 8737: self-signed, the host as its only name, and the SHA-256
/// digest of the key authorization in the critical acmeIdentifier
/// extension.
fn alpn_certificate(host: &str, digest: &[u8]) -> Result<Arc<CertifiedKey>, String> {
    let fail = |e: rcgen::Error| format!("cannot make the TLS-ALPN-01 certificate: {e}");
    let key = rcgen::KeyPair::generate().map_err(fail)?;
    let mut params = rcgen::CertificateParams::new(vec![host.to_string()]).map_err(fail)?;
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
    let cert = params.self_signed(&key).map_err(fail)?;
    // Not `CertifiedKey::from_der`: its key check parses the certificate
    // with webpki, which refuses the critical extension this one must have.
    let der = rustls_pki_types::PrivatePkcs8KeyDer::from(key.serialize_der());
    let signing = rustls::crypto::ring::sign::any_ecdsa_type(&der.into())
        .map_err(|e| format!("cannot use the TLS-ALPN-01 key: {e}"))?;
    Ok(Arc::new(CertifiedKey::new(
        vec![cert.der().clone()],
        signing,
    )))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    s.len()
        .is_multiple_of(2)
        .then(|| {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
                .collect()
        })
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_daemon_on_the_storage_answers_too() {
        let dir = tempfile::tempdir().unwrap();
        let ordering = Challenges::new(dir.path().into());
        let other = Challenges::new(dir.path().into());
        ordering.put_http01("tok-en_1", "tok-en_1.thumb").unwrap();
        assert_eq!(other.http01("tok-en_1").as_deref(), Some("tok-en_1.thumb"));
        ordering.put_tls_alpn01("a.example.com", &[7; 32]).unwrap();
        assert!(other.tls_alpn01("a.example.com").is_some());
        ordering.clear(Some("tok-en_1"), "a.example.com");
        let fresh = Challenges::new(dir.path().into());
        assert_eq!(fresh.http01("tok-en_1"), None);
        assert!(fresh.tls_alpn01("a.example.com").is_none());
    }

    #[test]
    fn a_path_outside_the_folder_is_never_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret"), "x").unwrap();
        let c = Challenges::new(dir.path().join("challenges"));
        for bad in ["../secret", "..", "a/b", ""] {
            assert_eq!(c.http01(bad), None, "{bad}");
        }
        assert_eq!(unhex(&hex(&[0, 255, 16])), Some(vec![0, 255, 16]));
    }
}
