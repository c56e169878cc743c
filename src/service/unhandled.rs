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
        let request = request.map(|body| {
            Body::new(Observed {
                inner: body,
                broken: broken.clone(),
            })
        });
        let call = Call::new(&self.shared, &seen, request.uri().path());
        let mut pending = Pending {
            call: Some(call),
            seen,
            handled,
            broken,
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

/// A request body that notes whether it failed before its end.
struct Observed {
    inner: Body,
    broken: Arc<AtomicBool>,
}

impl http_body::Body for Observed {
    type Data = bytes::Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let frame = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Err(_))) = &frame {
            self.broken.store(true, Ordering::Release);
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
