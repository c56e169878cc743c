//! The tamper-evident audit log: one record per request kyso answers (or rejects), chained
//! by hashes and sealed by signed checkpoints.
//!
//! Each record carries the SHA-256 of the one before. The hash covers a versioned,
//! domain-separated, length-prefixed encoding of every field ([`Record::canonical`]), so a
//! record changed, deleted, inserted or moved breaks the chain at that record. Every group
//! commit is sealed, in its own transaction, by a checkpoint — sequence, head hash, time —
//! signed with the service's Ed25519 key, so that rewriting the whole chain after a
//! checkpoint is detected too, and a record no checkpoint covers is one kyso did not write:
//! kyso refuses to extend (and sign over) a log that holds one, or a record numbered outside
//! 1..n ([`AuditError::Unaccounted`]). Signing costs tens of microseconds, against the
//! commit's `fsync`.
//!
//! Records are written by one writer thread with group commit: every record waiting when a
//! transaction starts goes into it, and each caller is answered once its record is durable.
//! Storage is behind [`AuditStore`]; SQLite ([`sqlite::SqliteStore`]) is the embedded one.

pub mod postgres;
pub mod sqlite;
pub mod tree;

/// Where a log is kept: `sqlite:PATH` (or a bare path), or a PostgreSQL URL
/// (`postgres://…`, `postgresql://…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A SQLite file.
    Sqlite(std::path::PathBuf),
    /// A PostgreSQL database, shared by several instances.
    Postgres(String),
}

impl Location {
    /// Reads `given`.
    pub fn parse(given: &str) -> Result<Location, AuditError> {
        if given.starts_with("postgres://") || given.starts_with("postgresql://") {
            return Ok(Location::Postgres(given.to_owned()));
        }
        let path = given.strip_prefix("sqlite:").unwrap_or(given);
        if path.is_empty() || given.contains("://") {
            return Err(AuditError::Location {
                given: given.to_owned(),
                why: "not sqlite:PATH nor a postgres:// URL",
            });
        }
        Ok(Location::Sqlite(path.into()))
    }

    /// Opens (creating and migrating) the store.
    pub fn open(&self) -> Result<Arc<dyn AuditStore>, AuditError> {
        Ok(match self {
            Location::Sqlite(path) => Arc::new(sqlite::SqliteStore::open(path)?),
            Location::Postgres(url) => Arc::new(postgres::PgStore::connect(url)?),
        })
    }

    /// Whether a log is there already (a PostgreSQL database is taken to be).
    pub fn exists(&self) -> bool {
        match self {
            Location::Sqlite(path) => path.exists(),
            Location::Postgres(_) => true,
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Sqlite(p) => write!(f, "sqlite:{}", p.display()),
            // The URL may hold a password: its scheme and host only.
            Location::Postgres(url) => {
                let host = url
                    .split_once("://")
                    .map(|(_, rest)| rest.rsplit_once('@').map_or(rest, |(_, h)| h))
                    .unwrap_or_default();
                let host = host.split(['/', '?']).next().unwrap_or_default();
                write!(f, "postgres://{host}")
            }
        }
    }
}

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use base64::prelude::Engine as _;
use openssl::pkey::{PKey, Private, Public};
use openssl::sign::Verifier;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Most records in one transaction.
pub const MAX_BATCH: usize = 4096;

const RECORD_DOMAIN: &[u8] = b"kyso/audit-record/v1\0";
/// Version 2 adds each signature's role and the policy result. A record that has neither
/// (written before them, or a rejected request) keeps the version 1 encoding, so every
/// record already in a log keeps its hash.
const RECORD_DOMAIN_V2: &[u8] = b"kyso/audit-record/v2\0";
const CHECKPOINT_DOMAIN: &[u8] = b"kyso/audit-checkpoint/v1\0";

