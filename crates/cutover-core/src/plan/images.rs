//! Which image each service runs and where it comes from, before anything
//! is pulled or built: what `cutover plan` lists, by the same rules the
//! deploy follows (a service's `pull_policy`, else the deploy's `--pull`).

use serde::{Deserialize, Serialize};

use super::{Observed, PlanError};
use crate::compose::ServiceSpec;
use crate::progress::PullPolicy;

/// One image of the project and what the deploy does to have it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImagePlan {
    pub image: String,
    /// The services that run it.
    pub services: Vec<String>,
    #[serde(flatten)]
    pub action: ImageAction,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ImageAction {
    /// Built from `build:`; its ID, and so whether the app changes, is
    /// known after the build.
    Build { context: String },
    /// Pulled; `local` is the ID on this host now, if any.
    Pull { local: Option<String> },
    /// Used as it is on this host.
    Local { id: String },
}

/// The pull rule of one service: its `pull_policy`, else the deploy's.
pub fn pull_policy(spec: &ServiceSpec, deploy: PullPolicy) -> PullPolicy {
    match spec.pull_policy.as_deref() {
        Some("always") => PullPolicy::Always,
        Some("never") => PullPolicy::Never,
        Some("missing") => PullPolicy::Missing,
        _ => deploy,
    }
}

/// The images of `services` (apps selected and every accessory), each once,
/// in the order the services come. An image neither on this host nor
/// allowed to be pulled is an error.
pub(super) fn plan_images<'a>(
    services: impl Iterator<Item = &'a ServiceSpec>,
    observed: &Observed,
    pull: PullPolicy,
    errors: &mut Vec<PlanError>,
) -> Vec<ImagePlan> {
    let mut out: Vec<ImagePlan> = Vec::new();
    for spec in services {
        if let Some(known) = out.iter_mut().find(|i| i.image == spec.image) {
            known.services.push(spec.name.clone());
            continue;
        }
        let local = observed.images.get(&spec.image).cloned();
        let action = match (&spec.build, pull_policy(spec, pull), local) {
            (Some(b), _, _) => ImageAction::Build {
                context: b.context.clone(),
            },
            (None, PullPolicy::Always, local) => ImageAction::Pull { local },
            (None, _, Some(id)) => ImageAction::Local { id },
            (None, PullPolicy::Missing, None) => ImageAction::Pull { local: None },
            (None, PullPolicy::Never, None) => {
                errors.push(PlanError::ImageUnavailable {
                    service: spec.name.clone(),
                    image: spec.image.clone(),
                });
                continue;
            }
        };
        out.push(ImagePlan {
            image: spec.image.clone(),
            services: vec![spec.name.clone()],
            action,
        });
    }
    out
}
