//! Resolved, validated settings: defaults filled in from the host (root or
//! not, XDG directories), addresses parsed, the control token read. An error
//! here names the flag or environment variable the value came from.

mod cluster;
mod control;
mod tls;

use cutover_tls::TlsSettings;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use cutover_proxy::admin::BearerToken;
use cutover_proxy::ProxyConfig;

use crate::args::{GlobalArgs, LogFormat, Origin, Origins, ServeArgs};
use crate::error::CliError;

pub use cluster::EngineKind;
use control::control_tls_source;
pub use control::ControlListen;
use tls::tls_settings;

/// What the defaults depend on, read once from the process so that the
/// resolution itself is a plain function.
#[derive(Debug, Clone, Default)]
pub struct HostEnv {
    pub is_root: bool,
    pub xdg_runtime_dir: Option<PathBuf>,
    pub xdg_state_home: Option<PathBuf>,
    pub home: Option<PathBuf>,
    pub xdg_config_home: Option<PathBuf>,
    /// `CUTOVER_CONFIG_DIR`: where the contexts file is.
    pub cutover_config_dir: Option<PathBuf>,
    /// `CUTOVER_TOKEN`: the token an https:// client shows.
    pub cutover_token: Option<String>,
    /// `CUTOVER_SSH_COMMAND`: the ssh program and options for ssh:// hosts.
    pub ssh_command: Option<String>,
    /// The soft limit on open descriptors (RLIMIT_NOFILE).
    pub nofile_limit: u64,
}

impl HostEnv {
    pub fn from_process() -> HostEnv {
        use std::os::unix::fs::MetadataExt;
        let var = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let text = |name: &str| {
            std::env::var(name)
                .ok()
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        HostEnv {
            // /proc/self belongs to the effective user of the process.
            is_root: std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0),
            xdg_runtime_dir: var("XDG_RUNTIME_DIR"),
            xdg_state_home: var("XDG_STATE_HOME"),
            home: var("HOME"),
            xdg_config_home: var("XDG_CONFIG_HOME"),
            cutover_config_dir: var("CUTOVER_CONFIG_DIR"),
            cutover_token: text("CUTOVER_TOKEN"),
            ssh_command: text("CUTOVER_SSH_COMMAND"),
            nofile_limit: nofile_limit(),
        }
    }
}

fn nofile_limit() -> u64 {
    use rustix::process::{getrlimit, Resource};
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// Raises the soft descriptor limit to the hard one, as nginx's
/// `worker_rlimit_nofile` and Go's runtime do: the soft default of 1024 is
/// a relic of select(2), which cutover does not use. Returns the limit now
/// in force.
pub fn raise_nofile_limit() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::debug!(error = %e, "cannot raise the descriptor limit; keeping the soft one");
        }
    }
    nofile_limit()
}

/// Descriptors kept for everything but client connections: the control
/// socket and its clients, the state files, Docker, logs.
const RESERVED_DESCRIPTORS: u64 = 256;

/// The default `--max-connections`: each client connection may hold a
/// second descriptor for its upstream, and the reserve stays free, so
/// a flood is shed before the control socket runs out of descriptors.
pub fn max_connections_for(nofile_limit: u64) -> usize {
    let usable = nofile_limit.saturating_sub(RESERVED_DESCRIPTORS) / 2;
    usable.clamp(16, 1 << 20) as usize
}

/// The control socket: `--socket`/`CUTOVER_SOCKET`, else the per-host default.
pub fn socket_path(
    global: &GlobalArgs,
    origins: &Origins,
    env: &HostEnv,
) -> Result<PathBuf, CliError> {
    if let Some(path) = &global.socket {
        if path.as_os_str().is_empty() {
            return Err(
                CliError::bad_input(format!("{} is empty", origins.socket.name())).with_hint(
                    "give the path of the daemon's control socket, e.g. /run/cutover/cutover.sock",
                ),
            );
        }
        return Ok(path.clone());
    }
    if env.is_root {
        return Ok(PathBuf::from("/run/cutover/cutover.sock"));
    }
    match &env.xdg_runtime_dir {
        Some(dir) if dir.is_absolute() => Ok(dir.join("cutover.sock")),
        _ => Err(CliError::bad_input(
            "cannot choose a control socket: not root and XDG_RUNTIME_DIR is not set",
        )
        .with_hint("pass --socket PATH or set CUTOVER_SOCKET")),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub gid: u32,
}

/// Everything `cutover serve` runs with.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    pub listen: SocketAddr,
    pub socket: PathBuf,
    pub socket_group: Option<Group>,
    pub state_dir: PathBuf,
    pub log_format: LogFormat,
    pub proxy: ProxyConfig,
    pub metrics_listen: Option<SocketAddr>,
    pub control_listen: Option<ControlListen>,
    /// Runtime worker threads; `None` lets tokio use one per core.
    pub threads: Option<usize>,
    /// Take over from the daemon running on `state_dir`.
    pub takeover: bool,
    pub https_listen: SocketAddr,
    /// `--https-listen` was given: bound at start, not at the first TLS route.
    pub https_explicit: bool,
    pub tls: TlsSettings,
    /// `--role`: `Edge` takes compose routes from the Swarm deploy engine.
    pub role: crate::args::RoleArg,
    /// `--gateway-listen`, with `--role edge` only.
    pub gateway_listen: Option<SocketAddr>,
    pub engine: EngineKind,
}

