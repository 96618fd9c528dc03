//! Local Docker images for the integration tests.
//!
//! Nothing is pulled from a registry: `cutover-base:bookworm` is a debootstrap
//! of Debian bookworm imported into Docker (by `scripts/images.sh base`, which
//! needs root and caches the tarball), and the test images are built `FROM` it
//! with the Dockerfiles under `scripts/images/`. `scripts/test.sh` prepares all
//! of this before `cargo test`; these helpers make a test that runs on its own
//! (`cargo test -p ... some_test`) work too, and rebuild an image when its
//! Dockerfile or the binary it packages changed.
//!
//! A test that needs Docker calls [`require_docker`] or one of the panicking
//! helpers ([`redis_image`], [`origin_image`]): without Docker it fails with a
//! message that says how to get it, it never passes silently.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashSet;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::hash::Hasher;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

/// The base every test image is built from; same name as in `scripts/lib.sh`.
pub const BASE_IMAGE: &str = "cutover-base:bookworm";
/// redis-server from Debian, listening on 6379 on all container interfaces.
pub const REDIS_IMAGE: &str = "cutover-test-redis:latest";
/// The `cutover-origin` test server as the image's entrypoint.
pub const ORIGIN_IMAGE: &str = "cutover-test-origin:latest";
/// nginx from Debian, without a site: tests give it one in `configs:`.
pub const NGINX_IMAGE: &str = "cutover-test-nginx:latest";
/// cutover itself, for the Swarm tests' edges and deploy engine: tagged
/// by its content, `cutover-test-cutover:<fingerprint>`, since test runs
/// of different builds may share an engine.
pub const CUTOVER_REPOSITORY: &str = "cutover-test-cutover";
/// The example app (examples/athens) from a debug build.
pub const ATHENS_IMAGE: &str = "cutover-test-athens:latest";

/// Image label holding a hash of the build context and the base image, so an
/// image is rebuilt exactly when one of them changed.
const FINGERPRINT_LABEL: &str = "dev.cutover.test.fingerprint";

const RUN_SCRIPTS_HINT: &str =
    "run the tests with scripts/test.sh, which installs Docker, starts dockerd and builds the test images";

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("could not run `{command}`: {source}\nhint: {hint}")]
    Spawn {
        command: String,
        #[source]
        source: io::Error,
        hint: &'static str,
    },
    #[error("`{command}` failed ({status}):\n{output}\nhint: {hint}")]
    Failed {
        command: String,
        status: ExitStatus,
        output: String,
        hint: &'static str,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cargo built {bin} but did not report where the executable is\nhint: run `cargo build -p {package} --bin {bin}` to see why")]
    BinaryNotReported { package: String, bin: String },
}

/// The workspace root (where `scripts/` is), known at compile time.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/cutover-test is two levels below the workspace root")
        .to_path_buf()
}

/// `Ok` when the docker CLI is installed and an engine answers.
pub fn docker_available() -> Result<(), ImageError> {
    run(
        Command::new("docker").args(["info", "--format", "{{.ServerVersion}}"]),
        "is Docker running? start dockerd, or run the tests with scripts/test.sh, which starts it",
    )
    .map(drop)
}

/// Panics with an actionable message when Docker is not usable. Tests that
/// need Docker call this first, so a machine without Docker fails them rather
/// than skipping them.
pub fn require_docker() {
    if let Err(e) = docker_available() {
        panic!("this test needs Docker, and Docker is not usable: {e}\nhint: {RUN_SCRIPTS_HINT}");
    }
}

/// Makes sure `cutover-base:bookworm` exists. Importing it from the cached
/// debootstrap tarball takes seconds; creating that tarball takes minutes and
/// root, and is left to `scripts/images.sh base`, shared with CI.
pub fn ensure_base_image() -> Result<(), ImageError> {
    if image_exists(BASE_IMAGE)? {
        return Ok(());
    }
    run(
        Command::new("bash")
            .arg(workspace_root().join("scripts/images.sh"))
            .arg("base"),
        "the first build of the base image runs debootstrap as root: run `sudo scripts/images.sh base` once",
    )
    .map(drop)
}

