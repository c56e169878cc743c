//! `kyso client …`: a small real gRPC client for clerks and integrators, and the
//! table/CSV/JSON printers of audit records that `kyso audit` shares.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use time::OffsetDateTime;

use super::exit;
use kyso::audit::tree::SignedCheckpoint;
use kyso::audit::{self, Record};
use kyso::policy::Expect;
use kyso::report::Lang;
use kyso::service::{convert, json, proto};

/// Why a client command failed; [`ClientError::exit_status`] says with which status.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{server}: not a server URL")]
    Url {
        server: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS settings")]
    Tls(#[source] tonic::transport::Error),
    #[error("{server}: --ca and --cert need an https:// server URL")]
    TlsNeedsHttps { server: String },
    #[error("cannot reach {server}")]
    Connect {
        server: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("the token has characters a header cannot carry")]
    Token,
    #[error("{code:?}: {message}")]
    Refused { code: tonic::Code, message: String },
    #[error(transparent)]
    Checkpoint(#[from] CheckpointFileError),
}

impl ClientError {
    /// The exit status (README, "Command line"): the service's refusal of the caller, a
    /// service that cannot be reached or cannot answer, a document it cannot read, or
    /// arguments that are wrong.
    pub fn exit_status(&self) -> u8 {
        use tonic::Code;
        match self {
            ClientError::Url { .. }
            | ClientError::Tls(_)
            | ClientError::TlsNeedsHttps { .. }
            | ClientError::Token
            | ClientError::Checkpoint(_) => exit::USAGE,
            ClientError::Read { .. } => exit::UNREADABLE,
            ClientError::Connect { .. } => exit::UNAVAILABLE,
            ClientError::Refused { code, .. } => match code {
                Code::Unauthenticated | Code::PermissionDenied => exit::NO_PERMISSION,
                Code::InvalidArgument | Code::NotFound => exit::UNREADABLE,
                _ => exit::UNAVAILABLE,
            },
        }
    }
}

impl From<tonic::Status> for ClientError {
    fn from(s: tonic::Status) -> Self {
        ClientError::Refused {
            code: s.code(),
            message: s.message().to_owned(),
        }
    }
}

/// Why a saved checkpoint cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointFileError {
    #[error("checkpoint {path}: cannot read it")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("checkpoint {path}: not the JSON of `kyso client audit checkpoint --format json`")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("checkpoint {path}: its root_hash is not base64 of 32 bytes")]
    RootHash { path: PathBuf },
    #[error("checkpoint {path}: neither the JSON of `kyso audit checkpoint --format json` nor a signed checkpoint note")]
    NotCheckpoint { path: PathBuf },
}

/// Reading checkpoints saved with `kyso audit checkpoint --format json` or `kyso client
/// audit checkpoint --format json`, or a signed note saved as it is.
pub struct SavedCheckpoint;

impl SavedCheckpoint {
    /// Reads the saved checkpoint at `path`. A file that is not JSON is taken as the note
    /// itself, its size and root read from the note when the log opens it.
    pub fn read(path: &Path) -> Result<SignedCheckpoint, CheckpointFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| CheckpointFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        if !text.trim_start().starts_with('{') {
            return SignedCheckpoint::unopened(text).ok_or_else(|| {
                CheckpointFileError::NotCheckpoint {
                    path: path.to_owned(),
                }
            });
        }
        let saved: json::Checkpoint =
            serde_json::from_str(&text).map_err(|source| CheckpointFileError::Json {
                path: path.to_owned(),
                source,
            })?;
        saved.signed().ok_or_else(|| CheckpointFileError::RootHash {
            path: path.to_owned(),
        })
    }

    /// The checkpoints saved at `paths`.
    pub fn read_all(paths: &[PathBuf]) -> Result<Vec<SignedCheckpoint>, CheckpointFileError> {
        paths
            .iter()
            .map(|path| SavedCheckpoint::read(path))
            .collect()
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RecordFormat {
    Table,
    Json,
    Csv,
}

#[derive(Debug, Args, Clone, Default)]
pub struct Filters {
    /// SHA-256 of the document (hex).
    #[arg(long = "document-sha256")]
    document_sha256: Option<String>,
    /// Part of a signer's name.
    #[arg(long)]
    signer: Option<String>,
    /// SHA-256 of a signer's certificate.
    #[arg(long)]
    certificate: Option<String>,
    /// A signer certificate's serial (hex).
    #[arg(long)]
    serial: Option<String>,
    /// Part of a signer's organisation.
    #[arg(long)]
    organization: Option<String>,
    /// VALID, INVALID, INDETERMINATE or UNSIGNED.
    #[arg(long)]
    verdict: Option<String>,
    /// The principal that called.
    #[arg(long)]
    caller: Option<String>,
    /// Records at or after this time (RFC 3339).
    #[arg(long, value_parser = super::parse_rfc3339)]
    since: Option<OffsetDateTime>,
    /// Records at or before this time (RFC 3339).
    #[arg(long, value_parser = super::parse_rfc3339)]
    until: Option<OffsetDateTime>,
    /// The document number, e.g. 494-BC/TU.
    #[arg(long = "document-number")]
    document_number: Option<String>,
    /// At most this many records.
    #[arg(long, default_value_t = 50)]
    limit: usize,
}

#[derive(Debug, Args)]
pub struct Connection {
    /// The service, e.g. http://127.0.0.1:50051 (https:// for TLS).
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:50051")]
    server: String,
    /// Bearer token; also `KYSO_TOKEN`.
    #[arg(long, env = "KYSO_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// CA certificate (PEM) of an https:// server.
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS; needs `--key`.
    #[arg(long, value_name = "FILE", requires = "key")]
    cert: Option<PathBuf>,
    /// Private key (PEM) of `--cert`.
    #[arg(long, value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Send FILE to the service and print its report; exit status as `kyso verify`.
    Verify(ClientVerifyArgs),
    /// Ask the service's audit log.
    #[command(subcommand)]
    Audit(ClientAuditCommand),
}

#[derive(Debug, Args)]
pub struct ClientVerifyArgs {
    file: PathBuf,
    #[command(flatten)]
    connection: Connection,
    /// The document number, recorded in the audit log.
    #[arg(long = "document-number", default_value = "")]
    document_number: String,
    /// Send the file as a stream of 1 MiB chunks.
    #[arg(long)]
    stream: bool,
    /// text (the service's summary) or json (the report message, as JSON of its fields).
    #[arg(long, value_enum, default_value_t = ClientFormat::Text)]
    format: ClientFormat,
    /// Language of the text summary: vi or en.
    #[arg(long, value_name = "LANG", default_value = "vi")]
    lang: Lang,
    /// The document rules (`decree-30` or `none`; default: the service's).
    #[arg(long, value_name = "POLICY")]
    policy: Option<kyso::policy::PolicyChoice>,
    /// The profile the document must be: issued, attachment, copy or any (default: the
    /// service's).
    #[arg(long, value_name = "PROFILE")]
    expect: Option<Expect>,
    /// A trust profile the service has loaded (`bcy`, `neac`, …).
    #[arg(long = "trust-profile", value_name = "NAME")]
    trust_profile: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ClientFormat {
    Text,
    Json,
}

#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum ClientAuditCommand {
    /// Records matching the filters, newest first.
    Query {
        #[command(flatten)]
        connection: Connection,
        #[command(flatten)]
        filters: Filters,
        #[arg(long, value_enum, default_value_t = RecordFormat::Table)]
        format: RecordFormat,
    },
    /// Ask the service to check its log.
    Verify {
        #[command(flatten)]
        connection: Connection,
        /// A checkpoint saved earlier (`checkpoint --format json`): the log must still
        /// agree with it. Repeatable.
        #[arg(long = "checkpoint", value_name = "FILE")]
        checkpoints: Vec<PathBuf>,
    },
    /// The latest signed checkpoint and the key that verifies it; save it (`--format
    /// json`) to check the log against it later.
    Checkpoint {
        #[command(flatten)]
        connection: Connection,
        #[arg(long, value_enum, default_value_t = ClientFormat::Text)]
        format: ClientFormat,
    },
}

/// A protocol time as RFC 3339 text, to the nanosecond.
impl Filters {
    pub fn query(&self) -> audit::Query {
        audit::Query {
            document_sha256: self.document_sha256.clone(),
            signer_name: self.signer.clone(),
            certificate_sha256: self.certificate.clone(),
            signer_serial: self.serial.clone(),
            organization: self.organization.clone(),
            verdict: self.verdict.clone(),
            caller: self.caller.clone(),
            from: self.since,
            to: self.until,
            document_number: self.document_number.clone(),
            before: None,
            limit: self.limit.clamp(1, 100_000),
        }
    }

    fn request(&self) -> proto::QueryRecordsRequest {
        proto::QueryRecordsRequest {
            document_sha256: self.document_sha256.clone(),
            signer_name: self.signer.clone(),
            certificate_sha256: self.certificate.clone(),
            signer_serial: self.serial.clone(),
            organization: self.organization.clone(),
            verdict: self.verdict.clone(),
            caller: self.caller.clone(),
            from: self.since.map(convert::timestamp),
            to: self.until.map(convert::timestamp),
            document_number: self.document_number.clone(),
            page_size: self.limit.clamp(1, 1000) as u32,
            page_token: String::new(),
        }
    }
}

const RECORD_COLUMNS: [&str; 9] = [
    "sequence",
    "time",
    "principal",
    "method",
    "verdict",
    "document_number",
    "signers",
    "document_sha256",
    "error",
];

fn record_row(r: &proto::AuditRecord) -> [String; 9] {
    let time = json::rfc3339(r.time.as_ref()).unwrap_or_default();
    let signers: Vec<String> = r
        .signatures
        .iter()
        .map(|s| {
            format!(
                "{} ({})",
                s.signer_common_name.as_deref().unwrap_or("?"),
                convert::from_sub_indication(s.sub_indication_code)
                    .map(|x| x.name())
                    .or(convert::from_indication(s.indication_code).map(|x| x.name()))
                    .unwrap_or("?")
            )
        })
        .collect();
    [
        r.sequence.to_string(),
        time,
        r.principal.clone(),
        r.method.rsplit('/').next().unwrap_or_default().to_owned(),
        convert::from_verdict(r.verdict_code)
            .map(|v| v.name().to_owned())
            .unwrap_or_default(),
        r.document_number.clone(),
        signers.join("; "),
        r.document_sha256.clone().unwrap_or_default(),
        r.error.clone().unwrap_or_default(),
    ]
}

pub fn print_records(records: &[Record], format: RecordFormat, out: &mut dyn Write) {
    let converted: Vec<proto::AuditRecord> = records.iter().map(convert::record).collect();
    print_proto_records(&converted, format, out);
}

fn print_proto_records(records: &[proto::AuditRecord], format: RecordFormat, out: &mut dyn Write) {
    match format {
        RecordFormat::Json => {
            for r in records {
                let _ = writeln!(out, "{}", json::record(r));
            }
        }
        RecordFormat::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            let _ = w.write_record(RECORD_COLUMNS);
            for r in records {
                let _ = w.write_record(record_row(r));
            }
            if let Ok(bytes) = w.into_inner() {
                let _ = out.write_all(&bytes);
            }
        }
        RecordFormat::Table => {
            // The hash column is shortened for the screen; JSON and CSV keep it whole.
            let rows: Vec<[String; 9]> = records
                .iter()
                .map(|r| {
                    let mut row = record_row(r);
                    row[7] = row[7].chars().take(12).collect();
                    row
                })
                .collect();
            let mut widths = RECORD_COLUMNS.map(|c| c.chars().count());
            for row in &rows {
                for (w, cell) in widths.iter_mut().zip(row) {
                    *w = (*w).max(cell.chars().count());
                }
            }
            let line = |cells: &[String]| {
                cells
                    .iter()
                    .zip(widths)
                    .map(|(c, w)| format!("{c:<w$}"))
                    .collect::<Vec<_>>()
                    .join("  ")
                    .trim_end()
                    .to_owned()
            };
            let header: Vec<String> = RECORD_COLUMNS.iter().map(|s| (*s).to_owned()).collect();
            let _ = writeln!(out, "{}", line(&header));
            for row in &rows {
                let _ = writeln!(out, "{}", line(row));
            }
        }
    }
}

async fn channel(c: &Connection) -> Result<tonic::transport::Channel, ClientError> {
    let mut endpoint =
        tonic::transport::Endpoint::from_shared(c.server.clone()).map_err(|source| {
            ClientError::Url {
                server: c.server.clone(),
                source,
            }
        })?;
    let read = |path: &PathBuf| {
        std::fs::read(path).map_err(|source| ClientError::Read {
            path: path.clone(),
            source,
        })
    };
    if c.server.starts_with("https://") {
        let mut tls = tonic::transport::ClientTlsConfig::new();
        if let Some(ca) = &c.ca {
            tls = tls.ca_certificate(tonic::transport::Certificate::from_pem(read(ca)?));
        }
        if let (Some(cert), Some(key)) = (&c.cert, &c.key) {
            tls = tls.identity(tonic::transport::Identity::from_pem(
                read(cert)?,
                read(key)?,
            ));
        }
        endpoint = endpoint.tls_config(tls).map_err(ClientError::Tls)?;
    } else if c.ca.is_some() || c.cert.is_some() {
        return Err(ClientError::TlsNeedsHttps {
            server: c.server.clone(),
        });
    }
    endpoint
        .connect()
        .await
        .map_err(|source| ClientError::Connect {
            server: c.server.clone(),
            source,
        })
}

fn authorized<T>(c: &Connection, message: T) -> Result<tonic::Request<T>, ClientError> {
    let mut request = tonic::Request::new(message);
    if let Some(token) = &c.token {
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| ClientError::Token)?;
        request.metadata_mut().insert("authorization", value);
    }
    Ok(request)
}

