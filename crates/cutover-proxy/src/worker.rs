//! Which data-plane thread code runs on. Upstream pools are sharded by it,
//! so a request takes a pooled connection of its own thread without a lock
//! held across threads.

use std::cell::Cell;
use std::sync::OnceLock;

thread_local! {
    static WORKER: Cell<usize> = const { Cell::new(0) };
}

/// Marks the current thread as data-plane thread `slot` (1..=n).
pub(crate) fn enter(slot: usize) {
    WORKER.with(|w| w.set(slot));
}

/// The data-plane thread this code runs on: 1..=n, or 0 off the data plane
/// (control API, health probes, tests).
pub(crate) fn worker_slot() -> usize {
    WORKER.with(Cell::get)
}

/// Data-plane threads: one per core.
pub(crate) fn data_threads() -> usize {
    static N: OnceLock<usize> = OnceLock::new();
    *N.get_or_init(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 64)
    })
}

/// Pool shards per target: one per data-plane thread plus one for the rest.
pub(crate) fn pool_shards() -> usize {
    data_threads() + 1
}
