//! Protection from too much at once: header size, load shedding for the process, rate limits
//! per client.
//!
//! - **Header size.** Requests whose headers (names and values) add up to more than
//!   `MAX_HEADER_BYTES`, or that carry more than [`MAX_HEADERS`] headers, are answered 431
//!   before anything else reads them.
//!
//! - **Load shedding.** Past `MAX_CONCURRENT_REQUESTS` requests in flight, a new one is
//!   answered 503 with `Retry-After` at once, before any work: a burst beyond what the process
//!   can hold gets fast refusals instead of queueing until everything times out.
//! - **Rate limits per client.** Each client gets a token bucket of `RATE_LIMIT_PER_SECOND`
//!   (on by default, at a rate no visitor's page reaches; 0 turns it off) and
//!   `RATE_LIMIT_BURST` tokens; a request without a token is answered 429 with `Retry-After`.
//!   A client is its IP address: the peer's, or, when the peer is one of `TRUSTED_PROXIES`, the
//!   nearest untrusted address in `X-Forwarded-For`. A service's internal routes (history's
//!   appends, whose one client is figalize) are not limited per client.
//!
//! Probes and scrapes (`/api/livez/`, `/api/healthz/`, `/metrics`) are never refused: an
//! orchestrator must see a busy process as busy, not as dead. Refusals are counted, not
//! logged one by one (a flood must not become a flood of log lines); a line is logged when
//! refusing starts, at most every ten seconds.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{IntCounter, Registry};

use crate::ApiError;

/// Paths never shed nor limited: liveness, readiness, metrics.
const EXEMPT: [&str; 3] = ["/api/livez/", "/api/healthz/", "/metrics"];

/// Most headers a request may carry; past it, 431. The HTTP/1 parser is set to accept more,
/// so that the answer comes from here, in the common error shape.
pub const MAX_HEADERS: usize = 100;

/// Clients remembered at most; past it, those whose buckets are full again are forgotten.
const MAX_CLIENTS: usize = 100_000;

/// Buckets are kept in this many shards, each behind its own lock.
const SHARDS: usize = 16;

/// How often at most a refusal is logged.
const LOG_EVERY: Duration = Duration::from_secs(10);

fn exempt(request: &Request) -> bool {
    exempt_path(request.uri().path())
}

/// Whether `path` is a probe's or the scrape's, served whatever the load.
pub(crate) fn exempt_path(path: &str) -> bool {
    EXEMPT.contains(&path)
}

/// An address or a network of `TRUSTED_PROXIES`: `10.0.0.7`, `10.0.0.0/8`, `::1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl FromStr for Network {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{text:?} is not an IP address or network"))?;
        let bits = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => bits,
            Some(prefix) => prefix
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= bits)
                .ok_or_else(|| format!("{text:?}: the prefix length must be 0 to {bits}"))?,
        };
        Ok(Self { addr, prefix })
    }
}

impl Network {
    /// Whether `ip` is in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// How requests are limited.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitsConfig {
    /// `MAX_HEADER_BYTES`: the most bytes of header names and values a request may carry.
    pub max_header_bytes: usize,
    /// `MAX_CONCURRENT_REQUESTS`: requests in flight past which new ones are answered 503.
    pub max_concurrent: usize,
    /// `RATE_LIMIT_PER_SECOND`: requests per second per client; 0 turns the limit off.
    pub rate_per_second: f64,
    /// `RATE_LIMIT_BURST`: requests a client may make at once (its bucket's size).
    pub burst: f64,
    /// `TRUSTED_PROXIES`: peers whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<Network>,
}

/// The client a request comes from, as [`enforce`] determined it: set on every request that
/// came over a socket and is not a probe's, for handlers that bound something per client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client(pub IpAddr);

/// The client a request comes from: the peer, or what trusted proxies say it forwards for.
pub fn client_of(peer: IpAddr, headers: &HeaderMap, trusted: &[Network]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    // Each proxy appends the address it got the request from; the nearest untrusted one is
    // the client as far as anyone trustworthy can tell.
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    let mut client = peer;
    for hop in forwarded.into_iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(ip) if is_trusted(ip) => client = ip,
            Ok(ip) => return ip,
            // Garbage in the chain: nothing before it can be trusted.
            Err(_) => return client,
        }
    }
    client
}

/// Events too many to log one by one, logged as a count at most every [`LOG_EVERY`].
#[derive(Debug, Default)]
pub struct Summary {
    since_log: AtomicU64,
    last_log: Mutex<Option<Instant>>,
}

