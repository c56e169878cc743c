//! `kyso audit …`: the audit log of a data directory, read directly (the server may be
//! stopped), and `kyso audit verify-proof`, which needs no log at all: only the log's
//! verifier key.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, Subcommand};

use super::client::{print_records, Filters, RecordFormat, SavedCheckpoint};
use super::{exit, report};
use kyso::audit::{self, AuditStore};
use kyso::service::json;

// Parsed once per run: the size difference between commands does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the hash chain and check the signed checkpoints of a data directory.
    Verify(AuditVerifyArgs),
    /// Print the records of a data directory that match the filters, newest first.
    Query(AuditQueryArgs),
    /// Print the log's verifier key (<name>+<key id>+<base64 key>), for auditors and
    /// receipts.
    PublicKey(LogArgs),
    /// Print the latest signed checkpoint.
    Checkpoint(CheckpointArgs),
    /// Print a record's inclusion proof under a signed checkpoint.
    Prove(ProveArgs),
    /// Print the proof that an earlier tree is a prefix of a later signed one.
    Consistency(ConsistencyArgs),
    /// Check an inclusion proof, a consistency proof or a receipt offline, with the
    /// verifier key alone.
    VerifyProof(VerifyProofArgs),
}

/// The log to read: the data directory holds its checkpoint key and, unless
/// `--audit-store` names another, its SQLite database.
#[derive(Debug, Args)]
pub struct LogArgs {
    #[arg(long = "data-dir", value_name = "DIR", default_value = "kyso-data")]
    data_dir: PathBuf,
    /// The log's store: sqlite:PATH or a postgres:// URL (default: the data directory's
    /// audit.sqlite3; also KYSO_AUDIT_STORE).
    #[arg(
        long = "audit-store",
        value_name = "URL",
        env = "KYSO_AUDIT_STORE",
        hide_env_values = true
    )]
    audit_store: Option<String>,
}

/// How a checkpoint or a proof is printed.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ProofFormat {
    /// For a person.
    Text,
    /// What `kyso audit verify-proof` and `--checkpoint FILE` read.
    Json,
}

#[derive(Debug, Args)]
pub struct CheckpointArgs {
    #[command(flatten)]
    log: LogArgs,
    #[arg(long, value_enum, default_value_t = ProofFormat::Text)]
    format: ProofFormat,
}

#[derive(Debug, Args)]
pub struct ProveArgs {
    #[command(flatten)]
    log: LogArgs,
    /// The record's id.
    #[arg(long, value_name = "ID")]
    record: u64,
    /// The size of the signed tree to prove it in (default: the latest checkpoint's).
    #[arg(long, value_name = "N")]
    size: Option<u64>,
    #[arg(long, value_enum, default_value_t = ProofFormat::Json)]
    format: ProofFormat,
}

#[derive(Debug, Args)]
pub struct ConsistencyArgs {
    #[command(flatten)]
    log: LogArgs,
    /// The older tree's size (a saved checkpoint's tree_size).
    #[arg(long = "old-size", value_name = "N")]
    old_size: u64,
    /// The size of the newer signed tree (default: the latest checkpoint's).
    #[arg(long = "new-size", value_name = "M")]
    new_size: Option<u64>,
    #[arg(long, value_enum, default_value_t = ProofFormat::Json)]
    format: ProofFormat,
}

