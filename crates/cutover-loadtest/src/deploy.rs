//! The deploy loop: runs the deploy command at its interval, bounded in count.

use crate::*;

pub(crate) async fn deploy_loop(shared: Arc<Shared>) {
    let Some(cmd) = shared.args.deploy_cmd.clone() else {
        return;
    };
    for i in 1..=shared.args.deploys {
        tokio::time::sleep(shared.args.deploy_interval).await;
        if !shared.running() {
            tracing::warn!(index = i, "run ended before this deploy started");
            break;
        }
        let version = format!("v{i}");
        let broken = shared.args.broken_at == Some(i);
        let mut c = tokio::process::Command::new("sh");
        c.arg("-c")
            .arg(&cmd)
            .env("LOADTEST_VERSION", &version)
            .env("LOADTEST_DEPLOY", i.to_string());
        if let Some(var) = &shared.args.version_env {
            c.env(var, &version);
        }
        if broken {
            c.env("LOADTEST_BROKEN", "1");
        }
        c.kill_on_drop(true);
        // Its own process group: an interrupted run stops the deploy and all
        // it started (docker-compose, curl, sleep), not only `sh`.
        c.process_group(0);
        let start_ms = shared.now_ms();
        let status = match c.spawn() {
            Ok(mut child) => {
                let group = child
                    .id()
                    .and_then(|id| rustix::process::Pid::from_raw(id as i32));
                *shared.deploy_group.lock().unwrap() = group;
                let status = child.wait().await;
                *shared.deploy_group.lock().unwrap() = None;
                status
            }
            Err(e) => Err(e),
        };
        let end_ms = shared.now_ms();
        let exit_code = match status {
            Ok(s) => s.code().or(Some(-1)),
            Err(e) => {
                tracing::error!(error = %e, "could not run the deploy command");
                None
            }
        };
        eprintln!(
            "deploy {i} ({version}{}): exit {exit_code:?} after {:.0} ms",
            if broken { ", broken" } else { "" },
            end_ms - start_ms
        );
        shared.deploys.lock().unwrap().push(DeployRun {
            index: i,
            expected_failure: broken,
            start_ms,
            end_ms,
            exit_code,
        });
    }
}
