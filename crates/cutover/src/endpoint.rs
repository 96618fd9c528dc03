//! Which daemon a client command talks to, and how: `--host`, a context,
//! or the local socket, with what HTTPS trusts and which token it shows.
//!
//! The order is Docker's: the `--host` flag, then the `--context` flag,
//! then `CUTOVER_HOST`, then `CUTOVER_CONTEXT`, then the context `context
//! use` chose, then the local socket. `--socket` is `--host unix://PATH`.

use std::path::PathBuf;

use cutover_tls::Trust;

use crate::args::{GlobalArgs, Origins};
use crate::client::{Endpoint, Host};
use crate::contexts::{self, Context, Contexts};
use crate::error::CliError;
use crate::settings::{socket_path, HostEnv};

/// Where a choice of daemon came from, for messages.
enum Chosen {
    Host(Host),
    Context(String, Context),
}

pub fn resolve(
    global: &GlobalArgs,
    origins: &Origins,
    env: &HostEnv,
) -> Result<Endpoint, CliError> {
    let (host, context) = match choose(global, origins, env)? {
        Chosen::Host(host) => (host, None),
        Chosen::Context(name, context) => {
            let host = Host::parse(&context.host).map_err(|r| {
                CliError::bad_input(r.map_message(|m| format!("context {name}: {m}")))
            })?;
            (host, Some(context))
        }
    };
    let trust = trust(global, context.as_ref())?;
    let token = token(global, context.as_ref(), env)?;
    if matches!(host, Host::Https { .. }) && token.is_none() {
        return Err(CliError::bad_input(format!("{host} needs a token")).with_hint(
            "set CUTOVER_TOKEN (a CI secret) or pass --token-file, with a token from `cutover token create` on the daemon's host",
        ));
    }
    Ok(Endpoint {
        host,
        trust,
        token,
        ssh_command: ssh_command(env),
    })
}

fn choose(global: &GlobalArgs, origins: &Origins, env: &HostEnv) -> Result<Chosen, CliError> {
    let host_flag = global.host.as_ref().filter(|_| !origins.host.from_env);
    let socket_flag = global.socket.as_ref().filter(|_| !origins.socket.from_env);
    if host_flag.is_some() && socket_flag.is_some() {
        return Err(
            CliError::bad_input("--host and --socket both name the daemon")
                .with_hint("give one: --socket PATH is --host unix://PATH"),
        );
    }
    let parse = |raw: &str, origin: &str| {
        Host::parse(raw)
            .map_err(|r| CliError::bad_input(r.map_message(|m| format!("{origin}: {m}"))))
    };
    if let Some(raw) = host_flag {
        return parse(raw, "--host").map(Chosen::Host);
    }
    if socket_flag.is_some() {
        return Ok(Chosen::Host(Host::Unix(socket_path(global, origins, env)?)));
    }
    let load = || match contexts::file(env) {
        Some(path) => Contexts::load(&path),
        None => Ok(Contexts::default()),
    };
    let named = |name: &str| -> Result<Chosen, CliError> {
        if name == contexts::DEFAULT {
            return Ok(Chosen::Host(Host::Unix(socket_path(global, origins, env)?)));
        }
        let contexts = load()?;
        let context = contexts.get(name)?.clone();
        Ok(Chosen::Context(name.to_owned(), context))
    };
    if let Some(name) = global
        .context
        .as_ref()
        .filter(|_| !origins.context.from_env)
    {
        return named(name);
    }
    if let Some(raw) = global.host.as_ref() {
        return parse(raw, "CUTOVER_HOST").map(Chosen::Host);
    }
    if global.socket.is_some() {
        return Ok(Chosen::Host(Host::Unix(socket_path(global, origins, env)?)));
    }
    if let Some(name) = global.context.as_ref() {
        return named(name);
    }
    match load()?.current {
        Some(name) => named(&name),
        None => Ok(Chosen::Host(Host::Unix(socket_path(global, origins, env)?))),
    }
}

fn trust(global: &GlobalArgs, context: Option<&Context>) -> Result<Trust, CliError> {
    let fingerprint = global
        .tls_fingerprint
        .clone()
        .or_else(|| context.and_then(|c| c.tls_fingerprint.clone()));
    if let Some(raw) = fingerprint {
        return cutover_tls::parse_fingerprint(&raw)
            .map(Trust::Fingerprint)
            .map_err(|e| {
                CliError::bad_input(format!("--tls-fingerprint: {e}"))
                    .with_hint("copy the fingerprint `cutover serve` logs, or `openssl x509 -noout -fingerprint -sha256 -in CERT`")
            });
    }
    let ca: Option<PathBuf> = global
        .tls_ca
        .clone()
        .or_else(|| context.and_then(|c| c.tls_ca.clone()));
    Ok(ca.map_or(Trust::System, Trust::Ca))
}

