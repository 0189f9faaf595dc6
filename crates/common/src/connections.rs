//! Accepting connections: a deadline for each request's headers, a bound on how many are open
//! that stays below the descriptor limit, and room kept for the probes.
//!
//! - **Header deadline.** A connection must send a request's headers within
//!   `HEADER_READ_TIMEOUT_MS` (10 s) of opening, or of its previous answer (an idle keep-alive
//!   connection), or it is closed: a client that trickles bytes, or sends none, cannot hold a
//!   descriptor for long. An HTTP/2 connection that begins no request for as long is closed
//!   too, gracefully (what is being answered, a live stream, is finished first).
//! - **A bound per client.** One address holds at most `MAX_CONNECTIONS_PER_CLIENT` (256)
//!   connections (a browser opens six at most; many visitors may share an address); more are closed as soon as they are accepted, so that one client cannot take
//!   the connections every other visitor needs. Peers in `TRUSTED_PROXIES` (the ingress, which
//!   carries everybody's requests) are not bound.
//! - **A bound below the descriptor limit.** At most `MAX_CONNECTIONS` are open at once; by
//!   default three quarters of the process's descriptor limit less the reserve, so that files,
//!   the database and the broker keep the rest. Past it, [`RESERVE`] more connections are
//!   served the probes and `/metrics` alone, with a one-second header deadline, so that an
//!   orchestrator still sees a full process as alive; any other request on them is answered
//!   503. Past those, a connection is closed as soon as it is accepted: the process never runs
//!   out of descriptors, and it never stops accepting.
//! - **HTTP/2.** At most `HTTP2_MAX_STREAMS` (100) requests at once on one connection.
//!
//! Connections refused and headers timed out are counted; refusals and accept errors are
//! logged at most every ten seconds, never one line each.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::response::IntoResponse;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use prometheus::{IntCounter, IntGauge, Registry};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;

use crate::ApiError;
use crate::config::{ConfigError, Env};
use crate::limits::{Network, Refusals, exempt_path};
use crate::per_client::{ClientSlot, PerClient};

/// Connections kept, past `MAX_CONNECTIONS`, for the probes and `/metrics`.
pub const RESERVE: usize = 32;

/// The header deadline on a reserved connection: a probe sends its request at once.
/// Headers the HTTP/1 parser takes in one request: past [`crate::limits::MAX_HEADERS`], so
/// the limits answer. A request with more still gets the parser's own bare 431.
const PARSER_MAX_HEADERS: usize = 256;

/// The most bytes of a request's head the HTTP/1 parser buffers: past the largest
/// `MAX_HEADER_BYTES` allowed ([`crate::config::MAX_HEADER_BYTES_LIMIT`]), with room for the
/// request line. A longer head still gets the parser's own bare 431.
const PARSER_BUFFER: usize = crate::config::MAX_HEADER_BYTES_LIMIT + (64 << 10);

const RESERVE_HEADER_TIMEOUT: Duration = Duration::from_secs(1);

/// What `MAX_CONNECTIONS` is when the descriptor limit cannot be read.
const FALLBACK_MAX: usize = 4096;

/// How long accepting pauses after an error that is not the peer's (no descriptor left).
const ACCEPT_PAUSE: Duration = Duration::from_millis(50);

/// How connections are taken and held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionsConfig {
    /// `MAX_CONNECTIONS`: connections open at once, beyond the [`RESERVE`].
    pub max: usize,
    /// `HEADER_READ_TIMEOUT_MS`: the time a connection has to send a request's headers.
    pub header_read_timeout: Duration,
    /// `MAX_CONNECTIONS_PER_CLIENT`: connections one address may hold at once.
    pub per_client: usize,
    /// `HTTP2_MAX_STREAMS`: requests at once on one HTTP/2 connection.
    pub http2_max_streams: u32,
}

