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
    }
}
