//! The one engine call cutover makes without bollard: listing tasks.
//!
//! Why our own: bollard's `Task` model follows the engine's published API
//! description, which leaves out `NetworksAttachments`, and that is where a
//! task's overlay addresses are, the very thing every node's proxy routes
//! to. The engine has sent it since API 1.24; the call is one GET, so a
//! hyper client on the engine's socket reads it rather than a second
//! Docker client crate.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use serde::Deserialize;

use cutover_docker::docker::parse_ip;
use cutover_docker::{EngineError, ObjectKind};

use crate::model::{TaskInfo, TaskState};

/// The API version of the request path: the oldest cutover supports, which
/// every newer engine also serves.
const API_VERSION: &str = "v1.41";
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawTask {
    #[serde(rename = "ID")]
    id: String,
    #[serde(rename = "ServiceID", default)]
    service_id: String,
    #[serde(rename = "NodeID", default)]
    node_id: String,
    #[serde(default)]
    slot: Option<u64>,
    #[serde(default)]
    status: RawStatus,
    #[serde(default)]
    desired_state: String,
    #[serde(default)]
    networks_attachments: Vec<RawAttachment>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct RawStatus {
    #[serde(default)]
    state: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    err: Option<String>,
    #[serde(default)]
    container_status: Option<RawContainerStatus>,
}

#[derive(Deserialize)]
struct RawContainerStatus {
    #[serde(rename = "ContainerID", default)]
    container_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawAttachment {
    network: RawNetwork,
    #[serde(default)]
    addresses: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawNetwork {
    spec: RawNetworkSpec,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawNetworkSpec {
    name: String,
}

/// The tasks of the service with id `service_id`, from the engine at `host`.
pub(crate) async fn list(host: &str, service_id: &str) -> Result<Vec<TaskInfo>, EngineError> {
    let filters = serde_json::json!({ "service": [service_id] }).to_string();
    let path = format!("/{API_VERSION}/tasks?filters={}", percent_encode(&filters));
    let body = get(host, &path, service_id).await?;
    let raw: Vec<RawTask> = serde_json::from_slice(&body).map_err(|e| EngineError::Transport {
        action: "list tasks of",
        kind: ObjectKind::Service,
        name: service_id.to_owned(),
        message: format!("the engine's answer did not decode: {e}"),
    })?;
    Ok(raw
        .into_iter()
        .filter(|t| t.service_id == service_id)
        .map(task_info)
        .collect())
}

fn task_info(raw: RawTask) -> TaskInfo {
    let addresses: BTreeMap<_, _> = raw
        .networks_attachments
        .iter()
        .filter_map(|a| {
            let ip = parse_ip(a.addresses.first().map(String::as_str))?;
            Some((a.network.spec.name.clone(), ip))
        })
        .collect();
    TaskInfo {
        id: raw.id,
        service_id: raw.service_id,
        node_id: raw.node_id,
        slot: raw.slot.filter(|&s| s > 0),
        // A state this adapter does not know yet is treated as not there.
        state: TaskState::parse(&raw.status.state).unwrap_or(TaskState::New),
        desired: TaskState::parse(&raw.desired_state).unwrap_or(TaskState::New),
        message: raw.status.message,
        error: raw.status.err.filter(|e| !e.is_empty()),
        addresses,
        container_id: raw
            .status
            .container_status
            .and_then(|c| c.container_id)
            .filter(|id| !id.is_empty()),
    }
}

/// The query's JSON, escaped for a URL: everything but unreserved bytes.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn get(host: &str, path: &str, name: &str) -> Result<Bytes, EngineError> {
    let unreachable = |message: String| EngineError::Unreachable {
        host: host.to_owned(),
        message,
    };
    let request = http::Request::get(path)
        .header(http::header::HOST, "docker")
        .body(Empty::<Bytes>::new())
        .map_err(|e| unreachable(format!("bad request path {path}: {e}")))?;
    let exchange = async {
        let response = match endpoint(host)? {
            Endpoint::Unix(socket) => {
                let stream = tokio::net::UnixStream::connect(socket)
                    .await
                    .map_err(|e| unreachable(format!("{socket}: {e}")))?;
                send(TokioIo::new(stream), request).await
            }
            Endpoint::Tcp(addr) => {
                let stream = tokio::net::TcpStream::connect(addr)
                    .await
                    .map_err(|e| unreachable(format!("{addr}: {e}")))?;
                send(TokioIo::new(stream), request).await
            }
        }
        .map_err(|e| unreachable(e.to_string()))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| unreachable(e.to_string()))?
            .to_bytes();
        Ok::<_, EngineError>((status, body))
    };
    let (status, body) = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| unreachable(format!("no answer to list tasks of service {name} in time")))??;
    if status.is_success() {
        return Ok(body);
    }
    let message = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("message")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
    Err(match status.as_u16() {
        404 => EngineError::NotFound {
            kind: ObjectKind::Service,
            name: name.to_owned(),
            message,
        },
        status => EngineError::Api {
            action: "list tasks of",
            kind: ObjectKind::Service,
            name: name.to_owned(),
            status,
            message,
        },
    })
}

async fn send<IO>(
    io: IO,
    request: http::Request<Empty<Bytes>>,
) -> hyper::Result<http::Response<hyper::body::Incoming>>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(connection);
    sender.send_request(request).await
}

