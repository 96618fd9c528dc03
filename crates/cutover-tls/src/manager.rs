//! [`Certificates`]: what the routes ask for, turned into certificates
//! served. Static files are loaded and watched; automatic hosts are loaded
//! from storage or ordered, then renewed; on-demand names are ordered at
//! their first handshake once the ask endpoint allows them.
//!
//! Lifecycle of an automatic host:
//!
//! ```text
//!  wanted ──▶ due ──stored & not due──▶ served ──renew_at──▶ due
//!              │                          │  ▲
//!              │                          │  └─recheck: the CA's window
//!              │                          │    (ARI) asked again
//!              ├─another daemon orders────┤ (re-read in 2 s)
//!              ├─limit──▶ waiting ────────┤
//!              └─order──ok────────────────┘
//!                   └─fails──▶ backoff ──▶ due
//! ```
//!
//! "Not due" is [`Plan`]'s: a third of the lifetime left, or the time drawn
//! in the CA's renewal window when its directory has ARI.
//!
//! A failure never takes a certificate away: the one served keeps being
//! served until it expires, and plain HTTP is never touched.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use cutover_core::sync::lock;
use cutover_core::tls::{CertificateSource, CertificateStatus};
use instant_acme::ChallengeType;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::acme::{Acme, AcmeSettings, OrderError};
use crate::challenge::Challenges;
use crate::limits::{backoff, Limits};
use crate::on_demand::Ask;
use crate::pem::{load, Loaded};
use crate::renewal::Plan;
use crate::storage::{create_private_dir, identity, Storage};
use crate::store::Store;
use rustls_pki_types::CertificateDer;

/// The daemon's TLS settings (`cutover serve` flags).
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// `<state dir>/certificates`.
    pub storage: PathBuf,
    /// `None`: automatic certificates are off (static files still work).
    pub acme: Option<AcmeSettings>,
    /// Whether the HTTPS listener runs, so TLS-ALPN-01 can be answered.
    pub tls_alpn: bool,
    /// `--tls-on-demand-ask`: `http://` URL asked `?domain=NAME`.
    pub on_demand_ask: Option<String>,
    /// `--tls-default-host`: whose certificate a client without SNI gets.
    pub default_host: Option<String>,
    /// Hosts ordered whatever the routes want: the control listener's
    /// `--control-tls-host`.
    pub standing_hosts: Vec<String>,
}

/// The service name a standing host is ordered for, in status and logs.
pub const CONTROL_SERVICE: &str = "cutover/control-api";

/// What one route asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Want {
    pub service: String,
    pub hosts: Vec<String>,
    pub source: CertificateSource,
}

/// How often static files are checked for a change.
const FILE_CHECK: Duration = Duration::from_secs(2);
/// How long a daemon waits before it re-reads a host another daemon orders.
const HELD_ELSEWHERE: Duration = Duration::from_secs(2);

pub struct Certificates {
    pub(crate) store: Arc<Store>,
    pub(crate) challenges: Arc<Challenges>,
    acme: Option<Arc<Acme>>,
    settings: TlsSettings,
    state: Mutex<State>,
    wake: Notify,
    pub(crate) ask: Option<Ask>,
    /// Any route is `on_demand`: handshakes for unknown names are looked at.
    on_demand_on: AtomicBool,
    /// The storage's name (`storage::identity`); `None` if it could not
    /// be read or written (logged).
    storage_id: Option<String>,
}

#[derive(Default)]
struct State {
    /// Automatic and on-demand hosts, by name.
    hosts: BTreeMap<String, Managed>,
    /// Static certificates, by (cert, key) path.
    files: BTreeMap<(String, String), Files>,
    /// Host patterns of on-demand routes; `None` in it: any name.
    on_demand: Vec<(String, Option<String>)>,
}

struct Managed {
    services: BTreeSet<String>,
    on_demand: bool,
    served: Option<Loaded>,
    next: Instant,
    /// When `served` is renewed, and when the CA is asked again.
    plan: Option<Plan>,
    /// Failed orders in a row, for the backoff.
    attempts: u32,
    last_error: Option<String>,
    busy: bool,
}

struct Files {
    services: BTreeSet<String>,
    hosts: Vec<String>,
    stamp: Option<(SystemTime, u64, SystemTime, u64)>,
    served: Option<Loaded>,
    last_error: Option<String>,
}

