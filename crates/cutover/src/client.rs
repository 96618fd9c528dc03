//! A small HTTP/1.1 client for the daemon's control socket.

use std::path::PathBuf;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::net::UnixStream;

use cutover_core::diag::Report;
use cutover_core::wire::ErrorBody;

use crate::error::CliError;
use crate::exit::ExitStatus;

pub struct DaemonClient {
    socket: PathBuf,
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

    /// `POST path` with a JSON body; the answer parsed as JSON.
    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T, CliError> {
        let body = serde_json::to_vec(body).expect("requests serialize");
        let (status, answer) = self.request(Method::POST, path, Some(body)).await?;
        if !status.is_success() {
            return Err(api_error(status, &answer));
        }
        serde_json::from_slice(&answer).map_err(|e| {
            CliError::failure(format!("the daemon's answer to POST {path} is not what this cutover expects: {e}"))
                .with_hint("the daemon may be another version of cutover; compare `cutover --version` with GET /v1/health")
        })
    }

    /// A request whose answer is read as it arrives (progress events, logs).
    /// An error status is turned into the daemon's error message.
    pub async fn stream(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<ResponseStream, CliError> {
        let response = self.send(method.clone(), path, body).await?;
        let status = response.status();
        let body = response.into_body();
        if !status.is_success() {
            let bytes = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            return Err(api_error(status, &bytes));
        }
        Ok(ResponseStream {
            body,
            buffer: Vec::new(),
            what: format!("{method} {path}"),
            done: false,
        })
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<hyper::Response<Incoming>, CliError> {
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
        sender.send_request(req).await.map_err(|e| {
            CliError::failure(format!(
                "the daemon closed the connection during {method} {path}: {e}"
            ))
        })
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Bytes), CliError> {
        let response = self.send(method.clone(), path, body).await?;
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

/// The body of a streamed answer, as lines or as chunks.
pub struct ResponseStream {
    body: Incoming,
    buffer: Vec<u8>,
    what: String,
    done: bool,
}

impl ResponseStream {
    /// The next chunk of the body; `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, CliError> {
        loop {
            match self.body.frame().await {
                None => return Ok(None),
                Some(Err(e)) => {
                    return Err(CliError::failure(format!(
                        "the daemon's answer to {} broke off: {e}",
                        self.what
                    )))
                }
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        return Ok(Some(data));
                    }
                }
            }
        }
    }

    /// The next line, without its newline; `None` at the end of the body. A
    /// last line without a newline is still returned.
    pub async fn line(&mut self) -> Result<Option<String>, CliError> {
        loop {
            if let Some(at) = self.buffer.iter().position(|b| *b == b'\n') {
                let rest = self.buffer.split_off(at + 1);
                let mut line = std::mem::replace(&mut self.buffer, rest);
                line.pop();
                return Ok(Some(String::from_utf8_lossy(&line).into_owned()));
            }
            if self.done {
                if self.buffer.is_empty() {
                    return Ok(None);
                }
                let line = std::mem::take(&mut self.buffer);
                return Ok(Some(String::from_utf8_lossy(&line).into_owned()));
            }
            match self.chunk().await? {
                Some(data) => self.buffer.extend_from_slice(&data),
                None => self.done = true,
            }
        }
    }
}

fn api_error(status: StatusCode, body: &[u8]) -> CliError {
    let exit = if status.is_client_error() {
        ExitStatus::BadInput
    } else {
        ExitStatus::Failure
    };
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(err) => CliError::new(exit, Report::from(err)),
        Err(_) => CliError::new(
            exit,
            format!(
                "the daemon answered {status}: {}",
                String::from_utf8_lossy(body).trim()
            ),
        ),
    }
}
