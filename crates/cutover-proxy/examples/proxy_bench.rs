//! A bare data plane for throughput checks: `proxy_bench LISTEN TARGET...`
//! routes every host to TARGET(s) (e.g. `cutover-origin` processes) with the
//! default config and no access log. `PROXY_THREADS=N` sets the runtime's
//! worker threads (1 = current-thread runtime; default: one per core).

use cutover_core::service::DeployRequest;
use cutover_proxy::{Proxy, ProxyConfig};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let threads: usize = std::env::var("PROXY_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let rt = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        if threads > 1 {
            b.worker_threads(threads);
        }
        b.enable_all().build()?
    };
    rt.block_on(run())
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().ok_or("usage: proxy_bench LISTEN TARGET...")?;
    let targets: Vec<String> = args.collect();
    if targets.is_empty() {
        return Err("usage: proxy_bench LISTEN TARGET...".into());
    }
    let proxy = Proxy::new(ProxyConfig {
        access_log: false,
        ..ProxyConfig::default()
    });
    let req: DeployRequest = serde_json::from_value(serde_json::json!({ "targets": targets }))?;
    proxy.deploy("bench", req).await?;
    let listener = TcpListener::bind(&listen).await?;
    eprintln!("proxy_bench listening on {listen}");
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.cancel();
    });
    proxy.serve(listener, shutdown).await?;
    Ok(())
}
