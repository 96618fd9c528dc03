//! From compose sources to a [`ResolvedProject`]: parse, interpolate, merge,
//! validate every key, resolve names and paths.
//!
//! This walks `serde_norway::Value` by hand rather than deserializing into
//! docker-compose-types: those structs accept keys cutover would have to ignore
//! silently and their errors carry no key path or line, while every error here
//! must name the file, line and key.

use crate::diag::Report;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde_norway::Value;

use super::dotenv::parse_dotenv;
use super::interpolate::{interpolate, InterpolateError, Unset};
use super::locate::{KeyPath, Position, Positions};
use super::merge::{keyed_list_to_map, merge_files, strip_tags};
use super::model::*;
use crate::service::{HealthCheck, Timeouts};
use crate::tls::{CertificateSource, TlsRoute, HSTS_DEFAULT};

mod app_calls;
mod container;
mod ctx;
mod files;
mod hooks;
mod include;
mod keys;
mod mounts;
mod names;
mod options;
mod paths;
mod ports;
mod replicas;
mod service;
mod shell;
mod source;
mod top_level;
mod x_cutover;
mod yaml_syntax;

pub use app_calls::called_on;
use app_calls::*;
use container::*;
use ctx::*;
use files::*;
use hooks::*;
use include::*;
use keys::*;
pub use names::*;
use options::*;
pub(crate) use paths::clean_container_path;
use paths::*;
pub use ports::*;
use replicas::*;
use service::*;
pub use shell::*;
use source::*;
use top_level::*;
use x_cutover::*;

/// One compose file's contents; `path` is shown in messages as given.
#[derive(Debug, Clone)]
pub struct ComposeFile {
    pub path: PathBuf,
    pub content: String,
}

/// Everything loading needs, already read from disk by the caller.
#[derive(Debug, Clone)]
pub struct LoadInput {
    /// In `-f` order; later files override earlier ones.
    pub files: Vec<ComposeFile>,
    /// Absolute directory of the first file; relative paths resolve against it
    /// (Compose does the same for every file of a multi-file project).
    pub project_dir: PathBuf,
    /// `-p`.
    pub project_name: Option<String>,
    /// Variables for interpolation: the `.env` file overlaid with the process
    /// environment (process wins).
    pub env: BTreeMap<String, String>,
}

/// Reads the files a compose file names besides itself: `env_file:`
/// entries, `include:`d compose files, `extends.file`, and their `.env`.
/// The IO side implements it over the filesystem.
pub trait ProjectFiles {
    /// The file's contents; `Ok(None)` when it does not exist. The resolver
    /// parses them itself, since their variables resolve against the
    /// project's environment.
    fn read_file(&self, path: &Path) -> Result<Option<String>, Report>;
}

/// A reader for a project with no other file on disk: every file is
/// missing. For descriptions built in memory (tests, a compose file that
/// came without its folder).
pub struct NoFiles;

impl ProjectFiles for NoFiles {
    fn read_file(&self, _: &Path) -> Result<Option<String>, Report> {
        Ok(None)
    }
}

/// Ports of datastores that must not be reachable from the internet without
/// the user meaning it (the field report published Redis on 0.0.0.0:6379).
pub const DATASTORE_PORTS: &[(u16, &str)] = &[
    (6379, "Redis"),
    (5432, "PostgreSQL"),
    (3306, "MySQL"),
    (27017, "MongoDB"),
    (11211, "Memcached"),
];

