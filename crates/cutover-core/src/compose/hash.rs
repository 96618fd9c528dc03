//! Version identity: a deployed version is an image plus the resolved config
//! the container runs with, so editing `.env` makes a new version.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::model::ServiceSpec;

/// JSON with object keys sorted at every level and no whitespace, so equal
/// values hash equally whatever order maps were built in.
pub fn canonical_json(v: &serde_json::Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &serde_json::Value, out: &mut String) {
    match v {
        serde_json::Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String((*k).clone()).to_string());
                out.push(':');
                write_canonical(&m[*k], out);
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// What of a spec shapes the container. `depends_on` only orders startup and
/// `build` only produces the image (whose ID is hashed separately), so a
/// change to either alone is not a new version.
fn hashed_fields(spec: &ServiceSpec) -> serde_json::Value {
    let mut v = serde_json::to_value(spec).unwrap_or(serde_json::Value::Null);
    if let Some(m) = v.as_object_mut() {
        m.remove("depends_on");
        m.remove("build");
        // When to pull, and under which profile, is not what runs.
        m.remove("pull_policy");
        m.remove("profiles");
    }
    v
}

/// sha256 (hex) of the canonical JSON of everything that affects the container.
pub fn config_hash(spec: &ServiceSpec) -> String {
    hex(&Sha256::digest(
        canonical_json(&hashed_fields(spec)).as_bytes(),
    ))
}

/// A short id naming one version: image ID and config hash together.
pub fn version_id(image_id: &str, config_hash: &str) -> String {
    let mut h = Sha256::new();
    h.update(image_id.as_bytes());
    h.update(b"\n");
    h.update(config_hash.as_bytes());
    hex(&h.finalize())[..12].to_string()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Which environment keys differ between two specs. Keys only: values may
/// be secrets and never appear in a plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvChanges {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
}

impl EnvChanges {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

pub fn env_changes(old: &ServiceSpec, new: &ServiceSpec) -> EnvChanges {
    diff_keys(&old.environment, &new.environment)
}

fn diff_keys(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> EnvChanges {
    let mut c = EnvChanges::default();
    for (k, v) in new {
        match old.get(k) {
            None => c.added.push(k.clone()),
            Some(o) if o != v => c.changed.push(k.clone()),
            Some(_) => {}
        }
    }
    c.removed = old
        .keys()
        .filter(|k| !new.contains_key(*k))
        .cloned()
        .collect();
    c
}

/// Top-level fields of the container config that differ (`environment`,
/// `image`, `mounts`...), for a plan's reason line.
pub fn changed_fields(old: &ServiceSpec, new: &ServiceSpec) -> Vec<String> {
    let (a, b) = (hashed_fields(old), hashed_fields(new));
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return Vec::new();
    };
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect()
}
