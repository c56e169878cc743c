//! `kyso audit …`: the audit log of a data directory, read directly (the server may be
//! stopped).

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use super::client::{print_records, Filters, RecordFormat, SavedCheckpoint};
use super::{exit, report};
use kyso::audit::{self, AuditStore};

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

#[derive(Debug, Args)]
pub struct AuditQueryArgs {
    #[arg(long = "data-dir", value_name = "DIR", default_value = "kyso-data")]
    data_dir: PathBuf,
    #[command(flatten)]
    filters: Filters,
    #[arg(long, value_enum, default_value_t = RecordFormat::Table)]
    format: RecordFormat,
}

/// Why a data directory's log cannot be read.
#[derive(Debug, thiserror::Error)]
enum DataDirError {
    #[error("{0}: no audit log here")]
    NoLog(PathBuf),
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
    #[error(transparent)]
    Audit(#[from] audit::AuditError),
}

fn open_store(data_dir: &Path) -> Result<audit::sqlite::SqliteStore, DataDirError> {
    let db = data_dir.join("audit.sqlite3");
    if !db.exists() {
        return Err(DataDirError::NoLog(db));
    }
    Ok(audit::sqlite::SqliteStore::open(&db)?)
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
            audit::public_key_from_pem(&pem).map_err(|source| DataDirError::PublicKey {
                path: path.clone(),
                source,
            })
        }
        None => Ok(
            audit::CheckpointKey::load(&a.data_dir.join("audit-key.pem"))?
                .public_key()
                .clone(),
        ),
    }
}

/// `kyso audit …`.
pub fn audit(command: AuditCommand, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    match command {
        AuditCommand::Verify(a) => {
            let opened = open_store(&a.data_dir).and_then(|s| Ok((s, public_key(&a)?)));
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
                    report(err, &e);
                    exit::UNREADABLE
                }
            }
        }
        AuditCommand::Query(a) => {
            let found =
                open_store(&a.data_dir).and_then(|store| Ok(store.query(&a.filters.query())?));
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
    }
}
