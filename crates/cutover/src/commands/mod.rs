//! One module per subcommand; each takes its parsed arguments and returns the
//! exit status or a [`CliError`].

mod completions;
mod config;
mod context;
mod deploy;
mod dial_stdio;
mod down;
mod gateway;
mod history;
mod logs;
mod maintenance;
mod plan;
mod remove_volumes;
mod rollback;
mod serve;
mod stage;
mod status;
mod token;
mod upgrade;
mod wait;

use std::collections::BTreeMap;

use cutover_compose::{load_project, read_sources, LoadError, LoadOptions};
use cutover_core::compose::{is_valid_project_name, normalize_project_name, ResolvedProject};
use cutover_core::diag::Diagnose;

use crate::args::{Cli, Command, GlobalArgs, Origins, ProjectArgs};
use crate::client::DaemonClient;
use crate::error::CliError;
use crate::exit::ExitStatus;
use crate::settings::HostEnv;

pub fn run(cli: Cli, origins: Origins) -> Result<ExitStatus, CliError> {
    let env = HostEnv::from_process();
    match &cli.command {
        Command::Serve(args) => serve::run(args, &cli.global, &origins, &env),
        Command::Deploy(args) => deploy::run(args, &client(&cli.global, &origins, &env)?),
        Command::Plan(args) => plan::run(args, &client(&cli.global, &origins, &env)?),
        Command::Rollback(args) => rollback::run(args, &client(&cli.global, &origins, &env)?),
        Command::Promote(args) => {
            stage::run(args, "promote", &client(&cli.global, &origins, &env)?)
        }
        Command::Abort(args) => stage::run(args, "abort", &client(&cli.global, &origins, &env)?),
        Command::Status(args) => status::run(args, &client(&cli.global, &origins, &env)?),
        Command::History(args) => history::run(args, &client(&cli.global, &origins, &env)?),
        Command::Logs(args) => logs::run(args, &client(&cli.global, &origins, &env)?),
        Command::Down(args) => down::run(args, &client(&cli.global, &origins, &env)?),
        Command::Config(args) => config::run(args),
        Command::Upgrade(args) => upgrade::run(args, &client(&cli.global, &origins, &env)?),
        Command::Wait(args) => wait::run(args, &client(&cli.global, &origins, &env)?),
        Command::Maintenance(cmd) => maintenance::run(cmd, &client(&cli.global, &origins, &env)?),
        Command::Context(cmd) => context::run(cmd, &cli.global, &env),
        Command::Token(cmd) => token::run(cmd, &client(&cli.global, &origins, &env)?),
        Command::DialStdio => dial_stdio::run(&cli.global, &origins, &env),
        Command::Gateway(args) => gateway::run(args),
        Command::RemoveVolumes(args) => remove_volumes::run(args),
        Command::Completions(args) => completions::completions(args),
        Command::Man => completions::man(),
    }
}

fn client(global: &GlobalArgs, origins: &Origins, env: &HostEnv) -> Result<DaemonClient, CliError> {
    crate::logging::init(crate::args::LogFormat::Text, "warn");
    Ok(DaemonClient::new(crate::endpoint::resolve(
        global, origins, env,
    )?))
}

/// A runtime for client commands, which do little concurrent work.
fn client_runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::failure(format!("cannot start the async runtime: {e}")))
}

fn load_options(args: &ProjectArgs) -> Result<LoadOptions, CliError> {
    let working_dir = std::env::current_dir().map_err(|e| {
        CliError::failure(format!("cannot read the current directory: {e}"))
            .with_hint("cd into the project's folder again; it may have been removed")
    })?;
    // Compose reads the environment too: the process wins over `.env`.
    let process_env = unicode_env(std::env::vars_os());
    let stdin = if args.files.iter().any(|f| f.as_os_str() == "-") {
        Some(compose_from_stdin()?)
    } else {
        None
    };
    Ok(LoadOptions {
        files: args.files.clone(),
        project_name: args.project_name.clone(),
        env_file: args.env_file.clone(),
        profiles: args.profiles.clone(),
        working_dir,
        process_env,
        stdin,
    })
}

