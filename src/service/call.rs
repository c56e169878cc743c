//! One call to the service, from its authorisation to its record: what every handler
//! shares ([`Shared`]), who calls ([`Principal`]), and the [`Call`] that carries a request
//! to its single audit record on every path.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::Semaphore;
use tonic::{Request, Response, Status};

use super::config::{Config, Role};
use super::error::Refusal;
use crate::audit::{self, AuditLog, Entry};
use crate::verify::Context;

/// In a request's extensions: set once a kyso handler has taken the request.
#[derive(Clone, Default)]
pub(super) struct Handled(Arc<AtomicBool>);

impl Handled {
    pub(super) fn mark(&self) {
        self.0.store(true, Ordering::Release);
    }

    pub(super) fn is_marked(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// What every request handler shares.
pub(super) struct Shared {
    pub(super) config: Config,
    pub(super) context: Context,
    /// The context of each trust profile of the trust store, by name: `context` with that
    /// profile's certificates added, for requests that choose one.
    pub(super) profiles: std::collections::BTreeMap<String, Context>,
    pub(super) audit: AuditLog,
    /// One permit per byte of request bodies held ([`Config::max_request_bytes_in_flight`]).
    pub(super) request_bytes: Arc<Semaphore>,
    /// Permits for CPU work; a permit stays with its work until the work ends, even if the
    /// request it served has already been answered (deadline) or abandoned.
    pub(super) cpu: Arc<Semaphore>,
    /// Permits for page renders, fewer than [`Shared::cpu`]'s: the renderer cannot be
    /// stopped once it runs, so renders a hostile page keeps busy past their deadline never
    /// hold every worker, and verifications go on.
    pub(super) renders: Arc<Semaphore>,
}

/// The render permits beside `workers` CPU permits: half of them, at least one.
pub(super) fn render_permits(workers: usize) -> usize {
    (workers / 2).max(1)
}

/// Who is calling, with which roles.
#[derive(Debug, Clone)]
pub(super) struct Principal {
    pub(super) name: String,
    pub(super) roles: Vec<Role>,
}

impl Principal {
    pub(super) fn may(&self, role: Role) -> bool {
        self.roles.contains(&role) || self.roles.contains(&Role::Admin)
    }
}

/// What a verification adds to its record.
pub(super) struct Outcome {
    pub(super) signatures: Vec<audit::SignatureSummary>,
    pub(super) verdict: String,
    pub(super) policy: Option<audit::PolicySummary>,
    pub(super) trust_fingerprint: String,
}

/// One request on its way to the audit log: what its record says before the outcome, and
/// the deadline it must meet. Every call ends in exactly one record: [`Call::run`] records
/// the answer or the refusal; when the handler is dropped unanswered (the caller cancelled
/// or went away, or tonic gave up at the caller's `grpc-timeout`), the call records that as
/// it is dropped.
pub(super) struct Call {
    pub(super) shared: Arc<Shared>,
    pub(super) method: String,
    pub(super) peer: String,
    pub(super) principal: String,
    /// The document's SHA-256 and size, once known.
    pub(super) document: Option<(String, u64)>,
    /// The document as received, until its hash is known: a refusal hashes it for its
    /// record on the blocking pool, never on the reactor.
    pub(super) received: Option<bytes::Bytes>,
    pub(super) metadata: audit::Metadata,
    pub(super) outcome: Option<Outcome>,
    /// The shorter of the caller's `grpc-timeout` and `request_timeout_seconds`.
    pub(super) deadline: tokio::time::Instant,
    /// Whether the deadline is the caller's (shorter than the service's limit).
    pub(super) callers_deadline: bool,
    pub(super) recorded: bool,
    /// Whether the answer carries its record's receipt.
    receipt_wanted: bool,
    /// Bytes of the request's body held against the service's budget, until the call ends.
    pub(super) held: Option<tokio::sync::OwnedSemaphorePermit>,
    /// When the call began, for its log line and its duration metric.
    started: std::time::Instant,
    /// Whether a handler of the API serves the call (its method is one of the API's).
    handled_method: bool,
}

/// What a finished call's log line and metrics say, taken from its record before the log
/// takes the record.
struct Finished {
    principal: String,
    method: String,
    document_sha256: Option<String>,
    verdict: String,
    started: std::time::Instant,
    known: bool,
}

impl Finished {
    fn of(entry: &Entry, call: &Call) -> Finished {
        Finished {
            principal: entry.principal.clone(),
            method: entry.method.clone(),
            document_sha256: entry.document_sha256.clone(),
            verdict: entry.verdict.clone(),
            started: call.started,
            known: call.handled_method,
        }
    }

    /// One line on the log (target `kyso::request`) and the request metrics: the status
    /// is the gRPC code name, the same over HTTP.
    fn report(self, status: &'static str, audit_record_id: Option<u64>) {
        let seconds = self.started.elapsed().as_secs_f64();
        tracing::info!(
            target: "kyso::request",
            principal = %self.principal,
            method = %self.method,
            status,
            duration_ms = (seconds * 1000.0) as u64,
            document_sha256 = self.document_sha256.as_deref().unwrap_or(""),
            verdict = %self.verdict,
            audit_record_id = audit_record_id.map(|i| i.to_string()).unwrap_or_default(),
            "request"
        );
        // Only the API's own methods and routes are labels; a path a caller makes up (an
        // unknown route or gRPC method) is `other`, so that callers cannot grow the metrics.
        let method = if self.known {
            self.method
        } else {
            "other".to_owned()
        };
        metrics::counter!(
            "kyso_requests_total",
            "method" => method.clone(),
            "status" => status
        )
        .increment(1);
        metrics::histogram!("kyso_request_duration_seconds", "method" => method).record(seconds);
        if !self.verdict.is_empty() {
            metrics::counter!("kyso_verdicts_total", "verdict" => self.verdict).increment(1);
        }
    }
}

/// A refused call: what a gRPC caller is told, and the HTTP status an HTTP caller gets.
#[derive(Debug)]
pub(super) struct Refused {
    pub(super) status: Status,
    pub(super) http: http::StatusCode,
}

/// A handler's answer, given the record that holds it.
pub(super) type Answer<R> = Box<dyn FnOnce(Recorded) -> R + Send>;

/// The record of an answered call, as its answer names it.
pub(crate) struct Recorded {
    /// The record's public id.
    pub(crate) id: String,
    /// Its receipt, for calls that asked for one ([`Call::want_receipt`]).
    pub(crate) receipt: Option<crate::audit::tree::InclusionProof>,
}

/// A handler's body: what it does with the request once the caller is authorised.
pub(super) type Body<'a, R> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Answer<R>, Refusal>> + Send + 'a>>;

impl Call {
    pub(super) fn new<T>(shared: &Arc<Shared>, request: &Request<T>, method: &str) -> Call {
        if let Some(handled) = request.extensions().get::<Handled>() {
            handled.mark();
        }
        let limit = Duration::from_secs(shared.config.request_timeout_seconds.max(1));
        let asked = request
            .metadata()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(grpc_timeout);
        let callers_deadline = asked.is_some_and(|t| t < limit);
        let timeout = asked.map_or(limit, |t| t.min(limit));
        Call {
            shared: shared.clone(),
            method: method.to_owned(),
            peer: request
                .remote_addr()
                .map_or_else(|| "unknown".into(), |a| a.to_string()),
            principal: String::new(),
            document: None,
            received: None,
            metadata: audit::Metadata::default(),
            outcome: None,
            deadline: tokio::time::Instant::now() + timeout,
            callers_deadline,
            recorded: false,
            receipt_wanted: false,
            held: None,
            started: std::time::Instant::now(),
            handled_method: false,
        }
    }

    /// Authorises the call for `role`, runs `body`, and records the outcome on every path:
    /// the answer once its record is committed, else the refusal.
    pub(super) async fn run<T, R>(
        shared: &Arc<Shared>,
        request: Request<T>,
        method: &str,
        role: Role,
        body: impl for<'a> FnOnce(&'a mut Call, T) -> Body<'a, R>,
    ) -> Result<Response<R>, Status> {
        let (metadata, extensions, message) = request.into_parts();
        let seen = Request::from_parts(metadata, extensions, ());
        Call::answer(shared, &seen, message, method, Some(role), body)
            .await
            .map(Response::new)
            .map_err(|refused| refused.status)
    }

    /// What [`Call::run`] does whatever the protocol: `seen` carries the caller's headers
    /// and address (an HTTP request's as well as a gRPC call's), `message` what the body
    /// works on; `role` `None` lets any authenticated caller in. A refusal comes back with
    /// the HTTP status it has.
    pub(super) async fn answer<T, R>(
        shared: &Arc<Shared>,
        seen: &Request<()>,
        message: T,
        method: &str,
        role: Option<Role>,
        body: impl for<'a> FnOnce(&'a mut Call, T) -> Body<'a, R>,
    ) -> Result<R, Refused> {
        let mut call = Call::new(shared, seen, method);
        call.handled_method = true;
        let outcome = match call.authorize(seen, role) {
            Ok(_) => body(&mut call, message).await,
            Err(refusal) => Err(refusal),
        };
        match outcome {
            Ok(answer) => match call.record().await {
                Ok(id) => Ok(answer(id)),
                Err(status) => Err(Refused {
                    http: http::StatusCode::SERVICE_UNAVAILABLE,
                    status,
                }),
            },
            Err(refusal) => {
                let http = refusal.http_status();
                let status = call.reject(refusal).await;
                Err(Refused { status, http })
            }
        }
    }

