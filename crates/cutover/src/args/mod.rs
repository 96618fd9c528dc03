//! The command line as the user typed it. Nothing here is resolved or
//! validated beyond what clap checks; `settings` turns it into what the
//! commands run with.

use std::path::PathBuf;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

mod gateway;
mod remove_volumes;
mod serve;
mod stage;

pub use gateway::GatewayArgs;
pub use remove_volumes::RemoveVolumesArgs;
pub use serve::{EngineKind as EngineArg, Role as RoleArg, ServeArgs};
pub use stage::StageArgs;

#[derive(Debug, Parser)]
#[command(
    name = "cutover",
    version,
    about = "Zero-downtime blue/green deploys of containerized web apps.",
    // `cutover --version` alone prints the program's version: no command
    // takes a flag of that name with another meaning beside it.
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Where the client flags are listed in `--help`: apart, so that a
/// command's own options read as one list.
const CLIENT_HEADING: &str = "Daemon connection (client commands)";

/// Arguments every subcommand takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Control socket of the daemon [default: /run/cutover/cutover.sock as root, else
    /// $XDG_RUNTIME_DIR/cutover.sock]
    #[arg(long, global = true, env = "CUTOVER_SOCKET", value_name = "PATH")]
    pub socket: Option<PathBuf>,

    /// The daemon to talk to: unix:///PATH, ssh://[USER@]HOST[:PORT][/SOCKET] or
    /// https://HOST[:PORT] (docs/remote.md) [default: the local control socket]
    #[arg(
        short = 'H',
        long,
        global = true,
        help_heading = CLIENT_HEADING,
        env = "CUTOVER_HOST",
        value_name = "URL"
    )]
    pub host: Option<String>,

    /// A named daemon from `cutover context add` [default: the one `context use` chose]
    #[arg(long, global = true,
        help_heading = CLIENT_HEADING, env = "CUTOVER_CONTEXT", value_name = "NAME")]
    pub context: Option<String>,

    /// For https://: trust the daemon's certificate if this PEM file (a CA, or the
    /// certificate itself) signed it
    #[arg(long, global = true,
        help_heading = CLIENT_HEADING, env = "CUTOVER_TLS_CA", value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,

    /// For https://: trust exactly the certificate with this SHA-256 fingerprint
    /// (`cutover serve` logs it)
    #[arg(
        long,
        global = true,
        help_heading = CLIENT_HEADING,
        env = "CUTOVER_TLS_FINGERPRINT",
        value_name = "SHA256"
    )]
    pub tls_fingerprint: Option<String>,

    /// For https://: file holding the token from `cutover token create` [default:
    /// $CUTOVER_TOKEN]
    #[arg(long, global = true,
        help_heading = CLIENT_HEADING, env = "CUTOVER_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: the reverse proxy and its control API
    Serve(Box<ServeArgs>),
    /// Deploy a compose project blue/green: accessories reconciled, apps switched with no downtime
    Deploy(DeployArgs),
    /// Show what `deploy` would do, without doing it
    Plan(PlanArgs),
    /// Switch an app back to a kept version (the previous one by default)
    Rollback(RollbackArgs),
    /// Put the version staged by `deploy --preview` or `--canary` live
    Promote(StageArgs),
    /// Drop the version staged by `deploy --preview` or `--canary`; the live one keeps serving
    Abort(StageArgs),
    /// Show the services the daemon routes to and the state of the project here
    Status(StatusArgs),
    /// Show the project's past deploys, rollbacks and downs
    History(HistoryArgs),
    /// Print the log of an app or accessory container
    Logs(LogsArgs),
    /// Stop and remove the project's containers, routes and networks
    Down(DownArgs),
    /// Print the compose project as cutover resolves it, in Compose's canonical form
    Config(ConfigArgs),
    /// Replace the running daemon with a new process of the cutover on PATH,
    /// refusing no connection: for a binary upgrade or a restart
    Upgrade(UpgradeArgs),
    /// Follow a deploy started elsewhere (`deploy --detach`, a CI step that was cut off) to its end
    Wait(WaitArgs),
    /// Take the project's apps down on purpose (a 503 page, or requests held), and back up
    #[command(subcommand)]
    Maintenance(MaintenanceCommand),
    /// Named daemons, like Docker contexts: `cutover context add prod ssh://deploy@vm1`
    #[command(subcommand)]
    Context(ContextCommand),
    /// Tokens for the HTTPS control listener, with a scope and a project
    #[command(subcommand)]
    Token(TokenCommand),
    /// Connect stdin and stdout to the control socket (what `ssh://` hosts run)
    #[command(hide = true)]
    DialStdio,
    /// Relay calls to an app by its name to the Swarm's edges (what an app's gateway service runs)
    #[command(hide = true)]
    Gateway(GatewayArgs),
    /// Remove a project's volumes from this node's engine (what `down --volumes` runs on each Swarm node)
    #[command(hide = true)]
    RemoveVolumes(RemoveVolumesArgs),
    /// Print a shell completion script: `cutover completions bash > /etc/bash_completion.d/cutover`
    Completions(CompletionsArgs),
    /// Print the man page (roff): `cutover man > /usr/local/share/man/man1/cutover.1`
    Man,
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    /// The deploy's id: the one `deploy --detach` printed, or the `--deploy-id` given
    #[arg(value_name = "ID")]
    pub id: String,

    #[command(flatten)]
    pub project: ProjectArgs,

    /// Print the progress events as JSON lines on stdout, and nothing else
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum MaintenanceCommand {
    /// New requests get a 503 page with Retry-After (or wait, with --hold); requests in
    /// flight finish. Kept across deploys and daemon restarts
    On(MaintenanceOnArgs),
    /// Serve again; held requests go on to the app
    Off(MaintenanceOffArgs),
}

