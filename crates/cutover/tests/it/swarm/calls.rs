//! Calls to an app by its name on the three-node swarm: a worker calls
//! `http://web:8080` (and the alias `api`), as it would under Compose.
//! The app's gateway answers to those names and relays to the edges, so
//! the calls follow the switch with none failing, and never reach the
//! new color before its gate or the old one after it retired. The
//! colors answer to no name. A gateway whose names change is replaced
//! with none failing either; `down` removes it with the rest.

use std::time::Duration;

use super::{athens_compose, in_task, serves, services, task_exec, text, Cluster};

/// Requests from the caller's task, one by one, each a new connection
/// (bash's /dev/tcp, HTTP/1.0): `N` of them 50 ms apart, one line each:
/// the status line's code, the version athens answered, and the call's
/// milliseconds, name lookup included.
fn calls_script(name: &str, n: u32) -> String {
    format!(
        r#"for i in $(seq 1 {n}); do
  t0=$(date +%s%N)
  if exec 3<>/dev/tcp/{name}/8080; then
    printf 'GET / HTTP/1.0\r\nHost: {name}:8080\r\n\r\n' >&3
    r=$(cat <&3); exec 3<&-
    code=$(printf '%s' "$r" | head -n1 | cut -d' ' -f2)
    v=$(printf '%s' "$r" | grep -o '"version":"[^"]*"' | cut -d'"' -f4)
    echo "$code $v $(( ($(date +%s%N) - t0) / 1000000 ))"
  else
    echo "connect-failed - -"
  fi
  sleep 0.05
done"#
    )
}

/// 200 calls to `web` from the worker, the deploy of `version` starting a
/// second into them, which replaces the gateway or leaves it alone as
/// `replaced` says. The calls' lines.
async fn calls_across(c: &Cluster, version: &str, replaced: bool) -> Vec<String> {
    let calls = task_exec(c, "calls_worker", &calls_script("web", 200))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let out = c.deploy(version, &[]);
    assert!(out.status.success(), "deploy {version}: {}", text(&out));
    let said = text(&out);
    assert_eq!(
        said.contains("replace calls_web, new tasks first"),
        replaced,
        "{said}"
    );
    assert!(!said.contains("start calls_web, answering"), "{said}");
    let done = tokio::task::spawn_blocking(move || calls.wait_with_output().unwrap())
        .await
        .unwrap();
    let lines: Vec<String> = String::from_utf8_lossy(&done.stdout)
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(lines.len(), 200, "{}", text(&done));
    lines
}

/// Field `i` of a call's line.
fn field(line: &str, i: usize) -> &str {
    line.split(' ').nth(i).unwrap_or_default()
}

