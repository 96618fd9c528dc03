//! The memory allocator, and the options it runs the daemon with.
//!
//! mimalloc instead of glibc's malloc: glibc keeps an arena per thread and
//! gives almost nothing back, so the daemon held what a load peak took long
//! after it ended (bench/memory.sh: 56 MiB twenty seconds after a
//! zero-window HTTP/2 load, against 10 MiB idle). With its default options
//! mimalloc is no better (24 MiB idle, pages kept): it commits its arenas
//! eagerly. `cutover serve` runs it with lazy commit, which gives 16 MiB
//! after the same load, 12 MiB idle (docs/benchmarks.md, "Memory").
//! (`--features system-allocator` keeps glibc's, for that comparison.)

#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The options, as mimalloc reads them: from the environment, once, as the
/// process starts. A value the user set wins.
const OPTIONS: [(&str, &str); 2] = [
    // mimalloc's own 10 ms purge delay, set so the environment says what
    // runs. 0 (freed pages returned at once) held no less memory after a
    // load once arenas are committed lazily (below), and the next request
    // faulted the pages in again: 0.35 page faults per request, 24 % fewer
    // requests per CPU-second (docs/benchmarks.md, #16's run).
    ("MIMALLOC_PURGE_DELAY", "10"),
    // Commit arena memory as it is used, not whole arenas up front.
    ("MIMALLOC_ARENA_EAGER_COMMIT", "0"),
];

/// For `cutover serve`: when the options are not in the environment yet,
/// executes this same program again with them (same pid, same arguments),
/// since they cannot be set once the process runs. Returns when they are
/// set, or when the exec failed (the daemon then runs with mimalloc's
/// defaults, and says so).
pub fn ensure_daemon_options() {
    if cfg!(feature = "system-allocator") {
        return;
    }
    let missing: Vec<_> = OPTIONS
        .iter()
        .filter(|(key, _)| std::env::var_os(key).is_none())
        .collect();
    if missing.is_empty() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| exe.clone().into_os_string());
    let mut command = std::process::Command::new(&exe);
    std::os::unix::process::CommandExt::arg0(&mut command, arg0);
    command.args(args);
    for (key, value) in missing {
        command.env(key, value);
    }
    let error = std::os::unix::process::CommandExt::exec(&mut command);
    eprintln!(
        "warning: cannot restart with the allocator's options ({error}); memory a load peak takes is given back slowly"
    );
}
