//! `cutover config`: the compose project as cutover resolves it, printed in
//! the canonical form `docker compose config` prints, with each app's
//! `x-cutover` settings filled in. Reads files only; needs no daemon.

use std::fmt::Write as _;

use cutover_core::compose::canonical;
use cutover_core::diag::Diagnose;

use crate::args::{ConfigArgs, ConfigFormat};
use crate::error::CliError;
use crate::exit::ExitStatus;
use crate::stdout;

pub fn run(args: &ConfigArgs) -> Result<ExitStatus, CliError> {
    let project = super::load(&args.project)?;
    let mut warnings = String::new();
    for w in &project.warnings {
        let _ = writeln!(warnings, "warning: {}", w.report());
    }
    // On stderr, so `cutover config > resolved.yaml` holds the project only.
    let _ = std::io::Write::write_all(&mut std::io::stderr(), warnings.as_bytes());
    if args.quiet {
        return Ok(ExitStatus::Success);
    }
    if args.services {
        let names: String = project
            .accessories
            .iter()
            .map(|a| &a.service.name)
            .chain(project.apps.iter().map(|a| &a.service.name))
            .map(|n| format!("{n}\n"))
            .collect();
        stdout::print(&names)?;
        return Ok(ExitStatus::Success);
    }
    let value = canonical(&project);
    match args.format {
        ConfigFormat::Json => stdout::print_json(&value)?,
        ConfigFormat::Yaml => {
            let text = serde_norway::to_string(&value).expect("JSON values serialize as YAML");
            stdout::print(&text)?;
        }
    }
    Ok(ExitStatus::Success)
}
