use std::net::SocketAddr;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let cfg = athens::Config::from_env()?;
    if std::env::args().nth(1).as_deref() == Some("migrate") {
        return migrate(&cfg).await;
    }
    let addr = SocketAddr::from(([0, 0, 0, 0], cfg.port));
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}\nhint: set PORT to a free port"))?;

    let shutdown = CancellationToken::new();
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!("{name}: draining, then exiting");
        trigger.cancel();
    });

    tracing::info!(
        %addr,
        version = %cfg.version,
        color = %cfg.color,
        redis = %format!("{}:{}", cfg.redis_host, cfg.redis_port),
        "athens listening"
    );
    athens::serve(listener, cfg, shutdown).await?;
    tracing::info!("athens stopped");
    Ok(())
}

/// `athens migrate`: the compose file's `pre_deploy` hook, run by cutover in
/// a one-off container of the new version before it starts.
async fn migrate(cfg: &athens::Config) -> anyhow::Result<()> {
    let store = athens::Store::new(&cfg.redis_host, cfg.redis_port)?;
    let was = store.migrate().await.with_context(|| {
        format!(
            "cannot migrate the store at {}:{}",
            cfg.redis_host, cfg.redis_port
        )
    })?;
    let now = athens::SCHEMA_VERSION;
    if was < now {
        println!("migrated the store from schema {was} to {now}");
    } else {
        println!("the store is at schema {was}; nothing to migrate");
    }
    Ok(())
}
