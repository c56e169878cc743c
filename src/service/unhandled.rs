//! Requests to kyso's services that end before a kyso handler runs.
//!
//! tonic decodes a unary request before it calls the handler: a message that is not the
//! method's protobuf gets INTERNAL, one over the message size limit OUT_OF_RANGE, one whose
//! caller reset the stream while it was still arriving INTERNAL too ("Missing request
//! message"), and an unknown method UNIMPLEMENTED — and no handler ever sees them. This layer, around the kyso services, gives such refusals the codes the
//! API promises (INVALID_ARGUMENT, RESOURCE_EXHAUSTED) and records each in the audit log
//! through a [`Call`], so that every request has its record. A handler that runs marks its
//! request ([`Handled`], set by [`Call::new`]) and records itself.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::body::Body;
use tonic::metadata::MetadataMap;
use tonic::{Code, Status};

use super::call::{Call, Handled, Shared};

/// The layer's service around the router.
#[derive(Clone)]
pub(super) struct RecordUnhandled<S> {
    pub(super) inner: S,
    pub(super) shared: Arc<Shared>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S> tower_service::Service<http::Request<Body>> for RecordUnhandled<S>
where
    S: tower_service::Service<http::Request<Body>, Response = http::Response<Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        // The clone is the one not yet polled ready; the ready one serves this request.
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        if !request.uri().path().starts_with("/kyso.v1.") {
            return Box::pin(inner.call(request));
        }
        // What the record needs if no handler runs: the caller's credentials and address.
        let seen = tonic::Request::from_parts(
            MetadataMap::from_headers(request.headers().clone()),
            request.extensions().clone(),
            (),
        );
        let handled = Handled::default();
        request.extensions_mut().insert(handled.clone());
        let broken = Arc::new(AtomicBool::new(false));
        let held = Held::default();
        let request = request.map(|body| {
            Body::new(Observed {
                inner: body,
                broken: broken.clone(),
                budget: self.shared.request_bytes.clone(),
                limit: self.shared.config.max_request_bytes_in_flight,
                held: held.clone(),
            })
        });
        let call = Call::new(&self.shared, &seen, request.uri().path());
        let mut pending = Pending {
            call: Some(call),
            seen,
            handled,
            broken,
            held,
        };
        Box::pin(async move {
            let response = inner.call(request).await?;
            Ok(pending.answered(response).await)
        })
    }
}

/// A request on its way through tonic, with the record it gets if no handler takes it.
struct Pending {
    call: Option<Call>,
    seen: tonic::Request<()>,
    handled: Handled,
    /// Whether the request's body failed (the caller reset the stream or the connection).
    broken: Arc<AtomicBool>,
    /// The request's bytes held against the service's budget, until its answer.
    held: Held,
}

/// The permits for the bytes of one request's body, shared by the body and its answer.
#[derive(Clone, Default)]
struct Held(Arc<std::sync::Mutex<HeldBytes>>);

#[derive(Default)]
struct HeldBytes {
    permits: Option<tokio::sync::OwnedSemaphorePermit>,
    /// Whether a frame found the budget spent.
    over: bool,
}

impl Held {
    fn over_budget(&self) -> bool {
        self.0.lock().map(|h| h.over).unwrap_or(false)
    }

    /// Takes `n` bytes from `budget`, or notes that they did not fit.
    fn take(&self, budget: &Arc<tokio::sync::Semaphore>, n: usize) -> bool {
        let Ok(mut h) = self.0.lock() else {
            return false;
        };
        let permits = u32::try_from(n)
            .ok()
            .and_then(|n| budget.clone().try_acquire_many_owned(n).ok());
        match (permits, h.permits.as_mut()) {
            (Some(p), Some(held)) => held.merge(p),
            (Some(p), None) => h.permits = Some(p),
            (None, _) => h.over = true,
        }
        !h.over
    }
}

/// The refusal of a request whose bytes do not fit in the service's budget.
fn over_budget(budget: usize) -> Status {
    Status::from(super::error::Refusal::RequestsInFlight { budget })
}

impl Pending {
    /// Passes a handler's response on; records a refusal no handler saw, in the API's terms.
    async fn answered(&mut self, response: http::Response<Body>) -> http::Response<Body> {
        let Some(mut call) = self.call.take() else {
            return response;
        };
        let refusal = Status::from_header_map(response.headers())
            .filter(|s| s.code() != Code::Ok && !self.handled.is_marked());
        let Some(refusal) = refusal else {
            call.recorded = true;
            return response;
        };
        call.principal = principal(&call, &self.seen);
        let status = match refusal.code() {
            _ if self.held.over_budget() => {
                over_budget(call.shared.config.max_request_bytes_in_flight)
            }
            _ if self.broken.load(Ordering::Acquire) => Status::cancelled(
                "the caller cancelled the request or closed the connection before its \
                 message arrived",
            ),
            // tonic-prost reports a message it cannot decode as INTERNAL.
            Code::Internal => Status::invalid_argument(format!(
                "the request is not a valid {} message: {}",
                call.method,
                refusal.message()
            )),
            Code::OutOfRange => Status::resource_exhausted(format!(
                "the request is over this service's message limit: {}",
                refusal.message()
            )),
            _ => refusal,
        };
        call.reject(super::error::Refusal::Transport(status))
            .await
            .into_http()
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        // Dropped before an answer, the call records itself as cancelled or past its
        // deadline — unless a handler took the request, whose own call does that.
        if let Some(mut call) = self.call.take() {
            if self.handled.is_marked() {
                call.recorded = true;
            } else {
                call.principal = principal(&call, &self.seen);
            }
        }
    }
}

/// Who the caller is, if its credentials say; empty if they do not.
fn principal(call: &Call, seen: &tonic::Request<()>) -> String {
    call.authenticate(seen).map(|p| p.name).unwrap_or_default()
}

/// A request body that notes whether it failed before its end, and takes each frame's
/// bytes from the service's budget for bodies in flight.
struct Observed {
    inner: Body,
    broken: Arc<AtomicBool>,
    budget: Arc<tokio::sync::Semaphore>,
    /// The budget's size, for the refusal.
    limit: usize,
    held: Held,
}

impl http_body::Body for Observed {
    type Data = bytes::Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let frame = Pin::new(&mut self.inner).poll_frame(cx);
        match &frame {
            Poll::Ready(Some(Err(_))) => self.broken.store(true, Ordering::Release),
            Poll::Ready(Some(Ok(f))) => {
                let n = f.data_ref().map_or(0, |d| d.len());
                if n > 0 && !self.held.take(&self.budget, n) {
                    return Poll::Ready(Some(Err(over_budget(self.limit))));
                }
            }
            _ => {}
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