    /// Records `refusal` for a request no handler serves (an unknown HTTP route): the
    /// caller's credentials are checked first, so an unauthenticated caller learns nothing
    /// of the routes.
    pub(super) async fn refuse(
        shared: &Arc<Shared>,
        seen: &Request<()>,
        method: &str,
        refusal: Refusal,
    ) -> Refused {
        let mut call = Call::new(shared, seen, method);
        let refusal = match call.authorize(seen, None) {
            Ok(_) => refusal,
            Err(why) => why,
        };
        let http = refusal.http_status();
        let status = call.reject(refusal).await;
        Refused { status, http }
    }

    pub(super) fn authenticate<T>(&self, request: &Request<T>) -> Result<Principal, Refusal> {
        let config = &self.shared.config;
        if config.no_auth {
            return Ok(Principal {
                name: "anonymous".into(),
                roles: vec![Role::Admin],
            });
        }
        if let Some(value) = request.metadata().get("authorization") {
            // The scheme is matched without case and the token without surrounding blanks
            // (RFC 9110 §11.1: the scheme is case-insensitive).
            let token = value
                .to_str()
                .ok()
                .and_then(|v| {
                    let (scheme, token) = v.trim().split_once(' ')?;
                    scheme.eq_ignore_ascii_case("bearer").then_some(token)
                })
                .ok_or(Refusal::MalformedAuthorization)?;
            let digest = hex::encode(openssl::sha::sha256(token.trim().as_bytes()));
            return config
                .auth
                .tokens
                .iter()
                .find(|t| t.sha256.eq_ignore_ascii_case(&digest))
                .map(|t| Principal {
                    name: t.principal.clone(),
                    roles: t.roles.clone(),
                })
                .ok_or(Refusal::UnknownToken);
        }
        if let Some(subject) = client_subject(request) {
            return config
                .auth
                .certificates
                .iter()
                .find(|c| c.subject == subject)
                .map(|c| Principal {
                    name: subject.clone(),
                    roles: c.roles.clone(),
                })
                .ok_or(Refusal::UnknownClientCertificate { subject });
        }
        Err(Refusal::NoCredentials)
    }

