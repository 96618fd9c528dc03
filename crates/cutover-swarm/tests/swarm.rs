//! The Swarm adapter against a real Swarm of three engines
//! (`scripts/swarm.sh`): one manager, two workers, local images only.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use cutover_docker::{Engine, LabelFilter, NetworkSpec, Removal};
use cutover_swarm::{
    Cluster, DockerSwarm, HostPort, Mode, NodeRole, NodeState, ServiceCopy, ServiceNetwork,
    ServiceSpec, SwarmError,
};
use cutover_test::images::{ensure_origin_image, require_docker, BASE_IMAGE};
use cutover_test::swarm::TestSwarm;

const CONVERGE: Duration = Duration::from_secs(120);

/// An HTTP/1.0 GET of `url_path` at `ip:8080`, sent from a one-off
/// container on `node` attached to `network`: what a proxy on that node
/// attached to the overlay would reach. bash's /dev/tcp, as the base image
/// has no HTTP client.
fn get_over_overlay(swarm: &TestSwarm, node: usize, network: &str, ip: &str, path: &str) -> String {
    let script = format!(
        "exec 3<>/dev/tcp/{ip}/8080 && printf 'GET {path} HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3"
    );
    swarm
        .docker(
            node,
            &[
                "run",
                "--rm",
                "--network",
                network,
                BASE_IMAGE,
                "bash",
                "-c",
                &script,
            ],
        )
        .unwrap_or_else(|e| panic!("GET {path} at {ip} from node {node}: {e}"))
}

/// Every task the managers remember, so a wait after a change can tell
/// its own failures from history.
async fn task_ids(cluster: &DockerSwarm, service: &str) -> BTreeSet<String> {
    let info = cluster
        .inspect_service(service)
        .await
        .unwrap()
        .expect("the service");
    let tasks = cluster.tasks(&info).await.unwrap();
    tasks.into_iter().map(|t| t.id).collect()
}

