//! Spawning the real `cutover` binary and talking to it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::{TcpStream, UnixStream};

/// Upper bound for anything a test waits on; generous so a loaded CI machine
/// does not fail a correct daemon.
pub const PATIENCE: Duration = Duration::from_secs(20);

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_cutover")
}

/// A `cutover` command with no CUTOVER_* variables inherited from the shell.
pub fn cutover() -> Command {
    cutover_at(Path::new(bin()))
}

/// [`cutover`] of the binary at `program`.
pub fn cutover_at(program: &Path) -> Command {
    let mut cmd = Command::new(program);
    for var in [
        "CUTOVER_SOCKET",
        "CUTOVER_LISTEN",
        "CUTOVER_STATE_DIR",
        "CUTOVER_LOG",
        "CUTOVER_HOST",
        "CUTOVER_CONTEXT",
        "CUTOVER_TOKEN",
        "CUTOVER_TOKEN_FILE",
        "CUTOVER_TLS_CA",
        "CUTOVER_TLS_FINGERPRINT",
        "CUTOVER_SSH_COMMAND",
        "NO_COLOR",
    ] {
        cmd.env_remove(var);
    }
    // The user's own contexts (`context use prod`) must not send a test's
    // commands elsewhere.
    cmd.env("CUTOVER_CONFIG_DIR", "/nonexistent/cutover-tests-config");
    cmd
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .expect("the cutover binary runs")
}

/// Like [`run`], with `input` on stdin.
pub fn run_with_stdin(cmd: &mut Command, input: &str) -> Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the cutover binary runs");
    // Written then closed before the wait, so the child sees the end of it.
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

pub use cutover_test::free_port;

/// A running `cutover serve` with its own temporary socket and state.
pub struct Daemon {
    pub child: Child,
    pub socket: PathBuf,
    pub state_dir: PathBuf,
    pub listen: SocketAddr,
    stderr_path: PathBuf,
}

pub struct DaemonBuilder {
    dir: PathBuf,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    program: Option<PathBuf>,
    nofile: Option<u64>,
    hide: Option<PathBuf>,
    listen: String,
}

impl DaemonBuilder {
    /// The proxy's HTTP listener [default: a free loopback port].
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr.to_string();
        self
    }

    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// An environment variable of the daemon (e.g. DOCKER_HOST).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// Runs this `cutover` binary instead of the one cargo built (a copy a
    /// test replaces on disk, for a binary upgrade).
    pub fn program(mut self, path: &Path) -> Self {
        self.program = Some(path.to_path_buf());
        self
    }

    /// Runs the daemon under `prlimit --nofile=N:N`: a descriptor limit it
    /// cannot raise.
    pub fn nofile(mut self, limit: u64) -> Self {
        self.nofile = Some(limit);
        self
    }

    /// Runs the daemon in a mount namespace where `dir` is an empty tmpfs:
    /// a daemon "on another machine", which cannot read what the client
    /// has there (its project folder, its build contexts).
    pub fn hide(mut self, dir: &Path) -> Self {
        self.hide = Some(dir.to_path_buf());
        self
    }

    pub async fn start(self) -> Daemon {
        let socket = self.dir.join("cutover.sock");
        let state_dir = self.dir.join("state");
        let stderr_path = self.dir.join(format!(
            "stderr-{}.log",
            LOGS.fetch_add(1, Ordering::Relaxed)
        ));
        let stderr = std::fs::File::create(&stderr_path).unwrap();
        let program = self.program.clone().unwrap_or_else(|| bin().into());
        let mut command = match self.nofile {
            Some(n) => {
                let mut c = cutover_at(Path::new("prlimit"));
                c.arg(format!("--nofile={n}:{n}")).arg("--").arg(&program);
                c
            }
            None => cutover_at(&program),
        };
        if let Some(hidden) = &self.hide {
            // unshare and sh exec: the child's pid stays the daemon's.
            let mut c = cutover_at(Path::new("unshare"));
            c.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
                .arg(r#"mount -t tmpfs cutover-hidden "$1" && shift && exec "$@""#)
                .arg("sh")
                .arg(hidden)
                .arg(&program);
            command = c;
        }
        let child = command
            .arg("serve")
            .arg("--listen")
            .arg(&self.listen)
            .arg("--socket")
            .arg(&socket)
            .arg("--state-dir")
            .arg(&state_dir)
            .args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("cutover serve starts");
        let mut daemon = Daemon {
            child,
            socket,
            state_dir,
            listen: "0.0.0.0:0".parse().unwrap(),
            stderr_path,
        };
        daemon.listen = daemon.wait_ready().await;
        daemon
    }
}

static LOGS: AtomicUsize = AtomicUsize::new(0);

impl Daemon {
    /// A daemon in `dir` (reusing its socket and state when started again).
    pub fn in_dir(dir: &Path) -> DaemonBuilder {
        DaemonBuilder {
            dir: dir.to_path_buf(),
            args: Vec::new(),
            envs: Vec::new(),
            program: None,
            nofile: None,
            hide: None,
            listen: "127.0.0.1:0".into(),
        }
    }