/// `kyso client …`.
pub fn client(command: ClientCommand, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let Some(rt) = super::runtime(err) else {
        return exit::OS_ERROR;
    };
    let result: Result<u8, ClientError> = rt.block_on(async {
        match command {
            ClientCommand::Verify(a) => client_verify(a, out).await,
            ClientCommand::Audit(cmd) => client_audit(cmd, out).await,
        }
    });
    result.unwrap_or_else(|e| {
        super::report(err, &e);
        e.exit_status()
    })
}

async fn client_verify(a: ClientVerifyArgs, out: &mut dyn Write) -> Result<u8, ClientError> {
    use proto::verification_service_client::VerificationServiceClient;
    let bytes = std::fs::read(&a.file).map_err(|source| ClientError::Read {
        path: a.file.clone(),
        source,
    })?;
    let mut client = VerificationServiceClient::new(channel(&a.connection).await?)
        .max_decoding_message_size(256 << 20)
        .max_encoding_message_size(1 << 30);
    let metadata = proto::CallerMetadata {
        document_number: a.document_number.clone(),
        ..Default::default()
    };
    let options = proto::VerifyOptions {
        policy: a.policy.map(|p| p.name().to_owned()).unwrap_or_default(),
        expect: a
            .expect
            .map_or(proto::ExpectedProfile::Unspecified, convert::expected) as i32,
        trust_profile: a.trust_profile.clone().unwrap_or_default(),
        validation_time: None,
        locale: match a.lang {
            Lang::En => proto::Locale::En as i32,
            Lang::Vi => proto::Locale::Vi as i32,
        },
        include_report_json: matches!(a.format, ClientFormat::Json),
    };
    let bytes = bytes::Bytes::from(bytes);
    let response = if a.stream {
        let mut chunks = Vec::new();
        for (i, start) in (0..bytes.len()).step_by(1 << 20).enumerate() {
            chunks.push(proto::VerifyDocumentChunk {
                metadata: (i == 0).then(|| metadata.clone()),
                options: (i == 0).then(|| options.clone()),
                data: bytes.slice(start..bytes.len().min(start + (1 << 20))),
            });
        }
        let request = authorized(&a.connection, tokio_stream::iter(chunks))?;
        client.verify_document_stream(request).await
    } else {
        let request = authorized(
            &a.connection,
            proto::VerifyDocumentRequest {
                document: bytes,
                metadata: Some(metadata),
                options: Some(options),
            },
        )?;
        client.verify_document(request).await
    }?
    .into_inner();
    let verdict = response
        .report
        .as_ref()
        .map_or(proto::Verdict::Unspecified as i32, |r| r.verdict);
    let conforms = response
        .report
        .as_ref()
        .and_then(|r| r.policy.as_ref())
        .is_none_or(|p| p.conforms);
    match a.format {
        ClientFormat::Text => {
            let _ = write!(out, "{}", response.summary);
            let label = match a.lang {
                Lang::En => "Audit record",
                Lang::Vi => "Bản ghi nhật ký kiểm tra",
            };
            let _ = writeln!(out, "{label}: {}", response.audit_record_id);
        }
        // The service's JSON of the report: the one dialect of `kyso verify --format json`
        // and the HTTP API.
        ClientFormat::Json => {
            let _ = writeln!(out, "{}", response.report_json);
        }
    }
    Ok(match proto::Verdict::try_from(verdict) {
        Ok(proto::Verdict::Valid) if !conforms => exit::NOT_CONFORMING,
        Ok(proto::Verdict::Valid) => exit::VALID,
        Ok(proto::Verdict::Invalid) => exit::INVALID,
        Ok(proto::Verdict::Unsigned) => exit::UNSIGNED,
        _ => exit::INDETERMINATE,
    })
}