#[derive(Debug, Args)]
pub struct VerifyProofArgs {
    /// The proof: `kyso audit prove` or `kyso audit consistency` JSON, or a verification
    /// answer (or its `receipt`) from the service.
    file: PathBuf,
    /// The log's verifier key (`kyso audit public-key`), or a file that holds it.
    #[arg(long, value_name = "KEY")]
    key: String,
    /// For a consistency proof: the checkpoint saved earlier, which the proof must start
    /// from (without it, the old tree is the log's word).
    #[arg(long = "checkpoint", value_name = "FILE")]
    checkpoint: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct AuditVerifyArgs {
    #[command(flatten)]
    log: LogArgs,
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
    /// The log's verifier key (`kyso audit public-key`) or the checkpoint public key
    /// (PEM), kept outside the data directory (default: the key in the data directory).
    #[arg(long = "public-key", value_name = "FILE")]
    public_key: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct AuditQueryArgs {
    #[command(flatten)]
    log: LogArgs,
    #[command(flatten)]
    filters: Filters,
    #[arg(long, value_enum, default_value_t = RecordFormat::Table)]
    format: RecordFormat,
}

/// Why a data directory's log cannot be read.
#[derive(Debug, thiserror::Error)]
enum DataDirError {
    #[error("{0}: no audit log here")]
    NoLog(String),
    #[error("cannot read the public key {path}")]
    PublicKeyFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the public key {path}")]
    PublicKey {
        path: PathBuf,
        #[source]
        source: audit::KeyError,
    },
    #[error(
        "the log has no name yet (no kyso has served with it): it has no checkpoints of its tree"
    )]
    Unnamed,
    #[error("{}", match .0 { Some(n) => format!("no checkpoint of a tree of {n} records was signed"), None => "no checkpoint of the tree has been signed yet".to_owned() })]
    NoCheckpoint(Option<u64>),
    #[error(transparent)]
    Audit(#[from] audit::AuditError),
}

/// The log's verifier key: its origin from the store, its key from the data directory.
fn log_verifier_key(
    data_dir: &Path,
    store: &dyn AuditStore,
) -> Result<audit::tree::VerifierKey, DataDirError> {
    let origin = store.origin()?.ok_or(DataDirError::Unnamed)?;
    let key = audit::CheckpointKey::load(&data_dir.join("audit-key.pem"))?;
    Ok(audit::verifier_key(&origin, key.public_key())?)
}

/// The signed checkpoint of `size` records (`None`: the latest).
fn checkpoint_of(
    store: &dyn AuditStore,
    size: Option<u64>,
) -> Result<audit::tree::SignedCheckpoint, DataDirError> {
    let found = match size {
        None => store.latest_tree_checkpoint()?,
        Some(n) => store.tree_checkpoints(n, Some(n))?.pop(),
    };
    found.ok_or(DataDirError::NoCheckpoint(size))
}

/// Prints a proof as JSON, or for a person: `text` gives its heading, its hashes and its
/// signed checkpoint.
fn print_proof<P: serde::Serialize>(
    proven: Result<P, DataDirError>,
    format: ProofFormat,
    out: &mut dyn Write,
    err: &mut dyn Write,
    text: impl Fn(&P) -> (String, &Vec<String>, &String),
) -> u8 {
    let p = match proven {
        Ok(p) => p,
        Err(e) => {
            report(err, &e);
            return exit::UNREADABLE;
        }
    };
    match format {
        ProofFormat::Json => print_json(out, &p),
        ProofFormat::Text => {
            let (heading, hashes, checkpoint) = text(&p);
            let _ = writeln!(out, "{heading}");
            for h in hashes {
                let _ = writeln!(out, "  {h}");
            }
            let _ = write!(out, "{checkpoint}");
        }
    }
    exit::VALID
}

fn print_json(out: &mut dyn Write, value: &impl serde::Serialize) {
    let json = serde_json::to_value(value).unwrap_or_default();
    let _ = writeln!(out, "{json:#}");
}

fn open_store(log: &LogArgs) -> Result<Arc<dyn AuditStore>, DataDirError> {
    let location = match &log.audit_store {
        Some(given) => audit::Location::parse(given)?,
        None => audit::Location::Sqlite(log.data_dir.join("audit.sqlite3")),
    };
    if !location.exists() {
        return Err(DataDirError::NoLog(location.to_string()));
    }
    Ok(location.open()?)
}

fn public_key(
    a: &AuditVerifyArgs,
) -> Result<openssl::pkey::PKey<openssl::pkey::Public>, DataDirError> {
    match &a.public_key {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|source| DataDirError::PublicKeyFile {
                path: path.clone(),
                source,
            })?;
            // The PEM of the key, or the log's verifier key (`kyso audit public-key`).
            if let Ok(key) = std::str::from_utf8(&pem)
                .map_err(|_| ())
                .and_then(|t| audit::tree::VerifierKey::parse(t).map_err(|_| ()))
            {
                return openssl::pkey::PKey::public_key_from_raw_bytes(
                    &key.ed25519_key(),
                    openssl::pkey::Id::ED25519,
                )
                .map_err(|e| DataDirError::PublicKey {
                    path: path.clone(),
                    source: e.into(),
                });
            }
            audit::public_key_from_pem(&pem).map_err(|source| DataDirError::PublicKey {
                path: path.clone(),
                source,
            })
        }
        None => Ok(
            audit::CheckpointKey::load(&a.log.data_dir.join("audit-key.pem"))?
                .public_key()
                .clone(),
        ),
    }
}

