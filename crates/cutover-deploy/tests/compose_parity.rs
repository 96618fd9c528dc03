//! What the engine is asked to run, against Docker Compose v2 on the same
//! engine: one compose service with every engine option cutover passes
//! through is created by `docker-compose create` and by cutover, and the
//! two containers' settings, as `docker inspect` reports them, must agree.
//!
//! Needs the engine and the local base image (scripts/images.sh), and the
//! Compose v2 binary (scripts/compose-v2.sh); a missing one fails the test.
//! Each run uses its own project names and removes only what it created.

use std::process::Command;

use serde_json::Value;

use cutover_compose::{load_project, LoadOptions};
use cutover_deploy::specs;
use cutover_docker::{DockerEngine, Engine};

const COMPOSE: &str = r#"
services:
  svc:
    image: cutover-base:bookworm
    pull_policy: never
    command: ["sleep", "infinity"]
    stop_signal: SIGQUIT
    stop_grace_period: 3s
    hostname: opts01
    domainname: example.internal
    cap_add: [NET_ADMIN]
    cap_drop: [MKNOD]
    dns: 10.0.0.2
    dns_search: [example.internal]
    dns_opt: ["ndots:2"]
    sysctls:
      net.core.somaxconn: 1024
    ulimits:
      nproc: 512
      nofile: {soft: 20000, hard: 40000}
    init: true
    tmpfs: [/run, "/tmp:size=64m,mode=1777"]
    shm_size: 128m
    devices: ["/dev/null:/dev/xnull:rw"]
    security_opt: ["no-new-privileges:true"]
    read_only: true
    group_add: [audio]
    ipc: shareable
    mem_limit: 256m
    memswap_limit: 512m
    mem_reservation: 64m
    cpus: 0.5
    cpu_shares: 512
    pids_limit: 100
    oom_score_adj: 100
    tty: true
    stdin_open: true
    runtime: runc
    cgroup: private
    cgroup_parent: /cutover-parity
    cpuset: "0"
    mem_swappiness: 10
    oom_kill_disable: true
    device_cgroup_rules: ["c 1:3 mr"]
    mac_address: 02:42:ac:11:00:42
    expose: ["8080", "9000-9001/udp"]
    volumes:
      - ./data:/data:ro
      - type: bind
        source: ./conf
        target: /conf/
"#;

/// The settings compared, as paths into `docker inspect`'s JSON.
const FIELDS: &[&str] = &[
    "/Config/Hostname",
    "/Config/Domainname",
    "/Config/StopSignal",
    "/Config/StopTimeout",
    "/Config/Tty",
    "/Config/OpenStdin",
    "/Config/ExposedPorts",
    "/Config/Cmd",
    "/HostConfig/CapAdd",
    "/HostConfig/CapDrop",
    "/HostConfig/Dns",
    "/HostConfig/DnsSearch",
    "/HostConfig/DnsOptions",
    "/HostConfig/Sysctls",
    "/HostConfig/Ulimits",
    "/HostConfig/Init",
    "/HostConfig/Tmpfs",
    "/HostConfig/ShmSize",
    "/HostConfig/Devices",
    "/HostConfig/SecurityOpt",
    "/HostConfig/ReadonlyRootfs",
    "/HostConfig/GroupAdd",
    "/HostConfig/IpcMode",
    "/HostConfig/Memory",
    "/HostConfig/MemorySwap",
    "/HostConfig/MemoryReservation",
    "/HostConfig/NanoCpus",
    "/HostConfig/CpuShares",
    "/HostConfig/PidsLimit",
    "/HostConfig/OomScoreAdj",
    "/HostConfig/Privileged",
    "/HostConfig/Runtime",
    "/HostConfig/CgroupnsMode",
    "/HostConfig/CgroupParent",
    "/HostConfig/CpusetCpus",
    "/HostConfig/CpuPeriod",
    "/HostConfig/CpuQuota",
    "/HostConfig/MemorySwappiness",
    "/HostConfig/OomKillDisable",
    "/HostConfig/DeviceCgroupRules",
];

/// Removes this test's containers and networks, also when it panics.
struct Cleanup {
    compose_project: String,
    dir: std::path::PathBuf,
    containers: Vec<String>,
    networks: Vec<String>,
    /// The project's folder: `docker-compose down` reads its file, so it
    /// goes last (fields drop after `drop` runs).
    _tmp: tempfile::TempDir,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = Command::new(cutover_test::compose_v2::binary())
            .args(["-p", &self.compose_project, "down", "--timeout", "0"])
            .current_dir(&self.dir)
            .output();
        for c in &self.containers {
            let _ = Command::new("docker").args(["rm", "-f", c]).output();
        }
        for n in &self.networks {
            let _ = Command::new("docker").args(["network", "rm", n]).output();
        }
    }
}