/// Loads, merges and resolves compose sources.
pub fn load(input: &LoadInput, files: &dyn ProjectFiles) -> Result<ResolvedProject, ComposeError> {
    let mut cx = Ctx {
        input,
        sources: Vec::new(),
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    if input.files.is_empty() {
        return Err(ComposeError {
            errors: vec![Diagnostic {
                file: None,
                line: None,
                column: None,
                key: String::new(),
                message: "no compose file given".into(),
                hint: Some("pass -f compose.yaml".into()),
            }],
            warnings: Vec::new(),
        });
    }
    // Every -f file first, so a diagnostic's source index is its -f index.
    let parsed: Vec<Option<Value>> = input
        .files
        .iter()
        .map(|f| {
            parse_source(
                &mut cx,
                f.path.display().to_string(),
                &f.content,
                &input.env,
            )
        })
        .collect();
    let mut merged: Option<Value> = None;
    for (file, v) in input.files.iter().zip(parsed) {
        let Some(mut v) = v else { continue };
        let mut chain = Chain::from(normalize_path(&input.project_dir.join(&file.path)));
        expand(
            &mut cx,
            files,
            &mut v,
            &input.project_dir,
            &input.env,
            &mut chain,
        );
        merged = Some(match merged {
            Some(base) => merge_files(base, v),
            None => v,
        });
    }
    let project = match merged.and_then(strip_tags) {
        Some(root) if cx.errors.is_empty() => resolve_root(&mut cx, &root, files),
        _ => None,
    };
    let order: Vec<String> = cx.sources.iter().map(|(name, _)| name.clone()).collect();
    let file_pos = |d: &Diagnostic| {
        let idx = order.iter().position(|f| Some(f) == d.file.as_ref());
        (idx.unwrap_or(usize::MAX), d.line.unwrap_or(0))
    };
    // Stable: messages about one line keep the order they were found in.
    cx.errors.sort_by_key(file_pos);
    cx.warnings.sort_by_key(file_pos);
    match project {
        Some(mut p) if cx.errors.is_empty() => {
            p.warnings = cx.warnings;
            Ok(p)
        }
        _ => Err(ComposeError {
            errors: cx.errors,
            warnings: cx.warnings,
        }),
    }
}

fn resolve_root(
    cx: &mut Ctx<'_>,
    root: &Value,
    files: &dyn ProjectFiles,
) -> Option<ResolvedProject> {
    let rootp = KeyPath::root();
    let m = cx.mapping(root, &rootp)?;
    let entries = cx.entries(m, &rootp);
    for (k, _) in &entries {
        if k == "version" {
            cx.warn(
                &rootp.key(k),
                "`version` is obsolete and ignored",
                Some("remove it".into()),
            );
        } else if !TOP_LEVEL_KEYS.contains(&k.as_str()) && !k.starts_with("x-") {
            let (msg, hint) = match did_you_mean(k, TOP_LEVEL_KEYS) {
                Some(s) => (format!("unknown key `{k}`"), format!("did you mean `{s}`?")),
                None => (
                    format!("`{k}` is not supported by cutover"),
                    "the top level accepts name, services, networks, volumes, secrets, configs, include and x-* extensions"
                        .into(),
                ),
            };
            cx.error_hint(&rootp.key(k), msg, hint);
        }
    }
    let get = |k: &str| lookup(&entries, k);

    let name = project_name(cx, get("name"))?;
    let networks = top_networks(cx, &name, get("networks"));
    let volumes = top_volumes(cx, &name, get("volumes"));
    let secrets = top_files(cx, "secrets", get("secrets"));
    let configs = top_files(cx, "configs", get("configs"));

    let services_p = rootp.key("services");
    let Some(services_v) = get("services").filter(|v| !v.is_null()) else {
        cx.error_hint(
            &services_p,
            "no services defined",
            "add a `services:` mapping with at least one service",
        );
        return None;
    };
    let services_m = cx.mapping(services_v, &services_p)?;
    let services = cx.entries(services_m, &services_p);
    let (services, inactive) = active_services(cx, services);
    if services.is_empty() && !inactive.is_empty() {
        cx.error_hint(
            &services_p,
            "every service is in a profile that is not active",
            format!(
                "activate one: --profile {} or COMPOSE_PROFILES={0}",
                inactive
                    .values()
                    .flatten()
                    .next()
                    .cloned()
                    .unwrap_or_default()
            ),
        );
        return None;
    }
    if services.is_empty() {
        cx.error_hint(
            &services_p,
            "no services defined",
            "add at least one service under `services:`",
        );
        return None;
    }
    let names: BTreeSet<String> = services.iter().map(|(k, _)| k.clone()).collect();
    let apps_set: BTreeSet<String> = services
        .iter()
        .filter(|(_, v)| v.as_mapping().is_some_and(|m| m.contains_key("x-cutover")))
        .map(|(k, _)| k.clone())
        .collect();

    let mut resolver = ServiceResolver {
        project: &name,
        networks: &networks,
        volumes: &volumes,
        services: &names,
        inactive: &inactive,
        secrets: &secrets,
        configs: &configs,
        apps: &apps_set,
        files,
        default_network_used: false,
    };
    let mut apps = Vec::new();
    let mut accessories = Vec::new();
    for (svc_name, v) in &services {
        let p = services_p.key(svc_name);
        if let Some(r) = resolver.service(cx, svc_name, v, &p) {
            match r {
                Resolved::App(a) => apps.push(a),
                Resolved::Accessory(a) => accessories.push(a),
            }
        }
    }
    share_network_stacks(cx, &services_p, &mut accessories, &apps);
    host_port_conflicts(cx, &services_p, &apps, &accessories);
    route_app_calls(&mut apps, &mut accessories);
    let default_used = resolver.default_network_used;
    // Like Compose, a network or volume no service uses is left out: it is
    // neither created nor shown.
    let all_services = || {
        apps.iter()
            .map(|a| &a.service)
            .chain(accessories.iter().map(|a| &a.service))
    };
    let used_networks: BTreeSet<&str> = all_services()
        .flat_map(|s| s.networks.iter().map(|n| n.key.as_str()))
        .collect();
    let used_volumes: BTreeSet<&str> = all_services()
        .flat_map(|s| s.mounts.iter())
        .filter_map(|m| match m {
            Mount::Volume {
                source: Some(s), ..
            } => Some(s.as_str()),
            _ => None,
        })
        .collect();
    let mut networks: Vec<NetworkSpec> = networks
        .into_values()
        .filter(|n| used_networks.contains(n.key.as_str()))
        .collect();
    if default_used && !networks.iter().any(|n| n.key == "default") {
        networks.push(NetworkSpec::project_default(&name, "default".into()));
    }
    let volumes: Vec<VolumeSpec> = volumes
        .into_values()
        .filter(|v| used_volumes.contains(v.name.as_str()))
        .collect();
    let order = dependency_order(cx, &services_p, &apps, &accessories)?;
    apps.sort_by_key(|a| order.iter().position(|n| *n == a.service.name));
    accessories.sort_by_key(|a| order.iter().position(|n| *n == a.service.name));
    Some(ResolvedProject {
        name,
        project_dir: cx.input.project_dir.clone(),
        apps,
        accessories,
        networks,
        volumes,
        warnings: Vec::new(),
    })
}

/// Two services publishing one host port: the second cannot have it. An
/// app's ports are the daemon's listeners, an accessory's the engine's.
fn host_port_conflicts(
    cx: &mut Ctx<'_>,
    services_p: &KeyPath,
    apps: &[AppSpec],
    accessories: &[AccessorySpec],
) {
    // (service, ports index, host ip, port), apps first.
    let mut taken: Vec<(&str, usize, &str, u16)> = Vec::new();
    let published = apps
        .iter()
        .map(|a| &a.service)
        .chain(accessories.iter().map(|a| &a.service))
        .flat_map(|s| {
            s.ports.iter().enumerate().filter_map(move |(i, p)| {
                let port = p.published?;
                (p.protocol == "tcp").then(|| {
                    (
                        s.name.as_str(),
                        i,
                        p.host_ip.as_deref().unwrap_or("0.0.0.0"),
                        port,
                    )
                })
            })
        });
    for (service, i, ip, port) in published {
        let clash = taken.iter().find(|(other, _, oip, oport)| {
            *oport == port
                && *other != service
                && (*oip == ip || *oip == "0.0.0.0" || ip == "0.0.0.0")
        });
        if let Some((other, ..)) = clash {
            cx.error_hint(
                &services_p.key(service).key("ports").index(i),
                format!("host port {port} is published by {other} too"),
                "give one of them another host port",
            );
        }
        taken.push((service, i, ip, port));
    }
}

/// `network_mode: service:<name>` names another accessory: it becomes the
/// engine's `container:<its container name>`, and, as in Compose, a
/// dependency, since the stack must exist first.
fn share_network_stacks(
    cx: &mut Ctx<'_>,
    services_p: &KeyPath,
    accessories: &mut [AccessorySpec],
    apps: &[AppSpec],
) {
    let names: BTreeMap<String, String> = accessories
        .iter()
        .map(|a| (a.service.name.clone(), a.container_name.clone()))
        .collect();
    for acc in accessories.iter_mut() {
        let Some(other) = acc
            .service
            .options
            .network_mode
            .as_deref()
            .and_then(|m| m.strip_prefix("service:"))
            .map(str::to_string)
        else {
            continue;
        };
        let p = services_p.key(&acc.service.name).key("network_mode");
        match names.get(&other) {
            Some(container) => {
                acc.service.options.network_mode = Some(format!("container:{container}"));
                if !acc.service.depends_on.iter().any(|d| d.service == other) {
                    acc.service.depends_on.push(Dependency {
                        service: other,
                        condition: DependsCondition::ServiceStarted,
                        required: true,
                    });
                }
            }
            None if apps.iter().any(|a| a.service.name == other) => cx.error_hint(
                &p,
                format!("network_mode names app {other}, whose colors come and go at each deploy"),
                "share the network stack of an accessory, or reach the app by its service name",
            ),
            None => cx.error(
                &p,
                format!("network_mode names undefined service {other:?}"),
            ),
        }
    }
}

/// The services whose profiles are active, and the others with their
/// profiles. Active are the profiles in `COMPOSE_PROFILES` (the CLI's
/// `--profile` flags arrive there), comma-separated; `*` is every profile.
/// A service with no `profiles:` is always active.
#[allow(clippy::type_complexity)]
fn active_services<'v>(
    cx: &mut Ctx<'_>,
    services: Vec<(String, &'v Value)>,
) -> (Vec<(String, &'v Value)>, BTreeMap<String, Vec<String>>) {
    let wanted = cx.env("COMPOSE_PROFILES").unwrap_or_default();
    let wanted: BTreeSet<&str> = wanted
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let mut inactive = BTreeMap::new();
    let mut active = Vec::new();
    for (name, v) in services {
        let profiles: Vec<String> = v
            .get("profiles")
            .and_then(Value::as_sequence)
            .map(|s| {
                s.iter()
                    .filter_map(|p| p.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if profiles.is_empty()
            || wanted.contains("*")
            || profiles.iter().any(|p| wanted.contains(p.as_str()))
        {
            active.push((name, v));
        } else {
            inactive.insert(name, profiles);
        }
    }
    (active, inactive)
}

/// Orders services so each comes after what it depends on; a cycle is an error.
fn dependency_order(
    cx: &mut Ctx<'_>,
    services_p: &KeyPath,
    apps: &[AppSpec],
    accessories: &[AccessorySpec],
) -> Option<Vec<String>> {
    let all: Vec<&ServiceSpec> = accessories
        .iter()
        .map(|a| &a.service)
        .chain(apps.iter().map(|a| &a.service))
        .collect();
    let mut order: Vec<String> = Vec::new();
    let mut remaining: Vec<&ServiceSpec> = all.clone();
    while !remaining.is_empty() {
        let (ready, blocked): (Vec<&ServiceSpec>, Vec<&ServiceSpec>) =
            remaining.into_iter().partition(|s| {
                s.depends_on
                    .iter()
                    .all(|d| order.contains(&d.service) || !all.iter().any(|o| o.name == d.service))
            });
        if ready.is_empty() {
            let names: Vec<&str> = blocked.iter().map(|s| s.name.as_str()).collect();
            cx.error_hint(
                &services_p.key(names[0]).key("depends_on"),
                format!("depends_on forms a cycle between {}", names.join(", ")),
                "remove one of the dependencies",
            );
            return None;
        }
        order.extend(ready.iter().map(|s| s.name.clone()));
        remaining = blocked;
    }
    Some(order)
}