impl Certificates {
    /// Whether wildcard hosts can get certificates: DNS-01 is published by
    /// `--acme-dns-hook`.
    pub fn dns01(&self) -> bool {
        self.acme
            .as_ref()
            .is_some_and(|a| a.settings.dns_hook.is_some())
    }

    pub fn new(settings: TlsSettings) -> Result<Arc<Certificates>, String> {
        create_private_dir(&settings.storage)
            .map_err(|e| format!("cannot create {}: {e}", settings.storage.display()))?;
        let acme = match &settings.acme {
            Some(a) => {
                let storage = Storage::open(&settings.storage, &a.directory)
                    .map_err(|e| format!("cannot create the certificate storage: {e}"))?;
                Some(Arc::new(Acme::new(a.clone(), storage)))
            }
            None => None,
        };
        let storage_id = match identity(&settings.storage) {
            Ok(id) => Some(id),
            Err(e) => {
                tracing::warn!(dir = %settings.storage.display(), error = %e, "cannot name the certificate storage");
                None
            }
        };
        let store = Arc::new(Store::default());
        store.set_default(self_signed_default()?);
        Ok(Arc::new(Certificates {
            store,
            challenges: Arc::new(Challenges::new(settings.storage.join("challenges"))),
            acme,
            ask: settings.on_demand_ask.clone().map(Ask::new),
            settings,
            state: Mutex::default(),
            wake: Notify::new(),
            on_demand_on: AtomicBool::new(false),
            storage_id,
        }))
    }

    /// The name of the certificate storage: daemons that share it report
    /// the same one.
    pub fn storage_id(&self) -> Option<&str> {
        self.storage_id.as_deref()
    }

