//! A small HTTP/1.1 client for the daemon's control API, over the Unix
//! socket, ssh or HTTPS (docs/remote.md).

mod connect;
pub mod host;

use std::sync::Mutex;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::Serialize;

use cutover_core::diag::Report;
use cutover_core::sync::lock;
use cutover_core::wire::ErrorBody;

use crate::error::CliError;
use crate::exit::ExitStatus;

pub use connect::Endpoint;
use connect::{ConnectError, SshStderr};
pub use host::Host;

/// A request body and its media type.
pub struct Body {
    pub content_type: &'static str,
    pub bytes: Bytes,
}

impl Body {
    pub fn json(value: &impl Serialize) -> Body {
        Body {
            content_type: "application/json",
            bytes: serde_json::to_vec(value)
                .expect("requests serialize")
                .into(),
        }
    }
}

/// A connection whose last answer was read to its end, ready for another
/// request: over ssh each connection is a process and a handshake.
struct Idle {
    sender: SendRequest<Full<Bytes>>,
    ssh_said: Option<SshStderr>,
}

pub struct DaemonClient {
    endpoint: Endpoint,
    idle: Mutex<Option<Idle>>,
}

impl DaemonClient {
    pub fn new(endpoint: Endpoint) -> DaemonClient {
        DaemonClient {
            endpoint,
            idle: Mutex::new(None),
        }
    }

    pub fn host(&self) -> &Host {
        &self.endpoint.host
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, CliError> {
        let (status, body) = self.request(Method::GET, path, None).await?;
        if !status.is_success() {
            return Err(api_error(status, &body));
        }
        parse_answer("GET", path, &body)
    }

    /// `POST path` with a JSON body; the answer parsed as JSON.
    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T, CliError> {
        self.call(Method::POST, path, Some(Body::json(body))).await
    }

    /// `method path` with `body`; a 2xx answer parsed as JSON.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Body>,
    ) -> Result<T, CliError> {
        let (status, answer) = self.request(method.clone(), path, body).await?;
        if !status.is_success() {
            return Err(api_error(status, &answer));
        }
        parse_answer(method.as_str(), path, &answer)
    }

