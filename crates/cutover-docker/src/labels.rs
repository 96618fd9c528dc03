//! The labels cutover writes on everything it creates, and filters built from
//! them.
//!
//! Identity is always by label, never by name: the field report's color
//! detection (`docker ps --filter name=athens`) also matched `athens-redis`.

use std::collections::{BTreeMap, HashMap};

use cutover_core::service::Color;

/// Project (the app's name) an object belongs to.
pub const PROJECT: &str = "cutover.project";
/// Service inside the project.
pub const SERVICE: &str = "cutover.service";
/// `blue` or `green`, on app containers only.
pub const COLOR: &str = "cutover.color";
/// Free-form version of the deployment (image tag, git sha).
pub const VERSION: &str = "cutover.version";
/// Hash of the resolved service configuration; a change means a redeploy.
pub const CONFIG_HASH: &str = "cutover.config-hash";
/// [`Role`] of the service.
pub const ROLE: &str = "cutover.role";
/// On an app's second and later replicas of one color: their number. The
/// first has none: it is the container the lifecycle follows.
pub const REPLICA: &str = "cutover.replica";
/// On a Swarm service that holds an old version of an app beside its two
/// colors, at 0 tasks for a rollback: when it was set aside (Unix ms).
pub const KEPT: &str = "cutover.kept";
/// On a Swarm service staged by `deploy --preview|--canary`: its app's
/// resolved spec (JSON, secret and config values replaced by the names of
/// their Swarm objects), so `promote` runs its `post_deploy` hook.
pub const STAGED_APP: &str = "cutover.staged-app";
/// On a Swarm config that holds one line of a project's history: the
/// project. Not [`PROJECT`], so the project's own secrets and configs,
/// which `down` and each deploy's pruning remove, never include it.
pub const HISTORY_OF: &str = "cutover.history-of";
/// Beside [`STAGED_APP`]: the project's volumes (JSON), as the nodes
/// create them for its `post_deploy` hook's job.
pub const STAGED_VOLUMES: &str = "cutover.staged-volumes";
/// The identity of the daemon that created the object: the only one that
/// may stop, rename or remove it.
pub const DAEMON: &str = "cutover.daemon";
/// That daemon's state dir, so that an error can say where it lives.
pub const DAEMON_STATE_DIR: &str = "cutover.daemon.state-dir";

/// Whether a service alternates between colors or lives across deploys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    App,
    Accessory,
    /// A one-off container running an app's hook; removed when it ends.
    Hook,
    /// On a Swarm, the service that answers to an app's names on its
    /// networks and relays calls to the edges (`cutover gateway`).
    Gateway,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::App => "app",
            Role::Accessory => "accessory",
            Role::Hook => "hook",
            Role::Gateway => "gateway",
        }
    }

    pub fn parse(value: &str) -> Option<Role> {
        match value {
            "app" => Some(Role::App),
            "accessory" => Some(Role::Accessory),
            "hook" => Some(Role::Hook),
            "gateway" => Some(Role::Gateway),
            _ => None,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The labels of an app container of one color.
pub fn app(
    project: &str,
    service: &str,
    color: Color,
    version: &str,
    config_hash: &str,
) -> BTreeMap<String, String> {
    BTreeMap::from([
        (PROJECT.to_owned(), project.to_owned()),
        (SERVICE.to_owned(), service.to_owned()),
        (ROLE.to_owned(), Role::App.as_str().to_owned()),
        (COLOR.to_owned(), color.as_str().to_owned()),
        (VERSION.to_owned(), version.to_owned()),
        (CONFIG_HASH.to_owned(), config_hash.to_owned()),
    ])
}

/// The labels of an accessory container, which has no color.
pub fn accessory(project: &str, service: &str, config_hash: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (PROJECT.to_owned(), project.to_owned()),
        (SERVICE.to_owned(), service.to_owned()),
        (ROLE.to_owned(), Role::Accessory.as_str().to_owned()),
        (CONFIG_HASH.to_owned(), config_hash.to_owned()),
    ])
}

