//! The public handle of the proxy: the control side (deploy, remove, status)
//! and the entry to the data listener.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cutover_core::diag::{Diagnose, Report};
use cutover_core::maintenance::Maintenance;
use cutover_core::route::{RouteError, RouteTable};
use cutover_core::service::{validate_service_name, Color, DeployRequest, HealthCheck};
use cutover_core::status::{
    Event, Health, PersistedService, PersistedStage, ProxyState, ServiceStatus,
};
use cutover_core::sync::lock;
use cutover_core::tls::CertificateStatus;
use cutover_tls::{Certificates, Want};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::context::{Context, ProxyConfig};
use crate::metrics::{self, Connections, ServiceGauges, Unrouted};
use crate::router::{Route, Router, Snapshot};
use crate::service::{Removed, Service, ServiceEntry, Services};
use crate::target::TargetSet;
use crate::{drain, health, server};

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The new targets did not all become healthy before `deploy_timeout`.
    /// Nothing changed; `detail` names each failing target and its last probe.
    #[error("targets did not become healthy within {}", humantime::format_duration(*timeout))]
    Unhealthy { timeout: Duration, detail: String },
    /// The request fails the wire contract or conflicts with another route.
    #[error("invalid deploy request: {}", .0.message)]
    Invalid(Report),
    #[error("no service named {0:?}")]
    UnknownService(String),
    /// Commit asked for a set this node does not hold: never prepared,
    /// aborted, replaced by a later prepare, or lost in a restart.
    #[error("no set {set_id} is prepared here")]
    NotPrepared { set_id: u64 },
}

/// A persisted service that cannot be restored, by its place in the file.
#[derive(Debug, thiserror::Error)]
#[error("services[{index}] (service {service:?}): {error}")]
pub struct RestoreError {
    pub index: usize,
    pub service: String,
    #[source]
    pub error: DeployError,
}

impl DeployError {
    /// The message with the service named, as a user who asked for it reads it.
    pub fn describe(&self, service: &str) -> String {
        match self {
            DeployError::Unhealthy { timeout, .. } => format!(
                "{service} did not become healthy within {}",
                humantime::format_duration(*timeout)
            ),
            other => other.to_string(),
        }
    }
}

impl Diagnose for DeployError {
    fn hint(&self) -> Option<String> {
        match self {
            DeployError::Unhealthy { .. } => Some(
                "nothing was switched: what served before still does; check the new targets' logs and the health check path"
                    .into(),
            ),
            DeployError::Invalid(r) => r.hint.clone(),
            DeployError::UnknownService(_) => None,
            DeployError::NotPrepared { .. } => Some(
                "nothing was switched on this node; prepare the set again (a deploy does)".into(),
            ),
        }
    }

    fn detail(&self) -> Option<String> {
        match self {
            // One failing target per line.
            DeployError::Unhealthy { detail, .. } => Some(detail.replace("; ", "\n")),
            DeployError::Invalid(r) => r.detail.clone(),
            DeployError::UnknownService(_) | DeployError::NotPrepared { .. } => None,
        }
    }
}

impl Context {
    /// Tells the certificates what the live routes want, and binds the
    /// HTTPS listener once one wants TLS. The caller holds the lock.
    fn want_certificates(&self, live: &BTreeMap<String, ServiceEntry>) {
        let Some(https) = self.https.get() else {
            return;
        };
        let wants: Vec<Want> = live
            .iter()
            .filter_map(|(name, e)| {
                e.config.tls.as_ref().map(|t| Want {
                    service: name.clone(),
                    hosts: e.config.hosts.clone(),
                    source: t.certificate.clone(),
                })
            })
            .collect();
        if !wants.is_empty() {
            if let Err(e) = https.ensure_listening() {
                tracing::error!(error = %e, "routes want HTTPS, but its listener cannot be bound");
            }
        }
        for warning in https.certs.set_wanted(&wants) {
            tracing::warn!("{warning}");
        }
    }

