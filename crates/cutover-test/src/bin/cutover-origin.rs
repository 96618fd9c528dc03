//! The test origin as a standalone server, for the Docker test image and
//! benchmarks.
//!
//! `cutover-origin [--listen ADDR] [--name NAME]`; without flags it reads
//! `NAME` (default "origin") and `PORT` (default 8080) and listens on 0.0.0.0.

use std::process::ExitCode;

use cutover_test::origin::{serve, OriginState};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

fn usage() -> ExitCode {
    eprintln!("usage: cutover-origin [--listen ADDR:PORT] [--name NAME]\n(env: NAME, PORT)");
    ExitCode::from(2)
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut name = std::env::var("NAME").unwrap_or_else(|_| "origin".into());
    let port = std::env::var("PORT").unwrap_or_else(|_| "8080".into());
    let mut listen = format!("0.0.0.0:{port}");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--listen", Some(v)) => listen = v,
            ("--name", Some(v)) => name = v,
            _ => return usage(),
        }
    }
    let listener = match TcpListener::bind(&listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "cannot listen on {listen}: {e}\nhint: pick a free port with --listen or PORT"
            );
            return ExitCode::FAILURE;
        }
    };
    eprintln!("cutover-origin {name} listening on {listen}");
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let term = async {
            #[cfg(unix)]
            if let Ok(mut s) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            {
                s.recv().await;
                return;
            }
            std::future::pending::<()>().await
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term => {}
        }
        stop.cancel();
    });
    serve(listener, OriginState::new(&name), shutdown).await;
    ExitCode::SUCCESS
}