/// `kyso audit …`.
pub fn audit(command: AuditCommand, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    match command {
        AuditCommand::Verify(a) => {
            let opened = open_store(&a.log).and_then(|s| Ok((s, public_key(&a)?)));
            let (store, key) = match opened {
                Ok(k) => k,
                Err(e) => {
                    report(err, &e);
                    return exit::UNREADABLE;
                }
            };
            let kept = match SavedCheckpoint::read_all(&a.checkpoints) {
                Ok(kept) => kept,
                Err(e) => {
                    report(err, &e);
                    return exit::USAGE;
                }
            };
            match audit::verify_log(store.as_ref(), &key, a.from, a.to, &kept) {
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
                    report(err, &e);
                    exit::UNREADABLE
                }
            }
        }
        AuditCommand::Query(a) => {
            let found = open_store(&a.log).and_then(|store| Ok(store.query(&a.filters.query())?));
            match found {
                Ok(records) => {
                    print_records(&records, a.format, out);
                    exit::VALID
                }
                Err(e) => {
                    report(err, &e);
                    exit::UNREADABLE
                }
            }
        }
        AuditCommand::PublicKey(a) => {
            let key =
                open_store(&a).and_then(|store| log_verifier_key(&a.data_dir, store.as_ref()));
            match key {
                Ok(key) => {
                    let _ = writeln!(out, "{}", key.as_str());
                    exit::VALID
                }
                Err(e) => {
                    report(err, &e);
                    exit::UNREADABLE
                }
            }
        }
        AuditCommand::Checkpoint(a) => {
            let found = open_store(&a.log).and_then(|store| {
                let key = log_verifier_key(&a.log.data_dir, store.as_ref())?;
                Ok((checkpoint_of(store.as_ref(), None)?, key))
            });
            match found {
                Ok((cp, key)) => {
                    match a.format {
                        ProofFormat::Json => {
                            print_json(out, &json::Checkpoint::of(&cp, key.as_str().to_owned()))
                        }
                        ProofFormat::Text => {
                            let _ = write!(out, "{}", cp.note);
                            let _ = writeln!(out, "verifier key {}", key.as_str());
                        }
                    }
                    exit::VALID
                }
                Err(e) => {
                    report(err, &e);
                    exit::UNREADABLE
                }
            }
        }
        AuditCommand::Prove(a) => {
            let proven = open_store(&a.log).and_then(|store| {
                let cp = checkpoint_of(store.as_ref(), a.size)?;
                Ok(audit::prove(store.as_ref(), a.record, &cp)?)
            });
            let heading = |p: &audit::tree::InclusionProof| {
                format!(
                    "record {} is leaf {} of the tree of {} records; audit path:",
                    a.record, p.leaf_index, p.tree_size
                )
            };
            print_proof(proven, a.format, out, err, |p| {
                (heading(p), &p.inclusion, &p.checkpoint)
            })
        }
        AuditCommand::Consistency(a) => {
            let proven = open_store(&a.log).and_then(|store| {
                let cp = checkpoint_of(store.as_ref(), a.new_size)?;
                Ok(audit::prove_consistency(store.as_ref(), a.old_size, &cp)?)
            });
            print_proof(proven, a.format, out, err, |p| {
                let heading = format!(
                    "the tree of {} records (root {}) is a prefix of the tree of {}; proof:",
                    p.old_size, p.old_root, p.new_size
                );
                (heading, &p.proof, &p.checkpoint)
            })
        }
        AuditCommand::VerifyProof(a) => verify_proof(&a, out, err),
    }
}

