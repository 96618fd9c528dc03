//! `cutover remove-volumes`: one task of the global job that `down
//! --volumes` runs on a Swarm (`cutover_deploy::swarm::volumes`). It
//! removes, from its own node's engine, the volumes labelled with the
//! project, and prints a line per volume for the deploy engine to report:
//! `removed NAME` or `kept NAME: why`. Nobody runs this by hand.

use std::time::Duration;

use cutover_docker::labels::LabelFilter;
use cutover_docker::{DockerEngine, Engine};

use crate::args::RemoveVolumesArgs;
use crate::error::CliError;
use crate::exit::ExitStatus;

/// Between two tries at a volume a stopping container still holds.
const RETRY: Duration = Duration::from_millis(500);

pub fn run(args: &RemoveVolumesArgs) -> Result<ExitStatus, CliError> {
    let runtime = super::client_runtime()?;
    runtime.block_on(async {
        let engine = DockerEngine::connect()
            .await
            .map_err(|e| CliError::failure(format!("cannot reach this node's engine: {e}")))?;
        let volumes = engine
            .list_volumes(&LabelFilter::project(&args.project))
            .await
            .map_err(|e| CliError::failure(format!("cannot list the volumes: {e}")))?;
        if volumes.is_empty() {
            println!("no volume of {} here", args.project);
        }
        let deadline = tokio::time::Instant::now() + args.patience;
        let mut kept = 0;
        for v in &volumes {
            match remove(&engine, &v.name, deadline).await {
                Ok(()) => println!("removed {}", v.name),
                Err(e) => {
                    println!("kept {}: {e}", v.name);
                    kept += 1;
                }
            }
        }
        Ok(if kept == 0 {
            ExitStatus::Success
        } else {
            ExitStatus::Failure
        })
    })
}

/// A container of a service `down` just removed holds its volume until
/// the node has stopped and removed it: tried again until `deadline`.
async fn remove(
    engine: &DockerEngine,
    name: &str,
    deadline: tokio::time::Instant,
) -> Result<(), cutover_docker::EngineError> {
    loop {
        match engine.remove_volume(name).await {
            Ok(_) => return Ok(()),
            Err(e) if e.is_conflict() && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(RETRY).await;
            }
            Err(e) => return Err(e),
        }
    }
}