/// Why the audit log could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The database failed.
    #[error("audit store")]
    Store(#[from] rusqlite::Error),
    /// The PostgreSQL database failed.
    #[error("audit store (PostgreSQL)")]
    Postgres(#[from] tokio_postgres::Error),
    /// No PostgreSQL connection could be had from the readers' pool.
    #[error("audit store (PostgreSQL): no connection")]
    PostgresPool(#[from] deadpool_postgres::PoolError),
    /// The PostgreSQL driver's runtime or pool could not be set up.
    #[error("audit store (PostgreSQL): cannot start the driver")]
    PostgresDriver(#[source] std::io::Error),
    /// The store's location does not read.
    #[error("audit store {given:?}: {why}")]
    Location {
        /// What was given.
        given: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The database was written by a newer kyso.
    #[error("the audit database has schema version {found}, newer than this kyso knows ({known})")]
    NewerSchema {
        /// The database's schema version.
        found: usize,
        /// The newest this kyso knows.
        known: usize,
    },
    /// The checkpoint key cannot be read, made or used.
    #[error("audit key {path}")]
    Key {
        /// The key file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        #[source]
        source: KeyError,
    },
    /// The writer thread could not be started.
    #[error("cannot start the audit writer")]
    Writer(#[source] std::io::Error),
    /// The group commit that carried a record failed.
    #[error("the audit log could not commit the record")]
    Commit(#[source] Arc<AuditError>),
    /// The log takes no more records.
    #[error("the audit log is closed")]
    Closed,
    /// The store holds records no checkpoint kyso signed covers, or numbered outside 1..n:
    /// kyso does not extend (nor sign over) a log it cannot account for.
    #[error("audit record {first} is not accounted for: {why}; kyso does not extend this log (check it with kyso audit verify)")]
    Unaccounted {
        /// The first record in question.
        first: i64,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The origin cannot name a signed-note key.
    #[error("the audit log origin {origin:?} cannot name a signed-note key: it must be non-empty, without spaces or '+' (e.g. kyso.example.gov.vn/audit)")]
    Origin {
        /// The origin given.
        origin: String,
    },
    /// The configuration names the log otherwise than its store does.
    #[error("the audit log is named {stored:?}, but the configuration names it {configured:?}; a log keeps the name its first checkpoint gave it")]
    OriginMismatch {
        /// The store's origin.
        stored: String,
        /// The configured one.
        configured: String,
    },
    /// The new tree is not an extension of the last signed one: kyso signs no checkpoint
    /// that contradicts an earlier one.
    #[error("the Merkle tree of {size} records is not an extension of the signed checkpoint of {signed}: the stored tree was changed; kyso signs no checkpoint over it (check it with kyso audit verify)")]
    Inconsistent {
        /// The new tree's size.
        size: u64,
        /// The last signed tree's size.
        signed: u64,
    },
    /// The stored tree cannot be read or extended (a hash is missing).
    #[error("the audit log's Merkle tree: {0}")]
    Tree(String),
    /// A stored record does not decode.
    #[error("audit record {sequence} is unreadable")]
    Corrupt {
        /// The record's sequence.
        sequence: u64,
        /// What does not decode.
        #[source]
        source: Corruption,
    },
}

/// What is wrong with a checkpoint key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file cannot be read or written.
    #[error("cannot read or write the file")]
    Io(#[from] std::io::Error),
    /// OpenSSL cannot read, make or use the key.
    #[error("OpenSSL: {reason}")]
    Crypto {
        /// OpenSSL's first reason.
        reason: String,
    },
    /// The key is not an Ed25519 key.
    #[error("not an Ed25519 key")]
    NotEd25519,
}

/// The verifier key of the log `origin` whose checkpoints `public` verifies.
pub fn verifier_key(origin: &str, public: &PKey<Public>) -> Result<tree::VerifierKey, AuditError> {
    let raw: [u8; 32] = public
        .raw_public_key()
        .ok()
        .and_then(|r| r.try_into().ok())
        .ok_or_else(|| {
            AuditError::Tree("the checkpoint key has no raw Ed25519 public key".into())
        })?;
    tree::VerifierKey::ed25519(origin, &raw).map_err(|_| AuditError::Origin {
        origin: origin.to_owned(),
    })
}

impl From<openssl::error::ErrorStack> for KeyError {
    fn from(e: openssl::error::ErrorStack) -> Self {
        KeyError::Crypto {
            reason: crate::cms::first_openssl_reason(&e),
        }
    }
}

/// Why a stored record does not decode.
#[derive(Debug, thiserror::Error)]
pub enum Corruption {
    /// A column has the wrong type or is missing.
    #[error("a column")]
    Column(#[from] rusqlite::Error),
    /// A PostgreSQL column has the wrong type or is missing.
    #[error("a column")]
    PgColumn(#[from] tokio_postgres::Error),
    /// A JSON column does not parse.
    #[error("a JSON column")]
    Json(#[from] serde_json::Error),
    /// The time is out of range.
    #[error("its time")]
    Time(#[from] time::error::ComponentRange),
    /// A stored hash is not 32 bytes.
    #[error("a hash is not 32 bytes")]
    HashLength,
}

/// What the caller said about the document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// The caller's id of the document (in its DMS).
    pub document_id: String,
    /// The document number, e.g. `494-BC/TU`.
    pub document_number: String,
    /// Who sent the document.
    pub sender: String,
    /// Anything else the caller attached.
    pub extra: BTreeMap<String, String>,
}

/// One signature as the audit log keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureSummary {
    /// The signature field's name.
    pub field: Option<String>,
    /// The signer's commonName.
    pub signer_common_name: Option<String>,
    /// The signer's organizationName.
    pub signer_organization: Option<String>,
    /// The signer certificate's serial, upper-case hex.
    pub signer_serial: Option<String>,
    /// Hex SHA-256 of the signer's certificate.
    pub certificate_sha256: Option<String>,
    /// The signer certificate's issuer.
    pub issuer: Option<String>,
    /// Unix seconds.
    pub signing_time: Option<i64>,
    /// The ETSI indication's name, e.g. `PASSED`.
    pub indication: String,
    /// The sub-indication's name, e.g. `REVOKED_NO_POE`.
    pub sub_indication: Option<String>,
    /// `None` in records from before roles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<crate::policy::Role>,
}

/// The policy result as the audit log keeps it: enough to re-derive the judgement with the
/// same definition (its id, version and SHA-256).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicySummary {
    /// The policy's id, e.g. `decree-30`.
    pub id: String,
    /// The policy's version.
    pub version: String,
    /// Hex SHA-256 of the policy's definition as applied.
    pub sha256: String,
    /// The profile the document matches.
    pub profile: crate::policy::Profile,
    /// The profile the caller expected.
    pub expected: crate::policy::Expect,
    /// Whether the document conforms.
    pub conforms: bool,
}

impl PolicySummary {
    /// What a record keeps of the policy's judgement `p`.
    pub fn of(p: &crate::policy::PolicyReport) -> PolicySummary {
        PolicySummary {
            id: p.id.to_owned(),
            version: p.version.to_owned(),
            sha256: p.sha256.clone(),
            profile: p.profile,
            expected: p.expected,
            conforms: p.conforms,
        }
    }
}

/// A record before the log gives it its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// When the request was answered.
    pub time: OffsetDateTime,
    /// Who called.
    pub principal: String,
    /// From where (the peer address).
    pub peer: String,
    /// The gRPC method or HTTP route.
    pub method: String,
    /// Hex SHA-256 of the document, when one was sent.
    pub document_sha256: Option<String>,
    /// The document's size in bytes.
    pub document_size: Option<u64>,
    /// What the caller said about the document.
    pub metadata: Metadata,
    /// Each signature as verified.
    pub signatures: Vec<SignatureSummary>,
    /// `VALID`, `INVALID`, `INDETERMINATE`, `UNSIGNED`; empty for a rejected request.
    pub verdict: String,
    /// The status code and message of a rejected request.
    pub error: Option<String>,
    /// The kyso that answered.
    pub kyso_version: String,
    /// The fingerprint of the trust it verified with.
    pub trust_fingerprint: String,
    /// The document policy's result; `None` for a rejected request, policy `none`, and
    /// records from before policies.
    pub policy: Option<PolicySummary>,
}

impl Entry {
    /// The summaries of a report's signatures.
    pub fn summarize(report: &crate::Report) -> Vec<SignatureSummary> {
        report
            .signatures
            .iter()
            .map(|s| SignatureSummary {
                field: s.field.clone(),
                signer_common_name: s.signer.as_ref().and_then(|x| x.common_name.clone()),
                signer_organization: s.signer.as_ref().and_then(|x| x.organization.clone()),
                signer_serial: s.signer.as_ref().map(|x| x.serial.clone()),
                certificate_sha256: s.signer.as_ref().map(|x| x.certificate_sha256.clone()),
                issuer: s.signer.as_ref().map(|x| x.issuer.clone()),
                signing_time: s.signing_time.map(|t| t.unix_timestamp()),
                indication: s.indication.name().to_owned(),
                sub_indication: s.sub_indication.map(|x| x.name().to_owned()),
                role: Some(s.role),
            })
            .collect()
    }
}

/// A record in its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its place in the log, from 1.
    pub sequence: u64,
    /// What it records.
    pub entry: Entry,
    /// The hash of the record before (zeros for the first).
    pub previous_hash: [u8; 32],
    /// This record's hash.
    pub hash: [u8; 32],
}

impl Record {
    /// The bytes the record's hash covers: a domain tag with the format version, then every
    /// field in a fixed order, each length-prefixed (u32, big-endian), optional fields behind
    /// a presence byte, maps in key order.
    pub fn canonical(sequence: u64, previous: &[u8; 32], e: &Entry) -> Vec<u8> {
        let v2 = e.policy.is_some() || e.signatures.iter().any(|s| s.role.is_some());
        let mut out = Vec::with_capacity(512);
        out.extend_from_slice(if v2 { RECORD_DOMAIN_V2 } else { RECORD_DOMAIN });
        out.extend_from_slice(&sequence.to_be_bytes());
        out.extend_from_slice(previous);
        out.extend_from_slice(&(e.time.unix_timestamp_nanos() as i64).to_be_bytes());
        for s in [&e.principal, &e.peer, &e.method] {
            put(&mut out, s);
        }
        put_opt(&mut out, e.document_sha256.as_deref());
        match e.document_size {
            Some(n) => {
                out.push(1);
                out.extend_from_slice(&n.to_be_bytes());
            }
            None => out.push(0),
        }
        let m = &e.metadata;
        for s in [&m.document_id, &m.document_number, &m.sender] {
            put(&mut out, s);
        }
        out.extend_from_slice(&(m.extra.len() as u32).to_be_bytes());
        for (k, v) in &m.extra {
            put(&mut out, k);
            put(&mut out, v);
        }
        out.extend_from_slice(&(e.signatures.len() as u32).to_be_bytes());
        for s in &e.signatures {
            for f in [
                &s.field,
                &s.signer_common_name,
                &s.signer_organization,
                &s.signer_serial,
                &s.certificate_sha256,
                &s.issuer,
            ] {
                put_opt(&mut out, f.as_deref());
            }
            put_opt(&mut out, s.signing_time.map(|t| t.to_string()).as_deref());
            put(&mut out, &s.indication);
            put_opt(&mut out, s.sub_indication.as_deref());
            if v2 {
                put_opt(&mut out, s.role.map(|r| r.name()));
            }
        }
        put(&mut out, &e.verdict);
        put_opt(&mut out, e.error.as_deref());
        put(&mut out, &e.kyso_version);
        put(&mut out, &e.trust_fingerprint);
        if v2 {
            match &e.policy {
                Some(p) => {
                    out.push(1);
                    for f in [&p.id, &p.version, &p.sha256] {
                        put(&mut out, f);
                    }
                    put(&mut out, p.profile.name());
                    put(&mut out, p.expected.name());
                    out.push(u8::from(p.conforms));
                }
                None => out.push(0),
            }
        }
        out
    }

    /// The record whose canonical bytes are `bytes` ([`Record::canonical`], versions 1 and
    /// 2), as a receipt's leaf carries it: what anyone holding a receipt reads of what kyso
    /// answered. `None` when the bytes are not such an encoding, whole.
    pub fn decode(bytes: &[u8]) -> Option<Record> {
        let mut r = Reader(bytes);
        let v2 = if r.take(RECORD_DOMAIN.len())? == RECORD_DOMAIN {
            false
        } else if bytes.starts_with(RECORD_DOMAIN_V2) {
            true
        } else {
            return None;
        };
        let sequence = r.u64()?;
        let previous_hash: [u8; 32] = r.take(32)?.try_into().ok()?;
        let time = OffsetDateTime::from_unix_timestamp_nanos(i128::from(r.u64()? as i64)).ok()?;
        let (principal, peer, method) = (r.text()?, r.text()?, r.text()?);
        let document_sha256 = r.opt(Reader::text)?;
        let document_size = r.opt(Reader::u64)?;
        let (document_id, document_number, sender) = (r.text()?, r.text()?, r.text()?);
        let mut extra = BTreeMap::new();
        for _ in 0..r.u32()? {
            let k = r.text()?;
            extra.insert(k, r.text()?);
        }
        let count = r.u32()?;
        let mut signatures = Vec::new();
        for _ in 0..count {
            let mut s = SignatureSummary {
                field: r.opt(Reader::text)?,
                signer_common_name: r.opt(Reader::text)?,
                signer_organization: r.opt(Reader::text)?,
                signer_serial: r.opt(Reader::text)?,
                certificate_sha256: r.opt(Reader::text)?,
                issuer: r.opt(Reader::text)?,
                signing_time: r.opt(Reader::text)?.and_then(|t| t.parse().ok()),
                indication: r.text()?,
                sub_indication: r.opt(Reader::text)?,
                role: None,
            };
            if v2 {
                s.role = match r.opt(Reader::text)? {
                    Some(role) => Some(role.parse().ok()?),
                    None => None,
                };
            }
            signatures.push(s);
        }
        let verdict = r.text()?;
        let error = r.opt(Reader::text)?;
        let (kyso_version, trust_fingerprint) = (r.text()?, r.text()?);
        let policy = if v2 && r.take(1)? == [1] {
            Some(PolicySummary {
                id: r.text()?,
                version: r.text()?,
                sha256: r.text()?,
                profile: r.text()?.parse().ok()?,
                expected: r.text()?.parse().ok()?,
                conforms: r.take(1)?[0] == 1,
            })
        } else {
            None
        };
        if !r.0.is_empty() {
            return None;
        }
        let entry = Entry {
            time,
            principal,
            peer,
            method,
            document_sha256,
            document_size,
            metadata: Metadata {
                document_id,
                document_number,
                sender,
                extra,
            },
            signatures,
            verdict,
            error,
            kyso_version,
            trust_fingerprint,
            policy,
        };
        Some(Record {
            sequence,
            hash: openssl::sha::sha256(bytes),
            previous_hash,
            entry,
        })
    }

    /// The hash of the record at `sequence` after `previous` holding `e`.
    pub fn compute_hash(sequence: u64, previous: &[u8; 32], e: &Entry) -> [u8; 32] {
        openssl::sha::sha256(&Self::canonical(sequence, previous, e))
    }

    /// The record's public id.
    pub fn id(&self) -> String {
        self.sequence.to_string()
    }
}

/// Reads what [`Record::canonical`] wrote; every read is bounded by the bytes left.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if n > self.0.len() {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }

    fn text(&mut self) -> Option<String> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }

    /// A value behind a presence byte: `Some(None)` when absent, `None` when malformed.
    fn opt<T>(&mut self, read: fn(&mut Self) -> Option<T>) -> Option<Option<T>> {
        match self.take(1)? {
            [0] => Some(None),
            [1] => read(self).map(Some),
            _ => None,
        }
    }
}

fn put(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_opt(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => {
            out.push(1);
            put(out, s);
        }
        None => out.push(0),
    }
}

/// A signed statement that the chain up to `sequence` ends in `head_hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The sequence of the last record it covers.
    pub sequence: u64,
    /// That record's hash.
    pub head_hash: [u8; 32],
    /// When it was signed.
    pub time: OffsetDateTime,
    /// The Ed25519 signature over sequence, head hash and time.
    pub signature: Vec<u8>,
}

/// The Ed25519 public key in `pem` (SubjectPublicKeyInfo), which verifies checkpoints.
pub fn public_key_from_pem(pem: &[u8]) -> Result<PKey<Public>, KeyError> {
    let key = PKey::public_key_from_pem(pem)?;
    if key.id() != openssl::pkey::Id::ED25519 {
        return Err(KeyError::NotEd25519);
    }
    Ok(key)
}

impl Checkpoint {
    fn message(sequence: u64, head: &[u8; 32], time: OffsetDateTime) -> Vec<u8> {
        let mut m = CHECKPOINT_DOMAIN.to_vec();
        m.extend_from_slice(&sequence.to_be_bytes());
        m.extend_from_slice(head);
        m.extend_from_slice(&(time.unix_timestamp_nanos() as i64).to_be_bytes());
        m
    }

    /// Whether the signature verifies with `key`.
    pub fn verify(&self, key: &PKey<Public>) -> bool {
        let m = Self::message(self.sequence, &self.head_hash, self.time);
        Verifier::new_without_digest(key)
            .and_then(|mut v| v.verify_oneshot(&self.signature, &m))
            .unwrap_or(false)
    }
}

/// What auditors filter on; every given filter must hold. Newest first.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Hex SHA-256 of the document.
    pub document_sha256: Option<String>,
    /// Part of a signer's commonName, without case or diacritics ("huyen" finds "Huyến").
    pub signer_name: Option<String>,
    /// Hex SHA-256 of a signer's certificate.
    pub certificate_sha256: Option<String>,
    /// A signer certificate's serial (hex).
    pub signer_serial: Option<String>,
    /// Part of a signer's organisation, without case or diacritics.
    pub organization: Option<String>,
    /// The verdict's name.
    pub verdict: Option<String>,
    /// The principal that called.
    pub caller: Option<String>,
    /// Records at or after this time.
    pub from: Option<OffsetDateTime>,
    /// Records at or before this time.
    pub to: Option<OffsetDateTime>,
    /// The document number, without case or diacritics ("123/qd-ubnd" finds "123/QĐ-UBND").
    pub document_number: Option<String>,
    /// Only records with a sequence below this (the page token).
    pub before: Option<u64>,
    /// At most this many records.
    pub limit: usize,
}

/// Where the chain ends: the last record's sequence and hash (0 and zeros when empty), and
/// the sequence the last checkpoint covers (0 when none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Head {
    /// The sequence of the last record (0 for an empty log).
    pub sequence: u64,
    /// Its hash (zeros for an empty log).
    pub hash: [u8; 32],
    /// The sequence of the last signed checkpoint.
    pub checkpointed: u64,
    /// The tree the last signed checkpoint of the Merkle tree signs (`None` before the
    /// first, and in a log from before the tree until its next commit).
    pub checkpoint: Option<tree::TreeHead>,
}

/// An entry's place in the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    /// The sequence the record gets.
    pub sequence: u64,
    /// The hash of the record before it.
    pub previous_hash: [u8; 32],
    /// Its own hash.
    pub hash: [u8; 32],
    /// Its leaf hash in the Merkle tree.
    pub leaf_hash: [u8; 32],
}

