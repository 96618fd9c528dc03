//! Deploying from another machine (docs/remote.md): the CLI against a
//! daemon it reaches over ssh (a real OpenSSH server) or over the TLS
//! control listener with a token. The CLI runs in a network namespace of
//! its own (a veth pair to the daemon's address); the daemon runs in a
//! mount namespace where the client's project folder is an empty tmpfs, so
//! everything it uses from there (the build context, the secret file) has
//! to travel with the request.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::deploy::{docker, expect_code, images, json_lines, text, Project};
use crate::util::{answers, bin, cutover, cutover_at, free_port, run, Daemon, PATIENCE};

/// The client's machine: a network namespace joined to this one by a veth
/// pair, so that what the CLI sends crosses a network interface to the
/// daemon's address, not loopback. Removed on drop.
struct Netns {
    name: String,
    host_if: String,
    /// The daemon's side of the link.
    host_ip: String,
}

impl Netns {
    fn new() -> Netns {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let (pid, n) = (std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        // A /30 of 10.231.0.0/16 per process and namespace.
        let (third, fourth) = (pid % 250, (n % 60) * 4);
        let name = format!("cvit-{pid}-{n}");
        let (host_if, ns_if) = (
            format!("cv{}{n}h", pid % 100_000),
            format!("cv{}{n}n", pid % 100_000),
        );
        let host_ip = format!("10.231.{third}.{}", fourth + 1);
        let ns_ip = format!("10.231.{third}.{}", fourth + 2);
        let ip = |args: &[&str]| {
            let out = run(Command::new("ip").args(args));
            assert!(out.status.success(), "ip {args:?}: {}", text(&out.stderr));
        };
        ip(&["netns", "add", &name]);
        let ns = Netns {
            name,
            host_if,
            host_ip,
        };
        ip(&[
            "link",
            "add",
            &ns.host_if,
            "type",
            "veth",
            "peer",
            "name",
            &ns_if,
        ]);
        ip(&["link", "set", &ns_if, "netns", &ns.name]);
        ip(&[
            "addr",
            "add",
            &format!("{}/30", ns.host_ip),
            "dev",
            &ns.host_if,
        ]);
        ip(&["link", "set", &ns.host_if, "up"]);
        let inside = |args: &[&str]| {
            let mut all = vec!["netns", "exec", &ns.name, "ip"];
            all.extend_from_slice(args);
            ip(&all);
        };
        inside(&["addr", "add", &format!("{ns_ip}/30"), "dev", &ns_if]);
        inside(&["link", "set", &ns_if, "up"]);
        inside(&["link", "set", "lo", "up"]);
        ns
    }

    /// `cutover` run inside the namespace.
    fn cutover(&self) -> Command {
        let mut cmd = cutover_at(Path::new("ip"));
        cmd.args(["netns", "exec", &self.name, bin()]);
        cmd
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .output();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// An OpenSSH server on a loopback port that lets the current user in with
/// a key made for the test, and runs commands with this build's `cutover`
/// first on PATH.
struct Sshd {
    child: Child,
    port: u16,
    addr: String,
    dir: PathBuf,
    user: String,
}

impl Sshd {
    fn start(dir: &Path, addr: &str) -> Sshd {
        let keygen = |path: &Path| {
            let out = run(Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(path));
            assert!(out.status.success(), "ssh-keygen: {}", text(&out.stderr));
        };
        keygen(&dir.join("host_key"));
        keygen(&dir.join("client_key"));
        keygen(&dir.join("other_host_key"));
        std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).unwrap();
        // sshd's privilege-separation folder, which the Debian package
        // makes only when its service starts.
        let _ = std::fs::create_dir_all("/run/sshd");
        let port = free_port();
        let bin_dir = Path::new(crate::util::bin())
            .parent()
            .unwrap()
            .to_path_buf();
        let config = format!(
            "Port {port}\nListenAddress {addr}\nHostKey {dir}/host_key\nPidFile {dir}/sshd.pid\n\
             AuthorizedKeysFile {dir}/authorized_keys\nStrictModes no\nUsePAM no\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             PermitRootLogin prohibit-password\nSetEnv PATH={bin}:/usr/local/bin:/usr/bin:/bin\n",
            dir = dir.display(),
            bin = bin_dir.display()
        );
        std::fs::write(dir.join("sshd_config"), config).unwrap();
        let log = std::fs::File::create(dir.join("sshd.log")).unwrap();
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(dir.join("sshd_config"))
            .stderr(log)
            .spawn()
            .expect("sshd (Debian's openssh-server) runs");
        let start = Instant::now();
        while std::net::TcpStream::connect((addr, port)).is_err() {
            assert!(
                start.elapsed() < PATIENCE,
                "sshd did not listen: {}",
                std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let user = text(&run(Command::new("id").arg("-un")).stdout)
            .trim()
            .to_string();
        let sshd = Sshd {
            child,
            port,
            addr: addr.to_string(),
            dir: dir.to_path_buf(),
            user,
        };
        sshd.trust(&dir.join("host_key.pub"));
        sshd
    }

    /// Writes the known_hosts the client checks the server against.
    fn trust(&self, host_key_pub: &Path) {
        let key = std::fs::read_to_string(host_key_pub).unwrap();
        std::fs::write(
            self.dir.join("known_hosts"),
            format!("[{}]:{} {key}", self.addr, self.port),
        )
        .unwrap();
    }

    fn url(&self, socket: &Path) -> String {
        format!(
            "ssh://{}@{}:{}{}",
            self.user,
            self.addr,
            self.port,
            socket.display()
        )
    }

    /// The ssh options a CI job would keep in ~/.ssh/config.
    fn ssh_command(&self) -> String {
        format!(
            "ssh -F /dev/null -i {dir}/client_key -o IdentitiesOnly=yes -o UserKnownHostsFile={dir}/known_hosts -o StrictHostKeyChecking=yes -o LogLevel=ERROR",
            dir = self.dir.display()
        )
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const REMOTE_APP: &str = r#"
name: PROJECT
services:
  web:
    build: ./app
    image: PROJECT-web:dev
    secrets: [api_key]
    x-cutover:
      port: 8080
      deploy_timeout: 10s
      drain_timeout: 1s
secrets:
  api_key:
    file: ./api_key.txt
"#;

fn write_context(project: &Project, greeting: &str) {
    let app = project.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(
        app.join("Dockerfile"),
        format!(
            "FROM {}\nENV NAME={greeting}\nCOPY marker.txt /marker.txt\n",
            cutover_test::images::origin_image()
        ),
    )
    .unwrap();
    std::fs::write(app.join("marker.txt"), greeting).unwrap();
    // Left out by .dockerignore: never uploaded.
    std::fs::write(app.join("big.log"), "x".repeat(4096)).unwrap();
    std::fs::write(app.join(".dockerignore"), "*.log\n").unwrap();
}

/// `cutover ARGS` in the project's folder, through `host`.
fn remote(
    client: &Netns,
    project: &Project,
    host: &str,
    envs: &[(&str, &str)],
    args: &[&str],
) -> Output {
    run(client
        .cutover()
        .current_dir(project.path())
        .args(["--host", host])
        .envs(envs.iter().copied())
        .args(args))
}

fn live_container(client: &Netns, project: &Project, host: &str, envs: &[(&str, &str)]) -> String {
    let out = remote(client, project, host, envs, &["status", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    status["apps"][0]["live"]["container"]
        .as_str()
        .unwrap_or_else(|| panic!("{status}"))
        .to_string()
}

#[tokio::test]
async fn deploy_plan_logs_and_rollback_over_ssh_from_files_the_daemon_cannot_see() {
    images();
    let project = Project::new("cvit-ssh", REMOTE_APP, "");
    write_context(&project, "built-here-1");
    std::fs::write(project.path().join("api_key.txt"), "k-123\n").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::in_dir(dir.path())
        .hide(project.path())
        .start()
        .await;
    let sshd_dir = tempfile::tempdir().unwrap();
    let client = Netns::new();
    let sshd = Sshd::start(sshd_dir.path(), &client.host_ip);
    let host = sshd.url(&daemon.socket);
    let ssh = sshd.ssh_command();
    let envs = [("CUTOVER_SSH_COMMAND", ssh.as_str())];

    // The plan says where bind sources are read: on the daemon's host,
    // where the client's folder does not exist.
    std::fs::write(
        project.path().join("compose.override.yaml"),
        "services:\n  web:\n    volumes: [./data:/data:ro]\n",
    )
    .unwrap();
    let out = remote(&client, &project, &host, &envs, &["plan"]);
    expect_code(&out, 0, &daemon);
    let plan = text(&out.stdout) + &text(&out.stderr);
    assert!(
        plan.contains("does not exist on the daemon's host"),
        "{plan}"
    );
    assert!(plan.contains("relative bind source"), "{plan}");
    std::fs::remove_file(project.path().join("compose.override.yaml")).unwrap();

    // Deploy: the context and the secret are sent; the daemon sees neither.
    let out = remote(&client, &project, &host, &envs, &["deploy"]);
    expect_code(&out, 0, &daemon);
    answers(daemon.listen, "built-here-1").await;
    let container = live_container(&client, &project, &host, &envs);
    let secret = docker(&["exec", &container, "cat", "/run/secrets/api_key"]);
    assert_eq!(secret, "k-123\n");
    let listing = docker(&["exec", &container, "ls", "/"]);
    assert!(listing.contains("marker.txt"), "{listing}");
    // Where the daemon runs, the client's folder is empty.
    let seen = run(Command::new("nsenter")
        .arg(format!("--mount=/proc/{}/ns/mnt", daemon.child.id()))
        .arg("ls")
        .arg("-A")
        .arg(project.path()));
    assert!(
        seen.status.success(),
        "{:?} {} {}",
        seen.status,
        text(&seen.stdout),
        text(&seen.stderr)
    );
    assert_eq!(text(&seen.stdout), "", "the daemon sees the client's files");

    // logs --follow streams through ssh until the client stops it.
    let mut follow = client
        .cutover()
        .current_dir(project.path())
        .args(["--host", &host, "logs", "web", "--follow"])
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(follow.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    if !first.contains("listening") {
        let _ = follow.kill();
        let out = follow.wait_with_output().unwrap();
        panic!(
            "logs --follow printed {first:?}; stderr: {}",
            text(&out.stderr)
        );
    }
    follow.kill().unwrap();
    follow.wait().unwrap();

    // A new context is a new version; rollback brings the first one back.
    write_context(&project, "built-here-2");
    let out = remote(&client, &project, &host, &envs, &["deploy"]);
    expect_code(&out, 0, &daemon);
    answers(daemon.listen, "built-here-2").await;
    let out = remote(&client, &project, &host, &envs, &["rollback"]);
    expect_code(&out, 0, &daemon);
    answers(daemon.listen, "built-here-1").await;

    // The CLI cut off mid-deploy: the deploy goes on in the daemon, and
    // the retried step with the same id follows it from its first step.
    write_context(&project, "built-here-3");
    cut_off_then_retried(&client, &project, &host, &envs, "ssh-run-1", &daemon);
    answers(daemon.listen, "built-here-3").await;

    // A host whose key is not the known one is refused, with a hint.
    sshd.trust(&sshd_dir.path().join("other_host_key.pub"));
    let out = remote(&client, &project, &host, &envs, &["status"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("Host key verification failed"), "{stderr}");
    assert!(stderr.contains("known_hosts"), "{stderr}");

    docker(&["rmi", "-f", "cvit-ssh-web:dev"]);
}

/// A daemon with its TCP control listener over TLS, and a token of `scope`.
struct HttpsDaemon {
    daemon: Daemon,
    addr: String,
    port: u16,
    fingerprint: String,
}

impl HttpsDaemon {
    async fn start(dir: &Path, addr: &str, hide: Option<&Path>) -> HttpsDaemon {
        let port = free_port();
        let mut builder = Daemon::in_dir(dir)
            .arg("--control-listen")
            .arg(format!("{addr}:{port}"));
        if let Some(hidden) = hide {
            builder = builder.hide(hidden);
        }
        let daemon = builder.start().await;
        let cert = daemon.state_dir.join("control-tls/cert.pem");
        let out = run(Command::new("openssl")
            .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
            .arg(&cert));
        let fingerprint = text(&out.stdout)
            .trim()
            .rsplit('=')
            .next()
            .unwrap()
            .to_string();
        HttpsDaemon {
            daemon,
            addr: addr.to_string(),
            port,
            fingerprint,
        }
    }

    fn url(&self) -> String {
        format!("https://{}:{}", self.addr, self.port)
    }

    /// `cutover token create` over the local socket; the token.
    fn token(&self, scope: &str, project: Option<&str>) -> String {
        let mut cmd = cutover();
        cmd.arg("--socket")
            .arg(&self.daemon.socket)
            .args(["token", "create", "--scope", scope]);
        if let Some(p) = project {
            cmd.args(["--project", p]);
        }
        let out = run(&mut cmd);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains(&self.fingerprint),
            "{}",
            text(&out.stderr)
        );
        text(&out.stdout).trim().to_string()
    }
}

#[tokio::test]
async fn https_tokens_have_scopes_and_the_certificate_is_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let d = HttpsDaemon::start(dir.path(), "127.0.0.1", None).await;
    let read = d.token("read", Some("athens"));
    let admin = d.token("admin", None);
    let host = d.url();
    let pin = d.fingerprint.clone();
    let ask = |token: &str, args: &[&str]| {
        run(cutover()
            .args(["--host", &host, "--tls-fingerprint", &pin])
            .env("CUTOVER_TOKEN", token)
            .args(args))
    };

    // A read token reads its project, and nothing else.
    let out = ask(&read, &["history", "-p", "athens", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = ask(&read, &["history", "-p", "sparta", "--json"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("token for project athens"),
        "{}",
        text(&out.stderr)
    );
    let out = ask(&read, &["rollback", "-p", "athens"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("needs a deploy token"),
        "{}",
        text(&out.stderr)
    );
    let out = ask(&read, &["token", "list"]);
    assert_eq!(out.status.code(), Some(2));

    // The list never shows a secret; a revoked token fails at once.
    let out = ask(&admin, &["token", "list", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let list: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.len(), 2);
    let (_, secret) = read.trim_start_matches("cutover_").split_once('_').unwrap();
    assert!(!text(&out.stdout).contains(secret));
    let read_id = read
        .trim_start_matches("cutover_")
        .split_once('_')
        .unwrap()
        .0;
    let out = ask(&admin, &["token", "revoke", read_id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = ask(&read, &["history", "-p", "athens"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("invalid bearer token"),
        "{}",
        text(&out.stderr)
    );

    // Trust: a wrong pin and a CA that did not sign it both fail; the
    // daemon's own certificate as --tls-ca passes, and curl agrees.
    let wrong = "AB:".repeat(31) + "AB";
    let out = run(cutover()
        .args(["--host", &host, "--tls-fingerprint", &wrong])
        .env("CUTOVER_TOKEN", &admin)
        .args(["token", "list"]));
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("not the pinned one"),
        "{}",
        text(&out.stderr)
    );
    let other = tempfile::tempdir().unwrap();
    let other_ca = other.path().join("ca.pem");
    let out = run(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=other",
        ])
        .arg("-keyout")
        .arg(other.path().join("key.pem"))
        .arg("-out")
        .arg(&other_ca));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let cert = d.daemon.state_dir.join("control-tls/cert.pem");
    for (ca, ok) in [(&other_ca, false), (&cert, true)] {
        let out = run(cutover()
            .args(["--host", &host, "--tls-ca"])
            .arg(ca)
            .env("CUTOVER_TOKEN", &admin)
            .args(["token", "list"]));
        assert_eq!(
            out.status.success(),
            ok,
            "{}: {}",
            ca.display(),
            text(&out.stderr)
        );
    }
    let out = run(Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(&cert)
        .args(["-H", &format!("authorization: Bearer {admin}")])
        .arg(format!("{host}/v1/health")));
    assert!(
        text(&out.stdout).contains("\"status\":\"ok\""),
        "{}",
        text(&out.stderr)
    );
    // Plain HTTP on the TLS port gets no answer.
    let out = run(Command::new("curl")
        .args(["-sS", "-m", "5"])
        .arg(format!("http://127.0.0.1:{}/v1/health", d.port)));
    assert!(!out.status.success(), "{}", text(&out.stdout));

    // Guessing is cut off: after 10 failures in a minute, even the right
    // token is refused with 429 from that address.
    let codes: Vec<String> = (0..10)
        .map(|_| {
            let out = run(Command::new("curl")
                .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
                .arg(&cert)
                .args(["-H", "authorization: Bearer cutover_00000000_guess"])
                .arg(format!("{host}/v1/services")));
            text(&out.stdout)
        })
        .collect();
    // The revoked token above was one failure already.
    assert!(codes[..8].iter().all(|c| c == "401"), "{codes:?}");
    assert_eq!(codes.last().map(String::as_str), Some("429"), "{codes:?}");
    let out = run(Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
        .arg(&cert)
        .args(["-H", &format!("authorization: Bearer {admin}")])
        .arg(format!("{host}/v1/services")));
    assert_eq!(text(&out.stdout), "429");
    assert!(
        d.daemon.stderr().contains("invalid bearer token"),
        "{}",
        d.daemon.stderr()
    );
}

#[test]
fn plain_http_on_a_non_loopback_control_address_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(cutover()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--control-listen",
            "0.0.0.0:0",
            "--control-insecure-http",
            "--socket",
        ])
        .arg(dir.path().join("c.sock"))
        .arg("--state-dir")
        .arg(dir.path()));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("0.0.0.0:0 is not a loopback address"),
        "{stderr}"
    );
    assert!(!dir.path().join("c.sock").exists());
}

/// A deploy whose CLI is killed while it builds goes on in the daemon;
/// the retried command with the same `--deploy-id` follows it, replayed
/// from its first step, to its outcome.
fn cut_off_then_retried(
    client: &Netns,
    project: &Project,
    host: &str,
    envs: &[(&str, &str)],
    id: &str,
    daemon: &Daemon,
) {
    let mut cut = client
        .cutover()
        .current_dir(project.path())
        .args(["--host", host, "deploy", "--deploy-id", id])
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    read_until(&mut cut, "build");
    cut.kill().unwrap();
    cut.wait().unwrap();
    let out = remote(
        client,
        project,
        host,
        envs,
        &["deploy", "--deploy-id", id, "--json"],
    );
    expect_code(&out, 0, daemon);
    let events = json_lines(&out);
    assert_eq!(events[0]["event"], "step_started", "{events:?}");
    assert_eq!(events.last().unwrap()["outcome"], "ok", "{events:?}");
}

/// Reads `child`'s stdout until a line contains `want` (bounded).
fn read_until(child: &mut Child, want: &str) -> String {
    let mut seen = String::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let start = Instant::now();
    while start.elapsed() < PATIENCE {
        let Some(Ok(line)) = lines.next() else { break };
        seen.push_str(&line);
        seen.push('\n');
        if line.contains(want) {
            return seen;
        }
    }
    panic!("never saw {want:?} in:\n{seen}");
}

#[tokio::test]
async fn over_https_a_cut_off_deploy_finishes_and_its_retry_attaches() {
    images();
    let project = Project::new("cvit-https", REMOTE_APP, "");
    write_context(&project, "over-tls-1");
    std::fs::write(project.path().join("api_key.txt"), "k-456\n").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let client = Netns::new();
    let d = HttpsDaemon::start(dir.path(), &client.host_ip, Some(project.path())).await;
    let token = d.token("deploy", Some("cvit-https"));
    let host = d.url();
    let envs = [
        ("CUTOVER_TOKEN", token.as_str()),
        ("CUTOVER_TLS_FINGERPRINT", d.fingerprint.as_str()),
    ];

    // --detach prints the id at once; `wait` follows it to its end.
    let out = remote(
        &client,
        &project,
        &host,
        &envs,
        &["deploy", "--detach", "--deploy-id", "ci-7-1"],
    );
    expect_code(&out, 0, &d.daemon);
    assert_eq!(text(&out.stdout).trim(), "ci-7-1");
    let out = remote(&client, &project, &host, &envs, &["wait", "ci-7-1"]);
    expect_code(&out, 0, &d.daemon);
    assert!(
        text(&out.stdout).contains("traffic of web now goes to blue"),
        "{}",
        text(&out.stdout)
    );
    answers(d.daemon.listen, "over-tls-1").await;

    // The CLI is killed as the deploy builds: the deploy goes on, and
    // the retried step with the same id follows it instead of deploying twice.
    write_context(&project, "over-tls-2");
    cut_off_then_retried(&client, &project, &host, &envs, "ci-8-1", &d.daemon);
    answers(d.daemon.listen, "over-tls-2").await;
    let out = remote(&client, &project, &host, &envs, &["history", "--json"]);
    expect_code(&out, 0, &d.daemon);
    let history: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let deploys = history
        .iter()
        .filter(|e| e["operation"] == "deploy")
        .count();
    assert_eq!(deploys, 2, "{history:?}");
    // An id the daemon never saw is a clear 404.
    let out = remote(&client, &project, &host, &envs, &["wait", "ci-9-9"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));

    docker(&["rmi", "-f", "cvit-https-web:dev"]);
}