impl ServeSettings {
    pub fn resolve(
        args: &ServeArgs,
        global: &GlobalArgs,
        origins: &Origins,
        env: &HostEnv,
    ) -> Result<ServeSettings, CliError> {
        let listen = match &args.listen {
            Some(raw) => parse_addr(raw, origins.listen)?,
            None => SocketAddr::from(([0, 0, 0, 0], 80)),
        };
        let socket = socket_path(global, origins, env)?;
        let state_dir = state_dir(args, origins, env)?;
        let socket_group = match &args.socket_group {
            Some(raw) => Some(resolve_group(raw, Path::new("/etc/group"))?),
            None => None,
        };

        let defaults = ProxyConfig::default();
        let max_header_bytes = match args.max_header_bytes {
            Some(n) => usize::try_from(n)
                .ok()
                .filter(|n| *n >= 1024)
                .ok_or_else(|| {
                    CliError::bad_input(format!(
                        "--max-header-bytes: {n} is too small or too large"
                    ))
                    .with_hint("give at least 1KiB; 64KiB suits almost every client")
                })?,
            None => defaults.max_header_bytes,
        };
        let proxy = ProxyConfig {
            health_endpoint: !args.no_health_endpoint,
            connect_timeout: nonzero(args.connect_timeout, "--connect-timeout")?
                .unwrap_or(defaults.connect_timeout),
            response_header_timeout: nonzero(
                args.response_header_timeout,
                "--response-header-timeout",
            )?
            .unwrap_or(defaults.response_header_timeout),
            client_header_timeout: nonzero(args.client_header_timeout, "--client-header-timeout")?
                .unwrap_or(defaults.client_header_timeout),
            idle_timeout: nonzero(args.idle_timeout, "--idle-timeout")?
                .unwrap_or(defaults.idle_timeout),
            upstream_idle_timeout: nonzero(args.upstream_idle_timeout, "--upstream-idle-timeout")?
                .unwrap_or(defaults.upstream_idle_timeout),
            client_body_timeout: nonzero(args.client_body_timeout, "--client-body-timeout")?
                .unwrap_or(defaults.client_body_timeout),
            websocket_idle_timeout: nonzero(
                args.websocket_idle_timeout,
                "--websocket-idle-timeout",
            )?
            .unwrap_or(defaults.websocket_idle_timeout),
            max_connections: args
                .max_connections
                .map(|n| n as usize)
                .unwrap_or_else(|| max_connections_for(env.nofile_limit)),
            max_request_body: args.max_request_body.unwrap_or(defaults.max_request_body),
            max_header_bytes,
            access_log: !args.no_access_log,
        };

        let metrics_listen = match &args.metrics_listen {
            Some(raw) => Some(parse_addr(
                raw,
                Origin {
                    flag: "--metrics-listen",
                    env: None,
                    from_env: false,
                },
            )?),
            None => None,
        };
        let control_listen = match &args.control_listen {
            Some(raw) => {
                let addr = parse_addr(
                    raw,
                    Origin {
                        flag: "--control-listen",
                        env: None,
                        from_env: false,
                    },
                )?;
                let token = match &args.control_token_file {
                    Some(file) => Some(BearerToken::from_file(file)?),
                    None => None,
                };
                let tls = control_tls_source(args, addr, &state_dir)?;
                Some(ControlListen { addr, token, tls })
            }
            None => {
                let stray = [
                    ("--control-token-file", args.control_token_file.is_some()),
                    ("--control-tls-cert", args.control_tls_cert.is_some()),
                    ("--control-tls-host", args.control_tls_host.is_some()),
                    ("--control-tls-name", !args.control_tls_name.is_empty()),
                    ("--control-insecure-http", args.control_insecure_http),
                ];
                if let Some((flag, _)) = stray.iter().find(|(_, set)| *set) {
                    return Err(CliError::bad_input(format!("{flag} is set but --control-listen is not"))
                        .with_hint("add --control-listen ADDR to serve the control API on TCP, or drop the flag"));
                }
                None
            }
        };
        if let Some(control) = &control_listen {
            if control.addr == listen || Some(control.addr) == metrics_listen {
                return Err(CliError::bad_input(format!(
                    "--control-listen {} is also used by another listener",
                    control.addr
                ))
                .with_hint("give each listener its own port"));
            }
        }
        if metrics_listen.is_some() && metrics_listen == Some(listen) {
            return Err(CliError::bad_input(format!(
                "--metrics-listen {listen} is also the proxy's --listen"
            ))
            .with_hint("give the metrics endpoint its own port, e.g. 127.0.0.1:9090"));
        }

        let https_explicit = args.https_listen.is_some();
        let https_listen = match &args.https_listen {
            Some(raw) => parse_addr(
                raw,
                Origin {
                    flag: "--https-listen",
                    env: Some("CUTOVER_HTTPS_LISTEN"),
                    from_env: false,
                },
            )?,
            None => SocketAddr::from(([0, 0, 0, 0], 443)),
        };
        if https_listen == listen {
            return Err(CliError::bad_input(format!(
                "--https-listen {https_listen} is also the proxy's --listen"
            ))
            .with_hint("HTTP and HTTPS need their own ports, e.g. 0.0.0.0:80 and 0.0.0.0:443"));
        }
        let tls = tls_settings(args, &state_dir)?;
        let (role, engine) = cluster::resolve(args)?;

        Ok(ServeSettings {
            role,
            gateway_listen: args.gateway_listen,
            engine,
            https_listen,
            https_explicit,
            tls,
            listen,
            socket,
            socket_group,
            state_dir,
            log_format: args.log_format,
            proxy,
            metrics_listen,
            control_listen,
            threads: args.threads.map(usize::from),
            takeover: args.takeover,
        })
    }
}