impl Head {
    /// The places of `entries` chained onto this head, and the head after them.
    pub fn extend(&self, entries: &[Entry]) -> (Vec<Place>, Head) {
        let mut head = *self;
        let places = entries
            .iter()
            .map(|e| {
                let sequence = head.sequence + 1;
                let canonical = Record::canonical(sequence, &head.hash, e);
                let place = Place {
                    sequence,
                    previous_hash: head.hash,
                    hash: openssl::sha::sha256(&canonical),
                    leaf_hash: tree::leaf_hash(&canonical),
                };
                let hash = place.hash;
                head.sequence = sequence;
                head.hash = hash;
                place
            })
            .collect();
        (places, head)
    }
}

/// Where records and checkpoints are kept.
///
/// A store places the records itself: [`AuditStore::append`] reads the head inside its
/// transaction, so that several writers sharing one store — several kyso instances on one
/// database, each with the same checkpoint key — extend one chain.
pub trait AuditStore: Send + Sync {
    /// Where the chain ends now.
    fn head(&self) -> Result<Head, AuditError>;
    /// The lowest sequence stored, if any: 1 in a log that was only appended to.
    fn lowest_sequence(&self) -> Result<Option<i64>, AuditError>;
    /// In one transaction, all or nothing: chains `entries` onto the head as it stands in
    /// that transaction ([`Head::extend`]), adds them to the Merkle tree (its new hashes
    /// stored with them), and stores the checkpoint `seal` gives for the new head and tree
    /// root, if any. Returns the new head and that checkpoint.
    fn append(&self, entries: &[Entry], seal: &mut Seal<'_>) -> Result<Appended, AuditError>;
    /// The stored hashes of the Merkle tree at `indexes` (the layout of
    /// [`tlog_tiles::stored_hash_index`]), in that order; a missing one is an error.
    fn tree_hashes(&self, indexes: &[u64]) -> Result<Vec<[u8; 32]>, AuditError>;
    /// The stored hashes with indexes from `from` up to (not including) `to`, in order.
    fn tree_hash_range(&self, from: u64, to: u64) -> Result<Vec<(u64, [u8; 32])>, AuditError>;
    /// The signed checkpoints of the tree whose sizes are from `from` to `to`, in order.
    fn tree_checkpoints(
        &self,
        from: u64,
        to: Option<u64>,
    ) -> Result<Vec<tree::SignedCheckpoint>, AuditError>;
    /// The newest signed checkpoint of the tree.
    fn latest_tree_checkpoint(&self) -> Result<Option<tree::SignedCheckpoint>, AuditError>;
    /// The log's origin, the name in its checkpoints (`None` until a kyso first starts on
    /// it).
    fn origin(&self) -> Result<Option<String>, AuditError>;
    /// Names the log `origin` unless it has a name already; returns its name.
    fn claim_origin(&self, origin: &str) -> Result<String, AuditError>;
    /// The record at `sequence`, if there is one.
    fn get(&self, sequence: u64) -> Result<Option<Record>, AuditError>;
    /// The records matching `q`, newest first.
    fn query(&self, q: &Query) -> Result<Vec<Record>, AuditError>;
    /// Visits the records from `from` to `to` (inclusive) in sequence order; a record that
    /// cannot be read is passed as an error with its sequence. The visitor returns false to
    /// stop.
    fn scan(
        &self,
        from: u64,
        to: Option<u64>,
        visit: &mut dyn FnMut(Result<Record, AuditError>) -> bool,
    ) -> Result<(), AuditError>;
    /// The hash-chain checkpoints (before the Merkle tree) from `from` to `to`, in order.
    fn checkpoints(&self, from: u64, to: Option<u64>) -> Result<Vec<Checkpoint>, AuditError>;
    /// The newest hash-chain checkpoint.
    fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, AuditError>;
}

/// What a store's append calls, inside its transaction, once the records are placed: the
/// new head, the new tree, and the tree as the transaction sees it; returns the checkpoint
/// to store with them.
pub type Seal<'a> = dyn FnMut(
        &Head,
        tree::TreeHead,
        &tree::TreeWriter<'_>,
    ) -> Result<Option<tree::SignedCheckpoint>, AuditError>
    + 'a;