    /// Rebuilds the route table from the services; the caller holds the lock.
    pub(crate) fn snapshot(
        services: &BTreeMap<String, ServiceEntry>,
    ) -> Result<Snapshot, RouteError> {
        let mut table = RouteTable::new();
        let mut by_service = std::collections::HashMap::new();
        for (name, e) in services {
            let tls = e.config.tls.as_ref();
            let route = Route {
                service: e.service.clone(),
                set: e.active.clone(),
                redirect_to_https: tls.is_some_and(|t| t.redirect),
                hsts: tls.and_then(|t| t.hsts).and_then(|max_age| {
                    http::HeaderValue::from_str(&format!("max-age={}", max_age.as_secs())).ok()
                }),
                maintenance: e.maintenance.clone(),
                staged: None,
            };
            let prefix = e.config.path_prefix.as_deref();
            // A preview host reaches the staged set alone, as if it were
            // the active one.
            let route = match &e.staged {
                Some(staged) => {
                    if on_main_listener(&e.config) && !staged.stage.preview_hosts.is_empty() {
                        let preview = Route {
                            set: staged.set.clone(),
                            ..route.clone()
                        };
                        table.insert(&staged.stage.preview_hosts, prefix, Arc::new(preview))?;
                    }
                    Route {
                        staged: Some(crate::stage::StagedRoute {
                            set: staged.set.clone(),
                            stage: staged.stage.clone(),
                            cookie_path: prefix.unwrap_or("/").to_string(),
                        }),
                        ..route
                    }
                }
                None => route,
            };
            let route = Arc::new(route);
            if on_main_listener(&e.config) {
                table.insert(&e.config.hosts, prefix, route.clone())?;
            }
            by_service.insert(name.clone(), route);
        }
        Ok(Snapshot { table, by_service })
    }

    /// Installs `set` as the service's active one on the app ports `claim`
    /// holds: committed once it is live, released if it is not.
    pub(crate) fn install_claimed(
        self: &Arc<Self>,
        service: &str,
        req: DeployRequest,
        set: Arc<TargetSet>,
        claim: crate::ports::Claim,
    ) -> Result<ServiceStatus, DeployError> {
        let listen = req.pinned_addresses();
        match self.install(service, req, set, true) {
            Ok(status) => {
                drop(claim);
                self.ports.commit(service, &listen);
                Ok(status)
            }
            Err(e) => {
                self.ports.release(claim);
                Err(e)
            }
        }
    }

    pub(crate) fn new_set(
        &self,
        service: &str,
        color: Color,
        req: &DeployRequest,
        initial: Health,
    ) -> Arc<TargetSet> {
        Arc::new(TargetSet::new(
            self.next_set_id.fetch_add(1, Ordering::Relaxed) + 1,
            service.into(),
            color,
            req.version.clone(),
            &req.targets,
            initial,
            &self.shutdown,
        ))
    }

    /// Starts the set's health monitor, once: a promoted staged set keeps
    /// the one it got when it was staged.
    pub(crate) fn start_monitor(self: &Arc<Self>, set: &Arc<TargetSet>, hc: &HealthCheck) {
        if tokio::runtime::Handle::try_current().is_ok()
            && !set.monitored.swap(true, Ordering::Relaxed)
        {
            self.tasks
                .spawn(health::monitor(self.clone(), set.clone(), hc.clone()));
        }
    }

