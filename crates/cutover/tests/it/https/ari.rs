//! ACME renewal information (ARI, RFC 9773) with pebble. Debian's pebble
//! 2.4 offers none, so this test puts a directory of its own in front of
//! pebble: pebble's directory with a `renewalInfo` URL added, answered
//! here with the windows the test sets, the way a CA moves a window before
//! it revokes certificates. Accounts, orders, challenges and issuance stay
//! pebble's.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{json, Value};
use tokio_rustls::rustls;

use super::{curl_https, deploy_automatic, issued, tls_daemon, wait_certificate_within, Pebble};
use crate::util::free_port;

const EXPLANATION: &str = "https://ca.test/incidents/1";
const DAY: Duration = Duration::from_secs(24 * 3600);

/// The identifiers asked about, and the windows the test set for some.
#[derive(Default)]
struct Windows {
    asked: Vec<String>,
    set: HashMap<String, (SystemTime, SystemTime)>,
}

/// The directory in front of pebble, with its `renewalInfo` endpoint.
struct RenewalInfo {
    directory: String,
    windows: Arc<Mutex<Windows>>,
    task: tokio::task::JoinHandle<()>,
}

impl RenewalInfo {
    async fn start(pebble: &Pebble) -> RenewalInfo {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut directory: Value = serde_json::from_slice(&pebble.get(&pebble.directory)).unwrap();
        directory["renewalInfo"] = json!(format!("https://{addr}/renewal-info"));
        let windows = Arc::<Mutex<Windows>>::default();
        let task = tokio::spawn(serve(
            listener,
            acceptor(pebble.dir.path()),
            Arc::new(directory.to_string()),
            windows.clone(),
        ));
        RenewalInfo {
            directory: format!("https://{addr}/dir"),
            windows,
            task,
        }
    }

    fn asked(&self) -> Vec<String> {
        self.windows.lock().unwrap().asked.clone()
    }

    fn set_window(&self, id: &str, start: SystemTime, end: SystemTime) {
        self.windows
            .lock()
            .unwrap()
            .set
            .insert(id.to_string(), (start, end));
    }
}

impl Drop for RenewalInfo {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Pebble's own endpoint certificate (localhost, 127.0.0.1), so the
/// daemon's `--acme-ca-root` trusts this directory too.
fn acceptor(dir: &Path) -> tokio_rustls::TlsAcceptor {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("pebble.pem"))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.join("pebble.key")).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

async fn serve(
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    directory: Arc<String>,
    windows: Arc<Mutex<Windows>>,
) {
    while let Ok((tcp, _)) = listener.accept().await {
        let (acceptor, directory, windows) = (acceptor.clone(), directory.clone(), windows.clone());
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let service = hyper::service::service_fn(move |req| {
                let response = answer(&req, &directory, &windows);
                async move { Ok::<_, std::convert::Infallible>(response) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

/// `/dir`, and `/renewal-info/<id>`: the window set for `id`, or one 400
/// days away, with `Retry-After: 1` (which the daemon takes as a minute).
fn answer<B>(req: &Request<B>, directory: &str, windows: &Mutex<Windows>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    if path == "/dir" {
        return Response::new(Full::new(Bytes::from(directory.to_string())));
    }
    let Some(id) = path.strip_prefix("/renewal-info/") else {
        let mut nothing = Response::new(Full::new(Bytes::new()));
        *nothing.status_mut() = StatusCode::NOT_FOUND;
        return nothing;
    };
    let mut w = windows.lock().unwrap();
    w.asked.push(id.to_string());
    let (start, end) = w.set.get(id).copied().unwrap_or_else(|| {
        let start = SystemTime::now() + DAY * 400;
        (start, start + DAY)
    });
    let body = json!({
        "suggestedWindow": {
            "start": humantime::format_rfc3339_seconds(start).to_string(),
            "end": humantime::format_rfc3339_seconds(end).to_string(),
        },
        "explanationURL": EXPLANATION,
    });
    Response::builder()
        .header("content-type", "application/json")
        .header("retry-after", "1")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

fn time(v: &Value) -> SystemTime {
    humantime::parse_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a time: {v}"))).unwrap()
}

#[tokio::test]
async fn the_cas_renewal_window_schedules_renewal_and_a_moved_window_renews_early() {
    let (http, https) = (free_port(), free_port());
    // Pebble's certificates last 5 years: the lifetime rule alone would
    // renew after 3 years and 4 months.
    let pebble = Pebble::start(http, https, None).await;
    let ari = RenewalInfo::start(&pebble).await;
    let dir = tempfile::tempdir().unwrap();
    let flags = [
        "--acme-directory".to_string(),
        ari.directory.clone(),
        "--acme-ca-root".to_string(),
        pebble.dir.path().join("ca.pem").display().to_string(),
    ];
    let daemon = tls_daemon(dir.path(), http, https, &flags).await;
    let (_origin, _) = deploy_automatic(&daemon, "ari.test").await;

    // 1. The CA was asked about the new certificate; the renewal is drawn
    //    in its window, long before the lifetime rule's.
    let first = wait_certificate_within(&daemon, "ari.test", Duration::from_secs(60), |c| {
        issued(c) && c["renewal_window"].is_object()
    })
    .await;
    let window = &first["renewal_window"];
    let next = time(&first["next_renewal"]);
    assert!(
        time(&window["start"]) <= next && next <= time(&window["end"]),
        "{first}"
    );
    assert!(next < SystemTime::now() + DAY * 402, "{first}");
    assert_eq!(window["explanation"], EXPLANATION, "{first}");
    let asked = ari.asked();
    assert_eq!(asked.len(), 1, "{asked:?}");
    let first_id = asked[0].clone();
    assert!(
        first_id.split('.').count() == 2,
        "an ARI identifier is AKI.serial: {first_id}"
    );

    // 2. The CA moves that certificate's window into the past, as before
    //    a revocation. At its next ask (within about a minute) the daemon
    //    renews it, and asks about the new one under its own identifier.
    let now = SystemTime::now();
    ari.set_window(&first_id, now - DAY, now - DAY / 2);
    let renewed = wait_certificate_within(&daemon, "ari.test", Duration::from_secs(150), |c| {
        issued(c) && c["not_after"] != first["not_after"]
    })
    .await;
    assert!(renewed["last_error"].is_null(), "{renewed}");
    let stderr = daemon.stderr();
    assert_eq!(stderr.matches("certificate issued").count(), 2, "{stderr}");
    assert!(
        stderr.contains("the CA's renewal window has come; renewing early"),
        "{stderr}"
    );
    assert!(stderr.contains(EXPLANATION), "{stderr}");
    // The renewal asked to replace the first certificate. Pebble 2.4 knows
    // nothing of `replaces` and leaves it out of its answer, which
    // instant-acme takes as a refusal: the renewal fell back to a plain order.
    assert!(
        stderr.contains("refused the order as a replacement; ordering plainly"),
        "{stderr}"
    );
    let asked = ari.asked();
    assert!(asked.iter().any(|id| id != &first_id), "{asked:?}");
    // The new certificate's window is the far one again; it is served.
    let next = time(&renewed["next_renewal"]);
    assert!(next > SystemTime::now() + DAY * 399, "{renewed}");
    let https_addr = format!("127.0.0.1:{https}").parse().unwrap();
    let (status, body) = curl_https(https_addr, "ari.test", &pebble.root(), &[]).await;
    assert_eq!(status, "200 2", "{body}");
}