/// The environment variables a compose file can name. One that is not
/// Unicode (a locale's leftovers, a binary blob) cannot be written in YAML,
/// so it is skipped rather than failing every command that reads the
/// environment; `std::env::vars()` would panic on it.
fn unicode_env(
    vars: impl Iterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
) -> BTreeMap<String, String> {
    vars.filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// The compose file of `-f -`. Read once and kept: some commands load the
/// project more than once, and stdin has one copy.
fn compose_from_stdin() -> Result<String, CliError> {
    static STDIN: std::sync::OnceLock<Result<String, String>> = std::sync::OnceLock::new();
    let read = STDIN.get_or_init(|| {
        let mut stdin = std::io::stdin();
        if std::io::IsTerminal::is_terminal(&stdin) {
            return Err("-f -: stdin is a terminal, not a compose file".into());
        }
        let mut content = String::new();
        std::io::Read::read_to_string(&mut stdin, &mut content)
            .map_err(|e| format!("-f -: cannot read the compose file from stdin: {e}"))?;
        Ok(content)
    });
    read.clone().map_err(|message| {
        CliError::bad_input(message)
            .with_hint("pipe the file in, e.g. `envsubst < compose.tpl.yaml | cutover deploy -f -`")
    })
}

/// Finds, reads and resolves the compose project (exit 2 on any problem in it).
pub fn load(args: &ProjectArgs) -> Result<ResolvedProject, CliError> {
    load_project(&load_options(args)?).map_err(load_error)
}

/// The project name for commands that do not deploy: `-p`, else the compose
/// file's `name:`, else its folder, exactly as `deploy` resolves it.
pub fn project_name(args: &ProjectArgs) -> Result<String, CliError> {
    if let Some(name) = &args.project_name {
        if !is_valid_project_name(name) {
            return Err(
                CliError::bad_input(format!("-p: {name:?} is not a valid project name")).with_hint(
                    "use lowercase letters, digits, - and _, starting with a letter or digit",
                ),
            );
        }
        return Ok(name.clone());
    }
    let opts = load_options(args)?;
    match load_project(&opts) {
        Ok(project) => Ok(project.name),
        Err(LoadError::Compose(e)) => name_only(&opts).ok_or_else(|| load_error(e.into())),
        Err(e) => Err(load_error(e)),
    }
}

/// The project name from the files alone, for commands that need nothing
/// else: a rollback must not fail because a variable only the deploy needs
/// (`image: ${DOCKER_IMAGE:?}`) is unset. `None` when the name itself is
/// interpolated or invalid; the full load's errors are shown then.
fn name_only(opts: &LoadOptions) -> Option<String> {
    let sources = read_sources(opts).ok()?;
    let mut name = None;
    for file in &sources.input.files {
        let doc: serde_norway::Value = serde_norway::from_str(&file.content).ok()?;
        if let Some(n) = doc.get("name").filter(|n| !n.is_null()) {
            name = Some(n.as_str()?.to_string());
        }
    }
    let name = match name {
        Some(n) => n,
        None => normalize_project_name(&sources.input.project_dir.file_name()?.to_string_lossy()),
    };
    is_valid_project_name(&name).then_some(name)
}

/// Like [`project_name`], but `None` when nothing names a project and there
/// is no compose file here.
pub fn optional_project_name(args: &ProjectArgs) -> Result<Option<String>, CliError> {
    if args.is_given() {
        return project_name(args).map(Some);
    }
    let opts = load_options(args)?;
    match load_project(&opts) {
        Ok(project) => Ok(Some(project.name)),
        Err(LoadError::NotFound { .. }) => Ok(None),
        Err(LoadError::Compose(e)) => name_only(&opts)
            .map(Some)
            .ok_or_else(|| load_error(e.into())),
        Err(e) => Err(load_error(e)),
    }
}

/// One `error:` block per problem in the compose input, each with its hint.
fn load_error(e: LoadError) -> CliError {
    let LoadError::Compose(compose) = e else {
        return CliError::bad_input(e.report());
    };
    CliError::all(
        ExitStatus::BadInput,
        compose.errors.iter().map(Diagnose::report),
    )
    .unwrap_or_else(|| CliError::bad_input("the compose file is invalid"))
}

/// `/v1/projects/{project}/{what}`; project names are URL-safe by their rule.
pub fn project_path(project: &str, what: &str) -> String {
    format!("/v1/projects/{project}/{what}")
}

/// Percent-encodes a query value (service names are safe, versions may not be).
pub fn query_value(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;

    use super::*;

    #[test]
    fn variables_that_are_not_unicode_are_skipped() {
        let bad = || OsString::from_vec(vec![0x66, 0x6f, 0xff]);
        let env = unicode_env(
            [
                ("GOOD".into(), "1".into()),
                (bad(), "x".into()),
                ("BAD_VALUE".into(), bad()),
            ]
            .into_iter(),
        );
        assert_eq!(env, BTreeMap::from([("GOOD".into(), "1".into())]));
    }
}
