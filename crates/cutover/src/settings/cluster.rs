//! `--role` and `--engine`: what the daemon is in a Swarm, resolved from
//! the flags with the `--edge-*` settings of the Swarm deploy engine.

use cutover_deploy::swarm::{EdgeSettings, EdgeTls};
use cutover_proxy::admin::BearerToken;

use crate::args::{EngineArg, RoleArg, ServeArgs};
use crate::error::CliError;

/// The edges' control port when `--edge-port` is not given; the stack
/// file serves it there.
pub const EDGE_PORT: u16 = 26091;
/// The edges' --gateway-listen port in dist/swarm/cutover.yml.
pub const EDGE_GATEWAY_PORT: u16 = 26092;
/// The name the edges' certificate is for when `--edge-tls-name` is not
/// given: they are reached by address, which a certificate cannot know.
pub const EDGE_TLS_NAME: &str = "cutover-edge";

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
        ("--edge-gateway-port", args.edge_gateway_port.is_some()),
        ("--edge-token-file", args.edge_token_file.is_some()),
        ("--edge-tls-ca", args.edge_tls_ca.is_some()),
    ];
    match (args.role, args.engine) {
        (RoleArg::Host, _) if args.gateway_listen.is_some() => Err(CliError::bad_input(
            "--gateway-listen is set but --role edge is not",
        )
        .with_hint("only a Swarm node's edge serves the apps' gateways; on one host, calls by name go to the daemon at each network's gateway")),
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
                    gateway_port: args.edge_gateway_port.unwrap_or(EDGE_GATEWAY_PORT),
                    token,
                    tls: edge_tls(args)?,
                }),
            ))
        }
    }
}

/// `--edge-tls-ca` and `--edge-tls-name`: TLS to the edges. It is
/// required: an edge serves its control API across nodes over TLS only.
fn edge_tls(args: &ServeArgs) -> Result<EdgeTls, CliError> {
    let Some(ca) = &args.edge_tls_ca else {
        return Err(CliError::bad_input(
            "--engine swarm needs --edge-tls-ca: the edges' control API is served over TLS",
        )
        .with_hint("give the edges' certificate (the stack's cutover_edge_tls_cert secret, dist/swarm/cutover.yml)"));
    };
    let config = cutover_tls::client_config(&cutover_tls::Trust::Ca(ca.clone())).map_err(|e| {
        CliError::bad_input(format!(
            "--edge-tls-ca: {}",
            e.trim_start_matches("--tls-ca ")
        ))
        .with_hint("give the PEM file of the edges' certificate, or of the CA that signed it")
    })?;
    let raw = args.edge_tls_name.as_deref().unwrap_or(EDGE_TLS_NAME);
    let name = rustls_pki_types::ServerName::try_from(raw.to_string()).map_err(|_| {
        CliError::bad_input(format!(
            "--edge-tls-name {raw:?} is not a DNS name or an IP address"
        ))
        .with_hint("give the name in the edges' certificate, e.g. cutover-edge")
    })?;
    Ok(EdgeTls {
        config: std::sync::Arc::new(config),
        name,
    })
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

    /// The edges' certificate, for the default name, in `dir`.
    fn edge_cert(dir: &std::path::Path) -> String {
        let cert = dir.join("edge.pem");
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec![EDGE_TLS_NAME.to_string()]).unwrap();
        std::fs::write(&cert, params.self_signed(&key).unwrap().pem()).unwrap();
        cert.to_str().unwrap().to_string()
    }

    #[test]
    fn a_swarm_deploy_engine_finds_the_edges_by_the_stacks_names_or_the_flags() {
        let dir = tempfile::tempdir().unwrap();
        let ca = edge_cert(dir.path());
        let err = roles(&["cutover", "serve", "--engine", "swarm"]).unwrap_err();
        assert!(
            err.report.message.contains("needs --edge-tls-ca"),
            "{}",
            err.report.message
        );
        let (role, engine) = roles(&[
            "cutover",
            "serve",
            "--engine",
            "swarm",
            "--edge-tls-ca",
            &ca,
        ])
        .unwrap();
        assert_eq!(role, RoleArg::Host);
        let EngineKind::Swarm(edges) = engine else {
            panic!("a swarm engine")
        };
        assert_eq!(
            (edges.service.as_str(), edges.network.as_str(), edges.port),
            ("cutover_edge", "cutover", EDGE_PORT)
        );
        assert!(edges.token.is_none());

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
            "--edge-tls-ca",
            &ca,
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
    fn tls_to_the_edges_trusts_the_given_certificate_for_one_name() {
        let dir = tempfile::tempdir().unwrap();
        let ca = &edge_cert(dir.path());
        let (_, engine) =
            roles(&["cutover", "serve", "--engine=swarm", "--edge-tls-ca", ca]).unwrap();
        let EngineKind::Swarm(edges) = engine else {
            panic!("a swarm engine")
        };
        assert_eq!(edges.tls.name.to_str(), EDGE_TLS_NAME);

        let not_pem = dir.path().join("token");
        std::fs::write(&not_pem, "not a certificate").unwrap();
        let err = roles(&[
            "cutover",
            "serve",
            "--engine=swarm",
            "--edge-tls-ca",
            not_pem.to_str().unwrap(),
        ])
        .unwrap_err();
        assert!(
            err.report.message.starts_with("--edge-tls-ca"),
            "{}",
            err.report.message
        );
        let err = roles(&[
            "cutover",
            "serve",
            "--engine=swarm",
            "--edge-tls-ca",
            ca,
            "--edge-tls-name",
            "not a name",
        ])
        .unwrap_err();
        assert!(
            err.report.message.contains("is not a DNS name"),
            "{}",
            err.report.message
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

    #[test]
    fn only_an_edge_serves_gateways() {
        let err = roles(&["cutover", "serve", "--gateway-listen", "0.0.0.0:26092"]).unwrap_err();
        assert!(message(err).contains("--gateway-listen is set but --role edge is not"));
        let err = roles(&["cutover", "serve", "--edge-gateway-port", "7002"]).unwrap_err();
        assert!(message(err).contains("--edge-gateway-port is set but --engine swarm is not"));
        let (role, _) = roles(&[
            "cutover",
            "serve",
            "--role",
            "edge",
            "--gateway-listen",
            "0.0.0.0:26092",
        ])
        .unwrap();
        assert_eq!(role, RoleArg::Edge);
    }
}
