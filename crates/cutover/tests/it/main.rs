//! Integration tests of the `cutover` binary: each spawns the real binary
//! with its own temporary socket, state directory and loopback ports.

mod api;
mod calls;
mod cli;
mod control_tcp;
mod deploy;
mod field_report;
mod https;
mod lifecycle;
mod problems;
mod registry;
mod release;
mod remote;
mod replicas;
mod socket;
mod stage;
mod swarm;
mod upgrade;
mod util;
mod words;
