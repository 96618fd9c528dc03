//! An app with `deploy.replicas: 3`: three containers per color, all gated
//! before the switch, all routed, retired, kept and rolled back together.

use super::rollback::rollback_cmd;
use super::*;

fn three(greeting: &str) -> ResolvedProject {
    let yaml = compose_yaml(greeting, 2, "");
    let web = "    depends_on: [redis]\n";
    assert!(yaml.contains(web));
    parse(yaml.replace(web, &format!("{web}    deploy: {{replicas: 3}}\n")))
}

/// Routed addresses of the live set, sorted.
fn targets(h: &Harness) -> Vec<String> {
    let mut t: Vec<String> = h
        .proxy
        .status()
        .into_iter()
        .find(|s| s.name == "athens/web")
        .unwrap()
        .active
        .targets
        .into_iter()
        .map(|t| t.addr)
        .collect();
    t.sort();
    t
}

fn sorted(origins: &[&Origin]) -> Vec<String> {
    let mut t: Vec<String> = origins.iter().map(|o| o.target()).collect();
    t.sort();
    t
}

#[tokio::test]
async fn every_replica_of_a_color_is_gated_routed_retired_and_rolled_back_together() {
    let h = Harness::new().await;
    let mut more = Vec::new();
    for name in ["blue-2", "blue-3", "green-2", "green-3"] {
        let o = Origin::start(name).await.unwrap();
        h.origins
            .lock()
            .unwrap()
            .insert(format!("athens-web-{name}"), o.addr());
        more.push(o);
    }
    let [blue2, blue3, green2, green3] = &more[..] else {
        unreachable!()
    };

    let ev = collect(h.engine.deploy(cmd(three("hello")))).await;
    assert_eq!(outcome(&ev).0, Outcome::Ok, "{ev:#?}");
    assert_eq!(targets(&h), sorted(&[&h.blue, blue2, blue3]));
    let follower = h.fake.spec_of("athens-web-blue-3").unwrap();
    assert_eq!(follower.labels[labels::REPLICA], "3");
    assert_eq!(follower.env["GREETING"], "hello");
    // Each replica passed the gate before the switch.
    assert!(h.blue.probes() > 0 && blue2.probes() > 0 && blue3.probes() > 0);

    // One green replica never gets healthy: nothing switches, and the
    // whole green color goes again.
    green3.set_healthy(false);
    let ev = collect(h.engine.deploy(cmd(three("bonjour")))).await;
    assert_eq!(outcome(&ev).0, Outcome::Failed, "{ev:#?}");
    assert_eq!(targets(&h), sorted(&[&h.blue, blue2, blue3]));
    for n in [
        "athens-web-green",
        "athens-web-green-2",
        "athens-web-green-3",
    ] {
        assert!(!h.exists(n), "{n} was left behind");
    }

    green3.set_healthy(true);
    let ev = collect(h.engine.deploy(cmd(three("bonjour")))).await;
    assert_eq!(outcome(&ev).0, Outcome::Ok, "{ev:#?}");
    assert_eq!(targets(&h), sorted(&[&h.green, green2, green3]));
    h.settle().await;
    for n in ["athens-web-blue", "athens-web-blue-2", "athens-web-blue-3"] {
        assert!(h.exists(n) && !h.running(n), "{n} should be kept, stopped");
    }

    // Rollback brings the three blue replicas back.
    let ev = collect(h.engine.rollback("athens".into(), rollback_cmd())).await;
    assert_eq!(outcome(&ev).0, Outcome::Ok, "{ev:#?}");
    assert_eq!(targets(&h), sorted(&[&h.blue, blue2, blue3]));
    h.settle().await;
    for n in [
        "athens-web-green",
        "athens-web-green-2",
        "athens-web-green-3",
    ] {
        assert!(h.exists(n) && !h.running(n), "{n} should be kept, stopped");
    }

    // A third version needs green's slot: the kept one moves out whole,
    // each replica under the kept name with its number.
    let ev = collect(h.engine.deploy(cmd(three("hola")))).await;
    assert_eq!(outcome(&ev).0, Outcome::Ok, "{ev:#?}");
    assert_eq!(targets(&h), sorted(&[&h.green, green2, green3]));
    let names = h.fake.container_names();
    let mut kept: Vec<&String> = names
        .iter()
        .filter(|n| n.starts_with("athens-web-") && !n.contains("blue") && !n.contains("green"))
        .collect();
    kept.sort();
    assert_eq!(kept.len(), 3, "{names:?}");
    assert_eq!(*kept[1], format!("{}-2", kept[0]), "{names:?}");
    assert_eq!(*kept[2], format!("{}-3", kept[0]), "{names:?}");
}
