//! A small HTTP/1.1 client for the daemon's control socket.

use std::path::PathBuf;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use tokio::net::UnixStream;

use crate::error::CliError;
use crate::exit::ExitStatus;

pub struct DaemonClient {
    socket: PathBuf,
}

/// The error body of the control API (docs/api.md).
#[derive(Debug, Deserialize)]
struct ApiErrorBody {
    error: String,
    detail: Option<String>,
    hint: Option<String>,
}

impl DaemonClient {
    pub fn new(socket: impl Into<PathBuf>) -> DaemonClient {
        DaemonClient {
            socket: socket.into(),
        }
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, CliError> {
        let (status, body) = self.request(Method::GET, path, None).await?;
        if !status.is_success() {
            return Err(api_error(status, &body));
        }
        serde_json::from_slice(&body).map_err(|e| {
            CliError::failure(format!("the daemon's answer to GET {path} is not what this cutover expects: {e}"))
                .with_hint("the daemon may be another version of cutover; compare `cutover --version` with GET /v1/health")
        })
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Bytes), CliError> {
        let stream = UnixStream::connect(&self.socket)
            .await
            .map_err(|e| self.unreachable(e))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| self.unreachable(std::io::Error::other(e)))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut req = Request::builder()
            .method(&method)
            .uri(path)
            .header(hyper::header::HOST, "cutover");
        if body.is_some() {
            req = req.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .expect("a valid request");
        let response = sender.send_request(req).await.map_err(|e| {
            CliError::failure(format!(
                "the daemon closed the connection during {method} {path}: {e}"
            ))
        })?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| {
                CliError::failure(format!(
                    "reading the daemon's answer to {method} {path}: {e}"
                ))
            })?
            .to_bytes();
        Ok((status, body))
    }

    fn unreachable(&self, e: std::io::Error) -> CliError {
        let hint = match e.kind() {
            std::io::ErrorKind::PermissionDenied => {
                "the socket belongs to another user: run as that user or root, or join the daemon's --socket-group"
            }
            _ => "start it with `cutover serve` (or `systemctl start cutover`), or point --socket / CUTOVER_SOCKET at its socket",
        };
        CliError::new(
            ExitStatus::Unreachable,
            format!(
                "cannot reach the cutover daemon at {}: {e}",
                self.socket.display()
            ),
        )
        .with_hint(hint)
    }
}

fn api_error(status: StatusCode, body: &[u8]) -> CliError {
    let exit = if status.is_client_error() {
        ExitStatus::BadInput
    } else {
        ExitStatus::Failure
    };
    match serde_json::from_slice::<ApiErrorBody>(body) {
        Ok(err) => {
            let mut message = err.error;
            if let Some(detail) = err.detail {
                message = format!("{message}\n  {detail}");
            }
            let cli = CliError::new(exit, message);
            match err.hint {
                Some(hint) => cli.with_hint(hint),
                None => cli,
            }
        }
        Err(_) => CliError::new(
            exit,
            format!(
                "the daemon answered {status}: {}",
                String::from_utf8_lossy(body).trim()
            ),
        ),
    }
}