    /// Authenticates the caller and checks it holds `role`; also checks the request's
    /// `grpc-timeout` reads as one.
    pub(super) fn authorize<T>(
        &mut self,
        request: &Request<T>,
        role: Option<Role>,
    ) -> Result<Principal, Refusal> {
        let principal = self.authenticate(request)?;
        self.principal = principal.name.clone();
        if let Some(role) = role.filter(|r| !principal.may(*r)) {
            return Err(Refusal::Forbidden {
                principal: principal.name,
                method: self.method.clone(),
                role: match role {
                    Role::Verifier => "verifier",
                    Role::Auditor => "auditor",
                    Role::Admin => "admin",
                },
            });
        }
        if let Some(v) = request.metadata().get("grpc-timeout") {
            if v.to_str().ok().and_then(grpc_timeout).is_none() {
                return Err(Refusal::BadTimeout {
                    value: String::from_utf8_lossy(v.as_bytes()).into_owned(),
                });
            }
        }
        Ok(principal)
    }

    /// The record's fields so far; the call counts as recorded from here on.
    pub(super) fn entry(&mut self) -> Entry {
        self.recorded = true;
        let (sha, size) = self
            .document
            .take()
            .map_or((None, None), |(s, n)| (Some(s), Some(n)));
        let mut entry = Entry {
            time: OffsetDateTime::now_utc(),
            principal: std::mem::take(&mut self.principal),
            peer: std::mem::take(&mut self.peer),
            method: self.method.clone(),
            document_sha256: sha,
            document_size: size,
            metadata: std::mem::take(&mut self.metadata),
            signatures: Vec::new(),
            verdict: String::new(),
            error: None,
            kyso_version: env!("CARGO_PKG_VERSION").to_owned(),
            trust_fingerprint: self.shared.context.trust.fingerprint(),
            policy: None,
        };
        if let Some(o) = self.outcome.take() {
            entry.signatures = o.signatures;
            entry.verdict = o.verdict;
            entry.policy = o.policy;
            entry.trust_fingerprint = o.trust_fingerprint;
        }
        entry
    }

