//! What guards the TCP control listener: a bearer token (one from `cutover
//! token create`, or the `--control-token-file` one), its scope, and a limit
//! on failed attempts per address.

use cutover_core::diag::Diagnose;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use cutover_core::sync::lock;
use cutover_core::token::{need, Scope, TokenInfo};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::error::ApiError;
use super::tokens::Tokens;

/// Shorter tokens are guessable enough that the daemon refuses them.
const MIN_TOKEN_LEN: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("cannot read the control token file {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("the control token file {} is empty", path.display())]
    Empty { path: PathBuf },
    #[error("the control token in {} is {len} bytes long, shorter than the minimum of {MIN_TOKEN_LEN}", path.display())]
    TooShort { path: PathBuf, len: usize },
    #[error("the control token in {} contains characters that cannot appear in an HTTP header", path.display())]
    NotAHeader { path: PathBuf },
}

impl Diagnose for TokenError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            TokenError::Read { .. } => "check the path given to --control-token-file and its permissions".into(),
            _ => "write a random token to the file, e.g. `head -c 32 /dev/urandom | base64 > FILE && chmod 600 FILE`"
                .into(),
        })
    }
}

/// A secret compared in constant time.
#[derive(Clone)]
pub struct BearerToken(Arc<[u8]>);

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

impl BearerToken {
    /// Reads the token from a file; surrounding whitespace (the newline an
    /// editor or `echo` adds) is not part of it.
    pub fn from_file(path: &Path) -> Result<BearerToken, TokenError> {
        let raw = std::fs::read(path).map_err(|source| TokenError::Read {
            path: path.into(),
            source,
        })?;
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(
                    path = %path.display(),
                    "the control token file can be read by other users; chmod 600 it"
                );
            }
        }
        let token = raw.trim_ascii();
        if token.is_empty() {
            return Err(TokenError::Empty { path: path.into() });
        }
        if token.len() < MIN_TOKEN_LEN {
            return Err(TokenError::TooShort {
                path: path.into(),
                len: token.len(),
            });
        }
        if HeaderValue::from_bytes(token).is_err() || token.iter().any(|b| b.is_ascii_whitespace())
        {
            return Err(TokenError::NotAHeader { path: path.into() });
        }
        Ok(BearerToken(token.into()))
    }

    /// The secret itself, for a client that sends it (the Swarm deploy
    /// engine to the edges).
    pub fn secret(&self) -> &[u8] {
        &self.0
    }

    /// Whether `candidate` is the token, in time that depends only on the
    /// lengths, so the comparison leaks no prefix of the secret.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        constant_time_eq(candidate, &self.0)
    }
}