fn body(response: &str) -> &str {
    response.split("\r\n\r\n").nth(1).unwrap_or("").trim()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_on_a_three_node_swarm() {
    require_docker();
    let origin = ensure_origin_image().expect("the origin image");
    let swarm = TestSwarm::up("adapter", 3).expect("a swarm of three engines");
    swarm
        .load(&[origin, BASE_IMAGE])
        .expect("images in every node");

    // Only a manager deploys; the refusal says what to point at instead.
    match DockerSwarm::connect_to(&swarm.nodes[1].host).await {
        Err(e @ SwarmError::NotAManager { .. }) => {
            let text = cutover_core::diag::Diagnose::report(&e).to_string();
            assert!(text.contains("docker node ls"), "{text}");
        }
        other => panic!("a worker's engine was taken as a manager: {other:?}"),
    }

    let cluster = DockerSwarm::connect_to(&swarm.manager().host)
        .await
        .expect("the manager");
    let info = cluster.info().await.unwrap();
    assert!(info.is_manager);
    assert_eq!((info.nodes, info.managers), (3, 1));
    let nodes = cluster.nodes().await.unwrap();
    let hostnames: BTreeSet<_> = nodes.iter().map(|n| n.hostname.clone()).collect();
    let expected: BTreeSet<_> = swarm.nodes.iter().map(|n| n.name.clone()).collect();
    assert_eq!(hostnames, expected);
    assert!(
        nodes.iter().all(|n| n.state == NodeState::Ready),
        "{nodes:?}"
    );
    let managers: Vec<_> = nodes
        .iter()
        .filter(|n| n.role == NodeRole::Manager)
        .collect();
    assert_eq!(managers.len(), 1);
    assert!(managers[0].leader && managers[0].hostname == swarm.manager().name);
    let node_ids: BTreeSet<_> = nodes.iter().map(|n| n.id.clone()).collect();

    let network = format!("{}-app", swarm.name);
    let mut net = NetworkSpec::new(&network).label("cutover.test", &swarm.name);
    net.driver = Some("overlay".into());
    net.attachable = true;
    cluster.engine().create_network(&net).await.unwrap();

    // An app color: three replicas, at most one per node, on the overlay.
    let name = format!("{}_web_blue", swarm.name.replace('-', "_"));
    let mut spec = ServiceSpec::new(&name, origin);
    spec.labels
        .insert("cutover.test".into(), swarm.name.clone());
    spec.env.push("NAME=blue".into());
    spec.mode = Mode::Replicated(3);
    spec.max_per_node = Some(1);
    spec.networks.push(ServiceNetwork {
        name: network.clone(),
        aliases: vec!["web".into()],
    });
    cluster.create_service(&spec).await.unwrap();
    assert!(
        cluster.create_service(&spec).await.is_err(),
        "a second create of one name"
    );
    let tasks = cluster
        .wait_converged(&name, &BTreeSet::new(), CONVERGE)
        .await
        .unwrap();
    assert_eq!(tasks.len(), 3);
    let placed: BTreeSet<_> = tasks.iter().map(|t| t.node_id.clone()).collect();
    assert_eq!(placed, node_ids, "one task per node: {tasks:?}");

    // Every task answers at its overlay address from another node, and it
    // is the task cutover was told about (its container's hostname).
    for task in &tasks {
        let ip = task
            .ip_on(&network)
            .expect("an overlay address")
            .to_string();
        let answer = get_over_overlay(&swarm, 1, &network, &ip, "/whoami");
        let container = task.container_id.as_deref().expect("a container");
        assert!(
            container.starts_with(body(&answer)) && !body(&answer).is_empty(),
            "task {} at {ip} answered {answer:?}",
            task.id
        );
    }

    let listed = cluster
        .list_services(&LabelFilter::new().with("cutover.test", &swarm.name))
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        [name.as_str()]
    );
    assert_eq!(listed[0].replicas, Some(3));

    // Scaled to 0 the color is kept, and back up it runs the same spec.
    let before = task_ids(&cluster, &name).await;
    cluster.scale_service(&name, 0).await.unwrap();
    let none = cluster
        .wait_converged(&name, &before, CONVERGE)
        .await
        .unwrap();
    assert!(none.is_empty());
    let kept = cluster
        .inspect_service(&name)
        .await
        .unwrap()
        .expect("kept at 0");
    assert_eq!((kept.replicas, kept.image.as_str()), (Some(0), origin));
    let before = task_ids(&cluster, &name).await;
    cluster.scale_service(&name, 3).await.unwrap();
    let again = cluster
        .wait_converged(&name, &before, CONVERGE)
        .await
        .unwrap();
    assert_eq!(again.len(), 3);
    assert!(again.iter().all(|t| !before.contains(&t.id)));

    // A copy takes the spec as the engine holds it, with the changes
    // asked for, and runs nothing until it is scaled.
    let copied = format!("{}_web_kept_1", swarm.name.replace('-', "_"));
    let copy = ServiceCopy {
        name: copied.clone(),
        labels: BTreeMap::from([("cutover.kept".into(), "1".into())]),
        unlabel: vec!["cutover.test".into()],
        env: vec![("NAME=blue".into(), "NAME=kept".into())],
    };
    cluster.copy_service(&name, &copy).await.unwrap();
    let info = cluster.inspect_service(&copied).await.unwrap().unwrap();
    assert_eq!((info.replicas, info.image.as_str()), (Some(0), origin));
    assert_eq!(
        info.labels.get("cutover.kept").map(String::as_str),
        Some("1")
    );
    assert!(!info.labels.contains_key("cutover.test"), "{info:?}");
    let format = "{{json .Spec.TaskTemplate.ContainerSpec.Env}}";
    let env = swarm
        .docker(0, &["service", "inspect", &copied, "--format", format])
        .unwrap();
    assert!(
        env.contains("NAME=kept") && !env.contains("NAME=blue"),
        "{env}"
    );
    assert!(matches!(
        cluster.copy_service(&name, &copy).await,
        Err(SwarmError::Engine(e)) if e.is_conflict()
    ));

    // An image no node has fails the wait at once, naming the node's words.
    let broken = format!("{}_web_green", swarm.name.replace('-', "_"));
    let mut bad = spec.clone();
    bad.name = broken.clone();
    bad.image = format!("cutover-test-absent-{}:latest", swarm.name);
    cluster.create_service(&bad).await.unwrap();
    match cluster
        .wait_converged(&broken, &BTreeSet::new(), CONVERGE)
        .await
    {
        Err(e @ SwarmError::TaskFailed { .. }) => {
            let text = cutover_core::diag::Diagnose::report(&e).to_string();
            assert!(
                text.contains(&broken) && text.contains("docker service ps"),
                "{text}"
            );
            // Named as `docker node ls` shows it.
            assert!(
                swarm
                    .nodes
                    .iter()
                    .any(|n| text.contains(&format!("on node {}", n.name))),
                "{text}"
            );
        }
        other => panic!("a service of a missing image converged: {other:?}"),
    }

    // Every node an entry point: a global service publishing on each
    // node's own address (host mode), answered by that node's own task.
    let edge = format!("{}_edge", swarm.name.replace('-', "_"));
    let mut global = ServiceSpec::new(&edge, origin);
    global.mode = Mode::Global;
    global.host_ports.push(HostPort {
        target: 8080,
        published: 18080,
    });
    cluster.create_service(&global).await.unwrap();
    let edges = cluster
        .wait_converged(&edge, &BTreeSet::new(), CONVERGE)
        .await
        .unwrap();
    assert_eq!(edges.len(), 3);
    for node in &swarm.nodes {
        let id = &nodes.iter().find(|n| n.hostname == node.name).unwrap().id;
        let local = edges
            .iter()
            .find(|t| &t.node_id == id)
            .expect("a task on every node");
        let answer = http_get(&format!("{}:18080", node.addr), "/whoami").await;
        assert!(
            local.container_id.as_deref().unwrap().starts_with(&answer),
            "{} answered {answer:?}, its task is {local:?}",
            node.name
        );
    }
    // A global service at 0 tasks may run on no node; at any other count
    // it runs on every node again, the same spec.
    let known: BTreeSet<String> = edges.iter().map(|t| t.id.clone()).collect();
    cluster.scale_service(&edge, 0).await.unwrap();
    let parked = cluster
        .wait_converged(&edge, &known, CONVERGE)
        .await
        .unwrap();
    assert!(parked.is_empty(), "{parked:?}");
    let info = cluster.inspect_service(&edge).await.unwrap().unwrap();
    assert!(info.global && info.replicas == Some(0), "{info:?}");
    cluster.scale_service(&edge, 2).await.unwrap();
    let again = cluster
        .wait_converged(&edge, &known, CONVERGE)
        .await
        .unwrap();
    assert_eq!(again.len(), 3, "{again:?}");
    let info = cluster.inspect_service(&edge).await.unwrap().unwrap();
    assert!(info.global && info.replicas.is_none(), "{info:?}");
    assert_eq!(info.image, global.image);

    for service in [&name, &copied, &broken, &edge] {
        assert_eq!(
            cluster.remove_service(service).await.unwrap(),
            Removal::Removed
        );
        assert_eq!(
            cluster.remove_service(service).await.unwrap(),
            Removal::Absent
        );
        assert!(cluster.inspect_service(service).await.unwrap().is_none());
    }
}

/// The test's own client to a node's published port: the node containers
/// are on a network of this machine's engine, which the host reaches.
async fn http_get(addr: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let attempt = async {
            let mut stream = tokio::net::TcpStream::connect(addr).await?;
            stream
                .write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
                .await?;
            let mut out = String::new();
            stream.read_to_string(&mut out).await?;
            Ok::<_, std::io::Error>(out)
        };
        match attempt.await {
            Ok(out) if out.starts_with("HTTP/1.") => return body(&out).to_owned(),
            // Host-mode ports appear a moment after the task runs.
            _ if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            other => panic!("GET {path} at {addr}: {other:?}"),
        }
    }
}
