use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;

use crate::util::{cutover, run, Daemon};

#[tokio::test]
async fn socket_is_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::in_dir(dir.path()).start().await;
    let meta = std::fs::metadata(&daemon.socket).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    // SIGINT (^C in a terminal) shuts down like SIGTERM.
    daemon.signal("INT");
    let exit = daemon.wait_exit().await;
    assert_eq!(exit.code(), Some(0), "{}", daemon.stderr());
    assert!(!daemon.socket.exists(), "the socket is removed at exit");
}

#[tokio::test]
async fn socket_group_makes_it_0660() {
    let group = String::from_utf8(Command::new("id").arg("-gn").output().unwrap().stdout).unwrap();
    let gid: u32 = String::from_utf8(Command::new("id").arg("-g").output().unwrap().stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::in_dir(dir.path())
        .arg("--socket-group")
        .arg(group.trim())
        .start()
        .await;
    let meta = std::fs::metadata(&daemon.socket).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    assert_eq!(meta.gid(), gid);
}

#[tokio::test]
async fn a_second_daemon_is_refused_and_a_stale_socket_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = Daemon::in_dir(dir.path()).start().await;

    let out = run(cutover()
        .args(["serve", "--listen", "127.0.0.1:0", "--socket"])
        .arg(&first.socket)
        .arg("--state-dir")
        .arg(dir.path().join("other")));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("another cutover daemon is already answering"),
        "{stderr}"
    );
    assert!(stderr.contains("\nhint: "), "{stderr}");

    // A crashed daemon leaves its socket file; the next one takes over.
    first.signal("KILL");
    first.wait_exit().await;
    assert!(first.socket.exists());
    let second = Daemon::in_dir(dir.path()).start().await;
    assert_eq!(second.socket, first.socket);
}

/// Two daemons on one state directory would overwrite each other's routes:
/// the second is refused even on a socket of its own, and leaves no socket.
#[tokio::test]
async fn a_second_daemon_on_the_same_state_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Daemon::in_dir(dir.path()).start().await;

    let other_socket = dir.path().join("other.sock");
    let out = run(cutover()
        .args(["serve", "--listen", "127.0.0.1:0", "--socket"])
        .arg(&other_socket)
        .arg("--state-dir")
        .arg(dir.path().join("state")));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("another cutover daemon is using the state directory"),
        "{stderr}"
    );
    assert!(stderr.contains("\nhint: "), "{stderr}");
    assert!(!other_socket.exists());
}

#[tokio::test]
async fn unknown_socket_group_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(cutover()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--socket-group",
            "no-such-group-cutover",
        ])
        .arg("--socket")
        .arg(dir.path().join("s.sock"))
        .arg("--state-dir")
        .arg(dir.path()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--socket-group: no group named \"no-such-group-cutover\""),
        "{stderr}"
    );
    assert!(!dir.path().join("s.sock").exists());
}
