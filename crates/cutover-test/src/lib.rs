//! Test support: in-process origins and clients.
#![forbid(unsafe_code)]

pub mod compose_v2;
pub mod images;

pub mod client;
pub mod origin;
pub mod swarm;

pub use origin::Origin;

/// A port that was free a moment ago on every interface, for listeners
/// that cannot report the port they got. Taken below the kernel's ephemeral
/// range (32768 and up on Linux): a port the kernel handed out for `:0` is
/// handed out again, to any connection of the parallel tests, in the
/// seconds before the daemon binds it.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    const FIRST: usize = 20_000;
    const COUNT: usize = 12_000;
    let start = std::process::id() as usize * 97;
    for _ in 0..COUNT {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (FIRST + (start + n) % COUNT) as u16;
        if std::net::TcpListener::bind(("0.0.0.0", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {FIRST}..{}", FIRST + COUNT);
}