    /// Installs `set` as the service's active set and retires the previous
    /// one. The new snapshot is published before the old set is marked
    /// draining, so a request never finds no route in between. `announce`
    /// emits Switched (a restore does not).
    pub(crate) fn install(
        self: &Arc<Self>,
        name: &str,
        req: DeployRequest,
        set: Arc<TargetSet>,
        announce: bool,
    ) -> Result<ServiceStatus, DeployError> {
        let mut services = self.lock();
        let previous = services.live.get(name).map(|e| e.active.clone());
        // A service deployed again while its removal drains takes its sets
        // and metrics back, as after a switch.
        let removed = services.removed.remove(name);
        let service = services
            .live
            .get(name)
            .map(|e| e.service.clone())
            .or_else(|| removed.as_ref().map(|r| r.service.clone()))
            .unwrap_or_else(|| Arc::new(Service::new(name)));
        let draining = services
            .live
            .get(name)
            .map(|e| e.draining.clone())
            .or_else(|| removed.as_ref().map(|r| r.draining.clone()))
            .unwrap_or_default();
        // Maintenance is the operator's, not the version's: a deploy
        // during it switches behind the maintenance page.
        let maintenance = services.live.get(name).and_then(|e| e.maintenance.clone());
        // A staged set stays staged across a route update; promoting it
        // (installing that very set) ends the stage.
        let staged = services
            .live
            .get(name)
            .and_then(|e| e.staged.clone())
            .filter(|s| !Arc::ptr_eq(&s.set, &set));
        let old_entry = services.live.insert(
            name.to_string(),
            ServiceEntry {
                service,
                config: req.clone(),
                active: set.clone(),
                draining,
                maintenance,
                staged,
            },
        );
        let snapshot = match Self::snapshot(&services.live) {
            Ok(s) => s,
            Err(e) => {
                match old_entry {
                    Some(old) => services.live.insert(name.to_string(), old),
                    None => services.live.remove(name),
                };
                if let Some(r) = removed {
                    services.removed.insert(name.to_string(), r);
                }
                return Err(DeployError::Invalid(e.report()));
            }
        };
        self.router.publish(snapshot);
        self.want_certificates(&services.live);
        let prev_id = previous.as_ref().map(|s| s.id);
        if announce {
            // Before the old set starts draining, so listeners always see
            // Switched ahead of that set's Drained.
            tracing::info!(
                service = name,
                color = set.color.as_str(),
                set_id = set.id,
                version = set.version.as_deref().unwrap_or(""),
                "switched"
            );
            self.emit(Event::Switched {
                service: name.to_string(),
                set_id: set.id,
                color: set.color,
                version: set.version.clone(),
                previous: prev_id,
            });
        }
        if let Some(old) = previous {
            // The request that retires a set decides how long it drains:
            // its timeouts are the ones the operator just asked for.
            if let Some(e) = services.live.get_mut(name) {
                e.draining.push(old.clone());
            }
            drain::retire(self, old, req.timeouts.clone());
        }
        self.start_monitor(&set, &req.health);
        Ok(services.live.get(name).expect("just inserted").status())
    }
}

/// The one check of a deploy request (the same the control API makes), so
/// a request from the deploy engine or the state file meets the same rules.
pub(crate) fn validate(service: &str, req: &DeployRequest) -> Result<(), DeployError> {
    validate_service_name(service)
        .and_then(|()| req.validate())
        .map_err(DeployError::Invalid)
}

impl Proxy {
    /// Why this daemon cannot get the certificate `req` asks for: a
    /// wildcard host with automatic TLS and no DNS hook. Asked of a new
    /// deploy, not of a restored route (that one keeps what it served).
    pub fn refuses_certificate(
        &self,
        tls: Option<&cutover_core::tls::TlsRoute>,
        hosts: &[String],
    ) -> Option<Report> {
        let host = cutover_core::tls::wildcard_host(tls, hosts)?;
        let dns01 = self.inner.https.get().is_some_and(|h| h.certs.dns01());
        (!dns01).then(|| cutover_core::tls::wildcard_needs_dns(host))
    }
}

/// Cheap to clone; all clones drive the same proxy.
#[derive(Clone)]
pub struct Proxy {
    pub(crate) inner: Arc<Context>,
}

impl Proxy {
    pub fn new(config: ProxyConfig) -> Self {
        let (events, _) = broadcast::channel(1024);
        Proxy {
            inner: Arc::new(Context {
                config,
                router: Router::new(),
                services: Mutex::new(Services::default()),
                events,
                tasks: TaskTracker::new(),
                shutdown: CancellationToken::new(),
                next_set_id: AtomicU64::new(0),
                unrouted: Unrouted::default(),
                connections: Connections::default(),
                local_addr: Mutex::new(None),
                handed_over: AtomicBool::new(false),
                ports: Default::default(),
                https: Default::default(),
                gateways: Mutex::new(None),
                operations: Default::default(),
            }),
        }
    }

    /// Health-gate the request's targets, switch the service to them atomically
    /// and start draining the previous set. Returns once the switch is done.
    pub async fn deploy(
        &self,
        service: &str,
        req: DeployRequest,
    ) -> Result<ServiceStatus, DeployError> {
        let color = self.admit(service, &req)?;
        // Its own ports are bound before the gate: one that is taken
        // fails the deploy before anything switches.
        let claim = self
            .inner
            .ports
            .claim(service, &req.pinned_addresses())
            .map_err(DeployError::Invalid)?;
        let set = self.inner.new_set(service, color, &req, Health::Unknown);
        if let Err(detail) = health::gate(&set, &req.health, req.timeouts.deploy).await {
            self.inner.ports.release(claim);
            return Err(DeployError::Unhealthy {
                timeout: req.timeouts.deploy,
                detail,
            });
        }
        self.inner.install_claimed(service, req, set, claim)
    }