/// What one append committed.
#[derive(Debug, Clone)]
pub struct Appended {
    /// The head after it.
    pub head: Head,
    /// The checkpoint it stored.
    pub checkpoint: Option<tree::SignedCheckpoint>,
    /// Where it placed each entry, in order.
    pub places: Vec<Place>,
}

/// The service's checkpoint key: Ed25519, PKCS#8 PEM, created at first start.
pub struct CheckpointKey {
    key: PKey<Private>,
    public: PKey<Public>,
}

impl CheckpointKey {
    /// Loads `path`, or creates it (readable by the owner only) when absent.
    pub fn load_or_create(path: &Path) -> Result<CheckpointKey, AuditError> {
        if path.exists() {
            return Self::load(path);
        }
        let made = || -> Result<CheckpointKey, KeyError> {
            let key = PKey::generate_ed25519()?;
            let pem = key.private_key_to_pem_pkcs8()?;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut f = options.open(path)?;
            std::io::Write::write_all(&mut f, &pem)?;
            f.sync_all()?;
            Self::with_public(key)
        };
        made().map_err(|source| AuditError::Key {
            path: path.to_owned(),
            source,
        })
    }

    /// Loads the key at `path`, which must exist.
    pub fn load(path: &Path) -> Result<CheckpointKey, AuditError> {
        let loaded = || -> Result<CheckpointKey, KeyError> {
            let key = PKey::private_key_from_pem(&std::fs::read(path)?)?;
            if key.id() != openssl::pkey::Id::ED25519 {
                return Err(KeyError::NotEd25519);
            }
            Self::with_public(key)
        };
        loaded().map_err(|source| AuditError::Key {
            path: path.to_owned(),
            source,
        })
    }

    fn with_public(key: PKey<Private>) -> Result<CheckpointKey, KeyError> {
        let public = key
            .raw_public_key()
            .and_then(|raw| PKey::public_key_from_raw_bytes(&raw, openssl::pkey::Id::ED25519))?;
        Ok(CheckpointKey { key, public })
    }

    /// The key that verifies the checkpoints.
    pub fn public_key(&self) -> &PKey<Public> {
        &self.public
    }

    /// That key, PEM.
    pub fn public_key_pem(&self) -> String {
        self.key
            .public_key_to_pem()
            .map(|p| String::from_utf8_lossy(&p).into_owned())
            .unwrap_or_default()
    }

    /// The signer of checkpoints of the log `origin`.
    fn note_signer(&self, origin: &str) -> Result<tree::NoteSigner, AuditError> {
        let seed = self.key.raw_private_key().ok();
        let public: Option<[u8; 32]> = self
            .public
            .raw_public_key()
            .ok()
            .and_then(|r| r.try_into().ok());
        seed.zip(public)
            .and_then(|(seed, public)| tree::NoteSigner::new(origin, &seed, &public))
            .ok_or_else(|| AuditError::Origin {
                origin: origin.to_owned(),
            })
    }
}

/// A record committed: its sequence and the signed checkpoint of the commit that holds it.
#[derive(Debug, Clone)]
pub struct Committed {
    /// The record's sequence (its leaf index + 1).
    pub sequence: u64,
    /// The checkpoint signed over the commit.
    pub checkpoint: Arc<tree::SignedCheckpoint>,
    /// The record's canonical bytes: its leaf, for its receipt without reading it back.
    pub record: Vec<u8>,
}