/// Builds `tag` from the Dockerfile in `context_dir` unless an image with the
/// same context and base already exists. Builds are serialized within the
/// process; concurrent builds from parallel test processes are harmless
/// because the result is identical.
pub fn ensure_image(tag: &str, context_dir: &Path) -> Result<(), ImageError> {
    static BUILT: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    // A test that panicked while holding the lock doesn't make the set wrong.
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let built = built.get_or_insert_with(HashSet::new);
    if built.contains(tag) {
        return Ok(());
    }
    ensure_base_image()?;
    let fingerprint = fingerprint(context_dir)?;
    if label(tag, FINGERPRINT_LABEL)?.as_deref() != Some(fingerprint.as_str()) {
        run(
            Command::new("docker")
                .args(["build", "--quiet", "--tag", tag, "--label"])
                .arg(format!("{FINGERPRINT_LABEL}={fingerprint}"))
                .arg(context_dir),
            "rerun the docker build command above to see every step",
        )?;
    }
    built.insert(tag.to_owned());
    Ok(())
}

/// Builds [`REDIS_IMAGE`] if needed and returns its name.
pub fn ensure_redis_image() -> Result<&'static str, ImageError> {
    ensure_image(REDIS_IMAGE, &workspace_root().join("scripts/images/redis"))?;
    Ok(REDIS_IMAGE)
}

/// Builds [`NGINX_IMAGE`] if needed and returns its name.
pub fn ensure_nginx_image() -> Result<&'static str, ImageError> {
    ensure_image(NGINX_IMAGE, &workspace_root().join("scripts/images/nginx"))?;
    Ok(NGINX_IMAGE)
}

/// Builds [`ORIGIN_IMAGE`] if needed, from a fresh build of the
/// `cutover-origin` binary, and returns its name.
pub fn ensure_origin_image() -> Result<&'static str, ImageError> {
    let binary = origin_binary()?;
    let context = StagingDir::new()?;
    let dockerfile = workspace_root().join("scripts/images/origin/Dockerfile");
    copy(&dockerfile, &context.0.join("Dockerfile"))?;
    copy(&binary, &context.0.join("cutover-origin"))?;
    ensure_image(ORIGIN_IMAGE, &context.0)?;
    Ok(ORIGIN_IMAGE)
}

/// Builds [`ATHENS_IMAGE`] if needed, from a fresh build of the example
/// app with `examples/athens/Dockerfile.local`, and returns its name.
pub fn ensure_athens_image() -> Result<&'static str, ImageError> {
    let binary = workspace_binary("athens", "athens")?;
    let context = StagingDir::new()?;
    let dockerfile = workspace_root().join("examples/athens/Dockerfile.local");
    copy(&dockerfile, &context.0.join("Dockerfile"))?;
    stage_stripped(&binary, &context.0.join("athens"))?;
    ensure_image(ATHENS_IMAGE, &context.0)?;
    Ok(ATHENS_IMAGE)
}

/// Builds an image of [`CUTOVER_REPOSITORY`] around `binary` (the test's
/// own `cutover`) if needed, and returns its tag. The caller removes it
/// when done ([`remove_image`]): each build of cutover makes another.
pub fn ensure_cutover_image(binary: &Path) -> Result<String, ImageError> {
    let context = StagingDir::new()?;
    let dockerfile = workspace_root().join("scripts/images/cutover/Dockerfile");
    copy(&dockerfile, &context.0.join("Dockerfile"))?;
    stage_stripped(binary, &context.0.join("cutover"))?;
    ensure_base_image()?;
    let tag = format!("{CUTOVER_REPOSITORY}:{}", fingerprint(&context.0)?);
    ensure_image(&tag, &context.0)?;
    Ok(tag)
}

/// Removes image `tag`; one that is gone, or used by a container, stays
/// as it is (another run may hold it).
pub fn remove_image(tag: &str) {
    let _ = Command::new("docker")
        .args(["image", "rm", tag])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

/// Copies `binary` to `to` without its debug information (a third of the
/// size to copy into every node of a swarm); a plain copy without `strip`.
fn stage_stripped(binary: &Path, to: &Path) -> Result<(), ImageError> {
    let stripped = Command::new("strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(to)
        .arg(binary)
        .status()
        .is_ok_and(|s| s.success());
    if stripped {
        Ok(())
    } else {
        copy(binary, to)
    }
}

/// [`ensure_redis_image`] for tests: panics with the reason and a hint.
pub fn redis_image() -> &'static str {
    require_docker();
    ensure_redis_image().unwrap_or_else(|e| panic!("could not build {REDIS_IMAGE}: {e}"))
}

/// [`ensure_nginx_image`] for tests: panics with the reason and a hint.
pub fn nginx_image() -> &'static str {
    require_docker();
    ensure_nginx_image().unwrap_or_else(|e| panic!("could not build {NGINX_IMAGE}: {e}"))
}

