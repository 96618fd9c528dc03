//! One upstream address and the set of them that serves a service's color,
//! with a small per-target pool of idle HTTP/1.1 connections.
//!
//! Pools belong to a target of one set, never to an address: after a switch
//! the old set's pool is emptied and its connections are not reused, even if a
//! new target happens to share the address. Each pool is sharded by data-plane
//! thread: a connection's task runs on the thread that opened it, so reusing it
//! from the same thread keeps a request off other cores.

use cutover_core::sync::lock;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cutover_core::clock::now_ms;

use cutover_core::service::Color;
use cutover_core::status::{Health, SetState, TargetSetStatus, TargetStatus};
use cutover_core::target::Lifecycle;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::upstream::Conn;

/// Idle connections kept per target; beyond this a finished connection closes.
const MAX_IDLE_PER_TARGET: usize = 256;

/// A pooled connection and when it was checked in. The newest is reused
/// first, so the oldest are the ones that go idle and expire.
type Pool = VecDeque<(Conn, Instant)>;

/// A pooled connection idle this long is checked before it is used (one
/// non-blocking read): long enough that a busy pool never pays for it,
/// short next to the keep-alive timeouts that make origins close them.
const CHECK_AFTER_IDLE: Duration = Duration::from_millis(5);

const HEALTH_UNKNOWN: u8 = 0;
const HEALTH_HEALTHY: u8 = 1;
const HEALTH_UNHEALTHY: u8 = 2;

pub(crate) struct Target {
    pub addr: String,
    /// Parsed once so the common `ip:port` case skips name resolution.
    socket_addr: Option<SocketAddr>,
    health: AtomicU8,
    last_error: Mutex<Option<String>>,
    pub in_flight: AtomicU64,
    pub upgraded: AtomicU64,
    /// One shard per data-plane thread (index `server::worker_slot()`).
    pool: Box<[Mutex<Pool>]>,
}

impl Target {
    fn new(addr: String, health: Health) -> Self {
        Target {
            socket_addr: addr.parse().ok(),
            addr,
            health: AtomicU8::new(encode(health)),
            last_error: Mutex::new(None),
            in_flight: AtomicU64::new(0),
            upgraded: AtomicU64::new(0),
            pool: (0..crate::worker::pool_shards())
                .map(|_| Mutex::new(VecDeque::new()))
                .collect(),
        }
    }

    pub fn health(&self) -> Health {
        match self.health.load(Ordering::Relaxed) {
            HEALTH_HEALTHY => Health::Healthy,
            HEALTH_UNHEALTHY => Health::Unhealthy,
            _ => Health::Unknown,
        }
    }

    pub fn is_healthy(&self) -> bool {
        self.health.load(Ordering::Relaxed) == HEALTH_HEALTHY
    }

    /// Records a probe (or connect) result; returns the previous health when it
    /// changed so the caller can emit an event.
    pub fn set_health(&self, health: Health, error: Option<String>) -> Option<Health> {
        let prev = self.health.swap(encode(health), Ordering::Relaxed);
        let mut last = lock(&self.last_error);
        if error.is_some() || health == Health::Healthy {
            *last = error;
        }
        (prev != encode(health)).then(|| decode(prev))
    }

    pub fn last_error(&self) -> Option<String> {
        lock(&self.last_error).clone()
    }

    /// A connection ready for a request: an idle pooled one or a new one.
    /// Nothing has been sent when this fails, so the caller may try elsewhere.
    pub async fn checkout(&self, connect_timeout: Duration) -> Result<Conn, String> {
        loop {
            let pooled = lock(self.shard()).pop_back();
            let Some((conn, since)) = pooled else { break };
            if since.elapsed() < CHECK_AFTER_IDLE || conn.still_open() {
                return Ok(conn);
            }
        }
        self.connect(connect_timeout).await
    }

    pub async fn connect(&self, connect_timeout: Duration) -> Result<Conn, String> {
        let connecting = async {
            match self.socket_addr {
                Some(a) => TcpStream::connect(a).await,
                None => TcpStream::connect(self.addr.as_str()).await,
            }
        };
        let stream = match tokio::time::timeout(connect_timeout, connecting).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(format!("connect to {}: {e}", self.addr)),
            Err(_) => {
                return Err(format!(
                    "connect to {}: timed out after {connect_timeout:?}",
                    self.addr
                ))
            }
        };
        let _ = stream.set_nodelay(true);
        Ok(Conn::new(stream))
    }

    pub fn checkin(&self, conn: Conn) {
        let mut pool = lock(self.shard());
        if pool.len() < MAX_IDLE_PER_TARGET {
            pool.push_back((conn, Instant::now()));
        }
    }

    /// Pooled connections waiting for a request.
    pub fn idle_connections(&self) -> usize {
        self.pool.iter().map(|shard| lock(shard).len()).sum()
    }

    /// Closes pooled connections idle for longer than `idle`.
    pub fn expire_idle(&self, idle: Duration) {
        let now = Instant::now();
        for shard in self.pool.iter() {
            let mut pool = lock(shard);
            while pool
                .front()
                .is_some_and(|(_, since)| now.duration_since(*since) >= idle)
            {
                pool.pop_front();
            }
        }
    }

    pub fn clear_pool(&self) {
        for shard in self.pool.iter() {
            lock(shard).clear();
        }
    }

    fn shard(&self) -> &Mutex<Pool> {
        &self.pool[crate::worker::worker_slot() % self.pool.len()]
    }

    fn status(&self) -> TargetStatus {
        TargetStatus {
            addr: self.addr.clone(),
            health: self.health(),
            last_error: self.last_error(),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            upgraded: self.upgraded.load(Ordering::Relaxed),
        }
    }
}

