//! The attachment store: content-addressed files under `[storage] dir`.
//!
//! A blob lives at `dir/ab/cd/<sha256>` (the first two pairs of hex digits of its SHA-256 as
//! folders), the layout every release has written, so existing data stays readable. A write
//! is durable (temp file, fsync, rename, fsync of the folder) and idempotent (an existing
//! hash is not written again). It keeps the free-space floor ([`StorageFloor`], `[storage]
//! min_free_bytes`): a write that would leave less free space is refused with
//! `ErrorKind::StorageFull` before anything is written.
//!
//! One [`BlobStore`] is made by the binary and shared: the web layer (uploads) gets it in
//! its state, every connector in its [`ConnectorContext`](crate::ConnectorContext). The
//! async methods do the file IO on the blocking pool.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

/// 256 MiB.
pub const DEFAULT_MIN_FREE_BYTES: u64 = 256 * 1024 * 1024;

/// The free space the attachment store keeps for the database, logs and the system: a
/// write that would leave less than `min_free_bytes` free is refused (507) before anything
/// is written. The floor is at most `max_percent` of the volume's size, so that a small
/// volume (smaller than the floor) can still be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageFloor {
    pub min_free_bytes: u64,
    pub max_percent: u8,
}

impl Default for StorageFloor {
    fn default() -> Self {
        StorageFloor { min_free_bytes: DEFAULT_MIN_FREE_BYTES, max_percent: 5 }
    }
}

impl StorageFloor {
    /// `Err(StorageFull)` when writing `len` bytes under `dir` would go below the floor.
    /// A file system that can't be asked (no `statvfs`) is not held back.
    pub fn check(&self, dir: &Path, len: u64) -> std::io::Result<()> {
        let Ok(vfs) = rustix::fs::statvfs(dir) else {
            return Ok(());
        };
        let total = vfs.f_blocks.saturating_mul(vfs.f_frsize);
        let avail = vfs.f_bavail.saturating_mul(vfs.f_frsize);
        let keep = self.min_free_bytes.min(total / 100 * u64::from(self.max_percent.min(100)));
        if avail < len.saturating_add(keep) {
            tracing::warn!(
                avail_bytes = avail,
                floor_bytes = keep,
                len,
                "The attachment store is at its free-space floor; refusing the write."
            );
            return Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "the attachment store is at its free-space floor",
            ));
        }
        Ok(())
    }
}

/// The content-addressed attachment store (cheap to clone).
#[derive(Debug, Clone)]
pub struct BlobStore(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    floor: StorageFloor,
}

impl BlobStore {
    pub fn new(dir: impl Into<PathBuf>, floor: StorageFloor) -> BlobStore {
        BlobStore(Arc::new(Inner { dir: dir.into(), floor }))
    }

    /// The root folder (`[storage] dir`).
    pub fn dir(&self) -> &Path {
        &self.0.dir
    }

    pub fn floor(&self) -> StorageFloor {
        self.0.floor
    }

    /// The hex SHA-256 a blob of `data` is stored under.
    pub fn hash(data: &[u8]) -> String {
        hex::encode(Sha256::digest(data))
    }

    /// Where the blob `sha256` lives (whether or not it is there); `None` when `sha256` is
    /// not 64 lowercase hex digits (so no caller can be led outside the store).
    pub fn path(&self, sha256: &str) -> Option<PathBuf> {
        let ok =
            sha256.len() == 64 && sha256.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        ok.then(|| self.0.dir.join(&sha256[0..2]).join(&sha256[2..4]).join(sha256))
    }

    /// Whether the blob `sha256` is stored.
    pub fn contains(&self, sha256: &str) -> bool {
        self.path(sha256).is_some_and(|p| p.is_file())
    }

    /// Stores `data`, returns its hash (see the module docs). Runs on the blocking pool.
    pub async fn put<D>(&self, data: D) -> std::io::Result<String>
    where
        D: AsRef<[u8]> + Send + 'static,
    {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.put_blocking(data.as_ref()))
            .await
            .map_err(std::io::Error::other)?
    }

    /// [`put`](BlobStore::put) for a caller already off the async threads.
    pub fn put_blocking(&self, data: &[u8]) -> std::io::Result<String> {
        let hash = BlobStore::hash(data);
        let folder: PathBuf = self.0.dir.join(&hash[0..2]).join(&hash[2..4]);
        let path = folder.join(&hash);
        if path.exists() {
            return Ok(hash);
        }
        std::fs::create_dir_all(&folder)?;
        self.0.floor.check(&folder, data.len() as u64)?;
        let tmp = folder.join(format!(".{hash}.{}.tmp", rand::random::<u32>()));
        let written = (|| {
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(data)?;
            file.sync_all()
        })()
        .and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(error) = written {
            // A half-written temp file on a full disk would keep it full.
            let _ = std::fs::remove_file(&tmp);
            return Err(error);
        }
        std::fs::File::open(&folder)?.sync_all()?;
        Ok(hash)
    }

    /// Reads the blob `sha256`.
    pub async fn get(&self, sha256: &str) -> std::io::Result<Vec<u8>> {
        let path = self.path(sha256).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a SHA-256 in hex")
        })?;
        tokio::fs::read(path).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_floor() -> StorageFloor {
        StorageFloor { min_free_bytes: 0, max_percent: 5 }
    }

    #[tokio::test]
    async fn blobs_are_content_addressed_in_the_old_layout() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::new(dir.path(), no_floor());
        let h = blobs.put(b"foto".to_vec()).await.unwrap();
        assert_eq!(h, hex::encode(Sha256::digest(b"foto")));
        // The layout `store_blob` always wrote: dir/ab/cd/<hash>.
        let path = dir.path().join(&h[0..2]).join(&h[2..4]).join(&h);
        assert_eq!(blobs.path(&h).unwrap(), path);
        assert_eq!(std::fs::read(&path).unwrap(), b"foto");
        assert!(blobs.contains(&h));
        assert_eq!(blobs.get(&h).await.unwrap(), b"foto");
        // Storing again is a no-op with the same hash.
        assert_eq!(blobs.put_blocking(b"foto").unwrap(), h);
        // Nothing but a hash names a path.
        assert_eq!(blobs.path("../../etc/passwd"), None);
        assert_eq!(blobs.path(&h.to_uppercase()), None);
        assert!(blobs.get("..").await.is_err());
    }

    #[test]
    fn the_floor_refuses_a_write_that_would_go_below_it() {
        let dir = tempfile::tempdir().unwrap();
        let all = StorageFloor { min_free_bytes: u64::MAX / 4, max_percent: 100 };
        let e = BlobStore::new(dir.path(), all).put_blocking(b"foto").unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::StorageFull);
        // Nothing (no temp file) is left behind.
        let h = BlobStore::hash(b"foto");
        let folder = dir.path().join(&h[0..2]).join(&h[2..4]);
        assert_eq!(std::fs::read_dir(folder).unwrap().count(), 0);
        // On a volume smaller than the floor, the floor is its share of the volume.
        let capped = StorageFloor { min_free_bytes: u64::MAX / 4, max_percent: 0 };
        assert!(BlobStore::new(dir.path(), capped).put_blocking(b"foto").is_ok());
        assert!(BlobStore::new(dir.path(), no_floor()).put_blocking(b"foto").is_ok());
    }
}
