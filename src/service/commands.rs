//! The command-line side of the service: `kyso serve`, `kyso audit …` on a data directory,
//! and `kyso client …`, a small real gRPC client for clerks and integrators.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use time::OffsetDateTime;

use super::config::Config;
use super::proto;
use crate::audit::{self, AuditStore, Record};
use crate::cli::exit;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML configuration (README, "Service configuration"); also `KYSO_CONFIG`.
    #[arg(long, value_name = "FILE", env = "KYSO_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:50051).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Where the audit log and its key live (default ./kyso-data).
    #[arg(long = "data-dir", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Trust anchors, as in `kyso verify`. Repeatable; replaces the configuration's list.
    #[arg(long, value_name = "PATH")]
    trust: Vec<PathBuf>,
    /// Intermediate CA certificates. Repeatable; replaces the configuration's list.
    #[arg(long, value_name = "PATH")]
    intermediates: Vec<PathBuf>,
    /// CRL files or folders. Repeatable; replaces the configuration's list.
    #[arg(long, value_name = "PATH")]
    crl: Vec<PathBuf>,
    /// offline, soft-fail (default), hard-fail or require.
    #[arg(long, value_name = "MODE")]
    revocation: Option<String>,
    /// Serve without authentication (refused on a non-loopback address).
    #[arg(long = "no-auth")]
    no_auth: bool,
    /// Trust a profile of the trust store for requests that name none. Repeatable;
    /// replaces the configuration's list.
    #[arg(long = "trust-profile", value_name = "NAME")]
    trust_profiles: Vec<String>,
    /// The trust store folder (default: DATA_DIR/trust).
    #[arg(long = "trust-store", value_name = "DIR")]
    trust_store: Option<PathBuf>,
    /// The document rules for requests that name none: decree-30 (default) or none.
    #[arg(long, value_name = "POLICY")]
    policy: Option<String>,
    /// The profile documents must be when a request does not say: issued (default),
    /// attachment, copy or any.
    #[arg(long, value_name = "PROFILE")]
    expect: Option<String>,
    /// The operator's roles file (TOML).
    #[arg(long, value_name = "FILE")]
    roles: Option<PathBuf>,
}

// Parsed once per run: the size difference between commands does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the hash chain and check the signed checkpoints of a data directory.
    Verify(AuditVerifyArgs),
    /// Print the records of a data directory that match the filters, newest first.
    Query(AuditQueryArgs),
}

#[derive(Debug, Args)]
pub struct AuditVerifyArgs {
    #[arg(long = "data-dir", value_name = "DIR", default_value = "kyso-data")]
    data_dir: PathBuf,
    /// First record to check (default: the first).
    #[arg(long, default_value_t = 0)]
    from: u64,
    /// Last record to check (default: the last).
    #[arg(long)]
    to: Option<u64>,
    /// A checkpoint saved earlier (`kyso client audit checkpoint --format json`): the log
    /// must still agree with it. Repeatable.
    #[arg(long = "checkpoint", value_name = "FILE")]
    checkpoints: Vec<PathBuf>,
    /// The service's checkpoint public key (PEM), kept outside the data directory
    /// (default: the key in the data directory).
    #[arg(long = "public-key", value_name = "FILE")]
    public_key: Option<PathBuf>,
}

/// A checkpoint as `kyso client audit checkpoint --format json` prints it and
/// `--checkpoint FILE` reads it back.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct SavedCheckpoint {
    sequence: u64,
    head_hash: String,
    /// RFC 3339, to the nanosecond (the signature covers it).
    time: String,
    signature: String,
    #[serde(default)]
    public_key_pem: String,
}

impl SavedCheckpoint {
    fn from_proto(c: &proto::Checkpoint) -> SavedCheckpoint {
        let time = rfc3339_text(c.time.as_ref()).unwrap_or_default();
        SavedCheckpoint {
            sequence: c.sequence,
            head_hash: c.head_hash.clone(),
            time,
            signature: c.signature.clone(),
            public_key_pem: c.public_key_pem.clone(),
        }
    }

