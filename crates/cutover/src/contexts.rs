//! Named daemons, as Docker contexts are: `cutover context add prod
//! ssh://deploy@vm1`, then `cutover --context prod deploy`. Kept in
//! `contexts.json` in the user's config folder (`$CUTOVER_CONFIG_DIR`, else
//! `$XDG_CONFIG_HOME/cutover`, else `~/.config/cutover`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::CliError;
use crate::settings::HostEnv;

/// The name that always means the local socket.
pub const DEFAULT: &str = "default";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contexts {
    /// The context `context use` chose; the local socket when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
    #[serde(default)]
    pub contexts: BTreeMap<String, Context>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Context {
    pub host: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ca: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_fingerprint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
}

/// Where the contexts file is; `None` without any folder to put it in.
pub fn file(env: &HostEnv) -> Option<PathBuf> {
    let dir = env
        .cutover_config_dir
        .clone()
        .or_else(|| env.xdg_config_home.as_ref().map(|d| d.join("cutover")))
        .or_else(|| env.home.as_ref().map(|h| h.join(".config/cutover")))?;
    Some(dir.join("contexts.json"))
}

impl Contexts {
    /// The contexts in `path`; none when it does not exist.
    pub fn load(path: &Path) -> Result<Contexts, CliError> {
        match std::fs::read(path) {
            Ok(bytes) => cutover_core::wire::read_json(&bytes).map_err(|r| {
                CliError::bad_input(format!("{}: {}", path.display(), r.message))
                    .with_hint("fix the file, or remove it and add the contexts again")
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Contexts::default()),
            Err(e) => Err(CliError::failure(format!(
                "cannot read {}: {e}",
                path.display()
            ))),
        }
    }

    pub fn save(&self, path: &Path) -> Result<(), CliError> {
        let write = || -> std::io::Result<()> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let json = serde_json::to_vec_pretty(self).expect("contexts serialize");
            cutover_fs::write_atomic(path, &json)
        };
        write().map_err(|e| CliError::failure(format!("cannot write {}: {e}", path.display())))
    }

    /// The context `name`, or an error naming the ones there are.
    pub fn get(&self, name: &str) -> Result<&Context, CliError> {
        self.contexts.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.contexts.keys().map(String::as_str).collect();
            CliError::bad_input(format!("no context named {name:?}")).with_hint(
                if known.is_empty() {
                    "add one with `cutover context add NAME URL`".to_string()
                } else {
                    format!("the contexts are: {}", known.join(", "))
                },
            )
        })
    }
}

/// Letters, digits, `-`, `_`, `.`, not starting with `.` or `-`; not `default`.
pub fn check_name(name: &str) -> Result<(), CliError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && !name.starts_with(['.', '-']);
    if !ok {
        return Err(
            CliError::bad_input(format!("{name:?} is not a context name"))
                .with_hint("use letters, digits, -, _ and ., e.g. prod or staging-eu"),
        );
    }
    if name == DEFAULT {
        return Err(
            CliError::bad_input("`default` is the local socket's context")
                .with_hint("choose another name"),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts_round_trip_and_name_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/contexts.json");
        let mut contexts = Contexts::load(&path).unwrap();
        assert_eq!(contexts, Contexts::default());
        contexts.contexts.insert(
            "prod".into(),
            Context {
                host: "ssh://deploy@vm1".into(),
                description: None,
                tls_ca: None,
                tls_fingerprint: None,
                token_file: None,
            },
        );
        contexts.current = Some("prod".into());
        contexts.save(&path).unwrap();
        let again = Contexts::load(&path).unwrap();
        assert_eq!(again, contexts);
        let err = again.get("staging").unwrap_err();
        assert!(err.report.hint.unwrap().contains("prod"));
        check_name("staging-eu.1").unwrap();
        for bad in ["", "-x", ".x", "a/b", "default"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_file_follows_the_config_folders() {
        let mut env = HostEnv {
            home: Some("/home/u".into()),
            ..HostEnv::default()
        };
        assert_eq!(
            file(&env).unwrap(),
            Path::new("/home/u/.config/cutover/contexts.json")
        );
        env.xdg_config_home = Some("/xdg".into());
        assert_eq!(file(&env).unwrap(), Path::new("/xdg/cutover/contexts.json"));
        env.cutover_config_dir = Some("/etc/cutover-cli".into());
        assert_eq!(
            file(&env).unwrap(),
            Path::new("/etc/cutover-cli/contexts.json")
        );
    }
}
