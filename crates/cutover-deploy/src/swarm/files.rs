//! A project's secrets and configs as Swarm objects.
//!
//! A Swarm secret or config cannot be changed, and a task reads it when it
//! starts. So each content is its own object, `<project>_<key>_<hash>`:
//! a deploy that changes a value creates a new object for the new color,
//! the old color keeps the one it started with (a rollback runs with the
//! old value), and an object that no service mounts any more is removed
//! when the operation ends ([`prune`]). An external one is the Swarm's own:
//! found by name, never created or removed.

use std::collections::{BTreeMap, BTreeSet};

use cutover_core::compose::{AppSpec, FileRef, FileSource, ResolvedProject, ServiceSpec};
use cutover_core::diag::Report;
use cutover_core::naming;
use cutover_docker::labels::{self, LabelFilter};
use cutover_swarm::{FileKind, ServiceFile, ServiceSpec as SwarmService};

use super::Inner;
use crate::events::Progress;
use crate::specs::file_owner;

/// The engine's longest secret or config name.
const MAX_NAME: usize = 64;

/// `<project>_<key>_<hash of the contents>`, cut to the engine's length
/// before the hash, which alone keeps two contents apart.
fn object_name(project: &str, key: &str, data: &[u8]) -> String {
    naming::hashed(&format!("{project}_{key}"), data, MAX_NAME)
}

/// Each secret and config of a service, with its kind.
fn refs(spec: &ServiceSpec) -> impl Iterator<Item = (&FileRef, FileKind)> {
    let secrets = spec.secrets.iter().map(|r| (r, FileKind::Secret));
    secrets.chain(spec.configs.iter().map(|r| (r, FileKind::Config)))
}

/// The external secrets and configs the project names that the swarm
/// does not have, each as the error a deploy stops at before anything
/// starts.
pub(super) async fn missing_external(
    sw: &Inner,
    project: &ResolvedProject,
) -> Result<Vec<Report>, Report> {
    let mut wanted = BTreeMap::new();
    let services = project
        .apps
        .iter()
        .map(|a| &a.service)
        .chain(project.accessories.iter().map(|a| &a.service));
    for spec in services {
        for (r, kind) in refs(spec) {
            if let FileSource::External { name } = &r.from {
                wanted.insert((kind, name.clone()), r.source.clone());
            }
        }
    }
    let mut missing = Vec::new();
    for ((kind, name), key) in wanted {
        if sw.cluster.find_file(kind, &name).await?.is_none() {
            let what = kind.as_str();
            missing.push(
                Report::new(format!(
                    "{what}s.{key}: the external {what} {name:?} does not exist in the swarm"
                ))
                .hint(format!(
                    "create it on a manager (`printf %s VALUE | docker {what} create {name} -`), or give it a `file:` or `environment:` so cutover creates it"
                )),
            );
        }
    }
    Ok(missing)
}

/// `app` with each secret's and config's value replaced by the name of
/// its Swarm object (what [`attach`] finds it by): a spec that can be kept
/// where the values must not be, and attached again later.
pub(super) fn by_object_name(project: &str, app: &AppSpec) -> AppSpec {
    let mut app = app.clone();
    let refs = app
        .service
        .secrets
        .iter_mut()
        .chain(app.service.configs.iter_mut());
    for r in refs {
        let name = match &r.from {
            FileSource::Environment { value, .. } | FileSource::Content(value) => {
                object_name(project, &r.source, value.as_bytes())
            }
            FileSource::File(_) | FileSource::External { .. } => continue,
        };
        r.from = FileSource::External { name };
    }
    app
}

