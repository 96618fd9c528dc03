//! The tokens of the TCP control listener, kept in `<state dir>/tokens.json`
//! (0600; only hashes of the secrets), and the `/v1/tokens` routes that
//! manage them. Which route needs which scope is `cutover_core::token`.

use std::path::{Path, PathBuf};
use std::sync::RwLock;

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use cutover_core::clock::now_ms;
use cutover_core::diag::Report;
use cutover_core::token::{
    secret_hash, split_token, CreateToken, CreatedToken, TokenInfo, TokenRecord,
};
use cutover_core::wire::read_json;

use super::auth::constant_time_eq;
use super::error::ApiError;
use super::Admin;

/// The tokens a daemon accepts.
pub struct Tokens {
    /// `None`: kept in memory only (tests).
    path: Option<PathBuf>,
    records: RwLock<Vec<TokenRecord>>,
    /// The TCP listener's certificate fingerprint, told to whoever creates a token.
    tls_fingerprint: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot read the tokens file {}: {message}", path.display())]
pub struct TokensFileError {
    pub path: PathBuf,
    pub message: String,
}

impl cutover_core::diag::Diagnose for TokensFileError {
    fn hint(&self) -> Option<String> {
        Some("fix or remove the file; removing it revokes every token".into())
    }
}

impl Tokens {
    /// The tokens in `state_dir` (none when the file does not exist yet).
    pub fn load(
        state_dir: &Path,
        tls_fingerprint: Option<String>,
    ) -> Result<Tokens, TokensFileError> {
        let path = state_dir.join("tokens.json");
        let records = match std::fs::read(&path) {
            Ok(bytes) => read_json(&bytes).map_err(|r| TokensFileError {
                path: path.clone(),
                message: r.message,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                return Err(TokensFileError {
                    path,
                    message: e.to_string(),
                })
            }
        };
        Ok(Tokens {
            path: Some(path),
            records: RwLock::new(records),
            tls_fingerprint,
        })
    }

    /// No file: for tests and daemons without a state dir.
    pub fn in_memory() -> Tokens {
        Tokens {
            path: None,
            records: RwLock::new(Vec::new()),
            tls_fingerprint: None,
        }
    }

    /// The record of `token`, when it is one of ours. The hash comparison
    /// takes the same time wherever the first difference is.
    pub fn find(&self, token: &str) -> Option<TokenInfo> {
        let (id, secret) = split_token(token)?;
        let hash = secret_hash(secret);
        let records = self.records.read().unwrap_or_else(|e| e.into_inner());
        records
            .iter()
            .find(|r| {
                r.info.id == id && constant_time_eq(r.secret_sha256.as_bytes(), hash.as_bytes())
            })
            .map(|r| r.info.clone())
    }

    fn list(&self) -> Vec<TokenInfo> {
        let records = self.records.read().unwrap_or_else(|e| e.into_inner());
        records.iter().map(|r| r.info.clone()).collect()
    }

    /// Makes a token; the secret is returned here and never again.
    fn create(&self, req: CreateToken) -> Result<CreatedToken, Report> {
        if let Some(p) = &req.project {
            if !cutover_core::compose::is_valid_project_name(p) {
                return Err(Report::new(format!("project: {p:?} is not a project name"))
                    .hint("use the name `cutover status` shows"));
            }
        }
        let id = format!("{:08x}", rand::random::<u32>());
        let secret: String = (0..32)
            .map(|_| format!("{:02x}", rand::random::<u8>()))
            .collect();
        let info = TokenInfo {
            id: id.clone(),
            scope: req.scope,
            project: req.project,
            name: req.name,
            created_ms: now_ms(),
        };
        let record = TokenRecord {
            info: info.clone(),
            secret_sha256: secret_hash(&secret),
        };
        self.change(|records| records.push(record))?;
        Ok(CreatedToken {
            token: format!("cutover_{id}_{secret}"),
            info,
            tls_fingerprint: self.tls_fingerprint.clone(),
        })
    }

    /// Removes the token `id` (or the token whose whole text is `id`).
    fn revoke(&self, id: &str) -> Result<Option<TokenInfo>, Report> {
        let id = split_token(id).map_or(id, |(id, _)| id);
        let mut removed = None;
        self.change(|records| {
            if let Some(at) = records.iter().position(|r| r.info.id == id) {
                removed = Some(records.remove(at).info);
            }
        })?;
        Ok(removed)
    }

    /// Applies `edit` and writes the file before anyone sees the change,
    /// so an answered create or revoke survives a restart.
    fn change(&self, edit: impl FnOnce(&mut Vec<TokenRecord>)) -> Result<(), Report> {
        let mut records = self.records.write().unwrap_or_else(|e| e.into_inner());
        let mut next = records.clone();
        edit(&mut next);
        if let Some(path) = &self.path {
            let json = serde_json::to_vec_pretty(&next).expect("tokens serialize");
            // write_atomic's temp file is 0600 and the rename keeps it.
            cutover_fs::write_atomic(path, &json).map_err(|e| {
                Report::new(format!("cannot write {}: {e}", path.display()))
                    .hint("check the state dir's free space and permissions")
            })?;
        }
        *records = next;
        Ok(())
    }
}

fn tokens_of(admin: &Admin) -> Result<&Tokens, ApiError> {
    admin.tokens().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "this daemon keeps no tokens",
        )
        .with_hint("tokens need the daemon's state dir")
    })
}

