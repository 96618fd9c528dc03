//! Everything the app keeps lives in Redis, never in the process: that is what
//! lets the blue and the green container answer for each other during a
//! deploy (a visit count that goes on, an OAuth state issued by one color and
//! redeemed at the other).

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::AsyncCommands;
use tokio::sync::OnceCell;

/// Bounds every Redis call, so a health check or a request answers even when
/// Redis is gone instead of waiting for TCP to give up.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

const VISITS_KEY: &str = "athens:visits";
const SCHEMA_KEY: &str = "athens:schema";
/// The data layout this build reads and writes; `athens migrate` brings
/// the store to it before the version that needs it serves.
pub const SCHEMA_VERSION: i64 = 1;
const STATE_PREFIX: &str = "athens:oauth:state:";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
}

#[derive(Clone)]
pub struct Store {
    client: redis::Client,
    // Connected on first use, not at startup: the app must start (and report
    // 503 on its health check) while Redis is still coming up.
    conn: Arc<OnceCell<ConnectionManager>>,
}

impl Store {
    pub fn new(host: &str, port: u16) -> Result<Store, StoreError> {
        let client = redis::Client::open((host, port))?;
        Ok(Store {
            client,
            conn: Arc::new(OnceCell::new()),
        })
    }

    async fn conn(&self) -> Result<ConnectionManager, StoreError> {
        let conn = self
            .conn
            .get_or_try_init(|| async {
                let cfg = ConnectionManagerConfig::new()
                    .set_connection_timeout(CALL_TIMEOUT)
                    .set_response_timeout(CALL_TIMEOUT)
                    .set_number_of_retries(0);
                ConnectionManager::new_with_config(self.client.clone(), cfg).await
            })
            .await?;
        Ok(conn.clone())
    }

    async fn bounded<T>(
        &self,
        f: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(CALL_TIMEOUT, f)
            .await
            .map_err(|_| StoreError::Timeout(CALL_TIMEOUT))?
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        self.bounded(async {
            let mut c = self.conn().await?;
            let _: String = redis::cmd("PING").query_async(&mut c).await?;
            Ok(())
        })
        .await
    }

    pub async fn incr_visits(&self) -> Result<i64, StoreError> {
        self.bounded(async {
            let mut c = self.conn().await?;
            Ok(c.incr(VISITS_KEY, 1).await?)
        })
        .await
    }

    /// Brings the store to [`SCHEMA_VERSION`] and returns the version it
    /// was at (0 for a new store). Idempotent, as a `pre_deploy` hook must
    /// be: a retried deploy runs it again.
    pub async fn migrate(&self) -> Result<i64, StoreError> {
        self.bounded(async {
            let mut c = self.conn().await?;
            let was: Option<i64> = c.get(SCHEMA_KEY).await?;
            let was = was.unwrap_or(0);
            if was < SCHEMA_VERSION {
                let _: () = c.set(SCHEMA_KEY, SCHEMA_VERSION).await?;
            }
            Ok(was)
        })
        .await
    }

    /// Stores an OAuth `state` for `ttl`; `false` if it already existed
    /// (never overwrite someone else's login in progress).
    pub async fn put_state(
        &self,
        state: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        self.bounded(async {
            let mut c = self.conn().await?;
            let set: Option<String> = redis::cmd("SET")
                .arg(format!("{STATE_PREFIX}{state}"))
                .arg(value)
                .arg("NX")
                .arg("PX")
                .arg(ttl.as_millis().max(1) as u64)
                .query_async(&mut c)
                .await?;
            Ok(set.is_some())
        })
        .await
    }

    /// Reads and deletes a state in one command, so two callbacks racing with
    /// the same state (at blue and at green) cannot both succeed.
    pub async fn take_state(&self, state: &str) -> Result<Option<String>, StoreError> {
        self.bounded(async {
            let mut c = self.conn().await?;
            Ok(redis::cmd("GETDEL")
                .arg(format!("{STATE_PREFIX}{state}"))
                .query_async(&mut c)
                .await?)
        })
        .await
    }
}
