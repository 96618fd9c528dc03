//! `cutover-loadtest`: runs HTTP, WebSocket and SSE load against one endpoint while a
//! deploy command runs repeatedly, then reports every failure it saw.
//!
//! Everything is bounded: the run stops at `--duration` (plus the time the last deploy
//! command needs) or at `--max-requests`, whichever comes first.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

mod deploy;
mod http_load;
mod oauth;
mod report;
mod shared;
mod sse;
mod ws;

use deploy::*;
use http_load::*;
use oauth::*;
use report::*;
use shared::*;
use sse::*;
use ws::*;

#[derive(Parser, Debug)]
#[command(
    name = "cutover-loadtest",
    about = "Run load against an HTTP endpoint while deploying, and report what broke"
)]
struct Args {
    /// Base URL of the app, e.g. http://127.0.0.1:8080. Only loopback hosts unless --allow-host.
    #[arg(long)]
    url: String,
    /// A non-loopback host this run may target (e.g. a container IP the run created).
    #[arg(long)]
    allow_host: Vec<String>,
    /// How long traffic runs.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Keep-alive HTTP/1.1 connections, each a loop of requests.
    #[arg(long, default_value_t = 50)]
    keepalive: usize,
    /// Loops that open a fresh connection per request.
    #[arg(long, default_value_t = 4)]
    fresh: usize,
    /// WebSocket clients (path /ws).
    #[arg(long, default_value_t = 50)]
    ws: usize,
    /// SSE readers (path /api/v1/stream).
    #[arg(long, default_value_t = 0)]
    sse: usize,
    /// Global cap on HTTP requests per second; unlimited when absent.
    #[arg(long)]
    rate: Option<f64>,
    /// Stop after this many HTTP requests.
    #[arg(long)]
    max_requests: Option<u64>,
    /// Path hit by the HTTP load; its JSON `version` and `count` fields are checked.
    #[arg(long, default_value = "/api/v1/visits")]
    path: String,
    /// Per-request timeout.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Shell command (run with `sh -c`) that performs one deploy.
    #[arg(long)]
    deploy_cmd: Option<String>,
    /// How many deploys to run, one after another.
    #[arg(long, default_value_t = 1)]
    deploys: u32,
    /// Pause before each deploy.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    deploy_interval: Duration,
    /// 1-based index of the deploy that runs with LOADTEST_BROKEN=1 and must fail.
    #[arg(long)]
    broken_at: Option<u32>,
    /// Extra env var the deploy command gets set to the version (`v<i>`).
    #[arg(long)]
    version_env: Option<String>,
    /// Response header that carries the app version (instead of the JSON `version`).
    #[arg(long)]
    version_header: Option<String>,
    /// Start an OAuth flow this often (0s disables).
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    oauth_interval: Duration,
    /// Write the JSON report here.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Write the markdown report here.
    #[arg(long)]
    markdown: Option<std::path::PathBuf>,
    /// Exit 1 when anything failed (requests, cut WebSockets, continuity, unexpected deploy failure).
    #[arg(long)]
    assert_zero_failures: bool,
}

/// Where the target lives; parsed once so every task connects the same way.
#[derive(Clone, Debug)]
struct Target {
    host: String,
    port: u16,
    authority: String,
}

