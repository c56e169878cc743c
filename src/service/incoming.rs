//! The connections the service takes: at most `max_connections` open at once, each closed
//! after `idle_timeout_seconds` without a byte in either direction, and an accept loop that
//! backs off when `accept` fails (out of file descriptors) instead of spinning.
//!
//! A connection over the cap waits in the kernel's backlog until one closes. HTTP/2
//! keepalive pings (set on the server builder) keep a responsive client's connection, and a
//! long verification's, from counting as idle; a peer that connects and sends nothing (or
//! stops half-way) is closed by the idle timer.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::transport::server::{Connected, TcpConnectInfo};

/// The first pause after a failed `accept`; it doubles up to [`MAX_ACCEPT_BACKOFF`].
const FIRST_ACCEPT_BACKOFF: Duration = Duration::from_millis(5);
/// The longest pause after failed `accept`s: 1 s.
pub const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// The stream of accepted connections tonic serves.
pub(super) fn incoming(
    listener: TcpListener,
    max_connections: usize,
    idle_timeout: Duration,
) -> impl futures_util::Stream<Item = std::io::Result<Guarded>> {
    let slots = Arc::new(Semaphore::new(
        max_connections.clamp(1, Semaphore::MAX_PERMITS),
    ));
    let state = (listener, slots, FIRST_ACCEPT_BACKOFF);
    futures_util::stream::unfold(state, move |(listener, slots, mut backoff)| async move {
        // A slot first: over the cap, connections wait in the backlog.
        let slot = slots.clone().acquire_owned().await.ok()?;
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let guarded = Guarded::new(stream, slot, idle_timeout);
                    return Some((Ok(guarded), (listener, slots, FIRST_ACCEPT_BACKOFF)));
                }
                Err(e) => {
                    // Out of file descriptors, or the peer reset before accept: wait, and
                    // wait longer while it goes on, rather than spin.
                    tracing::warn!(error = %e, pause_ms = backoff.as_millis() as u64, "accept failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_ACCEPT_BACKOFF);
                }
            }
        }
    })
}

/// An accepted connection: its slot under the cap, and its idle timer.
pub(super) struct Guarded {
    inner: TcpStream,
    _slot: OwnedSemaphorePermit,
    idle_timeout: Duration,
    idle: Pin<Box<tokio::time::Sleep>>,
}

impl Guarded {
    fn new(inner: TcpStream, slot: OwnedSemaphorePermit, idle_timeout: Duration) -> Guarded {
        Guarded {
            inner,
            _slot: slot,
            idle_timeout,
            idle: Box::pin(tokio::time::sleep(idle_timeout)),
        }
    }

    /// A byte went one way or the other: the connection is not idle.
    fn active(&mut self) {
        let deadline = tokio::time::Instant::now() + self.idle_timeout;
        self.idle.as_mut().reset(deadline);
    }
}

impl Connected for Guarded {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.inner.connect_info()
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.active();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            // Nothing to read: closed once the connection has been idle for its timeout.
            Poll::Pending => match self.idle.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the connection was idle for idle_timeout_seconds",
                ))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = &written {
            if *n > 0 {
                self.active();
            }
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = &written {
            if *n > 0 {
                self.active();
            }
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