impl Summary {
    /// Notes one event; when a line is due, the events since the last one, for it to log.
    pub fn tally(&self) -> Option<u64> {
        self.since_log.fetch_add(1, Ordering::Relaxed);
        let Ok(mut last) = self.last_log.try_lock() else {
            return None;
        };
        let now = Instant::now();
        if last.is_none_or(|at| now.duration_since(at) >= LOG_EVERY) {
            *last = Some(now);
            return Some(self.since_log.swap(0, Ordering::Relaxed));
        }
        None
    }
}

/// Counts refusals and logs them as a [`Summary`].
pub struct Refusals {
    counter: IntCounter,
    summary: Summary,
    what: &'static str,
    message: &'static str,
}

impl Refusals {
    /// Refusals counted in `counter`, logged as `message` with `what` as their reason.
    pub fn new(counter: IntCounter, what: &'static str, message: &'static str) -> Self {
        Self {
            counter,
            summary: Summary::default(),
            what,
            message,
        }
    }

    /// A refusal, counted and logged (at most every ten seconds).
    pub fn refused(&self) {
        self.count_and_log(None);
    }

    /// A refusal with its cause, which the log line names.
    pub fn refused_because(&self, cause: &dyn std::fmt::Display) {
        self.count_and_log(Some(cause));
    }

    fn count_and_log(&self, cause: Option<&dyn std::fmt::Display>) {
        self.counter.inc();
        if let Some(refused) = self.summary.tally() {
            if let Some(cause) = cause {
                tracing::warn!(refused, reason = self.what, error = %cause, "{}", self.message);
            } else {
                tracing::warn!(refused, reason = self.what, "{}", self.message);
            }
        }
    }
}

/// A token bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// The limits of one process, shared by its requests.
pub struct Limits {
    config: LimitsConfig,
    internal: Vec<String>,
    in_flight: AtomicUsize,
    shards: Vec<Mutex<HashMap<IpAddr, Bucket>>>,
    hasher: RandomState,
    shed: Refusals,
    rate_limited: Refusals,
}

impl Limits {
    /// Limits as configured, with their counters in `registry`:
    /// `figachechnaya_<process>_http_requests_shed_total` and `…_rate_limited_total`. Requests
    /// to the `internal` paths are not limited per client.
    pub fn new(
        config: LimitsConfig,
        internal: Vec<String>,
        registry: &Registry,
        process: &str,
    ) -> Arc<Self> {
        let prefix = format!("figachechnaya_{process}_http_requests");
        let counter = |name: &str, help: &str| {
            crate::metrics::counter(registry, &format!("{prefix}_{name}"), help)
        };
        Arc::new(Self {
            shed: Refusals::new(
                counter(
                    "shed_total",
                    "Requests answered 503 at once because MAX_CONCURRENT_REQUESTS were in flight",
                ),
                "overloaded",
                "refusing requests",
            ),
            rate_limited: Refusals::new(
                counter(
                    "rate_limited_total",
                    "Requests answered 429 because their client was over RATE_LIMIT_PER_SECOND",
                ),
                "rate_limited",
                "refusing requests",
            ),
            config,
            internal,
            in_flight: AtomicUsize::new(0),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
        })
    }

