//! `kyso serve`: the verification core over gRPC (`proto/kyso/v1/`), with every answer
//! recorded in the audit log before it is sent.
//!
//! A thin layer: requests are authenticated (bearer tokens, or a client certificate under
//! mutual TLS), checked, handed to [`crate::verify()`] on the blocking pool behind a
//! semaphore (CPU work never runs on the reactor), and the outcome is appended to the
//! [`AuditLog`]; the response leaves only once its record is committed. Rejected requests
//! are recorded too, with their status.

mod call;
pub mod config;
pub mod convert;
pub mod error;
pub mod http;
mod incoming;
pub mod json;
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
use call::{sha256_hex, Answer, Call, Outcome, Shared};
use config::{Config, Role};
use error::Refusal;
use proto::audit_service_server::{AuditService, AuditServiceServer};
use proto::verification_service_server::{VerificationService, VerificationServiceServer};

pub use config::ConfigError;

/// Why the service could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The configuration cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The verification settings cannot be loaded.
    #[error("verification settings")]
    Context(#[from] crate::verify::ContextError),
    /// The trust store cannot be read.
    #[error("trust store")]
    TrustStore(#[from] crate::trust::profiles::ProfileError),
    /// The audit log cannot be opened.
    #[error("audit log")]
    Audit(#[from] audit::AuditError),
    /// The data directory cannot be made.
    #[error("data directory {path}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A TLS file cannot be read.
    #[error("TLS: cannot read {path}")]
    TlsFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// tonic refuses the TLS settings.
    #[error("TLS configuration")]
    Tls(#[source] tonic::transport::Error),
    /// The HTTP side cannot use the TLS settings.
    #[error(transparent)]
    HttpTls(#[from] http::HttpTlsError),
    /// The reflection service cannot be built.
    #[error("server reflection")]
    Reflection(#[source] tonic_reflection::server::Error),
    /// The address cannot be bound.
    #[error("cannot listen on {addr}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP server failed while serving.
    #[error("the HTTP server failed")]
    Http(#[source] std::io::Error),
    /// The gRPC server failed while serving.
    #[error("the gRPC server failed")]
    Transport(#[source] tonic::transport::Error),
    /// The server task panicked or was cancelled.
    #[error("the server task ended abnormally")]
    Task(#[source] tokio::task::JoinError),
}

/// The audit log: its store (`store`, default the data directory's SQLite file) and the
/// checkpoint key inside the data directory; `origin` names a new log (README, "The audit
/// log"). It blocks (a PostgreSQL store connects): call it off the async reactor.
pub fn open_audit(
    data_dir: &std::path::Path,
    store: Option<&str>,
    origin: Option<&str>,
) -> Result<AuditLog, ServeError> {
    std::fs::create_dir_all(data_dir).map_err(|source| ServeError::DataDir {
        path: data_dir.to_owned(),
        source,
    })?;
    let location = match store {
        Some(given) => audit::Location::parse(given)?,
        None => audit::Location::Sqlite(data_dir.join("audit.sqlite3")),
    };
    let key = audit::CheckpointKey::load_or_create(&data_dir.join("audit-key.pem"))?;
    Ok(AuditLog::start(location.open()?, key, origin)?)
}

#[derive(Clone)]
struct Verification(Arc<Shared>);

#[derive(Clone)]
struct Audit(Arc<Shared>);

const VERIFY: &str = "/kyso.v1.VerificationService/VerifyDocument";
const VERIFY_STREAM: &str = "/kyso.v1.VerificationService/VerifyDocumentStream";
const EXTRACT: &str = "/kyso.v1.VerificationService/ExtractSignatures";
const SIGNED_REVISION: &str = "/kyso.v1.VerificationService/GetSignedRevision";
const QUERY_RECORDS: &str = "/kyso.v1.AuditService/QueryRecords";
const GET_RECORD: &str = "/kyso.v1.AuditService/GetRecord";
const VERIFY_LOG: &str = "/kyso.v1.AuditService/VerifyLog";
const GET_CHECKPOINT: &str = "/kyso.v1.AuditService/GetCheckpoint";
const INCLUSION_PROOF: &str = "/kyso.v1.AuditService/GetInclusionProof";
const CONSISTENCY_PROOF: &str = "/kyso.v1.AuditService/GetConsistencyProof";

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
    let options = options.unwrap_or_default();
    let inputs = inputs(&options)?;
    let lang = if options.locale == proto::Locale::En as i32 {
        Lang::En
    } else {
        Lang::Vi
    };
    let with_json = options.include_report_json;
    let report = verify_for(call, document, inputs, options.trust_profile).await?;
    call.want_receipt();
    Ok(Box::new(move |recorded| {
        let summary = render_text(&report, "", lang);
        let typed = convert::report(&report);
        let receipt = recorded.receipt.as_ref().map(convert::receipt);
        let report_json = if with_json {
            serde_json::to_string(&json::VerifyAnswer {
                report,
                audit_record_id: recorded.id.clone(),
                summary: summary.clone(),
                receipt: recorded.receipt,
            })
            .unwrap_or_default()
        } else {
            String::new()
        };
        proto::VerifyDocumentResponse {
            summary,
            report_json,
            report: Some(typed),
            audit_record_id: recorded.id,
            receipt,
        }
    }))
}

/// The answer of a verification as JSON, over gRPC (`report_json`) and HTTP
/// ([`json::VerifyAnswer`]).
pub(crate) fn verify_answer(
    report: crate::Report,
    recorded: call::Recorded,
    lang: Lang,
) -> json::VerifyAnswer {
    json::VerifyAnswer {
        summary: render_text(&report, "", lang),
        report,
        audit_record_id: recorded.id,
        receipt: recorded.receipt,
    }
}

/// Verifies `document` with `inputs` under the trust profile `profile` ("" for the
/// service's default) and notes the outcome for the call's record: what the gRPC and HTTP
/// verify calls share.
async fn verify_for(
    call: &mut Call,
    document: bytes::Bytes,
    inputs: Inputs,
    profile: String,
) -> Result<crate::Report, Refusal> {
    call.receive(&document)?;
    let size = document.len() as u64;
    call.shared.context(&profile)?;
    let shared = call.shared.clone();
    let report = call
        .cpu(move || {
            let ctx = shared.context(&profile)?;
            let started = std::time::Instant::now();
            let report = crate::verify(&document, ctx, inputs);
            metrics::histogram!("kyso_verification_seconds")
                .record(started.elapsed().as_secs_f64());
            report.map_err(|e| Refusal::Unevaluable {
                reason: error::chain(&e),
            })
        })
        .await??;
    if let Some(policy) = &report.policy {
        metrics::counter!(
            "kyso_policy_outcomes_total",
            "conforms" => if policy.conforms { "true" } else { "false" }
        )
        .increment(1);
    }
    call.hashed(report.sha256.clone(), size);
    call.outcome = Some(Outcome {
        signatures: Entry::summarize(&report),
        verdict: report.verdict.name().to_owned(),
        policy: report.policy.as_ref().map(audit::PolicySummary::of),
        trust_fingerprint: report.trust_fingerprint.clone(),
    });
    Ok(report)
}

/// Where [`on_document`] runs its work.
enum Worker {
    /// A verification worker ([`Call::cpu`]).
    Cpu,
    /// A verification worker and a render permit ([`Call::render`]).
    Render,
}

/// Runs `work` on a received `document` off the reactor, and notes the document's SHA-256
/// and size for the call's record, whatever `work` answers.
async fn on_document<R: Send + 'static>(
    call: &mut Call,
    document: bytes::Bytes,
    worker: Worker,
    work: impl FnOnce(&[u8]) -> Result<R, Refusal> + Send + 'static,
) -> Result<R, Refusal> {
    let size = document.len() as u64;
    let job = move || (sha256_hex(&document), work(&document));
    let (document_sha256, answer) = match worker {
        Worker::Cpu => call.cpu(job).await?,
        Worker::Render => call.render(job).await?,
    };
    call.hashed(document_sha256, size);
    answer
}

/// The signed version of signature `number` (from 1) of `document` and its SHA-256, noted
/// for the call's record.
async fn signed_version_for(
    call: &mut Call,
    document: bytes::Bytes,
    number: u32,
) -> Result<(Vec<u8>, String), Refusal> {
    call.receive(&document)?;
    if number == 0 {
        return Err(Refusal::SignatureZero);
    }
    on_document(call, document, Worker::Cpu, move |document| {
        crate::signed_version(document, number as usize)
            .map(|b| (b.to_vec(), sha256_hex(b)))
            .map_err(extract_refusal)
    })
    .await
}

/// The refusal of a signed version that cannot be had.
fn extract_refusal(e: crate::ExtractError) -> Refusal {
    match e {
        crate::ExtractError::NoSuchSignature { .. } => Refusal::NoSuchSignature {
            reason: e.to_string(),
        },
        e => Refusal::Unreadable {
            reason: error::chain(&e),
        },
    }
}

/// Page `page` of `document` drawn, for `POST /api/v1/pages/{p}/rendering`.
async fn rendering_for(
    call: &mut Call,
    document: bytes::Bytes,
    page: u32,
) -> Result<crate::render::Rendering, Refusal> {
    call.receive(&document)?;
    on_document(call, document, Worker::Render, move |document| {
        crate::render::render_page(document, page).map_err(render_refusal)
    })
    .await
}

/// Page `page` as signature `number` signed it beside the page now, for
/// `POST /api/v1/signatures/{n}/comparison`.
async fn comparison_for(
    call: &mut Call,
    document: bytes::Bytes,
    number: u32,
    page: u32,
) -> Result<crate::render::Comparison, Refusal> {
    call.receive(&document)?;
    if number == 0 {
        return Err(Refusal::SignatureZero);
    }
    on_document(call, document, Worker::Render, move |document| {
        let signed = crate::signed_version(document, number as usize).map_err(extract_refusal)?;
        crate::render::compare_page(signed, document, page).map_err(render_refusal)
    })
    .await
}

fn render_refusal(e: crate::render::RenderError) -> Refusal {
    match e {
        crate::render::RenderError::NoSuchPage { page, pages } => {
            Refusal::NoSuchPage { page, pages }
        }
        e => Refusal::Unrenderable {
            reason: e.to_string(),
        },
    }
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
                            .map(|pdf| (convert::extracted(&pdf), pdf.revisions.len()));
                        (sha256_hex(&document), parsed)
                    })
                    .await?;
                call.hashed(sha256.clone(), size);
                let ((signatures, unsigned_fields), revisions) =
                    parsed.map_err(|e| Refusal::Unreadable {
                        reason: error::chain(&e),
                    })?;
                let answer: Answer<_> =
                    Box::new(move |recorded| proto::ExtractSignaturesResponse {
                        sha256,
                        revisions: revisions as u32,
                        signatures,
                        unsigned_fields,
                        audit_record_id: recorded.id,
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
                    let (signed_revision, sha256) =
                        signed_version_for(call, req.document, req.signature).await?;
                    let answer: Answer<_> =
                        Box::new(move |recorded| proto::GetSignedRevisionResponse {
                            sha256,
                            signed_revision,
                            audit_record_id: recorded.id,
                        });
                    Ok(answer)
                })
            },
        )
        .await
    }
}

/// The records `r` asks for, newest first, and the token of the next page.
async fn query_records(
    call: &mut Call,
    r: proto::QueryRecordsRequest,
) -> Result<proto::QueryRecordsResponse, Refusal> {
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
    Ok(proto::QueryRecordsResponse {
        records: records.iter().map(convert::record).collect(),
        next_page_token,
    })
}

/// The record of id `id`.
async fn get_record(call: &mut Call, id: String) -> Result<proto::AuditRecord, Refusal> {
    let sequence = id
        .parse::<u64>()
        .map_err(|_| Refusal::BadRecordId { id: id.clone() })?;
    let store = call.shared.audit.store().clone();
    let record = call
        .cpu(move || store.get(sequence))
        .await?
        .map_err(Refusal::AuditRead)?
        .ok_or(Refusal::NoRecord { id })?;
    Ok(convert::record(&record))
}

/// The log checked from `r.from_sequence` to `r.to_sequence` (0: its end), against the
/// checkpoints the caller kept.
async fn verify_log(
    call: &mut Call,
    r: proto::VerifyLogRequest,
) -> Result<proto::VerifyLogResponse, Refusal> {
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
    Ok(proto::VerifyLogResponse {
        ok: check.ok,
        records_checked: check.records_checked,
        checkpoints_checked: check.checkpoints_checked,
        first_bad_sequence: check.first_bad_sequence,
        problem: check.problem,
    })
}

/// The latest signed checkpoint, with the keys that verify it.
async fn get_checkpoint(call: &mut Call) -> Result<proto::Checkpoint, Refusal> {
    let cp = signed_checkpoint(call, 0).await?;
    let log = &call.shared.audit;
    Ok(convert::checkpoint(
        &cp,
        log.key().public_key_pem(),
        log.verifier_key().as_str().to_owned(),
    ))
}

/// The signed checkpoint of the tree of `size` records; 0: the latest.
async fn signed_checkpoint(
    call: &mut Call,
    size: u64,
) -> Result<audit::tree::SignedCheckpoint, Refusal> {
    let store = call.shared.audit.store().clone();
    let found = call
        .cpu(move || match size {
            0 => store.latest_tree_checkpoint(),
            n => store
                .tree_checkpoints(n, Some(n))
                .map(|mut found| found.pop()),
        })
        .await?
        .map_err(Refusal::AuditRead)?;
    found.ok_or(match size {
        0 => Refusal::NoCheckpoint,
        size => Refusal::NoCheckpointOfSize { size },
    })
}

/// Record `r.record_id`'s inclusion proof under the checkpoint of `r.tree_size` records
/// (0: the latest).
async fn inclusion_proof(
    call: &mut Call,
    record_id: String,
    tree_size: u64,
) -> Result<audit::tree::InclusionProof, Refusal> {
    let sequence: u64 = record_id.parse().map_err(|_| Refusal::BadRecordId {
        id: record_id.clone(),
    })?;
    let cp = signed_checkpoint(call, tree_size).await?;
    if sequence == 0 || sequence > cp.head.size {
        return Err(Refusal::NotInTree {
            id: record_id,
            size: cp.head.size,
        });
    }
    let store = call.shared.audit.store().clone();
    call.cpu(move || audit::prove(store.as_ref(), sequence, &cp))
        .await?
        .map_err(Refusal::AuditRead)
}

/// The proof that the tree of `old` records is a prefix of the signed tree of `new`
/// (0: the latest).
async fn consistency_proof(
    call: &mut Call,
    old: u64,
    new: u64,
) -> Result<audit::tree::ConsistencyProof, Refusal> {
    let cp = signed_checkpoint(call, new).await?;
    if old == 0 || old > cp.head.size {
        return Err(Refusal::BadOldSize {
            old,
            new: cp.head.size,
        });
    }
    let store = call.shared.audit.store().clone();
    call.cpu(move || audit::prove_consistency(store.as_ref(), old, &cp))
        .await?
        .map_err(Refusal::AuditRead)
}

/// An answer that does not depend on its record's id.
fn answer<R: Send + 'static>(r: R) -> Answer<R> {
    Box::new(move |_| r)
}

