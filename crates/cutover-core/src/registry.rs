//! Registry credentials for pulls, as the CLI's user has them in their
//! Docker config: which registry an image reference names, and the
//! credentials a deploy carries to the daemon for it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Docker Hub's registry, as references without a host name it.
pub const DOCKER_HUB: &str = "docker.io";

/// The registry host of an image reference: its first path component when
/// that looks like a host (`ghcr.io/acme/app`, `127.0.0.1:5000/app`,
/// `localhost/app`), else Docker Hub (`redis:7`, `acme/app`).
pub fn registry_of(reference: &str) -> &str {
    match reference.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first,
        _ => DOCKER_HUB,
    }
}

/// A login for one registry. Sent with a deploy, used for its pulls and
/// never stored or logged (`Debug` leaves the secret out).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryAuth {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    /// An OAuth refresh token some registries hand out instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_token: Option<String>,
}

impl fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryAuth")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_is_the_first_component_when_it_is_a_host() {
        for (reference, registry) in [
            ("redis:7", DOCKER_HUB),
            ("acme/app:1", DOCKER_HUB),
            ("ghcr.io/acme/app:1", "ghcr.io"),
            ("127.0.0.1:5000/app", "127.0.0.1:5000"),
            ("localhost/app", "localhost"),
            ("registry.example.com/a/b@sha256:00", "registry.example.com"),
        ] {
            assert_eq!(registry_of(reference), registry, "{reference}");
        }
        let auth = RegistryAuth {
            username: "ci".into(),
            password: "hunter2".into(),
            identity_token: None,
        };
        assert!(!format!("{auth:?}").contains("hunter2"));
    }
}
