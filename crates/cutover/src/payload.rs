//! What travels with a deploy to a daemon on another machine: files the
//! daemon would otherwise read from its own disk. Build contexts are
//! uploaded as tars (`.dockerignore` honoured) and named by digest;
//! secret and config files are sent as their contents. Bind sources stay
//! paths on the daemon's host (`plan` says so). `env_file`s need nothing:
//! the CLI resolves them into each service's environment already.

use std::collections::BTreeMap;
use std::path::Path;

use cutover_core::compose::ResolvedProject;
use cutover_core::diag::Report;
use hyper::{Method, StatusCode};
use sha2::{Digest, Sha256};

use crate::client::{Body, DaemonClient};
use crate::error::CliError;

/// Secret and config files, replaced by their contents.
pub fn inline_files(project: &mut ResolvedProject) -> Result<(), CliError> {
    cutover_compose::inline_files(project, "where you run cutover, and sent with the deploy")
        .map_err(CliError::bad_input)
}

/// Uploads the build context of every service that builds from a folder,
/// unless the daemon has it already; the map is what
/// `DeployCommand::build_contexts` carries.
pub async fn upload_contexts(
    project: &ResolvedProject,
    client: &DaemonClient,
) -> Result<BTreeMap<String, String>, CliError> {
    let mut uploaded = BTreeMap::new();
    let builds = project
        .apps
        .iter()
        .map(|a| &a.service)
        .chain(project.accessories.iter().map(|a| &a.service))
        .filter_map(|s| s.build.as_ref().map(|b| (s, b)));
    for (spec, build) in builds {
        // A git or https context is fetched by the engine itself.
        if !build.context.starts_with('/') || uploaded.contains_key(&build.context) {
            continue;
        }
        let context = build.context.clone();
        let dockerfile = build.dockerfile.clone();
        let packed = tokio::task::spawn_blocking(move || {
            cutover_docker::context::pack(Path::new(&context), dockerfile.as_deref().map(Path::new))
        })
        .await
        .expect("packing does not panic")
        .map_err(|e| {
            CliError::bad_input(
                Report::from(e).map_message(|m| format!("{}: build: {m}", spec.name)),
            )
        })?;
        let tar = packed.1;
        let digest = format!("sha256:{:x}", Sha256::digest(&tar));
        let path = format!("/v1/build-contexts/{digest}");
        let (status, _) = client.request(Method::HEAD, &path, None).await?;
        if status == StatusCode::NOT_FOUND {
            let (status, answer) = client
                .request(
                    Method::PUT,
                    &path,
                    Some(Body {
                        content_type: "application/x-tar",
                        bytes: tar.into(),
                    }),
                )
                .await?;
            if !status.is_success() {
                return Err(crate::client::api_error(status, &answer));
            }
        } else if !status.is_success() {
            return Err(CliError::failure(format!(
                "the daemon answered {status} when asked whether it has the build context of {}",
                spec.name
            )));
        }
        uploaded.insert(build.context.clone(), digest);
    }
    Ok(uploaded)
}
