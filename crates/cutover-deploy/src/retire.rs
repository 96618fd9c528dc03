//! Retiring an old color after a switch, in the background.
//!
//! The proxy drains the old set on its own: in-flight requests until
//! `drain_timeout`, WebSockets until `websocket_drain_timeout` (minutes by
//! default). A deploy that waited for that would take minutes whenever a
//! WebSocket is open, and hold the project lock all along. So the deploy
//! ends at the switch and a retirement task waits for the `Drained` event,
//! then stops the container (or removes it, when it is past `keep`).
//!
//! A retiring container is neither live nor stray: observe lists it with
//! the kept versions (it will be one), the next deploy may rename it out of
//! its slot while it drains (the engine keeps id and address), and a deploy
//! or rollback that brings its version back takes it back before its stop.
//! Retirements are keyed by container id because names change.

use cutover_core::sync::lock;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cutover_core::status::Event;
use cutover_docker::Engine;
use cutover_proxy::Proxy;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::replicas;

/// What happens to a container once its drain is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    /// Stopped with this grace, and kept for a rollback.
    Stop(Duration),
    /// Removed: it is past `keep`.
    Remove,
}

/// One container being retired.
pub struct Retiring {
    pub project: String,
    pub service: String,
    /// The proxy's set of the old color, drained before the stop; `None`
    /// when nothing routed to it.
    pub set_id: Option<u64>,
    /// The longest the drain may take before the container goes anyway.
    pub limit: Duration,
    pub then: Then,
}

struct Entry {
    /// Tells this retirement from a later one of the same container.
    generation: u64,
    project: String,
    then: Then,
    /// Set once the final stop or removal has begun: from then on the
    /// container can no longer be taken back, only waited for.
    acting: bool,
    /// Held while the retirement stops or removes the container, and by a
    /// deploy renaming it: the engine fails a removal racing a rename
    /// ("unlinkat …: directory not empty") and leaves it half-removed.
    engine_op: Arc<tokio::sync::Mutex<()>>,
    cancel: CancellationToken,
    finished: CancellationToken,
}

/// The retirements under way; cheap to clone, clones share them.
#[derive(Clone, Default)]
pub struct Retirements {
    entries: Arc<Mutex<BTreeMap<String, Entry>>>,
    generations: Arc<AtomicU64>,
    tasks: TaskTracker,
}

impl Retirements {
    /// Starts retiring container `id`. `events` must have been subscribed
    /// before the switch, so a drain faster than this call is not missed.
    pub(crate) fn start(
        &self,
        engine: Arc<dyn Engine>,
        proxy: Proxy,
        id: String,
        what: Retiring,
        events: broadcast::Receiver<Event>,
    ) {
        let cancel = CancellationToken::new();
        let finished = CancellationToken::new();
        let generation = self.generations.fetch_add(1, Ordering::Relaxed);
        let previous = lock(&self.entries).insert(
            id.clone(),
            Entry {
                generation,
                project: what.project.clone(),
                then: what.then,
                acting: false,
                engine_op: Arc::default(),
                cancel: cancel.clone(),
                finished: finished.clone(),
            },
        );
        if let Some(previous) = previous {
            // Retired again before its first retirement acted (it came back
            // and left again): only the newest drain counts.
            previous.cancel.cancel();
        }
        let entries = self.entries.clone();
        self.tasks.spawn(async move {
            let _finished = finished.drop_guard();
            let drained = tokio::select! {
                _ = cancel.cancelled() => return,
                d = tokio::time::timeout(what.limit, drained(&proxy, what.set_id, events)) => d,
            };
            let (then, engine_op) = {
                let mut map = lock(&entries);
                match map.get_mut(&id) {
                    Some(e) if e.generation == generation && !e.cancel.is_cancelled() => {
                        e.acting = true;
                        (e.then, e.engine_op.clone())
                    }
                    _ => return,
                }
            };
            let _engine_op = engine_op.lock_owned().await;
            match drained {
                Ok(Some((cut, closed))) if cut + closed > 0 => tracing::info!(
                    project = %what.project, service = %what.service, container = %id,
                    cut_requests = cut, closed_websockets = closed,
                    "the drain deadline of the old color ended its last connections"
                ),
                Ok(_) => {}
                Err(_) => tracing::warn!(
                    project = %what.project, service = %what.service, container = %id,
                    limit = ?what.limit, "the old color did not drain in time; retiring it anyway"
                ),
            }
            let result = match then {
                Then::Stop(grace) => replicas::stop(&*engine, &id, grace).await,
                Then::Remove => replicas::remove(&*engine, &id).await,
            };
            match result {
                Ok(()) => tracing::info!(
                    project = %what.project, service = %what.service, container = %id,
                    action = ?then, "retired the old color"
                ),
                Err(e) => tracing::warn!(
                    project = %what.project, service = %what.service, container = %id,
                    error = %e, "cannot retire the old color; it gets no traffic. The next deploy or start retries"
                ),
            }
            let mut map = lock(&entries);
            if map.get(&id).is_some_and(|e| e.generation == generation) {
                map.remove(&id);
            }
        });
    }

