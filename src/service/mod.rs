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
use crate::verify::Context;
use config::{Config, Role};
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

/// One request on its way to the audit log: what its record says before the outcome, and
/// the deadline it must meet. Every call ends in exactly one record: [`Call::record`] for an
/// answer, [`Call::reject`] for an error, or, when the handler is dropped unanswered (the
/// caller cancelled or went away, or tonic gave up at the caller's `grpc-timeout`), a
/// record of that, written as the call is dropped.
struct Call {
    shared: Arc<Shared>,
    method: String,
    peer: String,
    principal: String,
    document: Option<(String, u64)>,
    metadata: audit::Metadata,
    /// The shorter of the caller's `grpc-timeout` and `request_timeout_seconds`.
    deadline: tokio::time::Instant,
    /// Whether the deadline is the caller's (shorter than the service's limit).
    callers_deadline: bool,
    recorded: bool,
}

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
            metadata: audit::Metadata::default(),
            deadline: tokio::time::Instant::now() + timeout,
            callers_deadline,
            recorded: false,
        }
    }

    fn authenticate<T>(&self, request: &Request<T>) -> Result<Principal, Status> {
        let config = &self.shared.config;
        if config.no_auth {
            return Ok(Principal {
                name: "anonymous".into(),
                roles: vec![Role::Admin],
            });
        }
        if let Some(value) = request.metadata().get("authorization") {
            let token = value
                .to_str()
                .ok()
                .and_then(|v| {
                    v.strip_prefix("Bearer ")
                        .or_else(|| v.strip_prefix("bearer "))
                })
                .ok_or_else(|| {
                    Status::unauthenticated("the authorization header is not \"Bearer <token>\"")
                })?;
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
                .ok_or_else(|| Status::unauthenticated("the bearer token is not known"));
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
                .ok_or_else(|| {
                    Status::permission_denied(format!(
                        "the client certificate {subject} has no roles in [[auth.certificates]]"
                    ))
                });
        }
        Err(Status::unauthenticated(
            "no credentials: send \"authorization: Bearer <token>\"",
        ))
    }

    /// Authenticates the caller and checks it holds `role`; also checks the request's
    /// `grpc-timeout` reads as one.
    fn authorize<T>(&mut self, request: &Request<T>, role: Role) -> Result<Principal, Status> {
        let principal = self.authenticate(request)?;
        self.principal = principal.name.clone();
        if !principal.may(role) {
            let needed = match role {
                Role::Verifier => "verifier",
                Role::Auditor => "auditor",
                Role::Admin => "admin",
            };
            return Err(Status::permission_denied(format!(
                "{} may not call {}: it needs the {needed} role",
                principal.name, self.method
            )));
        }
        if let Some(v) = request.metadata().get("grpc-timeout") {
            if v.to_str().ok().and_then(grpc_timeout).is_none() {
                return Err(Status::invalid_argument(format!(
                    "the grpc-timeout header {v:?} is not 1 to 8 digits and a unit (H, M, S, m, u, n)"
                )));
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
        Entry {
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
        }
    }

    /// Records a rejected request and returns its status.
    async fn reject(mut self, status: Status) -> Status {
        let mut entry = self.entry();
        entry.error = Some(format!("{:?}: {}", status.code(), status.message()));
        // The caller gets the rejection even if the log cannot take it; the log's own
        // failure is what an operator sees in the next accepted request.
        let _ = self.shared.audit.append(entry).await;
        status
    }

    /// Records an answered request, after `fill` has added its outcome; its id, once
    /// committed.
    async fn record(mut self, fill: impl FnOnce(&mut Entry)) -> Result<String, Status> {
        let mut entry = self.entry();
        fill(&mut entry);
        self.shared
            .audit
            .append(entry)
            .await
            .map(|seq| seq.to_string())
            .map_err(|e| {
                Status::unavailable(format!("the audit log cannot record the answer: {e}"))
            })
    }

    fn check_document(&self, document: &[u8]) -> Result<(), Status> {
        let limit = self.shared.config.max_document_bytes;
        if document.is_empty() {
            return Err(Status::invalid_argument("the document is empty"));
        }
        if document.len() > limit {
            return Err(Status::resource_exhausted(format!(
                "the document has {} bytes; this service accepts at most {limit}",
                document.len(),
            )));
        }
        Ok(())
    }

    fn deadline_exceeded(&self, waiting_for: &str) -> Status {
        let limit = self.shared.config.request_timeout_seconds.max(1);
        Status::deadline_exceeded(if self.callers_deadline {
            format!(
                "the caller's deadline (grpc-timeout) passed while {waiting_for}; this \
                 service allows up to {limit} s"
            )
        } else {
            format!(
                "this service's limit of {limit} s per request (request_timeout_seconds) \
                 passed while {waiting_for}"
            )
        })
    }

    /// Runs `work` on the blocking pool, at most `max_concurrent_verifications` at once,
    /// within the call's deadline.
    async fn cpu<R: Send + 'static>(
        &self,
        work: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, Status> {
        let permit =
            tokio::time::timeout_at(self.deadline, self.shared.cpu.clone().acquire_owned())
                .await
                .map_err(|_| self.deadline_exceeded("it waited for a free worker"))?
                .map_err(|_| Status::unavailable("the service is shutting down"))?;
        let job = tokio::task::spawn_blocking(move || {
            let answer = work();
            drop(permit);
            answer
        });
        tokio::time::timeout_at(self.deadline, job)
            .await
            .map_err(|_| self.deadline_exceeded("kyso was working on it"))?
            .map_err(|e| Status::internal(format!("the work failed unexpectedly: {e}")))
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
        self.shared.audit.append_detached(entry);
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

/// Verifies and records: the shared tail of the two verify calls.
async fn verify_and_record(
    mut call: Call,
    document: bytes::Bytes,
    options: Option<proto::VerifyOptions>,
) -> Result<Response<proto::VerifyDocumentResponse>, Status> {
    if let Err(status) = call.check_document(&document) {
        call.document = Some((sha256_hex(&document), document.len() as u64));
        return Err(call.reject(status).await);
    }
    // The report carries the document's SHA-256; hash here only if it cannot be read.
    let size = document.len() as u64;
    let options = options.unwrap_or_default();
    let mut ctx = if options.trust_profile.is_empty() {
        call.shared.context.clone()
    } else if let Some(c) = call.shared.profiles.get(&options.trust_profile) {
        c.clone()
    } else {
        let known: Vec<&str> = call.shared.profiles.keys().map(String::as_str).collect();
        let status = Status::invalid_argument(format!(
            "unknown trust profile {:?}; this service has: {}",
            options.trust_profile,
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        ));
        call.document = Some((sha256_hex(&document), size));
        return Err(call.reject(status).await);
    };
    ctx.now = OffsetDateTime::now_utc();
    ctx.at = options
        .validation_time
        .as_ref()
        .and_then(convert::from_timestamp);
    if !options.policy.is_empty() {
        match options.policy.parse() {
            Ok(p) => ctx.policy.choice = p,
            Err(e) => {
                call.document = Some((sha256_hex(&document), size));
                return Err(call.reject(Status::invalid_argument(e.to_string())).await);
            }
        }
    }
    if let Some(e) = proto::ExpectedProfile::try_from(options.expect)
        .ok()
        .and_then(convert::from_expected)
    {
        ctx.policy.expect = e;
    }
    let lang = if options.locale == proto::Locale::En as i32 {
        Lang::En
    } else {
        Lang::Vi
    };
    let sha = sha256_hex_lazily(&document);
    let outcome = call
        .cpu(move || crate::verify(&document, &ctx).map_err(|e| (e, sha256_hex(&document))))
        .await;
    let report = match outcome {
        Ok(Ok(r)) => r,
        Ok(Err((e, sha))) => {
            call.document = Some((sha, size));
            let status = Status::invalid_argument(format!("the document cannot be evaluated: {e}"));
            return Err(call.reject(status).await);
        }
        Err(status) => {
            call.document = Some((sha(), size));
            return Err(call.reject(status).await);
        }
    };
    call.document = Some((report.sha256.clone(), size));
    let id = call
        .record(|entry| {
            entry.signatures = Entry::summarize(&report);
            entry.verdict = audit::name(&report.verdict);
            entry.policy = report.policy.as_ref().map(audit::PolicySummary::of);
            entry.trust_fingerprint = report.trust_fingerprint.clone();
        })
        .await?;
    Ok(Response::new(proto::VerifyDocumentResponse {
        summary: render_text(&report, "", lang),
        report: Some(convert::report(&report)),
        audit_record_id: id,
    }))
}

/// The document's SHA-256, computed only if asked for (the report usually carries it).
fn sha256_hex_lazily(document: &bytes::Bytes) -> impl FnOnce() -> String {
    let document = document.clone();
    move || sha256_hex(&document)
}

#[tonic::async_trait]
impl VerificationService for Verification {
    async fn verify_document(
        &self,
        request: Request<proto::VerifyDocumentRequest>,
    ) -> Result<Response<proto::VerifyDocumentResponse>, Status> {
        let mut call = Call::new(&self.0, &request, VERIFY);
        if let Err(status) = call.authorize(&request, Role::Verifier) {
            return Err(call.reject(status).await);
        }
        let req = request.into_inner();
        call.metadata = convert::metadata(req.metadata);
        verify_and_record(call, req.document, req.options).await
    }

    async fn verify_document_stream(
        &self,
        request: Request<tonic::Streaming<proto::VerifyDocumentChunk>>,
    ) -> Result<Response<proto::VerifyDocumentResponse>, Status> {
        let mut call = Call::new(&self.0, &request, VERIFY_STREAM);
        if let Err(status) = call.authorize(&request, Role::Verifier) {
            return Err(call.reject(status).await);
        }
        let limit = call.shared.config.max_document_bytes;
        let mut stream = request.into_inner();
        let mut document = Vec::new();
        let mut options = None;
        let mut first = true;
        loop {
            let chunk = match tokio::time::timeout_at(call.deadline, stream.next()).await {
                Ok(Some(Ok(c))) => c,
                Ok(None) => break,
                Ok(Some(Err(status))) => return Err(call.reject(status).await),
                Err(_) => {
                    let status = call.deadline_exceeded("the document was still arriving");
                    return Err(call.reject(status).await);
                }
            };
            if first {
                call.metadata = convert::metadata(chunk.metadata);
                options = chunk.options;
                first = false;
            }
            if document.len() + chunk.data.len() > limit {
                let status = Status::resource_exhausted(format!(
                    "the document is over {limit} bytes, the most this service accepts"
                ));
                return Err(call.reject(status).await);
            }
            document.extend_from_slice(&chunk.data);
        }
        verify_and_record(call, document.into(), options).await
    }

    async fn extract_signatures(
        &self,
        request: Request<proto::ExtractSignaturesRequest>,
    ) -> Result<Response<proto::ExtractSignaturesResponse>, Status> {
        let mut call = Call::new(&self.0, &request, EXTRACT);
        if let Err(status) = call.authorize(&request, Role::Verifier) {
            return Err(call.reject(status).await);
        }
        let req = request.into_inner();
        call.metadata = convert::metadata(req.metadata);
        let size = req.document.len() as u64;
        let sha = sha256_hex_lazily(&req.document);
        if let Err(status) = call.check_document(&req.document) {
            call.document = Some((sha(), size));
            return Err(call.reject(status).await);
        }
        let document = req.document;
        let done = call
            .cpu(move || {
                let parsed = crate::pdf::PdfFile::parse(&document)
                    .map(|pdf| (extracted(&pdf), pdf.revisions.len()));
                (sha256_hex(&document), parsed)
            })
            .await;
        let (sha256, parsed) = match done {
            Ok(d) => d,
            Err(status) => {
                call.document = Some((sha(), size));
                return Err(call.reject(status).await);
            }
        };
        call.document = Some((sha256.clone(), size));
        let ((signatures, unsigned_fields), revisions) = match parsed {
            Ok(p) => p,
            Err(e) => {
                let status = Status::invalid_argument(format!("the document cannot be read: {e}"));
                return Err(call.reject(status).await);
            }
        };
        let id = call.record(|_| {}).await?;
        Ok(Response::new(proto::ExtractSignaturesResponse {
            sha256,
            revisions: revisions as u32,
            signatures,
            unsigned_fields,
            audit_record_id: id,
        }))
    }

    async fn get_signed_revision(
        &self,
        request: Request<proto::GetSignedRevisionRequest>,
    ) -> Result<Response<proto::GetSignedRevisionResponse>, Status> {
        let mut call = Call::new(&self.0, &request, SIGNED_REVISION);
        if let Err(status) = call.authorize(&request, Role::Verifier) {
            return Err(call.reject(status).await);
        }
        let req = request.into_inner();
        call.metadata = convert::metadata(req.metadata);
        let size = req.document.len() as u64;
        let sha = sha256_hex_lazily(&req.document);
        if let Err(status) = call.check_document(&req.document) {
            call.document = Some((sha(), size));
            return Err(call.reject(status).await);
        }
        if req.signature == 0 {
            call.document = Some((sha(), size));
            let status = Status::invalid_argument("signature numbers start at 1");
            return Err(call.reject(status).await);
        }
        let (document, number) = (req.document, req.signature as usize);
        let done = call
            .cpu(move || {
                let signed =
                    crate::signed_version(&document, number).map(|b| (b.to_vec(), sha256_hex(b)));
                (sha256_hex(&document), signed)
            })
            .await;
        let (document_sha256, signed) = match done {
            Ok(d) => d,
            Err(status) => {
                call.document = Some((sha(), size));
                return Err(call.reject(status).await);
            }
        };
        call.document = Some((document_sha256, size));
        let (signed_revision, sha256) = match signed {
            Ok(s) => s,
            Err(e) => {
                let status = match e {
                    crate::ExtractError::NoSuchSignature { .. } => Status::not_found(e.to_string()),
                    e => Status::invalid_argument(e.to_string()),
                };
                return Err(call.reject(status).await);
            }
        };
        let id = call.record(|_| {}).await?;
        Ok(Response::new(proto::GetSignedRevisionResponse {
            sha256,
            signed_revision,
            audit_record_id: id,
        }))
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
        let mut call = Call::new(&self.0, &request, "/kyso.v1.AuditService/QueryRecords");
        if let Err(status) = call.authorize(&request, Role::Auditor) {
            return Err(call.reject(status).await);
        }
        let r = request.into_inner();
        let limit = match r.page_size {
            0 => 50,
            n => n.min(1000) as usize,
        };
        let before = match r.page_token.as_str() {
            "" => None,
            t => match t.parse::<u64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    let status = Status::invalid_argument("the page token is not one kyso gave");
                    return Err(call.reject(status).await);
                }
            },
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
        let found = call.cpu(move || store.query(&query)).await;
        let mut records = match found {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return Err(call.reject(Status::unavailable(e.to_string())).await),
            Err(status) => return Err(call.reject(status).await),
        };
        let next_page_token = if records.len() > limit {
            records.truncate(limit);
            records
                .last()
                .map(|r| r.sequence.to_string())
                .unwrap_or_default()
        } else {
            String::new()
        };
        call.record(|_| {}).await?;
        Ok(Response::new(proto::QueryRecordsResponse {
            records: records.iter().map(convert::record).collect(),
            next_page_token,
        }))
    }

    async fn get_record(
        &self,
        request: Request<proto::GetRecordRequest>,
    ) -> Result<Response<proto::AuditRecord>, Status> {
        let mut call = Call::new(&self.0, &request, "/kyso.v1.AuditService/GetRecord");
        if let Err(status) = call.authorize(&request, Role::Auditor) {
            return Err(call.reject(status).await);
        }
        let id = request.into_inner().id;
        let Ok(sequence) = id.parse::<u64>() else {
            let status = Status::invalid_argument(format!("{id:?} is not a record id"));
            return Err(call.reject(status).await);
        };
        let store = call.shared.audit.store().clone();
        let found = match call.cpu(move || store.get(sequence)).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return Err(call.reject(Status::unavailable(e.to_string())).await),
            Err(status) => return Err(call.reject(status).await),
        };
        let Some(record) = found else {
            return Err(call
                .reject(Status::not_found(format!("no record {id}")))
                .await);
        };
        call.record(|_| {}).await?;
        Ok(Response::new(convert::record(&record)))
    }

    async fn verify_log(
        &self,
        request: Request<proto::VerifyLogRequest>,
    ) -> Result<Response<proto::VerifyLogResponse>, Status> {
        let mut call = Call::new(&self.0, &request, "/kyso.v1.AuditService/VerifyLog");
        if let Err(status) = call.authorize(&request, Role::Auditor) {
            return Err(call.reject(status).await);
        }
        let r = request.into_inner();
        let kept = match r
            .kept_checkpoints
            .iter()
            .map(convert::from_checkpoint)
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(k) => k,
            Err(e) => return Err(call.reject(Status::invalid_argument(e.to_string())).await),
        };
        let shared = call.shared.clone();
        let to = (r.to_sequence > 0).then_some(r.to_sequence);
        let checked = call
            .cpu(move || {
                audit::verify_log(
                    shared.audit.store().as_ref(),
                    shared.audit.key().public_key(),
                    r.from_sequence,
                    to,
                    &kept,
                )
            })
            .await;
        let check = match checked {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(call.reject(Status::unavailable(e.to_string())).await),
            Err(status) => return Err(call.reject(status).await),
        };
        call.record(|_| {}).await?;
        Ok(Response::new(proto::VerifyLogResponse {
            ok: check.ok,
            records_checked: check.records_checked,
            checkpoints_checked: check.checkpoints_checked,
            first_bad_sequence: check.first_bad_sequence,
            problem: check.problem,
        }))
    }

    async fn get_checkpoint(
        &self,
        request: Request<proto::GetCheckpointRequest>,
    ) -> Result<Response<proto::Checkpoint>, Status> {
        let mut call = Call::new(&self.0, &request, "/kyso.v1.AuditService/GetCheckpoint");
        if let Err(status) = call.authorize(&request, Role::Auditor) {
            return Err(call.reject(status).await);
        }
        let store = call.shared.audit.store().clone();
        let cp = match call.cpu(move || store.latest_checkpoint()).await {
            Ok(Ok(cp)) => cp,
            Ok(Err(e)) => return Err(call.reject(Status::unavailable(e.to_string())).await),
            Err(status) => return Err(call.reject(status).await),
        };
        let Some(cp) = cp else {
            let status = Status::not_found("no checkpoint has been signed yet");
            return Err(call.reject(status).await);
        };
        let public_key_pem = call.shared.audit.key().public_key_pem();
        call.record(|_| {}).await?;
        Ok(Response::new(convert::checkpoint(&cp, public_key_pem)))
    }
}

/// The verification context the configuration describes.
pub fn context(config: &Config) -> Result<Context, ServeError> {
    Ok(Context::from_settings(
        &config.settings(),
        OffsetDateTime::now_utc(),
    )?)
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
            context: Context::new(
                crate::trust::TrustStore::default(),
                OffsetDateTime::now_utc(),
            ),
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
