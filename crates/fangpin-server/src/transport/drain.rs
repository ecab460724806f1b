//! Counting the calls in flight, so that shutdown can wait for them and, once
//! the grace period is over, cut the rest cleanly.
//!
//! tonic's graceful shutdown stops accepting and waits for every connection to
//! finish, however long that takes. A call stuck behind a database lock would
//! then hold the process past what systemd or Kubernetes allow, and they
//! would kill it with SIGKILL. Instead, when the grace period ends, every call
//! still running is cut: its handler future is dropped, the group commit
//! abandons the batches still running (their transactions roll back) and
//! the client gets UNAVAILABLE, which it may retry under the same request id.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use fangpin_proto::tonic::Status;
use fangpin_proto::tonic::codegen::{Service, http};
use tokio::sync::watch;
use tokio_stream::Stream;

/// Shared by the layer and the server's shutdown sequence.
#[derive(Clone)]
pub(crate) struct Drain {
    in_flight: Arc<AtomicUsize>,
    cut_tx: Arc<watch::Sender<bool>>,
    cut_rx: watch::Receiver<bool>,
}

impl Drain {
    pub(crate) fn new() -> Drain {
        let (cut_tx, cut_rx) = watch::channel(false);
        Drain {
            in_flight: Arc::new(AtomicUsize::new(0)),
            cut_tx: Arc::new(cut_tx),
            cut_rx,
        }
    }

    /// Calls whose handler has not returned yet.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Ends every running call with UNAVAILABLE; calls that start afterwards
    /// (none should: the listener is closed by then) end at once too.
    pub(crate) fn cut(&self) {
        self.cut_tx.send_replace(true);
    }
}

impl<S> tower_layer::Layer<S> for Drain {
    type Service = Counted<S>;

    fn layer(&self, inner: S) -> Counted<S> {
        Counted {
            inner,
            drain: self.clone(),
        }
    }
}

/// A service wrapped by `Drain`.
#[derive(Clone)]
pub(crate) struct Counted<S> {
    inner: S,
    drain: Drain,
}

/// Decrements the count however the call ends: answered, cut, or dropped
/// because the client went away.
struct InFlightGuard(Arc<AtomicUsize>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for Counted<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        // The service that was polled ready is the one to call; the clone
        // stays behind for the next call (tower's usual pattern).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let now = self.drain.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        let guard = InFlightGuard(self.drain.in_flight.clone());
        // Operators (and the shutdown test) see which call is running.
        tracing::debug!(path = request.uri().path(), in_flight = now, "call started");
        let mut cut = self.drain.cut_rx.clone();
        Box::pin(async move {
            let _guard = guard;
            tokio::select! {
                response = inner.call(request) => response,
                // The sender lives in `Drain`, which this service holds, so
                // `wait_for` fails only if the value never becomes true.
                Ok(_) = cut.wait_for(|cut| *cut) => {
                    Ok(Status::unavailable("the server is shutting down; retry with the same request id")
                        .into_http())
                }
            }
        })
    }
}

/// The stream of accepted connections, logging once it is closed. tonic drops
/// it when the shutdown signal arrives; from the log line on, a client that
/// tries to connect is refused by the kernel.
pub(crate) struct Listening<S>(Option<Pin<Box<S>>>);

impl<S> Listening<S> {
    pub(crate) fn new(incoming: S) -> Listening<S> {
        Listening(Some(Box::pin(incoming)))
    }
}

impl<S: Stream> Stream for Listening<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        match self.0.as_mut() {
            Some(incoming) => incoming.as_mut().poll_next(cx),
            None => Poll::Ready(None),
        }
    }
}

impl<S> Drop for Listening<S> {
    fn drop(&mut self) {
        // Close the socket first, so the line is true when it is written.
        drop(self.0.take());
        tracing::info!("listener closed: no new connections");
    }
}