#[tonic::async_trait]
impl AuditService for Audit {
    async fn query_records(
        &self,
        request: Request<proto::QueryRecordsRequest>,
    ) -> Result<Response<proto::QueryRecordsResponse>, Status> {
        Call::run(&self.0, request, QUERY_RECORDS, Role::Auditor, |call, r| {
            Box::pin(async move { query_records(call, r).await.map(answer) })
        })
        .await
    }

    async fn get_record(
        &self,
        request: Request<proto::GetRecordRequest>,
    ) -> Result<Response<proto::AuditRecord>, Status> {
        Call::run(&self.0, request, GET_RECORD, Role::Auditor, |call, r| {
            Box::pin(async move { get_record(call, r.id).await.map(answer) })
        })
        .await
    }

    async fn verify_log(
        &self,
        request: Request<proto::VerifyLogRequest>,
    ) -> Result<Response<proto::VerifyLogResponse>, Status> {
        Call::run(&self.0, request, VERIFY_LOG, Role::Auditor, |call, r| {
            Box::pin(async move { verify_log(call, r).await.map(answer) })
        })
        .await
    }

    async fn get_checkpoint(
        &self,
        request: Request<proto::GetCheckpointRequest>,
    ) -> Result<Response<proto::Checkpoint>, Status> {
        Call::run(
            &self.0,
            request,
            GET_CHECKPOINT,
            Role::Auditor,
            |call, _| Box::pin(async move { get_checkpoint(call).await.map(answer) }),
        )
        .await
    }

