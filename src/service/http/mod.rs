//! The HTTP side of `kyso serve`: a JSON API beside gRPC (`http_listen`), with the same
//! principals, roles, limits, deadlines and audit log. Each API request goes through the
//! same [`Call`] as a gRPC call and ends in exactly one audit record; `/healthz`, `/readyz`
//! are for load balancers and take no credentials.
//!
//! Routes (README, "HTTP API"):
//!
//! - `POST /api/v1/verify`: the PDF as the body (`application/pdf`) or as the field `file`
//!   of `multipart/form-data`; metadata and options as query parameters. The answer is the
//!   report as `kyso verify --format json` writes it, with `audit_record_id` and `summary`.
//! - `POST /api/v1/signatures/{n}/signed-version`: the document posted, the bytes signature
//!   `n` signed answered (`application/pdf`).
//! - `GET /api/v1/records`, `GET /api/v1/records/{id}`, `POST /api/v1/log/verify`,
//!   `GET /api/v1/checkpoint`: the audit service.
//!
//! Errors are `{"error": {"code", "message"}}`, the code being the gRPC status name the same
//! refusal has over gRPC.

mod api;
pub(super) mod metrics;
mod openapi;

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use axum::serve::{IncomingStream, Listener};
use futures_util::{Stream, StreamExt};
use tonic::transport::server::Connected as _;

use super::call::Shared;
use super::incoming::Guarded;

/// Where an HTTP request comes from.
#[derive(Debug, Clone, Copy)]
pub(super) struct Peer(pub(super) SocketAddr);

impl axum::extract::connect_info::Connected<IncomingStream<'_, Connections>> for Peer {
    fn connect_info(stream: IncomingStream<'_, Connections>) -> Peer {
        *stream.remote_addr()
    }
}

type Accepted = Pin<Box<dyn Stream<Item = std::io::Result<Guarded>> + Send>>;

/// The connections the HTTP side takes: the same cap, idle timer and accept back-off as
/// the gRPC side's ([`super::incoming`]).
pub(super) struct Connections {
    accepted: Accepted,
    local: SocketAddr,
}

impl Connections {
    pub(super) fn new(
        accepted: impl Stream<Item = std::io::Result<Guarded>> + Send + 'static,
        local: SocketAddr,
    ) -> Connections {
        Connections {
            accepted: Box::pin(accepted),
            local,
        }
    }
}

impl Listener for Connections {
    type Io = Guarded;
    type Addr = Peer;

    async fn accept(&mut self) -> (Guarded, Peer) {
        loop {
            match self.accepted.next().await {
                Some(Ok(io)) => {
                    let peer = io
                        .connect_info()
                        .remote_addr
                        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
                    return (io, Peer(peer));
                }
                // The stream logs and backs off itself; it never yields an error.
                Some(Err(_)) => continue,
                None => std::future::pending::<()>().await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Peer> {
        Ok(Peer(self.local))
    }
}

/// The HTTP routes over `shared`.
pub(super) fn router(shared: Arc<Shared>) -> axum::Router {
    api::router(shared)
}