fn encode(h: Health) -> u8 {
    match h {
        Health::Unknown => HEALTH_UNKNOWN,
        Health::Healthy => HEALTH_HEALTHY,
        Health::Unhealthy => HEALTH_UNHEALTHY,
    }
}

fn decode(v: u8) -> Health {
    match v {
        HEALTH_HEALTHY => Health::Healthy,
        HEALTH_UNHEALTHY => Health::Unhealthy,
        _ => Health::Unknown,
    }
}

/// The targets one deploy put live for a service, in one color.
pub(crate) struct TargetSet {
    pub id: u64,
    pub service: Arc<str>,
    pub color: Color,
    pub version: Option<String>,
    pub targets: Vec<Target>,
    rr: AtomicUsize,
    lifecycle: Mutex<Lifecycle>,
    /// Mirrors "not Active" for the hot path: a request that picked this set
    /// from a stale snapshot backs off once it sees the flag.
    draining: AtomicBool,
    since_ms: AtomicU64,
    /// Woken when the last request or upgraded connection of a draining set ends.
    pub idle: Notify,
    /// Cancelled at the drain deadline: in-flight requests are cut.
    pub cut: CancellationToken,
    /// Cancelled at the websocket drain deadline or daemon shutdown: relays
    /// close their connections with 1012/1001.
    pub close_upgraded: CancellationToken,
    /// Stops the active health monitor.
    pub monitor_stop: CancellationToken,
    pub cut_requests: AtomicU64,
    pub closed_websockets: AtomicU64,
    /// Answered requests, and of those the 5xx (ours or the app's).
    pub requests: AtomicU64,
    pub errors: AtomicU64,
    /// Set once a health monitor runs for the set: a staged set keeps the
    /// one it got when staged after it is promoted.
    pub monitored: AtomicBool,
}

impl TargetSet {
    pub fn new(
        id: u64,
        service: Arc<str>,
        color: Color,
        version: Option<String>,
        addrs: &[String],
        initial: Health,
        shutdown: &CancellationToken,
    ) -> Self {
        TargetSet {
            id,
            service,
            color,
            version,
            targets: addrs
                .iter()
                .map(|a| Target::new(a.clone(), initial))
                .collect(),
            rr: AtomicUsize::new(0),
            lifecycle: Mutex::new(Lifecycle::new()),
            draining: AtomicBool::new(false),
            since_ms: AtomicU64::new(now_ms()),
            idle: Notify::new(),
            cut: CancellationToken::new(),
            close_upgraded: shutdown.child_token(),
            monitor_stop: shutdown.child_token(),
            cut_requests: AtomicU64::new(0),
            closed_websockets: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            monitored: AtomicBool::new(false),
        }
    }