enum Endpoint<'a> {
    Unix(&'a str),
    Tcp(&'a str),
}

fn endpoint(host: &str) -> Result<Endpoint<'_>, EngineError> {
    if let Some(path) = host.strip_prefix("unix://") {
        return Ok(Endpoint::Unix(path));
    }
    if let Some(addr) = host
        .strip_prefix("tcp://")
        .or_else(|| host.strip_prefix("http://"))
    {
        return Ok(Endpoint::Tcp(addr.trim_end_matches('/')));
    }
    Err(EngineError::Unreachable {
        host: host.to_owned(),
        message: "the Swarm adapter reaches an engine at unix:// or tcp:// only".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A task as Docker 20.10's engine writes it (trimmed to what is read).
    const TASK: &str = r#"[{
        "ID": "t1", "ServiceID": "s1", "NodeID": "n1", "Slot": 2,
        "Status": {"State": "running", "Message": "started",
                   "ContainerStatus": {"ContainerID": "c1", "PID": 9}},
        "DesiredState": "running",
        "NetworksAttachments": [
            {"Network": {"ID": "x", "Spec": {"Name": "ingress"}}, "Addresses": ["10.0.0.5/24"]},
            {"Network": {"ID": "y", "Spec": {"Name": "athens"}}, "Addresses": ["10.0.1.7/24"]}
        ]
    }, {"ID": "t2", "ServiceID": "other", "Status": {"State": "failed", "Err": "boom"}}]"#;

    #[test]
    fn reads_addresses_per_network() {
        let raw: Vec<RawTask> = serde_json::from_str(TASK).unwrap();
        let tasks: Vec<TaskInfo> = raw.into_iter().map(task_info).collect();
        let t = &tasks[0];
        assert_eq!(t.ip_on("athens"), Some("10.0.1.7".parse().unwrap()));
        assert_eq!(t.ip_on("ingress"), Some("10.0.0.5".parse().unwrap()));
        assert_eq!(t.slot, Some(2));
        assert_eq!(t.container_id.as_deref(), Some("c1"));
        assert!(t.is_up());
        let failed = &tasks[1];
        assert!(failed.state.is_failure());
        assert_eq!(failed.error.as_deref(), Some("boom"));
        assert!(failed.addresses.is_empty());
        assert_eq!(failed.desired, TaskState::New);
    }

    #[test]
    fn query_is_escaped() {
        assert_eq!(
            percent_encode(r#"{"a":["b c"]}"#),
            "%7B%22a%22%3A%5B%22b%20c%22%5D%7D"
        );
    }

    #[test]
    fn only_sockets_and_tcp() {
        assert!(matches!(
            endpoint("unix:///x.sock"),
            Ok(Endpoint::Unix("/x.sock"))
        ));
        assert!(matches!(
            endpoint("tcp://1.2.3.4:2375"),
            Ok(Endpoint::Tcp("1.2.3.4:2375"))
        ));
        assert!(endpoint("ssh://m").is_err());
    }
}
