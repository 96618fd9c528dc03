//! Docker Compose v2 itself (`cutover_test::compose_v2`), asked for
//! `config --format json` on the same files cutover reads.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// `docker-compose config --format json` in `dir` with exactly `env` as
/// its environment (plus a HOME of its own): the project as Compose
/// resolves it, or Compose's error text.
pub fn config(dir: &Path, args: &[&str], env: &BTreeMap<String, String>) -> Result<Value, String> {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(cutover_test::compose_v2::binary())
        .args(args)
        .args(["config", "--format", "json"])
        .current_dir(dir)
        .env_clear()
        .env("HOME", home.path())
        .envs(env)
        .output()
        .expect("docker-compose runs");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "docker-compose printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    Ok(v)
}

/// `config` writes every `$` of a value as `$$`, so its output can be read
/// again; the values themselves have one.
fn unescape_dollars(v: Value) -> Value {
    match v {
        Value::String(s) => Value::String(s.replace("$$", "$")),
        Value::Array(a) => Value::Array(a.into_iter().map(unescape_dollars).collect()),
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| (k, unescape_dollars(v)))
                .collect(),
        ),
        v => v,
    }
}

/// A service's environment from Compose's output, `$$` read back as `$`; a
/// key with no value (`null`) is one Compose leaves unset, as cutover does.
pub fn environment(project: &Value, service: &str) -> BTreeMap<String, String> {
    unescape_dollars(project["services"][service]["environment"].clone())
        .as_object()
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}
