//! cutover's certificates: what the HTTPS listener serves, from static PEM
//! files or ordered from an ACME CA (instant-acme), stored under the state
//! directory, renewed, and shared by daemons on one storage.
//!
//! The proxy holds one [`Certificates`]: it tells it what the routes want
//! ([`Certificates::set_wanted`]), hands each HTTPS connection to
//! [`Acceptors::accept`] and answers HTTP-01 from [`Certificates::http01`].
#![forbid(unsafe_code)]

mod acme;
mod challenge;
mod control;
mod handshake;
mod limits;
mod manager;
mod on_demand;
mod pem;
mod renewal;
mod storage;
mod store;

pub use acme::{AcmeSettings, LETS_ENCRYPT, LETS_ENCRYPT_STAGING};
pub use challenge::HTTP01_PREFIX;
pub use control::{client_config, parse_fingerprint, ControlTls, Trust};
pub use handshake::Acceptors;
pub use manager::{Certificates, TlsSettings, Want, CONTROL_SERVICE};
