//! The keys cutover knows at each level of a compose file, and the
//! "did you mean" that names the closest one to a typo.

pub(super) const TOP_LEVEL_KEYS: &[&str] = &[
    "name", "services", "networks", "volumes", "secrets", "configs", "include",
];

pub(super) const SERVICE_KEYS: &[&str] = &[
    "image",
    "build",
    "command",
    "entrypoint",
    "environment",
    "env_file",
    "volumes",
    "networks",
    "ports",
    "depends_on",
    "healthcheck",
    "restart",
    "labels",
    "user",
    "working_dir",
    "stop_grace_period",
    "extra_hosts",
    "logging",
    "container_name",
    "profiles",
    "deploy",
    "scale",
    "expose",
    "pull_policy",
    "secrets",
    "configs",
    "extends",
    "x-cutover",
];

/// Service keys accepted with a warning because ignoring them cannot break
/// the deployment in a way the user would not notice.
pub(super) const IGNORED_SERVICE_KEYS: &[(&str, &str)] =
    &[("develop", "compose watch settings do not apply to deploys")];

/// Compose keys cutover does not honour yet, each with what to do instead.
pub(super) const REFUSED_SERVICE_KEYS: &[(&str, &str)] = &[
    ("links", "services on one network reach each other by service name: drop links and use the name"),
    ("external_links", "join the other project's network (an external network) and use its service name"),
    ("volumes_from", "mount the same named volume in both services"),
    ("label_file", "write the labels under `labels:`"),
    ("gpus", "GPU device requests are not passed to the engine yet; run this service with docker compose beside cutover"),
    ("post_start", "run the command from the image's entrypoint for now"),
    ("pre_stop", "handle the stop signal in the process for now (see stop_signal)"),
    ("use_api_socket", "mount /var/run/docker.sock as a volume if the service needs the engine"),
];

/// Keys passed to the engine by Compose that cutover does not pass yet.
pub(super) const ENGINE_KEYS_NOT_YET: &[&str] = &[
    "cpu_count",
    "cpu_percent",
    "blkio_config",
    "isolation",
    "credential_spec",
];

pub(super) const CUTOVER_KEYS: &[&str] = &[
    "port",
    "health",
    "hosts",
    "preview_hosts",
    "path_prefix",
    "deploy_timeout",
    "drain_timeout",
    "websocket_drain_timeout",
    "keep",
    "tls",
    "tls_redirect",
    "hsts",
    "hooks",
];

pub(super) const DEFAULT_KEEP: u32 = 3;

pub(super) fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push(
                (prev[j] + usize::from(ca != *cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1),
            );
        }
        prev = cur;
    }
    prev[b.len()]
}

pub(crate) fn did_you_mean<'a>(key: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (levenshtein(key, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4) && *d < c.len())
        .min()
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(
            did_you_mean("enviroment", SERVICE_KEYS),
            Some("environment")
        );
        assert_eq!(did_you_mean("prot", CUTOVER_KEYS), Some("port"));
        assert_eq!(did_you_mean("healthz", CUTOVER_KEYS), Some("health"));
        assert_eq!(did_you_mean("zzzzzz", CUTOVER_KEYS), None);
    }
}
