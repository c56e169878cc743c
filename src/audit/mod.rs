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

pub mod sqlite;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use openssl::pkey::{PKey, Private, Public};
use openssl::sign::{Signer, Verifier};
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

    /// The hash of the record at `sequence` after `previous` holding `e`.
    pub fn compute_hash(sequence: u64, previous: &[u8; 32], e: &Entry) -> [u8; 32] {
        openssl::sha::sha256(&Self::canonical(sequence, previous, e))
    }

    /// The record's public id.
    pub fn id(&self) -> String {
        self.sequence.to_string()
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
}

impl Head {
    /// The places of `entries` chained onto this head, and the head after them.
    pub fn extend(&self, entries: &[Entry]) -> (Vec<Place>, Head) {
        let mut head = *self;
        let places = entries
            .iter()
            .map(|e| {
                let sequence = head.sequence + 1;
                let hash = Record::compute_hash(sequence, &head.hash, e);
                let place = Place {
                    sequence,
                    previous_hash: head.hash,
                    hash,
                };
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
    /// that transaction ([`Head::extend`]), and stores the checkpoint `seal` gives for the
    /// new head, if any. Returns the new head.
    fn append(
        &self,
        entries: &[Entry],
        seal: &mut dyn FnMut(&Head) -> Option<Checkpoint>,
    ) -> Result<Head, AuditError>;
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
    /// The signed checkpoints from `from` to `to`, in order.
    fn checkpoints(&self, from: u64, to: Option<u64>) -> Result<Vec<Checkpoint>, AuditError>;
    /// The newest signed checkpoint.
    fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, AuditError>;
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

    fn sign(&self, sequence: u64, head: [u8; 32], time: OffsetDateTime) -> Checkpoint {
        let m = Checkpoint::message(sequence, &head, time);
        let signature = Signer::new_without_digest(&self.key)
            .and_then(|mut s| s.sign_oneshot_to_vec(&m))
            .unwrap_or_default();
        Checkpoint {
            sequence,
            head_hash: head,
            time,
            signature,
        }
    }
}

struct Job {
    entry: Entry,
    reply: tokio::sync::oneshot::Sender<Result<u64, Arc<AuditError>>>,
}

/// The log: appends through the group-commit writer, reads straight from the store.
pub struct AuditLog {
    store: Arc<dyn AuditStore>,
    key: Arc<CheckpointKey>,
    sender: Mutex<Option<mpsc::Sender<Job>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl AuditLog {
    /// Starts the writer over `store`, signing checkpoints with `key`.
    pub fn start(store: Arc<dyn AuditStore>, key: CheckpointKey) -> Result<AuditLog, AuditError> {
        account_for(store.as_ref(), key.public_key())?;
        let key = Arc::new(key);
        let (tx, rx) = mpsc::channel::<Job>();
        let (s, k) = (store.clone(), key.clone());
        let writer = std::thread::Builder::new()
            .name("kyso-audit-writer".into())
            .spawn(move || write_loop(s.as_ref(), &k, rx))
            .map_err(AuditError::Writer)?;
        Ok(AuditLog {
            store,
            key,
            sender: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
        })
    }

    /// Appends `entry`; returns its sequence once it is committed.
    pub async fn append(&self, entry: Entry) -> Result<u64, AuditError> {
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
    pub fn append_blocking(&self, entry: Entry) -> Result<u64, AuditError> {
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

fn write_loop(store: &dyn AuditStore, key: &CheckpointKey, rx: mpsc::Receiver<Job>) {
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
        // A record no checkpoint covers is then one kyso did not write (`account_for`).
        let mut seal = |head: &Head| {
            (head.sequence > head.checkpointed)
                .then(|| key.sign(head.sequence, head.hash, OffsetDateTime::now_utc()))
        };
        let started = std::time::Instant::now();
        let appended = store.append(&entries, &mut seal);
        metrics::histogram!("kyso_audit_commit_seconds").record(started.elapsed().as_secs_f64());
        metrics::histogram!("kyso_audit_batch_records").record(entries.len() as f64);
        match appended {
            Ok(head) => {
                let first = head.sequence + 1 - replies.len() as u64;
                for (reply, sequence) in replies.into_iter().zip(first..) {
                    let _ = reply.send(Ok(sequence));
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
/// numbered from 1 and covered by the latest checkpoint, which verifies with `key` and names
/// the hash its record has. Every group commit signs its checkpoint in its own transaction, so
/// a record that no checkpoint covers was not written by kyso.
fn account_for(store: &dyn AuditStore, key: &PKey<Public>) -> Result<(), AuditError> {
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
    if let Some(cp) = store.latest_checkpoint()? {
        let holds = cp.verify(key)
            && store
                .get(cp.sequence)?
                .is_some_and(|r| r.hash == cp.head_hash);
        if !holds {
            return Err(AuditError::Unaccounted {
                first: cp.sequence as i64,
                why: "the latest checkpoint does not verify with this key over it",
            });
        }
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

/// Recomputes the chain from `from` to `to` (whole log when 0/None) and checks every
/// checkpoint in that range with `key`: those in the store and the `kept` ones, saved
/// outside the log by an auditor earlier. Names the first record that fails.
///
/// The stored checkpoints catch a record changed, deleted or reordered, and a chain
/// rewritten after them; only checkpoints kept elsewhere (and a key kept elsewhere) catch
/// a log whose tail was cut or rewritten together with its checkpoints.
pub fn verify_log(
    store: &dyn AuditStore,
    key: &PKey<Public>,
    from: u64,
    to: Option<u64>,
    kept: &[Checkpoint],
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
    // A record that cannot be read is an error of the store, not a sign of tampering.
    let mut previous = if from > 1 {
        store.get(from - 1)?.map_or([0; 32], |r| r.hash)
    } else {
        [0; 32]
    };
    let mut expected = from;
    let mut checked = 0u64;
    let mut failure: Option<(u64, String)> = None;
    let mut checkpoints: Vec<(Checkpoint, &str)> = store
        .checkpoints(from, to)?
        .into_iter()
        .map(|c| (c, "signed"))
        .collect();
    checkpoints.extend(
        kept.iter()
            .filter(|c| c.sequence >= from && to.is_none_or(|to| c.sequence <= to))
            .map(|c| (c.clone(), "kept")),
    );
    checkpoints.sort_by_key(|(c, _)| c.sequence);
    let wanted: std::collections::HashSet<u64> =
        checkpoints.iter().map(|(c, _)| c.sequence).collect();
    let mut hashes = std::collections::HashMap::new();
    let mut store_error = None;
    store.scan(from, to, &mut |r| {
        let r = match r {
            Ok(r) => r,
            Err(AuditError::Corrupt { sequence, source }) => {
                let why = source;
                failure = Some((
                    sequence,
                    format!("record {sequence} cannot be read ({why}): it was changed"),
                ));
                return false;
            }
            Err(e) => {
                store_error = Some(e);
                return false;
            }
        };
        if r.sequence > expected {
            failure = Some((
                expected,
                format!("record {expected} is missing: deleted from the log"),
            ));
            return false;
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
            return false;
        }
        if Record::compute_hash(r.sequence, &r.previous_hash, &r.entry) != r.hash {
            failure = Some((
                r.sequence,
                format!("record {}: its content does not match its hash: it was changed", r.sequence),
            ));
            return false;
        }
        previous = r.hash;
        if wanted.contains(&r.sequence) {
            hashes.insert(r.sequence, r.hash);
        }
        expected = r.sequence + 1;
        checked += 1;
        true
    })?;
    if let Some(e) = store_error {
        return Err(e);
    }
    let mut checkpoints_checked = 0;
    if failure.is_none() {
        for (cp, which) in checkpoints {
            checkpoints_checked += 1;
            if !cp.verify(key) {
                failure = Some((
                    cp.sequence,
                    format!(
                        "the {which} checkpoint at record {} does not verify with the service's key",
                        cp.sequence
                    ),
                ));
                break;
            }
            match hashes.get(&cp.sequence) {
                Some(h) if *h == cp.head_hash => {}
                Some(_) => {
                    failure = Some((
                        cp.sequence,
                        format!(
                            "record {}: the chain differs from the {which} checkpoint at it: the log was rewritten",
                            cp.sequence
                        ),
                    ));
                    break;
                }
                None => {
                    failure = Some((
                        cp.sequence,
                        format!(
                            "record {} is missing: a {which} checkpoint covers it (deleted from the end of the log)",
                            cp.sequence
                        ),
                    ));
                    break;
                }
            }
        }
    }
    // kyso seals every commit: records after the last stored checkpoint were not written by
    // kyso (checked when the range runs to the end of the log).
    if failure.is_none() && to.is_none() {
        let head = store.head()?;
        if head.sequence > head.checkpointed && head.sequence >= from {
            let first = (head.checkpointed + 1).max(from);
            failure = Some((
                first,
                format!(
                    "record {first} is not covered by any signed checkpoint: kyso seals every commit, so it did not write it (appended to the log)"
                ),
            ));
        }
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

#[cfg(test)]
mod tests {
    use super::sqlite::SqliteStore;
    use super::*;

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

    #[test]
    fn names_and_numbers_are_found_without_case_or_diacritics() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Arc::new(SqliteStore::open(&dir.path().join("audit.sqlite3")).expect("store"));
        let key = CheckpointKey::load_or_create(&dir.path().join("audit-key.pem")).expect("key");
        let log = AuditLog::start(store.clone(), key).expect("log");
        let mut e = entry(1);
        e.metadata.document_number = "123/QĐ-UBND".into();
        e.signatures.push(SignatureSummary {
            signer_common_name: Some("Trần Văn Huyến".into()),
            signer_organization: Some("Tỉnh ủy Hậu Giang".into()),
            indication: "PASSED".into(),
            ..Default::default()
        });
        log.append_blocking(e).expect("append");
        log.append_blocking(entry(2)).expect("append");
        let found = |q: Query| {
            store
                .query(&Query { limit: 10, ..q })
                .expect("query")
                .iter()
                .map(|r| r.sequence)
                .collect::<Vec<_>>()
        };
        for name in ["huyen", "HUYẾN", "tran van", "Trần Văn Huyến"] {
            let q = Query {
                signer_name: Some(name.into()),
                ..Default::default()
            };
            assert_eq!(found(q), vec![1], "{name}");
        }
        for body in ["hau giang", "TỈNH ỦY", "tinh uy hau"] {
            let q = Query {
                organization: Some(body.into()),
                ..Default::default()
            };
            assert_eq!(found(q), vec![1], "{body}");
        }
        for number in ["123/QĐ-UBND", "123/qđ-ubnd", "123/QD-UBND"] {
            let q = Query {
                document_number: Some(number.into()),
                ..Default::default()
            };
            assert_eq!(found(q), vec![1], "{number}");
        }
        // Wildcards in the text are text, not patterns.
        let q = Query {
            signer_name: Some("%".into()),
            ..Default::default()
        };
        assert!(found(q).is_empty());
        let q = Query {
            document_number: Some("123/QĐ".into()),
            ..Default::default()
        };
        assert!(found(q).is_empty(), "the number is matched whole");
        log.close();
    }

    /// A closed log of `n` records (its closing checkpoint at `n`) in `dir`, and its key.
    fn closed_log(dir: &Path, n: u64) -> PKey<Public> {
        let store = Arc::new(SqliteStore::open(&dir.join("audit.sqlite3")).expect("store"));
        let key = CheckpointKey::load_or_create(&dir.join("audit-key.pem")).expect("key");
        let public = key.public_key().clone();
        let log = AuditLog::start(store, key).expect("log");
        for i in 1..=n {
            assert_eq!(log.append_blocking(entry(i)).expect("append"), i);
        }
        log.close();
        public
    }

    fn check(
        dir: &Path,
        key: &PKey<Public>,
        from: u64,
        to: Option<u64>,
        kept: &[Checkpoint],
    ) -> LogCheck {
        let store = SqliteStore::open(&dir.join("audit.sqlite3")).expect("store");
        verify_log(&store, key, from, to, kept).expect("readable")
    }

    fn sql(dir: &Path, statements: &str) {
        let db = rusqlite::Connection::open(dir.join("audit.sqlite3")).expect("database");
        db.execute_batch(statements).expect("statements");
    }

    #[test]
    fn two_writers_on_one_database_extend_one_chain() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let open = || {
            let store =
                Arc::new(SqliteStore::open(&dir.path().join("audit.sqlite3")).expect("store"));
            let key = CheckpointKey::load_or_create(&dir.path().join("audit-key.pem"))
                .expect("the shared key");
            AuditLog::start(store, key).expect("log")
        };
        // Two kyso instances on one database, each with four busy callers.
        let logs = [open(), open()];
        let mut sequences: Vec<u64> = std::thread::scope(|s| {
            let callers: Vec<_> = logs
                .iter()
                .flat_map(|log| std::iter::repeat_n(log, 4))
                .enumerate()
                .map(|(c, log)| {
                    s.spawn(move || {
                        (0..50)
                            .map(|i| {
                                log.append_blocking(entry(c as u64 * 100 + i))
                                    .expect("append")
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            callers
                .into_iter()
                .flat_map(|c| c.join().expect("caller"))
                .collect()
        });
        for log in &logs {
            log.close();
        }
        sequences.sort_unstable();
        assert_eq!(
            sequences,
            (1..=400).collect::<Vec<_>>(),
            "each record its own place"
        );
        let key = CheckpointKey::load(&dir.path().join("audit-key.pem")).expect("key");
        let c = check(dir.path(), key.public_key(), 0, None, &[]);
        assert!(c.ok, "{}", c.problem);
        assert_eq!(c.records_checked, 400);
        assert!(c.checkpoints_checked >= 1);
    }

    /// A store whose reads fail as a disk would.
    struct FailingReads(SqliteStore);

    impl AuditStore for FailingReads {
        fn head(&self) -> Result<Head, AuditError> {
            self.0.head()
        }
        fn lowest_sequence(&self) -> Result<Option<i64>, AuditError> {
            self.0.lowest_sequence()
        }
        fn append(
            &self,
            entries: &[Entry],
            seal: &mut dyn FnMut(&Head) -> Option<Checkpoint>,
        ) -> Result<Head, AuditError> {
            self.0.append(entries, seal)
        }
        fn get(&self, _: u64) -> Result<Option<Record>, AuditError> {
            Err(AuditError::Store(rusqlite::Error::InvalidQuery))
        }
        fn query(&self, q: &Query) -> Result<Vec<Record>, AuditError> {
            self.0.query(q)
        }
        fn scan(
            &self,
            _: u64,
            _: Option<u64>,
            visit: &mut dyn FnMut(Result<Record, AuditError>) -> bool,
        ) -> Result<(), AuditError> {
            visit(Err(AuditError::Store(rusqlite::Error::InvalidQuery)));
            Ok(())
        }
        fn checkpoints(&self, from: u64, to: Option<u64>) -> Result<Vec<Checkpoint>, AuditError> {
            self.0.checkpoints(from, to)
        }
        fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, AuditError> {
            self.0.latest_checkpoint()
        }
    }

    #[test]
    fn a_store_that_cannot_be_read_is_an_error_not_tampering() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let key = closed_log(dir.path(), 4);
        let store =
            FailingReads(SqliteStore::open(&dir.path().join("audit.sqlite3")).expect("store"));
        for from in [0, 3] {
            let e = verify_log(&store, &key, from, None, &[]).expect_err("the reads fail");
            assert!(matches!(e, AuditError::Store(_)), "from {from}: {e:?}");
        }
    }

    #[test]
    fn a_range_is_checked_on_its_own() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let key = closed_log(dir.path(), 6);
        assert!(check(dir.path(), &key, 0, None, &[]).ok);
        sql(
            dir.path(),
            "UPDATE records SET verdict = 'INVALID' WHERE sequence = 5",
        );
        let before = check(dir.path(), &key, 1, Some(4), &[]);
        assert!(before.ok, "{}", before.problem);
        assert_eq!(before.records_checked, 4);
        for (from, to) in [(0, None), (3, Some(6)), (5, Some(5))] {
            let c = check(dir.path(), &key, from, to, &[]);
            assert_eq!(
                c.first_bad_sequence,
                Some(5),
                "{from}..{to:?}: {}",
                c.problem
            );
            assert!(c.problem.contains("was changed"), "{}", c.problem);
        }
    }

    #[test]
    fn rows_numbered_outside_the_log_are_named_and_not_listed() {
        for sequence in [0, -7] {
            let dir = tempfile::tempdir().expect("temporary directory");
            let key = closed_log(dir.path(), 3);
            // A copy of record 2 under a number the log never gives.
            sql(
                dir.path(),
                &format!(
                    "INSERT INTO records SELECT {sequence}, time_ns, principal, peer, method, \
                     document_sha256, document_size, document_id, document_number, sender, extra, \
                     signatures, verdict, error, kyso_version, trust_fingerprint, previous_hash, \
                     hash, policy FROM records WHERE sequence = 2"
                ),
            );
            let c = check(dir.path(), &key, 0, None, &[]);
            assert!(!c.ok, "{sequence}");
            assert!(
                c.problem.contains(&format!(
                    "a record numbered {sequence} is outside the log's numbering"
                )),
                "{}",
                c.problem
            );
            let store = SqliteStore::open(&dir.path().join("audit.sqlite3")).expect("store");
            let listed = store
                .query(&Query {
                    limit: 100,
                    ..Query::default()
                })
                .expect("query");
            assert_eq!(
                listed.iter().map(|r| r.sequence).collect::<Vec<_>>(),
                vec![3, 2, 1]
            );
            // And kyso does not extend the log.
            let key = CheckpointKey::load(&dir.path().join("audit-key.pem")).expect("key");
            let e = AuditLog::start(Arc::new(store), key)
                .err()
                .expect("refused");
            assert!(
                matches!(e, AuditError::Unaccounted { first, .. } if first == sequence),
                "{e}"
            );
        }
    }

    #[test]
    fn a_record_appended_with_a_recomputed_hash_is_not_signed_over() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let key = closed_log(dir.path(), 3);
        // Someone with write access appends record 4, its hash recomputed: the chain holds.
        let store = SqliteStore::open(&dir.path().join("audit.sqlite3")).expect("store");
        let last = store.get(3).expect("read").expect("record 3");
        let forged = Record::compute_hash(4, &last.hash, &last.entry);
        sql(
            dir.path(),
            &format!(
                "INSERT INTO records SELECT 4, time_ns, principal, peer, method, document_sha256, \
                 document_size, document_id, document_number, sender, extra, signatures, verdict, \
                 error, kyso_version, trust_fingerprint, X'{}', X'{}', policy FROM records \
                 WHERE sequence = 3",
                hex::encode(last.hash),
                hex::encode(forged)
            ),
        );
        let c = check(dir.path(), &key, 0, None, &[]);
        assert_eq!(c.first_bad_sequence, Some(4), "{}", c.problem);
        assert!(
            c.problem.contains("not covered by any signed checkpoint"),
            "{}",
            c.problem
        );
        let key = CheckpointKey::load(&dir.path().join("audit-key.pem")).expect("key");
        let e = AuditLog::start(Arc::new(store), key)
            .err()
            .expect("refused");
        assert_eq!(
            e.to_string(),
            "audit record 4 is not accounted for: no checkpoint kyso signed covers it; kyso does not extend this log (check it with kyso audit verify)"
        );
    }

    #[test]
    fn a_rewritten_chain_contradicts_the_signed_checkpoint() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let key = closed_log(dir.path(), 5);
        // Change record 3 and recompute every hash after it, as someone with write access
        // to the database but not the key would.
        let store = SqliteStore::open(&dir.path().join("audit.sqlite3")).expect("store");
        let db = rusqlite::Connection::open(dir.path().join("audit.sqlite3")).expect("database");
        let mut previous = store.get(2).expect("read").expect("record 2").hash;
        for sequence in 3..=5 {
            let mut r = store.get(sequence).expect("read").expect("record");
            if sequence == 3 {
                r.entry.verdict = "INVALID".into();
            }
            let hash = Record::compute_hash(sequence, &previous, &r.entry);
            db.execute(
                "UPDATE records SET verdict = ?1, previous_hash = ?2, hash = ?3 WHERE sequence = ?4",
                rusqlite::params![r.entry.verdict, previous.to_vec(), hash.to_vec(), sequence as i64],
            )
            .expect("update");
            previous = hash;
        }
        let c = check(dir.path(), &key, 0, None, &[]);
        assert!(!c.ok);
        // Every commit was sealed: the first checkpoint over a rewritten record catches it.
        assert_eq!(c.first_bad_sequence, Some(3));
        assert!(c.problem.contains("the log was rewritten"), "{}", c.problem);
    }

    #[test]
    fn only_a_kept_checkpoint_catches_a_tail_cut_with_its_checkpoints() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let key = closed_log(dir.path(), 6);
        let store = SqliteStore::open(&dir.path().join("audit.sqlite3")).expect("store");
        let kept = store
            .latest_checkpoint()
            .expect("read")
            .expect("closing checkpoint");
        assert_eq!(kept.sequence, 6);
        drop(store);
        sql(
            dir.path(),
            "DELETE FROM records WHERE sequence >= 5; DELETE FROM checkpoints WHERE sequence >= 5;",
        );
        let alone = check(dir.path(), &key, 0, None, &[]);
        assert!(
            alone.ok,
            "what the log alone cannot tell: {}",
            alone.problem
        );
        let c = check(dir.path(), &key, 0, None, std::slice::from_ref(&kept));
        assert_eq!(c.first_bad_sequence, Some(6), "{}", c.problem);
        assert!(
            c.problem.contains("a kept checkpoint covers it"),
            "{}",
            c.problem
        );

        // A kept checkpoint must itself be the service's.
        let mut forged = kept.clone();
        forged.sequence = 4;
        let c = check(dir.path(), &key, 0, None, &[forged]);
        assert_eq!(c.first_bad_sequence, Some(4));
        assert!(c.problem.contains("does not verify"), "{}", c.problem);
        // Outside the range checked, it is not consulted.
        let c = check(dir.path(), &key, 1, Some(3), std::slice::from_ref(&kept));
        assert!(c.ok, "{}", c.problem);
        // With every checkpoint gone, the log alone tells: kyso sealed each commit.
        sql(dir.path(), "DELETE FROM checkpoints;");
        let alone = check(dir.path(), &key, 0, None, &[]);
        assert_eq!(alone.first_bad_sequence, Some(1), "{}", alone.problem);
    }
}
