//! `kyso serve`: the verification core over gRPC (`proto/kyso/v1/`), with every answer
//! recorded in the audit log before it is sent.
//!
//! A thin layer: requests are authenticated (bearer tokens, or a client certificate under
//! mutual TLS), checked, handed to [`crate::verify()`] on the blocking pool behind a
//! semaphore (CPU work never runs on the reactor), and the outcome is appended to the
//! [`AuditLog`]; the response leaves only once its record is committed. Rejected requests
//! are recorded too, with their status.

pub mod config;
pub mod convert;
pub mod error;
pub mod proto;
mod unhandled;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::Semaphore;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status};

use crate::audit::{self, AuditLog, Entry};
use crate::report::{render_text, Lang};
use crate::verify::{Context, Inputs};
use config::{Config, Role};
use error::Refusal;
use proto::audit_service_server::{AuditService, AuditServiceServer};
use proto::verification_service_server::{VerificationService, VerificationServiceServer};

pub use config::ConfigError;

/// Why the service could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("verification settings")]
    Context(#[from] crate::verify::ContextError),
    #[error("trust store")]
    TrustStore(#[from] crate::trust::profiles::ProfileError),
    #[error("audit log")]
    Audit(#[from] audit::AuditError),
    #[error("data directory {path}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS: cannot read {path}")]
    TlsFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS configuration")]
    Tls(#[source] tonic::transport::Error),
    #[error("server reflection")]
    Reflection(#[source] tonic_reflection::server::Error),
    #[error("cannot listen on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the gRPC server failed")]
    Transport(#[source] tonic::transport::Error),
    #[error("the server task ended abnormally")]
    Task(#[source] tokio::task::JoinError),
}

/// The audit database and checkpoint key inside a data directory.
pub fn open_audit(data_dir: &std::path::Path) -> Result<AuditLog, ServeError> {
    std::fs::create_dir_all(data_dir).map_err(|source| ServeError::DataDir {
        path: data_dir.to_owned(),
        source,
    })?;
    let store = audit::sqlite::SqliteStore::open(&data_dir.join("audit.sqlite3"))?;
    let key = audit::CheckpointKey::load_or_create(&data_dir.join("audit-key.pem"))?;
    Ok(AuditLog::start(Arc::new(store), key)?)
}

/// What every request handler shares.
struct Shared {
    config: Config,
    context: Context,
    /// The context of each trust profile of the trust store, by name: `context` with that
    /// profile's certificates added, for requests that choose one.
    profiles: std::collections::BTreeMap<String, Context>,
    audit: AuditLog,
    /// Permits for CPU work; a permit stays with its work until the work ends, even if the
    /// request it served has already been answered (deadline) or abandoned.
    cpu: Arc<Semaphore>,
}

/// Who is calling, with which roles.
#[derive(Debug, Clone)]
struct Principal {
    name: String,
    roles: Vec<Role>,
}

impl Principal {
    fn may(&self, role: Role) -> bool {
        self.roles.contains(&role) || self.roles.contains(&Role::Admin)
    }
}

/// What a verification adds to its record.
struct Outcome {
    signatures: Vec<audit::SignatureSummary>,
    verdict: String,
    policy: Option<audit::PolicySummary>,
    trust_fingerprint: String,
}

/// One request on its way to the audit log: what its record says before the outcome, and
/// the deadline it must meet. Every call ends in exactly one record: [`Call::run`] records
/// the answer or the refusal; when the handler is dropped unanswered (the caller cancelled
/// or went away, or tonic gave up at the caller's `grpc-timeout`), the call records that as
/// it is dropped.
struct Call {
    shared: Arc<Shared>,
    method: String,
    peer: String,
    principal: String,
    /// The document's SHA-256 and size, once known.
    document: Option<(String, u64)>,
    /// The document as received, until its hash is known: a refusal hashes it for its
    /// record on the blocking pool, never on the reactor.
    received: Option<bytes::Bytes>,
    metadata: audit::Metadata,
    outcome: Option<Outcome>,
    /// The shorter of the caller's `grpc-timeout` and `request_timeout_seconds`.
    deadline: tokio::time::Instant,
    /// Whether the deadline is the caller's (shorter than the service's limit).
    callers_deadline: bool,
    recorded: bool,
}

/// A handler's answer, given the id of the record that holds it.
type Answer<R> = Box<dyn FnOnce(String) -> R + Send>;

/// A handler's body: what it does with the request once the caller is authorised.
type Body<'a, R> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Answer<R>, Refusal>> + Send + 'a>>;

impl Call {
    fn new<T>(shared: &Arc<Shared>, request: &Request<T>, method: &str) -> Call {
        if let Some(handled) = request.extensions().get::<unhandled::Handled>() {
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
        }
    }

    /// Authorises the call for `role`, runs `body`, and records the outcome on every path:
    /// the answer once its record is committed, else the refusal.
    async fn run<T, R>(
        shared: &Arc<Shared>,
        request: Request<T>,
        method: &str,
        role: Role,
        body: impl for<'a> FnOnce(&'a mut Call, T) -> Body<'a, R>,
    ) -> Result<Response<R>, Status> {
        let mut call = Call::new(shared, &request, method);
        let outcome = match call.authorize(&request, role) {
            Ok(_) => body(&mut call, request.into_inner()).await,
            Err(refusal) => Err(refusal),
        };
        match outcome {
            Ok(answer) => {
                let id = call.record().await?;
                Ok(Response::new(answer(id)))
            }
            Err(refusal) => Err(call.reject(refusal).await),
        }
    }

    fn authenticate<T>(&self, request: &Request<T>) -> Result<Principal, Refusal> {
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
    fn authorize<T>(&mut self, request: &Request<T>, role: Role) -> Result<Principal, Refusal> {
        let principal = self.authenticate(request)?;
        self.principal = principal.name.clone();
        if !principal.may(role) {
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
    fn entry(&mut self) -> Entry {
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
    async fn hash_received(&mut self) {
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
    async fn reject(mut self, refusal: Refusal) -> Status {
        self.hash_received().await;
        let status = Status::from(refusal);
        let mut entry = self.entry();
        entry.error = Some(format!("{:?}: {}", status.code(), status.message()));
        // The caller gets the refusal even if the log cannot take it; the log's own
        // failure is what an operator sees in the next accepted request.
        let _ = self.shared.audit.append(entry).await;
        status
    }

    /// Records an answered request; its id, once committed.
    async fn record(mut self) -> Result<String, Status> {
        self.received = None;
        let entry = self.entry();
        self.shared
            .audit
            .append(entry)
            .await
            .map(|seq| seq.to_string())
            .map_err(|e| Status::from(Refusal::AuditWrite(e)))
    }

    /// Takes the document of the request: checked against the limits, kept for the record.
    fn receive(&mut self, document: &bytes::Bytes) -> Result<(), Refusal> {
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

    /// The document's hash is known (the report or the work carries it).
    fn hashed(&mut self, sha256: String, size: u64) {
        self.received = None;
        self.document = Some((sha256, size));
    }

    fn deadline_exceeded(&self, waiting_for: &'static str) -> Refusal {
        Refusal::Deadline {
            callers: self.callers_deadline,
            limit_seconds: self.shared.config.request_timeout_seconds.max(1),
            waiting_for,
        }
    }

    /// Runs `work` on the blocking pool, at most `max_concurrent_verifications` at once,
    /// within the call's deadline.
    async fn cpu<R: Send + 'static>(
        &self,
        work: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, Refusal> {
        let permit =
            tokio::time::timeout_at(self.deadline, self.shared.cpu.clone().acquire_owned())
                .await
                .map_err(|_| self.deadline_exceeded("it waited for a free worker"))?
                .map_err(|_| Refusal::ShuttingDown)?;
        let job = tokio::task::spawn_blocking(move || {
            let answer = work();
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
fn grpc_timeout(value: &str) -> Option<Duration> {
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

/// The subject of the client's certificate under mutual TLS.
fn client_subject<T>(request: &Request<T>) -> Option<String> {
    let certs = request.peer_certs()?;
    let der = certs.first()?;
    crate::trust::Certificate::from_der(der.as_ref())
        .ok()
        .map(|c| c.names.subject)
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(openssl::sha::sha256(bytes))
}

#[derive(Clone)]
struct Verification(Arc<Shared>);

#[derive(Clone)]
struct Audit(Arc<Shared>);

const VERIFY: &str = "/kyso.v1.VerificationService/VerifyDocument";
const VERIFY_STREAM: &str = "/kyso.v1.VerificationService/VerifyDocumentStream";
const EXTRACT: &str = "/kyso.v1.VerificationService/ExtractSignatures";
const SIGNED_REVISION: &str = "/kyso.v1.VerificationService/GetSignedRevision";

impl Shared {
    /// The context of the trust profile `name` (the default one for an empty name).
    fn context(&self, name: &str) -> Result<&Context, Refusal> {
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

/// This call's inputs, from the request's options and the clock.
fn inputs(options: &proto::VerifyOptions) -> Result<Inputs, Refusal> {
    Ok(Inputs {
        now: OffsetDateTime::now_utc(),
        at: options
            .validation_time
            .as_ref()
            .and_then(convert::from_timestamp),
        policy: match options.policy.as_str() {
            "" => None,
            name => Some(name.parse()?),
        },
        expect: proto::ExpectedProfile::try_from(options.expect)
            .ok()
            .and_then(convert::from_expected),
    })
}

/// Verifies and notes the outcome: the shared body of the two verify calls.
async fn verify_document(
    call: &mut Call,
    document: bytes::Bytes,
    options: Option<proto::VerifyOptions>,
) -> Result<Answer<proto::VerifyDocumentResponse>, Refusal> {
    call.receive(&document)?;
    let size = document.len() as u64;
    let options = options.unwrap_or_default();
    let inputs = inputs(&options)?;
    call.shared.context(&options.trust_profile)?;
    let (shared, profile) = (call.shared.clone(), options.trust_profile.clone());
    let lang = if options.locale == proto::Locale::En as i32 {
        Lang::En
    } else {
        Lang::Vi
    };
    let report = call
        .cpu(move || {
            let ctx = shared.context(&profile)?;
            crate::verify(&document, ctx, inputs).map_err(|e| Refusal::Unevaluable {
                reason: error::chain(&e),
            })
        })
        .await??;
    call.hashed(report.sha256.clone(), size);
    call.outcome = Some(Outcome {
        signatures: Entry::summarize(&report),
        verdict: audit::name(&report.verdict),
        policy: report.policy.as_ref().map(audit::PolicySummary::of),
        trust_fingerprint: report.trust_fingerprint.clone(),
    });
    Ok(Box::new(move |id| proto::VerifyDocumentResponse {
        summary: render_text(&report, "", lang),
        report: Some(convert::report(&report)),
        audit_record_id: id,
    }))
}

/// Receives a streamed document within the size limit and the call's deadline.
async fn receive_stream(
    call: &mut Call,
    mut stream: tonic::Streaming<proto::VerifyDocumentChunk>,
) -> Result<(bytes::Bytes, Option<proto::VerifyOptions>), Refusal> {
    let limit = call.shared.config.max_document_bytes;
    let mut document = Vec::new();
    let mut options = None;
    let mut first = true;
    loop {
        let chunk = match tokio::time::timeout_at(call.deadline, stream.next()).await {
            Ok(Some(Ok(c))) => c,
            Ok(None) => break,
            Ok(Some(Err(status))) => return Err(Refusal::Transport(status)),
            Err(_) => return Err(call.deadline_exceeded("the document was still arriving")),
        };
        if first {
            call.metadata = convert::metadata(chunk.metadata);
            options = chunk.options;
            first = false;
        }
        if document.len() + chunk.data.len() > limit {
            return Err(Refusal::StreamTooLarge { limit });
        }
        document.extend_from_slice(&chunk.data);
    }
    Ok((document.into(), options))
}

#[tonic::async_trait]
impl VerificationService for Verification {
    async fn verify_document(
        &self,
        request: Request<proto::VerifyDocumentRequest>,
    ) -> Result<Response<proto::VerifyDocumentResponse>, Status> {
        Call::run(&self.0, request, VERIFY, Role::Verifier, |call, req| {
            Box::pin(async move {
                call.metadata = convert::metadata(req.metadata);
                verify_document(call, req.document, req.options).await
            })
        })
        .await
    }

    async fn verify_document_stream(
        &self,
        request: Request<tonic::Streaming<proto::VerifyDocumentChunk>>,
    ) -> Result<Response<proto::VerifyDocumentResponse>, Status> {
        Call::run(
            &self.0,
            request,
            VERIFY_STREAM,
            Role::Verifier,
            |call, stream| {
                Box::pin(async move {
                    let (document, options) = receive_stream(call, stream).await?;
                    verify_document(call, document, options).await
                })
            },
        )
        .await
    }

    async fn extract_signatures(
        &self,
        request: Request<proto::ExtractSignaturesRequest>,
    ) -> Result<Response<proto::ExtractSignaturesResponse>, Status> {
        Call::run(&self.0, request, EXTRACT, Role::Verifier, |call, req| {
            Box::pin(async move {
                call.metadata = convert::metadata(req.metadata);
                call.receive(&req.document)?;
                let size = req.document.len() as u64;
                let document = req.document;
                let (sha256, parsed) = call
                    .cpu(move || {
                        let parsed = crate::pdf::PdfFile::parse(&document)
                            .map(|pdf| (extracted(&pdf), pdf.revisions.len()));
                        (sha256_hex(&document), parsed)
                    })
                    .await?;
                call.hashed(sha256.clone(), size);
                let ((signatures, unsigned_fields), revisions) =
                    parsed.map_err(|e| Refusal::Unreadable {
                        reason: error::chain(&e),
                    })?;
                let answer: Answer<_> = Box::new(move |id| proto::ExtractSignaturesResponse {
                    sha256,
                    revisions: revisions as u32,
                    signatures,
                    unsigned_fields,
                    audit_record_id: id,
                });
                Ok(answer)
            })
        })
        .await
    }

    async fn get_signed_revision(
        &self,
        request: Request<proto::GetSignedRevisionRequest>,
    ) -> Result<Response<proto::GetSignedRevisionResponse>, Status> {
        Call::run(
            &self.0,
            request,
            SIGNED_REVISION,
            Role::Verifier,
            |call, req| {
                Box::pin(async move {
                    call.metadata = convert::metadata(req.metadata);
                    call.receive(&req.document)?;
                    if req.signature == 0 {
                        return Err(Refusal::SignatureZero);
                    }
                    let size = req.document.len() as u64;
                    let (document, number) = (req.document, req.signature as usize);
                    let (document_sha256, signed) = call
                        .cpu(move || {
                            let signed = crate::signed_version(&document, number)
                                .map(|b| (b.to_vec(), sha256_hex(b)));
                            (sha256_hex(&document), signed)
                        })
                        .await?;
                    call.hashed(document_sha256, size);
                    let (signed_revision, sha256) = signed.map_err(|e| match e {
                        crate::ExtractError::NoSuchSignature { .. } => Refusal::NoSuchSignature {
                            reason: e.to_string(),
                        },
                        e => Refusal::Unreadable {
                            reason: error::chain(&e),
                        },
                    })?;
                    let answer: Answer<_> = Box::new(move |id| proto::GetSignedRevisionResponse {
                        sha256,
                        signed_revision,
                        audit_record_id: id,
                    });
                    Ok(answer)
                })
            },
        )
        .await
    }
}

/// The signatures and empty fields of a parsed PDF, as the protocol lists them.
fn extracted(
    pdf: &crate::pdf::PdfFile,
) -> (Vec<proto::ExtractedSignature>, Vec<proto::UnsignedField>) {
    let signatures = pdf
        .signatures
        .iter()
        .enumerate()
        .map(|(i, d)| proto::ExtractedSignature {
            number: i as u32 + 1,
            field: d.field.clone(),
            kind: audit::name(&d.kind),
            sub_filter: d.sub_filter.clone(),
            revision: d.revision as u32,
            byte_range: d.byte_range_raw.clone(),
            signing_time: d.m_time.map(convert::timestamp),
            reason: d.reason.clone(),
            location: d.location.clone(),
            name: d.name.clone(),
            certification: d.certification.map(|c| u32::from(c.permissions)),
            contents: d.contents.clone(),
        })
        .collect();
    let unsigned = pdf
        .unsigned_fields
        .iter()
        .map(|u| proto::UnsignedField {
            field: u.field.clone(),
            widget: u.widget.as_ref().map(convert::widget),
        })
        .collect();
    (signatures, unsigned)
}

#[tonic::async_trait]
impl AuditService for Audit {
    async fn query_records(
        &self,
        request: Request<proto::QueryRecordsRequest>,
    ) -> Result<Response<proto::QueryRecordsResponse>, Status> {
        const METHOD: &str = "/kyso.v1.AuditService/QueryRecords";
        Call::run(&self.0, request, METHOD, Role::Auditor, |call, r| {
            Box::pin(async move {
                let limit = match r.page_size {
                    0 => 50,
                    n => n.min(1000) as usize,
                };
                let before = match r.page_token.as_str() {
                    "" => None,
                    t => Some(t.parse::<u64>().map_err(|_| Refusal::BadPageToken)?),
                };
                let query = audit::Query {
                    document_sha256: r.document_sha256,
                    signer_name: r.signer_name,
                    certificate_sha256: r.certificate_sha256,
                    signer_serial: r.signer_serial,
                    organization: r.organization,
                    verdict: r.verdict,
                    caller: r.caller,
                    from: r.from.as_ref().and_then(convert::from_timestamp),
                    to: r.to.as_ref().and_then(convert::from_timestamp),
                    document_number: r.document_number,
                    before,
                    limit: limit + 1,
                };
                let store = call.shared.audit.store().clone();
                let mut records = call
                    .cpu(move || store.query(&query))
                    .await?
                    .map_err(Refusal::AuditRead)?;
                let next_page_token = if records.len() > limit {
                    records.truncate(limit);
                    records
                        .last()
                        .map(|r| r.sequence.to_string())
                        .unwrap_or_default()
                } else {
                    String::new()
                };
                let answer: Answer<_> = Box::new(move |_| proto::QueryRecordsResponse {
                    records: records.iter().map(convert::record).collect(),
                    next_page_token,
                });
                Ok(answer)
            })
        })
        .await
    }

    async fn get_record(
        &self,
        request: Request<proto::GetRecordRequest>,
    ) -> Result<Response<proto::AuditRecord>, Status> {
        const METHOD: &str = "/kyso.v1.AuditService/GetRecord";
        Call::run(&self.0, request, METHOD, Role::Auditor, |call, r| {
            Box::pin(async move {
                let id = r.id;
                let sequence = id
                    .parse::<u64>()
                    .map_err(|_| Refusal::BadRecordId { id: id.clone() })?;
                let store = call.shared.audit.store().clone();
                let record = call
                    .cpu(move || store.get(sequence))
                    .await?
                    .map_err(Refusal::AuditRead)?
                    .ok_or(Refusal::NoRecord { id })?;
                let answer: Answer<_> = Box::new(move |_| convert::record(&record));
                Ok(answer)
            })
        })
        .await
    }

    async fn verify_log(
        &self,
        request: Request<proto::VerifyLogRequest>,
    ) -> Result<Response<proto::VerifyLogResponse>, Status> {
        const METHOD: &str = "/kyso.v1.AuditService/VerifyLog";
        Call::run(&self.0, request, METHOD, Role::Auditor, |call, r| {
            Box::pin(async move {
                let kept = r
                    .kept_checkpoints
                    .iter()
                    .map(convert::from_checkpoint)
                    .collect::<Result<Vec<_>, _>>()?;
                let shared = call.shared.clone();
                let to = (r.to_sequence > 0).then_some(r.to_sequence);
                let check = call
                    .cpu(move || {
                        audit::verify_log(
                            shared.audit.store().as_ref(),
                            shared.audit.key().public_key(),
                            r.from_sequence,
                            to,
                            &kept,
                        )
                    })
                    .await?
                    .map_err(Refusal::AuditRead)?;
                let answer: Answer<_> = Box::new(move |_| proto::VerifyLogResponse {
                    ok: check.ok,
                    records_checked: check.records_checked,
                    checkpoints_checked: check.checkpoints_checked,
                    first_bad_sequence: check.first_bad_sequence,
                    problem: check.problem,
                });
                Ok(answer)
            })
        })
        .await
    }

    async fn get_checkpoint(
        &self,
        request: Request<proto::GetCheckpointRequest>,
    ) -> Result<Response<proto::Checkpoint>, Status> {
        const METHOD: &str = "/kyso.v1.AuditService/GetCheckpoint";
        Call::run(&self.0, request, METHOD, Role::Auditor, |call, _| {
            Box::pin(async move {
                let store = call.shared.audit.store().clone();
                let cp = call
                    .cpu(move || store.latest_checkpoint())
                    .await?
                    .map_err(Refusal::AuditRead)?
                    .ok_or(Refusal::NoCheckpoint)?;
                let public_key_pem = call.shared.audit.key().public_key_pem();
                let answer: Answer<_> = Box::new(move |_| convert::checkpoint(&cp, public_key_pem));
                Ok(answer)
            })
        })
        .await
    }
}

/// The verification context the configuration describes.
pub fn context(config: &Config) -> Result<Context, ServeError> {
    Ok(Context::from_settings(&config.settings())?)
}

/// A running server.
pub struct Running {
    pub addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), ServeError>>,
}

impl Running {
    /// Stops taking requests, lets those in flight finish (and commit their records),
    /// closes the audit log with a final checkpoint.
    pub async fn stop(mut self) -> Result<(), ServeError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.await.map_err(ServeError::Task)?
    }

    /// Waits until the server stops by itself (it does not, but for an error).
    pub async fn wait(self) -> Result<(), ServeError> {
        self.task.await.map_err(ServeError::Task)?
    }

    /// Stops when `signal` completes.
    pub async fn stop_on(
        self,
        signal: impl std::future::Future<Output = ()>,
    ) -> Result<(), ServeError> {
        signal.await;
        self.stop().await
    }
}

/// Binds `config.listen` and starts serving on the current runtime.
pub async fn start(config: Config) -> Result<Running, ServeError> {
    config.validate()?;
    let context = context(&config)?;
    let mut profiles = std::collections::BTreeMap::new();
    let store = config.trust_store();
    for name in store.profiles()? {
        let mut ctx = context.clone();
        // A fresh cache: the shared one stays keyed to the default trust's certificates.
        ctx.cache = Arc::default();
        ctx.trust.extend(store.load(&name)?);
        profiles.insert(name, ctx);
    }
    let audit = open_audit(&config.data_dir)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Listen {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Listen {
        addr: config.listen,
        source,
    })?;
    let workers = match config.max_concurrent_verifications {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    };
    let max_message = config.max_document_bytes.saturating_add(1 << 20);
    // HTTP/2 windows large enough for a typical document in one go: with the default 64 KiB
    // a 100 KB request waits for a window update round trip.
    let mut builder = tonic::transport::Server::builder()
        .initial_stream_window_size(Some(4 << 20))
        .initial_connection_window_size(Some(16 << 20))
        .max_frame_size(Some(1 << 20))
        .concurrency_limit_per_connection(config.max_concurrent_requests_per_connection.max(1));
    if let Some(tls) = &config.tls {
        let read = |path: &PathBuf| {
            std::fs::read(path).map_err(|source| ServeError::TlsFile {
                path: path.clone(),
                source,
            })
        };
        let mut t = tonic::transport::ServerTlsConfig::new().identity(
            tonic::transport::Identity::from_pem(read(&tls.cert)?, read(&tls.key)?),
        );
        if let Some(ca) = &tls.client_ca {
            t = t.client_ca_root(tonic::transport::Certificate::from_pem(read(ca)?));
        }
        builder = builder.tls_config(t).map_err(ServeError::Tls)?;
    }
    let shared = Arc::new(Shared {
        config,
        context,
        profiles,
        audit,
        cpu: Arc::new(Semaphore::new(workers)),
    });
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<VerificationServiceServer<Verification>>()
        .await;
    health.set_serving::<AuditServiceServer<Audit>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(ServeError::Reflection)?;
    let verification = VerificationServiceServer::new(Verification(shared.clone()))
        .max_decoding_message_size(max_message)
        .max_encoding_message_size(max_message);
    let audit_service = AuditServiceServer::new(Audit(shared.clone()))
        .max_decoding_message_size(1 << 20)
        .max_encoding_message_size(64 << 20);
    let recorder = shared.clone();
    let router = builder
        .layer(tower_layer::layer_fn(move |inner| {
            unhandled::RecordUnhandled {
                inner,
                shared: recorder.clone(),
            }
        }))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(verification)
        .add_service(audit_service);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    // Responses are small writes after a large request: without TCP_NODELAY, Nagle's
    // algorithm holds them for the client's delayed acknowledgement.
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let task = tokio::spawn(async move {
        let served = router
            .serve_with_incoming_shutdown(incoming, async {
                let _ = rx.await;
            })
            .await;
        // Every request has been answered, so every record is committed; seal the log.
        let closing = shared.clone();
        let _ = tokio::task::spawn_blocking(move || closing.audit.close()).await;
        served.map_err(ServeError::Transport)
    });
    Ok(Running {
        addr,
        shutdown: Some(tx),
        task,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

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
        let shared = Arc::new(Shared {
            config: Config::default(),
            context: Context::new(crate::trust::TrustStore::default()),
            profiles: Default::default(),
            audit: open_audit(dir.path()).expect("audit log"),
            cpu: Arc::new(Semaphore::new(1)),
        });
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

    #[tokio::test]
    async fn a_failed_server_task_is_not_called_a_tls_error() {
        let join = tokio::spawn(async { panic!("boom") })
            .await
            .expect_err("the task panicked");
        let e = ServeError::Task(join);
        assert_eq!(e.to_string(), "the server task ended abnormally");
        assert!(!e.to_string().contains("TLS"));
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
