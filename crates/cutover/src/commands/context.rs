//! `cutover context add|list|use|remove`: named daemons (src/contexts.rs).

use crate::args::{ContextAddArgs, ContextCommand, GlobalArgs};
use crate::client::Host;
use crate::contexts::{self, Context, Contexts};
use crate::error::CliError;
use crate::exit::ExitStatus;
use crate::settings::HostEnv;
use crate::{output, stdout};

pub fn run(
    cmd: &ContextCommand,
    global: &GlobalArgs,
    env: &HostEnv,
) -> Result<ExitStatus, CliError> {
    let path = contexts::file(env).ok_or_else(|| {
        CliError::bad_input("cannot choose a folder for the contexts: HOME is not set")
            .with_hint("set CUTOVER_CONFIG_DIR or HOME")
    })?;
    let mut all = Contexts::load(&path)?;
    match cmd {
        ContextCommand::Add(args) => {
            add(&mut all, args, global)?;
            all.save(&path)?;
            stdout::print(&format!("context {} is {}\n", args.name, args.url))?;
        }
        ContextCommand::List => stdout::print(&list(&all))?,
        ContextCommand::Use { name } => {
            if name == contexts::DEFAULT {
                all.current = None;
            } else {
                all.get(name)?;
                all.current = Some(name.clone());
            }
            all.save(&path)?;
            stdout::print(&format!("using context {name}\n"))?;
        }
        ContextCommand::Remove { name } => {
            all.get(name)?;
            all.contexts.remove(name);
            if all.current.as_deref() == Some(name) {
                all.current = None;
            }
            all.save(&path)?;
            stdout::print(&format!("removed context {name}\n"))?;
        }
    }
    Ok(ExitStatus::Success)
}

/// The context keeps the TLS and token flags given with `add`.
fn add(all: &mut Contexts, args: &ContextAddArgs, global: &GlobalArgs) -> Result<(), CliError> {
    contexts::check_name(&args.name)?;
    let host = Host::parse(&args.url)
        .map_err(|r| CliError::bad_input(r.map_message(|m| format!("context add: {m}"))))?;
    if let Some(fp) = &global.tls_fingerprint {
        cutover_tls::parse_fingerprint(fp)
            .map_err(|e| CliError::bad_input(format!("--tls-fingerprint: {e}")))?;
    }
    if all.contexts.contains_key(&args.name) && !args.force {
        return Err(
            CliError::bad_input(format!("a context named {} exists", args.name))
                .with_hint("pass --force to replace it, or `cutover context remove` it first"),
        );
    }
    let absolute = |p: &std::path::PathBuf| std::path::absolute(p).unwrap_or_else(|_| p.clone());
    all.contexts.insert(
        args.name.clone(),
        Context {
            host: host.to_string(),
            description: args.description.clone(),
            tls_ca: global.tls_ca.as_ref().map(absolute),
            tls_fingerprint: global.tls_fingerprint.clone(),
            token_file: global.token_file.as_ref().map(absolute),
        },
    );
    Ok(())
}

fn list(all: &Contexts) -> String {
    let mark = |name: Option<&str>| {
        if all.current.as_deref() == name {
            "*"
        } else {
            ""
        }
    };
    let mut rows = vec![vec![
        format!("{}{}", contexts::DEFAULT, mark(None)),
        "the local control socket".into(),
        String::new(),
    ]];
    for (name, c) in &all.contexts {
        rows.push(vec![
            format!("{name}{}", mark(Some(name))),
            c.host.clone(),
            c.description.clone().unwrap_or_default(),
        ]);
    }
    output::table(&["NAME", "HOST", "DESCRIPTION"], &rows, "")
}
