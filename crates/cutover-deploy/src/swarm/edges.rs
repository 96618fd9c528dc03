//! The cutover edge on every node: found as the running tasks of the edge
//! service, reached at each task's address on the edge network, and asked
//! over its control API to prepare, commit or abort a switch, for its
//! routes, and to wait for a drain.
//!
//! A hyper client of our own rather than a general HTTP client crate: one
//! short request per call to a known peer on the overlay, over TLS, with
//! no redirects, cookies or pooling to want.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use cutover_core::diag::Report;
use cutover_core::fleet::{CommitAnswer, PreparedAnswer, UnstagedAnswer, Vote};
use cutover_core::maintenance::Maintenance;
use cutover_core::service::DeployRequest;
use cutover_core::stage::Stage;
use cutover_core::status::{DrainedAnswer, HealthAnswer, ServiceStatus};
use cutover_core::wire::ErrorBody;
use cutover_swarm::{Availability, Cluster, NodeInfo, NodeState, ServiceInfo};
use http::{header, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;

/// A call that is not a gate or a drain: an edge on the overlay answers
/// in milliseconds, so this only bounds a node that went away.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the edges are and how they are spoken to (`cutover serve
/// --engine swarm`'s `--edge-*` flags).
#[derive(Debug, Clone)]
pub struct EdgeSettings {
    /// The global service of cutover edges (`cutover_edge` in the stack).
    pub service: String,
    /// The overlay the edges and every app color are on.
    pub network: String,
    /// The edges' TCP control port.
    pub port: u16,
    /// Where the edges take connections the apps' gateways relay
    /// (`cutover serve --role edge --gateway-listen`).
    pub gateway_port: u16,
    /// The token the edges accept (a Swarm secret in the stack).
    pub token: Option<String>,
    /// TLS to the edges, which are reached by address: their certificate
    /// is checked against one name, not the address.
    pub tls: EdgeTls,
}

#[derive(Debug, Clone)]
pub struct EdgeTls {
    pub config: std::sync::Arc<rustls::ClientConfig>,
    /// The name the edges' certificate is for (`cutover-edge` in the stack).
    pub name: rustls_pki_types::ServerName<'static>,
}

/// One node's edge.
#[derive(Debug, Clone)]
pub struct Edge {
    /// The node's hostname, as `docker node ls` shows it.
    pub node: String,
    pub addr: SocketAddr,
}

/// The edges of the live nodes: running tasks of the edge service on
/// nodes the managers report ready and active. A node that is down, or
/// whose edge is not running, serves nothing and has no vote
/// (`cutover_core::fleet`).
pub async fn live(cluster: &dyn Cluster, s: &EdgeSettings) -> Result<Vec<Edge>, Report> {
    Ok(by_node(cluster, s)
        .await?
        .into_iter()
        .filter_map(|(_, edge)| edge)
        .collect())
}

/// Every node of the swarm, by hostname, with its edge when the node is
/// live and its edge runs.
pub async fn by_node(
    cluster: &dyn Cluster,
    s: &EdgeSettings,
) -> Result<Vec<(NodeInfo, Option<Edge>)>, Report> {
    let service = service(cluster, s).await?;
    let tasks = cluster.tasks(&service).await.map_err(Report::from)?;
    let mut out = Vec::new();
    for node in cluster.nodes().await.map_err(Report::from)? {
        let live = node.state == NodeState::Ready && node.availability == Availability::Active;
        let task = tasks
            .iter()
            .find(|t| t.node_id == node.id && t.is_up())
            .filter(|_| live);
        let edge = match task {
            Some(task) => {
                let ip = task.ip_on(&s.network).ok_or_else(|| {
                    Report::new(format!(
                        "the cutover edge on {} is not on the network {:?}",
                        node.hostname, s.network
                    ))
                    .hint("the edge service and cutover serve --edge-network must name the same overlay")
                })?;
                Some(Edge {
                    node: node.hostname.clone(),
                    addr: SocketAddr::new(ip, s.port),
                })
            }
            None => None,
        };
        out.push((node, edge));
    }
    out.sort_by(|a, b| a.0.hostname.cmp(&b.0.hostname));
    Ok(out)
}

/// The edges' service (its image is the gateways' too); an error with
/// the fix when cutover's stack is not deployed.
pub async fn service(cluster: &dyn Cluster, s: &EdgeSettings) -> Result<ServiceInfo, Report> {
    let no_service = || {
        Report::new(format!("no cutover edge runs: the swarm has no service {:?}", s.service))
            .hint("deploy cutover's stack first: `docker stack deploy -c dist/swarm/cutover.yml cutover` (docs/swarm.md)")
    };
    cluster
        .inspect_service(&s.service)
        .await
        .map_err(Report::from)?
        .ok_or_else(no_service)
}

impl Edge {
    /// Phase one: the edge gates `req` from its node. Never an error: a
    /// failure is this node's vote.
    pub async fn prepare(&self, s: &EdgeSettings, route: &str, req: &DeployRequest) -> Vote {
        let body = serde_json::to_vec(req).expect("a deploy request serializes");
        // The edge's gate runs up to the deploy timeout; the call waits
        // for it and a little more.
        let timeout = req.timeouts.deploy + CALL_TIMEOUT;
        let path = format!("/v1/services/{}/prepared", segment(route));
        match self.call(s, Method::PUT, &path, Some(body), timeout).await {
            Ok((StatusCode::OK, body)) => match serde_json::from_slice::<PreparedAnswer>(&body) {
                Ok(answer) => Vote::Ready {
                    set_id: answer.set_id,
                },
                Err(e) => Vote::Unreachable {
                    error: format!("an answer cutover cannot read: {e}"),
                },
            },
            Ok((StatusCode::UNPROCESSABLE_ENTITY, body)) => Vote::Unhealthy {
                detail: error_text(&body),
            },
            Ok((status, body)) => Vote::Unreachable {
                error: format!("{status}: {}", error_text(&body)),
            },
            Err(error) => Vote::Unreachable { error },
        }
    }

    pub async fn commit(
        &self,
        s: &EdgeSettings,
        route: &str,
        set_id: u64,
    ) -> Result<CommitAnswer, String> {
        let path = format!("/v1/services/{}/prepared/{set_id}/commit", segment(route));
        self.json(s, Method::POST, &path, CALL_TIMEOUT).await
    }

    /// Phase two of a stage: prepared set `set_id` is staged beside the
    /// active one under `stage` (its token the coordinator's).
    pub async fn stage(
        &self,
        s: &EdgeSettings,
        route: &str,
        set_id: u64,
        stage: &Stage,
    ) -> Result<CommitAnswer, String> {
        let path = format!("/v1/services/{}/prepared/{set_id}/stage", segment(route));
        let body = serde_json::to_vec(stage).expect("a stage serializes");
        match self
            .call(s, Method::POST, &path, Some(body), CALL_TIMEOUT)
            .await?
        {
            (StatusCode::OK, body) => serde_json::from_slice(&body)
                .map_err(|e| format!("an answer cutover cannot read: {e}")),
            (status, body) => Err(format!("{status}: {}", error_text(&body))),
        }
    }

    /// The staged set goes live here; the active one drains.
    pub async fn promote(&self, s: &EdgeSettings, route: &str) -> Result<ServiceStatus, String> {
        let path = format!("/v1/services/{}/staged/promote", segment(route));
        self.json(s, Method::POST, &path, CALL_TIMEOUT).await
    }

    /// The staged set is dropped here and drains; its id.
    pub async fn unstage(&self, s: &EdgeSettings, route: &str) -> Result<u64, String> {
        let path = format!("/v1/services/{}/staged", segment(route));
        let answer: UnstagedAnswer = self.json(s, Method::DELETE, &path, CALL_TIMEOUT).await?;
        Ok(answer.set_id)
    }

    pub async fn abort(&self, s: &EdgeSettings, route: &str, set_id: u64) -> Result<(), String> {
        let path = format!("/v1/services/{}/prepared/{set_id}", segment(route));
        match self
            .call(s, Method::DELETE, &path, None, CALL_TIMEOUT)
            .await?
        {
            (StatusCode::NO_CONTENT, _) => Ok(()),
            (status, body) => Err(format!("{status}: {}", error_text(&body))),
        }
    }

    /// Puts `route` in `maintenance`, or (`None`) takes it out.
    pub async fn set_maintenance(
        &self,
        s: &EdgeSettings,
        route: &str,
        maintenance: Option<&Maintenance>,
    ) -> Result<ServiceStatus, String> {
        let path = format!("/v1/services/{}/maintenance", segment(route));
        let (method, body) = match maintenance {
            Some(m) => (
                Method::PUT,
                Some(serde_json::to_vec(m).expect("a maintenance serializes")),
            ),
            None => (Method::DELETE, None),
        };
        match self.call(s, method, &path, body, CALL_TIMEOUT).await? {
            (StatusCode::OK, body) => serde_json::from_slice(&body)
                .map_err(|e| format!("an answer cutover cannot read: {e}")),
            (status, body) => Err(format!("{status}: {}", error_text(&body))),
        }
    }

    /// Stops routing `route`; its sets drain.
    pub async fn remove(&self, s: &EdgeSettings, route: &str) -> Result<(), String> {
        let path = format!("/v1/services/{}", segment(route));
        match self
            .call(s, Method::DELETE, &path, None, CALL_TIMEOUT)
            .await?
        {
            (StatusCode::NO_CONTENT | StatusCode::NOT_FOUND, _) => Ok(()),
            (status, body) => Err(format!("{status}: {}", error_text(&body))),
        }
    }

    /// The edge's route, `None` when it serves none by that name.
    pub async fn route(
        &self,
        s: &EdgeSettings,
        route: &str,
    ) -> Result<Option<ServiceStatus>, String> {
        let path = format!("/v1/services/{}", segment(route));
        match self.call(s, Method::GET, &path, None, CALL_TIMEOUT).await? {
            (StatusCode::OK, body) => serde_json::from_slice(&body)
                .map(Some)
                .map_err(|e| format!("an answer cutover cannot read: {e}")),
            (StatusCode::NOT_FOUND, _) => Ok(None),
            (status, body) => Err(format!("{status}: {}", error_text(&body))),
        }
    }

    /// What the edge is: its version and its certificate storage.
    pub async fn health(&self, s: &EdgeSettings) -> Result<HealthAnswer, String> {
        self.json(s, Method::GET, "/v1/health", CALL_TIMEOUT).await
    }

    /// Every route the edge serves.
    pub async fn services(&self, s: &EdgeSettings) -> Result<Vec<ServiceStatus>, String> {
        self.json(s, Method::GET, "/v1/services", CALL_TIMEOUT)
            .await
    }

    /// Waits up to `timeout` for set `set_id` to drain on this node.
    pub async fn drained(
        &self,
        s: &EdgeSettings,
        route: &str,
        set_id: u64,
        timeout: Duration,
    ) -> Result<DrainedAnswer, String> {
        let path = format!(
            "/v1/services/{}/sets/{set_id}/drained?timeout={}ms",
            segment(route),
            timeout.as_millis()
        );
        self.json(s, Method::GET, &path, timeout + CALL_TIMEOUT)
            .await
    }

    async fn json<T: DeserializeOwned>(
        &self,
        s: &EdgeSettings,
        method: Method,
        path: &str,
        timeout: Duration,
    ) -> Result<T, String> {
        match self.call(s, method, path, None, timeout).await? {
            (StatusCode::OK, body) => serde_json::from_slice(&body)
                .map_err(|e| format!("an answer cutover cannot read: {e}")),
            (status, body) => Err(format!("{status}: {}", error_text(&body))),
        }
    }

    /// One request on a connection of its own.
    async fn call(
        &self,
        s: &EdgeSettings,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<(StatusCode, Bytes), String> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "cutover-edge");
        if let Some(token) = &s.token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| e.to_string())?;
        let exchange = async {
            let stream = tokio::net::TcpStream::connect(self.addr)
                .await
                .map_err(|e| format!("cannot connect to {}: {e}", self.addr))?;
            let connector = tokio_rustls::TlsConnector::from(s.tls.config.clone());
            let stream = connector
                .connect(s.tls.name.clone(), stream)
                .await
                .map_err(|e| format!("TLS with {}: {e}", self.addr))?;
            self.exchange(TokioIo::new(stream), req).await
        };
        tokio::time::timeout(timeout, exchange).await.map_err(|_| {
            format!(
                "{} did not answer within {}",
                self.addr,
                humantime::format_duration(timeout)
            )
        })?
    }

    async fn exchange<I>(
        &self,
        io: I,
        req: Request<Full<Bytes>>,
    ) -> Result<(StatusCode, Bytes), String>
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| format!("{}: {e}", self.addr))?;
        tokio::spawn(conn);
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("{}: {e}", self.addr))?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("{}: {e}", self.addr))?
            .to_bytes();
        Ok((status, body))
    }
}

/// A route's name as one path segment: `athens/web` is `athens%2Fweb`.
/// Names are letters, digits, `-`, `_`, `.` and one `/`.
fn segment(route: &str) -> String {
    route.replace('/', "%2F")
}

/// An error answer's words, with its detail when it has one.
fn error_text(body: &[u8]) -> String {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => match e.detail {
            Some(detail) => format!("{}: {}", e.error, detail.replace('\n', "; ")),
            None => e.error,
        },
        Err(_) => String::from_utf8_lossy(body).trim().to_string(),
    }
}
