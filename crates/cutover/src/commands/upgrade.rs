//! `cutover upgrade`: the daemon starts the `cutover` on its PATH as its
//! successor and hands it the listeners and routes (see `handoff.rs`);
//! the answer comes once the new process serves. `systemctl reload cutover`
//! runs this.

use cutover_core::status::UpgradeAnswer;

use crate::args::UpgradeArgs;
use crate::client::DaemonClient;
use crate::error::CliError;
use crate::exit::ExitStatus;
use crate::stdout;

pub fn run(args: &UpgradeArgs, client: &DaemonClient) -> Result<ExitStatus, CliError> {
    let answer: UpgradeAnswer =
        super::client_runtime()?.block_on(client.post("/v1/upgrade", &serde_json::json!({})))?;
    if args.json {
        stdout::print_json(&answer)?;
    } else {
        stdout::print(&format!(
            "cutover {} serves now (pid {}); pid {} finishes its in-flight requests and WebSockets, then exits\n",
            answer.version, answer.pid, answer.previous_pid
        ))?;
    }
    Ok(ExitStatus::Success)
}
