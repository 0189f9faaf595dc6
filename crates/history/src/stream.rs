//! The live stream: Server-Sent Events with the newest entry and the count after each commit.

use std::convert::Infallible;
use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::Serialize;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::WaitForCancellationFutureOwned;
use utoipa::ToSchema;

use common::limits::Client;
use common::{ApiError, ErrorBody};

use crate::api::{AppState, store_failure};
use crate::store::Committed;
use crate::store::Entry;

/// One event of the stream (`event: history`).
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryEvent {
    /// Entries in the history.
    pub count: i64,
    /// The newest entry, if there is any.
    pub entry: Option<Entry>,
}

/// Live updates for the page: first the current state, then one event per committed batch (its
/// newest entry and the new count). Slow readers skip to the newest state; nothing is lost that
/// matters, since each event carries the whole count. Ends when the service stops.
#[utoipa::path(
    get,
    path = "/api/history/stream",
    tag = "history",
    responses(
        (status = 200, description = "`text/event-stream` of `history` events, each a JSON HistoryEvent",
         content_type = "text/event-stream", body = HistoryEvent),
        (status = 429, description = "This client has `MAX_STREAMS_PER_CLIENT` streams open; retry after `Retry-After`", body = ErrorBody),
        (status = 503, description = "The database is unavailable, or `MAX_STREAMS` streams are open; retry after `Retry-After`", body = ErrorBody),
    )
)]
pub async fn stream(
    State(state): State<AppState>,
    client: Option<Extension<Client>>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    // Its place among the open streams, held as long as the stream.
    let slot = state
        .streams
        .open(client.map(|Extension(Client(client))| client))?;
    // Subscribe before reading the current state, so no commit falls between the two.
    let receiver = state.events.subscribe();
    let latest = state.store.latest(1).await.map_err(|e| store_failure(&e))?;
    let count = state.store.count().await.map_err(|e| store_failure(&e))?;
    let first = HistoryEvent {
        count,
        entry: latest.into_iter().next(),
    };
    let guard = (ClientGuard::new(state.stream_clients.clone()), slot);
    let stopped = state.stopping.clone().cancelled_owned();
    let events = futures_util::stream::unfold(
        (Some(first), receiver, Box::pin(stopped), guard, 0),
        |(first, mut receiver, mut stopped, guard, last)| async move {
            let last = match first {
                Some(first) => {
                    let count = first.count;
                    return Some((Ok(event(&first)), (None, receiver, stopped, guard, count)));
                }
                None => last,
            };
            // The count only grows: an event that arrives behind a newer one is skipped.
            let next = loop {
                let next = next_commit(&mut receiver, &mut stopped).await?;
                if next.count > last {
                    break next;
                }
            };
            let count = next.count;
            let update = HistoryEvent {
                count,
                entry: Some(next.entry),
            };
            Some((Ok(event(&update)), (None, receiver, stopped, guard, count)))
        },
    );
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// The next commit, skipping what a slow reader missed; `None` once the service stops.
async fn next_commit(
    receiver: &mut broadcast::Receiver<Committed>,
    stopped: &mut std::pin::Pin<Box<WaitForCancellationFutureOwned>>,
) -> Option<Committed> {
    loop {
        tokio::select! {
            () = stopped.as_mut() => return None,
            next = receiver.recv() => match next {
                Ok(committed) => return Some(committed),
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return None,
            },
        }
    }
}

fn event(update: &HistoryEvent) -> Event {
    Event::default()
        .event("history")
        .json_data(update)
        .expect("a HistoryEvent serialises")
}

/// Counts open streams while it lives.
struct ClientGuard(prometheus::IntGauge);

impl ClientGuard {
    fn new(gauge: prometheus::IntGauge) -> Self {
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}
