//! What a new set must pass before its health gate, for a deploy and for
//! a node's prepare alike: the wire contract, a certificate this daemon can
//! get, no route conflict, an HTTPS listener when it asks for TLS.

use cutover_core::diag::{Diagnose, Report};
use cutover_core::route::RouteTable;
use cutover_core::service::{Color, DeployRequest};

use super::{on_main_listener, validate, DeployError, Proxy};

impl Proxy {
    /// What a new set of `service` must pass before it is gated: the wire
    /// contract, a certificate this daemon can get, no route conflict, an
    /// HTTPS listener when it asks for TLS. Returns the color it takes.
    pub(crate) fn admit(&self, service: &str, req: &DeployRequest) -> Result<Color, DeployError> {
        validate(service, req)?;
        if let Some(refused) = self.refuses_certificate(req.tls.as_ref(), &req.hosts) {
            return Err(DeployError::Invalid(refused));
        }
        // Reject a route conflict before spending the deploy timeout on probes.
        let color = {
            let services = self.inner.lock();
            let mut table: RouteTable<()> = RouteTable::new();
            for (name, e) in services
                .live
                .iter()
                .filter(|(n, e)| n.as_str() != service && on_main_listener(&e.config))
            {
                table
                    .insert(&e.config.hosts, e.config.path_prefix.as_deref(), ())
                    .map_err(|err| {
                        DeployError::Invalid(
                            err.report()
                                .map_message(|m| format!("{m} (service {name:?})")),
                        )
                    })?;
            }
            if on_main_listener(req) {
                table
                    .insert(&req.hosts, req.path_prefix.as_deref(), ())
                    .map_err(|e| DeployError::Invalid(e.report()))?;
            }
            req.color
                .or_else(|| services.live.get(service).map(|e| e.active.color.other()))
                .unwrap_or(Color::Blue)
        };
        // HTTPS is set up before the gate too: a port 443 that another
        // program holds fails the deploy before anything switches.
        if req.tls.is_some() {
            let https = self.inner.https.get().ok_or_else(|| {
                DeployError::Invalid(
                    Report::new("the route asks for TLS, but this daemon serves no HTTPS")
                        .hint("start cutover serve with --state-dir so it can keep certificates"),
                )
            })?;
            https.ensure_listening().map_err(DeployError::Invalid)?;
        }
        Ok(color)
    }
}