/// [`ensure_origin_image`] for tests: panics with the reason and a hint.
pub fn origin_image() -> &'static str {
    require_docker();
    ensure_origin_image().unwrap_or_else(|e| panic!("could not build {ORIGIN_IMAGE}: {e}"))
}

/// The host-built `cutover-origin` executable: `CUTOVER_ORIGIN_BIN` when set,
/// else what `cargo build` reports. Cargo's own up-to-date check makes the
/// second call cheap; host and image are both bookworm, so glibc matches.
pub fn origin_binary() -> Result<PathBuf, ImageError> {
    if let Some(path) = std::env::var_os("CUTOVER_ORIGIN_BIN") {
        return Ok(PathBuf::from(path));
    }
    workspace_binary("cutover-test", "cutover-origin")
}

/// The debug build of `bin` in workspace package `package`, as `cargo
/// build` reports it.
fn workspace_binary(package: &str, bin: &str) -> Result<PathBuf, ImageError> {
    // Cargo sets CARGO for the processes it runs; fall back to the cargo that
    // built this crate, then to PATH.
    let cargo = std::env::var_os("CARGO")
        .or_else(|| option_env!("CARGO").map(OsString::from))
        .unwrap_or_else(|| OsString::from("cargo"));
    let stdout = run(
        Command::new(cargo)
            .current_dir(workspace_root())
            .args(["build", "--quiet", "-p", package, "--bin", bin])
            .arg("--message-format=json-render-diagnostics"),
        "fix the build error above",
    )?;
    stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|msg| msg["reason"] == "compiler-artifact" && msg["target"]["name"] == bin)
        .find_map(|msg| msg["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| ImageError::BinaryNotReported {
            package: package.into(),
            bin: bin.into(),
        })
}

fn image_exists(tag: &str) -> Result<bool, ImageError> {
    // `docker image inspect` exits 1 both for "no such image" and for "no
    // engine", so check the engine first to report the right problem.
    docker_available()?;
    let status = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", tag])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map_err(|source| ImageError::Spawn {
            command: format!("docker image inspect {tag}"),
            source,
            hint: RUN_SCRIPTS_HINT,
        })?;
    Ok(status.success())
}

/// The value of label `key` on image `tag`; `None` when the image or the
/// label is missing.
fn label(tag: &str, key: &str) -> Result<Option<String>, ImageError> {
    if !image_exists(tag)? {
        return Ok(None);
    }
    let format = format!("{{{{index .Config.Labels \"{key}\"}}}}");
    let value = run(
        Command::new("docker").args(["image", "inspect", "--format", &format, tag]),
        RUN_SCRIPTS_HINT,
    )?;
    let value = value.trim();
    // The template prints "<no value>" for a missing key.
    Ok((!value.is_empty() && value != "<no value>").then(|| value.to_owned()))
}

