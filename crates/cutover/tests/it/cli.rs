//! The command line's text and exit codes, and where settings come from.

use std::process::Command;

use hyper::Method;

use crate::util::{cutover, run, Daemon};

fn stderr_of(cmd: &mut Command) -> (Option<i32>, String) {
    let out = run(cmd);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn serve_help() {
    let out = run(cutover().args(["serve", "--help"]));
    assert_eq!(out.status.code(), Some(0));
    insta::assert_snapshot!(String::from_utf8_lossy(&out.stdout));
}

#[test]
fn usage_errors_exit_2() {
    let (code, stderr) = stderr_of(cutover().args(["serve", "--connect-timeout", "soon"]));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--connect-timeout"), "{stderr}");
    let (code, _) = stderr_of(cutover().args(["serve", "--threads", "0"]));
    assert_eq!(code, Some(2));
    let (code, _) = stderr_of(cutover().arg("frobnicate"));
    assert_eq!(code, Some(2));
}

#[test]
fn listen_errors_name_the_env_var_or_the_flag() {
    let (code, stderr) = stderr_of(cutover().args(["serve"]).env("CUTOVER_LISTEN", "localhost"));
    assert_eq!(code, Some(2), "{stderr}");
    insta::assert_snapshot!(stderr, @r#"
    error: CUTOVER_LISTEN: "localhost" is not an address with a port
    hint: write IP:PORT, e.g. 0.0.0.0:80, 127.0.0.1:8080 or [::]:80
    "#);

    // A flag beats the environment, and the error names the flag.
    let (code, stderr) = stderr_of(
        cutover()
            .args(["serve", "--listen", "80"])
            .env("CUTOVER_LISTEN", "127.0.0.1:0"),
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.starts_with("error: --listen: \"80\" is not an address with a port\n"),
        "{stderr}"
    );
}

#[tokio::test]
async fn settings_come_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("env.sock");
    let state_dir = dir.path().join("env-state");
    let mut child = cutover()
        .arg("serve")
        .env("CUTOVER_LISTEN", "127.0.0.1:0")
        .env("CUTOVER_SOCKET", &socket)
        .env("CUTOVER_STATE_DIR", &state_dir)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while crate::util::unix_request(&socket, Method::GET, "/v1/health", None)
        .await
        .is_err()
    {
        assert!(
            start.elapsed() < crate::util::PATIENCE,
            "no daemon on CUTOVER_SOCKET"
        );
        assert!(child.try_wait().unwrap().is_none(), "cutover serve exited");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(state_dir.is_dir(), "CUTOVER_STATE_DIR was used");

    // The client finds the daemon the same way.
    let out = run(cutover()
        .args(["status", "--json"])
        .env("CUTOVER_SOCKET", &socket));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test]
async fn status_lists_services() {
    let origin = cutover_test::Origin::start("blue").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::in_dir(dir.path()).start().await;
    daemon.deploy("web", &[origin.target()]).await;
    let out = run(cutover().arg("status").arg("--socket").arg(&daemon.socket));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    let mut lines = stdout.lines();
    assert!(
        lines.next().unwrap().starts_with("SERVICE  COLOR"),
        "{stdout}"
    );
    let row = lines.next().unwrap();
    assert!(row.starts_with("web "), "{stdout}");
    assert!(row.contains(&origin.target()), "{stdout}");
}

#[test]
fn status_without_a_daemon_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stderr) = stderr_of(
        cutover()
            .arg("status")
            .arg("--socket")
            .arg(dir.path().join("none.sock")),
    );
    assert_eq!(code, Some(3), "{stderr}");
    insta::assert_snapshot!(stderr.replace(dir.path().to_str().unwrap(), "[TMP]"), @r"
    error: cannot reach the cutover daemon at [TMP]/none.sock: No such file or directory (os error 2)
    hint: start it with `cutover serve` (or `systemctl start cutover`), or point --socket / CUTOVER_SOCKET at its socket (--host at a daemon elsewhere)
    ");
}

#[test]
fn a_variable_that_is_not_unicode_does_not_panic() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  web:\n    image: ${IMG}\n    x-cutover: {port: 8080}\n",
    )
    .unwrap();
    let (code, stderr) = stderr_of(
        cutover()
            .args(["plan", "--socket"])
            .arg(dir.path().join("none.sock"))
            .current_dir(dir.path())
            .env("IMG", "web:1")
            .env("NOT_UNICODE", std::ffi::OsStr::from_bytes(b"caf\xe9")),
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    // The file resolved; what fails is the missing daemon.
    assert_eq!(code, Some(3), "{stderr}");
}

#[tokio::test]
async fn a_closed_stdout_ends_a_command_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::in_dir(dir.path()).start().await;
    for json in [true, false] {
        let (reader, writer) = std::io::pipe().unwrap();
        // The reader is gone before the command writes: `| head -0`.
        drop(reader);
        let mut cmd = cutover();
        cmd.args(["status", "--socket"])
            .arg(&daemon.socket)
            .current_dir(dir.path())
            .stdout(writer);
        if json {
            cmd.arg("--json");
        }
        let out = cmd.stdin(std::process::Stdio::null()).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "json={json}: {stderr}");
        assert!(stderr.is_empty(), "json={json}: {stderr}");
    }
    assert!(daemon.stop().await.success());
}

/// `cutover config` prints a compose file: Docker Compose v2 reads it, and
/// cutover reads it back to the same project (the fixed point of `config`).
#[test]
fn config_prints_a_compose_file_that_reads_back_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shop");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("compose.yaml"),
        "services:\n  web:\n    image: shop:${TAG:-1}\n    environment: [PASS=pa$$word]\n    x-cutover: {port: 8080}\n  redis:\n    image: redis:7\n    ports: [\"6379:6379\"]\n    cap_add: [NET_ADMIN]\n    mem_limit: 256m\n",
    )
    .unwrap();
    let config = |args: &[&str]| {
        let out = run(cutover().arg("config").args(args).current_dir(&dir));
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (json, warnings) = config(&["--format", "json"]);
    assert!(
        warnings.contains("warning: compose.yaml:8:13: services.redis.ports[0]"),
        "{warnings}"
    );
    let (yaml, _) = config(&[]);
    std::fs::write(dir.join("printed.yaml"), &yaml).unwrap();
    let (again, _) = config(&["-f", "printed.yaml", "--format", "json"]);
    assert_eq!(
        again, json,
        "cutover config of its own output differs:\n{yaml}"
    );
    let compose = run(Command::new(cutover_test::compose_v2::binary())
        .args(["-f", "printed.yaml", "config", "-q"])
        .current_dir(&dir));
    assert!(
        compose.status.success(),
        "Docker Compose refuses cutover's output: {}\n{yaml}",
        String::from_utf8_lossy(&compose.stderr)
    );
    let (services, _) = config(&["--services"]);
    assert_eq!(services, "redis\nweb\n");
    let (quiet, _) = config(&["-q"]);
    assert_eq!(quiet, "");
    let (code, stderr) = stderr_of(
        cutover()
            .args(["config", "-f", "missing.yaml"])
            .current_dir(&dir),
    );
    assert_eq!(code, Some(2), "{stderr}");
}
