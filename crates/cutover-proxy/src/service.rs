//! A named service: what survives across deploys (its metrics) and the
//! control-plane record of its active and draining target sets.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cutover_core::service::DeployRequest;
use cutover_core::status::ServiceStatus;

use crate::metrics::ServiceMetrics;
use crate::target::TargetSet;

pub(crate) struct Service {
    pub name: Arc<str>,
    pub metrics: ServiceMetrics,
}

impl Service {
    pub fn new(name: &str) -> Self {
        Service {
            name: name.into(),
            metrics: ServiceMetrics::default(),
        }
    }
}

/// Kept under the proxy's control mutex; never touched per request.
pub(crate) struct ServiceEntry {
    pub service: Arc<Service>,
    /// The request that made `active` live.
    pub config: DeployRequest,
    pub active: Arc<TargetSet>,
    pub draining: Vec<Arc<TargetSet>>,
    /// Set while the route is in maintenance; kept across deploys.
    pub maintenance: Option<Arc<crate::maintenance::Gate>>,
    /// A set staged beside `active` (preview or canary).
    pub staged: Option<crate::stage::Staged>,
}

impl ServiceEntry {
    pub fn status(&self) -> ServiceStatus {
        ServiceStatus {
            name: self.service.name.to_string(),
            config: self.config.clone(),
            active: self.active.status(),
            draining: self.draining.iter().map(|s| s.status()).collect(),
            maintenance: self.maintenance.as_ref().map(|g| g.spec.clone()),
            staged: self.staged.as_ref().map(crate::stage::Staged::status),
        }
    }
}

/// A service removed while its sets still drain: out of the routes and of
/// `status`, but shutdown still waits for its sets and metrics still count
/// them, until each has drained.
pub(crate) struct Removed {
    pub service: Arc<Service>,
    pub draining: Vec<Arc<TargetSet>>,
    /// The drain timeout its removal asked for.
    pub drain: Duration,
}

/// Every service the proxy knows, under one mutex so a set moves between
/// `live` and `removed` in one step.
#[derive(Default)]
pub(crate) struct Services {
    pub live: BTreeMap<String, ServiceEntry>,
    pub removed: BTreeMap<String, Removed>,
    /// Sets gated for a coordinated switch and routed nowhere yet.
    pub prepared: BTreeMap<String, crate::prepare::Prepared>,
}

impl Services {
    /// Drops a drained set from whichever record holds it; a removed
    /// service with nothing left to drain is forgotten.
    pub fn forget(&mut self, set: &Arc<TargetSet>) {
        let name = &*set.service;
        if let Some(entry) = self.live.get_mut(name) {
            entry.draining.retain(|s| !Arc::ptr_eq(s, set));
        }
        if let Some(removed) = self.removed.get_mut(name) {
            removed.draining.retain(|s| !Arc::ptr_eq(s, set));
            if removed.draining.is_empty() {
                self.removed.remove(name);
            }
        }
    }
}
