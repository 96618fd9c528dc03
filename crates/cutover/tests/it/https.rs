//! HTTPS at the edge, against a real ACME CA: Debian's `pebble`, with
//! `pebble-challtestsrv` as its DNS server (every name is 127.0.0.1), and
//! its HTTP-01 and TLS-ALPN-01 ports pointed at the daemon's listeners.
//! Clients are curl, openssl and h2load, which nobody here wrote.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use crate::util::{free_port, Daemon};
use cutover_test::origin::Origin;

mod ari;

/// A CA on loopback (or on a test network's gateway): pebble behind a
/// certificate of a test CA of ours.
pub(crate) struct Pebble {
    dir: tempfile::TempDir,
    children: Vec<Child>,
    directory: String,
    management: SocketAddr,
    /// pebble-challtestsrv's API: `/set-txt` and `/clear-txt` publish the
    /// DNS-01 records pebble resolves.
    dns_management: SocketAddr,
}

/// What pebble's own HTTPS endpoints are signed by, for `--acme-ca-root`:
/// its directory at `ip`, its management API on loopback.
fn write_test_ca(dir: &Path, ip: IpAddr) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "cutover test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let mut leaf = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
    leaf.subject_alt_names
        .push(rcgen::SanType::IpAddress(Ipv4Addr::LOCALHOST.into()));
    if !ip.is_loopback() {
        leaf.subject_alt_names.push(rcgen::SanType::IpAddress(ip));
    }
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(dir.join("pebble.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("pebble.key"), key.serialize_pem()).unwrap();
}

impl Pebble {
    /// Validates HTTP-01 on `http_port` and TLS-ALPN-01 on `tls_port` of
    /// 127.0.0.1; certificates last `validity` (pebble's default: 5 years).
    async fn start(http_port: u16, tls_port: u16, validity: Option<Duration>) -> Pebble {
        Pebble::start_with(http_port, tls_port, validity, None).await
    }

    /// With `eab`, accounts need that external account binding (kid, key).
    async fn start_with(
        http_port: u16,
        tls_port: u16,
        validity: Option<Duration>,
        eab: Option<(&str, &str)>,
    ) -> Pebble {
        let at = At {
            listen: Ipv4Addr::LOCALHOST.into(),
            answer: Ipv4Addr::LOCALHOST,
        };
        Pebble::launch(at, http_port, tls_port, validity, eab).await
    }

    /// Listens on `listen` (a test network's gateway, for daemons in
    /// containers), and its DNS answers every name with `answer`, where it
    /// validates HTTP-01 on `http_port` and TLS-ALPN-01 on `tls_port`.
    pub(crate) async fn on_network(
        listen: IpAddr,
        answer: Ipv4Addr,
        http_port: u16,
        tls_port: u16,
    ) -> Pebble {
        Pebble::launch(At { listen, answer }, http_port, tls_port, None, None).await
    }

    async fn launch(
        at: At,
        http_port: u16,
        tls_port: u16,
        validity: Option<Duration>,
        eab: Option<(&str, &str)>,
    ) -> Pebble {
        let dir = tempfile::tempdir().unwrap();
        write_test_ca(dir.path(), at.listen);
        let (listen, management, dns) = (free_port(), free_port(), free_port());
        let listen_addr = SocketAddr::new(at.listen, listen);
        let mut config = json!({
            "listenAddress": listen_addr.to_string(),
            "managementListenAddress": format!("127.0.0.1:{management}"),
            "certificate": dir.path().join("pebble.pem"),
            "privateKey": dir.path().join("pebble.key"),
            "httpPort": http_port,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
        });
        if let Some(v) = validity {
            config["certificateValidityPeriod"] = json!(v.as_secs());
        }
        if let Some((kid, key)) = eab {
            config["externalAccountBindingRequired"] = json!(true);
            config["externalAccountMACKeys"] = json!({ kid: key });
        }
        let config_file = dir.path().join("pebble.json");
        std::fs::write(&config_file, json!({ "pebble": config }).to_string()).unwrap();
        let log = |name: &str| std::fs::File::create(dir.path().join(name)).unwrap();
        let dns_management: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let dns_server = Command::new("pebble-challtestsrv")
            .args(["-dns01", &format!("127.0.0.1:{dns}")])
            .args(["-management", &dns_management.to_string()])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-defaultIPv4", &at.answer.to_string(), "-defaultIPv6", ""])
            .stdout(log("challtestsrv.log"))
            .stderr(Stdio::null())
            .spawn()
            .expect("pebble-challtestsrv runs (Debian package pebble)");
        let ca = Command::new("pebble")
            .arg("-config")
            .arg(&config_file)
            .args(["-dnsserver", &format!("127.0.0.1:{dns}")])
            // No random sleeps before validating, and every order validates.
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_AUTHZREUSE", "0")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdout(log("pebble.log"))
            .stderr(Stdio::null())
            .spawn()
            .expect("pebble runs (Debian package pebble)");
        let pebble = Pebble {
            directory: format!("https://{listen_addr}/dir"),
            management: format!("127.0.0.1:{management}").parse().unwrap(),
            dns_management,
            children: vec![dns_server, ca],
            dir,
        };
        let start = Instant::now();
        while tokio::net::TcpStream::connect(listen_addr).await.is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "pebble never listened:\n{}",
                pebble.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        pebble
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pebble.log")).unwrap_or_default()
    }

    /// The daemon flags that order from this CA.
    fn flags(&self) -> Vec<String> {
        vec![
            "--acme-directory".into(),
            self.directory.clone(),
            "--acme-ca-root".into(),
            self.ca().display().to_string(),
        ]
    }

    /// Its ACME directory's URL.
    pub(crate) fn directory(&self) -> &str {
        &self.directory
    }

    /// What its own HTTPS endpoint is signed by (`--acme-ca-root`).
    pub(crate) fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Pebble's issuing root (made at its start), for clients to verify
    /// the certificates it issued.
    pub(crate) fn root(&self) -> PathBuf {
        let path = self.dir.path().join("pebble-root.pem");
        if !path.exists() {
            let root = self.get(&format!("https://{}/roots/0", self.management));
            std::fs::write(&path, root).unwrap();
        }
        path
    }

    /// The body of a GET to one of pebble's own HTTPS endpoints.
    fn get(&self, url: &str) -> Vec<u8> {
        let out = Command::new("curl")
            .args(["-sSf", "--cacert"])
            .arg(self.ca())
            .arg(url)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }
}

/// Where pebble listens and what its DNS answers.
struct At {
    listen: IpAddr,
    answer: Ipv4Addr,
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A route for `host` with these TLS settings, through the control API.
async fn deploy_tls(daemon: &Daemon, service: &str, host: &str, origin: &Origin, tls: Value) {
    let body = json!({
        "targets": [origin.target()],
        "hosts": [host],
        "health": {"interval": "100ms", "timeout": "1s"},
        "timeouts": {"deploy": "10s", "drain": "5s", "websocket_drain": "2s"},
        "tls": tls,
    });
    let (status, answer) = daemon
        .request(
            Method::PUT,
            &format!("/v1/services/{service}"),
            Some(&body.to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}\n{}", daemon.stderr());
}

async fn certificates(daemon: &Daemon) -> Vec<Value> {
    let (status, answer) = daemon.request(Method::GET, "/v1/certificates", None).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer.as_array().cloned().unwrap_or_default()
}

/// Waits until the certificate for `host` is there (or `what` says done).
async fn wait_certificate(daemon: &Daemon, host: &str, what: impl Fn(&Value) -> bool) -> Value {
    wait_certificate_within(daemon, host, Duration::from_secs(60), what).await
}

async fn wait_certificate_within(
    daemon: &Daemon,
    host: &str,
    limit: Duration,
    what: impl Fn(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    loop {
        let certs = certificates(daemon).await;
        if let Some(c) = certs.iter().find(|c| c["hosts"][0] == host && what(c)) {
            return c.clone();
        }
        assert!(
            start.elapsed() < limit,
            "no certificate for {host}: {certs:?}\n{}",
            daemon.stderr()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// An automatic-TLS route for `host` to a new origin, and its first
/// certificate.
async fn deploy_automatic(daemon: &Daemon, host: &str) -> (Origin, Value) {
    let origin = Origin::start("blue").await.unwrap();
    deploy_tls(
        daemon,
        "web",
        host,
        &origin,
        json!({"certificate": "automatic"}),
    )
    .await;
    (origin, wait_certificate(daemon, host, issued).await)
}

fn issued(c: &Value) -> bool {
    c["not_after"].is_string()
}

/// curl, awaited: the origins run on this test's runtime and must keep
/// answering while it waits.
fn curl() -> tokio::process::Command {
    tokio::process::Command::new("curl")
}

/// Status and redirect target of a plain-HTTP GET of `path` for `host`.
async fn redirect_of(http: u16, host: &str, path: &str) -> String {
    let out = curl()
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{redirect_url}",
        ])
        .args(["-H", &format!("Host: {host}")])
        .arg(format!("http://127.0.0.1:{http}{path}"))
        .output()
        .await
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A plain-HTTP GET of `/` for `host` on the daemon's HTTP port: the body.
async fn plain_get(http: u16, host: &str) -> String {
    let out = curl()
        .args(["-sS", "-H", &format!("Host: {host}")])
        .arg(format!("http://127.0.0.1:{http}/"))
        .output()
        .await
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `curl` over HTTPS to `host` at `addr`, verifying with `ca`: status line
/// fields and body.
async fn curl_https(addr: SocketAddr, host: &str, ca: &Path, extra: &[&str]) -> (String, String) {
    let out = curl()
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(ca)
        .args(["--resolve", &format!("{host}:{}:127.0.0.1", addr.port())])
        .args(["-w", "\n%{http_code} %{http_version}"])
        .args(extra)
        .arg(format!("https://{host}:{}/hello?x=1", addr.port()))
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, tail) = text.rsplit_once('\n').unwrap_or(("", &text));
    (
        tail.to_string(),
        format!("{body}{}", String::from_utf8_lossy(&out.stderr)),
    )
}

/// The subject and names of the certificate a handshake got.
pub(crate) fn served_certificate(addr: SocketAddr, sni: Option<&str>) -> String {
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-connect", &addr.to_string()]);
    match sni {
        Some(name) => cmd.args(["-servername", name]),
        None => cmd.arg("-noservername"),
    };
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    let pem = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut x509 = Command::new("openssl")
        .args([
            "x509",
            "-noout",
            "-subject",
            "-ext",
            "subjectAltName",
            "-serial",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    x509.stdin
        .take()
        .unwrap()
        .write_all(pem.as_bytes())
        .unwrap();
    String::from_utf8_lossy(&x509.wait_with_output().unwrap().stdout).into_owned()
}

/// One `openssl s_client` handshake for www.static.test that stays a
/// second, so a TLS 1.3 ticket arrives, saving or reusing the session.
async fn s_client(addr: SocketAddr, version: &str, sess_flag: &str, sess: &Path) -> String {
    let mut child = tokio::process::Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &addr.to_string(),
            "-servername",
            "www.static.test",
            version,
            sess_flag,
        ])
        .arg(sess)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take();
    tokio::time::sleep(Duration::from_secs(1)).await;
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .expect("openssl s_client ends once its input does")
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn tls_daemon(dir: &Path, http: u16, https: u16, extra: &[String]) -> Daemon {
    let mut b = Daemon::in_dir(dir)
        .listen(format!("127.0.0.1:{http}").parse().unwrap())
        .arg("--https-listen")
        .arg(format!("127.0.0.1:{https}"));
    for a in extra {
        b = b.arg(a.clone());
    }
    b.start().await
}

#[tokio::test]
async fn tls_alpn_01_issues_and_a_restart_loads_it_without_ordering() {
    let (http, https) = (free_port(), free_port());
    // HTTP-01 goes to a port nobody listens on: only TLS-ALPN-01 can work.
    let pebble = Pebble::start(free_port(), https, None).await;
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = tls_daemon(dir.path(), http, https, &pebble.flags()).await;
    let (_origin, cert) = deploy_automatic(&daemon, "alpn.test").await;
    assert_eq!(cert["source"], "acme");
    assert!(
        cert["issuer"].as_str().unwrap().contains("Pebble"),
        "{cert}"
    );
    assert!(cert["last_error"].is_null(), "{cert}");
    let https_addr = format!("127.0.0.1:{https}").parse().unwrap();
    let (status, body) = curl_https(https_addr, "alpn.test", &pebble.root(), &[]).await;
    assert_eq!(status, "200 2", "{body}");
    assert!(body.contains("blue"), "{body}");
    let log = daemon.stderr();
    assert!(log.contains("challenge=TlsAlpn01"), "{log}");
    assert!(!log.contains("validation failed"), "{log}");

    // A restart serves the stored certificate at once, with no new order.
    daemon.stop().await;
    let daemon = tls_daemon(dir.path(), http, https, &pebble.flags()).await;
    let again = wait_certificate(&daemon, "alpn.test", issued).await;
    assert_eq!(again["not_after"], cert["not_after"]);
    let (status, body) = curl_https(https_addr, "alpn.test", &pebble.root(), &["--http1.1"]).await;
    assert_eq!(status, "200 1.1", "{body}");
    assert!(
        !daemon.stderr().contains("ordering a certificate"),
        "{}",
        daemon.stderr()
    );
}

/// A wildcard host needs DNS-01: refused (with the hint) by a daemon with
/// no DNS hook, before anything starts; issued with one, whose records go
/// to pebble-challtestsrv's DNS, the way a user's script calls their DNS
/// provider's API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_01_by_a_hook_gets_a_wildcard_certificate() {
    use crate::deploy::expect_code;
    let (http, https) = (free_port(), free_port());
    // HTTP-01 and TLS-ALPN-01 go to ports nobody listens on.
    let pebble = Pebble::start(free_port(), free_port(), None).await;
    let dir = tempfile::tempdir().unwrap();
    let project = tls_project("cvit-tls-wild", "'*.wild.test'", false);
    let mut daemon = tls_daemon(dir.path(), http, https, &pebble.flags()).await;
    let out = project.cutover(&daemon, &["deploy"]);
    expect_code(&out, 2, &daemon);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("services.web.x-cutover.tls: automatic TLS cannot cover the wildcard host")
            && said.contains("--acme-dns-hook"),
        "{said}"
    );
    assert!(crate::deploy::docker(&[
        "ps",
        "-a",
        "-q",
        "--filter",
        "label=cutover.project=cvit-tls-wild"
    ])
    .trim()
    .is_empty());
    daemon.stop().await;

    let hook = dir.path().join("dns-hook.sh");
    let calls = dir.path().join("dns-hook.calls");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\nset -e\necho \"$1 $2\" >> {calls}\ncase $1 in\n  present) curl -sSf -X POST -d \"{{\\\"host\\\":\\\"$2.\\\",\\\"value\\\":\\\"$3\\\"}}\" http://{api}/set-txt ;;\n  cleanup) curl -sSf -X POST -d \"{{\\\"host\\\":\\\"$2.\\\"}}\" http://{api}/clear-txt ;;\nesac\n",
            calls = calls.display(),
            api = pebble.dns_management
        ),
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut flags = pebble.flags();
    flags.extend(["--acme-dns-hook".to_string(), hook.display().to_string()]);
    let daemon = tls_daemon(dir.path(), http, https, &flags).await;
    expect_code(&project.cutover(&daemon, &["deploy"]), 0, &daemon);
    let cert = wait_certificate(&daemon, "*.wild.test", issued).await;
    assert!(cert["last_error"].is_null(), "{cert}");
    let https_addr = format!("127.0.0.1:{https}").parse().unwrap();
    for name in ["a.wild.test", "b.wild.test"] {
        let (status, body) = curl_https(https_addr, name, &pebble.root(), &[]).await;
        assert_eq!(status, "200 2", "{name}: {body}");
        assert!(body.contains("one"), "{body}");
    }
    let calls = std::fs::read_to_string(&calls).unwrap();
    assert_eq!(
        calls,
        "present _acme-challenge.wild.test\ncleanup _acme-challenge.wild.test\n"
    );
    assert!(
        daemon.stderr().contains("challenge=Dns01"),
        "{}",
        daemon.stderr()
    );
    expect_code(&project.cutover(&daemon, &["down"]), 0, &daemon);
}

#[tokio::test]
async fn http_01_takes_over_when_tls_alpn_01_is_blocked() {
    let (http, https) = (free_port(), free_port());
    // TLS-ALPN-01 is validated on a port nobody listens on.
    let pebble = Pebble::start(http, free_port(), None).await;
    let dir = tempfile::tempdir().unwrap();
    let daemon = tls_daemon(dir.path(), http, https, &pebble.flags()).await;
    let _served = deploy_automatic(&daemon, "fallback.test").await;
    let log = daemon.stderr();
    assert!(
        log.contains("challenge=TlsAlpn01") && log.contains("validation failed"),
        "{log}"
    );
    assert!(log.contains("challenge=Http01"), "{log}");
    let https_addr = format!("127.0.0.1:{https}").parse().unwrap();
    let (status, body) = curl_https(https_addr, "fallback.test", &pebble.root(), &[]).await;
    assert_eq!(status, "200 2", "{body}");
}

#[tokio::test]
async fn a_failed_order_shows_in_status_and_plain_http_keeps_serving() {
    let (http, https) = (free_port(), free_port());
    let pebble = Pebble::start(free_port(), free_port(), None).await;
    let dir = tempfile::tempdir().unwrap();
    let daemon = tls_daemon(dir.path(), http, https, &pebble.flags()).await;
    let origin = Origin::start("blue").await.unwrap();
    deploy_tls(
        &daemon,
        "web",
        "broken.test",
        &origin,
        json!({"certificate": "automatic", "redirect": false}),
    )
    .await;
    let cert = wait_certificate(&daemon, "broken.test", |c| c["last_error"].is_string()).await;
    let error = cert["last_error"].as_str().unwrap();
    assert!(
        error.contains("TlsAlpn01 validation failed") && error.contains("Http01"),
        "{error}"
    );
    assert!(cert["not_after"].is_null(), "{cert}");
    assert!(cert["next_renewal"].is_string(), "{cert}");
    let body = plain_get(http, "broken.test").await;
    assert!(body.contains("blue"), "{body}");
}

#[tokio::test]
async fn two_daemons_on_one_storage_order_once_and_serve_the_same_certificate() {
    let (http_a, https_a, http_b, https_b) = (free_port(), free_port(), free_port(), free_port());
    // The CA reaches daemon A only; B's orders are answered by A from the
    // shared storage.
    let pebble = Pebble::start(http_a, https_a, None).await;
    let shared = tempfile::tempdir().unwrap();
    let mut flags = pebble.flags();
    flags.extend([
        "--certificates-dir".into(),
        shared.path().display().to_string(),
    ]);
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = tls_daemon(dir_a.path(), http_a, https_a, &flags).await;
    let b = tls_daemon(dir_b.path(), http_b, https_b, &flags).await;
    let origin = Origin::start("blue").await.unwrap();
    let tls = json!({"certificate": "automatic"});
    tokio::join!(
        deploy_tls(&a, "web", "shared.test", &origin, tls.clone()),
        deploy_tls(&b, "web", "shared.test", &origin, tls.clone()),
    );
    let (ca, cb) = tokio::join!(
        wait_certificate(&a, "shared.test", issued),
        wait_certificate(&b, "shared.test", issued)
    );
    let orders = [a.stderr(), b.stderr()]
        .iter()
        .map(|l| l.matches("ordering a certificate").count())
        .sum::<usize>();
    assert_eq!(orders, 1, "A:\n{}\nB:\n{}", a.stderr(), b.stderr());
    assert_eq!(ca["not_after"], cb["not_after"]);
    let serial = |port| {
        let s = served_certificate(
            format!("127.0.0.1:{port}").parse().unwrap(),
            Some("shared.test"),
        );
        s.lines()
            .find(|l| l.starts_with("serial="))
            .unwrap_or("")
            .to_string()
    };
    assert!(!serial(https_a).is_empty());
    assert_eq!(serial(https_a), serial(https_b));
    // Prometheus gets the time left on it.
    let (_, metrics) = a.request(Method::GET, "/metrics", None).await;
    let metrics = metrics.as_str().unwrap_or_default().to_string();
    assert!(
        metrics
            .contains("cutover_certificate_expiry_seconds{host=\"shared.test\",source=\"acme\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_short_lived_certificate_is_renewed_at_a_third_of_its_life() {
    let (http, https) = (free_port(), free_port());
    let pebble = Pebble::start(http, https, Some(Duration::from_secs(30))).await;
    let dir = tempfile::tempdir().unwrap();
    let daemon = tls_daemon(dir.path(), http, https, &pebble.flags()).await;
    let (_origin, first) = deploy_automatic(&daemon, "renew.test").await;
    // Renewal is due 20 s after issue; the new one ends later.
    let renewed = wait_certificate(&daemon, "renew.test", |c| {
        issued(c) && c["not_after"] != first["not_after"]
    })
    .await;
    assert!(renewed["last_error"].is_null(), "{renewed}");
    assert_eq!(
        daemon.stderr().matches("certificate issued").count(),
        2,
        "{}",
        daemon.stderr()
    );
}

/// A self-signed certificate for `names`, as the PEM files a user gives.
fn write_static(dir: &Path, names: &[&str]) -> (PathBuf, PathBuf) {
    let key = rcgen::KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let cert = rcgen::CertificateParams::new(names)
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let (c, k) = (dir.join("site.pem"), dir.join("site.key"));
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c, k)
}

#[tokio::test]
async fn static_files_sni_default_redirect_and_hsts() {
    let (http, https) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let daemon = tls_daemon(dir.path(), http, https, &["--no-acme".to_string()]).await;
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = write_static(certs.path(), &["*.static.test"]);
    let origin = Origin::start("blue").await.unwrap();
    let tls = json!({"certificate": {"files": {"cert": cert, "key": key}}, "hsts": "1day"});
    deploy_tls(&daemon, "web", "*.static.test", &origin, tls).await;
    let https_addr: SocketAddr = format!("127.0.0.1:{https}").parse().unwrap();

    // A wildcard certificate from files, verified by curl against itself.
    let (status, body) = curl_https(https_addr, "www.static.test", &cert, &["-D", "-"]).await;
    assert_eq!(status, "200 2", "{body}");
    assert!(
        body.contains("strict-transport-security: max-age=86400"),
        "{body}"
    );
    // No SNI: the default certificate, not a failed handshake.
    let default = served_certificate(https_addr, None);
    assert!(default.contains("cutover default certificate"), "{default}");
    let named = served_certificate(https_addr, Some("www.static.test"));
    assert!(named.contains("*.static.test"), "{named}");

    // Plain HTTP is redirected with path and query; the ACME path goes
    // to the app (its own ACME client may be waiting there).
    assert_eq!(
        redirect_of(http, "www.static.test", "/a/b?c=d").await,
        format!("308 https://www.static.test:{https}/a/b?c=d")
    );
    let challenge = redirect_of(http, "www.static.test", "/.well-known/acme-challenge/abc").await;
    assert_eq!(challenge.trim(), "200", "{challenge}");

    // Sessions resume: TLS 1.2 by session ID, TLS 1.3 by ticket.
    for version in ["-tls1_2", "-tls1_3"] {
        let sess = certs.path().join(format!("session{version}"));
        let first = s_client(https_addr, version, "-sess_out", &sess).await;
        assert!(first.contains("New, TLSv1."), "{first}");
        let again = s_client(https_addr, version, "-sess_in", &sess).await;
        assert!(again.contains("Reused, TLSv1."), "{version}: {again}");
    }

    // An app's own port stays plain HTTP: it is where the app is reached
    // by address (or by name from other containers), not by its hosts.
    let own = free_port();
    let body = json!({
        "targets": [origin.target()],
        "hosts": ["own.static.test"],
        "listen": [format!("127.0.0.1:{own}")],
        "health": {"interval": "100ms", "timeout": "1s"},
        "tls": {"certificate": {"files": {"cert": cert, "key": key}}},
    });
    let (status, answer) = daemon
        .request(Method::PUT, "/v1/services/own", Some(&body.to_string()))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let body = plain_get(own, "own.static.test").await;
    assert!(body.contains("blue"), "{body}");
    assert!(redirect_of(http, "own.static.test", "/")
        .await
        .starts_with("308 "));

    // New files are served without a restart.
    let before = served_certificate(https_addr, Some("www.static.test"));
    write_static(certs.path(), &["*.static.test", "static.test"]);
    let start = Instant::now();
    while served_certificate(https_addr, Some("www.static.test")) == before {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the new files were never served"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // With the redirect off, plain HTTP is served as before.
    let tls = json!({"certificate": {"files": {"cert": cert, "key": key}}, "redirect": false});
    deploy_tls(&daemon, "web", "*.static.test", &origin, tls).await;
    let body = plain_get(http, "www.static.test").await;
    assert!(body.contains("blue"), "{body}");
}

/// h2load's summary: (succeeded, done, failed + errored + timeout, 2xx).
fn h2load_counts(out: &str) -> (u64, u64, u64, u64) {
    let num = |line: &str, key: &str| -> u64 {
        line.split(',')
            .find(|p| p.trim().ends_with(key))
            .and_then(|p| p.split_whitespace().rev().nth(1)?.parse().ok())
            .unwrap_or(u64::MAX)
    };
    let requests = out
        .lines()
        .find(|l| l.starts_with("requests:"))
        .unwrap_or("");
    let codes = out
        .lines()
        .find(|l| l.starts_with("status codes:"))
        .unwrap_or("");
    let bad = num(requests, "failed") + num(requests, "errored") + num(requests, "timeout");
    let ok_2xx = codes
        .split(',')
        .find(|p| p.trim().ends_with("2xx"))
        .and_then(|p| p.split_whitespace().rev().nth(1)?.parse().ok())
        .unwrap_or(0);
    (
        num(requests, "succeeded"),
        num(requests, "done"),
        bad,
        ok_2xx,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switches_under_https_load_fail_nothing_and_websockets_get_1012() {
    use tokio::io::AsyncBufReadExt;
    let (http, https) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = write_static(certs.path(), &["switch.test"]);
    // Clients that send no SNI (aiohttp to an IP) get this host's certificate.
    let flags = ["--no-acme", "--tls-default-host", "switch.test"].map(String::from);
    let daemon = tls_daemon(dir.path(), http, https, &flags).await;
    let (blue, green) = (
        Origin::start("blue").await.unwrap(),
        Origin::start("green").await.unwrap(),
    );
    let tls = json!({"certificate": {"files": {"cert": cert, "key": key}}});
    deploy_tls(&daemon, "web", "switch.test", &blue, tls.clone()).await;

    // WebSockets over TLS from two libraries nobody here wrote.
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../cutover-proxy/tests/ws_clients.py"
    );
    let mut ws = tokio::process::Command::new("/usr/bin/python3")
        .arg(script)
        .args([
            https.to_string(),
            "switch.test".into(),
            "2".into(),
            "30".into(),
        ])
        .arg(&cert)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("/usr/bin/python3 runs with aiohttp and websockets (scripts/deps.sh)");
    let mut lines = tokio::io::BufReader::new(ws.stdout.take().unwrap()).lines();
    let mut next_line = async || {
        tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the WebSocket clients report within 30 s")
            .unwrap()
            .expect("the WebSocket client script ended early")
    };
    for _ in 0..4 {
        let line = next_line().await;
        assert!(line.starts_with("connected "), "{line}");
    }

    // HTTP/2 and HTTP/1.1 over TLS for 6 s, with two switches inside.
    let url = format!("https://127.0.0.1:{https}/");
    let load = |h1: bool| {
        let mut c = tokio::process::Command::new("h2load");
        // Paced, not flat out: the WebSocket clients must get the CPU to
        // answer the 1012 within the relay's close grace (2 s), as they
        // would on a host that is not a 2-core machine running other tests.
        c.args(["-D", "6", "-c", "4", "-m", "4", "--rps", "250"]);
        c.args(["-H", ":authority: switch.test"]);
        if h1 {
            c.arg("--h1");
        }
        c.arg(&url)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("h2load runs (Debian package nghttp2-client)")
    };
    let (h2, h1) = (load(false), load(true));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    deploy_tls(&daemon, "web", "switch.test", &green, tls.clone()).await;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    deploy_tls(&daemon, "web", "switch.test", &blue, tls.clone()).await;
    for (name, child) in [("h2", h2), ("http/1.1", h1)] {
        let out = child.wait_with_output().await.unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let (succeeded, done, bad, ok_2xx) = h2load_counts(&text);
        assert!(
            succeeded > 100 && succeeded == done && ok_2xx == done,
            "{name}:\n{text}"
        );
        assert_eq!(bad, 0, "{name}:\n{text}");
    }
    assert!(green.requests() > 0 && blue.requests() > 0);

    // The WebSockets opened on blue got 1012 at its drain deadline (2 s).
    for _ in 0..4 {
        let line = next_line().await;
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["close"], 1012, "{line}");
    }
}

/// An ask endpoint on loopback: 200 for names that start with `yes`, 403
/// for the rest; counts the questions.
async fn ask_endpoint() -> (u16, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let asked = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = asked.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 2048];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).into_owned();
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let status = if head.starts_with("GET /allowed?domain=yes") {
                    "200 OK"
                } else {
                    "403 Forbidden"
                };
                let _ = s
                    .write_all(
                        format!(
                            "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        )
                        .as_bytes(),
                    )
                    .await;
            });
        }
    });
    (port, asked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_demand_names_are_ordered_at_their_first_handshake_if_the_ask_allows() {
    use std::sync::atomic::Ordering;
    let (http, https) = (free_port(), free_port());
    let pebble = Pebble::start(http, https, None).await;
    let (ask_port, asked) = ask_endpoint().await;
    let mut flags = pebble.flags();
    flags.extend([
        "--tls-on-demand-ask".into(),
        format!("http://127.0.0.1:{ask_port}/allowed"),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let daemon = tls_daemon(dir.path(), http, https, &flags).await;
    let origin = Origin::start("tenant").await.unwrap();
    deploy_tls(
        &daemon,
        "saas",
        "*.tenant.test",
        &origin,
        json!({"certificate": "on_demand"}),
    )
    .await;
    let https_addr = format!("127.0.0.1:{https}").parse().unwrap();
    // The first handshake waits for its certificate, then is served.
    let (status, body) = curl_https(https_addr, "yes-shop.tenant.test", &pebble.root(), &[]).await;
    assert_eq!(status, "200 2", "{body}\n{}", daemon.stderr());
    assert!(body.contains("tenant"), "{body}");
    let after_first = asked.load(Ordering::SeqCst);
    assert_eq!(after_first, 1);
    // A name with a certificate is never asked again.
    let (status, _) = curl_https(https_addr, "yes-shop.tenant.test", &pebble.root(), &[]).await;
    assert_eq!(status, "200 2");
    assert_eq!(asked.load(Ordering::SeqCst), after_first);
    // A refused name gets no certificate: the default one, which curl refuses.
    let (status, body) = curl_https(https_addr, "no-thanks.tenant.test", &pebble.root(), &[]).await;
    assert_eq!(status, "000 0", "{body}");
    assert_eq!(asked.load(Ordering::SeqCst), after_first + 1);
    let certs = certificates(&daemon).await;
    let on_demand: Vec<_> = certs
        .iter()
        .filter(|c| c["source"] == "on_demand")
        .collect();
    assert_eq!(on_demand.len(), 1, "{certs:?}");
    assert_eq!(on_demand[0]["hosts"][0], "yes-shop.tenant.test");
}

#[tokio::test]
async fn a_ca_that_needs_external_account_binding_gets_it() {
    let (http, https) = (free_port(), free_port());
    let key = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";
    let pebble = Pebble::start_with(http, https, None, Some(("kid-1", key))).await;
    let origin = Origin::start("blue").await.unwrap();

    // Without the binding the CA refuses the account, and status says so.
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = tls_daemon(dir.path(), http, https, &pebble.flags()).await;
    deploy_tls(
        &daemon,
        "web",
        "eab.test",
        &origin,
        json!({"certificate": "automatic"}),
    )
    .await;
    let cert = wait_certificate(&daemon, "eab.test", |c| c["last_error"].is_string()).await;
    let error = cert["last_error"].as_str().unwrap();
    assert!(
        error.contains("cannot register an account") && error.contains("externalAccountRequired"),
        "{error}"
    );
    daemon.stop().await;

    let key_file = dir.path().join("eab.key");
    std::fs::write(&key_file, format!("{key}\n")).unwrap();
    let mut flags = pebble.flags();
    flags.extend([
        "--acme-eab-kid".into(),
        "kid-1".into(),
        "--acme-eab-hmac-key-file".into(),
    ]);
    flags.push(key_file.display().to_string());
    let daemon = tls_daemon(dir.path(), http, https, &flags).await;
    let cert = wait_certificate(&daemon, "eab.test", issued).await;
    assert!(cert["last_error"].is_null(), "{cert}");
}

const TLS_APP: &str = r#"
name: PROJECT
services:
  web:
    image: cutover-test-origin:latest
    environment:
      NAME: ${IT_NAME}
    x-cutover:
      port: 8080
      hosts: [HOST]
      tls: true
      tls_redirect: REDIRECT
      health: {interval: 100ms}
      deploy_timeout: 20s
      drain_timeout: 2s
      keep: 1
"#;

fn tls_project(name: &str, host: &str, redirect: bool) -> crate::deploy::Project {
    crate::deploy::images();
    let compose = TLS_APP
        .replace("HOST", host)
        .replace("REDIRECT", &redirect.to_string());
    crate::deploy::Project::new(name, &compose, "IT_NAME=one\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cutover_deploy_of_a_compose_app_with_tls_true_serves_https() {
    use crate::deploy::expect_code;
    let (http, https) = (free_port(), free_port());
    let pebble = Pebble::start(http, https, None).await;
    let project = tls_project("cvit-tls-ok", "compose.test", true);
    let dir = tempfile::tempdir().unwrap();
    let daemon = tls_daemon(dir.path(), http, https, &pebble.flags()).await;
    let out = project.cutover(&daemon, &["deploy"]);
    expect_code(&out, 0, &daemon);
    let cert = wait_certificate(&daemon, "compose.test", issued).await;
    assert_eq!(cert["services"][0], "cvit-tls-ok/web");
    let https_addr = format!("127.0.0.1:{https}").parse().unwrap();
    let (status, body) = curl_https(https_addr, "compose.test", &pebble.root(), &[]).await;
    assert_eq!(status, "200 2", "{body}");
    assert!(body.contains("one"), "{body}");
    // `cutover status -p` lists the project's certificate.
    let out = project.cutover(&daemon, &["status"]);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("compose.test") && shown.contains("Pebble"),
        "{shown}"
    );
    expect_code(&project.cutover(&daemon, &["down"]), 0, &daemon);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_warns_of_a_failed_certificate_and_never_waits_for_it() {
    use crate::deploy::expect_code;
    let (http, https) = (free_port(), free_port());
    // The CA validates on ports nobody listens on: every order fails.
    let pebble = Pebble::start(free_port(), free_port(), None).await;
    let project = tls_project("cvit-tls-bad", "unreachable.test", false);
    let dir = tempfile::tempdir().unwrap();
    let daemon = tls_daemon(dir.path(), http, https, &pebble.flags()).await;
    expect_code(&project.cutover(&daemon, &["deploy"]), 0, &daemon);
    wait_certificate(&daemon, "unreachable.test", |c| c["last_error"].is_string()).await;
    project.set_env("IT_NAME=two\n");
    let out = project.cutover(&daemon, &["deploy"]);
    expect_code(&out, 0, &daemon);
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        shown.contains("HTTPS for unreachable.test") && shown.contains("validation failed"),
        "{shown}"
    );
    assert!(shown.contains("plain HTTP keeps serving"), "{shown}");
    let body = plain_get(http, "unreachable.test").await;
    assert!(body.contains("two"), "{body}");
    expect_code(&project.cutover(&daemon, &["down"]), 0, &daemon);
}

/// The HTTPS listener travels to the successor with the other listeners:
/// new TLS connections, each a full handshake, are never refused across
/// three upgrades.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_https_listener_is_handed_over_on_upgrade() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    let (http, https) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let daemon = tls_daemon(dir.path(), http, https, &["--no-acme".to_string()]).await;
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = write_static(certs.path(), &["up.test"]);
    let origin = Origin::start("blue").await.unwrap();
    let tls = json!({"certificate": {"files": {"cert": cert, "key": key}}});
    deploy_tls(&daemon, "web", "up.test", &origin, tls).await;
    let https_addr: SocketAddr = format!("127.0.0.1:{https}").parse().unwrap();
    let mut serving = crate::upgrade::Serving(daemon.child.id());

    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let load = tokio::spawn({
        let (stop, ok, failed, cert) = (stop.clone(), ok.clone(), failed.clone(), cert.clone());
        async move {
            while !stop.load(Ordering::Relaxed) {
                let (status, body) = curl_https(https_addr, "up.test", &cert, &["--http1.1"]).await;
                if status == "200 1.1" {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                    eprintln!("failed: {status} {body}");
                }
            }
        }
    });
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let socket = daemon.socket.clone();
        let answer = tokio::task::spawn_blocking(move || crate::upgrade::upgrade(&socket))
            .await
            .unwrap();
        // Not a new `Serving`: dropping the old one would SIGTERM the
        // predecessor while it drains, a second signal that cuts its
        // in-flight requests.
        serving.0 = answer["pid"].as_u64().unwrap() as u32;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    assert!(
        ok > 10 && failed == 0,
        "{ok} HTTPS requests served, {failed} failed"
    );
    drop(serving);
}

/// `--control-tls-host`: the TCP control listener serves the certificate
/// ordered from the ACME CA for that name (no route asks for it), which
/// curl verifies against the CA's root, and the CLI reaches it.
#[tokio::test]
async fn the_control_listener_serves_the_certificate_ordered_for_its_host() {
    let (http, https, control) = (free_port(), free_port(), free_port());
    let pebble = Pebble::start(http, https, None).await;
    let dir = tempfile::tempdir().unwrap();
    let mut extra = pebble.flags();
    extra.extend([
        "--control-listen".into(),
        format!("127.0.0.1:{control}"),
        "--control-tls-host".into(),
        "deploy.test".into(),
    ]);
    let daemon = tls_daemon(dir.path(), http, https, &extra).await;
    let cert = wait_certificate(&daemon, "deploy.test", issued).await;
    assert_eq!(cert["services"][0], "cutover/control-api", "{cert}");

    let out = curl()
        .args(["-sS", "--cacert"])
        .arg(pebble.root())
        .args(["--resolve", &format!("deploy.test:{control}:127.0.0.1")])
        .arg(format!("https://deploy.test:{control}/v1/health"))
        .output()
        .await
        .unwrap();
    let body = String::from_utf8_lossy(&out.stdout);
    // TLS verified; the request itself needs a token.
    assert!(
        body.contains("missing bearer token"),
        "{body} {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The CLI pins what the listener serves.
    let handshake = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{control}"),
            "-noservername",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let mut x509 = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut x509.stdin.take().unwrap(), &handshake.stdout).unwrap();
    let out = x509.wait_with_output().unwrap();
    let pin = String::from_utf8_lossy(&out.stdout)
        .trim()
        .rsplit('=')
        .next()
        .unwrap()
        .to_string();
    let token = crate::util::run(
        crate::util::cutover()
            .arg("--socket")
            .arg(&daemon.socket)
            .args(["token", "create", "--scope", "read"]),
    );
    assert!(
        token.status.success(),
        "{}",
        String::from_utf8_lossy(&token.stderr)
    );
    let out = crate::util::run(
        crate::util::cutover()
            .args([
                "--host",
                &format!("https://127.0.0.1:{control}"),
                "--tls-fingerprint",
                &pin,
            ])
            .env(
                "CUTOVER_TOKEN",
                String::from_utf8_lossy(&token.stdout).trim(),
            )
            .args(["status", "--json"]),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