    /// Takes a token from `client`'s bucket; `false` when it has none.
    fn allow(&self, client: IpAddr, now: Instant) -> bool {
        let rate = self.config.rate_per_second;
        let burst = self.config.burst.max(1.0);
        let shard = usize::try_from(self.hasher.hash_one(client) % SHARDS as u64).unwrap_or(0);
        let mut buckets = self.shards[shard].lock().expect("rate limit lock");
        if buckets.len() >= MAX_CLIENTS / SHARDS && !buckets.contains_key(&client) {
            // Forget the clients whose buckets would be full again by now.
            let refill = Duration::from_secs_f64(burst / rate);
            buckets.retain(|_, bucket| now.duration_since(bucket.updated) < refill);
        }
        let bucket = buckets.entry(client).or_insert(Bucket {
            tokens: burst,
            updated: now,
        });
        let elapsed = now.duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Middleware: refuses oversized headers, sheds load past the concurrency limit, then applies
/// the client's rate limit; the request carries its [`Client`] on.
pub async fn enforce(
    State(limits): State<Arc<Limits>>,
    mut request: Request,
    next: Next,
) -> Response {
    let header_bytes: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if header_bytes > limits.config.max_header_bytes {
        return headers_too_large(format!(
            "Request headers over {} bytes",
            limits.config.max_header_bytes
        ));
    }
    if request.headers().len() > MAX_HEADERS {
        return headers_too_large(format!("More than {MAX_HEADERS} request headers"));
    }
    if exempt(&request) {
        return next.run(request).await;
    }
    let in_flight = limits.in_flight.fetch_add(1, Ordering::Relaxed);
    let _slot = Slot(&limits.in_flight);
    if in_flight >= limits.config.max_concurrent {
        limits.shed.refused();
        return ApiError::Busy("The service is busy; try again in a moment").into_response();
    }
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    // Requests that did not come over a socket (in-process calls) have no client to limit.
    if let Some(peer) = peer {
        let client = client_of(peer, request.headers(), &limits.config.trusted_proxies);
        request.extensions_mut().insert(Client(client));
        if limits.config.rate_per_second > 0.0
            && !limits
                .internal
                .iter()
                .any(|path| path == request.uri().path())
            && !limits.allow(client, Instant::now())
        {
            limits.rate_limited.refused();
            return ApiError::client(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "Too many requests from this client; slow down",
            )
            .into_response();
        }
    }
    next.run(request).await
}

fn headers_too_large(message: String) -> Response {
    ApiError::client(
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "headers_too_large",
        message,
    )
    .into_response()
}

/// One request's place among those in flight, given back even if its future is dropped.
struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn nets(list: &[&str]) -> Vec<Network> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn networks_parse_and_match() {
        let net: Network = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains(ip("10.1.2.3")));
        assert!(!net.contains(ip("11.0.0.1")));
        assert!(!net.contains(ip("::1")));
        let one: Network = "192.168.1.7".parse().unwrap();
        assert!(one.contains(ip("192.168.1.7")));
        assert!(!one.contains(ip("192.168.1.8")));
        // An IPv4 peer seen through an IPv6 socket is the same peer.
        assert!(one.contains(ip("::ffff:192.168.1.7")));
        let v6: Network = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12::1")));
        let all: Network = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("8.8.8.8")));
        for bad in ["10.0.0.0/33", "fd00::/129", "example.com", "10.0.0.0/x", ""] {
            assert!(bad.parse::<Network>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_client_is_the_peer_unless_the_peer_is_a_trusted_proxy() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "203.0.113.9, 10.0.0.5".parse().unwrap());
        let trusted = nets(&["10.0.0.0/8"]);
        // An untrusted peer cannot name another client.
        assert_eq!(
            client_of(ip("198.51.100.1"), &headers, &trusted),
            ip("198.51.100.1")
        );
        // Through two trusted hops, the nearest untrusted address.
        assert_eq!(
            client_of(ip("10.0.0.2"), &headers, &trusted),
            ip("203.0.113.9")
        );
        // A client cannot hide behind an address it writes first in the header.
        headers.insert("x-forwarded-for", "1.2.3.4, 203.0.113.9".parse().unwrap());
        assert_eq!(
            client_of(ip("10.0.0.2"), &headers, &trusted),
            ip("203.0.113.9")
        );
        // No header, or garbage: the nearest trusted hop stands for the client.
        assert_eq!(
            client_of(ip("10.0.0.2"), &HeaderMap::new(), &trusted),
            ip("10.0.0.2")
        );
        headers.insert("x-forwarded-for", "nonsense, 10.0.0.5".parse().unwrap());
        assert_eq!(
            client_of(ip("10.0.0.2"), &headers, &trusted),
            ip("10.0.0.5")
        );
    }

    fn limits(rate: f64, burst: f64) -> Arc<Limits> {
        Limits::new(
            LimitsConfig {
                max_header_bytes: 16 * 1024,
                max_concurrent: 10,
                rate_per_second: rate,
                burst,
                trusted_proxies: Vec::new(),
            },
            Vec::new(),
            &Registry::new(),
            "test",
        )
    }

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let limits = limits(10.0, 3.0);
        let start = Instant::now();
        let a = ip("192.0.2.1");
        let b = ip("192.0.2.2");
        assert!((0..3).all(|_| limits.allow(a, start)));
        assert!(!limits.allow(a, start));
        // Another client has its own bucket.
        assert!(limits.allow(b, start));
        // A tenth of a second later, one token again, and only one.
        let later = start + Duration::from_millis(100);
        assert!(limits.allow(a, later));
        assert!(!limits.allow(a, later));
        // Long idle, the bucket is full but no fuller than the burst.
        let much_later = start + Duration::from_mins(1);
        assert!((0..3).all(|_| limits.allow(a, much_later)));
        assert!(!limits.allow(a, much_later));
    }

    #[test]
    fn forgotten_clients_keep_the_table_bounded() {
        let limits = limits(1000.0, 1.0);
        let start = Instant::now();
        for n in 0..(u32::try_from(MAX_CLIENTS).unwrap() + 5_000) {
            let client = IpAddr::from(n.to_be_bytes());
            limits.allow(client, start + Duration::from_millis(u64::from(n)));
        }
        let remembered: usize = limits.shards.iter().map(|s| s.lock().unwrap().len()).sum();
        assert!(remembered <= MAX_CLIENTS, "{remembered}");
    }
}
