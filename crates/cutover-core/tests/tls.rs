//! `x-cutover.tls`, `tls_redirect` and `hsts` (`compose/resolve/x_cutover.rs`).

mod common;

use std::time::Duration;

use common::{load_yaml, ok, Shown};
use cutover_core::tls::{CertificateSource, TlsRoute};

fn app(x: &str) -> String {
    format!("services:\n  web:\n    image: web\n    x-cutover: {{port: 8080, {x}}}\n")
}

fn tls(x: &str) -> Option<TlsRoute> {
    ok(&app(x)).app("web").unwrap().cutover.tls.clone()
}

#[test]
fn each_way_of_writing_tls() {
    let auto = tls("hosts: [shop.example.com], tls: true").unwrap();
    assert_eq!(auto.certificate, CertificateSource::Automatic);
    assert!(auto.redirect);
    assert_eq!(auto.hsts, None);
    assert_eq!(tls("hosts: [shop.example.com], tls: false"), None);
    assert_eq!(tls("hosts: [shop.example.com]"), None);
    let demand = tls("tls: on_demand, tls_redirect: false, hsts: true").unwrap();
    assert_eq!(demand.certificate, CertificateSource::OnDemand);
    assert!(!demand.redirect);
    assert_eq!(demand.hsts, Some(Duration::from_secs(365 * 24 * 3600)));
    // Files are taken relative to the project, as bind sources are.
    let files =
        tls("hosts: ['*.shop.example'], tls: {cert: ./certs/site.pem, key: /etc/k.pem}, hsts: 1h")
            .unwrap();
    assert_eq!(
        files.certificate,
        CertificateSource::Files {
            cert: "/srv/shop/certs/site.pem".into(),
            key: "/etc/k.pem".into()
        }
    );
    assert_eq!(files.hsts, Some(Duration::from_secs(3600)));
}

#[test]
fn what_cannot_get_a_certificate_is_an_error_with_a_hint() {
    let shown = |x: &str| load_yaml(&app(x)).unwrap_err().shown();
    // A wildcard is the daemon's to judge: it has a DNS hook or not.
    let wild = load_yaml(&app("hosts: ['*.shop.example'], tls: true")).unwrap();
    let tls = wild.apps[0].cutover.tls.as_ref();
    assert_eq!(
        cutover_core::tls::wildcard_host(tls, &wild.apps[0].cutover.hosts),
        Some("*.shop.example")
    );
    let e = shown("tls: true");
    assert!(
        e.contains("automatic certificates need the app's hosts"),
        "{e}"
    );
    let e = shown("tls: yes-please");
    assert!(
        e.contains("expected true, false, on_demand or a mapping with cert and key"),
        "{e}"
    );
    let e = shown("tls: {cert: a.pem}");
    assert!(e.contains("missing `key`"), "{e}");
    let e = shown("tls: {cert: a.pem, key: b.pem, chain: c.pem}");
    assert!(e.contains("chain"), "{e}");
}

#[test]
fn settings_beside_no_tls_are_a_warning() {
    let p = ok(&app("hosts: [a.example], hsts: true, tls_redirect: false"));
    let w: Vec<String> = p.warnings.iter().map(|w| w.to_string()).collect();
    assert!(
        w.iter()
            .any(|w| w.contains("`hsts` has no effect without `tls`")),
        "{w:?}"
    );
    assert!(
        w.iter().any(|w| w.contains("`tls_redirect` has no effect")),
        "{w:?}"
    );
}

#[test]
fn tls_is_part_of_the_canonical_file_and_reads_back() {
    let p = ok(&app("hosts: [a.example], tls: true, hsts: 2h"));
    let canonical = cutover_core::compose::canonical(&p);
    let x = &canonical["services"]["web"]["x-cutover"];
    assert_eq!(x["tls"], true, "{x}");
    assert_eq!(x["tls_redirect"], true, "{x}");
    assert_eq!(x["hsts"], "2h0m0s", "{x}");
    let again = ok(&canonical.to_string());
    assert_eq!(
        again.app("web").unwrap().cutover.tls,
        p.app("web").unwrap().cutover.tls
    );
}
