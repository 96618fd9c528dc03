//! The on-demand ask: before a certificate is ordered for a name a client
//! sent in its SNI, the user's endpoint says whether the name is theirs
//! (Caddy's `on_demand_tls ask`). Without it, anyone pointing a DNS name at
//! the host could make cutover order certificates until the CA's limits
//! lock the account.
//!
//! `GET <url>?domain=<name>`: 200 allows, anything else (or no answer in
//! 2 s) refuses. Decisions are cached, allowed ones for an hour and
//! refusals for a minute, so a burst of handshakes asks once; a name that
//! has a certificate is never asked again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cutover_core::sync::lock;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

const TIMEOUT: Duration = Duration::from_secs(2);
const ALLOWED_FOR: Duration = Duration::from_secs(3600);
const REFUSED_FOR: Duration = Duration::from_secs(60);

pub(crate) struct Ask {
    url: String,
    cache: Mutex<HashMap<String, (bool, Instant)>>,
}

impl Ask {
    pub fn new(url: String) -> Ask {
        Ask {
            url,
            cache: Mutex::default(),
        }
    }

    pub async fn allows(&self, name: &str) -> bool {
        if let Some((allowed, at)) = lock(&self.cache).get(name).copied() {
            let ttl = if allowed { ALLOWED_FOR } else { REFUSED_FOR };
            if at.elapsed() < ttl {
                return allowed;
            }
        }
        let allowed = self.ask(name).await;
        tracing::info!(name, allowed, "on-demand TLS: asked {}", self.url);
        lock(&self.cache).insert(name.to_string(), (allowed, Instant::now()));
        allowed
    }

    async fn ask(&self, name: &str) -> bool {
        let sep = if self.url.contains('?') { '&' } else { '?' };
        // `name` came through rustls's SNI check: DNS characters only.
        let Ok(uri) = format!("{}{sep}domain={name}", self.url).parse::<http::Uri>() else {
            return false;
        };
        let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        matches!(
            tokio::time::timeout(TIMEOUT, client.get(uri)).await,
            Ok(Ok(resp)) if resp.status() == http::StatusCode::OK
        )
    }
}
