//! A staged set beside a route's active one (`cutover_core::stage` has the
//! lifecycle): the proxy gates it, routes the requests that ask for it (or
//! a canary's share of new sessions) to it, and promotes it with the same
//! switch a deploy makes, or drains it away.

use std::sync::Arc;

use cutover_core::diag::{Diagnose, Report};
use cutover_core::service::DeployRequest;
use cutover_core::stage::{self, Stage, StageMode};
use cutover_core::status::{Health, ServiceStatus, StagedStatus};
use http::{header, HeaderValue, Request};

use crate::context::Context;
use crate::handle::{DeployError, Proxy};
use crate::router::Route;
use crate::target::TargetSet;
use crate::{drain, health};

/// A service's staged set, as the control side keeps it.
#[derive(Clone)]
pub(crate) struct Staged {
    pub set: Arc<TargetSet>,
    pub config: DeployRequest,
    pub stage: Stage,
}

impl Staged {
    pub fn status(&self) -> StagedStatus {
        StagedStatus {
            stage: self.stage.clone(),
            config: self.config.clone(),
            set: self.set.status(),
        }
    }
}

/// What the request path needs of a staged set.
#[derive(Clone)]
pub(crate) struct StagedRoute {
    pub set: Arc<TargetSet>,
    pub stage: Stage,
    /// `Path` of the canary cookie: the route's path prefix.
    pub cookie_path: String,
}

/// Step 1 of a request on a route with a staged set: which set serves it,
/// and the canary cookie to set when this request drew its side.
pub(crate) fn choose<'r, B>(
    route: &'r Route,
    req: &Request<B>,
) -> (&'r Arc<TargetSet>, Option<HeaderValue>) {
    let Some(staged) = &route.staged else {
        return (&route.set, None);
    };
    if asks_preview(req) {
        return (&staged.set, None);
    }
    let StageMode::Canary { percent } = staged.stage.mode else {
        return (&route.set, None);
    };
    let drawn = cookies(req, stage::CANARY_COOKIE).find_map(|c| staged.stage.side_of(c));
    let (to_staged, cookie) = match drawn {
        Some(side) => (side, None),
        None => {
            let side = rand::random_range(0..100u8) < percent;
            (side, canary_cookie(staged, side))
        }
    };
    let set = if to_staged { &staged.set } else { &route.set };
    (set, cookie)
}

fn asks_preview<B>(req: &Request<B>) -> bool {
    let header = req
        .headers()
        .get(stage::PREVIEW_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(stage::asks_preview);
    header || cookies(req, stage::PREVIEW_HEADER).any(stage::asks_preview)
}

/// Every value of cookie `name` the request carries, across its `Cookie`
/// headers.
fn cookies<'a, B>(req: &'a Request<B>, name: &'a str) -> impl Iterator<Item = &'a str> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(move |h| stage::cookie_values(h, name))
}

fn canary_cookie(staged: &StagedRoute, side: bool) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{}={}; Path={}; Max-Age={}; HttpOnly; SameSite=Lax",
        stage::CANARY_COOKIE,
        staged.stage.canary_cookie_value(side),
        staged.cookie_path,
        stage::CANARY_COOKIE_MAX_AGE_SECS
    ))
    .ok()
}

fn refused(message: String, hint: &str) -> DeployError {
    DeployError::Invalid(Report::new(message).hint(hint))
}

impl Proxy {
    /// Health-gates `req`'s targets and stages them beside the service's
    /// active set; the active set keeps every request that does not ask
    /// for the staged one.
    pub async fn stage(
        &self,
        service: &str,
        req: DeployRequest,
        mut stage: Stage,
    ) -> Result<ServiceStatus, DeployError> {
        crate::handle::validate(service, &req)?;
        if let Some(refused) = self.refuses_certificate(req.tls.as_ref(), &req.hosts) {
            return Err(DeployError::Invalid(refused));
        }
        stage.validate().map_err(DeployError::Invalid)?;
        if stage.token.is_empty() {
            stage.token = format!("{:08x}", rand::random::<u32>());
        }
        let live = self.may_stage(service)?;
        let color = req.color.unwrap_or_else(|| live.other());
        let set = self.inner.new_set(service, color, &req, Health::Unknown);
        if let Err(detail) = health::gate(&set, &req.health, req.timeouts.deploy).await {
            return Err(DeployError::Unhealthy {
                timeout: req.timeouts.deploy,
                detail,
            });
        }
        self.inner.put_staged(service, req, set, stage)
    }