/// Hash of every file (path and content) under `dir` plus the base image's
/// id: a changed Dockerfile, binary or base all mean a rebuild.
fn fingerprint(dir: &Path) -> Result<String, ImageError> {
    let base_id = run(
        Command::new("docker").args(["image", "inspect", "--format", "{{.Id}}", BASE_IMAGE]),
        RUN_SCRIPTS_HINT,
    )?;
    let mut files = Vec::new();
    collect_files(dir, &mut files)?;
    files.sort();
    let mut hasher = DefaultHasher::new();
    hasher.write(base_id.trim().as_bytes());
    for file in &files {
        let content = std::fs::read(file).map_err(|source| ImageError::Io {
            path: file.clone(),
            source,
        })?;
        let relative = file.strip_prefix(dir).unwrap_or(file);
        hasher.write(relative.as_os_str().as_encoded_bytes());
        hasher.write_usize(content.len());
        hasher.write(&content);
    }
    Ok(format!("{:016x}", hasher.finish()))
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), ImageError> {
    let io_err = |source| ImageError::Io {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io_err)? {
        let path = entry.map_err(io_err)?.path();
        if path.is_dir() {
            collect_files(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

fn copy(from: &Path, to: &Path) -> Result<(), ImageError> {
    std::fs::copy(from, to)
        .map(drop)
        .map_err(|source| ImageError::Io {
            path: from.to_path_buf(),
            source,
        })
}

/// Runs `command`, returns its stdout; on failure the error carries the
/// command line and its output.
pub(crate) fn run(command: &mut Command, hint: &'static str) -> Result<String, ImageError> {
    let line = command_line(command);
    let output = command.output().map_err(|source| ImageError::Spawn {
        command: line.clone(),
        source,
        hint,
    })?;
    if !output.status.success() {
        let mut text = String::from_utf8_lossy(&output.stderr)
            .trim_end()
            .to_owned();
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !stdout.trim().is_empty() {
            let _ = write!(text, "\n{}", stdout.trim_end());
        }
        return Err(ImageError::Failed {
            command: line,
            status: output.status,
            output: text,
            hint,
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn command_line(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|arg| arg.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A build context directory removed on drop, unique per process and call.
struct StagingDir(PathBuf);

impl StagingDir {
    fn new() -> Result<Self, ImageError> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "cutover-image-context-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).map_err(|source| ImageError::Io {
            path: path.clone(),
            source,
        })?;
        Ok(Self(path))
    }
}

impl Drop for StagingDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_root_holds_the_image_scripts() {
        let root = workspace_root();
        assert!(
            root.join("scripts/images.sh").is_file(),
            "{}",
            root.display()
        );
        assert!(root.join("scripts/images/redis/Dockerfile").is_file());
        assert!(root.join("scripts/images/origin/Dockerfile").is_file());
    }

    #[test]
    fn failed_command_reports_command_output_and_hint() {
        let err = run(
            Command::new("sh").args(["-c", "echo oops >&2; exit 3"]),
            "do the thing",
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("`sh -c echo oops >&2; exit 3` failed"),
            "{text}"
        );
        assert!(text.contains("oops"), "{text}");
        assert!(text.ends_with("hint: do the thing"), "{text}");
    }

    /// Removes the container when the test ends, passed or not.
    struct Container(String);

    impl Drop for Container {
        fn drop(&mut self) {
            let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
        }
    }

    #[test]
    fn redis_image_builds_and_serves() {
        let image = redis_image();
        let id = run(
            Command::new("docker").args([
                "run",
                "--detach",
                "--label",
                "dev.cutover.test=1",
                image,
            ]),
            RUN_SCRIPTS_HINT,
        )
        .expect("start a redis container");
        let container = Container(id.trim().to_owned());
        // redis-cli retries nothing, so wait for the server the way a client
        // of a fresh container would: bounded polling.
        let mut reply = String::new();
        for _ in 0..100 {
            if let Ok(out) = run(
                Command::new("docker").args(["exec", &container.0, "redis-cli", "ping"]),
                RUN_SCRIPTS_HINT,
            ) {
                reply = out;
                if reply.trim() == "PONG" {
                    break;
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert_eq!(reply.trim(), "PONG");
        // A second call finds the image up to date and doesn't rebuild it.
        let id_before = run(
            Command::new("docker").args(["image", "inspect", "--format", "{{.Id}}", image]),
            RUN_SCRIPTS_HINT,
        )
        .unwrap();
        ensure_image(REDIS_IMAGE, &workspace_root().join("scripts/images/redis")).unwrap();
        let id_after = run(
            Command::new("docker").args(["image", "inspect", "--format", "{{.Id}}", image]),
            RUN_SCRIPTS_HINT,
        )
        .unwrap();
        assert_eq!(id_before, id_after);
    }

    #[test]
    fn origin_image_serves_its_name() {
        let image = origin_image();
        let id = run(
            Command::new("docker").args([
                "run",
                "--detach",
                "--label",
                "dev.cutover.test=1",
                "--env",
                "NAME=blue",
                image,
            ]),
            RUN_SCRIPTS_HINT,
        )
        .expect("start an origin container");
        let container = Container(id.trim().to_owned());
        let ip = run(
            Command::new("docker").args([
                "inspect",
                "--format",
                "{{.NetworkSettings.IPAddress}}",
                &container.0,
            ]),
            RUN_SCRIPTS_HINT,
        )
        .unwrap();
        let addr = format!("{}:8080", ip.trim());
        let mut response = String::new();
        for _ in 0..100 {
            if let Ok(text) = http_get(&addr, "/") {
                response = text;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert!(response.starts_with("HTTP/1.1 200"), "{response:?}");
        assert!(response.ends_with("\r\n\r\nblue"), "{response:?}");
    }

    /// A bare HTTP/1.1 GET, so this module needs no HTTP client.
    fn http_get(addr: &str, path: &str) -> io::Result<String> {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n"
        )?;
        let mut text = String::new();
        stream.read_to_string(&mut text)?;
        Ok(text)
    }

    #[test]
    fn missing_program_is_a_spawn_error() {
        let err = run(&mut Command::new("cutover-no-such-program"), "install it").unwrap_err();
        assert!(matches!(err, ImageError::Spawn { .. }), "{err}");
    }
}