    /// The SHA-256 of a document received but not yet hashed, computed on the blocking pool.
    pub(super) async fn hash_received(&mut self) {
        if let Some(bytes) = self.received.take() {
            if self.document.is_none() {
                let size = bytes.len() as u64;
                let sha = tokio::task::spawn_blocking(move || sha256_hex(&bytes))
                    .await
                    .unwrap_or_default();
                self.document = Some((sha, size));
            }
        }
    }

    /// Records a refused request and returns what the caller is told.
    pub(super) async fn reject(mut self, refusal: Refusal) -> Status {
        self.hash_received().await;
        let status = Status::from(refusal);
        let mut entry = self.entry();
        entry.error = Some(format!("{:?}: {}", status.code(), status.message()));
        let finished = Finished::of(&entry, &self);
        // The caller gets the refusal even if the log cannot take it; the log's own
        // failure is what an operator sees in the next accepted request.
        let id = self
            .shared
            .audit
            .append(entry)
            .await
            .ok()
            .map(|c| c.sequence);
        finished.report(super::error::code_name(status.code()), id);
        status
    }

    /// Asks for the answer to carry its record's receipt.
    pub(crate) fn want_receipt(&mut self) {
        self.receipt_wanted = true;
    }

    /// Records an answered request; its record (and receipt, if wanted), once committed.
    pub(super) async fn record(mut self) -> Result<Recorded, Status> {
        self.received = None;
        let entry = self.entry();
        let finished = Finished::of(&entry, &self);
        match self.shared.audit.append(entry).await {
            Ok(committed) => {
                finished.report("OK", Some(committed.sequence));
                let id = committed.sequence.to_string();
                let receipt = if self.receipt_wanted {
                    let shared = self.shared.clone();
                    let proven =
                        tokio::task::spawn_blocking(move || shared.audit.receipt(&committed)).await;
                    match proven {
                        Ok(Ok(receipt)) => Some(receipt),
                        // The record is committed and the answer goes out; the receipt can be
                        // had later (GetInclusionProof). What failed is the operator's.
                        Ok(Err(e)) => {
                            tracing::error!(record = %id, error = %super::error::chain(&e), "cannot prove the record for its receipt");
                            None
                        }
                        Err(e) => {
                            tracing::error!(record = %id, error = %e, "the receipt task failed");
                            None
                        }
                    }
                } else {
                    None
                };
                Ok(Recorded { id, receipt })
            }
            Err(e) => {
                finished.report("UNAVAILABLE", None);
                Err(Status::from(Refusal::AuditWrite(e)))
            }
        }
    }