    /// Reads the saved checkpoint at `path`, as the protocol carries it.
    fn read(path: &std::path::Path) -> Result<proto::Checkpoint, String> {
        let named = |e: String| format!("checkpoint {}: {e}", path.display());
        let text = std::fs::read_to_string(path).map_err(|e| named(e.to_string()))?;
        let saved: SavedCheckpoint = serde_json::from_str(&text).map_err(|e| {
            named(format!(
                "{e} (expected the JSON of `kyso client audit checkpoint --format json`)"
            ))
        })?;
        let time = rfc3339(&saved.time).map_err(|e| named(format!("time: {e}")))?;
        Ok(proto::Checkpoint {
            sequence: saved.sequence,
            head_hash: saved.head_hash,
            time: Some(super::convert::timestamp(time)),
            signature: saved.signature,
            public_key_pem: saved.public_key_pem,
        })
    }
}

/// The checkpoints saved at `paths`, as the audit log checks them.
fn kept_checkpoints(paths: &[PathBuf]) -> Result<Vec<audit::Checkpoint>, String> {
    paths
        .iter()
        .map(|p| {
            SavedCheckpoint::read(p).and_then(|c| {
                super::convert::from_checkpoint(&c).map_err(|e| format!("{}: {e}", p.display()))
            })
        })
        .collect()
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
    #[arg(long, value_parser = rfc3339)]
    since: Option<OffsetDateTime>,
    /// Records at or before this time (RFC 3339).
    #[arg(long, value_parser = rfc3339)]
    until: Option<OffsetDateTime>,
    /// The document number, e.g. 494-BC/TU.
    #[arg(long = "document-number")]
    document_number: Option<String>,
    /// At most this many records.
    #[arg(long, default_value_t = 50)]
    limit: usize,
}

#[derive(Debug, Args)]
pub struct AuditQueryArgs {
    #[arg(long = "data-dir", value_name = "DIR", default_value = "kyso-data")]
    data_dir: PathBuf,
    #[command(flatten)]
    filters: Filters,
    #[arg(long, value_enum, default_value_t = RecordFormat::Table)]
    format: RecordFormat,
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
    /// Language of the text summary.
    #[arg(long, default_value = "vi")]
    lang: String,
    /// The document rules (`decree-30` or `none`; default: the service's).
    #[arg(long, value_name = "POLICY")]
    policy: Option<String>,
    /// The profile the document must be: issued, attachment, copy or any (default: the
    /// service's).
    #[arg(long, value_name = "PROFILE")]
    expect: Option<crate::policy::Expect>,
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
fn rfc3339_text(t: Option<&prost_types::Timestamp>) -> Option<String> {
    t.and_then(super::convert::from_timestamp).and_then(|t| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    })
}

fn rfc3339(s: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("not an RFC 3339 time: {e}"))
}

fn runtime(err: &mut dyn Write) -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => Some(rt),
        Err(e) => {
            let _ = writeln!(err, "kyso: cannot start the async runtime: {e}");
            None
        }
    }
}

/// `kyso serve`: configuration file < environment < flags.
pub fn serve(args: ServeArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let mut config = match &args.config {
        Some(path) => match Config::from_file(path) {
            Ok(c) => c,
            Err(e) => {
                let _ = writeln!(err, "kyso: {e}");
                return exit::USAGE;
            }
        },
        None => Config::default(),
    };
    if let Err(e) = config.apply_env(|k| std::env::var(k).ok()) {
        let _ = writeln!(err, "kyso: {e}");
        return exit::USAGE;
    }
    if let Some(l) = args.listen {
        config.listen = l;
    }
    if let Some(d) = args.data_dir {
        config.data_dir = d;
    }
    if !args.trust.is_empty() {
        config.trust = args.trust;
    }
    if !args.intermediates.is_empty() {
        config.intermediates = args.intermediates;
    }
    if !args.crl.is_empty() {
        config.crl = args.crl;
    }
    if let Some(r) = args.revocation {
        config.revocation = r;
    }
    config.no_auth |= args.no_auth;
    if !args.trust_profiles.is_empty() {
        config.trust_profiles = args.trust_profiles;
    }
    if args.trust_store.is_some() {
        config.trust_store = args.trust_store;
    }
    if let Some(p) = args.policy {
        config.policy = p;
    }
    if let Some(e) = args.expect {
        config.expect = e;
    }
    if args.roles.is_some() {
        config.roles = args.roles;
    }
    let Some(rt) = runtime(err) else {
        return exit::UNREADABLE;
    };
    let data_dir = config.data_dir.clone();
    let result = rt.block_on(async {
        let running = super::start(config).await?;
        let _ = writeln!(
            out,
            "kyso {} serving gRPC on {} (audit log in {})",
            env!("CARGO_PKG_VERSION"),
            running.addr,
            data_dir.display()
        );
        let _ = out.flush();
        running.stop_on(shutdown_signal()).await
    });
    match result {
        Ok(()) => {
            let _ = writeln!(out, "kyso: stopped; every answered request is recorded");
            exit::VALID
        }
        Err(e) => {
            let _ = writeln!(err, "kyso: {e}");
            match e {
                super::ServeError::Config(_)
                | super::ServeError::Trust(_)
                | super::ServeError::Profile(_)
                | super::ServeError::Roles(_) => exit::USAGE,
                _ => exit::UNREADABLE,
            }
        }
    }
}

/// SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn open_store(
    data_dir: &std::path::Path,
    err: &mut dyn Write,
) -> Option<audit::sqlite::SqliteStore> {
    let db = data_dir.join("audit.sqlite3");
    if !db.exists() {
        let _ = writeln!(err, "kyso: {}: no audit log here", db.display());
        return None;
    }
    match audit::sqlite::SqliteStore::open(&db) {
        Ok(s) => Some(s),
        Err(e) => {
            let _ = writeln!(err, "kyso: {e}");
            None
        }
    }
}

/// `kyso audit …` on a data directory (the server may be stopped).
pub fn audit(command: AuditCommand, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    match command {
        AuditCommand::Verify(a) => {
            let Some(store) = open_store(&a.data_dir, err) else {
                return exit::UNREADABLE;
            };
            let key = match &a.public_key {
                Some(path) => std::fs::read(path)
                    .map_err(|e| e.to_string())
                    .and_then(|pem| audit::public_key_from_pem(&pem))
                    .map_err(|e| format!("{}: {e}", path.display())),
                None => audit::CheckpointKey::load(&a.data_dir.join("audit-key.pem"))
                    .map(|k| k.public_key().clone())
                    .map_err(|e| e.to_string()),
            };
            let key = match key {
                Ok(k) => k,
                Err(e) => {
                    let _ = writeln!(err, "kyso: {e}");
                    return exit::UNREADABLE;
                }
            };
            let kept = match kept_checkpoints(&a.checkpoints) {
                Ok(k) => k,
                Err(e) => {
                    let _ = writeln!(err, "kyso: {e}");
                    return exit::USAGE;
                }
            };
            match audit::verify_log(&store, &key, a.from, a.to, &kept) {
                Ok(check) if check.ok => {
                    let _ = writeln!(
                        out,
                        "OK: {} records, {} signed checkpoints verified",
                        check.records_checked, check.checkpoints_checked
                    );
                    exit::VALID
                }
                Ok(check) => {
                    let _ = writeln!(
                        out,
                        "FAILED at record {}: {}",
                        check.first_bad_sequence.unwrap_or(0),
                        check.problem
                    );
                    exit::INVALID
                }
                Err(e) => {
                    let _ = writeln!(err, "kyso: {e}");
                    exit::UNREADABLE
                }
            }
        }
        AuditCommand::Query(a) => {
            let Some(store) = open_store(&a.data_dir, err) else {
                return exit::UNREADABLE;
            };
            match store.query(&a.filters.query()) {
                Ok(records) => {
                    print_records(&records, a.format, out);
                    exit::VALID
                }
                Err(e) => {
                    let _ = writeln!(err, "kyso: {e}");
                    exit::UNREADABLE
                }
            }
        }
    }
}