impl ConnectionsConfig {
    /// `MAX_CONNECTIONS` (from the descriptor limit), `MAX_CONNECTIONS_PER_CLIENT` (256),
    /// `HEADER_READ_TIMEOUT_MS` (10 s), `HTTP2_MAX_STREAMS` (100).
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let header_read_timeout = env.millis("HEADER_READ_TIMEOUT_MS", Duration::from_secs(10))?;
        if header_read_timeout.is_zero() {
            return Err(ConfigError::new(
                "HEADER_READ_TIMEOUT_MS",
                "must be positive",
            ));
        }
        let streams = env.positive("HTTP2_MAX_STREAMS", 100)?;
        Ok(Self {
            max: env.positive("MAX_CONNECTIONS", default_max(descriptor_limit()))?,
            per_client: env.positive("MAX_CONNECTIONS_PER_CLIENT", 256)?,
            header_read_timeout,
            http2_max_streams: u32::try_from(streams)
                .map_err(|_| ConfigError::new("HTTP2_MAX_STREAMS", "is too large"))?,
        })
    }
}

/// Three quarters of the descriptor limit, less the reserve: the last quarter is for files,
/// the database's and the broker's sockets.
fn default_max(limit: Option<usize>) -> usize {
    limit.map_or(FALLBACK_MAX, |limit| {
        (limit / 4 * 3).saturating_sub(RESERVE).max(16)
    })
}

/// The soft limit on this process's open descriptors, from `/proc/self/limits`.
fn descriptor_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_descriptor_limit(&limits)
}

fn parse_descriptor_limit(limits: &str) -> Option<usize> {
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The connections' counters.
pub struct ConnectionMetrics {
    open: IntGauge,
    /// Refused because every connection and the reserve were open.
    full: Refusals,
    /// Refused because their client held `MAX_CONNECTIONS_PER_CLIENT`.
    per_client: Refusals,
    timed_out: IntCounter,
    accept_errors: Refusals,
}

impl ConnectionMetrics {
    /// `figachechnaya_<process>_http_connections`, `…_refused_total{reason}` (`full`,
    /// `per_client`), `…_header_timeouts_total` and `…_accept_errors_total`, in `registry`.
    pub fn new(registry: &Registry, process: &str) -> Arc<Self> {
        let name = |suffix: &str| format!("figachechnaya_{process}_http_connections{suffix}");
        let refused = crate::metrics::labelled_counter(
            registry,
            &name("_refused_total"),
            "Connections closed as soon as they were accepted: MAX_CONNECTIONS and the reserve were all open (full), or their client held MAX_CONNECTIONS_PER_CLIENT (per_client)",
            "reason",
            ["full", "per_client"],
        );
        Arc::new(Self {
            open: crate::metrics::gauge(registry, &name(""), "Client connections open"),
            full: Refusals::new(
                refused.with_label_values(&["full"]),
                "connections_full",
                "refusing connections",
            ),
            per_client: Refusals::new(
                refused.with_label_values(&["per_client"]),
                "connections_per_client",
                "refusing connections",
            ),
            timed_out: crate::metrics::counter(
                registry,
                &name("_header_timeouts_total"),
                "Connections closed because a request's headers did not arrive within HEADER_READ_TIMEOUT_MS",
            ),
            accept_errors: Refusals::new(
                crate::metrics::counter(
                    registry,
                    &name("_accept_errors_total"),
                    "Errors accepting a connection (no descriptor left, …); accepting goes on",
                ),
                "accept_failed",
                "cannot accept connections",
            ),
        })
    }
}

/// Serves `router` on the connections of `listener` until `stop` completes; then stops
/// accepting, lets each connection finish its requests and returns once all have closed.
/// Peers in `trusted` are not bound per client.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    config: ConnectionsConfig,
    trusted: Vec<Network>,
    metrics: Arc<ConnectionMetrics>,
    stop: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(config.max));
    let reserve = Arc::new(Semaphore::new(RESERVE));
    let clients = PerClient::new();
    let connections = TaskTracker::new();
    let stopping = CancellationToken::new();
    let mut stop = pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    accept_failed(&err, &metrics).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let client = if trusted.iter().any(|net| net.contains(peer.ip())) {
            None
        } else {
            let Some(client) = clients.enter(peer.ip(), config.per_client) else {
                metrics.per_client.refused();
                continue;
            };
            Some(client)
        };
        let permit = Arc::clone(&slots)
            .try_acquire_owned()
            .map(|permit| (permit, false))
            .or_else(|_| {
                Arc::clone(&reserve)
                    .try_acquire_owned()
                    .map(|permit| (permit, true))
            });
        let Ok((permit, reserved)) = permit else {
            metrics.full.refused();
            continue;
        };
        connections.spawn(connection(
            Accepted {
                stream,
                peer,
                reserved,
                _permit: permit,
                _client: client,
            },
            router.clone(),
            config,
            Arc::clone(&metrics),
            stopping.clone(),
        ));
    }
    drop(listener);
    stopping.cancel();
    connections.close();
    connections.wait().await;
}