/// The color an app container was labelled with.
pub fn color_of(labels: &BTreeMap<String, String>) -> Option<Color> {
    match labels.get(COLOR).map(String::as_str) {
        Some("blue") => Some(Color::Blue),
        Some("green") => Some(Color::Green),
        _ => None,
    }
}

/// The role a container was labelled with.
pub fn role_of(labels: &BTreeMap<String, String>) -> Option<Role> {
    labels.get(ROLE).and_then(|r| Role::parse(r))
}

/// A conjunction of label conditions: every one must hold.
///
/// An empty filter matches everything, which is only meant for tests looking
/// at a whole fake engine: deploy code always filters by project at least.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelFilter {
    conditions: Vec<(String, Option<String>)>,
}

impl LabelFilter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything of one project.
    pub fn project(project: &str) -> Self {
        Self::new().with(PROJECT, project)
    }

    /// The app containers of one service, both colors.
    pub fn app_service(project: &str, service: &str) -> Self {
        Self::project(project)
            .with(SERVICE, service)
            .with(ROLE, Role::App.as_str())
    }

    /// Also require `key=value`.
    pub fn with(mut self, key: &str, value: &str) -> Self {
        self.conditions
            .push((key.to_owned(), Some(value.to_owned())));
        self
    }

    /// Also require that `key` is present, whatever its value.
    pub fn with_key(mut self, key: &str) -> Self {
        self.conditions.push((key.to_owned(), None));
        self
    }

    pub fn is_empty(&self) -> bool {
        self.conditions.is_empty()
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.conditions
            .iter()
            .all(|(key, value)| match (labels.get(key), value) {
                (Some(_), None) => true,
                (Some(have), Some(want)) => have == want,
                (None, _) => false,
            })
    }

    /// The `filters` query parameter of the engine's list calls.
    pub fn to_docker_filters(&self) -> HashMap<String, Vec<String>> {
        let mut filters = HashMap::new();
        if !self.conditions.is_empty() {
            filters.insert(
                "label".to_owned(),
                self.conditions
                    .iter()
                    .map(|(key, value)| match value {
                        Some(value) => format!("{key}={value}"),
                        None => key.clone(),
                    })
                    .collect(),
            );
        }
        filters
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn filter_requires_every_condition() {
        let filter = LabelFilter::project("athens").with(COLOR, "blue");
        assert!(filter.matches(&labels(&[(PROJECT, "athens"), (COLOR, "blue")])));
        assert!(!filter.matches(&labels(&[(PROJECT, "athens"), (COLOR, "green")])));
        assert!(!filter.matches(&labels(&[(PROJECT, "athens")])));
        assert!(!filter.matches(&labels(&[(PROJECT, "athens-redis"), (COLOR, "blue")])));
    }

    #[test]
    fn key_only_condition_accepts_any_value() {
        let filter = LabelFilter::new().with_key(COLOR);
        assert!(filter.matches(&labels(&[(COLOR, "green")])));
        assert!(!filter.matches(&labels(&[(PROJECT, "x")])));
    }

    #[test]
    fn docker_filters_use_label_syntax() {
        let filters = LabelFilter::project("p")
            .with_key(COLOR)
            .to_docker_filters();
        assert_eq!(
            filters.get("label").unwrap(),
            &vec!["cutover.project=p".to_owned(), "cutover.color".to_owned()]
        );
        assert!(LabelFilter::new().to_docker_filters().is_empty());
    }

    #[test]
    fn app_and_accessory_labels_are_found_by_their_filters() {
        let blue = app("athens", "backend", Color::Blue, "v1", "h1");
        let redis = accessory("athens", "redis", "h2");
        let apps = LabelFilter::app_service("athens", "backend");
        assert!(apps.matches(&blue));
        assert!(!apps.matches(&redis));
        assert_eq!(color_of(&blue), Some(Color::Blue));
        assert_eq!(color_of(&redis), None);
        assert_eq!(role_of(&blue), Some(Role::App));
        assert_eq!(role_of(&redis), Some(Role::Accessory));
        assert!(LabelFilter::project("athens").matches(&redis));
    }

    #[test]
    fn role_round_trips() {
        for role in [Role::App, Role::Accessory] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("db"), None);
    }
}
