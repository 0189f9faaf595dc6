//! Live streams (Server-Sent Events) held open: bounded per process and per client.
//!
//! A live stream keeps its connection (HTTP/1.1), or one of its connection's streams (HTTP/2),
//! for as long as its visitor stays. The concurrency limit counts a request only until its
//! answer's head, and one HTTP/2 connection carries many streams, so neither bounds them: at
//! most `MAX_STREAMS` (1024) are open in a process and `MAX_STREAMS_PER_CLIENT` (16) per
//! [`Client`](crate::limits::Client), whatever the protocol. Past either, a new one is
//! answered at once, 503 `unavailable` for the process and 429 `rate_limited` for the client,
//! both with `Retry-After`. Refusals are counted, and logged at most every ten seconds.

use std::net::IpAddr;
use std::sync::Arc;

use axum::http::StatusCode;
use prometheus::Registry;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::ApiError;
use crate::config::{ConfigError, Env};
use crate::limits::Refusals;
use crate::per_client::{ClientSlot, PerClient};

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
    open: Arc<Semaphore>,
    clients: Arc<PerClient>,
    full: Refusals,
    per_client: Refusals,
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
            open: Arc::new(Semaphore::new(config.max)),
            clients: PerClient::new(),
            config,
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
    pub fn open(&self, client: Option<IpAddr>) -> Result<StreamSlot, ApiError> {
        let Ok(place) = Arc::clone(&self.open).try_acquire_owned() else {
            self.full.refused();
            return Err(ApiError::Busy(
                "Too many live streams are open; try again in a moment",
            ));
        };
        let client = match client {
            Some(client) => {
                let Some(slot) = self.clients.enter(client, self.config.per_client) else {
                    self.per_client.refused();
                    return Err(ApiError::client(
                        StatusCode::TOO_MANY_REQUESTS,
                        "rate_limited",
                        "Too many live streams from this client; close one first",
                    ));
                };
                Some(slot)
            }
            None => None,
        };
        Ok(StreamSlot {
            _place: place,
            _client: client,
        })
    }
}

/// One open live stream, given back when dropped.
pub struct StreamSlot {
    _place: OwnedSemaphorePermit,
    _client: Option<ClientSlot>,
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
    fn closed_streams_give_their_places_back() {
        let streams = streams(1, 1);
        let client: IpAddr = "192.0.2.1".parse().unwrap();
        drop(streams.open(Some(client)).unwrap());
        drop(streams.open(None).unwrap());
        let _again = streams.open(Some(client)).unwrap();
        assert_eq!(streams.open.available_permits(), 0);
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