fn parse_target(url: &str, allow: &[String]) -> anyhow::Result<Target> {
    let uri: Uri = url
        .parse()
        .with_context(|| format!("invalid --url {url:?}"))?;
    if uri.scheme_str() != Some("http") {
        bail!("--url {url:?} must use http://\nhint: TLS is not supported; point at the plain HTTP listener");
    }
    let host = uri
        .host()
        .with_context(|| format!("--url {url:?} has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri.port_u16().unwrap_or(80);
    let loopback = host == "localhost"
        || host
            .parse::<IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false);
    if !loopback && !allow.iter().any(|a| a == &host) {
        bail!(
            "refusing to load-test {host}: it is not a loopback address\nhint: pass --allow-host {host} if this run created that host (e.g. a container IP)"
        );
    }
    let authority = uri.authority().map(|a| a.to_string()).unwrap_or_default();
    Ok(Target {
        host,
        port,
        authority,
    })
}

#[tokio::main]
async fn main() {
    // Exit 1 is reserved for --assert-zero-failures, so a run that could not start or
    // finish exits 2, like a usage error.
    if let Err(e) = run().await {
        eprintln!("error: {e:#}");
        std::process::exit(2);
    }
}

async fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let target = parse_target(&args.url, &args.allow_host)?;
    if !args.path.starts_with('/') {
        bail!("--path {:?} must start with /", args.path);
    }
    let t0 = Instant::now();
    let shared = Arc::new(Shared {
        t0,
        deadline: t0 + args.duration,
        target,
        http: Mutex::default(),
        ws: Mutex::default(),
        sse: Mutex::default(),
        oauth: Mutex::default(),
        deploys: Mutex::default(),
        deploy_group: Mutex::default(),
        requests_started: AtomicU64::new(0),
        rate_next: Mutex::new(t0),
        args,
    });
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..shared.args.keepalive {
        tasks.spawn(keepalive_loop(shared.clone()));
    }
    for _ in 0..shared.args.fresh {
        tasks.spawn(fresh_loop(shared.clone()));
    }
    for id in 0..shared.args.ws {
        tasks.spawn(ws_loop(shared.clone(), id));
    }
    for _ in 0..shared.args.sse {
        tasks.spawn(sse_loop(shared.clone()));
    }
    if !shared.args.oauth_interval.is_zero() {
        tasks.spawn(oauth_loop(shared.clone()));
    }
    // Deploys run to completion even past the traffic deadline, so each one gets a verdict.
    let deploys = tokio::spawn(deploy_loop(shared.clone()));
    let work = async {
        while let Some(r) = tasks.join_next().await {
            if let Err(e) = r {
                tracing::error!(error = %e, "load task panicked");
            }
        }
        deploys.await.context("deploy task panicked")
    };
    tokio::select! {
        r = work => r?,
        (name, code) = stop_signal() => {
            stop_deploy(&shared).await;
            eprintln!("cutover-loadtest: {name}: stopped before the end; no report");
            std::process::exit(code);
        }
    }

    let report = build_report(&shared);
    let md = markdown(&report);
    print!("{md}");
    if let Some(p) = &shared.args.json {
        std::fs::write(p, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", p.display()))?;
    }
    if let Some(p) = &shared.args.markdown {
        std::fs::write(p, &md).with_context(|| format!("writing {}", p.display()))?;
    }
    if shared.args.assert_zero_failures && !report.failures.is_empty() {
        eprintln!("cutover-loadtest: failures found:");
        for f in &report.failures {
            eprintln!("  {f}");
        }
        std::process::exit(1);
    }
    Ok(())
}

/// SIGTERM or SIGINT, as the name and the exit code a shell gives a process
/// they end.
async fn stop_signal() -> (&'static str, i32) {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => tokio::select! {
            _ = term.recv() => ("SIGTERM", 143),
            _ = int.recv() => ("SIGINT", 130),
        },
        // Without handlers the default action ends the run, as before.
        _ => std::future::pending().await,
    }
}

/// Ends the deploy in progress, if any: SIGTERM to its process group, then
/// SIGKILL to what is left after 8 s. A deploy left running after the
/// harness would go on creating containers its caller has already cleaned.
async fn stop_deploy(shared: &Shared) {
    use rustix::process::{kill_process_group, test_kill_process_group, Signal};
    let Some(group) = *shared.deploy_group.lock().unwrap() else {
        return;
    };
    eprintln!("cutover-loadtest: stopping the deploy in progress");
    if kill_process_group(group, Signal::TERM).is_err() {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(8);
    while test_kill_process_group(group).is_ok() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = kill_process_group(group, Signal::KILL);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_accepted() {
        for url in [
            "http://127.0.0.1:8080",
            "http://127.1.2.3",
            "http://localhost:1",
            "http://[::1]:9000/x",
        ] {
            assert!(parse_target(url, &[]).is_ok(), "{url}");
        }
        let t = parse_target("http://[::1]:9000", &[]).unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 9000));
    }

    #[test]
    fn other_hosts_need_allow_host() {
        let err = parse_target("http://172.17.0.2:8080", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a loopback address"), "{err}");
        assert!(err.contains("hint: pass --allow-host 172.17.0.2"), "{err}");
        assert!(parse_target("http://172.17.0.2:8080", &["172.17.0.2".into()]).is_ok());
        assert!(parse_target("http://example.com", &["172.17.0.2".into()]).is_err());
        assert!(parse_target("https://127.0.0.1", &[]).is_err());
    }

    #[test]
    fn only_the_apps_answers_judge_an_oauth_state() {
        assert_eq!(verdict(StatusCode::FOUND), Verdict::Accepted);
        assert_eq!(verdict(StatusCode::OK), Verdict::Accepted);
        assert_eq!(verdict(StatusCode::BAD_REQUEST), Verdict::Refused);
        assert_eq!(verdict(StatusCode::GONE), Verdict::Refused);
        assert_eq!(verdict(StatusCode::BAD_GATEWAY), Verdict::NoAnswer);
        assert_eq!(verdict(StatusCode::SERVICE_UNAVAILABLE), Verdict::NoAnswer);
    }

    #[test]
    fn state_is_read_from_location_query() {
        assert_eq!(
            query_param("https://idp/x?client_id=a&state=abc&y=1", "state").as_deref(),
            Some("abc")
        );
        assert_eq!(query_param("https://idp/x", "state"), None);
    }
}