    async fn get_inclusion_proof(
        &self,
        request: Request<proto::GetInclusionProofRequest>,
    ) -> Result<Response<proto::Receipt>, Status> {
        Call::run(
            &self.0,
            request,
            INCLUSION_PROOF,
            Role::Auditor,
            |call, r| {
                Box::pin(async move {
                    let proof = inclusion_proof(call, r.record_id, r.tree_size).await?;
                    Ok(answer(convert::receipt(&proof)))
                })
            },
        )
        .await
    }

    async fn get_consistency_proof(
        &self,
        request: Request<proto::GetConsistencyProofRequest>,
    ) -> Result<Response<proto::ConsistencyProof>, Status> {
        Call::run(
            &self.0,
            request,
            CONSISTENCY_PROOF,
            Role::Auditor,
            |call, r| {
                Box::pin(async move {
                    let proof = consistency_proof(call, r.old_size, r.new_size).await?;
                    Ok(answer(convert::consistency(&proof)))
                })
            },
        )
        .await
    }
}

/// The verification context the configuration describes.
pub fn context(config: &Config) -> Result<Context, ServeError> {
    Ok(Context::from_settings(&config.settings())?)
}

/// A running server.
pub struct Running {
    /// The address the gRPC server listens on.
    pub addr: SocketAddr,
    /// The address the HTTP server listens on.
    pub http_addr: SocketAddr,
    /// Whether the HTTP server speaks TLS (the configuration's `[tls]`, as gRPC).
    pub http_tls: bool,
    shutdown: Option<tokio::sync::watch::Sender<bool>>,
    task: tokio::task::JoinHandle<Result<(), ServeError>>,
}

