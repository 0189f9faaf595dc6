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
            // Write aside, then rename: a reader never sees half a file, a crash leaves none.
            let partial =
                self.root
                    .join(format!(".{}.{}.partial", file_name(key), fastrand::u64(..)));
            tokio::fs::write(&partial, &png)
                .await
                .map_err(StoreError::new)?;
            if let Err(err) = tokio::fs::rename(&partial, self.path(key)).await {
                let _ = tokio::fs::remove_file(&partial).await;
                return Err(StoreError::new(err));
            }
            Ok(())
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
