//! Where ordered certificates live, under the daemon's state directory:
//!
//! ```text
//! certificates/
//!   storage-id                          this storage's random name, written once
//!   challenges/http-01/TOKEN            answers under way (challenge.rs)
//!   challenges/tls-alpn-01/HOST
//!   acme/<directory host>-<hash>/       one folder per ACME directory URL,
//!     account.json                      so staging and production never mix
//!     HOST.pem                          chain, then key; 0600
//!     HOST.lock                         held while HOST is being ordered
//!     limits.json                       the rate-limit counts (limits.rs)
//!     limits.lock                       held while they are updated
//! ```
//!
//! A certificate and its key are one file, replaced atomically, so a daemon
//! reading it while another writes sees the old pair or the new one, never
//! a new key beside an old certificate. Two daemons may share the folder:
//! the lock lets one of them order a host, the other reads the result.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};
use sha2::{Digest, Sha256};

use crate::limits::Limits;
use crate::pem::{load, Loaded};

pub(crate) struct Storage {
    dir: PathBuf,
}

impl Storage {
    /// The folder for `directory_url` under `root`, created with mode 0700.
    pub fn open(root: &Path, directory_url: &str) -> io::Result<Storage> {
        let dir = root.join("acme").join(slug(directory_url));
        create_private_dir(&dir)?;
        Ok(Storage { dir })
    }

    #[cfg(test)]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The stored certificate for `host`: `Ok(None)` when there is none,
    /// an error when the file is there but unusable.
    pub fn load(&self, host: &str) -> Result<Option<(Loaded, String)>, String> {
        let path = self.cert_path(host);
        let pem = match std::fs::read_to_string(&path) {
            Ok(p) => p,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        load(pem.as_bytes(), pem.as_bytes())
            .map(|l| Some((l, pem)))
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn save(&self, host: &str, chain_pem: &str, key_pem: &str) -> io::Result<()> {
        let mut bundle = chain_pem.trim_end().to_string();
        bundle.push('\n');
        bundle.push_str(key_pem);
        // The temp file write_atomic makes is 0600, and the rename keeps it.
        cutover_fs::write_atomic(&self.cert_path(host), bundle.as_bytes())
    }

    pub fn account(&self) -> Option<String> {
        std::fs::read_to_string(self.dir.join("account.json")).ok()
    }

    pub fn save_account(&self, json: &str) -> io::Result<()> {
        cutover_fs::write_atomic(&self.dir.join("account.json"), json.as_bytes())
    }

    /// The lock for ordering `host`, if no other daemon holds it. It is
    /// released when the returned file closes (also when a daemon dies).
    pub fn try_lock(&self, host: &str) -> io::Result<Option<File>> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join(format!("{host}.lock")))?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Some(file)),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Applies `f` to the stored rate-limit counts and stores the result,
    /// under a lock, so daemons sharing the storage count together and a
    /// restart forgets nothing. Unreadable counts start again from none
    /// (logged): the CA's own limits still stand behind them.
    pub fn update_limits<R>(&self, now_ms: u64, f: impl FnOnce(&mut Limits) -> R) -> io::Result<R> {
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join("limits.lock"))?;
        // Held for a read and a small write; a dead holder's lock is
        // released by the kernel.
        flock(&lock, FlockOperation::LockExclusive)?;
        let path = self.dir.join("limits.json");
        let mut limits: Limits = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(path = %path.display(), error = %e, "unreadable rate-limit counts; counting from none");
                Limits::default()
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Limits::default(),
            Err(e) => return Err(e),
        };
        limits.expire(now_ms);
        let result = f(&mut limits);
        let bytes = serde_json::to_vec(&limits).expect("counts serialize");
        cutover_fs::write_atomic(&path, &bytes)?;
        Ok(result)
    }

    fn cert_path(&self, host: &str) -> PathBuf {
        self.dir.join(format!("{host}.pem"))
    }
}