/// Gives `service` the secrets and configs of `spec`, creating the objects
/// the swarm does not have yet.
pub(super) async fn attach(
    sw: &Inner,
    project: &str,
    spec: &ServiceSpec,
    service: &mut SwarmService,
) -> Result<(), Report> {
    for (r, kind) in refs(spec) {
        let secret = kind == FileKind::Secret;
        let (uid, gid) = file_owner(r, secret, &spec.name)?;
        // The object's name, and the contents it is created with when the
        // swarm does not have it (`None`: external, never created).
        let (name, data) = match &r.from {
            FileSource::External { name } => (name.clone(), None),
            FileSource::Environment { value, .. } | FileSource::Content(value) => (
                object_name(project, &r.source, value.as_bytes()),
                Some(value.as_bytes()),
            ),
            // Read into their contents when the operation starts.
            FileSource::File(path) => {
                return Err(Report::new(format!(
                    "services.{}: {} {}: the file {} was not read",
                    spec.name,
                    kind.as_str(),
                    r.source,
                    path.display()
                )))
            }
        };
        let id = match (sw.cluster.find_file(kind, &name).await?, data) {
            (Some(found), _) => found.id,
            (None, Some(data)) => {
                let labels = BTreeMap::from([(labels::PROJECT.to_string(), project.to_string())]);
                sw.cluster.create_file(kind, &name, &labels, data).await?
            }
            (None, None) => {
                return Err(Report::new(format!(
                    "the external {} {name:?} is gone from the swarm",
                    kind.as_str()
                )))
            }
        };
        service.files.push(ServiceFile {
            kind,
            id,
            name,
            target: r.path(secret),
            uid: uid.to_string(),
            gid: gid.to_string(),
            mode: r.mode.unwrap_or(0o444),
        });
    }
    Ok(())
}

/// Removes the project's secrets and configs that no service of the swarm
/// mounts any more. Never fails the operation: what cannot be removed now
/// goes at the next one.
pub(super) async fn prune(sw: &Inner, project: &str, p: &Progress) {
    if let Err(report) = try_prune(sw, project).await {
        p.warn(report.map_message(|m| format!("unused secrets and configs stay: {m}")));
    }
}

async fn try_prune(sw: &Inner, project: &str) -> Result<(), Report> {
    let mine = LabelFilter::project(project);
    let mut objects = sw.cluster.list_files(FileKind::Secret, &mine).await?;
    objects.extend(sw.cluster.list_files(FileKind::Config, &mine).await?);
    if objects.is_empty() {
        return Ok(());
    }
    // Every service of the swarm: another project could name this one's
    // object as its external.
    let services = sw.cluster.list_services(&LabelFilter::new()).await?;
    let mounted: BTreeSet<&str> = services
        .iter()
        .flat_map(|s| s.files.iter().map(String::as_str))
        .collect();
    for o in objects.iter().filter(|o| !mounted.contains(o.id.as_str())) {
        sw.cluster.remove_file(o.kind, &o.id).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kept spec names each value's object and holds no value; an
    /// external one is left as it is.
    #[test]
    fn a_kept_spec_holds_object_names_not_values() {
        let project = crate::tests::parse_with_env(
            r#"
name: shop
services:
  web:
    image: web:1
    secrets: [api_key, vendor]
    configs: [site]
    x-cutover: {port: 8080}
secrets:
  api_key: {environment: API_KEY}
  vendor: {external: true, name: vendor_token}
configs:
  site: {content: "mode=fast"}
"#
            .to_string(),
            &[("API_KEY", "s3cret-value")],
        );
        let app = project.app("web").unwrap();
        let kept = by_object_name("shop", app);
        let json = serde_json::to_string(&kept).unwrap();
        assert!(!json.contains("s3cret-value"), "{json}");
        assert!(!json.contains("mode=fast"), "{json}");
        let names: Vec<&FileSource> = kept
            .service
            .secrets
            .iter()
            .chain(&kept.service.configs)
            .map(|r| &r.from)
            .collect();
        assert_eq!(
            names,
            [
                &FileSource::External {
                    name: object_name("shop", "api_key", b"s3cret-value")
                },
                &FileSource::External {
                    name: "vendor_token".into()
                },
                &FileSource::External {
                    name: object_name("shop", "site", b"mode=fast")
                },
            ]
        );
    }
}
