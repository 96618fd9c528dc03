//! A node's side of a switch coordinated across a cluster
//! (`cutover_core::fleet` has the lifecycle): prepare gates a set from
//! here and holds it, routed nowhere; commit installs it with the same
//! switch a deploy makes (the active set drains, 1012 for WebSockets at
//! its deadline); abort drops it.
//!
//! One prepared set per service: a later prepare replaces the one before
//! (the coordinator retrying after it lost track). Prepared sets are not
//! saved in the state file: a restarted node holds none, its commit fails
//! with `NotPrepared`, and nothing switches on it. A set whose coordinator
//! went away between the phases is dropped after [`PREPARED_TTL`], so its
//! probes do not run forever.

use std::sync::Arc;
use std::time::Duration;

use cutover_core::clock::now_ms;

use cutover_core::diag::Report;
use cutover_core::fleet::{CommitAnswer, PreparedAnswer};
use cutover_core::service::DeployRequest;
use cutover_core::status::Health;

use crate::handle::{DeployError, Proxy};
use crate::health;
use crate::target::TargetSet;

/// How long a prepared set waits for its commit: far longer than the
/// coordinator's gap between the phases (the other nodes' gates).
pub const PREPARED_TTL: Duration = Duration::from_secs(600);

/// A gated set waiting for its commit.
pub(crate) struct Prepared {
    pub set: Arc<TargetSet>,
    pub config: DeployRequest,
}

impl Prepared {
    pub(crate) fn drop_set(self) {
        self.set.monitor_stop.cancel();
    }
}

impl Proxy {
    /// Phase one: the checks a deploy makes, then the health gate. The set
    /// is held under its id until [`Proxy::commit`] or
    /// [`Proxy::abort_prepared`].
    pub async fn prepare(
        &self,
        service: &str,
        req: DeployRequest,
    ) -> Result<PreparedAnswer, DeployError> {
        let color = self.admit(service, &req)?;
        let set = self.inner.new_set(service, color, &req, Health::Unknown);
        if let Err(detail) = health::gate(&set, &req.health, req.timeouts.deploy).await {
            return Err(DeployError::Unhealthy {
                timeout: req.timeouts.deploy,
                detail,
            });
        }
        let answer = PreparedAnswer {
            set_id: set.id,
            color,
            healthy: healthy(&set),
            targets: set.targets.len(),
        };
        // The monitor keeps the set's health current until the commit,
        // which refuses a set that went unhealthy meanwhile.
        self.inner.start_monitor(&set, &req.health);
        let held = Prepared { set, config: req };
        let replaced = self.inner.lock().prepared.insert(service.into(), held);
        if let Some(old) = replaced {
            tracing::info!(service, set_id = old.set.id, "prepared set replaced");
            old.drop_set();
        }
        tracing::info!(
            service,
            set_id = answer.set_id,
            color = color.as_str(),
            "prepared"
        );
        let proxy = self.clone();
        let (service, set_id) = (service.to_string(), answer.set_id);
        self.inner.tasks.spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(PREPARED_TTL) => {}
                _ = proxy.inner.shutdown.cancelled() => return,
            }
            if let Ok(stale) = proxy.take_prepared(&service, set_id) {
                tracing::warn!(%service, set_id, "a prepared set was never committed; dropped");
                stale.drop_set();
            }
        });
        Ok(answer)
    }

    /// Phase two: switch the service to prepared set `set_id`.
    pub fn commit(&self, service: &str, set_id: u64) -> Result<CommitAnswer, DeployError> {
        let prepared = self.take_prepared(service, set_id)?;
        if healthy(&prepared.set) == 0 {
            prepared.drop_set();
            return Err(DeployError::Invalid(
                Report::new(format!(
                    "set {set_id} of {service} has no healthy target any more, so it is not switched to"
                ))
                .hint("nothing was switched on this node; `cutover status` shows the targets' last errors"),
            ));
        }
        let claim = self
            .inner
            .ports
            .claim(service, &prepared.config.pinned_addresses())
            .map_err(DeployError::Invalid)?;
        let status = self
            .inner
            .install_claimed(service, prepared.config, prepared.set, claim)?;
        Ok(CommitAnswer {
            status,
            switched_at_ms: now_ms(),
        })
    }

    /// Drops prepared set `set_id`. One that is gone already is not an
    /// error: an abort is retried, or sent to a node that restarted.
    pub fn abort_prepared(&self, service: &str, set_id: u64) {
        match self.take_prepared(service, set_id) {
            Ok(prepared) => {
                tracing::info!(service, set_id, "prepared set aborted");
                prepared.drop_set();
            }
            Err(_) => tracing::debug!(service, set_id, "abort of a set not held here"),
        }
    }

    pub(crate) fn take_prepared(
        &self,
        service: &str,
        set_id: u64,
    ) -> Result<Prepared, DeployError> {
        let mut services = self.inner.lock();
        match services.prepared.get(service) {
            Some(p) if p.set.id == set_id => {
                Ok(services.prepared.remove(service).expect("matched above"))
            }
            _ => Err(DeployError::NotPrepared { set_id }),
        }
    }
}

fn healthy(set: &TargetSet) -> usize {
    set.targets
        .iter()
        .filter(|t| t.health() == Health::Healthy)
        .count()
}
