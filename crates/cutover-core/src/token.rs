//! Tokens of the HTTPS control listener: what a scope allows, which route
//! needs which scope, and the wire shapes of `cutover token`. The store and
//! the check itself live with the control API.
//!
//! A token is `cutover_<id>_<secret>`. The id is public (it names the token
//! in `token list` and logs); the daemon keeps only the SHA-256 of the
//! secret, so a leaked state dir leaks no token.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a token may do; each scope includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// status, history, logs, following an operation.
    Read,
    /// Also deploy, plan, rollback, promote, abort and build-context uploads.
    Deploy,
    /// Everything: down, routes, tokens, upgrade.
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Deploy => "deploy",
            Scope::Admin => "admin",
        }
    }
}

/// What one request needs: a scope, and, for a project's route, that
/// project (a token bound to another project is refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need<'a> {
    pub scope: Scope,
    /// `None`: a route about no one project, which only a token bound to
    /// no project may use.
    pub project: Option<&'a str>,
    /// Any token passes (`/v1/health`, so a client can check that it
    /// reaches the daemon).
    pub anyone: bool,
}

impl<'a> Need<'a> {
    fn of(scope: Scope, project: Option<&'a str>) -> Need<'a> {
        Need {
            scope,
            project,
            anyone: false,
        }
    }
}

/// The scope `method path` needs. What is not listed needs admin: a new
/// route is closed until someone decides otherwise.
pub fn need<'a>(method: &str, path: &'a str) -> Need<'a> {
    let read_only = matches!(method, "GET" | "HEAD");
    let segments: Vec<&'a str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["v1", "health"] if read_only => Need {
            anyone: true,
            ..Need::of(Scope::Read, None)
        },
        ["v1", "projects", project, rest @ ..] if !rest.is_empty() => {
            let scope = match (method, rest) {
                (_, _) if read_only => Scope::Read,
                (
                    "POST",
                    ["deploy" | "plan" | "rollback" | "maintenance" | "promote" | "abort"],
                ) => Scope::Deploy,
                _ => Scope::Admin,
            };
            Need::of(scope, Some(project))
        }
        // A deploy token uploads the contexts of its deploys; digests name
        // content, not a project.
        ["v1", "build-contexts", _] if read_only || method == "PUT" => Need {
            anyone: false,
            scope: Scope::Deploy,
            project: None,
        },
        ["v1", "projects"]
        | ["v1", "cluster"]
        | ["v1", "services", ..]
        | ["v1", "events"]
        | ["v1", "certificates"]
        | ["metrics"]
            if read_only =>
        {
            Need::of(Scope::Read, None)
        }
        _ => Need::of(Scope::Admin, None),
    }
}

/// A token without its secret: what `GET /v1/tokens` lists, and what a
/// request is checked against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    pub id: String,
    pub scope: Scope,
    /// The one project it reaches; all when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Milliseconds since the epoch.
    pub created_ms: u64,
}

impl TokenInfo {
    /// Whether this token may make a request that needs `need`.
    pub fn allows(&self, need: &Need<'_>) -> bool {
        if need.anyone {
            return true;
        }
        if self.scope < need.scope {
            return false;
        }
        match (&self.project, need.project) {
            (None, _) => true,
            (Some(mine), Some(theirs)) => mine == theirs,
            // Bound to a project, but the route is about none in
            // particular: only the uploads a deploy of it needs.
            (Some(_), None) => need.scope == Scope::Deploy,
        }
    }
}

/// A token as the daemon keeps it: its info and the hash of its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    #[serde(flatten)]
    pub info: TokenInfo,
    /// SHA-256 of the secret, hex.
    pub secret_sha256: String,
}

/// Body of `POST /v1/tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    pub scope: Scope,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Answer of `POST /v1/tokens`: the only time the secret is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedToken {
    pub token: String,
    pub info: TokenInfo,
    /// The TCP control listener's certificate fingerprint, for the
    /// client's `--tls-fingerprint`; absent without a TLS listener.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_fingerprint: Option<String>,
}

