//! `down` and `status`.

use super::*;

#[tokio::test]
async fn down_keeps_volumes_unless_asked() {
    let h = Harness::new().await;
    collect(h.engine.deploy(cmd(compose("hello", 2)))).await;
    collect(h.engine.deploy(cmd(compose("bonjour", 2)))).await;
    let ev = collect(h.engine.down("athens".into(), Default::default())).await;
    let (o, msg) = outcome(&ev);
    assert_eq!(o, Outcome::Ok, "{ev:#?}");
    assert_eq!(
        msg,
        "athens is down: removed 3 containers, 1 network; kept 1 volume with its data"
    );
    assert!(h.fake.container_names().is_empty());
    // Gone from the list of projects, though its releases stay on record.
    assert!(h.engine.projects().await.unwrap().is_empty());
    assert!(h.fake.network_names().is_empty());
    assert_eq!(h.fake.volume_names(), vec!["athens_redis-data"]);
    assert!(h.live().is_none());

    let ev = collect(h.engine.down(
        "athens".into(),
        crate::down::DownCommand {
            volumes: true,
            ..Default::default()
        },
    ))
    .await;
    assert_eq!(outcome(&ev).0, Outcome::Ok, "{ev:#?}");
    assert!(h.fake.volume_names().is_empty());
}

#[tokio::test]
async fn down_never_removes_an_external_network() {
    let h = Harness::new().await;
    h.fake
        .add_network(&cutover_docker::NetworkSpec::new("ubuntu_app-network"));
    let mut p = compose("hello", 2);
    for n in &mut p.networks {
        n.external = true;
        n.name = "ubuntu_app-network".into();
    }
    for a in &mut p.apps {
        for n in &mut a.service.networks {
            n.name = "ubuntu_app-network".into();
        }
    }
    for a in &mut p.accessories {
        for n in &mut a.service.networks {
            n.name = "ubuntu_app-network".into();
        }
    }
    let ev = collect(h.engine.deploy(cmd(p))).await;
    assert_eq!(outcome(&ev).0, Outcome::Ok, "{ev:#?}");
    let st = h.engine.status("athens").await.unwrap();
    let net = st
        .networks
        .iter()
        .find(|n| n.name == "ubuntu_app-network")
        .unwrap();
    assert!(net.external);
    assert_eq!(net.attached, vec!["athens-redis", "athens-web-blue"]);
    collect(h.engine.down("athens".into(), Default::default())).await;
    assert_eq!(h.fake.network_names(), vec!["ubuntu_app-network"]);
}

#[tokio::test]
async fn status_shows_live_kept_accessories_and_attachments() {
    let h = Harness::new().await;
    collect(h.engine.deploy(cmd(compose("hello", 2)))).await;
    let mut c = cmd(compose("bonjour", 2));
    c.version = Some("v2".into());
    collect(h.engine.deploy(c)).await;
    let st = h.engine.status("athens").await.unwrap();
    let web = &st.apps[0];
    assert_eq!(web.route, "athens/web");
    let live = web.live.as_ref().unwrap();
    assert_eq!((live.color, live.version.as_str()), (Color::Green, "v2"));
    assert_eq!(live.container, "athens-web-green");
    assert!(live.since_ms.is_some());
    assert_eq!(web.kept.len(), 1);
    assert_eq!(web.kept[0].container, "athens-web-blue");
    assert_eq!(st.accessories[0].container, "athens-redis");
    assert_eq!(st.accessories[0].state, "running");
    assert_eq!(st.networks[0].name, "athens_default");
    assert!(!st.networks[0].external);
    assert!(st.networks[0]
        .attached
        .contains(&"athens-web-green".to_string()));
    let projects = h.engine.projects().await.unwrap();
    assert_eq!(projects[0].name, "athens");
}