    /// Takes the document of the request: checked against the limits, kept for the record.
    pub(super) fn receive(&mut self, document: &bytes::Bytes) -> Result<(), Refusal> {
        self.received = Some(document.clone());
        let limit = self.shared.config.max_document_bytes;
        if document.is_empty() {
            return Err(Refusal::EmptyDocument);
        }
        if document.len() > limit {
            return Err(Refusal::DocumentTooLarge {
                size: document.len(),
                limit,
            });
        }
        Ok(())
    }

    /// Holds `permits` of the budget of bytes in flight until the call ends.
    pub(super) fn hold(&mut self, permits: tokio::sync::OwnedSemaphorePermit) {
        match self.held.as_mut() {
            Some(held) => held.merge(permits),
            None => self.held = Some(permits),
        }
    }

    /// The document's hash is known (the report or the work carries it).
    pub(super) fn hashed(&mut self, sha256: String, size: u64) {
        self.received = None;
        self.document = Some((sha256, size));
    }

    pub(super) fn deadline_exceeded(&self, waiting_for: &'static str) -> Refusal {
        Refusal::Deadline {
            callers: self.callers_deadline,
            limit_seconds: self.shared.config.request_timeout_seconds.max(1),
            waiting_for,
        }
    }

    /// Runs the page render `work` as [`Call::cpu`] does, holding also one of the render
    /// permits until it ends.
    pub(super) async fn render<R: Send + 'static>(
        &self,
        work: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, Refusal> {
        let permit =
            tokio::time::timeout_at(self.deadline, self.shared.renders.clone().acquire_owned())
                .await
                .map_err(|_| self.deadline_exceeded("it waited for a free renderer"))?
                .map_err(|_| Refusal::ShuttingDown)?;
        self.cpu(move || {
            let answer = work();
            drop(permit);
            answer
        })
        .await
    }

    /// Runs `work` on the blocking pool, at most `max_concurrent_verifications` at once,
    /// within the call's deadline.
    pub(super) async fn cpu<R: Send + 'static>(
        &self,
        work: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, Refusal> {
        let waiting = metrics::gauge!("kyso_work_waiting");
        waiting.increment(1.0);
        let permit =
            tokio::time::timeout_at(self.deadline, self.shared.cpu.clone().acquire_owned()).await;
        waiting.decrement(1.0);
        let permit = permit
            .map_err(|_| self.deadline_exceeded("it waited for a free worker"))?
            .map_err(|_| Refusal::ShuttingDown)?;
        let job = tokio::task::spawn_blocking(move || {
            let running = metrics::gauge!("kyso_work_running");
            running.increment(1.0);
            let answer = work();
            running.decrement(1.0);
            drop(permit);
            answer
        });
        tokio::time::timeout_at(self.deadline, job)
            .await
            .map_err(|_| self.deadline_exceeded("kyso was working on it"))?
            .map_err(Refusal::WorkerFailed)
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        if self.recorded {
            return;
        }
        // The handler was dropped before an answer: tonic enforces the caller's
        // `grpc-timeout` itself (and so does the caller), or the caller cancelled or went
        // away.
        let expired = tokio::time::Instant::now() >= self.deadline;
        let received = self.received.take();
        let mut entry = self.entry();
        entry.error = Some(if expired {
            format!(
                "{:?}: {}",
                tonic::Code::DeadlineExceeded,
                "the caller's deadline passed before the answer"
            )
        } else {
            format!(
                "{:?}: {}",
                tonic::Code::Cancelled,
                "the caller cancelled the request or closed the connection before the answer"
            )
        });
        Finished::of(&entry, self).report(
            if expired {
                "DEADLINE_EXCEEDED"
            } else {
                "CANCELLED"
            },
            None,
        );
        let audit = self.shared.clone();
        match (received, tokio::runtime::Handle::try_current()) {
            // The document's hash is computed on the blocking pool, then the record handed
            // over.
            (Some(bytes), Ok(runtime)) if entry.document_sha256.is_none() => {
                runtime.spawn_blocking(move || {
                    entry.document_size = Some(bytes.len() as u64);
                    entry.document_sha256 = Some(sha256_hex(&bytes));
                    audit.audit.append_detached(entry);
                });
            }
            _ => {
                audit.audit.append_detached(entry);
            }
        }
    }
}

