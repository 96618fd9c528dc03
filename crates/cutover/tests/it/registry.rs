//! A deploy of a private image: a password-protected registry on loopback
//! (Debian's docker-registry, htpasswd from apache2-utils), logged into with
//! `docker login` into a Docker config of the test's own; the CLI carries
//! the login to the daemon's pull, as `docker pull` would use it.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::deploy::{docker, expect_code, images, text, Project};
use crate::util::{cutover, free_port, run, Daemon, PATIENCE};

/// The registry process and its folder; stopped when dropped.
struct Registry {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Registry {
    fn start(user: &str, password: &str) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let htpasswd = dir.path().join("htpasswd");
        let made = Command::new("htpasswd")
            .args(["-Bbc"])
            .arg(&htpasswd)
            .args([user, password])
            .output()
            .expect("htpasswd runs (apache2-utils, scripts/deps.sh)");
        assert!(made.status.success(), "{}", text(&made.stderr));
        let addr = format!("127.0.0.1:{}", free_port());
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\nauth:\n  htpasswd:\n    realm: cutover-test\n    path: {}\n",
                dir.path().join("data").display(),
                htpasswd.display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry runs (scripts/deps.sh installs it)");
        let start = Instant::now();
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(
                start.elapsed() < PATIENCE,
                "the registry never listened on {addr}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Registry {
            child,
            addr,
            _dir: dir,
        }
    }
}

#[tokio::test]
async fn a_private_image_deploys_with_the_users_docker_login() {
    images();
    let registry = Registry::start("ci", "s3cr3t-pass");
    let image = format!("{}/cvit/origin:1", registry.addr);
    let login_dir = tempfile::tempdir().unwrap();
    let docker_as = |args: &[&str]| {
        let out = Command::new("docker")
            .arg("--config")
            .arg(login_dir.path())
            .args(args)
            .output()
            .expect("docker runs");
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            text(&out.stderr)
        );
    };
    // `docker login` writes the login into this test's Docker config only.
    let login = Command::new("docker")
        .arg("--config")
        .arg(login_dir.path())
        .args(["login", &registry.addr, "-u", "ci", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b"s3cr3t-pass")?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(
        login.status.success(),
        "docker login: {}",
        text(&login.stderr)
    );
    docker(&["tag", "cutover-test-origin:latest", &image]);
    docker_as(&["push", &image]);
    // Only in the registry now: the deploy has to pull it.
    docker(&["rmi", &image]);

    let compose = format!(
        "name: PROJECT\nservices:\n  web:\n    image: {image}\n    environment: {{NAME: private}}\n    x-cutover: {{port: 8080, deploy_timeout: 30s}}\n"
    );
    let project = Project::new("cvit-private", &compose, "");
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::in_dir(dir.path()).start().await;
    let deploy = |config: &std::path::Path| {
        run(cutover()
            .current_dir(project.path())
            .env("DOCKER_CONFIG", config)
            .arg("--socket")
            .arg(&daemon.socket)
            .arg("deploy"))
    };

    let plan = |config: &std::path::Path| {
        run(cutover()
            .current_dir(project.path())
            .env("DOCKER_CONFIG", config)
            .arg("--socket")
            .arg(&daemon.socket)
            .arg("plan"))
    };
    // Without the login, the plan already says the image cannot be had.
    let nobody = tempfile::tempdir().unwrap();
    let out = plan(nobody.path());
    expect_code(&out, 2, &daemon);
    assert!(
        text(&out.stderr).contains(&format!(
            "image {image} (web) is neither on this host nor pullable"
        )),
        "{}",
        text(&out.stderr)
    );
    let out = plan(login_dir.path());
    expect_code(&out, 0, &daemon);
    assert!(
        text(&out.stdout).contains(&format!("pull {image} for web (not on this host)")),
        "{}",
        text(&out.stdout)
    );

    // Without the login the pull is refused, and the error says so.
    let out = deploy(nobody.path());
    expect_code(&out, 1, &daemon);
    let said = text(&out.stderr).to_ascii_lowercase();
    assert!(
        said.contains("pull") && (said.contains("auth") || said.contains("denied")),
        "{said}"
    );

    let out = deploy(login_dir.path());
    expect_code(&out, 0, &daemon);
    crate::util::answers(daemon.listen, "private").await;
    // The daemon's log never shows the password.
    assert!(!daemon.stderr().contains("s3cr3t-pass"));
    drop(project);
    let _ = Command::new("docker").args(["rmi", &image]).output();
}