    /// Phase two of a stage across a cluster (`cutover_core::fleet`): the
    /// set prepared under `set_id` is staged beside the active one, as
    /// [`Proxy::stage`] stages one it gated itself. The coordinator sets
    /// `stage.token`, so every node draws a canary's sides with one cookie.
    pub fn stage_prepared(
        &self,
        service: &str,
        set_id: u64,
        stage: Stage,
    ) -> Result<ServiceStatus, DeployError> {
        stage.validate().map_err(DeployError::Invalid)?;
        if stage.token.is_empty() {
            return Err(refused(
                format!("the stage of {service} has no token"),
                "a stage across nodes carries its coordinator's token, so a canary cookie counts on every node",
            ));
        }
        let prepared = self.take_prepared(service, set_id)?;
        if let Err(e) = self.may_stage(service) {
            prepared.drop_set();
            return Err(e);
        }
        self.inner
            .put_staged(service, prepared.config, prepared.set, stage)
    }

    /// Whether a version can be staged beside `service`'s: it serves, and
    /// has nothing staged yet. The live color.
    fn may_stage(&self, service: &str) -> Result<cutover_core::service::Color, DeployError> {
        let services = self.inner.lock();
        let Some(entry) = services.live.get(service) else {
            return Err(refused(
                format!("{service} serves nothing yet, so nothing can be staged beside it"),
                "deploy it without --preview or --canary first",
            ));
        };
        if let Some(s) = &entry.staged {
            return Err(refused(
                format!(
                    "{service} already has {} staged ({})",
                    s.set.version.as_deref().unwrap_or("a version"),
                    s.stage.mode.describe()
                ),
                "promote it or abort it first",
            ));
        }
        Ok(entry.active.color)
    }

    /// Switches the service to its staged set, as a deploy's switch does:
    /// the active set drains (1012 for WebSockets at its deadline).
    pub fn promote(&self, service: &str) -> Result<ServiceStatus, DeployError> {
        let staged = {
            let services = self.inner.lock();
            let entry = services
                .live
                .get(service)
                .ok_or_else(|| DeployError::UnknownService(service.to_string()))?;
            let Some(staged) = entry.staged.clone() else {
                return Err(not_staged(service));
            };
            staged
        };
        if !staged
            .set
            .targets
            .iter()
            .any(|t| t.health() == Health::Healthy)
        {
            return Err(refused(
                format!(
                    "the staged set of {service} has no healthy target now, so it is not promoted"
                ),
                "`cutover status` shows its targets' last errors; abort it, or fix the app and stage it again",
            ));
        }
        let claim = self
            .inner
            .ports
            .claim(service, &staged.config.pinned_addresses())
            .map_err(DeployError::Invalid)?;
        self.inner
            .install_claimed(service, staged.config, staged.set, claim)
    }

    /// Takes the staged set out of the routes and drains it like an old
    /// color; returns its id, whose `Drained` event says when it is idle.
    pub fn unstage(&self, service: &str) -> Result<u64, DeployError> {
        let mut services = self.inner.lock();
        let entry = services
            .live
            .get_mut(service)
            .ok_or_else(|| DeployError::UnknownService(service.to_string()))?;
        let Some(staged) = entry.staged.take() else {
            return Err(not_staged(service));
        };
        entry.draining.push(staged.set.clone());
        let snapshot =
            Context::snapshot(&services.live).expect("a table minus a staged set has no conflict");
        self.inner.router.publish(snapshot);
        drop(services);
        tracing::info!(service, set_id = staged.set.id, "staged set aborted");
        let id = staged.set.id;
        drain::retire(&self.inner, staged.set, staged.config.timeouts);
        Ok(id)
    }
}

fn not_staged(service: &str) -> DeployError {
    refused(format!("{service} has nothing staged"), stage::HOW_TO_STAGE)
}

impl Context {
    /// Publishes `set` as the service's staged set (a gated one, or one
    /// restored from the state file). A preview host another route holds
    /// is refused and nothing changes.
    pub(crate) fn put_staged(
        self: &Arc<Self>,
        service: &str,
        config: DeployRequest,
        set: Arc<TargetSet>,
        stage: Stage,
    ) -> Result<ServiceStatus, DeployError> {
        let mut services = self.lock();
        let entry = services
            .live
            .get_mut(service)
            .ok_or_else(|| DeployError::UnknownService(service.to_string()))?;
        let health = config.health.clone();
        entry.staged = Some(Staged {
            set: set.clone(),
            config,
            stage,
        });
        let snapshot = match Context::snapshot(&services.live) {
            Ok(s) => s,
            Err(e) => {
                if let Some(entry) = services.live.get_mut(service) {
                    entry.staged = None;
                }
                return Err(DeployError::Invalid(
                    e.report()
                        .map_message(|m| format!("preview_hosts of {service}: {m}")),
                ));
            }
        };
        self.router.publish(snapshot);
        let status = services.live.get(service).expect("checked above").status();
        drop(services);
        tracing::info!(
            service,
            color = set.color.as_str(),
            set_id = set.id,
            version = set.version.as_deref().unwrap_or(""),
            "staged"
        );
        self.start_monitor(&set, &health);
        Ok(status)
    }
}