fn inspect(container: &str) -> Value {
    let out = Command::new("docker")
        .args(["inspect", container])
        .output()
        .expect("docker runs");
    assert!(
        out.status.success(),
        "docker inspect {container}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v[0].clone()
}

/// The container's mounts as (type, source, destination, writable), sorted:
/// Compose asks with `Mounts`, cutover partly with `Binds`, and the
/// engine reports both the same way.
fn mounts(c: &Value) -> Vec<(String, String, String, bool)> {
    let mut out: Vec<_> = c["Mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            (
                m["Type"].as_str().unwrap_or_default().to_string(),
                m["Source"].as_str().unwrap_or_default().to_string(),
                m["Destination"].as_str().unwrap_or_default().to_string(),
                m["RW"].as_bool().unwrap_or_default(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Lists whose order the engine does not keep are compared sorted.
fn normalized(v: &Value) -> Value {
    match v {
        Value::Array(a) => {
            let mut items: Vec<Value> = a.iter().map(normalized).collect();
            items.sort_by_key(|i| i.to_string());
            Value::Array(items)
        }
        v => v.clone(),
    }
}

/// The service `svc` of `compose` (in a folder with `files`), once made by
/// `docker-compose <verb> svc` and once by cutover (created, and started
/// for `up`): the two container names, and what removes them and the
/// folder.
async fn both(
    compose: &str,
    files: &[(&str, &str)],
    env: &[(&str, &str)],
    verb: &str,
) -> (String, String, Cleanup) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let project = format!("cdparity{}x{nanos:x}", std::process::id());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("parity");
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::create_dir_all(dir.join("conf")).unwrap();
    std::fs::write(dir.join("compose.yaml"), compose).unwrap();
    for (name, content) in files {
        std::fs::write(dir.join(name), content).unwrap();
    }

    let compose_project = format!("{project}-compose");
    let mut cleanup = Cleanup {
        compose_project: compose_project.clone(),
        dir: dir.clone(),
        containers: Vec::new(),
        networks: Vec::new(),
        _tmp: tmp,
    };
    let mut args = vec!["-p", &compose_project, verb];
    if verb == "up" {
        args.push("-d");
    }
    args.push("svc");
    let out = Command::new(cutover_test::compose_v2::binary())
        .args(&args)
        .envs(env.iter().copied())
        .current_dir(&dir)
        .output()
        .expect("docker-compose runs");
    assert!(
        out.status.success(),
        "docker-compose {verb} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let resolved = load_project(&LoadOptions {
        working_dir: dir.clone(),
        project_name: Some(project.clone()),
        process_env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..LoadOptions::default()
    })
    .unwrap();
    let engine = DockerEngine::connect().await.expect("a Docker engine");
    for n in &resolved.networks {
        cleanup.networks.push(n.name.clone());
        engine
            .ensure_network(&specs::network(&project, &n.name, Some(n)))
            .await
            .unwrap();
    }
    let acc = resolved.accessory("svc").unwrap();
    cleanup.containers.push(acc.container_name.clone());
    let spec = specs::accessory_container(
        &acc.container_name,
        &acc.service,
        &project,
        &specs::Gateways::default(),
    )
    .unwrap();
    engine.create_container(&spec).await.unwrap();
    if verb == "up" {
        engine.start_container(&acc.container_name).await.unwrap();
    }
    (
        format!("{compose_project}-svc-1"),
        acc.container_name.clone(),
        cleanup,
    )
}

#[tokio::test]
async fn engine_options_reach_the_engine_as_docker_compose_sends_them() {
    let (compose, cutover, _cleanup) = both(COMPOSE, &[], &[], "create").await;
    let theirs = inspect(&compose);
    let ours = inspect(&cutover);

    let mut differ = Vec::new();
    for f in FIELDS {
        let (a, b) = (
            normalized(ours.pointer(f).unwrap_or(&Value::Null)),
            normalized(theirs.pointer(f).unwrap_or(&Value::Null)),
        );
        if a != b {
            differ.push(format!("{f}: cutover {a}, compose {b}"));
        }
    }
    if mounts(&ours) != mounts(&theirs) {
        differ.push(format!(
            "Mounts: cutover {:?}, compose {:?}",
            mounts(&ours),
            mounts(&theirs)
        ));
    }
    assert!(
        differ.is_empty(),
        "the engine got different settings from cutover and from Docker Compose:\n  {}",
        differ.join("\n  ")
    );
}

/// Secrets and configs from a file, the environment and inline content:
/// each container has the same files, with the same contents, owner and
/// mode, as `docker compose up` gives it.
#[tokio::test]
async fn secrets_and_configs_are_the_files_docker_compose_provides() {
    let compose = r#"
services:
  svc:
    image: cutover-base:bookworm
    pull_policy: never
    command: ["sleep", "infinity"]
    stop_signal: SIGKILL
    secrets:
      - db_password
      - source: api_key
        target: /etc/app/api.key
        uid: "1000"
        gid: "1000"
        mode: 0400
    configs:
      - app_cfg
      - source: inline
        target: /etc/inline.conf
        mode: 0644
secrets:
  db_password:
    file: ./db_password.txt
  api_key:
    environment: API_KEY
configs:
  app_cfg:
    file: ./app.cfg
  inline:
    content: |
      port = ${PORT:-80}
"#;
    let (theirs, ours, _cleanup) = both(
        compose,
        &[("db_password.txt", "hunter2\n"), ("app.cfg", "cfg = 1\n")],
        &[("API_KEY", "s3cr3t"), ("PORT", "8080")],
        "up",
    )
    .await;
    let paths = [
        "/run/secrets/db_password",
        "/etc/app/api.key",
        "/app_cfg",
        "/etc/inline.conf",
    ];
    let look = |container: &str| -> Vec<String> {
        paths
            .iter()
            .map(|p| {
                let out = Command::new("docker")
                    .args(["exec", container, "sh", "-c"])
                    .arg(format!("stat -c '%a %u %g' {p} && cat {p}"))
                    .output()
                    .expect("docker runs");
                format!(
                    "{p}: {}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                )
            })
            .collect()
    };
    let (a, b) = (look(&ours), look(&theirs));
    eprintln!("files in both containers: {a:#?}");
    assert!(a.iter().all(|l| !l.contains("No such file")), "{a:?}");
    assert_eq!(
        a, b,
        "cutover's files (left) differ from Docker Compose's (right)"
    );
}
