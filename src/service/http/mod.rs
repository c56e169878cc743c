//! The HTTP side of `kyso serve`: a JSON API beside gRPC (`http_listen`), with the same
//! principals, roles, limits, deadlines and audit log. Each API request goes through the
//! same [`Call`] as a gRPC call and ends in exactly one audit record. `/healthz`,
//! `/readyz` and `/metrics` (for load balancers and scrapers), `/api/v1/openapi.json`, and
//! the pages (`/`, `/audit` and their assets, whose API calls carry the token) take no
//! credentials and make no record.
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
mod page;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::serve::{IncomingStream, Listener};
use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tonic::transport::server::Connected as _;

use super::call::Shared;
use super::incoming::Guarded;

/// Where an HTTP request comes from: the peer's address and, under mutual TLS, the subject
/// of its client certificate.
#[derive(Debug, Clone)]
pub(super) struct Peer {
    pub(super) addr: SocketAddr,
    pub(super) client_subject: Option<String>,
}

impl axum::extract::connect_info::Connected<IncomingStream<'_, Connections>> for Peer {
    fn connect_info(stream: IncomingStream<'_, Connections>) -> Peer {
        stream.remote_addr().clone()
    }
}

/// An accepted connection, in the clear or under TLS.
pub(super) enum Stream {
    Plain(Guarded),
    Tls(Box<tokio_rustls::server::TlsStream<Guarded>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, data),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, data),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// How long a TLS handshake may take: 10 s.
const HANDSHAKE_TIME: Duration = Duration::from_secs(10);

/// The connections the HTTP side takes: the same cap, idle timer and accept back-off as
/// the gRPC side's ([`super::incoming`]). Under TLS each handshake runs on its own task
/// (within [`HANDSHAKE_TIME`]), so that a slow one holds up no other connection.
pub(super) struct Connections {
    ready: mpsc::Receiver<(Stream, Peer)>,
    local: SocketAddr,
    accepting: tokio::task::JoinHandle<()>,
}

impl Drop for Connections {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl Connections {
    pub(super) fn new(
        accepted: impl futures_util::Stream<Item = std::io::Result<Guarded>> + Send + 'static,
        local: SocketAddr,
        tls: Option<TlsAcceptor>,
    ) -> Connections {
        let (tx, ready) = mpsc::channel(64);
        let accepting = tokio::spawn(async move {
            let mut accepted = std::pin::pin!(accepted);
            // The stream logs and backs off itself; it never yields an error.
            while let Some(io) = accepted.next().await {
                let Ok(io) = io else { continue };
                let addr = io
                    .connect_info()
                    .remote_addr
                    .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
                match &tls {
                    None => {
                        let peer = Peer {
                            addr,
                            client_subject: None,
                        };
                        if tx.send((Stream::Plain(io), peer)).await.is_err() {
                            return;
                        }
                    }
                    Some(acceptor) => {
                        let (acceptor, tx) = (acceptor.clone(), tx.clone());
                        tokio::spawn(async move {
                            let handshake =
                                tokio::time::timeout(HANDSHAKE_TIME, acceptor.accept(io));
                            let Ok(Ok(stream)) = handshake.await else {
                                return;
                            };
                            let client_subject = stream
                                .get_ref()
                                .1
                                .peer_certificates()
                                .and_then(|c| c.first())
                                .and_then(|der| crate::trust::Certificate::from_der(der).ok())
                                .map(|c| c.names.subject);
                            let peer = Peer {
                                addr,
                                client_subject,
                            };
                            let _ = tx.send((Stream::Tls(Box::new(stream)), peer)).await;
                        });
                    }
                }
            }
        });
        Connections {
            ready,
            local,
            accepting,
        }
    }
}

impl Listener for Connections {
    type Io = Stream;
    type Addr = Peer;

    async fn accept(&mut self) -> (Stream, Peer) {
        match self.ready.recv().await {
            Some(ready) => ready,
            // The accepting task ended: nothing more comes.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Peer> {
        Ok(Peer {
            addr: self.local,
            client_subject: None,
        })
    }
}

/// Why the HTTP side's TLS cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum HttpTlsError {
    /// A PEM file does not hold what it should.
    #[error("{path}: {what}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What it lacks.
        what: String,
    },
    /// rustls refuses the certificates or the key.
    #[error("TLS for HTTP")]
    Rustls(#[from] tokio_rustls::rustls::Error),
    /// The client CA cannot verify clients.
    #[error("TLS for HTTP: the client CA")]
    ClientCa(#[from] tokio_rustls::rustls::server::VerifierBuilderError),
}

/// The TLS of the configuration's `[tls]` for the HTTP side: its certificate and key, its
/// client CA when set (then a client certificate is required, as on the gRPC side), ALPN
/// `h2` and `http/1.1`.
pub(super) fn tls_acceptor(
    cert: (&Path, &[u8]),
    key: (&Path, &[u8]),
    client_ca: Option<(&Path, &[u8])>,
) -> Result<TlsAcceptor, HttpTlsError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    use tokio_rustls::rustls;
    let pem = |path: &Path, what: &str| HttpTlsError::Pem {
        path: path.to_owned(),
        what: what.to_owned(),
    };
    let certs = |(path, bytes): (&Path, &[u8])| {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(bytes)
            .collect::<Result<_, _>>()
            .map_err(|e| pem(path, &format!("not PEM certificates: {e}")))?;
        if certs.is_empty() {
            return Err(pem(path, "no certificate in it"));
        }
        Ok(certs)
    };
    let chain = certs(cert)?;
    let private = PrivateKeyDer::from_pem_slice(key.1)
        .map_err(|e| pem(key.0, &format!("not a PEM private key: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in certs(ca)? {
                roots.add(c)?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(chain, private)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The HTTP routes over `shared`.
pub(super) fn router(shared: Arc<Shared>) -> axum::Router {
    api::router(shared)
}