#[derive(Debug, Args)]
pub struct MaintenanceOnArgs {
    /// The apps to take down [default: every app of the project]
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,

    /// The text of the 503 page
    #[arg(long, value_name = "TEXT")]
    pub message: Option<String>,

    /// Hold new requests up to this long (at most 10m) and let them through when
    /// maintenance ends, instead of answering 503 at once
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub hold: Option<Duration>,

    /// The page's Retry-After
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "60s")]
    pub retry_after: Duration,

    #[command(flatten)]
    pub project: ProjectArgs,

    /// Print the daemon's answer as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct MaintenanceOffArgs {
    /// The apps to bring back [default: every app of the project]
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,

    #[command(flatten)]
    pub project: ProjectArgs,

    /// Print the daemon's answer as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ContextCommand {
    /// Name a daemon
    Add(ContextAddArgs),
    /// List the named daemons; `*` marks the one in use
    #[command(alias = "ls")]
    List,
    /// Use this daemon when neither --host nor --context is given (`default` for the local socket)
    Use {
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Forget a named daemon
    #[command(alias = "rm")]
    Remove {
        #[arg(value_name = "NAME")]
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct ContextAddArgs {
    /// Its name: letters, digits, `-`, `_` and `.`
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Its address, as --host takes it
    #[arg(value_name = "URL")]
    pub url: String,
    /// A note shown by `context list`
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    /// Replace a context of that name
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a token and print it, once: the daemon keeps only its hash
    Create(TokenCreateArgs),
    /// List the tokens (never the secrets)
    #[command(alias = "ls")]
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token at once
    #[command(alias = "rm")]
    Revoke {
        /// The token's id (`token list`) or the whole token
        #[arg(value_name = "ID")]
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct TokenCreateArgs {
    /// The only project the token reaches [default: all of them]
    #[arg(long, value_name = "NAME")]
    pub project: Option<String>,
    /// read: status, history, logs; deploy: also deploy, plan, rollback; admin: everything
    #[arg(long, value_enum, value_name = "SCOPE")]
    pub scope: TokenScope,
    /// What it is for, shown by `token list` (e.g. github-actions)
    #[arg(long, value_name = "TEXT")]
    pub name: Option<String>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TokenScope {
    Read,
    Deploy,
    Admin,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

/// Which compose project: found like Docker Compose finds it.
#[derive(Debug, Clone, Default, Args)]
pub struct ProjectArgs {
    /// Compose file, `-` for stdin; repeat to merge several, later ones win [default:
    /// compose.yaml, compose.yml, docker-compose.yml or docker-compose.yaml here or in a
    /// parent folder]
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Project name [default: the compose file's `name:`, else its folder's name]
    #[arg(short = 'p', long = "project-name", value_name = "NAME")]
    pub project_name: Option<String>,

    /// File of variables for the compose file [default: .env beside the first compose file]
    #[arg(long, value_name = "FILE")]
    pub env_file: Option<PathBuf>,

    /// Activate a profile: its services are deployed too; repeat for several [default:
    /// $COMPOSE_PROFILES]
    #[arg(long = "profile", value_name = "PROFILE")]
    pub profiles: Vec<String>,
}

impl ProjectArgs {
    /// Whether the user named a project or a compose file explicitly.
    pub fn is_given(&self) -> bool {
        !self.files.is_empty() || self.project_name.is_some() || self.env_file.is_some()
    }
}

// No doc comments on the values: they would give `deploy --help` clap's
// long layout, unlike every other command; `--pull`'s help says them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Pull {
    Missing,
    Always,
    Never,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// Apps to deploy [default: all; accessories are always reconciled]
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,

    #[command(flatten)]
    pub project: ProjectArgs,

    /// Deploy apps even when nothing changed
    #[arg(long)]
    pub force: bool,

    /// Version label shown in status and history, e.g. a git SHA [default: a short hash]
    // `--version` still works, as before: no command has cutover's own.
    #[arg(long = "version-label", alias = "version", value_name = "LABEL")]
    pub version: Option<String>,

    /// When to pull images: missing (those not on the host), always (to pick up
    /// a moved tag), never (a missing image fails the deploy)
    #[arg(long, value_enum, default_value_t = Pull::Missing, value_name = "WHEN")]
    pub pull: Pull,

    /// How long to wait when another deploy holds the project; 0 fails at once (exit 4)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "0s")]
    pub wait_lock: Duration,

    /// Take the project over from another cutover daemon whose labels are on
    /// its containers (only when that daemon and its state dir are gone)
    #[arg(long)]
    pub adopt: bool,

    /// Stage the new version beside the live one, for requests with the
    /// `cutover-preview` header or cookie and the app's preview_hosts only
    #[arg(long, conflicts_with = "canary")]
    pub preview: bool,

    /// Stage the new version and send it this share of new sessions (kept by a
    /// cookie), e.g. 10%; `cutover promote` or `cutover abort` ends it
    #[arg(long, value_name = "PERCENT")]
    pub canary: Option<String>,

    /// Print the progress events as JSON lines on stdout, and nothing else
    #[arg(long)]
    pub json: bool,

    /// Start the deploy, print its id and return; `cutover wait ID` follows it
    #[arg(long)]
    pub detach: bool,

    /// The deploy's id, chosen by the caller (e.g. the CI run's id): a retry with the
    /// same id follows the deploy already running instead of starting another
    #[arg(long, value_name = "ID", value_parser = parse_deploy_id)]
    pub deploy_id: Option<String>,
}

/// Letters, digits, `-`, `_`, `.`; up to 64: it goes in URLs and logs.
fn parse_deploy_id(raw: &str) -> Result<String, String> {
    cutover_core::progress::check_operation_id(raw).map(|()| raw.to_owned())
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(flatten)]
    pub project: ProjectArgs,

    /// Output format
    #[arg(long, value_enum, default_value_t = ConfigFormat::Yaml)]
    pub format: ConfigFormat,

    /// Only check the project; print nothing but problems
    #[arg(short, long)]
    pub quiet: bool,

    /// Print the service names, one per line
    #[arg(long, conflicts_with = "quiet")]
    pub services: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConfigFormat {
    Yaml,
    Json,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Apps to plan for [default: all]
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,

    #[command(flatten)]
    pub project: ProjectArgs,

    /// Plan as if --force were given to deploy
    #[arg(long)]
    pub force: bool,

    /// Print the plan as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The app to roll back [default: the project's only app]
    #[arg(value_name = "SERVICE")]
    pub service: Option<String>,

    /// A kept version (label or id) [default: the previous one]
    #[arg(long, value_name = "VERSION")]
    pub to: Option<String>,

    #[command(flatten)]
    pub project: ProjectArgs,

    /// How long to wait when another operation holds the project; 0 fails at once (exit 4)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "0s")]
    pub wait_lock: Duration,

    /// Print the progress events as JSON lines on stdout, and nothing else
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Only this app's entries
    #[arg(value_name = "SERVICE")]
    pub service: Option<String>,

    #[command(flatten)]
    pub project: ProjectArgs,

    /// Print the entries as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The app or accessory
    #[arg(value_name = "SERVICE")]
    pub service: String,

    #[command(flatten)]
    pub project: ProjectArgs,

    /// Keep printing new lines until interrupted (`-f` is `--file`, as in every command)
    #[arg(long)]
    pub follow: bool,

    /// Number of lines from the end to start with
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub tail: usize,

    /// Only lines newer than this, e.g. 10m
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub since: Option<Duration>,

    /// Old colors too, each line prefixed by its container
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    #[command(flatten)]
    pub project: ProjectArgs,

    /// Also remove the project's named volumes: their data is lost
    #[arg(long)]
    pub volumes: bool,

    /// How long to wait when another operation holds the project; 0 fails at once (exit 4)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "0s")]
    pub wait_lock: Duration,

    /// Print the progress events as JSON lines on stdout, and nothing else
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct UpgradeArgs {
    /// Print the daemon's answer as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub project: ProjectArgs,

    /// Print the daemon's answer as JSON: the list of services, or the
    /// project's status when there is a project here or one is named
    #[arg(long)]
    pub json: bool,
}

/// Where a value came from, so that an error names what the user must fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    pub flag: &'static str,
    pub env: Option<&'static str>,
    pub from_env: bool,
}

impl Origin {
    /// `--listen`, or `CUTOVER_LISTEN` when the value came from there.
    pub fn name(&self) -> &'static str {
        match (self.from_env, self.env) {
            (true, Some(env)) => env,
            _ => self.flag,
        }
    }
}

/// The origins of the values that may come from the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origins {
    pub socket: Origin,
    pub host: Origin,
    pub context: Origin,
    pub listen: Origin,
    pub state_dir: Origin,
}

impl Default for Origins {
    fn default() -> Origins {
        Origins {
            socket: Origin {
                flag: "--socket",
                env: Some("CUTOVER_SOCKET"),
                from_env: false,
            },
            host: Origin {
                flag: "--host",
                env: Some("CUTOVER_HOST"),
                from_env: false,
            },
            context: Origin {
                flag: "--context",
                env: Some("CUTOVER_CONTEXT"),
                from_env: false,
            },
            listen: Origin {
                flag: "--listen",
                env: Some("CUTOVER_LISTEN"),
                from_env: false,
            },
            state_dir: Origin {
                flag: "--state-dir",
                env: Some("CUTOVER_STATE_DIR"),
                from_env: false,
            },
        }
    }
}

fn from_env(matches: &ArgMatches, id: &str) -> bool {
    matches!(
        matches.try_get_raw(id).map(|_| matches.value_source(id)),
        Ok(Some(ValueSource::EnvVariable))
    )
}

/// Parses `std::env::args`, keeping where env-backed values came from.
pub fn parse() -> Result<(Cli, Origins), clap::Error> {
    parse_from(std::env::args_os())
}

pub fn parse_from<I, T>(args: I) -> Result<(Cli, Origins), clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let matches = Cli::command().try_get_matches_from(args)?;
    let cli = Cli::from_arg_matches(&matches)?;
    let mut origins = Origins::default();
    // A global arg is recorded on the subcommand's matches when given after it.
    let sub = matches.subcommand().map(|(_, m)| m);
    let global_from_env =
        |id: &str| sub.map_or_else(|| from_env(&matches, id), |m| from_env(m, id));
    origins.socket.from_env = global_from_env("socket");
    origins.host.from_env = global_from_env("host");
    origins.context.from_env = global_from_env("context");
    if let Some(("serve", m)) = matches.subcommand() {
        origins.listen.from_env = from_env(m, "listen");
        origins.state_dir.from_env = from_env(m, "state_dir");
    }
    Ok((cli, origins))
}

fn parse_duration(raw: &str) -> Result<Duration, String> {
    humantime::parse_duration(raw)
        .map_err(|e| format!("{e} (write a duration like 5s, 500ms or 2m)"))
}

/// `65536`, `64KiB`, `10MiB`, `1GiB`, `10MB`: binary units are the ones
/// people mean for limits; decimal ones are accepted as written.
pub fn parse_size(raw: &str) -> Result<u64, String> {
    let trimmed = raw.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{raw:?} is not a size (write e.g. 65536, 64KiB or 10MiB)"))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        other => {
            return Err(format!(
                "unknown size unit {other:?} (use B, KiB, MiB or GiB)"
            ))
        }
    };
    number
        .checked_mul(factor)
        .ok_or_else(|| format!("{raw:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("64KiB"), Ok(64 * 1024));
        assert_eq!(parse_size("10 MiB"), Ok(10 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("2MB"), Ok(2_000_000));
        assert!(parse_size("ten").is_err());
        assert!(parse_size("5 parsecs").is_err());
        assert!(parse_size("99999999999999GiB").is_err());
    }

    #[test]
    fn socket_is_global_and_its_origin_is_known() {
        let (cli, origins) = parse_from(["cutover", "status", "--socket", "/tmp/x.sock"]).unwrap();
        assert_eq!(
            cli.global.socket.as_deref(),
            Some(std::path::Path::new("/tmp/x.sock"))
        );
        assert!(!origins.socket.from_env);
        assert_eq!(origins.socket.name(), "--socket");
        let (cli, _) = parse_from(["cutover", "--socket", "/tmp/y.sock", "serve"]).unwrap();
        assert_eq!(
            cli.global.socket.as_deref(),
            Some(std::path::Path::new("/tmp/y.sock"))
        );
    }

    #[test]
    fn errors_name_the_env_var_only_when_the_value_came_from_it() {
        let mut origin = Origins::default().listen;
        assert_eq!(origin.name(), "--listen");
        origin.from_env = true;
        assert_eq!(origin.name(), "CUTOVER_LISTEN");
        let flag_only = Origin {
            flag: "--metrics-listen",
            env: None,
            from_env: true,
        };
        assert_eq!(flag_only.name(), "--metrics-listen");
    }

    #[test]
    fn deploy_takes_a_release_version_not_cutover_s() {
        let (cli, _) = parse_from([
            "cutover",
            "deploy",
            "web",
            "--version-label",
            "3f2a9c1",
            "-f",
            "a.yaml",
            "-f",
            "b.yaml",
            "-p",
            "athens",
            "--pull",
            "always",
            "--wait-lock",
            "2m",
        ])
        .unwrap();
        let Command::Deploy(args) = cli.command else {
            panic!()
        };
        assert_eq!(args.services, ["web"]);
        assert_eq!(args.version.as_deref(), Some("3f2a9c1"));
        assert_eq!(args.project.files.len(), 2);
        assert_eq!(args.project.project_name.as_deref(), Some("athens"));
        assert_eq!(args.pull, Pull::Always);
        assert_eq!(args.wait_lock, Duration::from_secs(120));
    }

    #[test]
    fn dash_f_is_the_compose_file_in_every_command() {
        let (cli, _) = parse_from([
            "cutover", "logs", "web", "-f", "a.yaml", "--follow", "--tail", "5",
        ])
        .unwrap();
        let Command::Logs(args) = cli.command else {
            panic!()
        };
        assert!(args.follow);
        assert_eq!(args.tail, 5);
        assert_eq!(args.project.files, [PathBuf::from("a.yaml")]);
        // The old spelling of the release label still reads as one.
        let (cli, _) = parse_from(["cutover", "deploy", "--version", "v2"]).unwrap();
        let Command::Deploy(args) = cli.command else {
            panic!()
        };
        assert_eq!(args.version.as_deref(), Some("v2"));
    }

    #[test]
    fn only_cutover_itself_prints_its_version() {
        let e = parse_from(["cutover", "plan", "-V"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::UnknownArgument);
        let e = parse_from(["cutover", "-V"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::DisplayVersion);
    }

    #[test]
    fn access_log_flags_override_each_other() {
        let (cli, _) = parse_from(["cutover", "serve", "--no-access-log", "--access-log"]).unwrap();
        let Command::Serve(args) = cli.command else {
            panic!()
        };
        assert!(args.access_log && !args.no_access_log);
        let (cli, _) = parse_from(["cutover", "serve", "--access-log", "--no-access-log"]).unwrap();
        let Command::Serve(args) = cli.command else {
            panic!()
        };
        assert!(!args.access_log && args.no_access_log);
    }
}
