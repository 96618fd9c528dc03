//! The bearer token that guards the optional TCP control listener.

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

use super::error::ApiError;

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

    /// Whether `candidate` is the token, in time that depends only on the
    /// lengths, so the comparison leaks no prefix of the secret.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        if candidate.len() != self.0.len() {
            return false;
        }
        let diff = candidate
            .iter()
            .zip(self.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        std::hint::black_box(diff) == 0
    }
}

/// Wraps `router` so that every request needs `Authorization: Bearer <token>`.
pub fn require_bearer(router: Router, token: BearerToken) -> Router {
    router.layer(axum::middleware::from_fn_with_state(token, check))
}

async fn check(State(token): State<BearerToken>, req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    let ok = match presented {
        Some(value) => value
            .strip_prefix(b"Bearer ")
            .or_else(|| value.strip_prefix(b"bearer "))
            .is_some_and(|t| token.matches(t)),
        None => false,
    };
    if ok {
        return next.run(req).await;
    }
    let err = if presented.is_none() {
        ApiError::new(StatusCode::UNAUTHORIZED, "missing bearer token")
    } else {
        ApiError::new(StatusCode::UNAUTHORIZED, "invalid bearer token")
    }
    .with_hint("send `Authorization: Bearer <token>` with the token from the daemon's --control-token-file");
    let mut response = err.into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

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