async fn client_audit(cmd: ClientAuditCommand, out: &mut dyn Write) -> Result<u8, ClientError> {
    use proto::audit_service_client::AuditServiceClient;
    match cmd {
        ClientAuditCommand::Query {
            connection,
            filters,
            format,
        } => {
            let mut client = AuditServiceClient::new(channel(&connection).await?);
            // The service answers at most 1,000 records a page: follow its page tokens
            // until --limit records have come, or there are no more.
            let limit = filters.limit.max(1);
            let mut records = Vec::new();
            let mut page_token = String::new();
            loop {
                let mut request = filters.request();
                request.page_size = (limit - records.len()).min(1000) as u32;
                request.page_token = page_token;
                let page = client
                    .query_records(authorized(&connection, request)?)
                    .await?
                    .into_inner();
                records.extend(page.records);
                page_token = page.next_page_token;
                if records.len() >= limit || page_token.is_empty() {
                    break;
                }
            }
            records.truncate(limit);
            print_proto_records(&records, format, out);
            Ok(exit::VALID)
        }
        ClientAuditCommand::Verify {
            connection,
            checkpoints,
        } => {
            let kept_checkpoints = SavedCheckpoint::read_all(&checkpoints)?
                .iter()
                .map(|c| convert::checkpoint(c, String::new(), String::new()))
                .collect();
            let request = proto::VerifyLogRequest {
                kept_checkpoints,
                ..Default::default()
            };
            let mut client = AuditServiceClient::new(channel(&connection).await?);
            let r = client
                .verify_log(authorized(&connection, request)?)
                .await?
                .into_inner();
            if r.ok {
                let _ = writeln!(
                    out,
                    "OK: {} records, {} signed checkpoints verified",
                    r.records_checked, r.checkpoints_checked
                );
                Ok(exit::VALID)
            } else {
                let _ = writeln!(
                    out,
                    "FAILED at record {}: {}",
                    r.first_bad_sequence.unwrap_or(0),
                    r.problem
                );
                Ok(exit::INVALID)
            }
        }
        ClientAuditCommand::Checkpoint { connection, format } => {
            let mut client = AuditServiceClient::new(channel(&connection).await?);
            let c = client
                .get_checkpoint(authorized(&connection, proto::GetCheckpointRequest {})?)
                .await?
                .into_inner();
            let saved = json::Checkpoint::from_proto(&c);
            match format {
                ClientFormat::Json => {
                    let json = serde_json::to_value(&saved).unwrap_or_default();
                    let _ = writeln!(out, "{json:#}");
                }
                ClientFormat::Text => {
                    let _ = write!(out, "{}", saved.note);
                    let _ = writeln!(out, "verifier key {}", saved.verifier_key);
                }
            }
            Ok(exit::VALID)
        }
    }
}