/// An error from `accept`: a peer that left before it was accepted is no matter; anything
/// else (no descriptor left) is counted and waited out briefly, never a reason to stop.
async fn accept_failed(err: &io::Error, metrics: &ConnectionMetrics) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset, Interrupted};
    if matches!(
        err.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset | Interrupted
    ) {
        return;
    }
    metrics.accept_errors.refused_because(err);
    tokio::time::sleep(ACCEPT_PAUSE).await;
}

struct Accepted {
    stream: TcpStream,
    peer: SocketAddr,
    /// Taken from the reserve: the probes and `/metrics` alone are served.
    reserved: bool,
    _permit: OwnedSemaphorePermit,
    /// Its place among its client's connections; none for a trusted proxy.
    _client: Option<ClientSlot>,
}

async fn connection(
    accepted: Accepted,
    router: Router,
    config: ConnectionsConfig,
    metrics: Arc<ConnectionMetrics>,
    stopping: CancellationToken,
) {
    metrics.open.inc();
    let _open = Open(&metrics.open);
    let Accepted {
        stream,
        peer,
        reserved,
        _permit,
        _client,
    } = accepted;
    let header_timeout = if reserved {
        RESERVE_HEADER_TIMEOUT
    } else {
        config.header_read_timeout
    };
    let activity = Arc::new(Activity::new());
    let service = {
        let activity = Arc::clone(&activity);
        hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let busy = activity.begin();
            let mut request = request.map(Body::new);
            // What `into_make_service_with_connect_info` gives: the rate limits need the peer.
            request.extensions_mut().insert(ConnectInfo(peer));
            let router = router.clone();
            async move {
                let _busy = busy;
                if reserved && !exempt_path(request.uri().path()) {
                    return Ok::<_, Infallible>(
                        ApiError::Busy("Too many connections; try again in a moment")
                            .into_response(),
                    );
                }
                router.oneshot(request).await
            }
        })
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        // Room past the service's own limits (MAX_HEADER_BYTES, MAX_HEADERS), so that a
        // request over them is answered by the limits middleware, in the common error shape,
        // rather than by the parser's bare 431.
        .max_headers(PARSER_MAX_HEADERS)
        .max_buf_size(PARSER_BUFFER);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(config.http2_max_streams)
        .enable_connect_protocol();
    let mut conn = pin!(builder.serve_connection_with_upgrades(TokioIo::new(stream), service));
    // The idle deadline is kept here: HTTP/1's own starts only once the protocol is known from
    // the first bytes, and HTTP/2 has none. A connection that has begun no request for
    // `header_timeout` is closed: at once before its first request, gracefully after it (an
    // answer still being sent, a live stream, is finished first).
    let mut idle = pin!(tokio::time::sleep(header_timeout));
    let mut draining = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(err) = result
                    && err
                        .downcast_ref::<hyper::Error>()
                        .is_some_and(hyper::Error::is_timeout)
                {
                    metrics.timed_out.inc();
                }
                break;
            }
            () = &mut idle, if !draining => {
                match activity.idle_since(header_timeout) {
                    Some(deadline) => idle.as_mut().reset(deadline),
                    None if !activity.started() => {
                        metrics.timed_out.inc();
                        break;
                    }
                    None => {
                        draining = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
            () = stopping.cancelled(), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// When a connection's requests began and how many are being answered.
struct Activity {
    opened: tokio::time::Instant,
    /// Milliseconds from `opened` to the last request's start or answer; `u64::MAX` before the
    /// first request.
    last: AtomicU64,
    busy: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Self {
            opened: tokio::time::Instant::now(),
            last: AtomicU64::new(u64::MAX),
            busy: AtomicUsize::new(0),
        }
    }

    fn touch(&self) {
        let now = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        self.last.store(now, Ordering::Relaxed);
    }

    /// A request begins; it is being answered until the guard is dropped.
    fn begin(self: &Arc<Self>) -> Busy {
        self.busy.fetch_add(1, Ordering::Relaxed);
        self.touch();
        Busy(Arc::clone(self))
    }

    fn started(&self) -> bool {
        self.last.load(Ordering::Relaxed) != u64::MAX
    }

    /// `None` when nothing has happened for `timeout`; otherwise when to look again.
    fn idle_since(&self, timeout: Duration) -> Option<tokio::time::Instant> {
        if self.busy.load(Ordering::Relaxed) > 0 {
            return Some(tokio::time::Instant::now() + timeout);
        }
        let last = match self.last.load(Ordering::Relaxed) {
            u64::MAX => return None,
            millis => self.opened + Duration::from_millis(millis),
        };
        let deadline = last + timeout;
        (deadline > tokio::time::Instant::now()).then_some(deadline)
    }
}

/// A request being answered (until its answer's head is ready).
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Counts a connection as open while it lives.
struct Open<'a>(&'a IntGauge);

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_descriptor_limit_is_read_from_the_soft_column() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max cpu time              unlimited            unlimited            seconds   \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(parse_descriptor_limit(limits), Some(1024));
        assert_eq!(parse_descriptor_limit("Max processes 10 10"), None);
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_descriptor_limit(unlimited), None);
    }

    #[test]
    fn the_default_bound_leaves_a_quarter_of_the_descriptors_and_the_reserve() {
        assert_eq!(default_max(Some(1024)), 768 - RESERVE);
        assert_eq!(default_max(Some(1_048_576)), 786_432 - RESERVE);
        assert_eq!(default_max(Some(40)), 16);
        assert_eq!(default_max(None), FALLBACK_MAX);
    }

    #[test]
    fn settings_are_read_and_checked() {
        let env = Env::from_pairs([
            ("MAX_CONNECTIONS", "100"),
            ("HEADER_READ_TIMEOUT_MS", "2500"),
            ("HTTP2_MAX_STREAMS", "8"),
        ]);
        let config = ConnectionsConfig::from_env(&env).unwrap();
        assert_eq!(
            config,
            ConnectionsConfig {
                max: 100,
                per_client: 256,
                header_read_timeout: Duration::from_millis(2500),
                http2_max_streams: 8,
            }
        );
        for (name, value) in [
            ("MAX_CONNECTIONS", "0"),
            ("MAX_CONNECTIONS_PER_CLIENT", "0"),
            ("HEADER_READ_TIMEOUT_MS", "0"),
            ("HTTP2_MAX_STREAMS", "0"),
            ("HTTP2_MAX_STREAMS", "99999999999"),
        ] {
            let err = ConnectionsConfig::from_env(&Env::from_pairs([(name, value)])).unwrap_err();
            assert_eq!(err.variable, name);
        }
    }
}