impl Filters {
    fn query(&self) -> audit::Query {
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
            from: self.since.map(super::convert::timestamp),
            to: self.until.map(super::convert::timestamp),
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
    let time = rfc3339_text(r.time.as_ref()).unwrap_or_default();
    let signers: Vec<String> = r
        .signatures
        .iter()
        .map(|s| {
            format!(
                "{} ({})",
                s.signer_common_name.as_deref().unwrap_or("?"),
                s.sub_indication.as_deref().unwrap_or(&s.indication)
            )
        })
        .collect();
    [
        r.sequence.to_string(),
        time,
        r.principal.clone(),
        r.method.rsplit('/').next().unwrap_or_default().to_owned(),
        r.verdict.clone(),
        r.document_number.clone(),
        signers.join("; "),
        r.document_sha256.clone().unwrap_or_default(),
        r.error.clone().unwrap_or_default(),
    ]
}

fn record_json(r: &proto::AuditRecord) -> serde_json::Value {
    let time = |t: &Option<prost_types::Timestamp>| rfc3339_text(t.as_ref());
    serde_json::json!({
        "id": r.id,
        "sequence": r.sequence,
        "time": time(&r.time),
        "principal": r.principal,
        "peer": r.peer,
        "method": r.method,
        "document_sha256": r.document_sha256,
        "document_size": r.document_size,
        "document_id": r.document_id,
        "document_number": r.document_number,
        "sender": r.sender,
        "extra": r.extra,
        "signatures": r.signatures.iter().map(|s| serde_json::json!({
            "field": s.field,
            "signer_common_name": s.signer_common_name,
            "signer_organization": s.signer_organization,
            "signer_serial": s.signer_serial,
            "certificate_sha256": s.certificate_sha256,
            "issuer": s.issuer,
            "signing_time": time(&s.signing_time),
            "indication": s.indication,
            "sub_indication": s.sub_indication,
            "role": proto::Role::try_from(s.role).ok().filter(|r| *r != proto::Role::Unspecified).map(|r| r.as_str_name()),
        })).collect::<Vec<_>>(),
        "policy": r.policy.as_ref().map(|p| serde_json::json!({
            "id": p.id,
            "version": p.version,
            "sha256": p.sha256,
            "profile": proto::Profile::try_from(p.profile).map(|v| v.as_str_name()).unwrap_or("PROFILE_UNSPECIFIED"),
            "expected": proto::ExpectedProfile::try_from(p.expected).map(|v| v.as_str_name()).unwrap_or("EXPECTED_PROFILE_UNSPECIFIED"),
            "conforms": p.conforms,
        })),
        "verdict": r.verdict,
        "error": r.error,
        "kyso_version": r.kyso_version,
        "trust_fingerprint": r.trust_fingerprint,
        "previous_hash": r.previous_hash,
        "hash": r.hash,
    })
}

fn print_records(records: &[Record], format: RecordFormat, out: &mut dyn Write) {
    let converted: Vec<proto::AuditRecord> = records.iter().map(super::convert::record).collect();
    print_proto_records(&converted, format, out);
}

fn print_proto_records(records: &[proto::AuditRecord], format: RecordFormat, out: &mut dyn Write) {
    match format {
        RecordFormat::Json => {
            for r in records {
                let _ = writeln!(out, "{}", record_json(r));
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

async fn channel(c: &Connection) -> Result<tonic::transport::Channel, String> {
    let mut endpoint = tonic::transport::Endpoint::from_shared(c.server.clone())
        .map_err(|e| format!("{}: not a server URL: {e}", c.server))?;
    let read = |p: &PathBuf| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
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
        endpoint = endpoint.tls_config(tls).map_err(|e| e.to_string())?;
    } else if c.ca.is_some() || c.cert.is_some() {
        return Err(format!(
            "{}: --ca and --cert need an https:// server URL",
            c.server
        ));
    }
    endpoint
        .connect()
        .await
        .map_err(|e| format!("cannot reach {}: {e}", c.server))
}

fn authorized<T>(c: &Connection, message: T) -> Result<tonic::Request<T>, String> {
    let mut request = tonic::Request::new(message);
    if let Some(token) = &c.token {
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| "the token has characters a header cannot carry".to_owned())?;
        request.metadata_mut().insert("authorization", value);
    }
    Ok(request)
}

fn status_text(s: &tonic::Status) -> String {
    format!("{:?}: {}", s.code(), s.message())
}

/// `kyso client …`.
pub fn client(command: ClientCommand, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let Some(rt) = runtime(err) else {
        return exit::UNREADABLE;
    };
    let result: Result<u8, String> = rt.block_on(async {
        match command {
            ClientCommand::Verify(a) => client_verify(a, out).await,
            ClientCommand::Audit(cmd) => client_audit(cmd, out).await,
        }
    });
    result.unwrap_or_else(|e| {
        let _ = writeln!(err, "kyso: {e}");
        exit::UNREADABLE
    })
}

async fn client_verify(a: ClientVerifyArgs, out: &mut dyn Write) -> Result<u8, String> {
    use proto::verification_service_client::VerificationServiceClient;
    let bytes = std::fs::read(&a.file).map_err(|e| format!("{}: {e}", a.file.display()))?;
    let mut client = VerificationServiceClient::new(channel(&a.connection).await?)
        .max_decoding_message_size(256 << 20)
        .max_encoding_message_size(1 << 30);
    let metadata = proto::CallerMetadata {
        document_number: a.document_number.clone(),
        ..Default::default()
    };
    let options = proto::VerifyOptions {
        policy: a.policy.clone().unwrap_or_default(),
        expect: a.expect.map_or(
            proto::ExpectedProfile::Unspecified,
            super::convert::expected,
        ) as i32,
        trust_profile: a.trust_profile.clone().unwrap_or_default(),
        validation_time: None,
        locale: if a.lang == "en" {
            proto::Locale::En as i32
        } else {
            proto::Locale::Vi as i32
        },
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
    }
    .map_err(|s| status_text(&s))?
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
            let label = if a.lang == "en" {
                "Audit record"
            } else {
                "Bản ghi nhật ký kiểm tra"
            };
            let _ = writeln!(out, "{label}: {}", response.audit_record_id);
        }
        ClientFormat::Json => {
            let report = response.report.unwrap_or_default();
            let _ = writeln!(
                out,
                "{}",
                serde_json::json!({
                    "audit_record_id": response.audit_record_id,
                    "sha256": report.sha256,
                    "verdict": proto::Verdict::try_from(report.verdict).map(|v| v.as_str_name()).unwrap_or("VERDICT_UNSPECIFIED"),
                    "signatures": report.signatures.iter().map(|s| serde_json::json!({
                        "field": s.field,
                        "signer": s.signer.as_ref().and_then(|x| x.common_name.clone()),
                        "indication": proto::Indication::try_from(s.indication).map(|v| v.as_str_name()).unwrap_or(""),
                        "sub_indication": proto::SubIndication::try_from(s.sub_indication).map(|v| v.as_str_name()).unwrap_or(""),
                    })).collect::<Vec<_>>(),
                })
            );
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

async fn client_audit(cmd: ClientAuditCommand, out: &mut dyn Write) -> Result<u8, String> {
    use proto::audit_service_client::AuditServiceClient;
    match cmd {
        ClientAuditCommand::Query {
            connection,
            filters,
            format,
        } => {
            let mut client = AuditServiceClient::new(channel(&connection).await?);
            let response = client
                .query_records(authorized(&connection, filters.request())?)
                .await
                .map_err(|s| status_text(&s))?
                .into_inner();
            print_proto_records(&response.records, format, out);
            Ok(exit::VALID)
        }
        ClientAuditCommand::Verify {
            connection,
            checkpoints,
        } => {
            let kept_checkpoints = checkpoints
                .iter()
                .map(|p| SavedCheckpoint::read(p))
                .collect::<Result<Vec<_>, _>>()?;
            let request = proto::VerifyLogRequest {
                kept_checkpoints,
                ..Default::default()
            };
            let mut client = AuditServiceClient::new(channel(&connection).await?);
            let r = client
                .verify_log(authorized(&connection, request)?)
                .await
                .map_err(|s| status_text(&s))?
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
                .await
                .map_err(|s| status_text(&s))?
                .into_inner();
            let saved = SavedCheckpoint::from_proto(&c);
            match format {
                ClientFormat::Json => {
                    let json = serde_json::to_string_pretty(&saved).map_err(|e| e.to_string())?;
                    let _ = writeln!(out, "{json}");
                }
                ClientFormat::Text => {
                    let _ = writeln!(out, "sequence  {}", saved.sequence);
                    let _ = writeln!(out, "time      {}", saved.time);
                    let _ = writeln!(out, "head      {}", saved.head_hash);
                    let _ = writeln!(out, "signature {}", saved.signature);
                    let _ = write!(out, "{}", saved.public_key_pem);
                }
            }
            Ok(exit::VALID)
        }
    }
}