fn nonzero(
    value: Option<std::time::Duration>,
    flag: &str,
) -> Result<Option<std::time::Duration>, CliError> {
    match value {
        Some(d) if d.is_zero() => Err(CliError::bad_input(format!(
            "{flag} must be longer than 0s"
        ))
        .with_hint("leave the flag out to use the default")),
        other => Ok(other),
    }
}

fn parse_addr(raw: &str, origin: Origin) -> Result<SocketAddr, CliError> {
    raw.trim().parse().map_err(|_| {
        CliError::bad_input(format!(
            "{}: {raw:?} is not an address with a port",
            origin.name()
        ))
        .with_hint("write IP:PORT, e.g. 0.0.0.0:80, 127.0.0.1:8080 or [::]:80")
    })
}

fn state_dir(args: &ServeArgs, origins: &Origins, env: &HostEnv) -> Result<PathBuf, CliError> {
    if let Some(dir) = &args.state_dir {
        if dir.as_os_str().is_empty() {
            return Err(
                CliError::bad_input(format!("{} is empty", origins.state_dir.name()))
                    .with_hint("give the directory that holds state.json, e.g. /var/lib/cutover"),
            );
        }
        return Ok(dir.clone());
    }
    if env.is_root {
        return Ok(PathBuf::from("/var/lib/cutover"));
    }
    // The XDG spec says relative values are invalid and must be ignored.
    if let Some(dir) = env.xdg_state_home.as_ref().filter(|d| d.is_absolute()) {
        return Ok(dir.join("cutover"));
    }
    if let Some(home) = env.home.as_ref().filter(|d| d.is_absolute()) {
        return Ok(home.join(".local/state/cutover"));
    }
    Err(CliError::bad_input(
        "cannot choose a state directory: not root, and neither XDG_STATE_HOME nor HOME is set",
    )
    .with_hint("pass --state-dir DIR or set CUTOVER_STATE_DIR"))
}

/// A group name from `group_file` (in /etc/group's format) or a numeric id.
pub fn resolve_group(raw: &str, group_file: &Path) -> Result<Group, CliError> {
    if let Ok(gid) = raw.parse::<u32>() {
        return Ok(Group {
            name: raw.into(),
            gid,
        });
    }
    let content = std::fs::read_to_string(group_file).unwrap_or_default();
    let gid = content.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let gid = fields.nth(1)?;
        (name == raw).then(|| gid.parse::<u32>().ok()).flatten()
    });
    match gid {
        Some(gid) => Ok(Group { name: raw.into(), gid }),
        None => Err(CliError::bad_input(format!("--socket-group: no group named {raw:?} in {}", group_file.display()))
            .with_hint("create it (`groupadd cutover`), or give a numeric group id when groups come from a directory service")),
    }
}

