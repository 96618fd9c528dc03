//! A named service: what survives across deploys (its metrics) and the
//! control-plane record of its active and draining target sets.

use std::sync::Arc;

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
}

impl ServiceEntry {
    pub fn status(&self) -> ServiceStatus {
        ServiceStatus {
            name: self.service.name.to_string(),
            config: self.config.clone(),
            active: self.active.status(),
            draining: self.draining.iter().map(|s| s.status()).collect(),
        }
    }
}
