//! `cutover serve`'s flags: the daemon's listeners, timeouts, limits,
//! control API and HTTPS, as the user typed them.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::{parse_duration, parse_size, LogFormat};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address of the HTTP listener that proxies to the services [default: 0.0.0.0:80]
    #[arg(long, env = "CUTOVER_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,

    /// Group that may use the control socket (name or numeric id); makes the socket 0660
    #[arg(long, value_name = "GROUP")]
    pub socket_group: Option<String>,

    /// Directory of the state file [default: /var/lib/cutover as root, else
    /// $XDG_STATE_HOME/cutover or ~/.local/state/cutover]
    #[arg(long, env = "CUTOVER_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Log format on stderr (filter with CUTOVER_LOG, e.g. CUTOVER_LOG=debug)
    #[arg(long, value_enum, default_value_t = LogFormat::Text, value_name = "FORMAT")]
    pub log_format: LogFormat,

    /// Log one line per proxied request (target "cutover::access") [default]
    #[arg(long, overrides_with = "no_access_log")]
    pub access_log: bool,

    /// Do not log proxied requests
    #[arg(long, overrides_with = "access_log")]
    pub no_access_log: bool,

    /// Do not answer /_cutover/health on the proxy listener
    #[arg(long)]
    pub no_health_endpoint: bool,

    /// Time to connect to a target [default: 5s]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub connect_timeout: Option<Duration>,

    /// Time a target has to send response headers [default: 60s]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub response_header_timeout: Option<Duration>,

    /// Time a client has to send its request headers [default: 10s]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub client_header_timeout: Option<Duration>,

    /// Idle keep-alive connections are closed after this [default: 75s]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub idle_timeout: Option<Duration>,

    /// A pooled connection to a target unused this long is closed [default: 15s]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub upstream_idle_timeout: Option<Duration>,

    /// Time between two reads of a request body before it is answered 408 [default: 60s]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub client_body_timeout: Option<Duration>,

    /// A WebSocket with no data either way for this long is closed with 1001 [default: 60s]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub websocket_idle_timeout: Option<Duration>,

    /// Client connections open at once; more are closed on accept [default: from the
    /// descriptor limit, leaving room for upstream connections and the control socket]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: Option<u32>,

    /// Largest request body accepted, e.g. 10MiB [default: 1GiB]
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_request_body: Option<u64>,

    /// Largest request head accepted, e.g. 64KiB [default: 64KiB]
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_header_bytes: Option<u64>,

    /// Serve Prometheus metrics on this TCP address (GET /metrics); off unless given
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<String>,

    /// Also serve the control API on this TCP address, over TLS, to clients with a
    /// token (`cutover token create`); e.g. 0.0.0.0:26090
    #[arg(long, value_name = "ADDR")]
    pub control_listen: Option<String>,

    /// A file holding one more token the TCP control listener accepts, with the admin
    /// scope
    #[arg(long, value_name = "FILE")]
    pub control_token_file: Option<PathBuf>,

    /// Certificate (PEM, with its chain) of the TCP control listener [default: one the
    /// daemon makes and keeps in STATE_DIR/control-tls]
    #[arg(long, value_name = "FILE", requires = "control_tls_key")]
    pub control_tls_cert: Option<PathBuf>,

    /// Serve the certificate cutover orders and renews for this host name from its ACME
    /// CA (as for a route with `tls: true`); clients trust it by their CA roots
    #[arg(long, value_name = "HOST", conflicts_with = "control_tls_cert")]
    pub control_tls_host: Option<String>,

    /// Private key (PEM) of --control-tls-cert
    #[arg(long, value_name = "FILE", requires = "control_tls_cert")]
    pub control_tls_key: Option<PathBuf>,

    /// A name (DNS name or IP) the daemon's own certificate is for, besides localhost,
    /// the loopback addresses and the listen address; repeatable
    #[arg(long, value_name = "NAME")]
    pub control_tls_name: Vec<String>,

    /// Serve the TCP control listener over plain HTTP: only on a loopback address
    #[arg(long)]
    pub control_insecure_http: bool,

    /// Take the listeners and routes over from the daemon running on this
    /// state dir, which then finishes its in-flight work and exits (`cutover
    /// upgrade` starts the new process this way)
    #[arg(long)]
    pub takeover: bool,

    /// Worker threads of the runtime [default: the number of CPU cores]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,

    /// Address of the HTTPS listener [default: 0.0.0.0:443, bound when a route first has TLS]
    #[arg(
        long,
        env = "CUTOVER_HTTPS_LISTEN",
        value_name = "ADDR",
        help_heading = "HTTPS"
    )]
    pub https_listen: Option<String>,

    /// ACME directory to order certificates from [default: Let's Encrypt]
    #[arg(
        long,
        env = "CUTOVER_ACME_DIRECTORY",
        value_name = "URL",
        help_heading = "HTTPS"
    )]
    pub acme_directory: Option<String>,

    /// Order from Let's Encrypt's staging directory (untrusted certificates, for trials)
    #[arg(long, conflicts_with = "acme_directory", help_heading = "HTTPS")]
    pub acme_staging: bool,

    /// Contact address given to the CA (expiry and policy mail)
    #[arg(
        long,
        env = "CUTOVER_ACME_EMAIL",
        value_name = "EMAIL",
        help_heading = "HTTPS"
    )]
    pub acme_email: Option<String>,

    /// External account binding key id, for CAs that need one (ZeroSSL, Google)
    #[arg(
        long,
        value_name = "KID",
        requires = "acme_eab_hmac_key_file",
        help_heading = "HTTPS"
    )]
    pub acme_eab_kid: Option<String>,

    /// File holding the external account binding HMAC key (base64url, as the CA gives it)
    #[arg(
        long,
        value_name = "FILE",
        requires = "acme_eab_kid",
        help_heading = "HTTPS"
    )]
    pub acme_eab_hmac_key_file: Option<PathBuf>,

    /// PEM file of a CA to trust for the ACME directory's own HTTPS (a private or test CA)
    #[arg(
        long,
        value_name = "FILE",
        env = "CUTOVER_ACME_CA_ROOT",
        help_heading = "HTTPS"
    )]
    pub acme_ca_root: Option<PathBuf>,

    /// Executable that publishes DNS-01 records at your DNS provider, run as
    /// `FILE present|cleanup NAME VALUE`: wildcard hosts get certificates too
    #[arg(
        long,
        value_name = "FILE",
        env = "CUTOVER_ACME_DNS_HOOK",
        help_heading = "HTTPS"
    )]
    pub acme_dns_hook: Option<PathBuf>,

    /// Order no certificates; routes with `tls: true` get the default certificate
    #[arg(long, conflicts_with_all = ["acme_directory", "acme_staging"], help_heading = "HTTPS")]
    pub no_acme: bool,

    /// On-demand TLS: order a certificate for a name at its first handshake if this
    /// http:// URL answers 200 to GET ?domain=NAME
    #[arg(long, value_name = "URL", help_heading = "HTTPS")]
    pub tls_on_demand_ask: Option<String>,

    /// Where certificates are kept; daemons that serve the same names may share it
    /// [default: STATE_DIR/certificates]
    #[arg(
        long,
        env = "CUTOVER_CERTIFICATES_DIR",
        value_name = "DIR",
        help_heading = "HTTPS"
    )]
    pub certificates_dir: Option<PathBuf>,

    /// Whose certificate a client that sends no server name (SNI) gets
    /// [default: a self-signed one]
    #[arg(long, value_name = "HOST", help_heading = "HTTPS")]
    pub tls_default_host: Option<String>,

    /// What this daemon is: `host`, the proxy and deploy engine of one machine; `edge`, a
    /// Swarm node's proxy, whose compose routes the Swarm deploy engine sends
    #[arg(long, value_enum, default_value_t = Role::Host, help_heading = "Swarm")]
    pub role: Role,

    /// Where deploys run: `docker`, on this host's engine; `swarm`, on the Swarm this
    /// host's engine manages, switching every node's edge
    #[arg(long, value_enum, default_value_t = EngineKind::Docker, help_heading = "Swarm")]
    pub engine: EngineKind,

    /// With --role edge: where the apps' gateways relay calls to an app by its name
    /// (on the edge network only, never published; dist/swarm/cutover.yml: 0.0.0.0:26092)
    #[arg(long, value_name = "ADDR", help_heading = "Swarm")]
    pub gateway_listen: Option<std::net::SocketAddr>,

    /// The port of the edges' --gateway-listen [default: 26092]
    #[arg(long, value_name = "PORT", help_heading = "Swarm")]
    pub edge_gateway_port: Option<u16>,

    /// The global service of cutover edges [default: cutover_edge]
    #[arg(long, value_name = "SERVICE", help_heading = "Swarm")]
    pub edge_service: Option<String>,

    /// The overlay network the edges and the app colors share [default: cutover]
    #[arg(long, value_name = "NETWORK", help_heading = "Swarm")]
    pub edge_network: Option<String>,

    /// The port of the edges' control API [default: 26091]
    #[arg(long, value_name = "PORT", help_heading = "Swarm")]
    pub edge_port: Option<u16>,

    /// A file holding the token the edges' control API accepts
    #[arg(long, value_name = "FILE", help_heading = "Swarm")]
    pub edge_token_file: Option<PathBuf>,

    /// The edges' certificate, or the CA that signed it (PEM): the deploy engine
    /// speaks TLS to them; needed with --engine swarm
    #[arg(long, value_name = "FILE", help_heading = "Swarm")]
    pub edge_tls_ca: Option<PathBuf>,

    /// The name the edges' certificate is for; they are reached by address
    /// [default: cutover-edge]
    #[arg(
        long,
        value_name = "NAME",
        requires = "edge_tls_ca",
        help_heading = "Swarm"
    )]
    pub edge_tls_name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Role {
    Host,
    Edge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineKind {
    Docker,
    Swarm,
}
