//! `scale` and `deploy.replicas` (`compose/resolve/replicas.rs`).

mod common;

use common::{load_yaml, ok, Shown};

fn app(replicas: &str) -> String {
    format!("services:\n  web:\n    image: web\n{replicas}    x-cutover: {{port: 8080}}\n")
}

#[test]
fn an_app_runs_its_replicas_per_color_written_either_way() {
    for written in [
        "    scale: 3\n",
        "    deploy: {replicas: 3}\n",
        "    scale: 3\n    deploy: {replicas: 3}\n",
    ] {
        let p = ok(&app(written));
        assert_eq!(p.app("web").unwrap().service.replicas, 3, "{written}");
    }
    assert_eq!(ok(&app("")).app("web").unwrap().service.replicas, 1);
}

#[test]
fn counts_that_disagree_or_serve_nothing_are_errors_naming_the_key() {
    let shown = |written: &str| load_yaml(&app(written)).unwrap_err().shown();
    let e = shown("    scale: 2\n    deploy: {replicas: 3}\n");
    assert!(
        e.contains("services.web.scale: scale is 2 and deploy.replicas is 3"),
        "{e}"
    );
    let e = shown("    deploy: {replicas: 0}\n");
    assert!(
        e.contains("services.web.deploy.replicas: an app runs 1 to 32 replicas per color, not 0"),
        "{e}"
    );
    assert!(e.contains("hint: to stop serving the app"), "{e}");
    let e = shown("    scale: 100\n");
    assert!(e.contains("not 100"), "{e}");
}

#[test]
fn an_accessory_runs_one_container_and_says_so() {
    let p = ok("services:\n  worker:\n    image: w\n    scale: 4\n");
    let worker = p.accessory("worker").unwrap();
    assert_eq!(worker.service.replicas, 1);
    let warning = p.warnings[0].to_string();
    assert!(
        warning.contains("4 replicas of an accessory: cutover runs one container of it"),
        "{warning}"
    );
}

#[test]
fn a_new_count_is_a_new_version() {
    let one = ok(&app(""));
    let two = ok(&app("    scale: 2\n"));
    let hash = |p: &cutover_core::compose::ResolvedProject| {
        cutover_core::compose::config_hash(&p.app("web").unwrap().service)
    };
    assert_ne!(hash(&one), hash(&two));
}
