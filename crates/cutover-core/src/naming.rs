//! Every name cutover gives an engine object or a route, in one place, so
//! the resolver, the planner and the deploy engine cannot disagree. Names
//! are how a user finds things in `docker ps`; identity is by labels
//! (cutover-docker's `labels`), never by these patterns.

use crate::service::Color;

/// `<project>-<service>-<color>`: the two slots of an app.
pub fn app_slot(project: &str, service: &str, color: Color) -> String {
    format!("{project}-{service}-{color}")
}

/// `<slot base>-<version id>` (`<project>-<service>-<version id>` unless
/// the app has a `container_name:`): a kept version moved out of its slot
/// when a newer version needs the slot.
pub fn kept(slot_base: &str, version_id: &str) -> String {
    format!("{slot_base}-{version_id}")
}

/// `<slot base>-<version id>-going`: a container moved out of its slot
/// that is removed once drained (no version kept for rollback).
pub fn going(slot_base: &str, version_id: &str) -> String {
    format!("{slot_base}-{version_id}-going")
}

/// `<project>-<service>`: an accessory without `container_name:`.
pub fn accessory(project: &str, service: &str) -> String {
    format!("{project}-{service}")
}

/// `<project>/<service>`: the proxy's route of an app, unique across
/// projects (the control API's PUT leaves these names to the deploy engine).
pub fn route(project: &str, service: &str) -> String {
    format!("{project}/{service}")
}

/// `<project>_<service>_<color>`: an app color on a Swarm, a service (the
/// `_` is how `docker stack` names services too).
pub fn swarm_app(project: &str, service: &str, color: Color) -> String {
    format!("{project}_{service}_{color}")
}

/// `<project>_<service>_<hook>` (`shop_web_pre_deploy`): a hook's one-off
/// job on a Swarm, removed when it ends.
pub fn swarm_hook(project: &str, service: &str, hook: &str) -> String {
    format!("{project}_{service}_{hook}")
}

/// `<project>_<service>`: an accessory on a Swarm, a service that lives
/// across deploys.
pub fn swarm_accessory(project: &str, service: &str) -> String {
    format!("{project}_{service}")
}

/// `<project>_<service>`: an app's gateway on a Swarm, the service that
/// answers to the app's names and relays calls to the edges (an app and
/// an accessory never share a service name, so neither do their services).
pub fn swarm_gateway(project: &str, service: &str) -> String {
    format!("{project}_{service}")
}

/// The engine's longest Swarm service name (a DNS label).
pub const SWARM_SERVICE_MAX: usize = 63;

/// `<project>_<service>_kept_<hash of the version>`: an old version of an
/// app on a Swarm, set aside at 0 tasks when a deploy needs its color's
/// service (a Swarm service cannot be renamed). One per version label.
pub fn swarm_kept(project: &str, service: &str, version: &str) -> String {
    hashed(
        &format!("{project}_{service}_kept"),
        version.as_bytes(),
        SWARM_SERVICE_MAX,
    )
}

/// `<stem>_<12 hex digits of sha256(data)>`, the stem cut so the whole is
/// at most `max` long: the hash alone keeps two values apart.
pub fn hashed(stem: &str, data: &[u8], max: usize) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(data);
    let hash: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    let mut stem = stem.to_string();
    stem.truncate(max - hash.len() - 1);
    format!("{stem}_{hash}")
}

/// `<project>_<key>`: a network or volume without `name:`, as Compose names
/// it.
pub fn project_scoped(project: &str, key: &str) -> String {
    format!("{project}_{key}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_as_docker_ps_shows_them() {
        assert_eq!(
            app_slot("athens", "backend", Color::Green),
            "athens-backend-green"
        );
        assert_eq!(
            kept("athens-backend", "3f9c2a1b7d4e"),
            "athens-backend-3f9c2a1b7d4e"
        );
        assert_eq!(accessory("athens", "redis"), "athens-redis");
        assert_eq!(route("athens", "backend"), "athens/backend");
        assert_eq!(project_scoped("athens", "default"), "athens_default");
        assert_eq!(
            swarm_app("athens", "backend", Color::Blue),
            "athens_backend_blue"
        );
        assert_eq!(swarm_accessory("athens", "redis"), "athens_redis");
        let kept = swarm_kept("athens", "backend", "v1");
        assert!(kept.starts_with("athens_backend_kept_"), "{kept}");
        assert_eq!(kept.len(), "athens_backend_kept_".len() + 12);
    }

    #[test]
    fn a_hashed_name_per_value_within_the_length() {
        let a = hashed("shop_api_key", b"one", 64);
        assert!(a.starts_with("shop_api_key_"), "{a}");
        assert_ne!(a, hashed("shop_api_key", b"two", 64));
        assert_eq!(a, hashed("shop_api_key", b"one", 64));
        let long = hashed(&"p".repeat(90), b"one", 64);
        assert_eq!(long.len(), 64);
        assert!(long.ends_with(&a[a.len() - 12..]), "{long}");
        let version = swarm_kept(&"p".repeat(40), &"s".repeat(40), "v1");
        assert_eq!(version.len(), SWARM_SERVICE_MAX);
    }
}