/// The random name of the storage at `root`, made by whichever daemon
/// opens it first. Daemons on one shared folder read the same name, which
/// is how the nodes of a Swarm show they share their certificates: two
/// nodes with two names would each order, and a CA's check sent to one
/// would miss the other's answer.
pub(crate) fn identity(root: &Path) -> io::Result<String> {
    let path = root.join("storage-id");
    let made: [u8; 16] = rand::random();
    let made: String = made.iter().map(|b| format!("{b:02x}")).collect();
    // Another daemon's name, written first, is kept.
    cutover_fs::write_once(&path, made.as_bytes())?;
    Ok(std::fs::read_to_string(&path)?.trim().to_string())
}

/// `acme-v02.api.letsencrypt.org-1a2b3c4d`: readable, and distinct for
/// two directories on one host (staging and production differ by path
/// on some CAs).
fn slug(url: &str) -> String {
    let host: String = url
        .split("://")
        .nth(1)
        .unwrap_or(url)
        .split('/')
        .next()
        .unwrap_or("")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let hash = Sha256::digest(url.as_bytes());
    let short: String = hash[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("{host}-{short}")
}

pub(crate) fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pem::tests::self_signed;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn directories_never_mix_and_keys_are_private() {
        let root = tempfile::tempdir().unwrap();
        let prod = Storage::open(
            root.path(),
            "https://acme-v02.api.letsencrypt.org/directory",
        )
        .unwrap();
        let staging = Storage::open(
            root.path(),
            "https://acme-staging-v02.api.letsencrypt.org/directory",
        )
        .unwrap();
        assert_ne!(prod.dir(), staging.dir());
        assert!(prod
            .dir()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("acme-v02.api.letsencrypt.org-"));
        let (cert, key) = self_signed(&["a.example.com"]);
        prod.save("a.example.com", &cert, &key).unwrap();
        let (loaded, _) = prod.load("a.example.com").unwrap().unwrap();
        assert_eq!(loaded.facts.names, ["a.example.com"]);
        assert!(staging.load("a.example.com").unwrap().is_none());
        let mode = std::fs::metadata(prod.dir().join("a.example.com.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn daemons_on_one_folder_read_one_identity() {
        let (shared, other) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let first = identity(shared.path()).unwrap();
        assert_eq!(first.len(), 32);
        assert_eq!(identity(shared.path()).unwrap(), first);
        assert_ne!(identity(other.path()).unwrap(), first);
    }

    #[test]
    fn one_daemon_at_a_time_orders_a_host() {
        let root = tempfile::tempdir().unwrap();
        let a = Storage::open(root.path(), "https://ca/dir").unwrap();
        let b = Storage::open(root.path(), "https://ca/dir").unwrap();
        let held = a.try_lock("a.example.com").unwrap().unwrap();
        assert!(b.try_lock("a.example.com").unwrap().is_none());
        assert!(b.try_lock("b.example.com").unwrap().is_some());
        drop(held);
        assert!(b.try_lock("a.example.com").unwrap().is_some());
    }

    /// A daemon that restarts (or another on the same storage) sees the
    /// failures counted before: a crash loop cannot reset the limits.
    #[test]
    fn rate_limit_counts_outlive_a_restart_and_are_shared() {
        let root = tempfile::tempdir().unwrap();
        let now = 1_800_000_000_000;
        let a = Storage::open(root.path(), "https://ca/dir").unwrap();
        for i in 0..3 {
            a.update_limits(now + i, |l| {
                l.start("bad.example.com", now + i).unwrap();
                l.failed("bad.example.com", now + i);
            })
            .unwrap();
        }
        drop(a);
        let restarted = Storage::open(root.path(), "https://ca/dir").unwrap();
        let wait = restarted
            .update_limits(now + 10, |l| l.start("bad.example.com", now + 10))
            .unwrap()
            .unwrap_err();
        assert!(wait.why.contains("3 failed validations"), "{}", wait.why);
        let other = Storage::open(root.path(), "https://other-ca/dir").unwrap();
        assert!(other
            .update_limits(now, |l| l.start("bad.example.com", now))
            .unwrap()
            .is_ok());

        // Unreadable counts start again from none rather than stop orders.
        std::fs::write(restarted.dir().join("limits.json"), b"{oops").unwrap();
        assert!(restarted
            .update_limits(now, |l| l.start("bad.example.com", now))
            .unwrap()
            .is_ok());
    }
}
