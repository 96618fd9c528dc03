//! The harness against the real thing: a private `cutover serve`, athens and Redis on the
//! Docker engine, three deploys under load (the second one broken on purpose). A
//! correctness check, not a timing one: it asserts that nothing failed, never how fast.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const PROJECT: &str = "cvlt";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/cutover-loadtest is two levels below the workspace root")
        .to_path_buf()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn expect_success(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// `cutover` is a bin-only crate, so it cannot be a dev-dependency: cargo builds it here
/// (a no-op when it is current) into the workspace's target directory.
fn cutover_binary(root: &Path) -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(root)
        .args(["build", "-q", "-p", "cutover"])
        .output()
        .expect("cargo runs");
    expect_success("cargo build -p cutover", &out);
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| if t.is_absolute() { t } else { root.join(t) })
        .unwrap_or_else(|| root.join("target"));
    let bin = target.join("debug").join("cutover");
    assert!(
        bin.is_file(),
        "cargo built cutover but {} is missing\nhint: set CARGO_TARGET_DIR to the target directory cargo uses",
        bin.display()
    );
    bin
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI runs");
    text(&out.stdout)
}

fn remove_by_label(project: &str) {
    let filter = format!("label=cutover.project={project}");
    for (list, remove) in [
        (&["ps", "-aq"][..], &["rm", "-f", "-v"][..]),
        (&["network", "ls", "-q"][..], &["network", "rm"][..]),
        (&["volume", "ls", "-q"][..], &["volume", "rm", "-f"][..]),
    ] {
        let mut args = list.to_vec();
        args.extend(["--filter", &filter]);
        let found = docker(&args);
        let ids: Vec<&str> = found.lines().filter(|l| !l.is_empty()).collect();
        if !ids.is_empty() {
            let mut args = remove.to_vec();
            args.extend(ids);
            docker(&args);
        }
    }
}

/// Stops the daemon (SIGTERM, then SIGKILL after 10 s) and removes the project's
/// containers, also when an assertion panicked halfway.
struct Daemon {
    child: Child,
    cutover: PathBuf,
    socket: PathBuf,
    compose: PathBuf,
    log: PathBuf,
}

impl Daemon {
    fn cutover(&self, args: &[&str]) -> Output {
        Command::new(&self.cutover)
            .args(args)
            .env("CUTOVER_SOCKET", &self.socket)
            .output()
            .expect("cutover runs")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let compose = self.compose.to_string_lossy().into_owned();
        let _ = self.cutover(&["down", "-f", &compose, "-p", PROJECT, "--volumes"]);
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        remove_by_label(PROJECT);
        if std::thread::panicking() {
            eprintln!("--- daemon log ---\n{}", self.log());
        }
    }
}

use cutover_test::free_port;

/// Rewrites one `key: value` line of the x-cutover block; panics when the line is gone,
/// so a changed example file breaks this test loudly instead of silently testing defaults.
fn set_line(yaml: &str, key: &str, value: &str) -> String {
    let mut found = false;
    let out: Vec<String> = yaml
        .lines()
        .map(|l| {
            let trimmed = l.trim_start();
            if trimmed.starts_with(&format!("{key}:")) && !found {
                found = true;
                let indent = &l[..l.len() - trimmed.len()];
                format!("{indent}{key}: {value}")
            } else {
                l.to_string()
            }
        })
        .collect();
    assert!(found, "examples/athens/compose.yaml has no `{key}:` line");
    out.join("\n") + "\n"
}

