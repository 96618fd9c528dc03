//! A certificate chain and its key, from PEM text to what rustls serves,
//! with the facts status and renewal need (names, issuer, validity).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::crypto::ring::default_provider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// A chain and key ready to serve.
#[derive(Clone, Debug)]
pub(crate) struct Loaded {
    pub key: Arc<CertifiedKey>,
    pub facts: Facts,
}

impl Loaded {
    /// The leaf certificate: `load` refuses a chain without one.
    pub fn leaf(&self) -> &CertificateDer<'static> {
        &self.key.cert[0]
    }
}

/// What the leaf certificate says about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Facts {
    /// DNS names of its subjectAltName.
    pub names: Vec<String>,
    /// The issuer's common name (or the whole issuer DN without one).
    pub issuer: String,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

impl Facts {
    /// When to renew: with a third of its lifetime left, as Let's Encrypt
    /// and Caddy do, so a CA outage of days still leaves time.
    pub fn renew_at(&self) -> SystemTime {
        let life = self
            .not_after
            .duration_since(self.not_before)
            .unwrap_or(Duration::ZERO);
        self.not_after - life / 3
    }
}

/// Parses `chain_pem` and `key_pem` and checks that the key is the leaf's.
pub(crate) fn load(chain_pem: &[u8], key_pem: &[u8]) -> Result<Loaded, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("the certificate file is not PEM: {e}"))?;
    let Some(leaf) = chain.first() else {
        return Err("the certificate file holds no CERTIFICATE block".into());
    };
    let facts = facts(leaf)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| format!("the key file holds no private key: {e}"))?;
    let key = CertifiedKey::from_der(chain, key, &default_provider())
        .map_err(|e| format!("the key does not belong to the certificate: {e}"))?;
    Ok(Loaded {
        key: Arc::new(key),
        facts,
    })
}

fn facts(leaf: &CertificateDer<'_>) -> Result<Facts, String> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf)
        .map_err(|e| format!("the certificate cannot be read: {e}"))?;
    let names = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(d) => Some(d.to_ascii_lowercase()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let issuer = cert
        .issuer()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok().map(str::to_string))
        .unwrap_or_else(|| cert.issuer().to_string());
    let time = |t: x509_parser::time::ASN1Time| {
        SystemTime::UNIX_EPOCH + Duration::from_secs(t.timestamp().max(0) as u64)
    };
    Ok(Facts {
        names,
        issuer,
        not_before: time(cert.validity().not_before),
        not_after: time(cert.validity().not_after),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A self-signed P-256 certificate for `names`, valid for `days`.
    pub fn self_signed(names: &[&str]) -> (String, String) {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(names)
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn reads_names_and_validity() {
        let (cert, key) = self_signed(&["a.example.com", "B.example.com"]);
        let loaded = load(cert.as_bytes(), key.as_bytes()).unwrap();
        assert_eq!(loaded.facts.names, ["a.example.com", "b.example.com"]);
        let f = &loaded.facts;
        assert!(f.not_before < f.renew_at() && f.renew_at() < f.not_after);
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let (cert, _) = self_signed(&["a.example.com"]);
        let (_, other_key) = self_signed(&["a.example.com"]);
        let err = load(cert.as_bytes(), other_key.as_bytes()).unwrap_err();
        assert!(err.contains("does not belong"), "{err}");
        let err = load(b"hello", other_key.as_bytes()).unwrap_err();
        assert!(err.contains("no CERTIFICATE"), "{err}");
    }
}