    /// A request whose answer is read as it arrives (progress events, logs).
    /// An error status is turned into the daemon's error message.
    pub async fn stream(
        &self,
        method: Method,
        path: &str,
        body: Option<Body>,
    ) -> Result<ResponseStream, CliError> {
        let (response, _) = self.send(method.clone(), path, body).await?;
        let status = response.status();
        let headers = response.headers().clone();
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
            headers,
            body,
            buffer: Vec::new(),
            what: format!("{method} {path}"),
            done: false,
        })
    }

    /// Sends one request on an idle connection, or a new one. The
    /// connection comes back with the answer, to be kept once its body is
    /// read.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Body>,
    ) -> Result<(hyper::Response<Incoming>, Idle), CliError> {
        let (bytes, content_type) = match body {
            Some(body) => (body.bytes, Some(body.content_type)),
            None => (Bytes::new(), None),
        };
        let request = || {
            let mut req = Request::builder()
                .method(&method)
                .uri(path)
                .header(hyper::header::HOST, "cutover");
            if let (Some(token), Host::Https { .. }) = (&self.endpoint.token, &self.endpoint.host) {
                req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
            }
            if let Some(content_type) = content_type {
                req = req.header(hyper::header::CONTENT_TYPE, content_type);
            }
            req.body(Full::new(bytes.clone())).expect("a valid request")
        };
        let idle = lock(&self.idle).take();
        let reused = idle.as_ref().is_some_and(|i| !i.sender.is_closed());
        let mut conn = match idle {
            Some(idle) if reused => idle,
            _ => self.open().await?,
        };
        let mut sent = send_on(&mut conn, request()).await;
        // The daemon may have closed a kept connection just as it was
        // reused: a request that is safe to repeat goes again on a new one
        // (a deploy is never sent twice).
        let idempotent = matches!(
            method,
            Method::GET | Method::HEAD | Method::PUT | Method::DELETE
        );
        if sent.is_err() && reused && idempotent {
            conn = self.open().await?;
            sent = send_on(&mut conn, request()).await;
        }
        match sent {
            Ok(response) => Ok((response, conn)),
            Err(e) => {
                let said = match &conn.ssh_said {
                    Some(said) => said.text().await,
                    None => None,
                };
                Err(match said {
                    // ssh connected the pipes, then refused (host key,
                    // authentication) or the far side failed.
                    Some(said) => self.unreachable(ConnectError {
                        error: std::io::Error::other("ssh ended the connection"),
                        said: Some(said),
                    }),
                    None => CliError::failure(format!(
                        "the daemon at {} closed the connection during {method} {path}: {e}",
                        self.endpoint.host.shown()
                    )),
                })
            }
        }
    }

    async fn open(&self) -> Result<Idle, CliError> {
        let conn = connect::connect(&self.endpoint)
            .await
            .map_err(|e| self.unreachable(e))?;
        let (sender, driver) = hyper::client::conn::http1::handshake(TokioIo::new(conn.io))
            .await
            .map_err(|e| self.unreachable(std::io::Error::other(e).into()))?;
        tokio::spawn(async move {
            let _ = driver.await;
        });
        Ok(Idle {
            sender,
            ssh_said: conn.ssh_said,
        })
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Body>,
    ) -> Result<(StatusCode, Bytes), CliError> {
        let (response, conn) = self.send(method.clone(), path, body).await?;
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
        *lock(&self.idle) = Some(conn);
        Ok((status, body))
    }

    fn unreachable(&self, e: ConnectError) -> CliError {
        let host = &self.endpoint.host;
        let hint = match (host, e.error.kind()) {
            (Host::Unix(_), std::io::ErrorKind::PermissionDenied) => {
                "the socket belongs to another user: run as that user or root, or join the daemon's --socket-group".to_string()
            }
            (Host::Unix(_), _) => "start it with `cutover serve` (or `systemctl start cutover`), or point --socket / CUTOVER_SOCKET at its socket (--host at a daemon elsewhere)".to_string(),
            (Host::Ssh(_), _) => match e.said.as_deref() {
                Some(s) if s.contains("Host key verification failed") || s.contains("REMOTE HOST IDENTIFICATION HAS CHANGED") => {
                    "the host's key is not the one in known_hosts: check it with its administrator, then add it (`ssh-keyscan HOST >> ~/.ssh/known_hosts`)".to_string()
                }
                Some(s) if s.contains("Permission denied") => {
                    "ssh could not log in without a prompt: load the key into the agent (`ssh-add`) or name it in ~/.ssh/config".to_string()
                }
                Some(s) if s.contains("cutover: command not found") || s.contains("cutover: not found") => {
                    "install cutover on the remote host, on the PATH of the ssh user".to_string()
                }
                _ => "check that `ssh HOST cutover dial-stdio` works from here; set CUTOVER_SSH_COMMAND to add ssh options".to_string(),
            },
            (Host::Https { .. }, std::io::ErrorKind::InvalidData) => {
                "the daemon's certificate is not trusted: pass --tls-ca with its certificate, or --tls-fingerprint with the fingerprint `cutover serve` logged".to_string()
            }
            (Host::Https { .. }, _) => {
                "check that the daemon runs with --control-listen on that address and that no firewall is in between".to_string()
            }
        };
        let mut message = format!(
            "cannot reach the cutover daemon at {}: {}",
            host.shown(),
            e.error
        );
        if let Some(said) = &e.said {
            message = format!(
                "{message}; ssh said: {}",
                said.lines().last().unwrap_or(said)
            );
        }
        CliError::new(ExitStatus::Unreachable, message).with_hint(hint)
    }
}

async fn send_on(
    conn: &mut Idle,
    req: Request<Full<Bytes>>,
) -> Result<hyper::Response<Incoming>, hyper::Error> {
    conn.sender.ready().await?;
    conn.sender.send_request(req).await
}

pub fn parse_answer<T: DeserializeOwned>(
    method: &str,
    path: &str,
    body: &[u8],
) -> Result<T, CliError> {
    serde_json::from_slice(body).map_err(|e| {
        CliError::failure(format!(
            "the daemon's answer to {method} {path} is not what this cutover expects: {e}"
        ))
        .with_hint("the daemon may be another version of cutover; compare `cutover --version` with GET /v1/health")
    })
}

/// The body of a streamed answer, as lines or as chunks.
pub struct ResponseStream {
    pub headers: HeaderMap,
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

pub fn api_error(status: StatusCode, body: &[u8]) -> CliError {
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
