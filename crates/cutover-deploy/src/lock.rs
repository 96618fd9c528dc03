//! One deploy, rollback or down per project at a time (failure #12: two CI
//! runs interleaving). A waiter that gives up learns who holds the lock.

use cutover_core::sync::lock;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::OwnedMutexGuard;

/// What holds a project's lock. Status reports it as a
/// [`cutover_core::report::Busy`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub operation: String,
    pub version: Option<String>,
    pub since: SystemTime,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.operation)?;
        if let Some(v) = &self.version {
            write!(f, " of version {v}")?;
        }
        write!(
            f,
            ", running since {}",
            humantime::format_rfc3339_seconds(self.since)
        )
    }
}

/// How often a waiter looks whether the holder changed.
const HOLDER_POLL: Duration = Duration::from_millis(250);

#[derive(Default)]
struct Slot {
    lock: Arc<tokio::sync::Mutex<()>>,
    holder: Mutex<Option<Holder>>,
}

#[derive(Default)]
pub struct Locks {
    slots: Mutex<HashMap<String, Arc<Slot>>>,
}

/// Held while the operation runs; releases the project when dropped.
pub struct ProjectGuard {
    _guard: OwnedMutexGuard<()>,
    slot: Arc<Slot>,
}

impl Drop for ProjectGuard {
    fn drop(&mut self) {
        *lock(&self.slot.holder) = None;
    }
}

impl Locks {
    /// Waits up to `wait` for the project; on timeout returns who holds it.
    /// While it waits, `waiting` hears of the holder, then of each new
    /// one (the queue moves on, another operation takes it first).
    pub async fn acquire(
        &self,
        project: &str,
        holder: Holder,
        wait: Duration,
        mut waiting: impl FnMut(&Holder),
    ) -> Result<ProjectGuard, Option<Holder>> {
        let slot = lock(&self.slots)
            .entry(project.to_string())
            .or_default()
            .clone();
        let guard = match slot.lock.clone().try_lock_owned() {
            Ok(g) => g,
            Err(_) if wait.is_zero() => return Err(current(&slot)),
            Err(_) => {
                let deadline = tokio::time::Instant::now() + wait;
                let queued = slot.lock.clone().lock_owned();
                tokio::pin!(queued);
                let mut told: Option<Holder> = None;
                loop {
                    if let Some(h) = current(&slot).filter(|h| told.as_ref() != Some(h)) {
                        waiting(&h);
                        told = Some(h);
                    }
                    let next_look = (tokio::time::Instant::now() + HOLDER_POLL).min(deadline);
                    tokio::select! {
                        g = &mut queued => break g,
                        _ = tokio::time::sleep_until(next_look) => {
                            if next_look >= deadline {
                                return Err(current(&slot));
                            }
                        }
                    }
                }
            }
        };
        *lock(&slot.holder) = Some(holder);
        Ok(ProjectGuard {
            _guard: guard,
            slot,
        })
    }

    /// Who holds the project now, if anyone.
    pub fn holder(&self, project: &str) -> Option<Holder> {
        let slots = lock(&self.slots);
        slots.get(project).and_then(|s| current(s))
    }
}

fn current(slot: &Slot) -> Option<Holder> {
    lock(&slot.holder).clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(op: &str) -> Holder {
        Holder {
            operation: op.into(),
            version: Some("v1".into()),
            since: SystemTime::UNIX_EPOCH,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn second_waiter_times_out_naming_the_holder() {
        let locks = Locks::default();
        let g = locks
            .acquire("athens", holder("deploy"), Duration::ZERO, |_| {})
            .await
            .unwrap();
        let err = locks
            .acquire(
                "athens",
                holder("rollback"),
                Duration::from_secs(30),
                |_| {},
            )
            .await
            .err()
            .unwrap()
            .unwrap();
        assert_eq!(err.operation, "deploy");
        assert!(err
            .to_string()
            .contains("deploy of version v1, running since 1970-01-01T00:00:00Z"));
        // Another project is not blocked.
        assert!(locks
            .acquire("other", holder("deploy"), Duration::ZERO, |_| {})
            .await
            .is_ok());
        drop(g);
        assert!(locks.holder("athens").is_none());
        assert!(locks
            .acquire("athens", holder("down"), Duration::ZERO, |_| {})
            .await
            .is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn waiter_gets_the_lock_when_released_in_time() {
        let locks = Arc::new(Locks::default());
        let g = locks
            .acquire("p", holder("deploy"), Duration::ZERO, |_| {})
            .await
            .unwrap();
        let l2 = locks.clone();
        let waiter = tokio::spawn(async move {
            l2.acquire("p", holder("deploy"), Duration::from_secs(10), |_| {})
                .await
                .map(|_| ())
        });
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop(g);
        assert!(waiter.await.unwrap().is_ok());
    }

    /// A waiter hears who holds the project, then who holds it next when
    /// an operation queued before it got there first, and nothing twice.
    #[tokio::test(start_paused = true)]
    async fn a_waiter_hears_of_each_holder_once() {
        let locks = Arc::new(Locks::default());
        let first = locks
            .acquire("p", holder("deploy"), Duration::ZERO, |_| {})
            .await
            .unwrap();
        let l1 = locks.clone();
        let earlier = tokio::spawn(async move {
            let g = l1
                .acquire("p", holder("rollback"), Duration::from_secs(60), |_| {})
                .await;
            tokio::time::sleep(Duration::from_secs(2)).await;
            drop(g);
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        let heard = Arc::new(Mutex::new(Vec::new()));
        let (l2, h2) = (locks.clone(), heard.clone());
        let waiter = tokio::spawn(async move {
            l2.acquire("p", holder("down"), Duration::from_secs(60), |h| {
                lock(&h2).push(h.operation.clone())
            })
            .await
            .map(|_| ())
        });
        tokio::time::sleep(Duration::from_secs(2)).await;
        drop(first);
        earlier.await.unwrap();
        assert!(waiter.await.unwrap().is_ok());
        assert_eq!(*lock(&heard), ["deploy", "rollback"]);
    }
}