/// A `grpc-timeout` value: at most 8 digits and a unit (gRPC over HTTP/2).
pub(super) fn grpc_timeout(value: &str) -> Option<Duration> {
    let digits = value.get(..value.len().checked_sub(1)?)?;
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match &value[digits.len()..] {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// In an HTTP request's extensions: the subject of the client certificate its TLS
/// connection presented (tonic keeps a gRPC call's certificates itself).
#[derive(Debug, Clone)]
pub(super) struct ClientSubject(pub(super) String);

/// The subject of the client's certificate under mutual TLS.
pub(super) fn client_subject<T>(request: &Request<T>) -> Option<String> {
    if let Some(ClientSubject(subject)) = request.extensions().get::<ClientSubject>() {
        return Some(subject.clone());
    }
    let certs = request.peer_certs()?;
    let der = certs.first()?;
    crate::trust::Certificate::from_der(der.as_ref())
        .ok()
        .map(|c| c.names.subject)
}

pub(super) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(openssl::sha::sha256(bytes))
}

impl Shared {
    /// The context of the trust profile `name` (the default one for an empty name).
    pub(super) fn context(&self, name: &str) -> Result<&Context, Refusal> {
        if name.is_empty() {
            return Ok(&self.context);
        }
        self.profiles.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.profiles.keys().map(String::as_str).collect();
            Refusal::UnknownTrustProfile {
                name: name.to_owned(),
                known: if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                },
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::open_audit;
    use crate::service::VERIFY;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// What the handlers share, with the default configuration, one worker and an audit log
    /// in `dir`.
    fn shared(dir: &std::path::Path) -> Arc<Shared> {
        shared_with(dir, 1)
    }

    /// The same with `workers` workers and their render permits.
    fn shared_with(dir: &std::path::Path, workers: usize) -> Arc<Shared> {
        Arc::new(Shared {
            config: Config::default(),
            context: Context::new(crate::trust::TrustStore::default()),
            profiles: Default::default(),
            audit: open_audit(dir, None, None).expect("audit log"),
            request_bytes: Arc::new(Semaphore::new(256 << 20)),
            cpu: Arc::new(Semaphore::new(workers)),
            renders: Arc::new(Semaphore::new(render_permits(workers))),
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_render_stuck_past_its_deadline_leaves_workers_to_verifications() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let shared = shared_with(dir.path(), 2);
        let (running, peak) = (Arc::default(), Arc::default());
        let hurried = |ms: &str| {
            let mut r = Request::new(());
            r.metadata_mut()
                .insert("grpc-timeout", ms.parse().expect("header value"));
            r
        };
        // A render whose page keeps the renderer busy 400 ms past a 20 ms deadline.
        let started = std::time::Instant::now();
        let call = Call::new(&shared, &hurried("20m"), VERIFY);
        let e = call
            .render(tracked(400, &running, &peak))
            .await
            .expect_err("past its deadline");
        assert_eq!(e.code(), tonic::Code::DeadlineExceeded, "{e}");
        drop(call);
        // Another render waits for the renderer, and gives up at its own deadline.
        let call = Call::new(&shared, &hurried("50m"), VERIFY);
        let e = call
            .render(tracked(10, &running, &peak))
            .await
            .expect_err("no free renderer");
        assert!(e.to_string().contains("free renderer"), "{e}");
        drop(call);
        // A verification still has a worker, at once.
        let call = Call::new(&shared, &Request::new(()), VERIFY);
        call.cpu(tracked(10, &running, &peak))
            .await
            .expect("a free worker");
        assert!(started.elapsed() < Duration::from_millis(300));
        drop(call);
        shared.audit.close();
    }

    /// Work that takes `ms` and notes how many such works run at once.
    fn tracked(ms: u64, running: &Arc<AtomicUsize>, peak: &Arc<AtomicUsize>) -> impl FnOnce() {
        let (running, peak) = (running.clone(), peak.clone());
        move || {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(ms));
            running.fetch_sub(1, Ordering::SeqCst);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn work_past_its_deadline_keeps_its_permit() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let shared = shared(dir.path());
        let (running, peak) = (Arc::default(), Arc::default());

        // The first request gives up after 20 ms; its work goes on for 300 ms.
        let mut hurried = Request::new(());
        hurried
            .metadata_mut()
            .insert("grpc-timeout", "20m".parse().expect("header value"));
        let call = Call::new(&shared, &hurried, VERIFY);
        let started = std::time::Instant::now();
        let e = call
            .cpu(tracked(300, &running, &peak))
            .await
            .expect_err("past its deadline");
        assert_eq!(e.code(), tonic::Code::DeadlineExceeded, "{e}");
        assert!(started.elapsed() < Duration::from_millis(250));
        drop(call);

        // The next waits for that work to end instead of running beside it.
        let call = Call::new(&shared, &Request::new(()), VERIFY);
        call.cpu(tracked(10, &running, &peak))
            .await
            .expect("within the deadline");
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert_eq!(
            peak.load(Ordering::SeqCst),
            1,
            "one permit, one work at a time"
        );
        drop(call);
        shared.audit.close();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_refused_document_is_hashed_off_the_reactor() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let shared = shared(dir.path());
        // A document over the limit, large enough that hashing it takes a while.
        let document = bytes::Bytes::from(vec![7u8; 128 << 20]);
        let started = std::time::Instant::now();
        let expected = sha256_hex(&document);
        let inline = started.elapsed();
        let mut call = Call::new(&shared, &Request::new(()), VERIFY);
        let refusal = call.receive(&document).expect_err("over the limit");
        // On a single-threaded runtime, another task runs only when the refusal yields: at
        // once if the hash is computed on the blocking pool, after it if on the reactor.
        let started = std::time::Instant::now();
        let other = tokio::spawn(async move { started.elapsed() });
        let status = call.reject(refusal).await;
        let waited = other.await.expect("the other task");
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert!(
            waited < inline / 4,
            "the reactor waited {waited:?} for a hash that takes {inline:?}"
        );
        shared.audit.close();
        let record = shared
            .audit
            .store()
            .get(1)
            .expect("readable")
            .expect("the refusal's record");
        assert_eq!(
            record.entry.document_sha256.as_deref(),
            Some(expected.as_str())
        );
        assert_eq!(record.entry.document_size, Some(128 << 20));
    }

    #[test]
    fn grpc_timeouts_read_as_the_protocol_writes_them() {
        for (value, expected) in [
            ("1u", Some(Duration::from_micros(1))),
            ("200m", Some(Duration::from_millis(200))),
            ("30S", Some(Duration::from_secs(30))),
            ("2M", Some(Duration::from_secs(120))),
            ("1H", Some(Duration::from_secs(3600))),
            ("99999999n", Some(Duration::from_nanos(99_999_999))),
            ("123456789S", None),
            ("S", None),
            ("", None),
            ("5x", None),
            ("-5S", None),
            ("5é", None),
            ("soon", None),
        ] {
            assert_eq!(grpc_timeout(value), expected, "{value:?}");
        }
    }
}