/// Why a proof file cannot be checked (as opposed to a proof that fails).
#[derive(Debug, thiserror::Error)]
enum ProofFileError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not the JSON of an inclusion proof, a consistency proof or a receipt")]
    Kind { path: PathBuf },
    #[error("{path}: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("the verifier key")]
    Key(#[source] audit::tree::ProofError),
    #[error("the saved checkpoint")]
    Saved(#[source] super::client::CheckpointFileError),
}

/// The proof in `value`: a proof as `kyso audit prove|consistency` print it, or an answer
/// (or receipt) that carries one.
enum ProofKind {
    Inclusion(audit::tree::InclusionProof),
    Consistency(audit::tree::ConsistencyProof),
}

fn proof_kind(path: &Path, value: serde_json::Value) -> Result<ProofKind, ProofFileError> {
    let json_error = |source| ProofFileError::Json {
        path: path.to_owned(),
        source,
    };
    let value = match value.get("receipt") {
        Some(receipt) => receipt.clone(),
        None => value,
    };
    if value.get("inclusion").is_some() {
        serde_json::from_value(value)
            .map(ProofKind::Inclusion)
            .map_err(json_error)
    } else if value.get("old_size").is_some() {
        serde_json::from_value(value)
            .map(ProofKind::Consistency)
            .map_err(json_error)
    } else {
        Err(ProofFileError::Kind {
            path: path.to_owned(),
        })
    }
}

/// The key given as text, or read from the file it names.
fn read_key(given: &str) -> Result<audit::tree::VerifierKey, ProofFileError> {
    match audit::tree::VerifierKey::parse(given) {
        Ok(key) => Ok(key),
        Err(e) => match std::fs::read_to_string(given) {
            Ok(text) => audit::tree::VerifierKey::parse(&text).map_err(ProofFileError::Key),
            Err(_) => Err(ProofFileError::Key(e)),
        },
    }
}

/// What the proven record says kyso answered, for the reader of a receipt.
fn print_record(out: &mut dyn Write, bytes: &[u8]) {
    let Some(r) = audit::Record::decode(bytes) else {
        let _ = writeln!(
            out,
            "  (its record is in an encoding this kyso does not read)"
        );
        return;
    };
    let e = &r.entry;
    let time = e
        .time
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let mut fields = vec![
        ("time", time),
        ("caller", e.principal.clone()),
        ("method", e.method.clone()),
    ];
    if let Some(sha) = &e.document_sha256 {
        fields.push(("document SHA-256", sha.clone()));
    }
    if !e.metadata.document_number.is_empty() {
        fields.push(("document number", e.metadata.document_number.clone()));
    }
    if !e.verdict.is_empty() {
        fields.push(("verdict", e.verdict.clone()));
    }
    if let Some(error) = &e.error {
        fields.push(("refused", error.clone()));
    }
    for s in &e.signatures {
        let who = s.signer_common_name.as_deref().unwrap_or("?");
        let how = match &s.sub_indication {
            Some(sub) => format!("{} ({sub})", s.indication),
            None => s.indication.clone(),
        };
        fields.push(("signature", format!("{who}: {how}")));
    }
    if let Some(p) = &e.policy {
        let conforms = if p.conforms {
            "conforms"
        } else {
            "does not conform"
        };
        fields.push(("policy", format!("{} {}: {conforms}", p.id, p.version)));
    }
    for (name, value) in fields {
        let _ = writeln!(out, "  {name}: {value}");
    }
}

fn verify_proof(a: &VerifyProofArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let read = || -> Result<_, ProofFileError> {
        let key = read_key(&a.key)?;
        let text = std::fs::read_to_string(&a.file).map_err(|source| ProofFileError::Read {
            path: a.file.clone(),
            source,
        })?;
        let value = serde_json::from_str(&text).map_err(|source| ProofFileError::Json {
            path: a.file.clone(),
            source,
        })?;
        let saved = a
            .checkpoint
            .as_deref()
            .map(SavedCheckpoint::read)
            .transpose()
            .map_err(ProofFileError::Saved)?;
        Ok((key, proof_kind(&a.file, value)?, saved))
    };
    let (key, proof, saved) = match read() {
        Ok(read) => read,
        Err(e) => {
            report(err, &e);
            return exit::USAGE;
        }
    };
    // A saved checkpoint is taken only once it opens with the key.
    let saved = match saved
        .map(|s| audit::tree::SignedCheckpoint::open(&s.note, &key))
        .transpose()
    {
        Ok(saved) => saved,
        Err(e) => {
            let _ = writeln!(out, "FAILED: the saved checkpoint: {e}");
            return exit::INVALID;
        }
    };
    let checked = match &proof {
        ProofKind::Inclusion(p) => p.verify(&key),
        ProofKind::Consistency(p) => p.verify(&key, saved.as_ref()),
    };
    match checked {
        Ok(audit::tree::Proven::Inclusion {
            leaf_index,
            record,
            checkpoint,
        }) => {
            let _ = writeln!(
                out,
                "OK: record {} is leaf {leaf_index} of the log {} of {} records, under its signed checkpoint",
                leaf_index + 1,
                key.name(),
                checkpoint.head.size
            );
            print_record(out, &record);
            exit::VALID
        }
        Ok(audit::tree::Proven::Consistency { old, checkpoint }) => {
            let whose = if saved.is_some() {
                "the saved checkpoint's"
            } else {
                "the proof's (give --checkpoint to check it is the one you saved)"
            };
            let _ = writeln!(
                out,
                "OK: the log {} of {} records holds the tree of {} records it had, unchanged (old root {whose})",
                key.name(),
                checkpoint.head.size,
                old.size
            );
            exit::VALID
        }
        Err(e) => {
            let _ = writeln!(out, "FAILED: {e}");
            exit::INVALID
        }
    }
}