#[test]
fn three_deploys_under_load_lose_nothing() {
    cutover_test::images::require_docker();
    let root = workspace_root();
    let athens = root.join("examples/athens");

    let out = Command::new(athens.join("build-local.sh"))
        .current_dir(&root)
        .output()
        .expect("build-local.sh runs");
    expect_success("examples/athens/build-local.sh", &out);
    let cutover = cutover_binary(&root);

    let tmp = tempfile::tempdir().expect("a temp dir");
    let work = tmp.path();
    // The old color's WebSockets are closed (1012) this long after a switch: longer than
    // the pause between deploys, so the next deploy renames a still-draining old color out
    // of its slot, and short enough that every drain ends within the run.
    let original = std::fs::read_to_string(athens.join("compose.yaml")).expect("compose.yaml");
    let good = set_line(&original, "websocket_drain_timeout", "15s");
    // A health path athens answers 404 on: the new color never turns healthy, the deploy
    // gives up after deploy_timeout and the old color keeps serving.
    let broken = set_line(&good, "path", "/api/v1/open/no-such-health-check").replace(
        "      websocket_drain_timeout: 15s\n",
        "      websocket_drain_timeout: 15s\n      deploy_timeout: 5s\n",
    );
    assert!(
        broken.contains("deploy_timeout: 5s"),
        "the broken compose file has its deploy_timeout"
    );
    std::fs::write(work.join("compose.yaml"), good).unwrap();
    std::fs::write(work.join("broken.yaml"), broken).unwrap();
    // Interpolation of the images build-local.sh built; read next to each compose file.
    std::fs::copy(athens.join(".env"), work.join(".env")).expect("build-local.sh wrote .env");

    remove_by_label(PROJECT);
    let port = free_port();
    let socket = work.join("s.sock");
    let log = work.join("daemon.log");
    let child = Command::new(&cutover)
        .arg("serve")
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--socket")
        .arg(&socket)
        .arg("--state-dir")
        .arg(work.join("state"))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(work.join("daemon.err")).unwrap())
        .spawn()
        .expect("cutover serve starts");
    let mut daemon = Daemon {
        child,
        cutover: cutover.clone(),
        socket: socket.clone(),
        compose: work.join("compose.yaml"),
        log: log.clone(),
    };

    // The daemon answers status once its socket and proxy are up; bounded to 20 s.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if socket.exists() && daemon.cutover(&["status"]).status.success() {
            break;
        }
        if let Ok(Some(status)) = daemon.child.try_wait() {
            panic!(
                "cutover serve exited ({status}):\n{}{}",
                daemon.log(),
                std::fs::read_to_string(work.join("daemon.err")).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "cutover serve did not answer on {} within 20 s",
            socket.display()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let compose = work.join("compose.yaml");
    let out = Command::new(&cutover)
        .args(["deploy", "-f"])
        .arg(&compose)
        .args(["-p", PROJECT])
        .env("CUTOVER_SOCKET", &socket)
        .env("APP_VERSION", "v0")
        .output()
        .expect("cutover deploy runs");
    expect_success("the first deploy (v0)", &out);

    let deploy_cmd = format!(
        "if [ \"${{LOADTEST_BROKEN:-}}\" = 1 ]; then f='{broken}'; else f='{good}'; fi; \
         APP_VERSION=\"$LOADTEST_VERSION\" CUTOVER_SOCKET='{socket}' '{cutover}' deploy -f \"$f\" -p {PROJECT}",
        broken = work.join("broken.yaml").display(),
        good = compose.display(),
        socket = socket.display(),
        cutover = cutover.display(),
    );
    let report_path = work.join("report.json");
    // Deploys run one after another, each after --deploy-interval; 40 s leaves room for
    // all three (the broken one waits out its 5 s deploy_timeout) before traffic stops.
    let out = Command::new(env!("CARGO_BIN_EXE_cutover-loadtest"))
        .arg("--url")
        .arg(format!("http://127.0.0.1:{port}"))
        .args([
            "--duration",
            "40s",
            "--keepalive",
            "8",
            "--fresh",
            "2",
            "--ws",
            "10",
        ])
        .args([
            "--deploys",
            "3",
            "--deploy-interval",
            "4s",
            "--broken-at",
            "2",
        ])
        .arg("--assert-zero-failures")
        .arg("--json")
        .arg(&report_path)
        .arg("--deploy-cmd")
        .arg(&deploy_cmd)
        .output()
        .expect("cutover-loadtest runs");
    println!("{}", text(&out.stdout));
    eprintln!("{}", text(&out.stderr));
    expect_success("cutover-loadtest --assert-zero-failures", &out);

    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).expect("report.json"))
            .expect("report.json is JSON");
    assert_eq!(report["failures"], Value::Array(vec![]), "{report:#}");
    let http = &report["http"];
    assert!(http["ok_2xx"].as_u64().unwrap() > 0, "{report:#}");
    assert_eq!(http["ok_2xx"], http["sent"], "{report:#}");
    assert_eq!(http["connection_errors"], 0, "{report:#}");
    assert_eq!(http["timeouts"], 0, "{report:#}");
    assert_eq!(http["non_2xx"], serde_json::json!({}), "{report:#}");
    let ws = &report["websocket"];
    assert!(ws["opened"].as_u64().unwrap() >= 10, "{report:#}");
    assert_eq!(ws["cuts"], 0, "{report:#}");
    assert_eq!(ws["connect_errors"], 0, "{report:#}");
    assert_eq!(ws["echo_mismatches"], 0, "{report:#}");
    assert_eq!(report["continuity"]["ok"], true, "{report:#}");

    let deploys = report["deploys"].as_array().expect("deploys");
    assert_eq!(deploys.len(), 3, "{report:#}");
    for (d, version) in [(&deploys[0], "v1"), (&deploys[2], "v3")] {
        assert_eq!(d["expected_failure"], false, "{report:#}");
        assert_eq!(d["exit_code"], 0, "{report:#}");
        assert_eq!(d["ok"], true, "{report:#}");
        assert_eq!(d["version_after"], version, "{report:#}");
    }
    let d2 = &deploys[1];
    assert_eq!(d2["expected_failure"], true, "{report:#}");
    assert_eq!(d2["ok"], true, "{report:#}");
    assert_eq!(d2["exit_code"], 1, "{report:#}");

    // The broken deploy left v1 serving, and v3 replaced it.
    let status = daemon.cutover(&["status", "-f", &compose.to_string_lossy(), "-p", PROJECT]);
    expect_success("cutover status", &status);
    println!("{}", text(&status.stdout));
}