/// `cutover_<id>_<secret>` split into id and secret.
pub fn split_token(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix("cutover_")?;
    let (id, secret) = rest.split_once('_')?;
    (!id.is_empty() && !secret.is_empty()).then_some((id, secret))
}

/// The hash the daemon keeps of a secret.
pub fn secret_hash(secret: &str) -> String {
    format!("{:x}", Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(scope: Scope, project: Option<&str>) -> TokenInfo {
        TokenInfo {
            id: "a1b2c3d4".into(),
            scope,
            project: project.map(str::to_string),
            name: None,
            created_ms: 0,
        }
    }

    #[test]
    fn each_route_needs_its_scope() {
        let cases = [
            ("GET", "/v1/health", Scope::Read, None),
            (
                "GET",
                "/v1/projects/athens/status",
                Scope::Read,
                Some("athens"),
            ),
            (
                "GET",
                "/v1/projects/athens/logs",
                Scope::Read,
                Some("athens"),
            ),
            (
                "POST",
                "/v1/projects/athens/deploy",
                Scope::Deploy,
                Some("athens"),
            ),
            (
                "POST",
                "/v1/projects/athens/rollback",
                Scope::Deploy,
                Some("athens"),
            ),
            (
                "POST",
                "/v1/projects/athens/maintenance",
                Scope::Deploy,
                Some("athens"),
            ),
            (
                "POST",
                "/v1/projects/athens/promote",
                Scope::Deploy,
                Some("athens"),
            ),
            (
                "POST",
                "/v1/projects/athens/abort",
                Scope::Deploy,
                Some("athens"),
            ),
            (
                "POST",
                "/v1/projects/athens/down",
                Scope::Admin,
                Some("athens"),
            ),
            ("PUT", "/v1/build-contexts/sha256:00", Scope::Deploy, None),
            ("GET", "/v1/projects", Scope::Read, None),
            ("GET", "/v1/cluster", Scope::Read, None),
            ("PUT", "/v1/services/web", Scope::Admin, None),
            ("POST", "/v1/tokens", Scope::Admin, None),
            ("GET", "/v1/tokens", Scope::Admin, None),
            ("POST", "/v1/upgrade", Scope::Admin, None),
            ("GET", "/v1/something-new", Scope::Admin, None),
        ];
        for (method, path, scope, project) in cases {
            let n = need(method, path);
            assert_eq!((n.scope, n.project), (scope, project), "{method} {path}");
        }
    }

    #[test]
    fn a_token_reaches_its_scope_and_project_only() {
        let read = token(Scope::Read, Some("athens"));
        let deploy = token(Scope::Deploy, Some("athens"));
        let admin = token(Scope::Admin, None);
        let status = need("GET", "/v1/projects/athens/status");
        let deploy_call = need("POST", "/v1/projects/athens/deploy");
        let other = need("POST", "/v1/projects/sparta/deploy");
        let upload = need("PUT", "/v1/build-contexts/sha256:00");
        let services = need("GET", "/v1/services");
        let health = need("GET", "/v1/health");

        assert!(read.allows(&status) && read.allows(&health));
        assert!(!read.allows(&deploy_call) && !read.allows(&upload) && !read.allows(&services));
        assert!(deploy.allows(&deploy_call) && deploy.allows(&upload) && deploy.allows(&status));
        assert!(!deploy.allows(&other) && !deploy.allows(&services));
        assert!(!deploy.allows(&need("POST", "/v1/projects/athens/down")));
        assert!(admin.allows(&other) && admin.allows(&services));
        assert!(admin.allows(&need("POST", "/v1/tokens")));
        assert!(!token(Scope::Admin, Some("athens")).allows(&need("POST", "/v1/tokens")));
    }

    #[test]
    fn tokens_split_into_id_and_secret() {
        assert_eq!(split_token("cutover_ab12_s3cr3t"), Some(("ab12", "s3cr3t")));
        assert_eq!(split_token("cutover__s"), None);
        assert_eq!(split_token("ghp_abc"), None);
        assert_eq!(secret_hash("x").len(), 64);
    }
}