struct Job {
    entry: Entry,
    reply: tokio::sync::oneshot::Sender<Result<Committed, Arc<AuditError>>>,
}

/// The key and name checkpoints are signed with.
struct Sealer {
    origin: String,
    signer: tree::NoteSigner,
}

/// The log: appends through the group-commit writer, reads straight from the store.
pub struct AuditLog {
    store: Arc<dyn AuditStore>,
    key: Arc<CheckpointKey>,
    verifier: tree::VerifierKey,
    sender: Mutex<Option<mpsc::Sender<Job>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl AuditLog {
    /// Starts the writer over `store`, signing checkpoints with `key` under the log's
    /// origin: the store's, or `origin` (default [`tree::DEFAULT_ORIGIN`]) for a log not
    /// yet named. An `origin` the store contradicts is an error.
    pub fn start(
        store: Arc<dyn AuditStore>,
        key: CheckpointKey,
        origin: Option<&str>,
    ) -> Result<AuditLog, AuditError> {
        let wanted = origin.unwrap_or(tree::DEFAULT_ORIGIN);
        if !signed_note::is_key_name_valid(wanted) {
            return Err(AuditError::Origin {
                origin: wanted.to_owned(),
            });
        }
        let stored = store.claim_origin(wanted)?;
        if let Some(configured) = origin.filter(|o| *o != stored) {
            return Err(AuditError::OriginMismatch {
                stored,
                configured: configured.to_owned(),
            });
        }
        let origin = stored;
        let verifier = verifier_key(&origin, key.public_key())?;
        account_for(store.as_ref(), key.public_key(), &verifier)?;
        let sealer = Sealer {
            signer: key.note_signer(&origin)?,
            origin,
        };
        let key = Arc::new(key);
        let (tx, rx) = mpsc::channel::<Job>();
        let s = store.clone();
        let writer = std::thread::Builder::new()
            .name("kyso-audit-writer".into())
            .spawn(move || write_loop(s.as_ref(), &sealer, rx))
            .map_err(AuditError::Writer)?;
        Ok(AuditLog {
            store,
            key,
            verifier,
            sender: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
        })
    }

    /// The verifier key of the log's checkpoints.
    pub fn verifier_key(&self) -> &tree::VerifierKey {
        &self.verifier
    }

    /// The receipt of `committed`: the record's inclusion proof under the checkpoint of
    /// the commit that holds it, which anyone holding the verifier key can check.
    pub fn receipt(&self, committed: &Committed) -> Result<tree::InclusionProof, AuditError> {
        prove_leaf(
            self.store.as_ref(),
            committed.sequence,
            &committed.record,
            &committed.checkpoint,
        )
    }

    /// Appends `entry`; returns its place once it is committed.
    pub async fn append(&self, entry: Entry) -> Result<Committed, AuditError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        {
            let guard = self.sender.lock().unwrap_or_else(|p| p.into_inner());
            let tx = guard.as_ref().ok_or(AuditError::Closed)?;
            tx.send(Job { entry, reply })
                .map_err(|_| AuditError::Closed)?;
        }
        answer
            .await
            .map_err(|_| AuditError::Closed)?
            .map_err(AuditError::Commit)
    }

    /// [`AuditLog::append`] for callers outside an async runtime.
    pub fn append_blocking(&self, entry: Entry) -> Result<Committed, AuditError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        {
            let guard = self.sender.lock().unwrap_or_else(|p| p.into_inner());
            let tx = guard.as_ref().ok_or(AuditError::Closed)?;
            tx.send(Job { entry, reply })
                .map_err(|_| AuditError::Closed)?;
        }
        answer
            .blocking_recv()
            .map_err(|_| AuditError::Closed)?
            .map_err(AuditError::Commit)
    }

    /// Hands `entry` to the writer without waiting for its commit, for callers that cannot
    /// wait (a request dropped mid-way). Nothing is lost once it is handed over: `close`
    /// commits every record waiting. Returns whether the log still takes records.
    pub fn append_detached(&self, entry: Entry) -> bool {
        let (reply, _) = tokio::sync::oneshot::channel();
        let guard = self.sender.lock().unwrap_or_else(|p| p.into_inner());
        guard
            .as_ref()
            .is_some_and(|tx| tx.send(Job { entry, reply }).is_ok())
    }

    /// Stops taking records, commits those waiting, signs a final checkpoint, and waits for
    /// the writer to finish.
    pub fn close(&self) {
        self.sender.lock().unwrap_or_else(|p| p.into_inner()).take();
        let writer = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(w) = writer {
            let _ = w.join();
        }
    }

    /// The store the log reads and writes.
    pub fn store(&self) -> &Arc<dyn AuditStore> {
        &self.store
    }

    /// The key that signs its checkpoints.
    pub fn key(&self) -> &CheckpointKey {
        &self.key
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        self.close();
    }
}

/// The inclusion proof of record `sequence` under `checkpoint`, from the stored tree.
pub fn prove(
    store: &dyn AuditStore,
    sequence: u64,
    checkpoint: &tree::SignedCheckpoint,
) -> Result<tree::InclusionProof, AuditError> {
    let record = store
        .get(sequence)?
        .ok_or_else(|| AuditError::Tree(format!("record {sequence} is not in the log")))?;
    let canonical = Record::canonical(record.sequence, &record.previous_hash, &record.entry);
    prove_leaf(store, sequence, &canonical, checkpoint)
}

/// The inclusion proof of record `sequence`, whose canonical bytes are `canonical`, under
/// `checkpoint`, from the stored tree.
fn prove_leaf(
    store: &dyn AuditStore,
    sequence: u64,
    canonical: &[u8],
    checkpoint: &tree::SignedCheckpoint,
) -> Result<tree::InclusionProof, AuditError> {
    let size = checkpoint.head.size;
    if sequence == 0 || sequence > size {
        return Err(AuditError::Tree(format!(
            "record {sequence} is not in the tree of {size} records"
        )));
    }
    let read = |indexes: &[u64]| store.tree_hashes(indexes);
    let tree = tree::TreeWriter::new(&read);
    Ok(tree::InclusionProof {
        record: base64::prelude::BASE64_STANDARD.encode(canonical),
        leaf_index: sequence - 1,
        tree_size: size,
        inclusion: tree.inclusion(size, sequence - 1)?,
        checkpoint: checkpoint.note.clone(),
    })
}

/// The consistency proof from the tree of `old` records to the signed one `checkpoint`.
pub fn prove_consistency(
    store: &dyn AuditStore,
    old: u64,
    checkpoint: &tree::SignedCheckpoint,
) -> Result<tree::ConsistencyProof, AuditError> {
    let new = checkpoint.head.size;
    if old == 0 || old > new {
        return Err(AuditError::Tree(format!(
            "no consistency proof from {old} records to {new}: the old size must be 1 to {new}"
        )));
    }
    let read = |indexes: &[u64]| store.tree_hashes(indexes);
    let tree = tree::TreeWriter::new(&read);
    Ok(tree::ConsistencyProof {
        old_size: old,
        new_size: new,
        old_root: base64::prelude::BASE64_STANDARD.encode(tree.root(old)?),
        proof: tree.consistency(new, old)?,
        checkpoint: checkpoint.note.clone(),
    })
}

