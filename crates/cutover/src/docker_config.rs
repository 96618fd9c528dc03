//! The user's registry logins, read from their Docker config as `docker
//! pull` reads them, so that a CI job logged in with `docker login` (or a
//! credential helper) deploys a private image: `credHelpers` for the
//! registry first, then `credsStore`, then `auths`.
//!
//! The CLI reads them, not the daemon: the daemon runs as another user,
//! possibly on another machine, and the login belongs to whoever deploys.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use cutover_core::compose::ResolvedProject;
use cutover_core::registry::{registry_of, RegistryAuth, DOCKER_HUB};
use serde::Deserialize;

use crate::error::CliError;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default)]
    creds_store: Option<String>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// What a credential helper prints for `get`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperAnswer {
    username: String,
    secret: String,
}

/// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
fn config_path(env: &BTreeMap<String, String>) -> Option<PathBuf> {
    match env.get("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        Some(dir) => Some(Path::new(dir).join("config.json")),
        None => env
            .get("HOME")
            .map(|h| Path::new(h).join(".docker/config.json")),
    }
}

/// Logins for the registries `project` may pull from (every image not
/// built here), by registry host. None found is fine: public images need
/// none, and the pull's own error names a missing login.
pub fn registry_auth(
    project: &ResolvedProject,
    env: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, RegistryAuth>, CliError> {
    let Some(path) = config_path(env) else {
        return Ok(BTreeMap::new());
    };
    let config: DockerConfig = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            CliError::bad_input(format!("{}: not a Docker config: {e}", path.display()))
                .with_hint("fix the file, or point DOCKER_CONFIG at another folder")
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => {
            return Err(CliError::failure(format!(
                "cannot read {}: {e}",
                path.display()
            )))
        }
    };
    let registries: std::collections::BTreeSet<&str> = project
        .apps
        .iter()
        .map(|a| &a.service)
        .chain(project.accessories.iter().map(|a| &a.service))
        .filter(|s| s.build.is_none())
        .map(|s| registry_of(&s.image))
        .collect();
    let mut out = BTreeMap::new();
    for registry in registries {
        if let Some(auth) = login(&config, registry, &path)? {
            out.insert(registry.to_string(), auth);
        }
    }
    Ok(out)
}

/// The keys a registry may have in `auths` and `credHelpers`; Docker Hub's
/// is the old index URL.
fn keys(registry: &str) -> Vec<String> {
    if registry == DOCKER_HUB {
        return vec![
            "https://index.docker.io/v1/".into(),
            "index.docker.io".into(),
            DOCKER_HUB.into(),
        ];
    }
    vec![
        registry.to_string(),
        format!("https://{registry}"),
        format!("http://{registry}"),
        format!("https://{registry}/v1/"),
        format!("https://{registry}/v2/"),
    ]
}

fn login(
    config: &DockerConfig,
    registry: &str,
    path: &Path,
) -> Result<Option<RegistryAuth>, CliError> {
    let keys = keys(registry);
    let helper = keys
        .iter()
        .find_map(|k| config.cred_helpers.get(k))
        .or(config.creds_store.as_ref());
    if let Some(helper) = helper {
        if let Some(auth) = from_helper(helper, &keys[0])? {
            return Ok(Some(auth));
        }
    }
    let Some(entry) = keys.iter().find_map(|k| config.auths.get(k)) else {
        return Ok(None);
    };
    if let Some(token) = &entry.identitytoken {
        return Ok(Some(RegistryAuth {
            username: String::new(),
            password: String::new(),
            identity_token: Some(token.clone()),
        }));
    }
    let Some(encoded) = &entry.auth else {
        return Ok(None);
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            s.split_once(':')
                .map(|(u, p)| (u.to_string(), p.to_string()))
        });
    match decoded {
        Some((username, password)) => Ok(Some(RegistryAuth {
            username,
            password,
            identity_token: None,
        })),
        None => Err(CliError::bad_input(format!(
            "{}: the login for {registry} is not base64 of user:password",
            path.display()
        ))
        .with_hint(format!("log in again: docker login {registry}"))),
    }
}

/// `docker-credential-<helper> get`, which reads the server on stdin. A
/// helper that has no login for it answers so, and that is not an error.
fn from_helper(helper: &str, server: &str) -> Result<Option<RegistryAuth>, CliError> {
    let program = format!("docker-credential-{helper}");
    let child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            return Err(
                CliError::failure(format!("cannot run {program}: {e}")).with_hint(
                    "install the credential helper your Docker config names, or remove it from credsStore/credHelpers",
                ),
            )
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(server.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| CliError::failure(format!("{program} failed: {e}")))?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        if said.to_ascii_lowercase().contains("not found") {
            return Ok(None);
        }
        return Err(CliError::failure(format!(
            "{program} get {server} failed: {}",
            said.trim()
        )));
    }
    let answer: HelperAnswer = serde_json::from_slice(&out.stdout)
        .map_err(|e| CliError::failure(format!("{program} answered no login: {e}")))?;
    // A helper that stores an identity token says so with this user name.
    Ok(Some(if answer.username == "<token>" {
        RegistryAuth {
            username: String::new(),
            password: String::new(),
            identity_token: Some(answer.secret),
        }
    } else {
        RegistryAuth {
            username: answer.username,
            password: answer.secret,
            identity_token: None,
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_is_found_by_any_of_its_registry_keys() {
        let config: DockerConfig = serde_json::from_str(
            r#"{"auths": {"https://index.docker.io/v1/": {"auth": "dXNlcjpwYXNz"},
                          "ghcr.io": {"auth": "Y2k6dG9rZW46d2l0aDpjb2xvbnM="},
                          "quay.io": {"identitytoken": "tok"}}}"#,
        )
        .unwrap();
        let path = Path::new("config.json");
        let hub = login(&config, DOCKER_HUB, path).unwrap().unwrap();
        assert_eq!(
            (hub.username.as_str(), hub.password.as_str()),
            ("user", "pass")
        );
        // Only the first `:` splits: passwords may hold colons.
        let ghcr = login(&config, "ghcr.io", path).unwrap().unwrap();
        assert_eq!(ghcr.password, "token:with:colons");
        let quay = login(&config, "quay.io", path).unwrap().unwrap();
        assert_eq!(quay.identity_token.as_deref(), Some("tok"));
        assert!(login(&config, "registry.example.com", path)
            .unwrap()
            .is_none());
    }
}
