//! [`FakeEngine`]: an in-memory [`Engine`] for testing deploy logic without
//! Docker.
//!
//! It keeps networks, volumes, images and containers with their labels,
//! follows the engine's rules where deploys depend on them (names are unique,
//! a network with endpoints cannot be removed, a removed container leaves its
//! networks), records every call, and can be told to fail a call. Container
//! processes do not run: tests set health and state, and append log lines.

use cutover_core::sync::lock;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::model::*;
use crate::spec::*;

/// One recorded engine call: the operation and the name it was about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub op: Op,
    pub target: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Info,
    CreateNetwork,
    InspectNetwork,
    ListNetworks,
    ConnectNetwork,
    DisconnectNetwork,
    DeleteNetwork,
    CreateVolume,
    InspectVolume,
    ListVolumes,
    RemoveVolume,
    InspectImage,
    PullImage,
    BuildImage,
    CreateContainer,
    StartContainer,
    StopContainer,
    RemoveContainer,
    RenameContainer,
    InspectContainer,
    ListContainers,
    Logs,
    Exec,
}

/// What an injected failure looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    NotFound,
    Conflict,
    Unreachable,
    Api { status: u16, message: String },
}

mod engine;
mod state;
#[cfg(test)]
mod tests;

use state::{Injected, State};

/// Cheap to clone: clones share one state, so a test keeps a handle while
/// the code under test owns an `Arc<dyn Engine>`.
#[derive(Debug, Clone, Default)]
pub struct FakeEngine {
    state: Arc<Mutex<State>>,
}

impl FakeEngine {
    pub fn new() -> FakeEngine {
        FakeEngine::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock has failed already;
        // the state is still worth reading.
        lock(&self.state)
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// The targets of the calls of one kind, in order.
    pub fn calls_of(&self, op: Op) -> Vec<String> {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.op == op)
            .map(|c| c.target.clone())
            .collect()
    }

    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }

    /// Makes the next `times` calls of `op` (on `target`, or any) fail.
    pub fn fail(&self, op: Op, target: Option<&str>, failure: Failure, times: usize) {
        self.lock().failures.push(Injected {
            op,
            target: target.map(str::to_owned),
            failure,
            remaining: Some(times),
        });
    }

    /// Makes every call of `op` (on `target`, or any) fail from now on.
    pub fn fail_always(&self, op: Op, target: Option<&str>, failure: Failure) {
        self.lock().failures.push(Injected {
            op,
            target: target.map(str::to_owned),
            failure,
            remaining: None,
        });
    }

    pub fn clear_failures(&self) {
        self.lock().failures.clear();
    }

    /// What `info` reports; a Linux engine by default.
    pub fn set_info(&self, info: EngineInfo) {
        self.lock().info = Some(info);
    }

    /// An image present locally.
    pub fn add_image(&self, reference: &str) -> ImageInfo {
        let mut st = self.lock();
        let id = format!("sha256:{}", st.id(""));
        let image = ImageInfo {
            id,
            tags: vec![reference.to_owned()],
            labels: BTreeMap::new(),
        };
        st.images.insert(reference.to_owned(), image.clone());
        image
    }

    /// An image `pull_image` can fetch. Others fail to pull, as with no
    /// registry reachable.
    pub fn add_registry_image(&self, reference: &str) {
        let mut st = self.lock();
        let id = format!("sha256:{}", st.id(""));
        st.registry.insert(
            reference.to_owned(),
            ImageInfo {
                id,
                tags: vec![reference.to_owned()],
                labels: BTreeMap::new(),
            },
        );
    }

    /// Networks created from now on report a gateway, each its own
    /// address on loopback, where an in-process proxy can really listen as
    /// the daemon does on a bridge's. Without it they report none, as a
    /// network the daemon cannot reach does.
    pub fn with_gateways(&self) {
        self.lock().gateways = true;
    }

    /// Puts a network in place as if the user had created it (no labels
    /// unless given).
    pub fn add_network(&self, spec: &NetworkSpec) -> NetworkInfo {
        let mut st = self.lock();
        let info = NetworkInfo {
            id: st.id("n"),
            name: spec.name.clone(),
            driver: spec.driver.clone().unwrap_or_else(|| "bridge".into()),
            internal: spec.internal,
            labels: spec.labels.clone(),
            gateway: st.gateways.then(fake_gateway),
            containers: Vec::new(),
        };
        st.networks.insert(spec.name.clone(), info.clone());
        info
    }

    /// The health a container reports once it is running.
    pub fn set_health(&self, container: &str, health: Option<HealthState>) {
        let mut st = self.lock();
        if let Some(key) = st.container_key(container) {
            let c = st.containers.get_mut(&key).expect("looked up");
            c.health_when_started = health;
            if c.info.state == ContainerState::Running {
                c.info.health = health;
            }
        }
    }

    pub fn set_health_output(&self, container: &str, output: &str) {
        let mut st = self.lock();
        if let Some(key) = st.container_key(container) {
            st.containers
                .get_mut(&key)
                .expect("looked up")
                .info
                .last_health_output = Some(output.to_owned());
        }
    }

    /// As if the container's process ended by itself.
    pub fn exit(&self, container: &str, exit_code: i64) {
        let mut st = self.lock();
        if let Some(key) = st.container_key(container) {
            let c = st.containers.get_mut(&key).expect("looked up");
            c.info.state = ContainerState::Exited;
            c.info.exit_code = Some(exit_code);
            c.info.health = c.info.health.map(|_| HealthState::Unhealthy);
        }
    }

    pub fn push_log(&self, container: &str, source: LogSource, text: &str) {
        let mut st = self.lock();
        if let Some(key) = st.container_key(container) {
            st.containers
                .get_mut(&key)
                .expect("looked up")
                .logs
                .push(LogLine {
                    source,
                    text: text.to_owned(),
                });
        }
    }

    /// What `exec` in `container` returns; exit 0 and no output otherwise.
    pub fn set_exec_result(&self, container: &str, output: ExecOutput) {
        self.lock()
            .exec_results
            .insert(container.to_owned(), output);
    }

    /// The spec a container was created from.
    pub fn spec_of(&self, container: &str) -> Option<ContainerSpec> {
        let st = self.lock();
        st.container_key(container)
            .map(|key| st.containers[&key].spec.clone())
    }

    pub fn container_names(&self) -> Vec<String> {
        self.lock().containers.keys().cloned().collect()
    }

    pub fn network_names(&self) -> Vec<String> {
        self.lock().networks.keys().cloned().collect()
    }

    pub fn volume_names(&self) -> Vec<String> {
        self.lock().volumes.keys().cloned().collect()
    }
}

/// A network's gateway as the fake reports it: distinct across the
/// process's engines, and, from the pid, likely across concurrent test
/// processes too.
fn fake_gateway() -> std::net::IpAddr {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed) + std::process::id() * 64;
    std::net::IpAddr::from([127, 100 + (n >> 16) as u8 % 100, (n >> 8) as u8, n as u8])
}
