//! `--role` and `--engine`: what the daemon is in a Swarm, resolved from
//! the flags with the `--edge-*` settings of the Swarm deploy engine.

use cutover_deploy::swarm::EdgeSettings;
use cutover_proxy::admin::BearerToken;

use crate::args::{EngineArg, RoleArg, ServeArgs};
use crate::error::CliError;

/// The edges' control port when `--edge-port` is not given; the stack
/// file serves it there.
pub const EDGE_PORT: u16 = 26091;

/// Where deploys run.
#[derive(Debug, Clone)]
pub enum EngineKind {
    /// This host's engine, switching this daemon's own proxy.
    Docker,
    /// The Swarm this host's engine manages, switching every node's edge.
    Swarm(EdgeSettings),
}

/// `--role` and `--engine` with the flags that go with them.
pub(super) fn resolve(args: &ServeArgs) -> Result<(RoleArg, EngineKind), CliError> {
    let edge_flags = [
        ("--edge-service", args.edge_service.is_some()),
        ("--edge-network", args.edge_network.is_some()),
        ("--edge-port", args.edge_port.is_some()),
        ("--edge-token-file", args.edge_token_file.is_some()),
    ];
    match (args.role, args.engine) {
        (RoleArg::Edge, EngineArg::Swarm) => Err(CliError::bad_input(
            "--role edge runs no deploys, so it takes no --engine swarm",
        )
        .with_hint("run the edges with --role edge and one daemon on a manager with --engine swarm (dist/swarm/cutover.yml does)")),
        (_, EngineArg::Docker) => {
            if let Some((flag, _)) = edge_flags.iter().find(|(_, set)| *set) {
                return Err(CliError::bad_input(format!("{flag} is set but --engine swarm is not"))
                    .with_hint("the --edge-* flags tell the Swarm deploy engine where the edges are"));
            }
            Ok((args.role, EngineKind::Docker))
        }
        (RoleArg::Host, EngineArg::Swarm) => {
            let token = match &args.edge_token_file {
                Some(file) => {
                    let token = BearerToken::from_file(file).map_err(|e| {
                        CliError::bad_input(format!("--edge-token-file: {e}")).with_hint(
                            "give the file of the token the edges' --control-token-file holds",
                        )
                    })?;
                    Some(String::from_utf8_lossy(token.secret()).into_owned())
                }
                None => None,
            };
            Ok((
                RoleArg::Host,
                EngineKind::Swarm(EdgeSettings {
                    service: args.edge_service.clone().unwrap_or_else(|| "cutover_edge".into()),
                    network: args.edge_network.clone().unwrap_or_else(|| "cutover".into()),
                    port: args.edge_port.unwrap_or(EDGE_PORT),
                    token,
                }),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{parse_from, Command};

    fn roles(argv: &[&str]) -> Result<(RoleArg, EngineKind), CliError> {
        let (cli, _) = parse_from(argv).unwrap();
        let Command::Serve(args) = &cli.command else {
            panic!("not serve")
        };
        resolve(args)
    }

    fn message(e: CliError) -> String {
        e.report.message
    }

    #[test]
    fn a_swarm_deploy_engine_finds_the_edges_by_the_stacks_names_or_the_flags() {
        let (role, engine) = roles(&["cutover", "serve", "--engine", "swarm"]).unwrap();
        assert_eq!(role, RoleArg::Host);
        let EngineKind::Swarm(edges) = engine else {
            panic!("a swarm engine")
        };
        assert_eq!(
            (edges.service.as_str(), edges.network.as_str(), edges.port),
            ("cutover_edge", "cutover", EDGE_PORT)
        );
        assert!(edges.token.is_none());

        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("edge-token");
        std::fs::write(&token, "a-token-of-the-edges-0123456789abcdef\n").unwrap();
        let (_, engine) = roles(&[
            "cutover",
            "serve",
            "--engine=swarm",
            "--edge-service=lb_edge",
            "--edge-network=lb",
            "--edge-port=7001",
            "--edge-token-file",
            token.to_str().unwrap(),
        ])
        .unwrap();
        let EngineKind::Swarm(edges) = engine else {
            panic!("a swarm engine")
        };
        assert_eq!(
            (edges.service.as_str(), edges.network.as_str(), edges.port),
            ("lb_edge", "lb", 7001)
        );
        assert_eq!(
            edges.token.as_deref(),
            Some("a-token-of-the-edges-0123456789abcdef")
        );
    }

    #[test]
    fn edge_flags_need_the_swarm_engine_and_an_edge_runs_no_deploys() {
        let err = roles(&["cutover", "serve", "--edge-port", "7001"]).unwrap_err();
        assert!(message(err).contains("--edge-port is set but --engine swarm is not"));
        let err = roles(&["cutover", "serve", "--role", "edge", "--engine", "swarm"]).unwrap_err();
        assert!(message(err).contains("--role edge runs no deploys"));
        let (role, engine) = roles(&["cutover", "serve", "--role", "edge"]).unwrap();
        assert_eq!(role, RoleArg::Edge);
        assert!(matches!(engine, EngineKind::Docker));
    }
}