fn write_loop(store: &dyn AuditStore, sealer: &Sealer, rx: mpsc::Receiver<Job>) {
    // Every record waiting goes into the next transaction, sealed by its own checkpoint.
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let (entries, replies): (Vec<Entry>, Vec<_>) =
            jobs.into_iter().map(|j| (j.entry, j.reply)).unzip();
        // Every commit is sealed: a record no checkpoint covers is then one kyso did not
        // write (`account_for`). Signing costs tens of microseconds against the commit's
        // fsync, so there is no reason to sign less often. The new tree is proven an
        // extension of the last signed one, over the hashes as stored, before it is signed.
        let mut seal = |head: &Head, tree: tree::TreeHead, stored: &tree::TreeWriter<'_>| {
            if let Some(signed) = head.checkpoint {
                if !stored.extends(signed, tree)? {
                    return Err(AuditError::Inconsistent {
                        size: tree.size,
                        signed: signed.size,
                    });
                }
            }
            sealer
                .signer
                .sign(&sealer.origin, tree)
                .map(Some)
                .ok_or_else(|| AuditError::Tree("the checkpoint could not be signed".into()))
        };
        let started = std::time::Instant::now();
        let appended = store.append(&entries, &mut seal);
        metrics::histogram!("kyso_audit_commit_seconds").record(started.elapsed().as_secs_f64());
        metrics::histogram!("kyso_audit_batch_records").record(entries.len() as f64);
        match appended {
            Ok(Appended {
                checkpoint: Some(checkpoint),
                places,
                ..
            }) => {
                let checkpoint = Arc::new(checkpoint);
                for ((reply, place), entry) in replies.into_iter().zip(&places).zip(&entries) {
                    let _ = reply.send(Ok(Committed {
                        sequence: place.sequence,
                        checkpoint: checkpoint.clone(),
                        record: Record::canonical(place.sequence, &place.previous_hash, entry),
                    }));
                }
            }
            Ok(Appended {
                checkpoint: None, ..
            }) => {
                // The seal above always gives one; a store that drops it is a bug there.
                let e = Arc::new(AuditError::Tree("the store kept no checkpoint".into()));
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
            Err(e) => {
                let e = Arc::new(e);
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// Checks, before kyso extends the log, that it can account for every record: each one
/// numbered from 1 and covered by the latest checkpoint, which verifies with `key` (as the
/// log's verifier key `verifier`) over the tree as stored, or, in a log from before the
/// tree, names the hash its record has. Every group commit signs its checkpoint in its own
/// transaction, so a record that no checkpoint covers was not written by kyso.
fn account_for(
    store: &dyn AuditStore,
    key: &PKey<Public>,
    verifier: &tree::VerifierKey,
) -> Result<(), AuditError> {
    let head = store.head()?;
    if let Some(lowest) = store.lowest_sequence()?.filter(|s| *s < 1) {
        return Err(AuditError::Unaccounted {
            first: lowest,
            why: "it is numbered outside the log's 1, 2, 3, …",
        });
    }
    if head.sequence > head.checkpointed {
        return Err(AuditError::Unaccounted {
            first: head.checkpointed as i64 + 1,
            why: "no checkpoint kyso signed covers it",
        });
    }
    if tree_past_end(store, head.sequence)? {
        return Err(AuditError::Unaccounted {
            first: head.sequence as i64 + 1,
            why: "the Merkle tree holds it, but the records end before it (deleted from the end of the log)",
        });
    }
    let latest = store.latest_tree_checkpoint()?;
    let legacy = store.latest_checkpoint()?;
    let holds = match (&latest, &legacy) {
        (Some(cp), _) => {
            let read = |indexes: &[u64]| store.tree_hashes(indexes);
            tree::SignedCheckpoint::open(&cp.note, verifier).is_ok_and(|o| o.head == cp.head)
                && tree::TreeWriter::new(&read)
                    .root(cp.head.size)
                    .is_ok_and(|root| root == cp.head.root)
        }
        (None, Some(cp)) => {
            cp.verify(key)
                && store
                    .get(cp.sequence)?
                    .is_some_and(|r| r.hash == cp.head_hash)
        }
        (None, None) => true,
    };
    if !holds {
        let first = latest.map_or_else(|| legacy.map_or(0, |c| c.sequence), |c| c.head.size);
        return Err(AuditError::Unaccounted {
            first: first as i64,
            why: "the latest checkpoint does not verify with this key over it",
        });
    }
    Ok(())
}

/// The outcome of checking the chain and its checkpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogCheck {
    /// Whether the log checked out.
    pub ok: bool,
    /// How many records were recomputed.
    pub records_checked: u64,
    /// How many checkpoints were verified.
    pub checkpoints_checked: u64,
    /// The first record that fails.
    pub first_bad_sequence: Option<u64>,
    /// What is wrong, when something is.
    pub problem: String,
}

/// Whether the stored tree holds hashes of leaves past the log's `size` records: what a
/// cut of the log's tail that spared the tree leaves behind. Leaves are stored in order, so
/// the first such leaf's hash is the next index.
fn tree_past_end(store: &dyn AuditStore, size: u64) -> Result<bool, AuditError> {
    let next = tlog_tiles::stored_hash_count(size);
    Ok(!store.tree_hash_range(next, next + 1)?.is_empty())
}

/// How many records `verify_log` reads and compares at a time: its memory stays bounded
/// whatever the log's size.
const VERIFY_CHUNK: u64 = 4096;

/// Recomputes the chain and the Merkle tree from `from` to `to` (whole log when 0/None) and
/// checks every checkpoint in that range with `key`: those in the store and the `kept`
/// ones, saved outside the log by an auditor earlier. Names the first record that fails.
///
/// Each record's leaf is recomputed, and with it every hash the store keeps of the tree
/// (so a proof the store gives is over the records as they are) and the root at every
/// signed size, which makes each signed tree consistent with the one before. The stored checkpoints
/// catch a record changed, deleted or reordered, and a log rewritten after them; only
/// checkpoints kept elsewhere (and a key kept elsewhere) catch a log whose tail was cut or
/// rewritten together with its checkpoints. A range is checked on its own: the tree before
/// it is taken as stored.
pub fn verify_log(
    store: &dyn AuditStore,
    key: &PKey<Public>,
    from: u64,
    to: Option<u64>,
    kept: &[tree::SignedCheckpoint],
) -> Result<LogCheck, AuditError> {
    let from = from.max(1);
    if let Some(lowest) = store.lowest_sequence()?.filter(|s| *s < 1) {
        return Ok(LogCheck {
            ok: false,
            records_checked: 0,
            checkpoints_checked: 0,
            first_bad_sequence: Some(0),
            problem: format!(
                "a record numbered {lowest} is outside the log's numbering 1, 2, 3, …: inserted into the log"
            ),
        });
    }
    let head = store.head()?;
    let verifier = store
        .origin()?
        .map(|origin| verifier_key(&origin, key))
        .transpose()?;
    // A record that cannot be read is an error of the store, not a sign of tampering.
    let mut previous = if from > 1 {
        store.get(from - 1)?.map_or([0; 32], |r| r.hash)
    } else {
        [0; 32]
    };
    let read = |indexes: &[u64]| store.tree_hashes(indexes);
    let mut rebuilt = tree::Rebuild::resume(from - 1, &read)?;
    let mut legacy: Vec<(Checkpoint, &str)> = store
        .checkpoints(from, to)?
        .into_iter()
        .map(|c| (c, "signed"))
        .collect();
    legacy.sort_by_key(|(c, _)| c.sequence);
    let mut signed: Vec<(tree::SignedCheckpoint, &str)> = store
        .tree_checkpoints(from, to)?
        .into_iter()
        .map(|c| (c, "signed"))
        .collect();
    signed.extend(
        kept.iter()
            .filter(|c| c.head.size >= from && to.is_none_or(|to| c.head.size <= to))
            .map(|c| (c.clone(), "kept")),
    );
    signed.sort_by_key(|(c, _)| c.head.size);
    let chain_wanted: std::collections::HashSet<u64> =
        legacy.iter().map(|(c, _)| c.sequence).collect();
    let root_wanted: std::collections::HashSet<u64> =
        signed.iter().map(|(c, _)| c.head.size).collect();
    let mut chain_hashes = std::collections::HashMap::new();
    let mut roots = std::collections::HashMap::new();
    let mut expected = from;
    let mut checked = 0u64;
    let mut failure: Option<(u64, String)> = None;
    let end = to.map_or(head.sequence, |to| to.min(head.sequence));
    let mut lo = from;
    while failure.is_none() && lo <= end {
        let hi = (lo + VERIFY_CHUNK - 1).min(end);
        let mut records = Vec::new();
        let mut store_error = None;
        store.scan(lo, Some(hi), &mut |r| match r {
            Ok(r) => {
                records.push(r);
                true
            }
            Err(AuditError::Corrupt { sequence, source }) => {
                failure = Some((
                    sequence,
                    format!("record {sequence} cannot be read ({source}): it was changed"),
                ));
                false
            }
            Err(e) => {
                store_error = Some(e);
                false
            }
        })?;
        if let Some(e) = store_error {
            return Err(e);
        }
        // The stored hashes these records complete, to compare once the chunk is read.
        let mut made: Vec<(u64, u64, Vec<[u8; 32]>)> = Vec::with_capacity(records.len());
        for r in records {
            if failure.is_some() {
                break;
            }
            if r.sequence > expected {
                failure = Some((
                    expected,
                    format!("record {expected} is missing: deleted from the log"),
                ));
                break;
            }
            if r.previous_hash != previous {
                failure = Some((
                    r.sequence,
                    format!(
                        "record {} does not follow record {}: its previous hash differs (records inserted, deleted or reordered before it)",
                        r.sequence,
                        r.sequence - 1
                    ),
                ));
                break;
            }
            let canonical = Record::canonical(r.sequence, &r.previous_hash, &r.entry);
            if openssl::sha::sha256(&canonical) != r.hash {
                failure = Some((
                    r.sequence,
                    format!(
                        "record {}: its content does not match its hash: it was changed",
                        r.sequence
                    ),
                ));
                break;
            }
            previous = r.hash;
            if chain_wanted.contains(&r.sequence) {
                chain_hashes.insert(r.sequence, r.hash);
            }
            let (first, hashes) = rebuilt.push(tree::leaf_hash(&canonical));
            made.push((r.sequence, first, hashes));
            if root_wanted.contains(&r.sequence) {
                roots.insert(r.sequence, rebuilt.root());
            }
            expected = r.sequence + 1;
            checked += 1;
        }
        if failure.is_none() && expected <= hi {
            failure = Some((
                expected,
                format!("record {expected} is missing: deleted from the log"),
            ));
        }
        if let (Some(first), Some(last)) = (made.first(), made.last()) {
            let stored: std::collections::HashMap<u64, [u8; 32]> = store
                .tree_hash_range(first.1, last.1 + last.2.len() as u64)?
                .into_iter()
                .collect();
            let differs = made.iter().find_map(|(sequence, first, hashes)| {
                (*first..)
                    .zip(hashes)
                    .find_map(|(i, h)| match stored.get(&i) {
                        Some(s) if s == h => None,
                        Some(_) => Some(format!(
                            "record {sequence}: the Merkle tree stored over it differs from the records: the log was rewritten (proofs over it no longer hold)"
                        )),
                        None => Some(format!(
                            "record {sequence} is not in the Merkle tree kyso keeps: kyso did not write it (appended to the log)"
                        )),
                    })
                    .map(|why| (*sequence, why))
            });
            if let Some((sequence, why)) = differs {
                if failure.as_ref().is_none_or(|(f, _)| sequence < *f) {
                    failure = Some((sequence, why));
                }
            }
        }
        lo = hi + 1;
    }
    let mut checkpoints_checked = 0;
    if failure.is_none() {
        failure = check_chain_checkpoints(&legacy, &chain_hashes, key, &mut checkpoints_checked);
    }
    if failure.is_none() && !signed.is_empty() {
        failure = match &verifier {
            None => Some((
                signed[0].0.head.size,
                "the log has no origin, so no checkpoint of its tree can verify".to_owned(),
            )),
            Some(v) => check_tree_checkpoints(&signed, &roots, v, &mut checkpoints_checked),
        };
    }
    // Each stored checkpoint is consistent with the one before it: both roots were
    // recomputed above from the same records, so the older tree is a prefix of the newer.
    // (A proof between them over the stored hashes would add nothing: those hashes were
    // compared with the recomputed ones too.)
    // kyso seals every commit: records after the last stored checkpoint were not written by
    // kyso (checked when the range runs to the end of the log).
    if failure.is_none() && to.is_none() && tree_past_end(store, head.sequence)? {
        let first = head.sequence + 1;
        failure = Some((
            first,
            format!(
                "record {first} is missing: the Merkle tree holds it, but the records end before it (deleted from the end of the log)"
            ),
        ));
    }
    if failure.is_none()
        && to.is_none()
        && head.sequence > head.checkpointed
        && head.sequence >= from
    {
        let first = (head.checkpointed + 1).max(from);
        failure = Some((
            first,
            format!(
                "record {first} is not covered by any signed checkpoint: kyso seals every commit, so it did not write it (appended to the log)"
            ),
        ));
    }
    Ok(match failure {
        None => LogCheck {
            ok: true,
            records_checked: checked,
            checkpoints_checked,
            first_bad_sequence: None,
            problem: String::new(),
        },
        Some((seq, problem)) => LogCheck {
            ok: false,
            records_checked: checked,
            checkpoints_checked,
            first_bad_sequence: Some(seq),
            problem,
        },
    })
}

/// The hash-chain checkpoints (of a log from before the tree) against the chain's hashes.
fn check_chain_checkpoints(
    checkpoints: &[(Checkpoint, &str)],
    hashes: &std::collections::HashMap<u64, [u8; 32]>,
    key: &PKey<Public>,
    checked: &mut u64,
) -> Option<(u64, String)> {
    for (cp, which) in checkpoints {
        *checked += 1;
        if !cp.verify(key) {
            return Some((
                cp.sequence,
                format!(
                    "the {which} checkpoint at record {} does not verify with the service's key",
                    cp.sequence
                ),
            ));
        }
        match hashes.get(&cp.sequence) {
            Some(h) if *h == cp.head_hash => {}
            Some(_) => {
                return Some((
                    cp.sequence,
                    format!(
                        "record {}: the chain differs from the {which} checkpoint at it: the log was rewritten",
                        cp.sequence
                    ),
                ))
            }
            None => {
                return Some((
                    cp.sequence,
                    format!(
                        "record {} is missing: a {which} checkpoint covers it (deleted from the end of the log)",
                        cp.sequence
                    ),
                ))
            }
        }
    }
    None
}

/// The tree's checkpoints against the roots recomputed from the records.
fn check_tree_checkpoints(
    checkpoints: &[(tree::SignedCheckpoint, &str)],
    roots: &std::collections::HashMap<u64, [u8; 32]>,
    verifier: &tree::VerifierKey,
    checked: &mut u64,
) -> Option<(u64, String)> {
    for (cp, which) in checkpoints {
        *checked += 1;
        let size = cp.head.size;
        if !tree::SignedCheckpoint::open(&cp.note, verifier).is_ok_and(|o| o.head == cp.head) {
            return Some((
                size,
                format!(
                    "the {which} checkpoint of {size} records does not verify with the log's key"
                ),
            ));
        }
        match roots.get(&size) {
            Some(root) if *root == cp.head.root => {}
            Some(_) => {
                return Some((
                    size,
                    format!(
                        "record {size}: the tree differs from the {which} checkpoint of {size} records: the log was rewritten"
                    ),
                ))
            }
            None => {
                return Some((
                    size,
                    format!(
                        "record {size} is missing: a {which} checkpoint covers it (deleted from the end of the log)"
                    ),
                ))
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::sqlite::SqliteStore;
    use super::*;
    use openssl::sign::Signer;

    fn entry(n: u64) -> Entry {
        Entry {
            time: OffsetDateTime::from_unix_timestamp(1_700_000_000 + n as i64).expect("time"),
            principal: "dms-haugiang".into(),
            peer: "127.0.0.1:1".into(),
            method: "/kyso.v1.VerificationService/VerifyDocument".into(),
            document_sha256: Some(format!("{n:064x}")),
            document_size: Some(1000 + n),
            metadata: Metadata {
                document_number: format!("{n}-BC/TU"),
                ..Default::default()
            },
            signatures: Vec::new(),
            verdict: "VALID".into(),
            error: None,
            kyso_version: "test".into(),
            trust_fingerprint: "fp".into(),
            policy: None,
        }
    }

    #[test]
    fn canonical_bytes_decode_to_the_record_and_nothing_else_does() {
        let mut e = entry(7);
        e.metadata.extra.insert("k".into(), "v".into());
        e.error = Some("InvalidArgument: x".into());
        let v1 = Record::canonical(7, &[3; 32], &e);
        e.signatures.push(SignatureSummary {
            field: Some("Signature1".into()),
            signer_common_name: Some("Trần Văn Huyến".into()),
            signing_time: Some(1_700_000_000),
            indication: "PASSED".into(),
            role: Some(crate::policy::Role::Personal),
            ..Default::default()
        });
        e.policy = Some(PolicySummary {
            id: "decree-30".into(),
            version: "1".into(),
            sha256: "ab".repeat(32),
            profile: crate::policy::Profile::Issued,
            expected: crate::policy::Expect::Any,
            conforms: true,
        });
        let v2 = Record::canonical(7, &[3; 32], &e);
        let back = Record::decode(&v2).expect("version 2");
        assert_eq!(
            (back.sequence, back.previous_hash, &back.entry),
            (7, [3; 32], &e)
        );
        assert_eq!(back.hash, Record::compute_hash(7, &[3; 32], &e));
        assert_eq!(Record::decode(&v1).expect("version 1").entry.error, e.error);
        // Cut, extended or changed in its framing, it is no record.
        for n in 0..v2.len() {
            assert!(Record::decode(&v2[..n]).is_none(), "cut at {n}");
        }
        assert!(Record::decode(&[v2.clone(), vec![0]].concat()).is_none());
        let mut bad = v2.clone();
        bad[RECORD_DOMAIN_V2.len() + 8 + 32 + 8] = 0xff;
        assert!(Record::decode(&bad).is_none(), "a length past the end");
    }

    #[test]
    fn records_without_roles_or_policy_keep_the_version_1_encoding() {
        let old = entry(1);
        let bytes = Record::canonical(1, &[0; 32], &old);
        assert!(
            bytes.starts_with(RECORD_DOMAIN),
            "an old record's hash must not move"
        );
        let mut new = entry(1);
        new.signatures.push(SignatureSummary {
            indication: "PASSED".into(),
            role: Some(crate::policy::Role::Organisation),
            ..Default::default()
        });
        new.policy = Some(PolicySummary {
            id: "decree-30".into(),
            version: "1".into(),
            sha256: "ab".repeat(32),
            profile: crate::policy::Profile::Issued,
            expected: crate::policy::Expect::Issued,
            conforms: true,
        });
        let v2 = Record::compute_hash(1, &[0; 32], &new);
        assert!(Record::canonical(1, &[0; 32], &new).starts_with(RECORD_DOMAIN_V2));
        // Each new field is covered: changing or dropping one changes the hash.
        let mut flipped = new.clone();
        if let Some(p) = flipped.policy.as_mut() {
            p.conforms = false;
        }
        assert_ne!(Record::compute_hash(1, &[0; 32], &flipped), v2);
        let mut dropped = new.clone();
        dropped.policy = None;
        assert_ne!(Record::compute_hash(1, &[0; 32], &dropped), v2);
        let mut role = new;
        role.signatures[0].role = Some(crate::policy::Role::Personal);
        assert_ne!(Record::compute_hash(1, &[0; 32], &role), v2);
    }

    /// A closed log of `n` records (its closing checkpoint at `n`) in `dir`, and its key.
    fn closed_log(dir: &Path, n: u64) -> PKey<Public> {
        let store = Arc::new(SqliteStore::open(&dir.join("audit.sqlite3")).expect("store"));
        let key = CheckpointKey::load_or_create(&dir.join("audit-key.pem")).expect("key");
        let public = key.public_key().clone();
        let log = AuditLog::start(store, key, None).expect("log");
        for i in 1..=n {
            assert_eq!(log.append_blocking(entry(i)).expect("append").sequence, i);
        }
        log.close();
        public
    }

    fn check(
        dir: &Path,
        key: &PKey<Public>,
        from: u64,
        to: Option<u64>,
        kept: &[tree::SignedCheckpoint],
    ) -> LogCheck {
        let store = SqliteStore::open(&dir.join("audit.sqlite3")).expect("store");
        verify_log(&store, key, from, to, kept).expect("readable")
    }

    fn sql(dir: &Path, statements: &str) {
        let db = rusqlite::Connection::open(dir.join("audit.sqlite3")).expect("database");
        db.execute_batch(statements).expect("statements");
    }

    #[test]
    fn a_log_from_before_the_tree_gets_its_tree_and_keeps_its_checkpoints() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let public = closed_log(dir.path(), 5);
        // Back to schema 2: no tree, its records sealed by a hash-chain checkpoint.
        let key = CheckpointKey::load(&dir.path().join("audit-key.pem")).expect("key");
        let store = SqliteStore::open(&dir.path().join("audit.sqlite3")).expect("store");
        let head = store.get(5).expect("read").expect("record 5").hash;
        drop(store);
        let time = OffsetDateTime::from_unix_timestamp(1_700_000_100).expect("time");
        let signature = Signer::new_without_digest(&key.key)
            .and_then(|mut s| s.sign_oneshot_to_vec(&Checkpoint::message(5, &head, time)))
            .expect("signed");
        sql(
            dir.path(),
            &format!(
                "DROP TABLE tree_hashes; DROP TABLE tree_checkpoints; DROP TABLE log_meta;
                 INSERT INTO checkpoints VALUES (5, X'{}', {}, X'{}');
                 PRAGMA user_version = 2;",
                hex::encode(head),
                time.unix_timestamp_nanos(),
                hex::encode(signature)
            ),
        );
        // Opened by this kyso: the tree is built over the records, and the log extended.
        let store = Arc::new(SqliteStore::open(&dir.path().join("audit.sqlite3")).expect("store"));
        let log = AuditLog::start(store.clone(), key, None).expect("accounted for");
        let committed = log.append_blocking(entry(6)).expect("append");
        assert_eq!(committed.sequence, 6);
        assert!(log
            .receipt(&committed)
            .expect("receipt")
            .verify(log.verifier_key())
            .is_ok());
        let old = prove(store.as_ref(), 2, &committed.checkpoint).expect("proof");
        assert!(
            old.verify(log.verifier_key()).is_ok(),
            "records from before the tree prove"
        );
        log.close();
        let c = check(dir.path(), &public, 0, None, &[]);
        assert!(c.ok, "{}", c.problem);
        assert_eq!((c.records_checked, c.checkpoints_checked), (6, 2));
        // The hash-chain checkpoint still vouches for the records before the tree.
        sql(
            dir.path(),
            "UPDATE records SET verdict = 'INVALID' WHERE sequence = 3",
        );
        let c = check(dir.path(), &public, 0, None, &[]);
        assert_eq!(c.first_bad_sequence, Some(3), "{}", c.problem);
    }
}
