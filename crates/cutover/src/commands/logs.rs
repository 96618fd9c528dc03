//! `cutover logs SERVICE`: the container's log, as the daemon streams it.

use std::io::Write;

use hyper::Method;

use crate::args::LogsArgs;
use crate::client::DaemonClient;
use crate::error::CliError;
use crate::exit::ExitStatus;

pub fn run(args: &LogsArgs, client: &DaemonClient) -> Result<ExitStatus, CliError> {
    let project = super::project_name(&args.project)?;
    let mut path = format!(
        "{}?service={}&tail={}",
        super::project_path(&project, "logs"),
        super::query_value(&args.service),
        args.tail
    );
    if args.follow {
        path.push_str("&follow=true");
    }
    if args.all {
        path.push_str("&all=true");
    }
    if let Some(since) = args.since {
        path.push_str(&format!("&since={}s", since.as_secs()));
    }
    super::client_runtime()?.block_on(async {
        let mut stream = client.stream(Method::GET, &path, None).await?;
        let mut stdout = std::io::stdout().lock();
        while let Some(chunk) = stream.chunk().await? {
            // A closed pipe (`| head`) ends the command quietly.
            if stdout
                .write_all(&chunk)
                .and_then(|_| stdout.flush())
                .is_err()
            {
                break;
            }
        }
        Ok(ExitStatus::Success)
    })
}