    /// The certificate served for `host`, once there is one: what the
    /// control listener serves for `--control-tls-host`.
    pub fn served(&self, host: &str) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.store.exact(&host.to_ascii_lowercase())
    }

    /// The HTTP-01 answer for `token`, if an order waits for it.
    pub fn http01(&self, token: &str) -> Option<String> {
        self.challenges.http01(token)
    }

    /// Replaces what the routes ask for. Returns a warning per route that
    /// asks for something this daemon cannot do (automatic TLS with ACME
    /// off, on-demand TLS with no ask endpoint), for the deploy to print.
    pub fn set_wanted(&self, wants: &[Want]) -> Vec<String> {
        let mut warnings = Vec::new();
        let mut st = lock(&self.state);
        let mut hosts: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut files: BTreeMap<(String, String), (BTreeSet<String>, Vec<String>)> =
            BTreeMap::new();
        let mut on_demand = Vec::new();
        let standing = (!self.settings.standing_hosts.is_empty()).then(|| Want {
            service: CONTROL_SERVICE.into(),
            hosts: self.settings.standing_hosts.clone(),
            source: CertificateSource::Automatic,
        });
        for w in wants.iter().chain(standing.as_ref()) {
            match &w.source {
                CertificateSource::Automatic => {
                    if self.acme.is_none() {
                        warnings.push(format!("{}: tls: true, but this daemon orders no certificates (cutover serve --acme-directory is off)", w.service));
                        continue;
                    }
                    for h in &w.hosts {
                        hosts
                            .entry(h.to_ascii_lowercase())
                            .or_default()
                            .insert(w.service.clone());
                    }
                }
                CertificateSource::OnDemand => {
                    if self.ask.is_none() || self.acme.is_none() {
                        warnings.push(format!("{}: tls: on_demand, but the daemon has no --tls-on-demand-ask endpoint; no certificate will be ordered", w.service));
                        continue;
                    }
                    if w.hosts.is_empty() {
                        on_demand.push((w.service.clone(), None));
                    }
                    for h in &w.hosts {
                        on_demand.push((w.service.clone(), Some(h.to_ascii_lowercase())));
                    }
                }
                CertificateSource::Files { cert, key } => {
                    let e = files.entry((cert.clone(), key.clone())).or_default();
                    e.0.insert(w.service.clone());
                    e.1.extend(w.hosts.iter().map(|h| h.to_ascii_lowercase()));
                }
            }
        }
        // Automatic hosts: new ones are due now; gone ones stop being served
        // (their stored certificate stays for a later deploy), and so do
        // on-demand names no on-demand route matches any more.
        let still_on_demand = |h: &str| {
            on_demand
                .iter()
                .any(|(_, p): &(String, Option<String>)| p.as_deref().is_none_or(|p| covers(p, h)))
        };
        let gone: Vec<String> = st
            .hosts
            .iter()
            .filter(|(h, m)| match m.on_demand {
                true => !still_on_demand(h),
                false => !hosts.contains_key(*h),
            })
            .map(|(h, _)| h.clone())
            .collect();
        for h in gone {
            st.hosts.remove(&h);
            self.store.remove(std::slice::from_ref(&h));
        }
        for (h, services) in hosts {
            let m = st.hosts.entry(h).or_insert_with(Managed::due);
            m.services = services;
            m.on_demand = false;
        }
        // Static files: (re)loaded by the watcher; gone ones unserved.
        let gone: Vec<(String, String)> = st
            .files
            .keys()
            .filter(|k| !files.contains_key(*k))
            .cloned()
            .collect();
        for k in gone {
            if let Some(f) = st.files.remove(&k) {
                self.store.remove(&served_names(&f));
            }
        }
        for (k, (services, names)) in files {
            let f = st.files.entry(k).or_insert_with(|| Files {
                services: BTreeSet::new(),
                hosts: Vec::new(),
                stamp: None,
                served: None,
                last_error: None,
            });
            f.services = services;
            if f.hosts != names {
                self.store.remove(&served_names(f));
                f.hosts = names;
                f.stamp = None;
            }
        }
        self.on_demand_on
            .store(!on_demand.is_empty(), Ordering::Relaxed);
        st.on_demand = on_demand;
        drop(st);
        self.check_files();
        self.wake.notify_one();
        warnings
    }

    /// Every certificate, for `cutover status` and the metrics.
    pub fn status(&self) -> Vec<CertificateStatus> {
        let st = lock(&self.state);
        let now = Instant::now();
        let wall = |at: Instant| SystemTime::now() + at.saturating_duration_since(now);
        let mut out: Vec<CertificateStatus> = st
            .hosts
            .iter()
            .map(|(h, m)| CertificateStatus {
                hosts: vec![h.clone()],
                services: m.services.iter().cloned().collect(),
                source: if m.on_demand { "on_demand" } else { "acme" }.into(),
                issuer: m.served.as_ref().map(|l| l.facts.issuer.clone()),
                not_after: m.served.as_ref().map(|l| l.facts.not_after),
                // While orders fail, the next attempt; else the plan's
                // renewal, not the next ask of the CA.
                next_renewal: Some(match &m.plan {
                    Some(p) if m.last_error.is_none() => p.renew_at,
                    _ => wall(m.next),
                }),
                renewal_window: m.plan.as_ref().and_then(|p| p.window.clone()),
                last_error: m.last_error.clone(),
            })
            .collect();
        out.extend(st.files.iter().map(|((cert, _), f)| CertificateStatus {
            hosts: served_names(f),
            services: f.services.iter().cloned().collect(),
            source: "files".into(),
            issuer: f.served.as_ref().map(|l| l.facts.issuer.clone()),
            not_after: f.served.as_ref().map(|l| l.facts.not_after),
            next_renewal: None,
            renewal_window: None,
            last_error: f.last_error.clone().map(|e| format!("{cert}: {e}")),
        }));
        out
    }

    /// Orders, renewals and file checks, until `stop` is set.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        while !stop.is_cancelled() {
            self.check_files();
            let due = self.take_due();
            for host in due {
                let me = self.clone();
                tokio::spawn(async move { me.obtain(&host).await });
            }
            let sleep = self.next_wake().min(FILE_CHECK);
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = self.wake.notified() => {}
                _ = stop.cancelled() => break,
            }
        }
    }

    fn take_due(&self) -> Vec<String> {
        let mut st = lock(&self.state);
        let now = Instant::now();
        st.hosts
            .iter_mut()
            .filter(|(_, m)| !m.busy && m.next <= now)
            .map(|(h, m)| {
                m.busy = true;
                h.clone()
            })
            .collect()
    }

    fn next_wake(&self) -> Duration {
        let st = lock(&self.state);
        let now = Instant::now();
        st.hosts
            .values()
            .filter(|m| !m.busy)
            .map(|m| m.next.saturating_duration_since(now))
            .min()
            .unwrap_or(Duration::from_secs(3600))
            .max(Duration::from_millis(50))
    }

    /// Records an outcome of `host`'s order in the stored rate-limit counts.
    fn count(&self, host: &str, f: impl FnOnce(&mut Limits, u64)) {
        let Some(acme) = &self.acme else {
            return;
        };
        let now_ms = cutover_core::clock::now_ms();
        if let Err(e) = acme.storage.update_limits(now_ms, |l| f(l, now_ms)) {
            tracing::warn!(host, error = %e, "cannot record the order in the rate-limit counts");
        }
    }

    /// One pass for `host`: stored and fresh, or ordered; then scheduled.
    async fn obtain(&self, host: &str) {
        let planned = {
            let st = lock(&self.state);
            st.hosts.get(host).and_then(|m| {
                let leaf = m.served.as_ref()?.leaf().clone();
                Some((leaf, m.plan.clone()?))
            })
        };
        let outcome = self.obtain_once(host, planned).await;
        match &outcome {
            Obtained::Served(_, true, _) => self.count(host, |l, now| l.issued(host, now)),
            Obtained::Failed(_, validations) if *validations > 0 => self.count(host, |l, now| {
                for _ in 0..*validations {
                    l.failed(host, now);
                }
            }),
            _ => {}
        }
        let mut st = lock(&self.state);
        let Some(m) = st.hosts.get_mut(host) else {
            return;
        };
        m.busy = false;
        let now = Instant::now();
        match outcome {
            Obtained::Served(loaded, _, plan) => {
                m.next = now
                    + plan
                        .wake_at()
                        .duration_since(SystemTime::now())
                        .unwrap_or(Duration::ZERO);
                m.plan = Some(plan);
                m.attempts = 0;
                m.last_error = None;
                self.serve(host, &loaded);
                m.served = Some(loaded);
            }
            Obtained::Elsewhere => m.next = now + HELD_ELSEWHERE,
            Obtained::Wait(until, why) => {
                m.next = until;
                m.last_error = Some(format!("waiting: {why}"));
            }
            Obtained::Failed(why, _) => {
                m.attempts += 1;
                let base = self
                    .acme
                    .as_ref()
                    .map_or(Duration::from_secs(60), |a| a.settings.retry_base);
                m.next = now + backoff(base, m.attempts, rand::random());
                tracing::warn!(host, error = %why, retry_in = ?m.next.duration_since(now), "certificate order failed; HTTPS for it keeps what it had");
                m.last_error = Some(why);
            }
        }
        drop(st);
        self.wake.notify_one();
    }

    /// `planned`: the certificate served and its plan, whose drawn renewal
    /// time is kept to rather than drawn again.
    async fn obtain_once(
        &self,
        host: &str,
        planned: Option<(CertificateDer<'static>, Plan)>,
    ) -> Obtained {
        let Some(acme) = &self.acme else {
            return Obtained::Failed("automatic certificates are off".into(), 0);
        };
        let renewing = match stored(&acme.storage, host) {
            Some(l) => match not_due(acme, &l, planned.as_ref()).await {
                Some(plan) => return Obtained::Served(l, false, plan),
                None => Some(l),
            },
            None => None,
        };
        if host.starts_with("*.") && acme.settings.dns_hook.is_none() {
            return Obtained::Failed(cutover_core::tls::wildcard_needs_dns(host).message, 0);
        }
        let _lock = match acme.storage.try_lock(host) {
            Ok(Some(l)) => l,
            Ok(None) => return Obtained::Elsewhere,
            Err(e) => {
                return Obtained::Failed(format!("cannot lock the certificate storage: {e}"), 0)
            }
        };
        // Another daemon may have finished the order just before the lock.
        if let Some(l) = stored(&acme.storage, host) {
            if renewing.as_ref().map(Loaded::leaf) != Some(l.leaf()) {
                if let Some(plan) = not_due(acme, &l, None).await {
                    return Obtained::Served(l, false, plan);
                }
            }
        }
        let now_ms = cutover_core::clock::now_ms();
        match acme
            .storage
            .update_limits(now_ms, |l| l.start(host, now_ms))
        {
            Ok(Ok(())) => {}
            Ok(Err(w)) => {
                let until = Instant::now() + Duration::from_millis(w.until.saturating_sub(now_ms));
                return Obtained::Wait(until, w.why);
            }
            // Uncounted, an order could go past the CA's limits.
            Err(e) => {
                return Obtained::Failed(
                    format!("cannot count the order against the rate limits: {e}"),
                    0,
                )
            }
        }
        let kinds = challenge_kinds(
            host,
            self.settings.tls_alpn,
            acme.settings.dns_hook.is_some(),
        );
        let mut errors = Vec::new();
        let mut validations = 0;
        for kind in kinds {
            tracing::info!(host, challenge = ?kind, directory = %acme.settings.directory, "ordering a certificate");
            let replaces = renewing.as_ref().map(Loaded::leaf);
            match acme
                .order(host, kind.clone(), &self.challenges, replaces)
                .await
            {
                Ok((chain, key)) => {
                    if let Err(e) = acme.storage.save(host, &chain, &key) {
                        return Obtained::Failed(
                            format!("cannot store the certificate: {e}"),
                            validations,
                        );
                    }
                    return match load(chain.as_bytes(), key.as_bytes()) {
                        Ok(l) => {
                            tracing::info!(host, issuer = %l.facts.issuer, "certificate issued");
                            let ari = acme.renewal_info(l.leaf()).await;
                            let plan = Plan::new(&l.facts, ari, rand::random(), SystemTime::now());
                            Obtained::Served(l, true, plan)
                        }
                        Err(e) => Obtained::Failed(
                            format!("the CA's certificate cannot be used: {e}"),
                            validations,
                        ),
                    };
                }
                Err(OrderError::Validation(e)) => {
                    tracing::warn!(host, challenge = ?kind, error = %e, "validation failed; trying the next challenge type if any");
                    validations += 1;
                    errors.push(e);
                }
                Err(OrderError::Other(e)) => {
                    errors.push(e);
                    break;
                }
            }
        }
        Obtained::Failed(errors.join("; then "), validations)
    }

    fn serve(&self, host: &str, loaded: &Loaded) {
        self.store.put(&[host.to_string()], loaded.key.clone());
        if self.settings.default_host.as_deref() == Some(host) {
            self.store.set_default(loaded.key.clone());
        }
    }

    /// Loads static files that are new or changed since the last look.
    fn check_files(&self) {
        let mut st = lock(&self.state);
        for ((cert, key), f) in st.files.iter_mut() {
            let stamp = stamp(cert)
                .zip(stamp(key))
                .map(|(a, b)| (a.0, a.1, b.0, b.1));
            if stamp.is_some() && stamp == f.stamp {
                continue;
            }
            f.stamp = stamp;
            let read = std::fs::read(cert)
                .map_err(|e| format!("cannot read it: {e}"))
                .and_then(|c| {
                    Ok((
                        c,
                        std::fs::read(key).map_err(|e| format!("cannot read {key}: {e}"))?,
                    ))
                });
            match read.and_then(|(c, k)| load(&c, &k)) {
                Ok(l) => {
                    let reloaded = f.served.is_some();
                    let old = served_names(f);
                    f.served = Some(l);
                    let names = served_names(f);
                    self.store.remove(&old);
                    self.store
                        .put(&names, f.served.as_ref().expect("just set").key.clone());
                    if let Some(d) = &self.settings.default_host {
                        if names.contains(d) {
                            self.store
                                .set_default(f.served.as_ref().expect("just set").key.clone());
                        }
                    }
                    f.last_error = None;
                    tracing::info!(cert = %cert, reloaded, "certificate files loaded");
                }
                Err(e) => {
                    // The pair served before (if any) stays: a half-copied
                    // renewal must not take HTTPS down.
                    tracing::warn!(cert = %cert, error = %e, "certificate files cannot be used; serving what was loaded before");
                    f.last_error = Some(e);
                }
            }
        }
    }

    /// Whether a handshake for `name` may get an on-demand certificate:
    /// an on-demand route matches it and the ask endpoint allows it. Starts
    /// the order and waits for it (bounded) when so.
    pub(crate) async fn on_demand(&self, name: &str) {
        if !self.on_demand_on.load(Ordering::Relaxed) || self.store.exact(name).is_some() {
            return;
        }
        let services: BTreeSet<String> = {
            let st = lock(&self.state);
            if st.hosts.contains_key(name) {
                BTreeSet::new()
            } else {
                st.on_demand
                    .iter()
                    .filter(|(_, p)| p.as_deref().is_none_or(|p| covers(p, name)))
                    .map(|(s, _)| s.clone())
                    .collect()
            }
        };
        let Some(ask) = &self.ask else { return };
        if !services.is_empty() {
            if !ask.allows(name).await {
                return;
            }
            let mut st = lock(&self.state);
            let m = st
                .hosts
                .entry(name.to_string())
                .or_insert_with(Managed::due);
            m.on_demand = true;
            m.services = services;
            drop(st);
            self.wake.notify_one();
        }
        // Wait for the order under way (started now or by an earlier
        // handshake), bounded so a stuck CA never holds a socket for long.
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let done = {
                let st = lock(&self.state);
                match st.hosts.get(name) {
                    Some(m) => m.served.is_some() || (m.last_error.is_some() && !m.busy),
                    None => true,
                }
            };
            if done || self.store.exact(name).is_some() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The challenges to try for `host`, in order: a wildcard is validated by
/// DNS-01 alone; another name by TLS-ALPN-01 (on the HTTPS listener, no
/// port 80 needed), then HTTP-01, then DNS-01 when a hook publishes it.
fn challenge_kinds(host: &str, tls_alpn: bool, dns_hook: bool) -> Vec<ChallengeType> {
    if host.starts_with("*.") {
        return vec![ChallengeType::Dns01];
    }
    let mut kinds = Vec::new();
    if tls_alpn {
        kinds.push(ChallengeType::TlsAlpn01);
    }
    kinds.push(ChallengeType::Http01);
    if dns_hook {
        kinds.push(ChallengeType::Dns01);
    }
    kinds
}

enum Obtained {
    /// The certificate to serve (`true` when just ordered) and its plan.
    Served(Loaded, bool, Plan),
    Elsewhere,
    Wait(Instant, String),
    /// Why, and how many validations failed on the way.
    Failed(String, usize),
}

impl Managed {
    fn due() -> Managed {
        Managed {
            services: BTreeSet::new(),
            on_demand: false,
            served: None,
            next: Instant::now(),
            plan: None,
            attempts: 0,
            last_error: None,
            busy: false,
        }
    }
}

/// The stored certificate for `host`, if there is a usable one.
fn stored(storage: &Storage, host: &str) -> Option<Loaded> {
    match storage.load(host) {
        Ok(stored) => stored.map(|(l, _)| l),
        Err(e) => {
            tracing::warn!(host, error = %e, "stored certificate unusable; ordering a new one");
            None
        }
    }
}

/// The plan for `l` while it is not due yet; `None` once it is: a third
/// of its life left, the time `planned` for it come, or the CA's window
/// (asked now) passed.
async fn not_due(
    acme: &Acme,
    l: &Loaded,
    planned: Option<&(CertificateDer<'static>, Plan)>,
) -> Option<Plan> {
    let now = SystemTime::now();
    let previous = planned.and_then(|(leaf, p)| (leaf == l.leaf()).then_some(p));
    if l.facts.renew_at() <= now || previous.is_some_and(|p| p.due(now)) {
        return None;
    }
    let plan = Plan::new(
        &l.facts,
        acme.renewal_info(l.leaf()).await,
        rand::random(),
        now,
    );
    let plan = match previous {
        Some(p) => plan.keeping(p),
        None => plan,
    };
    if !plan.due(now) {
        return Some(plan);
    }
    let why = plan.window.as_ref().and_then(|w| w.explanation.as_deref());
    tracing::info!(names = ?l.facts.names, why, "the CA's renewal window has come; renewing early");
    None
}

/// The names a static certificate is served for: the route's hosts, or
/// its own names when the route has none.
fn served_names(f: &Files) -> Vec<String> {
    if !f.hosts.is_empty() {
        return f.hosts.clone();
    }
    f.served
        .as_ref()
        .map(|l| l.facts.names.clone())
        .unwrap_or_default()
}

fn stamp(path: &str) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// Whether the route host `pattern` (exact or `*.`) covers `name`.
fn covers(pattern: &str, name: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => name
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
        None => pattern == name,
    }
}

/// What a client without SNI gets until `--tls-default-host` has a
/// certificate: a self-signed one, so its handshake completes.
fn self_signed_default() -> Result<Arc<rustls::sign::CertifiedKey>, String> {
    let fail = |e: rcgen::Error| format!("cannot make the default certificate: {e}");
    let key = rcgen::KeyPair::generate().map_err(fail)?;
    let mut params =
        rcgen::CertificateParams::new(vec!["cutover.invalid".to_string()]).map_err(fail)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "cutover default certificate");
    let cert = params.self_signed(&key).map_err(fail)?;
    load(cert.pem().as_bytes(), key.serialize_pem().as_bytes()).map(|l| l.key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_patterns_cover_one_label() {
        assert!(covers("*.shop.example", "a.shop.example"));
        assert!(!covers("*.shop.example", "a.b.shop.example"));
        assert!(!covers("*.shop.example", "shop.example"));
        assert!(covers("a.example", "a.example"));
    }
}