    /// Stop routing to a service; its targets drain like after a switch.
    pub fn remove(&self, service: &str) -> Result<(), DeployError> {
        let mut services = self.inner.lock();
        let Some(entry) = services.live.remove(service) else {
            return Err(DeployError::UnknownService(service.to_string()));
        };
        self.inner.ports.remove(service);
        let snapshot = Context::snapshot(&services.live)
            .expect("a table minus one service has no new conflict");
        self.inner.router.publish(snapshot);
        self.inner.want_certificates(&services.live);
        let mut draining = entry.draining;
        draining.push(entry.active.clone());
        let staged = entry.staged.map(|s| s.set);
        draining.extend(staged.clone());
        services.removed.insert(
            service.to_string(),
            Removed {
                service: entry.service,
                draining,
                drain: entry.config.timeouts.drain,
            },
        );
        drop(services);
        // Removed comes before the set's Drained, as Switched does.
        self.inner.emit(Event::Removed {
            service: service.to_string(),
        });
        drain::retire(&self.inner, entry.active, entry.config.timeouts.clone());
        if let Some(set) = staged {
            drain::retire(&self.inner, set, entry.config.timeouts);
        }
        Ok(())
    }

    pub fn status(&self) -> Vec<ServiceStatus> {
        self.inner
            .lock()
            .live
            .values()
            .map(ServiceEntry::status)
            .collect()
    }

    /// Puts the route in maintenance (`Some`) or takes it out (`None`).
    /// Requests held by the maintenance it replaces are released: they
    /// route again, and meet the new one if there is one.
    pub fn set_maintenance(
        &self,
        service: &str,
        maintenance: Option<Maintenance>,
    ) -> Result<ServiceStatus, DeployError> {
        if let Some(m) = &maintenance {
            m.validate().map_err(DeployError::Invalid)?;
        }
        let mut services = self.inner.lock();
        let Some(entry) = services.live.get_mut(service) else {
            return Err(DeployError::UnknownService(service.to_string()));
        };
        let previous = std::mem::replace(
            &mut entry.maintenance,
            maintenance.map(|mut m| {
                if m.since_ms == 0 {
                    m.since_ms = cutover_core::clock::now_ms();
                }
                Arc::new(crate::maintenance::Gate::new(m))
            }),
        );
        let status = entry.status();
        let snapshot =
            Context::snapshot(&services.live).expect("maintenance changes no route's hosts");
        self.inner.router.publish(snapshot);
        drop(services);
        // After the publish, so a released request finds the new snapshot.
        if let Some(gate) = previous {
            gate.ended.cancel();
        }
        tracing::info!(
            service,
            on = status.maintenance.is_some(),
            "maintenance changed"
        );
        Ok(status)
    }

