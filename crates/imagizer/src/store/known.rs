//! A memory of the images known to be stored, in front of a store.
//!
//! An image's name is the hash of its text and its content never changes, so once the store
//! has said an image exists (or has taken it), asking again tells nothing new: `POST
//! /api/getimageurl/` and the pipeline's "rendered already?" answer from memory instead of a
//! `HEAD` request each. Only "stored" is remembered — "not stored yet" is always asked — and
//! only for [`KnownStore::TTL`], so an object deleted from the bucket behind the service's back
//! is noticed within that time. At most [`KnownStore::CAPACITY`] names are kept (about 100
//! bytes each); when full, the expired ones go, and if none has, all of them.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use super::{ImageStore, StoreFuture};

/// `inner`, with a memory of what it has stored.
pub struct KnownStore<S> {
    inner: S,
    ttl: Duration,
    capacity: usize,
    /// Key → when it was last confirmed stored.
    known: RwLock<HashMap<String, Instant>>,
}

impl<S: ImageStore> KnownStore<S> {
    /// How long a confirmation counts.
    pub const TTL: Duration = Duration::from_mins(5);
    /// How many names are remembered at most.
    pub const CAPACITY: usize = 20_000;

    /// `inner` with the default time and capacity.
    pub fn new(inner: S) -> Self {
        Self::with_limits(inner, Self::TTL, Self::CAPACITY)
    }

    /// `inner`, remembering up to `capacity` names for `ttl` each.
    pub fn with_limits(inner: S, ttl: Duration, capacity: usize) -> Self {
        Self {
            inner,
            ttl,
            capacity,
            known: RwLock::new(HashMap::new()),
        }
    }

    fn is_known(&self, key: &str) -> bool {
        let known = self
            .known
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        known
            .get(key)
            .is_some_and(|confirmed| confirmed.elapsed() < self.ttl)
    }

    fn remember(&self, key: &str) {
        let mut known = self
            .known
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if known.len() >= self.capacity && !known.contains_key(key) {
            let ttl = self.ttl;
            known.retain(|_, confirmed| confirmed.elapsed() < ttl);
            if known.len() >= self.capacity {
                known.clear();
            }
        }
        known.insert(key.to_owned(), Instant::now());
    }
}

impl<S: ImageStore> ImageStore for KnownStore<S> {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    fn exists<'a>(&'a self, key: &'a str) -> StoreFuture<'a, bool> {
        if self.is_known(key) {
            return Box::pin(async { Ok(true) });
        }
        Box::pin(async move {
            let exists = self.inner.exists(key).await?;
            if exists {
                self.remember(key);
            }
            Ok(exists)
        })
    }

    fn put<'a>(&'a self, key: &'a str, png: Vec<u8>) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.inner.put(key, png).await?;
            self.remember(key);
            Ok(())
        })
    }

    fn url<'a>(&'a self, key: &'a str) -> StoreFuture<'a, String> {
        self.inner.url(key)
    }

    fn ping(&self) -> StoreFuture<'_, ()> {
        self.inner.ping()
    }

    fn known(&self, key: &str) -> bool {
        self.is_known(key)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::store::StoreError;

    /// A store that counts the questions it is asked.
    #[derive(Default)]
    struct Counting {
        stored: Mutex<Vec<String>>,
        asked: AtomicUsize,
        failing: std::sync::atomic::AtomicBool,
    }

    impl ImageStore for Counting {
        fn kind(&self) -> &'static str {
            "counting"
        }
        fn exists<'a>(&'a self, key: &'a str) -> StoreFuture<'a, bool> {
            self.asked.fetch_add(1, Ordering::SeqCst);
            let failing = self.failing.load(Ordering::SeqCst);
            let found = self.stored.lock().unwrap().iter().any(|k| k == key);
            Box::pin(async move {
                if failing {
                    Err(StoreError::new("down"))
                } else {
                    Ok(found)
                }
            })
        }
        fn put<'a>(&'a self, key: &'a str, _: Vec<u8>) -> StoreFuture<'a, ()> {
            self.stored.lock().unwrap().push(key.to_owned());
            Box::pin(async { Ok(()) })
        }
        fn url<'a>(&'a self, key: &'a str) -> StoreFuture<'a, String> {
            Box::pin(async move { Ok(format!("/{key}.png")) })
        }
        fn ping(&self) -> StoreFuture<'_, ()> {
            Box::pin(async { Ok(()) })
        }
    }

    fn asked(store: &KnownStore<Counting>) -> usize {
        store.inner.asked.load(Ordering::SeqCst)
    }

    #[tokio::test]
    async fn a_stored_image_is_asked_about_once() {
        let store = KnownStore::new(Counting::default());
        store.inner.stored.lock().unwrap().push("a".into());
        assert!(store.exists("a").await.unwrap());
        assert!(store.exists("a").await.unwrap());
        assert_eq!(asked(&store), 1);
        // Even with the store down: what is known stays known.
        store.inner.failing.store(true, Ordering::SeqCst);
        assert!(store.exists("a").await.unwrap());
        assert!(
            store.exists("b").await.is_err(),
            "the unknown is still asked"
        );
    }

    #[tokio::test]
    async fn not_stored_is_never_remembered() {
        let store = KnownStore::new(Counting::default());
        assert!(!store.exists("a").await.unwrap());
        assert!(!store.exists("a").await.unwrap());
        assert_eq!(asked(&store), 2);
        assert!(!store.known("a"), "not stored is not known");
        store.put("a", Vec::new()).await.unwrap();
        assert!(store.known("a"), "a put is a confirmation");
        assert!(store.exists("a").await.unwrap());
        assert_eq!(asked(&store), 2, "a put is a confirmation");
    }

    #[tokio::test]
    async fn a_confirmation_expires() {
        let store = KnownStore::with_limits(Counting::default(), Duration::ZERO, 10);
        store.put("a", Vec::new()).await.unwrap();
        assert!(!store.known("a"), "an expired confirmation is not known");
        assert!(store.exists("a").await.unwrap());
        assert!(store.exists("a").await.unwrap());
        assert_eq!(asked(&store), 2);
    }

    #[tokio::test]
    async fn the_memory_stays_within_its_capacity() {
        let store = KnownStore::with_limits(Counting::default(), Duration::from_mins(1), 3);
        for key in ["a", "b", "c", "d", "e"] {
            store.put(key, Vec::new()).await.unwrap();
            assert!(store.known.read().unwrap().len() <= 3);
        }
        assert!(store.known.read().unwrap().contains_key("e"));
    }
}