    async fn wait_ready(&mut self) -> SocketAddr {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "cutover serve exited with {status} before it was ready:\n{}",
                    self.stderr()
                );
            }
            if let Ok((StatusCode::OK, body)) =
                unix_request(&self.socket, Method::GET, "/v1/health", None).await
            {
                let health: Value = serde_json::from_slice(&body).unwrap();
                return health["listen"].as_str().unwrap().parse().unwrap();
            }
            assert!(
                start.elapsed() < PATIENCE,
                "cutover serve not ready after {PATIENCE:?}:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&str>,
    ) -> (StatusCode, Value) {
        let (status, bytes) = unix_request(
            &self.socket,
            method,
            path,
            body.map(|b| b.as_bytes().to_vec()),
        )
        .await
        .unwrap_or_else(|e| panic!("control request {path} failed: {e}\n{}", self.stderr()));
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        (status, value)
    }

    pub async fn deploy(&self, service: &str, targets: &[String]) -> Value {
        let body = serde_json::json!({
            "targets": targets,
            "health": {"interval": "100ms", "timeout": "1s"},
            "timeouts": {"deploy": "10s", "drain": "5s", "websocket_drain": "5s"},
        });
        let (status, answer) = self
            .request(
                Method::PUT,
                &format!("/v1/services/{service}"),
                Some(&body.to_string()),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "deploy failed: {answer}\n{}",
            self.stderr()
        );
        answer
    }

    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// Waits (bounded) for the process to exit.
    pub async fn wait_exit(&mut self) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "cutover serve did not exit:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn stop(&mut self) -> ExitStatus {
        self.signal("TERM");
        self.wait_exit().await
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn send<S>(stream: S, req: Request<Full<Bytes>>) -> Result<(StatusCode, Bytes), BoxError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let response = sender.send_request(req).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

fn build(
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
    headers: &[(&str, &str)],
) -> Request<Full<Bytes>> {
    let mut req = Request::builder().method(method).uri(path);
    // One Host, the caller's if it names one: the proxy refuses two.
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req = req.header("host", "cutover");
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.body(Full::new(Bytes::from(body.unwrap_or_default())))
        .unwrap()
}

pub async fn unix_request(
    socket: &Path,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
) -> Result<(StatusCode, Bytes), BoxError> {
    let stream = UnixStream::connect(socket).await?;
    send(stream, build(method, path, body, &[])).await
}

pub async fn tcp_request(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<(StatusCode, Bytes), BoxError> {
    let stream = TcpStream::connect(addr).await?;
    send(stream, build(method, path, None, headers)).await
}

/// Polls `GET path` on the proxy listener until it answers 200 (bounded).
pub async fn get_until_ok(addr: SocketAddr, path: &str) -> String {
    let start = Instant::now();
    loop {
        if let Ok((StatusCode::OK, body)) = tcp_request(addr, Method::GET, path, &[]).await {
            return String::from_utf8_lossy(&body).into_owned();
        }
        assert!(
            start.elapsed() < PATIENCE,
            "GET {path} via {addr} never answered 200"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// GETs of `/` on a fresh connection each, until stopped; bounded in count
/// too. Each answer is tallied by its body (the test origin answers with
/// its name).
pub struct Load {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<Tally>,
}

#[derive(Debug, Default)]
pub struct Tally {
    pub bodies: std::collections::BTreeMap<String, u64>,
    pub failed: Vec<String>,
}

impl Load {
    pub fn start(addr: SocketAddr) -> Load {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let done = stop.clone();
        let task = tokio::spawn(async move {
            let mut tally = Tally::default();
            for _ in 0..200_000 {
                if done.load(Ordering::Relaxed) {
                    break;
                }
                match tcp_request(addr, Method::GET, "/", &[]).await {
                    Ok((s, body)) if s.is_success() => {
                        let body = String::from_utf8_lossy(&body).into_owned();
                        *tally.bodies.entry(body).or_default() += 1;
                    }
                    Ok((s, body)) => tally
                        .failed
                        .push(format!("{s}: {}", String::from_utf8_lossy(&body))),
                    Err(e) => tally.failed.push(e.to_string()),
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            tally
        });
        Load { stop, task }
    }

    pub async fn stop(self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap()
    }
}

impl Tally {
    pub fn ok(&self) -> u64 {
        self.bodies.values().sum()
    }

    pub fn assert_none_failed(&self) {
        assert!(self.ok() > 0, "the load sent nothing");
        assert!(
            self.failed.is_empty(),
            "{} of {} requests failed: {:?}",
            self.failed.len(),
            self.ok() as usize + self.failed.len(),
            &self.failed[..self.failed.len().min(5)]
        );
    }
}

/// Polls `GET /` at `addr` until it answers 200 with `want` (bounded).
pub async fn answers(addr: SocketAddr, want: &str) {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < PATIENCE {
        if let Ok((s, body)) = tcp_request(addr, Method::GET, "/", &[]).await {
            let body = String::from_utf8_lossy(&body);
            last = format!("{s} {body}");
            if s.is_success() && body == want {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{addr} never answered {want:?}; last {last}");
}