pub(super) async fn list(State(admin): State<Admin>) -> Response {
    match tokens_of(&admin) {
        Ok(tokens) => Json(tokens.list()).into_response(),
        Err(e) => e.into_response(),
    }
}

pub(super) async fn create(State(admin): State<Admin>, body: Bytes) -> Response {
    let tokens = match tokens_of(&admin) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let req: CreateToken = match read_json(&body) {
        Ok(r) => r,
        Err(r) => return ApiError::bad_request(r).into_response(),
    };
    match tokens.create(req) {
        Ok(created) => {
            tracing::info!(id = %created.info.id, scope = created.info.scope.as_str(), project = ?created.info.project, "token created");
            (StatusCode::CREATED, Json(created)).into_response()
        }
        Err(r) => ApiError::internal(r).into_response(),
    }
}

pub(super) async fn revoke(State(admin): State<Admin>, UrlPath(id): UrlPath<String>) -> Response {
    let tokens = match tokens_of(&admin) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    match tokens.revoke(&id) {
        Ok(Some(info)) => {
            tracing::info!(id = %info.id, "token revoked");
            Json(info).into_response()
        }
        Ok(None) => ApiError::not_found(format!("no token {id:?}"))
            .with_hint("`cutover token list` shows the ids")
            .into_response(),
        Err(r) => ApiError::internal(r).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutover_core::token::Scope;

    #[test]
    fn a_token_is_found_by_its_secret_until_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = Tokens::load(dir.path(), None).unwrap();
        let created = tokens
            .create(CreateToken {
                scope: Scope::Deploy,
                project: Some("athens".into()),
                name: Some("ci".into()),
            })
            .unwrap();
        let found = tokens.find(&created.token).unwrap();
        assert_eq!(found.scope, Scope::Deploy);
        // A wrong secret with the right id is no token.
        let (id, _) = split_token(&created.token).unwrap();
        assert!(tokens
            .find(&format!("cutover_{id}_{}", "0".repeat(64)))
            .is_none());
        // The file has the hash, never the secret, and is private.
        let file = std::fs::read_to_string(dir.path().join("tokens.json")).unwrap();
        let (_, secret) = split_token(&created.token).unwrap();
        assert!(!file.contains(secret) && file.contains(&secret_hash(secret)));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("tokens.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0);
        // A restart keeps it; revoking ends it.
        let again = Tokens::load(dir.path(), None).unwrap();
        assert!(again.find(&created.token).is_some());
        assert_eq!(again.revoke(id).unwrap().unwrap().id, id);
        assert!(again.find(&created.token).is_none());
        assert!(Tokens::load(dir.path(), None)
            .unwrap()
            .find(&created.token)
            .is_none());
    }
}
