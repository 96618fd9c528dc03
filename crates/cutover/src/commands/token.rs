//! `cutover token create|list|revoke`: the tokens of the HTTPS control
//! listener. Managing them needs admin: the local socket, or an admin token.

use cutover_core::token::{CreateToken, CreatedToken, Scope, TokenInfo};
use hyper::Method;

use crate::args::{TokenCommand, TokenCreateArgs, TokenScope};
use crate::client::{Body, DaemonClient};
use crate::error::CliError;
use crate::exit::ExitStatus;
use crate::{output, stdout};

pub fn run(cmd: &TokenCommand, client: &DaemonClient) -> Result<ExitStatus, CliError> {
    let runtime = super::client_runtime()?;
    match cmd {
        TokenCommand::Create(args) => create(args, &runtime, client),
        TokenCommand::List { json } => {
            let tokens: Vec<TokenInfo> = runtime.block_on(client.get("/v1/tokens"))?;
            if *json {
                stdout::print_json(&tokens)?;
            } else {
                stdout::print(&tokens_table(&tokens))?;
            }
            Ok(ExitStatus::Success)
        }
        TokenCommand::Revoke { id } => {
            let id = id.trim();
            let path = format!("/v1/tokens/{}", super::query_value(id));
            let gone: TokenInfo = runtime.block_on(client.call(Method::DELETE, &path, None))?;
            stdout::print(&format!("revoked token {}\n", gone.id))?;
            Ok(ExitStatus::Success)
        }
    }
}

fn create(
    args: &TokenCreateArgs,
    runtime: &tokio::runtime::Runtime,
    client: &DaemonClient,
) -> Result<ExitStatus, CliError> {
    let scope = match args.scope {
        TokenScope::Read => Scope::Read,
        TokenScope::Deploy => Scope::Deploy,
        TokenScope::Admin => Scope::Admin,
    };
    let body = Body::json(&CreateToken {
        scope,
        project: args.project.clone(),
        name: args.name.clone(),
    });
    let created: CreatedToken =
        runtime.block_on(client.call(Method::POST, "/v1/tokens", Some(body)))?;
    if args.json {
        stdout::print_json(&created)?;
        return Ok(ExitStatus::Success);
    }
    // The token alone on stdout (`> token.txt`); the rest is for the reader.
    stdout::print(&format!("{}\n", created.token))?;
    let reach = created
        .info
        .project
        .as_deref()
        .map_or("every project".to_string(), |p| format!("project {p}"));
    let mut note = format!(
        "token {} ({} scope, {reach}): shown once, the daemon keeps only its hash.\n\
         Give it to the client as CUTOVER_TOKEN or --token-file.\n",
        created.info.id,
        scope.as_str()
    );
    if let Some(fp) = &created.tls_fingerprint {
        note.push_str(&format!(
            "The control listener's certificate: --tls-fingerprint {fp}\n"
        ));
    }
    let _ = std::io::Write::write_all(&mut std::io::stderr(), note.as_bytes());
    Ok(ExitStatus::Success)
}

fn tokens_table(tokens: &[TokenInfo]) -> String {
    if tokens.is_empty() {
        return "no tokens; make one with `cutover token create --scope deploy --project NAME`\n"
            .into();
    }
    let rows: Vec<Vec<String>> = tokens
        .iter()
        .map(|t| {
            let created = std::time::UNIX_EPOCH + std::time::Duration::from_millis(t.created_ms);
            vec![
                t.id.clone(),
                t.scope.as_str().to_string(),
                t.project.clone().unwrap_or_else(|| "*".into()),
                humantime::format_rfc3339_seconds(created).to_string(),
                t.name.clone().unwrap_or_default(),
            ]
        })
        .collect();
    output::table(&["ID", "SCOPE", "PROJECT", "CREATED", "NAME"], &rows, "")
}