/// Whether `a` and `b` are equal, in time that depends only on their
/// lengths: a secret compared this way leaks no prefix.
pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Failed attempts from one address within [`FAILURE_WINDOW`] before it is
/// refused without a look at what it sends, until the window ends.
const MAX_FAILURES: u32 = 10;
const FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// What guards the TCP control listener: the tokens, the `--control-token-file`
/// token (an admin one), and the count of failed attempts by address.
pub struct Guard {
    tokens: Arc<Tokens>,
    file_token: Option<BearerToken>,
    failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl Guard {
    pub fn new(tokens: Arc<Tokens>, file_token: Option<BearerToken>) -> Arc<Guard> {
        Arc::new(Guard {
            tokens,
            file_token,
            failures: Mutex::new(HashMap::new()),
        })
    }

    /// Seconds until `ip` may try again, when it is blocked.
    fn blocked(&self, ip: IpAddr) -> Option<u64> {
        let failures = lock(&self.failures);
        let (since, count) = failures.get(&ip)?;
        let left = FAILURE_WINDOW.checked_sub(since.elapsed())?;
        (*count >= MAX_FAILURES).then(|| left.as_secs().max(1))
    }

    fn failed(&self, ip: IpAddr) {
        let mut failures = lock(&self.failures);
        // Old windows go, so a scan from many addresses cannot grow the map for ever.
        failures.retain(|_, (since, _)| since.elapsed() < FAILURE_WINDOW);
        let entry = failures.entry(ip).or_insert((Instant::now(), 0));
        entry.1 += 1;
    }

    /// The token presented, as a record: the file token is admin of everything.
    fn identify(&self, presented: &[u8]) -> Option<TokenInfo> {
        if self
            .file_token
            .as_ref()
            .is_some_and(|t| t.matches(presented))
        {
            return Some(TokenInfo {
                id: "control-token-file".into(),
                scope: Scope::Admin,
                project: None,
                name: None,
                created_ms: 0,
            });
        }
        self.tokens.find(std::str::from_utf8(presented).ok()?)
    }
}

/// Wraps `router` so that every request needs `Authorization: Bearer
/// <token>` with a token whose scope and project allow it.
pub fn require_token(router: Router, guard: Arc<Guard>) -> Router {
    router.layer(axum::middleware::from_fn_with_state(guard, check))
}

async fn check(State(guard): State<Arc<Guard>>, req: Request, next: Next) -> Response {
    // 1. An address that failed too often is not heard until its window ends.
    let ip = req
        .extensions()
        .get::<PeerAddr>()
        .and_then(|p| p.0)
        .map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip());
    if let Some(retry) = guard.blocked(ip) {
        let mut response = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too many failed attempts from this address",
        )
        .with_hint(format!(
            "wait {retry} s, and check the token the client sends"
        ))
        .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry));
        return response;
    }
    // 2. Who is asking.
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes())
        .map(|v| {
            v.strip_prefix(b"Bearer ")
                .or_else(|| v.strip_prefix(b"bearer "))
                .unwrap_or(b"")
        });
    let record = presented.and_then(|t| guard.identify(t));
    let Some(record) = record else {
        guard.failed(ip);
        let why = if presented.is_none() {
            "missing bearer token"
        } else {
            "invalid bearer token"
        };
        tracing::warn!(peer = %ip, path = %req.uri().path(), "control API: {why}");
        let mut response = ApiError::new(StatusCode::UNAUTHORIZED, why)
            .with_hint("send `Authorization: Bearer <token>` with a token from `cutover token create` (the CLI reads $CUTOVER_TOKEN or --token-file)")
            .into_response();
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    };
    // 3. Whether its scope and project allow this request.
    let need = need(req.method().as_str(), req.uri().path());
    if !record.allows(&need) {
        tracing::warn!(peer = %ip, token = %record.id, method = %req.method(), path = %req.uri().path(), "control API: token not allowed");
        let reach = match &record.project {
            Some(p) => format!("{} token for project {p}", record.scope.as_str()),
            None => format!("{} token", record.scope.as_str()),
        };
        let wanted = match need.project {
            Some(p) => format!("a {} token for project {p}", need.scope.as_str()),
            None => format!("a {} token for every project", need.scope.as_str()),
        };
        return ApiError::new(
            StatusCode::FORBIDDEN,
            format!("token {} is a {reach}: {} {} needs {wanted}", record.id, req.method(), req.uri().path()),
        )
        .with_hint("create a token with the scope and project it needs: `cutover token create --scope deploy --project NAME`")
        .into_response();
    }
    next.run(req).await
}

/// The address a control connection came from, when it has one (TCP).
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub Option<SocketAddr>);

#[cfg(test)]
mod tests {
    use super::*;

    fn token_in(content: &str) -> Result<BearerToken, TokenError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, content).unwrap();
        BearerToken::from_file(&path)
    }

    #[test]
    fn reads_and_compares() {
        let token = token_in("0123456789abcdef-secret\n").unwrap();
        assert!(token.matches(b"0123456789abcdef-secret"));
        assert!(!token.matches(b"0123456789abcdef-secreT"));
        assert!(!token.matches(b"0123456789abcdef-secre"));
        assert!(!token.matches(b""));
        assert!(!format!("{token:?}").contains("secret"));
    }

    #[test]
    fn refuses_weak_or_missing_tokens() {
        assert!(matches!(token_in(" \n"), Err(TokenError::Empty { .. })));
        assert!(matches!(
            token_in("short"),
            Err(TokenError::TooShort { len: 5, .. })
        ));
        assert!(matches!(
            token_in("0123456789abcdef ghi"),
            Err(TokenError::NotAHeader { .. })
        ));
        let missing = BearerToken::from_file(Path::new("/nonexistent/cutover-token")).unwrap_err();
        assert!(matches!(missing, TokenError::Read { .. }));
        assert!(missing.to_string().contains("/nonexistent/cutover-token"));
    }
}