#[cfg(test)]
mod tests {
    use super::control::ControlTlsSource;
    use super::*;
    use crate::args::{parse_from, Command};

    fn resolve(argv: &[&str], env: &HostEnv) -> Result<ServeSettings, CliError> {
        let (cli, origins) = parse_from(argv).unwrap();
        let Command::Serve(args) = &cli.command else {
            panic!("not serve")
        };
        ServeSettings::resolve(args, &cli.global, &origins, env)
    }

    fn user() -> HostEnv {
        HostEnv {
            is_root: false,
            xdg_runtime_dir: Some("/run/user/1000".into()),
            xdg_state_home: None,
            home: Some("/home/ada".into()),
            nofile_limit: 1024,
            ..HostEnv::default()
        }
    }

    #[test]
    fn max_connections_leave_descriptors_for_the_rest_of_the_daemon() {
        let s = resolve(&["cutover", "serve"], &user()).unwrap();
        assert_eq!(s.proxy.max_connections, (1024 - 256) / 2);
        let big = HostEnv {
            nofile_limit: 1 << 20,
            ..user()
        };
        let s = resolve(&["cutover", "serve"], &big).unwrap();
        assert_eq!(s.proxy.max_connections, ((1 << 20) - 256) / 2);
        let s = resolve(&["cutover", "serve", "--max-connections", "50"], &big).unwrap();
        assert_eq!(s.proxy.max_connections, 50);
    }

    /// A stack file passes `${CUTOVER_ACME_EMAIL:-}` on as an empty flag.
    #[test]
    fn empty_acme_values_are_the_defaults() {
        let s = resolve(
            &["cutover", "serve", "--acme-directory=", "--acme-email="],
            &user(),
        )
        .unwrap();
        let acme = s.tls.acme.unwrap();
        assert_eq!(acme.directory, cutover_tls::LETS_ENCRYPT);
        assert!(acme.email.is_none());
    }

    #[test]
    fn defaults_for_root_and_for_a_user() {
        let root = HostEnv {
            is_root: true,
            ..HostEnv::default()
        };
        let s = resolve(&["cutover", "serve"], &root).unwrap();
        assert_eq!(s.listen, "0.0.0.0:80".parse().unwrap());
        assert_eq!(s.socket, Path::new("/run/cutover/cutover.sock"));
        assert_eq!(s.state_dir, Path::new("/var/lib/cutover"));
        assert!(s.proxy.access_log && s.proxy.health_endpoint);
        assert!(s.metrics_listen.is_none() && s.control_listen.is_none());

        let s = resolve(&["cutover", "serve"], &user()).unwrap();
        assert_eq!(s.socket, Path::new("/run/user/1000/cutover.sock"));
        assert_eq!(s.state_dir, Path::new("/home/ada/.local/state/cutover"));

        let xdg = HostEnv {
            xdg_state_home: Some("/xdg/state".into()),
            ..user()
        };
        assert_eq!(
            resolve(&["cutover", "serve"], &xdg).unwrap().state_dir,
            Path::new("/xdg/state/cutover")
        );
        let relative = HostEnv {
            xdg_state_home: Some("state".into()),
            ..user()
        };
        assert_eq!(
            resolve(&["cutover", "serve"], &relative).unwrap().state_dir,
            Path::new("/home/ada/.local/state/cutover")
        );
    }

    #[test]
    fn a_user_without_runtime_dir_must_name_the_socket() {
        let env = HostEnv {
            xdg_runtime_dir: None,
            ..user()
        };
        let err = resolve(&["cutover", "serve"], &env).unwrap_err();
        assert!(err.report.message.contains("XDG_RUNTIME_DIR"), "{err}");
        assert!(err.report.hint.unwrap().contains("--socket"));
    }

