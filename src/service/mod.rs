//! `kyso serve`: the verification core over gRPC (`proto/kyso/v1/`), with every answer
//! recorded in the audit log before it is sent.
//!
//! A thin layer: requests are authenticated (bearer tokens, or a client certificate under
//! mutual TLS), checked, handed to [`crate::verify()`] on the blocking pool behind a
//! semaphore (CPU work never runs on the reactor), and the outcome is appended to the
//! [`AuditLog`]; the response leaves only once its record is committed. Rejected requests
//! are recorded too, with their status.

pub mod commands;
pub mod config;
pub mod convert;
pub mod proto;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::Semaphore;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status};

use crate::audit::{self, AuditLog, Entry};
use crate::online::{HttpFetcher, Online};
use crate::report::{render_text, Lang};
use crate::revocation::RevocationData;
use crate::trust::TrustStore;
use crate::verify::{Context, RevocationMode};
use config::{Config, Role};
use proto::audit_service_server::{AuditService, AuditServiceServer};
use proto::verification_service_server::{VerificationService, VerificationServiceServer};

pub use config::ConfigError;

/// Why the service could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("trust configuration: {0}")]
    Trust(#[from] crate::trust::TrustError),
    #[error("revocation data: {0}")]
    Revocation(#[from] crate::revocation::RevocationError),
    #[error(transparent)]
    Audit(#[from] audit::AuditError),
    #[error("data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS: {0}")]
    Tls(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
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
    audit: AuditLog,
    cpu: Semaphore,
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

/// What an audit record says about the request before its outcome.
struct Call {
    method: &'static str,
    peer: String,
    principal: String,
    document: Option<(String, u64)>,
    metadata: audit::Metadata,
}

impl Shared {
    fn authenticate<T>(&self, request: &Request<T>) -> Result<Principal, Status> {
        if self.config.no_auth {
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
            return self
                .config
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
            return self
                .config
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

    fn call<T>(&self, request: &Request<T>, method: &'static str) -> Call {
        Call {
            method,
            peer: request
                .remote_addr()
                .map_or_else(|| "unknown".into(), |a| a.to_string()),
            principal: String::new(),
            document: None,
            metadata: audit::Metadata::default(),
        }
    }

    fn authorize<T>(
        &self,
        request: &Request<T>,
        call: &mut Call,
        role: Role,
    ) -> Result<Principal, Status> {
        let principal = self.authenticate(request)?;
        call.principal = principal.name.clone();
        if !principal.may(role) {
            let needed = match role {
                Role::Verifier => "verifier",
                Role::Auditor => "auditor",
                Role::Admin => "admin",
            };
            return Err(Status::permission_denied(format!(
                "{} may not call {}: it needs the {needed} role",
                principal.name, call.method
            )));
        }
        Ok(principal)
    }

    fn entry(&self, call: Call) -> Entry {
        let (sha, size) = call
            .document
            .map_or((None, None), |(s, n)| (Some(s), Some(n)));
        Entry {
            time: OffsetDateTime::now_utc(),
            principal: call.principal,
            peer: call.peer,
            method: call.method.to_owned(),
            document_sha256: sha,
            document_size: size,
            metadata: call.metadata,
            signatures: Vec::new(),
            verdict: String::new(),
            error: None,
            kyso_version: env!("CARGO_PKG_VERSION").to_owned(),
            trust_fingerprint: self.context.trust.fingerprint(),
        }
    }

    /// Records a rejected request and returns its status.
    async fn reject(&self, call: Call, status: Status) -> Status {
        let mut entry = self.entry(call);
        entry.error = Some(format!("{:?}: {}", status.code(), status.message()));
        // The caller gets the rejection even if the log cannot take it; the log's own
        // failure is what an operator sees in the next accepted request.
        let _ = self.audit.append(entry).await;
        status
    }

    /// Records an answered request; its id, once committed.
    async fn record(&self, entry: Entry) -> Result<String, Status> {
        self.audit
            .append(entry)
            .await
            .map(|seq| seq.to_string())
            .map_err(|e| {
                Status::unavailable(format!("the audit log cannot record the answer: {e}"))
            })
    }

    fn check_document(&self, document: &[u8]) -> Result<(), Status> {
        if document.is_empty() {
            return Err(Status::invalid_argument("the document is empty"));
        }
        if document.len() > self.config.max_document_bytes {
            return Err(Status::resource_exhausted(format!(
                "the document has {} bytes; this service accepts at most {}",
                document.len(),
                self.config.max_document_bytes
            )));
        }
        Ok(())
    }

    /// Runs CPU work on the blocking pool, at most `max_concurrent_verifications` at once.
    async fn cpu<R: Send + 'static>(
        &self,
        work: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, Status> {
        let _permit = self
            .cpu
            .acquire()
            .await
            .map_err(|_| Status::unavailable("the service is shutting down"))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| Status::internal(format!("the verification failed unexpectedly: {e}")))
    }
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

impl Verification {
    /// Verifies and records: the shared tail of the two verify calls.
    async fn verify_and_record(
        &self,
        mut call: Call,
        document: bytes::Bytes,
        options: Option<proto::VerifyOptions>,
    ) -> Result<Response<proto::VerifyDocumentResponse>, Status> {
        let s = &self.0;
        if let Err(status) = s.check_document(&document) {
            call.document = Some((sha256_hex(&document), document.len() as u64));
            return Err(s.reject(call, status).await);
        }
        // The report carries the document's SHA-256; hash here only if it cannot be read.
        let size = document.len() as u64;
        let options = options.unwrap_or_default();
        let mut ctx = s.context.clone();
        ctx.now = OffsetDateTime::now_utc();
        ctx.at = options
            .validation_time
            .as_ref()
            .and_then(convert::from_timestamp);
        let lang = if options.locale == proto::Locale::En as i32 {
            Lang::En
        } else {
            Lang::Vi
        };
        let outcome = s
            .cpu(move || crate::verify(&document, &ctx).map_err(|e| (e, sha256_hex(&document))))
            .await?;
        let report = match outcome {
            Ok(r) => r,
            Err((e, sha)) => {
                call.document = Some((sha, size));
                let status =
                    Status::invalid_argument(format!("the document cannot be evaluated: {e}"));
                return Err(s.reject(call, status).await);
            }
        };
        call.document = Some((report.sha256.clone(), size));
        let mut entry = s.entry(call);
        entry.signatures = Entry::summarize(&report);
        entry.verdict = audit::name(&report.verdict);
        let id = s.record(entry).await?;
        Ok(Response::new(proto::VerifyDocumentResponse {
            summary: render_text(&report, "", lang),
            report: Some(convert::report(&report)),
            audit_record_id: id,
        }))
    }
}

#[tonic::async_trait]
impl VerificationService for Verification {
    async fn verify_document(
        &self,
        request: Request<proto::VerifyDocumentRequest>,
    ) -> Result<Response<proto::VerifyDocumentResponse>, Status> {
        let s = &self.0;
        let mut call = s.call(&request, VERIFY);
        if let Err(status) = s.authorize(&request, &mut call, Role::Verifier) {
            return Err(s.reject(call, status).await);
        }
        let req = request.into_inner();
        call.metadata = convert::metadata(req.metadata);
        self.verify_and_record(call, req.document, req.options)
            .await
    }

    async fn verify_document_stream(
        &self,
        request: Request<tonic::Streaming<proto::VerifyDocumentChunk>>,
    ) -> Result<Response<proto::VerifyDocumentResponse>, Status> {
        let s = &self.0;
        let mut call = s.call(&request, VERIFY_STREAM);
        if let Err(status) = s.authorize(&request, &mut call, Role::Verifier) {
            return Err(s.reject(call, status).await);
        }
        let mut stream = request.into_inner();
        let mut document = Vec::new();
        let mut options = None;
        let mut first = true;
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(status) => return Err(s.reject(call, status).await),
            };
            if first {
                call.metadata = convert::metadata(chunk.metadata);
                options = chunk.options;
                first = false;
            }
            if document.len() + chunk.data.len() > s.config.max_document_bytes {
                let status = Status::resource_exhausted(format!(
                    "the document is over {} bytes, the most this service accepts",
                    s.config.max_document_bytes
                ));
                return Err(s.reject(call, status).await);
            }
            document.extend_from_slice(&chunk.data);
        }
        self.verify_and_record(call, document.into(), options).await
    }

    async fn extract_signatures(
        &self,
        request: Request<proto::ExtractSignaturesRequest>,
    ) -> Result<Response<proto::ExtractSignaturesResponse>, Status> {
        let s = &self.0;
        let mut call = s.call(&request, EXTRACT);
        if let Err(status) = s.authorize(&request, &mut call, Role::Verifier) {
            return Err(s.reject(call, status).await);
        }
        let req = request.into_inner();
        call.metadata = convert::metadata(req.metadata);
        call.document = Some((sha256_hex(&req.document), req.document.len() as u64));
        if let Err(status) = s.check_document(&req.document) {
            return Err(s.reject(call, status).await);
        }
        let document = req.document;
        let parsed = s
            .cpu(move || {
                crate::pdf::PdfFile::parse(&document).map(|pdf| {
                    let sha = sha256_hex(&document);
                    (sha, extracted(&pdf), pdf.revisions.len())
                })
            })
            .await?;
        let (sha256, (signatures, unsigned_fields), revisions) = match parsed {
            Ok(p) => p,
            Err(e) => {
                let status = Status::invalid_argument(format!("the document cannot be read: {e}"));
                return Err(s.reject(call, status).await);
            }
        };
        let id = s.record(s.entry(call)).await?;
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
        let s = &self.0;
        let mut call = s.call(&request, SIGNED_REVISION);
        if let Err(status) = s.authorize(&request, &mut call, Role::Verifier) {
            return Err(s.reject(call, status).await);
        }
        let req = request.into_inner();
        call.metadata = convert::metadata(req.metadata);
        call.document = Some((sha256_hex(&req.document), req.document.len() as u64));
        if let Err(status) = s.check_document(&req.document) {
            return Err(s.reject(call, status).await);
        }
        if req.signature == 0 {
            let status = Status::invalid_argument("signature numbers start at 1");
            return Err(s.reject(call, status).await);
        }
        let (document, number) = (req.document, req.signature as usize);
        let signed = s
            .cpu(move || crate::signed_version(&document, number).map(<[u8]>::to_vec))
            .await?;
        let signed = match signed {
            Ok(b) => b,
            Err(e) => {
                let status = match e {
                    crate::ExtractError::NoSuchSignature { .. } => Status::not_found(e.to_string()),
                    e => Status::invalid_argument(e.to_string()),
                };
                return Err(s.reject(call, status).await);
            }
        };
        let id = s.record(s.entry(call)).await?;
        Ok(Response::new(proto::GetSignedRevisionResponse {
            sha256: sha256_hex(&signed),
            signed_revision: signed,
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
        let s = self.0.clone();
        let mut call = s.call(&request, "/kyso.v1.AuditService/QueryRecords");
        if let Err(status) = s.authorize(&request, &mut call, Role::Auditor) {
            return Err(s.reject(call, status).await);
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
                    return Err(s.reject(call, status).await);
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
        let s2 = s.clone();
        let mut records = s
            .cpu(move || s2.audit.store().query(&query))
            .await?
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let next_page_token = if records.len() > limit {
            records.truncate(limit);
            records
                .last()
                .map(|r| r.sequence.to_string())
                .unwrap_or_default()
        } else {
            String::new()
        };
        s.record(s.entry(call)).await?;
        Ok(Response::new(proto::QueryRecordsResponse {
            records: records.iter().map(convert::record).collect(),
            next_page_token,
        }))
    }

    async fn get_record(
        &self,
        request: Request<proto::GetRecordRequest>,
    ) -> Result<Response<proto::AuditRecord>, Status> {
        let s = self.0.clone();
        let mut call = s.call(&request, "/kyso.v1.AuditService/GetRecord");
        if let Err(status) = s.authorize(&request, &mut call, Role::Auditor) {
            return Err(s.reject(call, status).await);
        }
        let id = request.into_inner().id;
        let Ok(sequence) = id.parse::<u64>() else {
            let status = Status::invalid_argument(format!("{id:?} is not a record id"));
            return Err(s.reject(call, status).await);
        };
        let s2 = s.clone();
        let found = s
            .cpu(move || s2.audit.store().get(sequence))
            .await?
            .map_err(|e| Status::unavailable(e.to_string()))?;
        s.record(s.entry(call)).await?;
        found
            .map(|r| Response::new(convert::record(&r)))
            .ok_or_else(|| Status::not_found(format!("no record {id}")))
    }

    async fn verify_log(
        &self,
        request: Request<proto::VerifyLogRequest>,
    ) -> Result<Response<proto::VerifyLogResponse>, Status> {
        let s = self.0.clone();
        let mut call = s.call(&request, "/kyso.v1.AuditService/VerifyLog");
        if let Err(status) = s.authorize(&request, &mut call, Role::Auditor) {
            return Err(s.reject(call, status).await);
        }
        let r = request.into_inner();
        let s2 = s.clone();
        let to = (r.to_sequence > 0).then_some(r.to_sequence);
        let check = s
            .cpu(move || {
                audit::verify_log(
                    s2.audit.store().as_ref(),
                    s2.audit.key().public_key(),
                    r.from_sequence,
                    to,
                )
            })
            .await?
            .map_err(|e| Status::unavailable(e.to_string()))?;
        s.record(s.entry(call)).await?;
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
        let s = self.0.clone();
        let mut call = s.call(&request, "/kyso.v1.AuditService/GetCheckpoint");
        if let Err(status) = s.authorize(&request, &mut call, Role::Auditor) {
            return Err(s.reject(call, status).await);
        }
        let cp = s
            .audit
            .store()
            .latest_checkpoint()
            .map_err(|e| Status::unavailable(e.to_string()))?;
        s.record(s.entry(call)).await?;
        let cp = cp.ok_or_else(|| Status::not_found("no checkpoint has been signed yet"))?;
        Ok(Response::new(proto::Checkpoint {
            sequence: cp.sequence,
            head_hash: hex::encode(cp.head_hash),
            time: Some(convert::timestamp(cp.time)),
            signature: hex::encode(&cp.signature),
            public_key_pem: s.audit.key().public_key_pem(),
        }))
    }
}

/// The verification context the configuration describes.
pub fn context(config: &Config) -> Result<Context, ServeError> {
    let trust = TrustStore::from_paths(&config.trust, &config.intermediates)?;
    let mut ctx = Context::new(trust, OffsetDateTime::now_utc());
    ctx.crls = RevocationData::from_paths(&config.crl)?;
    ctx.revocation = config.revocation_mode()?;
    if ctx.revocation != RevocationMode::Offline {
        let fetcher = HttpFetcher::new(Duration::from_secs(config.fetch_timeout_seconds.max(1)));
        ctx.online = Some(Arc::new(Online::new(
            Arc::new(fetcher),
            Some(config.data_dir.join("fetch-cache")),
        )));
    }
    Ok(ctx)
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
        self.task
            .await
            .map_err(|e| ServeError::Tls(format!("the server task failed: {e}")))?
    }

    /// Waits until the server stops by itself (it does not, but for an error).
    pub async fn wait(self) -> Result<(), ServeError> {
        self.task
            .await
            .map_err(|e| ServeError::Tls(format!("the server task failed: {e}")))?
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
        .timeout(Duration::from_secs(config.request_timeout_seconds.max(1)))
        .concurrency_limit_per_connection(config.max_concurrent_requests_per_connection.max(1));
    if let Some(tls) = &config.tls {
        let read = |p: &PathBuf| {
            std::fs::read(p).map_err(|e| ServeError::Tls(format!("{}: {e}", p.display())))
        };
        let mut t = tonic::transport::ServerTlsConfig::new().identity(
            tonic::transport::Identity::from_pem(read(&tls.cert)?, read(&tls.key)?),
        );
        if let Some(ca) = &tls.client_ca {
            t = t.client_ca_root(tonic::transport::Certificate::from_pem(read(ca)?));
        }
        builder = builder
            .tls_config(t)
            .map_err(|e| ServeError::Tls(e.to_string()))?;
    }
    let shared = Arc::new(Shared {
        config,
        context,
        audit,
        cpu: Semaphore::new(workers),
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
        .map_err(|e| ServeError::Tls(format!("reflection: {e}")))?;
    let verification = VerificationServiceServer::new(Verification(shared.clone()))
        .max_decoding_message_size(max_message)
        .max_encoding_message_size(max_message);
    let audit_service = AuditServiceServer::new(Audit(shared.clone()))
        .max_decoding_message_size(1 << 20)
        .max_encoding_message_size(64 << 20);
    let router = builder
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
        served.map_err(ServeError::from)
    });
    Ok(Running {
        addr,
        shutdown: Some(tx),
        task,
    })
}