    /// The hosts and path prefixes each live route claims, for a planner
    /// to find conflicts before anything starts.
    pub fn held_routes(&self) -> Vec<cutover_core::plan::HeldRoute> {
        self.inner
            .lock()
            .live
            .iter()
            .map(|(name, e)| cutover_core::plan::HeldRoute {
                name: name.clone(),
                hosts: e.config.hosts.clone(),
                path_prefix: e.config.path_prefix.clone(),
                listen: e.config.listen.clone(),
            })
            .collect()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// What must be persisted to come back after a restart.
    pub fn state(&self) -> ProxyState {
        ProxyState {
            services: self
                .inner
                .lock()
                .live
                .iter()
                .map(|(name, e)| PersistedService {
                    name: name.clone(),
                    request: e.config.clone(),
                    active_since_ms: e.active.since_ms(),
                    maintenance: e.maintenance.as_ref().map(|g| g.spec.clone()),
                    staged: e.staged.as_ref().map(|s| PersistedStage {
                        request: s.config.clone(),
                        stage: s.stage.clone(),
                    }),
                })
                .collect(),
        }
    }

    /// Reinstall persisted services without a health gate. Their targets
    /// start `Unknown` and are probed at once; like every set, a restored one
    /// routes to its healthy targets and fails open (tries them all) while
    /// none is healthy, so a restart never turns a working app into 503s.
    ///
    /// Health monitors start only when called inside a Tokio runtime.
    ///
    /// An entry that fails validation (a newer cutover wrote it, or a hand
    /// edit) is an error, never skipped: skipping it would drop its route,
    /// and the next save would erase it from disk. Every entry is checked
    /// before any is installed; the daemon refuses to start on an error.
    pub fn restore(&self, state: ProxyState) -> Result<(), RestoreError> {
        let failed = |index: usize, service: &str, error| RestoreError {
            index,
            service: service.to_string(),
            error,
        };
        for (index, s) in state.services.iter().enumerate() {
            validate(&s.name, &s.request).map_err(|e| failed(index, &s.name, e))?;
        }
        for (index, s) in state.services.into_iter().enumerate() {
            let color = s.request.color.unwrap_or(Color::Blue);
            let set = self
                .inner
                .new_set(&s.name, color, &s.request, Health::Unknown);
            let claim = self
                .inner
                .ports
                .claim(&s.name, &s.request.pinned_addresses())
                .map_err(|e| failed(index, &s.name, DeployError::Invalid(e)))?;
            let listen = s.request.pinned_addresses();
            if let Err(e) = self.inner.install(&s.name, s.request, set.clone(), false) {
                self.inner.ports.release(claim);
                return Err(failed(index, &s.name, e));
            }
            if s.active_since_ms != 0 {
                set.restore_since(s.active_since_ms);
            }
            drop(claim);
            self.inner.ports.commit(&s.name, &listen);
            if let Some(m) = s.maintenance {
                self.set_maintenance(&s.name, Some(m))
                    .map_err(|e| failed(index, &s.name, e))?;
            }
            // Staged again without a gate: its targets are probed at once,
            // and a promote needs a healthy one.
            if let Some(st) = s.staged {
                let color = st.request.color.unwrap_or(color.other());
                let set = self
                    .inner
                    .new_set(&s.name, color, &st.request, Health::Unknown);
                self.inner
                    .put_staged(&s.name, st.request, set, st.stage)
                    .map_err(|e| failed(index, &s.name, e))?;
            }
        }
        // A handed-over port no restored service asked for is closed.
        self.inner.ports.forget_adopted();
        Ok(())
    }

    /// A successor process serves this proxy's listener from now on: when
    /// `serve` is shut down, in-flight requests finish as always, and
    /// upgraded connections stay until the longest WebSocket drain timeout
    /// of the services (they end sooner when their clients close them),
    /// then get their 1012 and reconnect to the successor.
    pub fn hand_over(&self) {
        self.inner.handed_over.store(true, Ordering::Relaxed);
    }

    /// The data listener is bound at `addr`: an app's in-network address
    /// it covers (a bridge gateway at its port, when it listens on every
    /// interface) is served by it rather than bound. Called before
    /// [`Proxy::restore`]; [`Proxy::serve`] records it too.
    pub fn main_listener(&self, addr: SocketAddr) {
        self.inner.ports.main_listener(addr);
    }

    /// Copies of the apps' own listening sockets and the HTTPS one, by
    /// address, for a successor ([`Proxy::adopt_ports`]).
    pub fn port_listeners(&self) -> std::io::Result<Vec<(SocketAddr, std::net::TcpListener)>> {
        let mut out = self.inner.ports.handoff()?;
        out.extend(self.inner.https.get().and_then(|h| h.handoff()));
        Ok(out)
    }

    /// The predecessor's app ports: `restore` and deploys serve these
    /// sockets instead of binding the addresses again.
    pub fn adopt_ports(&self, listeners: Vec<(SocketAddr, std::net::TcpListener)>) {
        self.inner.ports.adopt(listeners);
    }

    /// Serves the connections apps' gateways relay to this edge on
    /// `listener` (`crate::gateway`), once the data plane runs.
    pub fn serve_gateways(&self, listener: std::net::TcpListener) -> std::io::Result<()> {
        listener.set_nonblocking(true)?;
        *lock(&self.inner.gateways) = Some(listener);
        Ok(())
    }

    /// Serves HTTPS on `addr` with `certs`: bound now when `listen_now`
    /// (the address was asked for), else when a route first wants TLS.
    pub fn enable_https(
        &self,
        certs: Arc<Certificates>,
        addr: SocketAddr,
        listen_now: bool,
    ) -> Result<(), Report> {
        let adopted = self.inner.ports.take_adopted(addr);
        let https = crate::https::Https::new(certs, addr, adopted)?;
        if listen_now {
            https.ensure_listening()?;
        }
        if self.inner.https.set(https).is_err() {
            return Err(Report::new("HTTPS is already enabled"));
        }
        self.inner.want_certificates(&self.inner.lock().live);
        Ok(())
    }

    /// Where the HTTPS listener is bound, once it is.
    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.inner.https.get().and_then(|h| h.local_addr())
    }

