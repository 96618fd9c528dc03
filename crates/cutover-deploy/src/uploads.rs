//! Build contexts uploaded by clients on other machines (`PUT
//! /v1/build-contexts/{digest}`): a tar kept under the state dir by its
//! SHA-256, so a retried CI step uploads nothing twice and a deploy names
//! its context by digest.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cutover_core::diag::Report;
use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

/// The largest context accepted: `docker build` sends whatever it is
/// given, but a context this size is a missing `.dockerignore`.
pub const MAX_UPLOAD: u64 = 4 << 30;

/// Uploads older than this are removed at the next upload: a deploy starts
/// building within seconds of its upload.
const KEPT: Duration = Duration::from_secs(3600);

pub struct Uploads {
    dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("the upload is {got}, not the {want} its URL names")]
    WrongDigest { want: String, got: String },
    #[error("the build context is larger than {} GiB", MAX_UPLOAD >> 30)]
    TooLarge,
    #[error("the upload broke off: {0}")]
    Body(String),
    #[error("cannot store the build context in {}: {source}", dir.display())]
    Store { dir: PathBuf, source: io::Error },
}

impl cutover_core::diag::Diagnose for UploadError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            UploadError::WrongDigest { .. } | UploadError::Body(_) => {
                "upload it again; the deploy names the digest of what was sent".into()
            }
            UploadError::TooLarge => {
                "leave build output, dependencies and VCS data out with a .dockerignore".into()
            }
            UploadError::Store { .. } => {
                "check the free space and permissions of the daemon's state dir".into()
            }
        })
    }
}

impl Uploads {
    pub fn new(state_dir: &Path) -> Uploads {
        Uploads {
            dir: state_dir.join("build-contexts"),
        }
    }

    /// Where the upload `digest` (`sha256:HEX`, checked by the caller) is.
    pub fn path(&self, digest: &str) -> PathBuf {
        self.dir
            .join(format!("{}.tar", digest.trim_start_matches("sha256:")))
    }

    pub fn has(&self, digest: &str) -> bool {
        self.path(digest).is_file()
    }

    /// Stores `body` as `digest`, checking that it is. Nothing is left
    /// behind when it is not.
    pub async fn store<S, E>(&self, digest: &str, mut body: S) -> Result<(), UploadError>
    where
        S: Stream<Item = Result<bytes::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let store_err = |source| UploadError::Store {
            dir: self.dir.clone(),
            source,
        };
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(store_err)?;
        self.remove_old().await;
        let tmp = tempfile::Builder::new()
            .prefix(".upload.")
            .tempfile_in(&self.dir)
            .map_err(store_err)?;
        let mut file = tokio::fs::File::from_std(tmp.reopen().map_err(store_err)?);
        let (mut hash, mut size) = (Sha256::new(), 0u64);
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| UploadError::Body(e.to_string()))?;
            size += chunk.len() as u64;
            if size > MAX_UPLOAD {
                return Err(UploadError::TooLarge);
            }
            hash.update(&chunk);
            file.write_all(&chunk).await.map_err(store_err)?;
        }
        file.sync_all().await.map_err(store_err)?;
        let got = format!("sha256:{:x}", hash.finalize());
        if got != digest {
            return Err(UploadError::WrongDigest {
                want: digest.into(),
                got,
            });
        }
        tmp.persist(self.path(digest))
            .map_err(|e| store_err(e.error))?;
        Ok(())
    }

    async fn remove_old(&self) {
        let Ok(mut entries) = tokio::fs::read_dir(&self.dir).await else {
            return;
        };
        while let Ok(Some(entry)) = entries.next_entry().await {
            let old = entry
                .metadata()
                .await
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > KEPT));
            if old {
                let _ = tokio::fs::remove_file(entry.path()).await;
            }
        }
    }
}

/// The report of a deploy whose upload is gone (removed after an hour, or
/// another daemon's state dir).
pub fn missing(context: &str, digest: &str) -> Report {
    Report::new(format!(
        "the build context {context} was uploaded as {digest}, which this daemon does not have"
    ))
    .hint("run the deploy again: the CLI uploads the context before it asks for the deploy")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(parts: &[&'static [u8]]) -> impl Stream<Item = Result<bytes::Bytes, String>> + Unpin {
        futures_util::stream::iter(
            parts
                .iter()
                .map(|p| Ok(bytes::Bytes::from_static(p)))
                .collect::<Vec<_>>(),
        )
    }

    #[tokio::test]
    async fn an_upload_is_kept_only_under_its_own_digest() {
        let dir = tempfile::tempdir().unwrap();
        let uploads = Uploads::new(dir.path());
        let digest = format!("sha256:{:x}", Sha256::digest(b"hello world"));
        uploads
            .store(&digest, chunks(&[b"hello ", b"world"]))
            .await
            .unwrap();
        assert!(uploads.has(&digest));
        assert_eq!(
            std::fs::read(uploads.path(&digest)).unwrap(),
            b"hello world"
        );

        let wrong = format!("sha256:{}", "0".repeat(64));
        let err = uploads
            .store(&wrong, chunks(&[b"other"]))
            .await
            .unwrap_err();
        assert!(matches!(err, UploadError::WrongDigest { .. }), "{err}");
        assert!(!uploads.has(&wrong));
        // Only the good upload is there: no temp file left.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("build-contexts"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }
}
