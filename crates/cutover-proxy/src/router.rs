//! The routing snapshot: one immutable table swapped atomically on every
//! deploy. A request loads it once (an ArcSwap load, no lock) and keeps the
//! route it found, so it is served wholly by the set it picked.

use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};
use cutover_core::route::RouteTable;

use crate::service::Service;
use crate::target::TargetSet;

/// Where one service's requests go right now.
#[derive(Clone)]
pub(crate) struct Route {
    pub service: Arc<Service>,
    pub set: Arc<TargetSet>,
    /// Plain HTTP to this route is redirected to HTTPS.
    pub redirect_to_https: bool,
    /// `Strict-Transport-Security` for its HTTPS responses.
    pub hsts: Option<http::HeaderValue>,
    /// Set while the route is in maintenance.
    pub maintenance: Option<Arc<crate::maintenance::Gate>>,
    /// A set staged beside `set`, for the requests that ask for it.
    pub staged: Option<crate::stage::StagedRoute>,
}

#[derive(Default)]
pub(crate) struct Snapshot {
    pub table: RouteTable<Arc<Route>>,
    /// Every service by name, for connections on an app's own port.
    pub by_service: std::collections::HashMap<String, Arc<Route>>,
}

pub(crate) struct Router {
    current: ArcSwap<Snapshot>,
}

impl Router {
    pub fn new() -> Self {
        Router {
            current: ArcSwap::from_pointee(Snapshot::default()),
        }
    }

    pub fn load(&self) -> Guard<Arc<Snapshot>> {
        self.current.load()
    }

    pub fn publish(&self, snapshot: Snapshot) {
        self.current.store(Arc::new(snapshot));
    }
}