impl Running {
    /// Stops taking requests, lets those in flight finish (and commit their records),
    /// closes the audit log with a final checkpoint.
    pub async fn stop(mut self) -> Result<(), ServeError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(true);
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
    // The metrics recorder before the log, which records from its start.
    http::metrics::handle();
    let audit = {
        let (dir, store, origin) = (
            config.data_dir.clone(),
            config.audit_store.clone(),
            config.audit_origin.clone(),
        );
        tokio::task::spawn_blocking(move || open_audit(&dir, store.as_deref(), origin.as_deref()))
            .await
            .map_err(ServeError::Task)??
    };
    start_with_audit(config, audit).await
}

/// [`start`] with an audit log the embedder opened (over a store of its own, say), instead
/// of the one the configuration names.
pub async fn start_with_audit(config: Config, audit: AuditLog) -> Result<Running, ServeError> {
    config.validate()?;
    // The metrics recorder first (it is made once: a second call finds it).
    http::metrics::handle();
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
    let bind = |addr: SocketAddr| async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Listen { addr, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| ServeError::Listen { addr, source })?;
        Ok::<_, ServeError>((listener, local))
    };
    let (listener, addr) = bind(config.listen).await?;
    let (http_listener, http_addr) = bind(config.http_listen).await?;
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
        .concurrency_limit_per_connection(config.max_concurrent_requests_per_connection.max(1))
        // A ping after a quiet minute finds a client that went away, and keeps a long
        // verification's connection from counting as idle.
        .http2_keepalive_interval(Some(Duration::from_secs(config.keepalive_seconds.max(1))))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
        .tcp_keepalive(Some(Duration::from_secs(60)));
    let mut http_tls = None;
    if let Some(tls) = &config.tls {
        let read = |path: &PathBuf| {
            std::fs::read(path).map_err(|source| ServeError::TlsFile {
                path: path.clone(),
                source,
            })
        };
        let (cert, key) = (read(&tls.cert)?, read(&tls.key)?);
        let ca = tls.client_ca.as_ref().map(read).transpose()?;
        http_tls = Some(http::tls_acceptor(
            (&tls.cert, &cert),
            (&tls.key, &key),
            tls.client_ca.as_deref().zip(ca.as_deref()),
        )?);
        let mut t = tonic::transport::ServerTlsConfig::new()
            .identity(tonic::transport::Identity::from_pem(cert, key));
        if let Some(ca) = ca {
            t = t.client_ca_root(tonic::transport::Certificate::from_pem(ca));
        }
        builder = builder.tls_config(t).map_err(ServeError::Tls)?;
    }
    let config_bytes = config.max_request_bytes_in_flight;
    let shared = Arc::new(Shared {
        config,
        context,
        profiles,
        audit,
        request_bytes: Arc::new(Semaphore::new(
            config_bytes.clamp(1, Semaphore::MAX_PERMITS),
        )),
        cpu: Arc::new(Semaphore::new(workers)),
        renders: Arc::new(Semaphore::new(call::render_permits(workers))),
    });
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<VerificationServiceServer<Verification>>()
        .await;
    health.set_serving::<AuditServiceServer<Audit>>().await;
    // Reflection in both versions: grpcurl and grpcui speak v1, Python's grpcio-reflection,
    // Postman and older grpcurl only v1alpha.
    let reflecting = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection = reflecting().build_v1().map_err(ServeError::Reflection)?;
    let reflection_v1alpha = reflecting()
        .build_v1alpha()
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
        .add_service(reflection_v1alpha)
        .add_service(verification)
        .add_service(audit_service);
    let (tx, rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    // Responses are small writes after a large request: without TCP_NODELAY, Nagle's
    // algorithm holds them for the client's delayed acknowledgement (set on each connection).
    let idle = Duration::from_secs(shared.config.idle_timeout_seconds.max(1));
    let incoming = incoming::incoming(listener, shared.config.max_connections, idle);
    let serves_tls = http_tls.is_some();
    let http_side = {
        let accepted = incoming::incoming(http_listener, shared.config.max_connections, idle);
        let app = http::router(shared.clone()).into_make_service_with_connect_info::<http::Peer>();
        axum::serve(http::Connections::new(accepted, http_addr, http_tls), app)
            .with_graceful_shutdown(stopped(rx.clone()))
    };
    let upkeep = tokio::spawn(http::metrics::upkeep());
    let task = tokio::spawn(async move {
        let grpc = router.serve_with_incoming_shutdown(incoming, stopped(rx));
        let (served, http_served) = tokio::join!(grpc, async { http_side.await });
        upkeep.abort();
        // Every request has been answered, so every record is committed; seal the log.
        let closing = shared.clone();
        let _ = tokio::task::spawn_blocking(move || closing.audit.close()).await;
        served.map_err(ServeError::Transport)?;
        http_served.map_err(ServeError::Http)
    });
    Ok(Running {
        addr,
        http_addr,
        http_tls: serves_tls,
        shutdown: Some(tx),
        task,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failed_server_task_is_not_called_a_tls_error() {
        let join = tokio::spawn(async { panic!("boom") })
            .await
            .expect_err("the task panicked");
        let e = ServeError::Task(join);
        assert_eq!(e.to_string(), "the server task ended abnormally");
        assert!(!e.to_string().contains("TLS"));
    }
}