    /// The certificate storage's name, once HTTPS is enabled.
    pub fn certificate_storage(&self) -> Option<String> {
        self.inner
            .https
            .get()
            .and_then(|h| h.certs.storage_id().map(str::to_owned))
    }

    /// Every certificate served or being ordered.
    pub fn certificates(&self) -> Vec<CertificateStatus> {
        self.inner
            .https
            .get()
            .map(|h| h.certs.status())
            .unwrap_or_default()
    }

    /// Accept and serve on the data listener until `shutdown` fires, then stop
    /// accepting and wait for in-flight work (bounded by the drain timeout).
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> std::io::Result<()> {
        if let Ok(a) = listener.local_addr() {
            *lock(&self.inner.local_addr) = Some(a);
            self.inner.ports.main_listener(a);
        }
        server::serve(self.inner.clone(), listener, shutdown).await
    }

    /// Prometheus text exposition of the proxy's metrics.
    pub fn render_metrics(&self) -> String {
        let services = self.inner.lock();
        let live = services
            .live
            .values()
            .map(|e| gauges(&e.service, Some(&e.active), &e.draining));
        let removed = services
            .removed
            .values()
            .map(|r| gauges(&r.service, None, &r.draining));
        let all: Vec<ServiceGauges<'_>> = live.chain(removed).collect();
        let mut out = metrics::render(&all, &self.inner.unrouted, &self.inner.connections);
        drop(services);
        metrics::render_certificates(&mut out, &self.certificates(), std::time::SystemTime::now());
        self.inner.operations.render(&mut out);
        out
    }

    /// Where the deploy engine counts its operations for `/metrics`.
    pub fn operation_metrics(&self) -> &crate::OperationMetrics {
        &self.inner.operations
    }

    /// The data listener's address once `serve` has started.
    pub fn local_addr_hint(&self) -> Option<SocketAddr> {
        *lock(&self.inner.local_addr)
    }
}

/// One service's gauges: its active set (none once removed) and the sets
/// that still drain.
fn gauges<'a>(
    service: &'a Service,
    active: Option<&'a Arc<TargetSet>>,
    draining: &'a [Arc<TargetSet>],
) -> ServiceGauges<'a> {
    let (in_flight, upgraded) = active.map(|a| a.load()).unwrap_or((0, 0));
    let (mut draining_in_flight, mut draining_upgraded) = (0, 0);
    for d in draining {
        let (r, u) = d.load();
        draining_in_flight += r;
        draining_upgraded += u;
    }
    let targets = active
        .into_iter()
        .chain(draining)
        .flat_map(|s| {
            s.targets
                .iter()
                .map(move |t| (t.addr.as_str(), s.color, t.health() == Health::Healthy))
        })
        .collect();
    let idle_upstream = active
        .into_iter()
        .chain(draining)
        .flat_map(|s| s.targets.iter())
        .map(|t| t.idle_connections() as u64)
        .sum();
    ServiceGauges {
        name: &service.name,
        metrics: &service.metrics,
        idle_upstream,
        in_flight: in_flight + draining_in_flight,
        upgraded: upgraded + draining_upgraded,
        draining_in_flight,
        draining_upgraded,
        targets,
    }
}

impl From<DeployError> for Report {
    fn from(e: DeployError) -> Self {
        e.report()
    }
}

/// Whether a service is routed on the main listener by Host and path. One
/// with ports of its own and no hosts is served on those ports only, so
/// several such apps do not all claim the catch-all.
fn on_main_listener(req: &DeployRequest) -> bool {
    cutover_core::route::on_main_listener(&req.hosts, req.path_prefix.as_deref(), &req.listen)
}

mod admit;
#[cfg(test)]
mod tests;
