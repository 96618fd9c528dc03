//! The one way cutover replaces a file in its state directory.
//!
//! Routes, releases and history live in small files that the daemon rewrites
//! while it serves; a crash or a full disk in the middle of a write must
//! leave either the old content or the new one, and two writers at once
//! must not write into the same temp file.
#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use tempfile::NamedTempFile;

/// Replaces `path` with `bytes`: a temp file with a unique name beside it,
/// fsync, rename over `path`, fsync of the directory so the rename itself
/// is durable. On any error the temp file is removed and `path` is as it
/// was. The directory must exist.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let (dir, tmp) = written_beside(path, bytes)?;
    // On error `persist` hands the temp file back; dropping it removes it.
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(dir)
}

/// Writes `path` with `bytes` unless it exists: `Ok(false)` then, and the
/// file is as another writer made it. Readers never see it half-written
/// (a temp file is linked into place), and of two writers at once exactly
/// one wins.
pub fn write_once(path: &Path, bytes: &[u8]) -> io::Result<bool> {
    let (dir, tmp) = written_beside(path, bytes)?;
    match tmp.persist_noclobber(path) {
        Ok(_) => sync_dir(dir).map(|()| true),
        Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e.error),
    }
}

/// `bytes` in a temp file beside `path`, synced, and `path`'s directory.
fn written_beside<'a>(path: &'a Path, bytes: &[u8]) -> io::Result<(&'a Path, NamedTempFile)> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    // Hidden, and named after its file, so a leftover is easy to place.
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    Ok((dir, tmp))
}

/// Some filesystems cannot fsync a directory; the rename has happened by
/// then, so that is no reason to report the write as failed.
fn sync_dir(dir: &Path) -> io::Result<()> {
    match File::open(dir)?.sync_all() {
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::InvalidInput | io::ErrorKind::Unsupported
            ) =>
        {
            Ok(())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn replaces_the_file_and_leaves_nothing_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(entries(dir.path()), ["state.json"]);
    }

    #[test]
    fn a_failed_rename_keeps_the_destination_and_removes_the_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        // A non-empty directory cannot be renamed over.
        let path = dir.path().join("busy");
        fs::create_dir(&path).unwrap();
        fs::write(path.join("inside"), b"x").unwrap();
        assert!(write_atomic(&path, b"new").is_err());
        assert_eq!(entries(dir.path()), ["busy"]);
        assert_eq!(entries(&path), ["inside"]);
    }

    #[test]
    fn write_once_keeps_the_first_writers_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("storage-id");
        let won = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8u8)
                .map(|i| {
                    let path = &path;
                    s.spawn(move || write_once(path, &[b'a' + i; 32]).unwrap())
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .filter(|won| *won)
                .count()
        });
        assert_eq!(won, 1);
        let body = fs::read(&path).unwrap();
        assert_eq!(body.len(), 32);
        assert!(body.iter().all(|b| *b == body[0]));
        assert!(!write_once(&path, b"later").unwrap());
        assert_eq!(fs::read(&path).unwrap(), body);
        assert_eq!(entries(dir.path()), ["storage-id"]);
    }

    #[test]
    fn concurrent_writers_never_share_a_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("releases.json");
        std::thread::scope(|s| {
            for i in 0..8u8 {
                let path = &path;
                s.spawn(move || {
                    let body = vec![b'a' + i; 64 * 1024];
                    for _ in 0..20 {
                        write_atomic(path, &body).unwrap();
                    }
                });
            }
        });
        // Whoever won, the file is one writer's whole content.
        let body = fs::read(&path).unwrap();
        assert_eq!(body.len(), 64 * 1024);
        assert!(body.iter().all(|b| *b == body[0]));
        assert_eq!(entries(dir.path()), ["releases.json"]);
    }
}
