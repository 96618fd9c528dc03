//! The server side of a TLS handshake on the HTTPS listener. The
//! ClientHello is read first (rustls's `LazyConfigAcceptor`) so the
//! config can depend on it: an `acme-tls/1` hello gets the TLS-ALPN-01
//! challenge config (its own ALPN and certificate), a name an on-demand
//! route covers may get its certificate ordered first, and everything else
//! gets the one shared config.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use rustls::server::{Acceptor, ClientHello, ResolvesServerCert, ServerSessionMemoryCache};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_rustls::server::TlsStream;
use tokio_rustls::LazyConfigAcceptor;

use crate::challenge::{Challenges, ACME_TLS_ALPN};
use crate::store::Store;
use crate::Certificates;

/// TLS sessions resumable by ID (TLS 1.2 clients) per daemon.
const SESSION_CACHE: usize = 16 * 1024;

/// The configs a handshake picks from, built once.
pub struct Acceptors {
    certs: Arc<Certificates>,
    serving: Arc<ServerConfig>,
    challenge: Arc<ServerConfig>,
}

impl Acceptors {
    pub fn new(certs: Arc<Certificates>) -> Result<Acceptors, String> {
        let serving = config(
            Arc::new(Serving(certs.store.clone())),
            &[b"h2", b"http/1.1"],
        )?;
        let challenge = config(
            Arc::new(Challenge(certs.challenges.clone())),
            &[ACME_TLS_ALPN],
        )?;
        Ok(Acceptors {
            certs,
            serving: Arc::new(serving),
            challenge: Arc::new(challenge),
        })
    }

    /// Completes the handshake within `limit`. `Ok(None)`: it was a CA's
    /// TLS-ALPN-01 validation, answered and closed.
    pub async fn accept<S>(&self, io: S, limit: Duration) -> io::Result<Option<TlsStream<S>>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let timed_out = || io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out");
        let start = tokio::time::timeout(limit, LazyConfigAcceptor::new(Acceptor::default(), io))
            .await
            .map_err(|_| timed_out())??;
        let hello = start.client_hello();
        let validation = is_validation(&hello);
        let name = hello.server_name().map(str::to_string);
        let config = if validation {
            self.challenge.clone()
        } else {
            if let Some(name) = &name {
                self.certs.on_demand(name).await;
            }
            self.serving.clone()
        };
        let mut stream = tokio::time::timeout(limit, start.into_stream(config))
            .await
            .map_err(|_| timed_out())??;
        if validation {
            let _ = stream.shutdown().await;
            return Ok(None);
        }
        Ok(Some(stream))
    }
}

fn is_validation(hello: &ClientHello<'_>) -> bool {
    hello
        .alpn()
        .is_some_and(|mut protocols| protocols.any(|p| p == ACME_TLS_ALPN))
}

/// TLS 1.3 and 1.2 with ring's default suites (AEAD only, forward secret),
/// session tickets and an ID cache for resumption.
fn config(resolver: Arc<dyn ResolvesServerCert>, alpn: &[&[u8]]) -> Result<ServerConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("cannot set up TLS: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config.session_storage = ServerSessionMemoryCache::new(SESSION_CACHE);
    config.ticketer = rustls::crypto::ring::Ticketer::new()
        .map_err(|e| format!("cannot set up TLS tickets: {e}"))?;
    Ok(config)
}

struct Serving(Arc<Store>);

impl std::fmt::Debug for Serving {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Serving")
    }
}

impl ResolvesServerCert for Serving {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.for_handshake(hello.server_name())
    }
}

struct Challenge(Arc<Challenges>);

impl std::fmt::Debug for Challenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Challenge")
    }
}

impl ResolvesServerCert for Challenge {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.tls_alpn01(hello.server_name()?)
    }
}
