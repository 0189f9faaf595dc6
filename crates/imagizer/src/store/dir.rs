//! Images in a local directory, for the one-process site and a machine with no S3.

use std::path::{Path, PathBuf};

use super::{ImageStore, StoreError, StoreFuture, file_name};

/// A directory of PNGs, served by imagizer at a base URL.
pub struct DirStore {
    root: PathBuf,
    base_url: String,
}

impl DirStore {
    /// Images under `root` (created if missing), published at `base_url` + file name.
    pub fn open(root: &Path, base_url: String) -> std::io::Result<Self> {
        std::fs::create_dir_all(root)?;
        Ok(Self {
            root: root.to_owned(),
            base_url,
        })
    }

    /// Where the image named `key` lies.
    pub fn path(&self, key: &str) -> PathBuf {
        self.root.join(file_name(key))
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// Writes aside, syncs, renames into place, syncs the directory: a reader never sees half a
/// file, and after a crash or power loss the name holds the whole image or nothing (an empty
/// file under the name would pass for a stored image forever).
fn write_durably(root: &Path, partial: &Path, target: &Path, png: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut file = std::fs::File::create(partial)?;
    file.write_all(png)?;
    file.sync_all()?;
    std::fs::rename(partial, target)?;
    std::fs::File::open(root)?.sync_all()
}

impl ImageStore for DirStore {
    fn kind(&self) -> &'static str {
        "directory"
    }

    fn exists<'a>(&'a self, key: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            tokio::fs::try_exists(self.path(key))
                .await
                .map_err(StoreError::new)
        })
    }

    fn put<'a>(&'a self, key: &'a str, png: Vec<u8>) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let root = self.root.clone();
            let target = self.path(key);
            let partial = root.join(format!(".{}.{}.partial", file_name(key), fastrand::u64(..)));
            tokio::task::spawn_blocking(move || {
                let written = write_durably(&root, &partial, &target, &png);
                if written.is_err() {
                    let _ = std::fs::remove_file(&partial);
                }
                written.map_err(StoreError::new)
            })
            .await
            .map_err(StoreError::new)?
        })
    }

    fn url<'a>(&'a self, key: &'a str) -> StoreFuture<'a, String> {
        Box::pin(async move { Ok(format!("{}{}", self.base_url, file_name(key))) })
    }

    fn ping(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let metadata = tokio::fs::metadata(&self.root)
                .await
                .map_err(StoreError::new)?;
            if metadata.is_dir() && !metadata.permissions().readonly() {
                Ok(())
            } else {
                Err(StoreError(format!(
                    "{} is not a writable directory",
                    self.root.display()
                )))
            }
        })
    }
}