fn token(
    global: &GlobalArgs,
    context: Option<&Context>,
    env: &HostEnv,
) -> Result<Option<String>, CliError> {
    let file = global
        .token_file
        .clone()
        .or_else(|| context.and_then(|c| c.token_file.clone()));
    let Some(file) = file else {
        return Ok(env.cutover_token.clone());
    };
    let text = std::fs::read_to_string(&file).map_err(|e| {
        CliError::bad_input(format!("--token-file {}: {e}", file.display()))
            .with_hint("give the file `cutover token create` printed the token into")
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(CliError::bad_input(format!(
            "--token-file {} is empty",
            file.display()
        )));
    }
    Ok(Some(token.to_owned()))
}

/// `CUTOVER_SSH_COMMAND` split at whitespace (as `GIT_SSH_COMMAND` is,
/// without quotes), else `ssh`.
fn ssh_command(env: &HostEnv) -> Vec<String> {
    let words: Vec<String> = env
        .ssh_command
        .as_deref()
        .unwrap_or("ssh")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    if words.is_empty() {
        vec!["ssh".into()]
    } else {
        words
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::parse_from;

    fn resolve_in(args: &[&str], env: &HostEnv) -> Result<Endpoint, CliError> {
        let (cli, origins) = parse_from(args).unwrap();
        resolve(&cli.global, &origins, env)
    }

    fn root_env(config: &std::path::Path) -> HostEnv {
        HostEnv {
            is_root: true,
            cutover_config_dir: Some(config.into()),
            ..HostEnv::default()
        }
    }

    #[test]
    fn the_local_socket_unless_told_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let env = root_env(dir.path());
        let e = resolve_in(&["cutover", "status"], &env).unwrap();
        assert_eq!(e.host, Host::Unix("/run/cutover/cutover.sock".into()));
        let e = resolve_in(&["cutover", "--host", "ssh://deploy@vm1", "status"], &env).unwrap();
        assert_eq!(e.host.to_string(), "ssh://deploy@vm1");
        assert_eq!(e.ssh_command, ["ssh"]);
        let err = resolve_in(
            &["cutover", "-H", "ssh://vm1", "--socket", "/x", "status"],
            &env,
        )
        .unwrap_err();
        assert!(err.report.message.contains("both"), "{err}");
    }

    #[test]
    fn a_context_names_a_host_and_how_to_trust_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut env = root_env(dir.path());
        let mut contexts = Contexts::default();
        let token = dir.path().join("token");
        std::fs::write(&token, "cutover_ab_cd\n").unwrap();
        contexts.contexts.insert(
            "prod".into(),
            Context {
                host: "https://cd.example.com:9443".into(),
                description: None,
                tls_ca: None,
                tls_fingerprint: Some("ab".repeat(32)),
                token_file: Some(token),
            },
        );
        contexts.save(&contexts::file(&env).unwrap()).unwrap();
        let e = resolve_in(&["cutover", "--context", "prod", "status"], &env).unwrap();
        assert_eq!(e.host.to_string(), "https://cd.example.com:9443");
        assert_eq!(e.trust, Trust::Fingerprint([0xab; 32]));
        assert_eq!(e.token.as_deref(), Some("cutover_ab_cd"));

        // `context use` makes it the default; --host still wins.
        contexts.current = Some("prod".into());
        contexts.save(&contexts::file(&env).unwrap()).unwrap();
        let e = resolve_in(&["cutover", "status"], &env).unwrap();
        assert!(matches!(e.host, Host::Https { .. }));
        let e = resolve_in(&["cutover", "--context", "default", "status"], &env).unwrap();
        assert!(e.host.is_local());

        // HTTPS without a token is refused before any connection.
        env.cutover_token = None;
        let err = resolve_in(&["cutover", "-H", "https://vm1", "status"], &env).unwrap_err();
        assert!(err.report.message.contains("needs a token"), "{err}");
        env.cutover_token = Some("cutover_x_y".into());
        let e = resolve_in(&["cutover", "-H", "https://vm1", "status"], &env).unwrap();
        assert_eq!(e.trust, Trust::System);
        let err = resolve_in(&["cutover", "--context", "staging", "status"], &env).unwrap_err();
        assert!(err.report.hint.unwrap().contains("prod"));
    }
}