/// The longest call of `lines`, in ms: not asserted on (a machine's
/// timing), but where a gap in the names would show.
fn slowest(lines: &[String]) -> u64 {
    lines
        .iter()
        .filter_map(|l| field(l, 2).parse().ok())
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_calls_the_app_by_name_across_a_switch_with_no_failure() {
    let c = Cluster::up("calls").await;
    let write = |aliases: &str| {
        let web = format!("    networks:\n      default:\n        aliases: [{aliases}]\n");
        let mut compose = athens_compose("calls", &web, "");
        // The worker: no HTTP client in the image, so bash speaks HTTP.
        compose.push_str(
            "  worker:\n    image: cutover-test-redis:latest\n    command: [sleep, infinity]\n",
        );
        std::fs::write(c.dir.path().join("compose.yaml"), compose).unwrap();
    };
    write("api");

    // 1. v1: the gateway runs beside the colors, with two tasks; `plan`
    //    says so first.
    let out = c.cli(&["plan"], &[("VERSION", "v1")]);
    assert!(out.status.success(), "plan v1: {}", text(&out));
    assert!(
        text(&out).contains("start gateway calls_web, answering for web on calls_default"),
        "{}",
        text(&out)
    );
    let out = c.deploy("v1", &[]);
    assert!(out.status.success(), "deploy v1: {}", text(&out));
    assert!(
        text(&out).contains("start calls_web, answering for web"),
        "{}",
        text(&out)
    );
    for edge in &c.edges {
        serves(*edge, "v1").await;
    }
    assert!(
        services(&c).lines().any(|l| l == "calls_web 2/2"),
        "{}",
        services(&c)
    );
    for name in ["web", "api"] {
        let once = in_task(&c, "calls_worker", &calls_script(name, 1));
        let answer = (field(&once, 0), field(&once, 1));
        assert_eq!(answer, ("200", "v1"), "a call to {name}:8080: {once}");
    }

    // 2. The names are the gateway's: they resolve to its tasks (cutover
    //    gives services no virtual IP, so no IPVS either), and the colors
    //    carry no alias.
    let addrs = |name: &str| {
        let out = in_task(
            &c,
            "calls_worker",
            &format!("getent ahostsv4 {name} | cut -d' ' -f1 | sort -u"),
        );
        out.lines().map(String::from).collect::<Vec<_>>()
    };
    let gateway_tasks = addrs("tasks.calls_web");
    assert_eq!(gateway_tasks.len(), 2, "{gateway_tasks:?}");
    for name in ["web", "api"] {
        assert_eq!(
            addrs(name),
            gateway_tasks,
            "{name} resolves to the gateway's tasks"
        );
    }
    assert!(
        addrs("tasks.calls_web_blue")
            .iter()
            .all(|a| !gateway_tasks.contains(a)),
        "the colors' tasks are not the gateway's"
    );
    let aliases = c.docker(&[
        "service",
        "inspect",
        "calls_web_blue",
        "--format",
        "{{range .Spec.TaskTemplate.Networks}}{{.Aliases}}{{end}}",
    ]);
    assert!(
        !aliases.contains("web") && !aliases.contains("api"),
        "{aliases}"
    );

    // 3. v2 while the worker calls: every call answered, v1 then v2. The
    //    gateway is left as it runs.
    let out = c.cli(&["plan"], &[("VERSION", "v2")]);
    assert!(!text(&out).contains("gateway"), "plan v2: {}", text(&out));
    let lines = calls_across(&c, "v2", false).await;
    let failed: Vec<&String> = lines.iter().filter(|l| !l.starts_with("200 ")).collect();
    assert!(failed.is_empty(), "failed calls: {failed:?}");
    let versions: Vec<&str> = lines.iter().map(|l| field(l, 1)).collect();
    let first_v2 = versions.iter().position(|v| *v == "v2");
    let first_v2 = first_v2.unwrap_or_else(|| panic!("no call reached v2: {versions:?}"));
    assert!(
        first_v2 > 0,
        "the calls began before the switch: {versions:?}"
    );
    assert!(
        versions[first_v2..].iter().all(|v| *v == "v2"),
        "a call reached v1 after the switch: {versions:?}"
    );
    eprintln!(
        "calls: {} to v1, then {} to v2; the slowest took {} ms",
        first_v2,
        lines.len() - first_v2,
        slowest(&lines)
    );

    // 4. A new name: the gateway is replaced task by task, new ones first,
    //    while the worker calls: no call fails, and it answers to the name.
    write("api, backend");
    let out = c.cli(&["plan"], &[("VERSION", "v3")]);
    assert!(
        text(&out).contains("replace gateway calls_web, answering for web on calls_default"),
        "plan v3: {}",
        text(&out)
    );
    let id = |c: &Cluster| c.docker(&["service", "inspect", "calls_web", "--format", "{{.ID}}"]);
    let before = id(&c);
    let lines = calls_across(&c, "v3", true).await;
    let failed: Vec<&String> = lines.iter().filter(|l| !l.starts_with("200 ")).collect();
    assert!(
        failed.is_empty(),
        "failed calls while the gateway was replaced: {failed:?}"
    );
    eprintln!(
        "calls while the gateway was replaced: the slowest took {} ms",
        slowest(&lines)
    );
    assert_eq!(
        id(&c),
        before,
        "updated in place, not removed and made again"
    );
    let once = in_task(&c, "calls_worker", &calls_script("backend", 1));
    assert_eq!((field(&once, 0), field(&once, 1)), ("200", "v3"), "{once}");

    // 4b. Another name: the second update is waited for as the first was
    //     (the engine still shows the first one's end as it starts).
    write("api, backend, store");
    let out = c.deploy("v4", &[]);
    assert!(out.status.success(), "deploy v4: {}", text(&out));
    assert!(
        text(&out).contains("replace calls_web, new tasks first"),
        "{}",
        text(&out)
    );
    let once = in_task(&c, "calls_worker", &calls_script("store", 1));
    assert_eq!((field(&once, 0), field(&once, 1)), ("200", "v4"), "{once}");

    // 5. down takes the gateway with the rest.
    let out = c.cli(&["down"], &[("VERSION", "v2")]);
    assert!(out.status.success(), "down: {}", text(&out));
    assert!(!services(&c).contains("calls_"), "{}", services(&c));
}
