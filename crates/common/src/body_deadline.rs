//! A deadline for the whole of a request's body, from the moment its headers are in.
//!
//! A client that stops sending, or trickles a byte now and then, is answered 408 once the
//! deadline passes (the [`crate::Json`] extractor sees [`BodyTooSlow`]): it is the client's
//! doing, not a slow server's 503. A deadline between reads alone would let a trickle hold the
//! request until the request timeout.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::BoxError;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use hyper::body::{Frame, SizeHint};
use tokio::time::Sleep;

/// The error a body gives once its deadline has passed.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub struct BodyTooSlow(Duration);

/// `request` with its body bounded by `limit` from now; a request without a body is left be.
pub fn bound(request: Request, limit: Duration) -> Request {
    if hyper::body::Body::is_end_stream(request.body()) {
        return request;
    }
    request.map(|inner| {
        Body::new(Bounded {
            inner,
            limit,
            timer: Box::pin(tokio::time::sleep(limit)),
        })
    })
}

struct Bounded {
    inner: Body,
    limit: Duration,
    timer: Pin<Box<Sleep>>,
}

impl hyper::body::Body for Bounded {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        if this.timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(BodyTooSlow(this.limit)))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Whether `error`, or an error it came from, is a body's deadline passing.
pub(crate) fn is_too_slow(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if error.is::<BodyTooSlow>() {
            return true;
        }
        current = error.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    /// A body that sends a byte every half second, ten times: each read is quick, the whole
    /// is not.
    struct Trickle {
        left: u32,
        next: Pin<Box<Sleep>>,
    }

    impl hyper::body::Body for Trickle {
        type Data = Bytes;
        type Error = BoxError;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            if self.left == 0 {
                return Poll::Ready(None);
            }
            if self.next.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.left -= 1;
            self.next = Box::pin(tokio::time::sleep(Duration::from_millis(500)));
            Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"x")))))
        }
    }

    fn request(body: Body) -> Request {
        Request::builder().body(body).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_trickles_past_the_deadline_fails_as_too_slow() {
        let trickle = Trickle {
            left: 10,
            next: Box::pin(tokio::time::sleep(Duration::from_millis(500))),
        };
        let bounded = bound(request(Body::new(trickle)), Duration::from_secs(2));
        let err = bounded.into_body().collect().await.unwrap_err();
        assert!(is_too_slow(&err), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_in_time_is_passed_whole() {
        let trickle = Trickle {
            left: 3,
            next: Box::pin(tokio::time::sleep(Duration::from_millis(500))),
        };
        let bounded = bound(request(Body::new(trickle)), Duration::from_secs(2));
        let bytes = bounded.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"xxx");
    }
}
