//! Where rendered images live: an S3 bucket, or a directory served by imagizer itself.
//!
//! Objects are named `<prefix><md5 of the text>.png`. Both stores answer the same four
//! questions; the pipeline and the API do not know which one they talk to.

mod dir;
mod known;
mod s3;

use std::future::Future;
use std::pin::Pin;

pub use dir::DirStore;
pub use known::KnownStore;
pub use s3::{S3Settings, S3Store, UrlMode};

/// A store operation in flight.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// A store that could not answer; every such failure is worth retrying.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

impl StoreError {
    /// An error from anything displayable.
    pub fn new(err: impl std::fmt::Display) -> Self {
        Self(err.to_string())
    }
}

/// Storage for the PNGs.
pub trait ImageStore: Send + Sync + 'static {
    /// `s3` or `directory`, for logs.
    fn kind(&self) -> &'static str;
    /// Whether the image named `key` is stored.
    fn exists<'a>(&'a self, key: &'a str) -> StoreFuture<'a, bool>;
    /// Stores a PNG under `key`, replacing any object of that name.
    fn put<'a>(&'a self, key: &'a str, png: Vec<u8>) -> StoreFuture<'a, ()>;
    /// The URL a browser fetches the image from.
    fn url<'a>(&'a self, key: &'a str) -> StoreFuture<'a, String>;
    /// Whether the store answers at all (the bucket exists, the directory is writable).
    fn ping(&self) -> StoreFuture<'_, ()>;
    /// Whether `key` is known to be stored without asking anyone: `false` means "ask".
    fn known(&self, key: &str) -> bool {
        let _ = key;
        false
    }
}

/// A shared store is a store: the one-process site serves its image directory's files and
/// remembers what it holds through the same [`DirStore`].
impl<T: ImageStore + ?Sized> ImageStore for std::sync::Arc<T> {
    fn kind(&self) -> &'static str {
        (**self).kind()
    }

    fn exists<'a>(&'a self, key: &'a str) -> StoreFuture<'a, bool> {
        (**self).exists(key)
    }

    fn put<'a>(&'a self, key: &'a str, png: Vec<u8>) -> StoreFuture<'a, ()> {
        (**self).put(key, png)
    }

    fn url<'a>(&'a self, key: &'a str) -> StoreFuture<'a, String> {
        (**self).url(key)
    }

    fn ping(&self) -> StoreFuture<'_, ()> {
        (**self).ping()
    }

    fn known(&self, key: &str) -> bool {
        (**self).known(key)
    }
}

/// The file name of an image: `<key>.png`.
pub fn file_name(key: &str) -> String {
    format!("{key}.png")
}

/// Whether `name` is a file name this service could have written: 32 lowercase hex digits
/// and `.png`. Anything else (`..`, slashes, other files) is never looked up.
pub fn is_image_file_name(name: &str) -> bool {
    name.strip_suffix(".png").is_some_and(|stem| {
        stem.len() == 32
            && stem
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// `Cache-Control` of a stored image: its name is its content's hash, so it never changes.
pub const CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hash_names_are_image_names() {
        assert!(is_image_file_name("923f1f1853bc1f9e7df077a023a78c0a.png"));
        for name in [
            "923F1F1853BC1F9E7DF077A023A78C0A.png",
            "923f1f1853bc1f9e7df077a023a78c0a",
            "../923f1f1853bc1f9e7df077a023a78c.png",
            "history.sqlite3",
            ".png",
        ] {
            assert!(!is_image_file_name(name), "{name}");
        }
    }
}