    #[test]
    fn flags_are_resolved() {
        let s = resolve(
            &[
                "cutover",
                "serve",
                "--listen",
                "127.0.0.1:8080",
                "--socket",
                "/tmp/c.sock",
                "--state-dir",
                "/tmp/st",
                "--connect-timeout",
                "250ms",
                "--max-request-body",
                "10MiB",
                "--no-access-log",
                "--no-health-endpoint",
                "--metrics-listen",
                "127.0.0.1:9090",
                "--threads",
                "2",
            ],
            &user(),
        )
        .unwrap();
        assert_eq!(s.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(s.socket, Path::new("/tmp/c.sock"));
        assert_eq!(s.state_dir, Path::new("/tmp/st"));
        assert_eq!(
            s.proxy.connect_timeout,
            std::time::Duration::from_millis(250)
        );
        assert_eq!(s.proxy.max_request_body, 10 << 20);
        assert!(!s.proxy.access_log && !s.proxy.health_endpoint);
        assert_eq!(s.metrics_listen, Some("127.0.0.1:9090".parse().unwrap()));
        assert_eq!(s.threads, Some(2));
    }

    #[test]
    fn bad_listen_names_the_flag() {
        let err = resolve(&["cutover", "serve", "--listen", "localhost"], &user()).unwrap_err();
        assert_eq!(
            err.report.message,
            r#"--listen: "localhost" is not an address with a port"#
        );
        assert!(err.report.hint.is_some());
    }

    #[test]
    fn the_control_listener_serves_tls_and_plain_http_only_on_loopback() {
        let s = resolve(
            &[
                "cutover",
                "serve",
                "--control-listen",
                "0.0.0.0:7000",
                "--control-tls-name",
                "cd.example.com",
            ],
            &user(),
        )
        .unwrap();
        let control = s.control_listen.unwrap();
        assert!(control.token.is_none());
        let ControlTlsSource::OwnCertificate { dir, names } = control.tls else {
            panic!("{:?}", control.tls)
        };
        assert!(dir.ends_with("control-tls"), "{dir:?}");
        assert_eq!(names, ["localhost", "127.0.0.1", "::1", "cd.example.com"]);

        let plain = resolve(
            &[
                "cutover",
                "serve",
                "--control-listen",
                "127.0.0.1:7000",
                "--control-insecure-http",
            ],
            &user(),
        )
        .unwrap();
        assert_eq!(
            plain.control_listen.unwrap().tls,
            ControlTlsSource::PlainHttp
        );
        let err = resolve(
            &[
                "cutover",
                "serve",
                "--control-listen",
                "10.0.0.5:7000",
                "--control-insecure-http",
            ],
            &user(),
        )
        .unwrap_err();
        assert!(
            err.report.message.contains("not a loopback address"),
            "{err}"
        );
        assert_eq!(err.status, crate::exit::ExitStatus::BadInput);

        let ordered = resolve(
            &[
                "cutover",
                "serve",
                "--control-listen",
                "0.0.0.0:7000",
                "--control-tls-host",
                "Deploy.Example.com",
            ],
            &user(),
        )
        .unwrap();
        assert_eq!(
            ordered.control_listen.unwrap().tls,
            ControlTlsSource::Ordered {
                host: "deploy.example.com".into()
            }
        );
        assert_eq!(ordered.tls.standing_hosts, ["deploy.example.com"]);
        for bad in ["10.0.0.5", "*.example.com", "localhost"] {
            let err = resolve(
                &[
                    "cutover",
                    "serve",
                    "--control-listen",
                    "0.0.0.0:7000",
                    "--control-tls-host",
                    bad,
                ],
                &user(),
            )
            .unwrap_err();
            assert!(
                err.report.message.contains("not a host name"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn control_flags_need_the_control_listener() {
        let err =
            resolve(&["cutover", "serve", "--control-token-file", "/x"], &user()).unwrap_err();
        assert!(
            err.report.message.contains("--control-listen is not"),
            "{err}"
        );
        let err = resolve(
            &[
                "cutover",
                "serve",
                "--control-listen",
                "127.0.0.1:7000",
                "--control-token-file",
                "/nonexistent/t",
            ],
            &user(),
        )
        .unwrap_err();
        assert!(err.report.message.contains("/nonexistent/t"), "{err}");
    }

    #[test]
    fn zero_timeouts_are_refused() {
        let err = resolve(&["cutover", "serve", "--idle-timeout", "0s"], &user()).unwrap_err();
        assert_eq!(err.report.message, "--idle-timeout must be longer than 0s");
    }

    #[test]
    fn groups_by_name_or_id() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("group");
        std::fs::write(&file, "root:x:0:\ndocker:x:998:ada\ncutover:x:1001:\n").unwrap();
        assert_eq!(
            resolve_group("cutover", &file).unwrap(),
            Group {
                name: "cutover".into(),
                gid: 1001
            }
        );
        assert_eq!(resolve_group("42", &file).unwrap().gid, 42);
        let err = resolve_group("nobody-here", &file).unwrap_err();
        assert!(err.report.message.contains("nobody-here"), "{err}");
    }
}
