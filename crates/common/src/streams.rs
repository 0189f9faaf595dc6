//! Live streams (Server-Sent Events) held open: bounded per process and per client.
//!
//! A live stream keeps its connection (HTTP/1.1), or one of its connection's streams (HTTP/2),
//! for as long as its visitor stays. The concurrency limit counts a request only until its
//! answer's head, and one HTTP/2 connection carries many streams, so neither bounds them: at
//! most `MAX_STREAMS` (1024) are open in a process and `MAX_STREAMS_PER_CLIENT` (16) per
//! [`Client`](crate::limits::Client), whatever the protocol. Past either, a new one is
//! answered at once, 503 `unavailable` for the process and 429 `rate_limited` for the client,
//! both with `Retry-After`. Refusals are counted, and logged at most every ten seconds.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use prometheus::Registry;

use crate::ApiError;
use crate::config::{ConfigError, Env};
use crate::limits::Refusals;

/// How many live streams may be open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamsConfig {
    /// `MAX_STREAMS`: open in the process.
    pub max: usize,
    /// `MAX_STREAMS_PER_CLIENT`: open for one client.
    pub per_client: usize,
}

impl StreamsConfig {
    /// `MAX_STREAMS` (1024), `MAX_STREAMS_PER_CLIENT` (16).
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            max: env.positive("MAX_STREAMS", 1024)?,
            per_client: env.positive("MAX_STREAMS_PER_CLIENT", 16)?,
        })
    }
}

/// The live streams open in a process.
pub struct Streams {
    config: StreamsConfig,
    open: Mutex<Open>,
    full: Refusals,
    per_client: Refusals,
}

#[derive(Default)]
struct Open {
    total: usize,
    clients: HashMap<IpAddr, usize>,
}

impl Streams {
    /// Streams as configured, their refusals counted in `registry` as
    /// `figachechnaya_<process>_http_streams_refused_total{reason}` (`full`, `per_client`).
    pub fn new(config: StreamsConfig, registry: &Registry, process: &str) -> Arc<Self> {
        let refused = crate::metrics::labelled_counter(
            registry,
            &format!("figachechnaya_{process}_http_streams_refused_total"),
            "Live streams refused: MAX_STREAMS were open (full, 503), or their client held MAX_STREAMS_PER_CLIENT (per_client, 429)",
            "reason",
            ["full", "per_client"],
        );
        Arc::new(Self {
            config,
            open: Mutex::new(Open::default()),
            full: Refusals::new(
                refused.with_label_values(&["full"]),
                "streams_full",
                "refusing live streams",
            ),
            per_client: Refusals::new(
                refused.with_label_values(&["per_client"]),
                "streams_per_client",
                "refusing live streams",
            ),
        })
    }

    /// A place for one more stream of `client` (none for a request that did not come over a
    /// socket), held until the slot is dropped; the refusal to answer otherwise.
    pub fn open(self: &Arc<Self>, client: Option<IpAddr>) -> Result<StreamSlot, ApiError> {
        let mut open = self.open.lock().expect("live streams");
        if open.total >= self.config.max {
            drop(open);
            self.full.refused();
            return Err(ApiError::Busy(
                "Too many live streams are open; try again in a moment",
            ));
        }
        if let Some(client) = client {
            let count = open.clients.entry(client).or_insert(0);
            if *count >= self.config.per_client {
                drop(open);
                self.per_client.refused();
                return Err(ApiError::client(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    "Too many live streams from this client; close one first",
                ));
            }
            *count += 1;
        }
        open.total += 1;
        Ok(StreamSlot {
            streams: Arc::clone(self),
            client,
        })
    }
}

/// One open live stream, given back when dropped.
pub struct StreamSlot {
    streams: Arc<Streams>,
    client: Option<IpAddr>,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.streams.open.lock().expect("live streams");
        open.total -= 1;
        if let Some(client) = self.client
            && let Some(count) = open.clients.get_mut(&client)
        {
            *count -= 1;
            if *count == 0 {
                open.clients.remove(&client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn streams(max: usize, per_client: usize) -> Arc<Streams> {
        Streams::new(StreamsConfig { max, per_client }, &Registry::new(), "test")
    }

    fn status(refusal: Result<StreamSlot, ApiError>) -> StatusCode {
        use axum::response::IntoResponse;
        refusal.err().expect("refused").into_response().status()
    }

    #[test]
    fn a_client_holds_its_share_and_the_process_its_bound() {
        let streams = streams(3, 2);
        let one: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let first = streams.open(Some(one)).unwrap();
        let _second = streams.open(Some(one)).unwrap();
        assert_eq!(
            status(streams.open(Some(one))),
            StatusCode::TOO_MANY_REQUESTS
        );
        let _third = streams.open(Some(other)).unwrap();
        assert_eq!(
            status(streams.open(Some(other))),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(status(streams.open(None)), StatusCode::SERVICE_UNAVAILABLE);
        drop(first);
        let _again = streams.open(Some(one)).unwrap();
    }

    #[test]
    fn clients_are_forgotten_once_their_streams_close() {
        let streams = streams(10, 1);
        let client: IpAddr = "192.0.2.1".parse().unwrap();
        drop(streams.open(Some(client)).unwrap());
        drop(streams.open(None).unwrap());
        let open = streams.open.lock().unwrap();
        assert_eq!(open.total, 0);
        assert!(open.clients.is_empty());
    }

    #[test]
    fn settings_are_read_and_checked() {
        let env = Env::from_pairs([("MAX_STREAMS", "10"), ("MAX_STREAMS_PER_CLIENT", "2")]);
        assert_eq!(
            StreamsConfig::from_env(&env).unwrap(),
            StreamsConfig {
                max: 10,
                per_client: 2
            }
        );
        let defaults = StreamsConfig::from_env(&Env::from_pairs::<&str, &str>([])).unwrap();
        assert_eq!((defaults.max, defaults.per_client), (1024, 16));
        let err = StreamsConfig::from_env(&Env::from_pairs([("MAX_STREAMS_PER_CLIENT", "0")]))
            .unwrap_err();
        assert_eq!(err.variable, "MAX_STREAMS_PER_CLIENT");
    }
}