    /// Whether container `id` is draining before its stop.
    pub fn is_retiring(&self, id: &str) -> bool {
        lock(&self.entries).contains_key(id)
    }

    /// Whether container `id` is removed once drained (past `keep`, or a
    /// copy of the version that now serves): no version kept for rollback.
    pub fn is_going(&self, id: &str) -> bool {
        lock(&self.entries)
            .get(id)
            .is_some_and(|e| matches!(e.then, Then::Remove))
    }

    /// Keeps the retirement of container `id` (if any) from stopping or
    /// removing it until the guard drops; waits while it does so now.
    pub(crate) async fn exclusive(&self, id: &str) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        let op = lock(&self.entries).get(id).map(|e| e.engine_op.clone())?;
        Some(op.lock_owned().await)
    }

    /// Whether container `id` is drained and its stop is under way.
    pub fn is_stopping(&self, id: &str) -> bool {
        lock(&self.entries).get(id).is_some_and(|e| e.acting)
    }

    /// Takes container `id` back from its retirement (it is going live
    /// again). Returns once it is safe to start it: at once when the stop
    /// had not begun, else when the stop is over.
    pub(crate) async fn take_back(&self, id: &str) {
        let waiting = {
            let mut map = lock(&self.entries);
            match map.get(id) {
                None => return,
                Some(e) if e.acting => e.finished.clone(),
                Some(_) => {
                    let e = map.remove(id).expect("looked up");
                    e.cancel.cancel();
                    return;
                }
            }
        };
        waiting.cancelled().await;
    }

    /// Makes a retiring container go entirely once drained. False when it
    /// is not retiring (or its stop has already begun).
    pub(crate) fn remove_when_done(&self, id: &str) -> bool {
        match lock(&self.entries).get_mut(id) {
            Some(e) if !e.acting => {
                e.then = Then::Remove;
                true
            }
            _ => false,
        }
    }

    /// Ends the retirements of `project` without acting (its containers
    /// are about to be removed), and waits for any stop already begun.
    pub(crate) async fn forget_project(&self, project: &str) {
        let ids: Vec<String> = lock(&self.entries)
            .iter()
            .filter(|(_, e)| e.project == project)
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            self.take_back(&id).await;
        }
    }

    /// At daemon shutdown: stop waiting. Containers still draining keep
    /// running; the next start retires them (see `reconcile`).
    pub fn cancel_all(&self) {
        for e in lock(&self.entries).values() {
            if !e.acting {
                e.cancel.cancel();
            }
        }
        self.tasks.close();
    }

    /// Until every retirement under way has ended (tests use it to see
    /// the outcome of a drain without guessing at its timing).
    pub async fn settled(&self) {
        self.tasks.close();
        self.tasks.wait().await;
        self.tasks.reopen();
    }
}

/// Until the proxy reports set `set_id` drained; with what its deadlines
/// cut (requests) and closed (WebSockets) when the event said.
async fn drained(
    proxy: &Proxy,
    set_id: Option<u64>,
    mut events: broadcast::Receiver<Event>,
) -> Option<(u64, u64)> {
    let set_id = set_id?;
    let gone = || {
        !proxy
            .status()
            .iter()
            .any(|s| s.draining.iter().any(|d| d.id == set_id))
    };
    loop {
        match events.recv().await {
            Ok(Event::Drained {
                set_id: id,
                cut_requests,
                closed_websockets,
                ..
            }) if id == set_id => return Some((cut_requests, closed_websockets)),
            Ok(_) => {}
            // Missed events: the set is drained when the proxy no longer
            // lists it.
            Err(broadcast::error::RecvError::Lagged(_)) => {
                if gone() {
                    return None;
                }
            }
            Err(broadcast::error::RecvError::Closed) => return None,
        }
    }
}
