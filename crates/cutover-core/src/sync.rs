//! The one way cutover takes a mutex.

use std::sync::{Mutex, MutexGuard};

/// Locks `m` even if a thread panicked while holding it. Every mutex in
/// cutover guards data that stays consistent between statements (maps,
/// counters, an `Option`), so a panic elsewhere must not take the proxy or
/// the deploy engine down with it.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
