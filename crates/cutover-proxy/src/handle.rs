//! The public handle of the proxy. (Signatures fixed; bodies being written.)

use std::net::SocketAddr;
use std::time::Duration;

use cutover_core::service::DeployRequest;
use cutover_core::status::{Event, ProxyState, ServiceStatus};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// Data-plane settings that come from `cutover serve` flags.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Serve `/_cutover/health` on the data listener.
    pub health_endpoint: bool,
    pub connect_timeout: Duration,
    /// Time the upstream has to send response headers.
    pub response_header_timeout: Duration,
    /// Time a client has to send a full request head (slowloris guard).
    pub client_header_timeout: Duration,
    /// Idle keep-alive connections are closed after this.
    pub idle_timeout: Duration,
    pub max_request_body: u64,
    pub max_header_bytes: usize,
    /// One access log line per request.
    pub access_log: bool,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            health_endpoint: true,
            connect_timeout: Duration::from_secs(5),
            response_header_timeout: Duration::from_secs(60),
            client_header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
            max_request_body: 1 << 30,
            max_header_bytes: 64 * 1024,
            access_log: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The new targets did not all become healthy before `deploy_timeout`.
    /// Nothing changed; `detail` names each failing target and its last probe.
    #[error("targets did not become healthy within {timeout:?}: {detail}")]
    Unhealthy { timeout: Duration, detail: String },
    #[error("invalid deploy request: {0}")]
    Invalid(String),
    #[error("no service named {0:?}")]
    UnknownService(String),
}

/// Cheap to clone; all clones drive the same proxy.
#[derive(Clone)]
pub struct Proxy {
    _private: (),
}

impl Proxy {
    pub fn new(_config: ProxyConfig) -> Self {
        todo!()
    }

    /// Health-gate the request's targets, switch the service to them atomically
    /// and start draining the previous set. Returns once the switch is done.
    pub async fn deploy(&self, _service: &str, _req: DeployRequest) -> Result<ServiceStatus, DeployError> {
        todo!()
    }

    /// Stop routing to a service; its targets drain like after a switch.
    pub fn remove(&self, _service: &str) -> Result<(), DeployError> {
        todo!()
    }

    pub fn status(&self) -> Vec<ServiceStatus> {
        todo!()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        todo!()
    }

    /// What must be persisted to come back after a restart.
    pub fn state(&self) -> ProxyState {
        todo!()
    }

    /// Reinstall persisted services without a health gate; their targets start
    /// `Unknown` and count as healthy only after a successful probe.
    pub fn restore(&self, _state: ProxyState) {
        todo!()
    }

    /// Accept and serve on the data listener until `shutdown` fires, then stop
    /// accepting and wait for in-flight work (bounded by the drain timeout).
    pub async fn serve(&self, _listener: TcpListener, _shutdown: CancellationToken) -> std::io::Result<()> {
        todo!()
    }

    /// Prometheus text exposition of the proxy's metrics.
    pub fn render_metrics(&self) -> String {
        todo!()
    }

    pub fn local_addr_hint(&self) -> Option<SocketAddr> {
        None
    }
}