    /// Next target, round-robin over healthy ones, skipping those in `tried`
    /// (a bit per index; targets past 64 are never skipped).
    ///
    /// When no untried target is healthy, every untried target is a
    /// candidate: like nginx with all upstreams marked failed, we would rather
    /// try a target a flaky probe called unhealthy than answer 503 to all; a
    /// target that is really down then fails fast on connect (502).
    /// Counts an answered request for the per-color comparison.
    pub fn answered(&self, status: u16) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if status >= 500 {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn pick(&self, tried: u64) -> Option<usize> {
        let n = self.targets.len();
        let untried = |i: usize| i >= 64 || tried & (1 << i) == 0;
        if n == 1 {
            return untried(0).then_some(0);
        }
        let start = self.rr.fetch_add(1, Ordering::Relaxed);
        let mut fallback = None;
        for k in 0..n {
            let i = (start + k) % n;
            if !untried(i) {
                continue;
            }
            if self.targets[i].is_healthy() {
                return Some(i);
            }
            fallback.get_or_insert(i);
        }
        fallback
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    pub fn state(&self) -> SetState {
        lock(&self.lifecycle).state()
    }

    /// Since when the set is in its state (Unix ms).
    pub fn since_ms(&self) -> u64 {
        self.since_ms.load(Ordering::Relaxed)
    }

    /// A restored set was in its state since `ms`, not since its restore.
    pub fn restore_since(&self, ms: u64) {
        self.since_ms.store(ms, Ordering::Relaxed);
    }

    pub fn with_lifecycle<R>(&self, f: impl FnOnce(&mut Lifecycle) -> R) -> R {
        let mut l = lock(&self.lifecycle);
        let before = l.state();
        let r = f(&mut l);
        if l.state() != before {
            self.since_ms.store(now_ms(), Ordering::Relaxed);
            if l.state() != SetState::Active {
                self.draining.store(true, Ordering::SeqCst);
            }
        }
        r
    }

    /// (in-flight requests, upgraded connections) over all targets.
    pub fn load(&self) -> (u64, u64) {
        self.targets.iter().fold((0, 0), |(r, u), t| {
            (
                r + t.in_flight.load(Ordering::SeqCst),
                u + t.upgraded.load(Ordering::SeqCst),
            )
        })
    }

    pub fn clear_pools(&self) {
        for t in &self.targets {
            t.clear_pool();
        }
    }

    pub fn status(&self) -> TargetSetStatus {
        TargetSetStatus {
            id: self.id,
            color: self.color,
            version: self.version.clone(),
            state: self.state(),
            since_ms: self.since_ms.load(Ordering::Relaxed),
            targets: self.targets.iter().map(Target::status).collect(),
            requests: self.requests.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
        }
    }
}

/// Counts one request against a target for as long as it lives; the drain
/// task is woken when the last one of a draining set ends.
pub(crate) struct InFlight {
    set: Arc<TargetSet>,
    idx: usize,
}

impl InFlight {
    /// None when the set already drains: the caller must route again.
    pub fn enter(set: &Arc<TargetSet>, idx: usize) -> Option<InFlight> {
        set.targets[idx].in_flight.fetch_add(1, Ordering::SeqCst);
        let guard = InFlight {
            set: set.clone(),
            idx,
        };
        if set.is_draining() {
            return None;
        }
        Some(guard)
    }

    /// Counts the same request against another target of its set, for a
    /// retry. No draining check: the request began on this set and finishes
    /// there, and holding `self` meanwhile keeps the set from looking idle.
    pub fn transfer(&self, idx: usize) -> InFlight {
        self.set.targets[idx]
            .in_flight
            .fetch_add(1, Ordering::SeqCst);
        InFlight {
            set: self.set.clone(),
            idx,
        }
    }

    pub fn set(&self) -> &Arc<TargetSet> {
        &self.set
    }

    pub fn target(&self) -> &Target {
        &self.set.targets[self.idx]
    }

    pub fn idx(&self) -> usize {
        self.idx
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let prev = self.set.targets[self.idx]
            .in_flight
            .fetch_sub(1, Ordering::SeqCst);
        if prev == 1 && self.set.is_draining() {
            self.set.idle.notify_one();
        }
    }
}

/// Counts one upgraded connection against a target while its relay runs.
pub(crate) struct Upgraded {
    set: Arc<TargetSet>,
    idx: usize,
}

impl Upgraded {
    pub fn enter(set: &Arc<TargetSet>, idx: usize) -> Upgraded {
        set.targets[idx].upgraded.fetch_add(1, Ordering::SeqCst);
        Upgraded {
            set: set.clone(),
            idx,
        }
    }
}

impl Drop for Upgraded {
    fn drop(&mut self) {
        let prev = self.set.targets[self.idx]
            .upgraded
            .fetch_sub(1, Ordering::SeqCst);
        if prev == 1 && self.set.is_draining() {
            self.set.idle.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(n: usize) -> TargetSet {
        let addrs: Vec<String> = (0..n).map(|i| format!("127.0.0.1:{}", 1000 + i)).collect();
        TargetSet::new(
            1,
            "svc".into(),
            Color::Blue,
            None,
            &addrs,
            Health::Healthy,
            &CancellationToken::new(),
        )
    }

    #[test]
    fn round_robin_over_healthy_targets() {
        let s = set(3);
        let picks: Vec<usize> = (0..6).map(|_| s.pick(0).unwrap()).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
        s.targets[1].set_health(Health::Unhealthy, Some("down".into()));
        let picks: Vec<usize> = (0..4).map(|_| s.pick(0).unwrap()).collect();
        assert!(!picks.contains(&1), "{picks:?}");
    }

    #[test]
    fn all_unhealthy_still_tries_targets() {
        let s = set(2);
        for t in &s.targets {
            t.set_health(Health::Unhealthy, Some("probe failed".into()));
        }
        assert!(s.pick(0).is_some());
    }

    #[test]
    fn retry_skips_tried_targets() {
        let s = set(3);
        assert_eq!(s.pick(0b011), Some(2));
        assert_eq!(s.pick(0b111), None);
        let one = set(1);
        assert_eq!(one.pick(0), Some(0));
        assert_eq!(one.pick(1), None);
    }

    #[test]
    fn health_transitions_are_reported_once() {
        let s = set(1);
        let t = &s.targets[0];
        assert_eq!(t.set_health(Health::Healthy, None), None);
        assert_eq!(
            t.set_health(Health::Unhealthy, Some("503".into())),
            Some(Health::Healthy)
        );
        assert_eq!(
            t.set_health(Health::Unhealthy, Some("503 again".into())),
            None
        );
        assert_eq!(t.last_error().as_deref(), Some("503 again"));
        assert_eq!(t.set_health(Health::Healthy, None), Some(Health::Unhealthy));
        assert_eq!(t.last_error(), None);
    }
}
