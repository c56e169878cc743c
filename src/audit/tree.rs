//! The audit log as a Merkle tree (RFC 9162 §2.1), its checkpoints as signed notes
//! (C2SP `tlog-checkpoint` in a C2SP `signed-note`), and the proofs an auditor or a caller
//! checks with nothing but the log's verifier key.
//!
//! Leaf *n* is record *n + 1*'s canonical encoding ([`super::Record::canonical`]): leaf
//! hash `SHA-256(0x00 ‖ record)`, node hash `SHA-256(0x01 ‖ left ‖ right)`. The tree's
//! hashes are stored as Go's `sumdb/tlog` lays them out — one hash per complete subtree,
//! numbered in the order they are completed ([`tlog_tiles::stored_hash_index`]) — so that an
//! append writes on average two hashes and a proof reads O(log n). The hashing and the
//! proofs are `tlog_tiles`'s (Cloudflare's port of `sumdb/tlog`); the notes are
//! `signed_note`'s. This module adds what a store needs around them: a writer that sees the
//! hashes of its own transaction before they commit ([`TreeWriter`]), a rebuild that
//! recomputes the stored hashes from the records alone ([`Rebuild`]), and the JSON proofs
//! `kyso audit prove|consistency|verify-proof` and the service's receipts carry.

use std::cell::RefCell;
use std::collections::BTreeMap;

use base64::prelude::{Engine as _, BASE64_STANDARD};
use serde::{Deserialize, Serialize};
use signed_note::{Note, StandardSigner, StandardVerifier, VerifierList};
use tlog_tiles::{Hash, HashReader};

use super::AuditError;

/// Most hashes a proof may carry: a tree of 2⁶⁴ leaves is 64 levels deep, so a longer
/// proof is malformed, and the checks below recurse once per hash.
pub const MAX_PROOF_HASHES: usize = 64;

/// The origin of a log whose configuration names none. C2SP asks for a schema-less URL;
/// `.localhost` is reserved, so this one says it was not chosen (the README asks each
/// deployment to name its own).
pub const DEFAULT_ORIGIN: &str = "kyso.localhost/audit";

/// Why a proof, a checkpoint or a verifier key does not hold.
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    /// The verifier key is not `<name>+<8 hex digits>+<base64 of 0x01 ‖ Ed25519 key>`.
    #[error("not a signed-note Ed25519 verifier key (<name>+<key id>+<base64 key>): {0}")]
    VerifierKey(#[source] signed_note::VerifierError),
    /// The checkpoint is not a signed note, or its signature does not verify.
    #[error("the checkpoint is not a note signed by {key}: {source}")]
    Note {
        /// The verifier key's name and id.
        key: String,
        /// What signed_note found.
        #[source]
        source: signed_note::NoteError,
    },
    /// The signed text is not a C2SP checkpoint (origin, size, base64 root hash).
    #[error("the signed note is not a tlog checkpoint (origin, tree size, root hash)")]
    NotCheckpoint,
    /// The checkpoint names another log than the key.
    #[error("the checkpoint is of the log {found}, not {expected}")]
    Origin {
        /// The checkpoint's origin line.
        found: String,
        /// The key's name, which kyso gives its log's origin.
        expected: String,
    },
    /// The proof is for a tree of another size than its checkpoint.
    #[error("the proof is for a tree of {proof} records, its checkpoint for {checkpoint}")]
    Size {
        /// The size the proof states.
        proof: u64,
        /// The size the checkpoint signs.
        checkpoint: u64,
    },
    /// The leaf is not in the tree, or the old tree is not smaller than the new.
    #[error("{0}")]
    Range(&'static str),
    /// The proof is longer than any tree needs.
    #[error("the proof has {0} hashes; no tree needs more than {MAX_PROOF_HASHES}")]
    TooLong(usize),
    /// The hashes do not lead to the checkpoint's root.
    #[error("the inclusion proof does not lead to the checkpoint's root hash: the record is not leaf {leaf_index} of that tree")]
    Inclusion {
        /// The leaf the proof is for.
        leaf_index: u64,
    },
    /// The hashes do not join the old root to the new.
    #[error("the consistency proof does not join the tree of {old_size} records to the checkpoint's: the log was not only appended to")]
    Consistency {
        /// The older tree's size.
        old_size: u64,
    },
    /// The old tree in a consistency proof is not the one the auditor saved.
    #[error("the proof starts from a tree of {proof_size} records with root {proof_root}, but the saved checkpoint has {saved_size} records with root {saved_root}")]
    NotSaved {
        /// The old size the proof states.
        proof_size: u64,
        /// The old root it states, base64.
        proof_root: String,
        /// The saved checkpoint's size.
        saved_size: u64,
        /// Its root, base64.
        saved_root: String,
    },
}

/// The size and root hash of the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeHead {
    /// How many records (leaves) it holds.
    pub size: u64,
    /// Its root hash (RFC 9162 MTH).
    pub root: [u8; 32],
}

/// A C2SP `tlog-checkpoint`, signed: the note text is
///
/// ```text
/// <origin>
/// <tree size, decimal>
/// <root hash, base64>
///
/// — <key name> <base64 of key id ‖ Ed25519 signature>
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// The tree it signs.
    pub head: TreeHead,
    /// The whole signed note.
    pub note: String,
}

/// The log's verifier key, `<name>+<hex key id>+<base64 of 0x01 ‖ key>` as Go's
/// `golang.org/x/mod/sumdb/note` reads it; its name is the log's origin.
#[derive(Clone)]
pub struct VerifierKey {
    text: String,
    verifier: StandardVerifier,
}

impl std::fmt::Debug for VerifierKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl VerifierKey {
    /// Parses a verifier key (surrounding whitespace ignored).
    pub fn parse(text: &str) -> Result<VerifierKey, ProofError> {
        let text = text.trim();
        let verifier = StandardVerifier::new(text).map_err(ProofError::VerifierKey)?;
        Ok(VerifierKey {
            text: text.to_owned(),
            verifier,
        })
    }

    /// The verifier key named `name` for the raw Ed25519 public key `raw`.
    pub fn ed25519(name: &str, raw: &[u8; 32]) -> Result<VerifierKey, ProofError> {
        let mut key = vec![ALG_ED25519];
        key.extend_from_slice(raw);
        let id = signed_note::key_id(name, &key);
        Self::parse(&format!("{name}+{id:08x}+{}", BASE64_STANDARD.encode(&key)))
    }

    /// The name: the origin of the log whose checkpoints it verifies.
    pub fn name(&self) -> &str {
        signed_note::Verifier::name(&self.verifier)
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The raw Ed25519 public key.
    pub fn ed25519_key(&self) -> [u8; 32] {
        // `parse` checked the form: name, id, base64 of the algorithm byte and 32 bytes.
        self.text
            .splitn(3, '+')
            .nth(2)
            .and_then(|b| BASE64_STANDARD.decode(b).ok())
            .and_then(|k| k.get(1..).and_then(|k| <[u8; 32]>::try_from(k).ok()))
            .unwrap_or_default()
    }
}

/// The signed-note algorithm byte of Ed25519 (C2SP signed-note, "Signatures").
const ALG_ED25519: u8 = 0x01;

/// Signs checkpoints of the log `origin` with an Ed25519 key whose 32-byte seed is `seed`.
pub struct NoteSigner(StandardSigner);

impl NoteSigner {
    /// The signer for `origin` with the key `seed` (its public half `public`).
    pub fn new(origin: &str, seed: &[u8], public: &[u8; 32]) -> Option<NoteSigner> {
        let mut key = vec![ALG_ED25519];
        key.extend_from_slice(public);
        let id = signed_note::key_id(origin, &key);
        let mut private = vec![ALG_ED25519];
        private.extend_from_slice(seed);
        // signed_note takes the private key as text, the form Go's note.NewSigner reads;
        // it checks the id against the public key it derives from the seed.
        StandardSigner::new(&format!(
            "PRIVATE+KEY+{origin}+{id:08x}+{}",
            BASE64_STANDARD.encode(&private)
        ))
        .ok()
        .map(NoteSigner)
    }

    /// The signed checkpoint of `head` in the log `origin`.
    pub fn sign(&self, origin: &str, head: TreeHead) -> Option<SignedCheckpoint> {
        let text = tlog_tiles::Checkpoint::new(origin, head.size, Hash(head.root), "")
            .ok()?
            .to_bytes();
        let mut note = Note::new(&text, &[]).ok()?;
        note.add_sigs(&[&self.0]).ok()?;
        Some(SignedCheckpoint {
            head,
            note: String::from_utf8(note.to_bytes()).ok()?,
        })
    }
}

impl SignedCheckpoint {
    /// Opens the signed note `note`: its signature by `key` verifies and its text is a
    /// checkpoint of `key`'s log. Other signatures (witnesses') are ignored.
    pub fn open(note: &str, key: &VerifierKey) -> Result<SignedCheckpoint, ProofError> {
        let failed = |source| ProofError::Note {
            key: key_label(key),
            source,
        };
        let parsed = Note::from_bytes(note.as_bytes()).map_err(failed)?;
        let known = VerifierList::new(vec![Box::new(key.verifier.clone())]);
        parsed.verify(&known).map_err(failed)?;
        let checkpoint = tlog_tiles::Checkpoint::from_bytes(parsed.text())
            .map_err(|_| ProofError::NotCheckpoint)?;
        if checkpoint.origin() != key.name() {
            return Err(ProofError::Origin {
                found: checkpoint.origin().to_owned(),
                expected: key.name().to_owned(),
            });
        }
        Ok(SignedCheckpoint {
            head: TreeHead {
                size: checkpoint.size(),
                root: checkpoint.hash().0,
            },
            note: note.to_owned(),
        })
    }
}

impl SignedCheckpoint {
    /// A note saved as it is, its tree read from its text without checking the signature
    /// ([`SignedCheckpoint::open`] checks it); `None` when it is no signed checkpoint.
    pub fn unopened(note: String) -> Option<SignedCheckpoint> {
        let parsed = Note::from_bytes(note.as_bytes()).ok()?;
        let checkpoint = tlog_tiles::Checkpoint::from_bytes(parsed.text()).ok()?;
        let head = TreeHead {
            size: checkpoint.size(),
            root: checkpoint.hash().0,
        };
        Some(SignedCheckpoint { head, note })
    }
}

fn key_label(key: &VerifierKey) -> String {
    let v = &key.verifier;
    format!(
        "{}+{:08x}",
        signed_note::Verifier::name(v),
        signed_note::Verifier::key_id(v)
    )
}

/// The hash of leaf `record` (`SHA-256(0x00 ‖ record)`).
pub fn leaf_hash(record: &[u8]) -> [u8; 32] {
    tlog_tiles::record_hash(record).0
}

/// A proof that one record is leaf `leaf_index` of the tree a signed checkpoint signs: what
/// `kyso audit prove` prints and a receipt carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InclusionProof {
    /// The record's canonical bytes, base64: the leaf itself.
    pub record: String,
    /// Its index in the tree (its sequence − 1).
    pub leaf_index: u64,
    /// The size of the tree it is proven in.
    pub tree_size: u64,
    /// The audit path, base64 hashes from the leaf's sibling up (RFC 9162 §2.1.3).
    pub inclusion: Vec<String>,
    /// The signed checkpoint of that tree.
    pub checkpoint: String,
}

/// A proof that the tree of `old_size` records is a prefix of a signed later one: what
/// `kyso audit consistency` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConsistencyProof {
    /// The older tree's size.
    pub old_size: u64,
    /// The newer tree's size.
    pub new_size: u64,
    /// The older tree's root, base64.
    pub old_root: String,
    /// The consistency proof, base64 hashes (RFC 9162 §2.1.4).
    pub proof: Vec<String>,
    /// The signed checkpoint of the newer tree.
    pub checkpoint: String,
}

/// What a proof proves, once checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proven {
    /// The record is leaf `leaf_index` of the signed tree.
    Inclusion {
        /// The leaf.
        leaf_index: u64,
        /// The record's canonical bytes.
        record: Vec<u8>,
        /// The signed tree.
        checkpoint: SignedCheckpoint,
    },
    /// The tree of `old` is a prefix of the signed tree.
    Consistency {
        /// The older tree.
        old: TreeHead,
        /// The signed newer tree.
        checkpoint: SignedCheckpoint,
    },
}

fn hashes(list: &[String]) -> Result<Vec<Hash>, ProofError> {
    if list.len() > MAX_PROOF_HASHES {
        return Err(ProofError::TooLong(list.len()));
    }
    list.iter()
        .map(|h| {
            Hash::parse_hash(h)
                .map_err(|_| ProofError::Range("a proof hash is not base64 of 32 bytes"))
        })
        .collect()
}

fn encode(hashes: Vec<Hash>) -> Vec<String> {
    hashes.iter().map(|h| BASE64_STANDARD.encode(h.0)).collect()
}

impl InclusionProof {
    /// Checks the proof with nothing but `key`: the checkpoint is the log's, the proof is
    /// for the tree it signs, and the path leads from the record to its root.
    pub fn verify(&self, key: &VerifierKey) -> Result<Proven, ProofError> {
        let checkpoint = SignedCheckpoint::open(&self.checkpoint, key)?;
        if checkpoint.head.size != self.tree_size {
            return Err(ProofError::Size {
                proof: self.tree_size,
                checkpoint: checkpoint.head.size,
            });
        }
        if self.leaf_index >= self.tree_size {
            return Err(ProofError::Range("the leaf index is not inside the tree"));
        }
        let record = BASE64_STANDARD
            .decode(&self.record)
            .map_err(|_| ProofError::Range("the record is not base64"))?;
        let path = hashes(&self.inclusion)?;
        tlog_tiles::check_record(
            &path,
            self.tree_size,
            Hash(checkpoint.head.root),
            self.leaf_index,
            tlog_tiles::record_hash(&record),
        )
        .map_err(|_| ProofError::Inclusion {
            leaf_index: self.leaf_index,
        })?;
        Ok(Proven::Inclusion {
            leaf_index: self.leaf_index,
            record,
            checkpoint,
        })
    }
}

impl ConsistencyProof {
    /// Checks the proof with nothing but `key`, and, given the checkpoint the auditor saved
    /// earlier, that the old tree is that one (without it, the old root is the log's word).
    pub fn verify(
        &self,
        key: &VerifierKey,
        saved: Option<&SignedCheckpoint>,
    ) -> Result<Proven, ProofError> {
        let checkpoint = SignedCheckpoint::open(&self.checkpoint, key)?;
        if checkpoint.head.size != self.new_size {
            return Err(ProofError::Size {
                proof: self.new_size,
                checkpoint: checkpoint.head.size,
            });
        }
        if self.old_size == 0 || self.old_size > self.new_size {
            return Err(ProofError::Range(
                "the old tree must hold at least one record and no more than the new",
            ));
        }
        let old_root = Hash::parse_hash(&self.old_root)
            .map_err(|_| ProofError::Range("the old root is not base64 of 32 bytes"))?;
        if let Some(saved) = saved {
            if saved.head.size != self.old_size || saved.head.root != old_root.0 {
                return Err(ProofError::NotSaved {
                    proof_size: self.old_size,
                    proof_root: self.old_root.clone(),
                    saved_size: saved.head.size,
                    saved_root: BASE64_STANDARD.encode(saved.head.root),
                });
            }
        }
        let proof = hashes(&self.proof)?;
        tlog_tiles::check_tree(
            &proof,
            self.new_size,
            Hash(checkpoint.head.root),
            self.old_size,
            old_root,
        )
        .map_err(|_| ProofError::Consistency {
            old_size: self.old_size,
        })?;
        Ok(Proven::Consistency {
            old: TreeHead {
                size: self.old_size,
                root: old_root.0,
            },
            checkpoint,
        })
    }
}

/// Reads stored tree hashes by index; each store provides one.
pub type ReadHashes<'a> = dyn Fn(&[u64]) -> Result<Vec<[u8; 32]>, AuditError> + 'a;

/// The tree as a store holds it, seen through `read` plus the hashes written in the current
/// transaction, which are not yet readable from the store. `tlog_tiles` asks for hashes
/// through [`HashReader`], whose error cannot carry the store's: that one is kept aside and
/// returned instead.
pub struct TreeWriter<'a> {
    read: &'a ReadHashes<'a>,
    /// Hashes this writer made, to store.
    pending: BTreeMap<u64, Hash>,
    /// Hashes read ahead from the store ([`TreeWriter::preload`]), not to be stored again.
    seen: BTreeMap<u64, Hash>,
    failed: RefCell<Option<AuditError>>,
}

impl HashReader for TreeWriter<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        let known = |i: &u64| self.pending.get(i).or_else(|| self.seen.get(i)).copied();
        let missing: Vec<u64> = indexes
            .iter()
            .copied()
            .filter(|i| known(i).is_none())
            .collect();
        let read = match (self.read)(&missing) {
            Ok(read) if read.len() == missing.len() => read,
            Ok(_) => return Err(tlog_tiles::Error::IndexesNotInTree),
            Err(e) => {
                *self.failed.borrow_mut() = Some(e);
                return Err(tlog_tiles::Error::IndexesNotInTree);
            }
        };
        let mut read = read.into_iter();
        Ok(indexes
            .iter()
            .map(|i| match known(i) {
                Some(h) => h,
                // As many read as missing, in order (checked above).
                None => Hash(read.next().unwrap_or_default()),
            })
            .collect())
    }
}

impl<'a> TreeWriter<'a> {
    /// The tree `read` gives, to extend.
    pub fn new(read: &'a ReadHashes<'a>) -> TreeWriter<'a> {
        TreeWriter {
            read,
            pending: BTreeMap::new(),
            seen: BTreeMap::new(),
            failed: RefCell::new(None),
        }
    }

    /// Reads, in one call, the right edge of the tree of `size` leaves: every hash that
    /// appending after it and the new root need, so that a group commit asks the store once
    /// rather than once a leaf (a round trip each, on PostgreSQL).
    pub fn preload(&mut self, size: u64) -> Result<(), AuditError> {
        let indexes = edge_indexes(size);
        let hashes = (self.read)(&indexes)?;
        if hashes.len() != indexes.len() {
            return Err(AuditError::Tree("the store lost hashes of the tree".into()));
        }
        self.seen
            .extend(indexes.into_iter().zip(hashes.into_iter().map(Hash)));
        Ok(())
    }

    fn fail(&self, e: tlog_tiles::Error) -> AuditError {
        self.failed
            .borrow_mut()
            .take()
            .unwrap_or(AuditError::Tree(e.to_string()))
    }

    /// Adds leaf `index` (the tree holds `index` leaves) with hash `leaf`.
    pub fn push(&mut self, index: u64, leaf: [u8; 32]) -> Result<(), AuditError> {
        let new = tlog_tiles::stored_hashes_for_record_hash(index, Hash(leaf), &*self)
            .map_err(|e| self.fail(e))?;
        let first = tlog_tiles::stored_hash_index(0, index);
        self.pending.extend((first..).zip(new));
        Ok(())
    }

    /// The root of the tree of the first `size` leaves.
    pub fn root(&self, size: u64) -> Result<[u8; 32], AuditError> {
        tlog_tiles::tree_hash(size, self)
            .map(|h| h.0)
            .map_err(|e| self.fail(e))
    }

    /// The audit path of leaf `index` in the tree of `size` leaves, base64.
    pub fn inclusion(&self, size: u64, index: u64) -> Result<Vec<String>, AuditError> {
        tlog_tiles::prove_record(size, index, self)
            .map(encode)
            .map_err(|e| self.fail(e))
    }

    /// The consistency proof from the tree of `old` leaves to the tree of `new`, base64.
    pub fn consistency(&self, new: u64, old: u64) -> Result<Vec<String>, AuditError> {
        tlog_tiles::prove_tree(new, old, self)
            .map(encode)
            .map_err(|e| self.fail(e))
    }

    /// Whether the tree of `new` leaves is consistent with `old`, proven over the hashes
    /// as stored (the check before a checkpoint of `new` is signed).
    pub fn extends(&self, old: TreeHead, new: TreeHead) -> Result<bool, AuditError> {
        if old.size == 0 {
            return Ok(true);
        }
        let proof = tlog_tiles::prove_tree(new.size, old.size, self).map_err(|e| self.fail(e))?;
        Ok(
            tlog_tiles::check_tree(&proof, new.size, Hash(new.root), old.size, Hash(old.root))
                .is_ok(),
        )
    }

    /// The hashes written since [`TreeWriter::new`], by stored index, to store with the
    /// records they cover.
    pub fn written(self) -> impl Iterator<Item = (u64, [u8; 32])> {
        self.pending.into_iter().map(|(i, h)| (i, h.0))
    }
}

/// The tree recomputed from the records alone, one leaf at a time, holding only its right
/// edge (one hash per level): what `kyso audit verify` compares the stored hashes and the
/// signed roots with.
#[derive(Debug, Clone, Default)]
pub struct Rebuild {
    size: u64,
    edge: BTreeMap<u64, Hash>,
}

impl HashReader for Rebuild {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        indexes
            .iter()
            .map(|i| {
                self.edge
                    .get(i)
                    .copied()
                    .ok_or(tlog_tiles::Error::IndexesNotInTree)
            })
            .collect()
    }
}

impl Rebuild {
    /// Continues the tree of `size` leaves whose right edge `read` gives (the prefix before
    /// a range checked on its own is taken as stored).
    pub fn resume(size: u64, read: &ReadHashes<'_>) -> Result<Rebuild, AuditError> {
        let indexes = edge_indexes(size);
        let hashes = read(&indexes)?;
        if hashes.len() != indexes.len() {
            return Err(AuditError::Tree("the store lost hashes of the tree".into()));
        }
        Ok(Rebuild {
            size,
            edge: indexes
                .into_iter()
                .zip(hashes.into_iter().map(Hash))
                .collect(),
        })
    }

    /// How many leaves it holds.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Adds the next leaf; returns the stored hashes it completes, from the stored index
    /// given, as a store must hold them.
    pub fn push(&mut self, leaf: [u8; 32]) -> (u64, Vec<[u8; 32]>) {
        let n = self.size;
        // The edge holds exactly the hashes stored_hashes reads: the left siblings of the
        // subtrees this leaf completes.
        let new = tlog_tiles::stored_hashes_for_record_hash(n, Hash(leaf), &*self)
            .unwrap_or_else(|_| vec![Hash(leaf)]);
        let first = tlog_tiles::stored_hash_index(0, n);
        let completed = u8::try_from((n + 1).trailing_zeros()).unwrap_or(0);
        for level in 0..completed {
            self.edge
                .remove(&tlog_tiles::stored_hash_index(level, (n >> level) - 1));
        }
        if let Some(top) = new.last() {
            self.edge.insert(first + u64::from(completed), *top);
        }
        self.size += 1;
        (first, new.into_iter().map(|h| h.0).collect())
    }

    /// The root of the tree so far.
    pub fn root(&self) -> [u8; 32] {
        // The edge is the tree's decomposition into complete subtrees (kept by `push`).
        tlog_tiles::tree_hash(self.size, self)
            .map(|h| h.0)
            .unwrap_or_default()
    }
}

/// The stored indexes of the complete subtrees that make up the tree of `size` leaves (its
/// right edge): what a writer reads before it appends.
pub fn edge_indexes(size: u64) -> Vec<u64> {
    if size == 0 {
        return Vec::new();
    }
    tlog_tiles::sub_tree_index(0, size, Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The eight leaves of the RFC 6962 reference tree, which the transparency-dev
    /// project's test vectors (github.com/transparency-dev/merkle, `testdata/`) are built on.
    const LEAVES: [&str; 8] = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];

    fn hex_leaves() -> Vec<Vec<u8>> {
        LEAVES
            .iter()
            .map(|l| hex::decode(l).expect("hex"))
            .collect()
    }

    /// The roots of the reference tree's prefixes, as those vectors state them.
    const ROOTS: [(u64, &str); 6] = [
        (1, "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0="),
        (2, "+sVCA+fMaWzw38tCySodnbr3CtnmIfS9jZhmLwDjwSU="),
        (3, "rra8/idLcKFPsGel5VeCZNsPqbUa9eC6FZFY8yngbnc="),
        (5, "Tju7H3tHjc/nH7YxYxUZo7yhLJrvyhYSv85ME6hiZNQ="),
        (6, "duZ9rbzfHhDht03cYIq9L5jfsW+851J3tSMqEn8gh+8="),
        (8, "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg="),
    ];

    fn h(b64: &str) -> Hash {
        Hash::parse_hash(b64).expect("a vector hash")
    }

    /// Inclusion proofs of the reference tree: leaf, tree size, root, leaf hash, path.
    const INCLUSION: [(u64, u64, &str, &str, &[&str]); 5] = [
        (
            0,
            1,
            "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=",
            "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=",
            &[],
        ),
        (
            0,
            8,
            "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=",
            "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=",
            &[
                "lqKW0iTyhcZ77pPDD4owkVfw2qNdxbh+QQt4YwoJz8c=",
                "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=",
                "a0eq8p7jwq+a+Im8H7klTavTEXfxYjLdaqsDXKOb9uQ=",
            ],
        ),
        (
            5,
            8,
            "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=",
            "QnGia+DYqE8L1UyMMC58s6O10fpngKQLzOKHNHfatlg=",
            &[
                "vBoGQ7EuTS18d5GPROD095qDi2z57FtcKD4fTYhZnms=",
                "yoVOoSjtBQtBs1/8G4e46yveRh6eO1WW7Oa51ZdaCuA=",
                "037kGJdt2VdTwcc4Yrk5j6Kiz5tP8P3+izDNlSCWFLc=",
            ],
        ),
        (
            2,
            3,
            "rra8/idLcKFPsGel5VeCZNsPqbUa9eC6FZFY8yngbnc=",
            "ApjRIpBtz8EIkstTpzmS/FufST6kybrbJ7eRtBJ6f+c=",
            &["+sVCA+fMaWzw38tCySodnbr3CtnmIfS9jZhmLwDjwSU="],
        ),
        (
            1,
            5,
            "Tju7H3tHjc/nH7YxYxUZo7yhLJrvyhYSv85ME6hiZNQ=",
            "lqKW0iTyhcZ77pPDD4owkVfw2qNdxbh+QQt4YwoJz8c=",
            &[
                "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=",
                "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=",
                "vBoGQ7EuTS18d5GPROD095qDi2z57FtcKD4fTYhZnms=",
            ],
        ),
    ];

    /// Consistency proofs of the reference tree: old size, new size, old root, new root,
    /// proof.
    const CONSISTENCY: [(u64, u64, &str, &str, &[&str]); 5] = [
        (
            1,
            1,
            "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=",
            "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=",
            &[],
        ),
        (
            1,
            8,
            "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=",
            "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=",
            &[
                "lqKW0iTyhcZ77pPDD4owkVfw2qNdxbh+QQt4YwoJz8c=",
                "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=",
                "a0eq8p7jwq+a+Im8H7klTavTEXfxYjLdaqsDXKOb9uQ=",
            ],
        ),
        (
            6,
            8,
            "duZ9rbzfHhDht03cYIq9L5jfsW+851J3tSMqEn8gh+8=",
            "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=",
            &[
                "DrxdNDf74tsVi58Sah0RjjCBgQMdCpSfje3t68VY72o=",
                "yoVOoSjtBQtBs1/8G4e46yveRh6eO1WW7Oa51ZdaCuA=",
                "037kGJdt2VdTwcc4Yrk5j6Kiz5tP8P3+izDNlSCWFLc=",
            ],
        ),
        (
            2,
            5,
            "+sVCA+fMaWzw38tCySodnbr3CtnmIfS9jZhmLwDjwSU=",
            "Tju7H3tHjc/nH7YxYxUZo7yhLJrvyhYSv85ME6hiZNQ=",
            &[
                "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=",
                "vBoGQ7EuTS18d5GPROD095qDi2z57FtcKD4fTYhZnms=",
            ],
        ),
        (
            6,
            7,
            "duZ9rbzfHhDht03cYIq9L5jfsW+851J3tSMqEn8gh+8=",
            "3bib5AOAnjJXUNPSY814kpwpQreUKjS3fhIslZSnTIw=",
            &[
                "DrxdNDf74tsVi58Sah0RjjCBgQMdCpSfje3t68VY72o=",
                "sIaT7C5yFZcTBkHoIR5+7cy0wmQTlj7ubB4u0W/7Gl8=",
                "037kGJdt2VdTwcc4Yrk5j6Kiz5tP8P3+izDNlSCWFLc=",
            ],
        ),
    ];

    /// A proof changed as the vectors' mutated cases change it.
    fn mutations(proof: &[Hash], root: Hash) -> Vec<(String, Vec<Hash>)> {
        let garbage = tlog_tiles::record_hash(b"garbage");
        let mut out = Vec::new();
        for i in 0..proof.len() {
            for bit in [0, 3, 4, 255] {
                let mut p = proof.to_vec();
                p[i].0[bit / 8] ^= 1 << (bit % 8);
                out.push((format!("modified proof[{i}] bit {bit}"), p));
            }
            let mut removed = proof.to_vec();
            removed.remove(i);
            out.push((format!("removed component {i}"), removed));
        }
        for i in 0..=proof.len() {
            let mut inserted = proof.to_vec();
            inserted.insert(i, garbage);
            out.push((format!("inserted component at {i}"), inserted));
        }
        for (name, extra) in [("garbage", garbage), ("root", root)] {
            out.push((format!("preceding {name}"), [&[extra], proof].concat()));
            out.push((format!("trailing {name}"), [proof, &[extra]].concat()));
        }
        out
    }

    #[test]
    fn inclusion_vectors_hold_and_their_mutations_fail() {
        for (leaf, size, root, leaf_h, path) in INCLUSION {
            let (root, leaf_h) = (h(root), h(leaf_h));
            let path: Vec<Hash> = path.iter().map(|p| h(p)).collect();
            let case = format!("leaf {leaf} of {size}");
            assert!(
                tlog_tiles::check_record(&path, size, root, leaf, leaf_h).is_ok(),
                "{case}"
            );
            let fails = |p: &[Hash], t: u64, th: Hash, n: u64, lh: Hash| {
                tlog_tiles::check_record(&p.to_vec(), t, th, n, lh).is_err()
            };
            for (what, p) in mutations(&path, root) {
                assert!(fails(&p, size, root, leaf, leaf_h), "{case}: {what}");
            }
            for (what, n) in [
                ("leaf + 1", leaf + 1),
                ("leaf - 1", leaf.wrapping_sub(1)),
                ("leaf ^ 2", leaf ^ 2),
            ] {
                assert!(fails(&path, size, root, n, leaf_h), "{case}: {what}");
            }
            for (what, t) in [("size * 2", size * 2), ("size / 2", size / 2)] {
                if t != size {
                    assert!(fails(&path, t, root, leaf, leaf_h), "{case}: {what}");
                }
            }
            let random = tlog_tiles::record_hash(b"random root");
            assert!(
                fails(&path, size, random, leaf, leaf_h),
                "{case}: random root"
            );
            assert!(
                fails(&path, size, tlog_tiles::EMPTY_HASH, leaf, leaf_h),
                "{case}: empty root"
            );
            let wrong = tlog_tiles::record_hash(b"WrongLeaf");
            assert!(fails(&path, size, root, leaf, wrong), "{case}: wrong leaf");
        }
    }

    #[test]
    fn consistency_vectors_hold_and_their_mutations_fail() {
        for (old, new, old_root, new_root, proof) in CONSISTENCY {
            let (old_root, new_root) = (h(old_root), h(new_root));
            let proof: Vec<Hash> = proof.iter().map(|p| h(p)).collect();
            let case = format!("{old} to {new}");
            assert!(
                tlog_tiles::check_tree(&proof, new, new_root, old, old_root).is_ok(),
                "{case}"
            );
            let fails = |p: &[Hash], t: u64, th: Hash, n: u64, oh: Hash| {
                tlog_tiles::check_tree(&p.to_vec(), t, th, n, oh).is_err()
            };
            for (what, p) in mutations(&proof, new_root) {
                assert!(fails(&p, new, new_root, old, old_root), "{case}: {what}");
            }
            for (what, n) in [
                ("old + 1", old + 1),
                ("old - 1", old - 1),
                ("old ^ 2", old ^ 2),
            ] {
                if n != old {
                    assert!(fails(&proof, new, new_root, n, old_root), "{case}: {what}");
                }
            }
            for (what, t) in [("new * 2", new * 2), ("new / 2", new / 2)] {
                if t != new {
                    assert!(fails(&proof, t, new_root, old, old_root), "{case}: {what}");
                }
            }
            if old != new {
                assert!(
                    fails(&proof, new, old_root, old, new_root),
                    "{case}: swapped roots"
                );
                assert!(
                    fails(&[], new, new_root, old, old_root),
                    "{case}: empty proof"
                );
                assert!(
                    fails(&proof[..proof.len() - 1], new, new_root, old, old_root),
                    "{case}: truncated"
                );
            }
            let wrong = tlog_tiles::record_hash(b"wrong root");
            assert!(
                fails(&proof, new, new_root, old, wrong),
                "{case}: wrong old root"
            );
            assert!(
                fails(&proof, new, wrong, old, old_root),
                "{case}: wrong new root"
            );
        }
    }

    /// The reference tree in memory, as a store would hold its hashes.
    fn stored_reference_tree() -> BTreeMap<u64, [u8; 32]> {
        let none = |_: &[u64]| -> Result<Vec<[u8; 32]>, AuditError> { Ok(Vec::new()) };
        let mut writer = TreeWriter::new(&none);
        for (i, leaf) in hex_leaves().iter().enumerate() {
            writer.push(i as u64, leaf_hash(leaf)).expect("push");
        }
        writer.written().collect()
    }

    #[test]
    fn the_writer_makes_the_vectors_proofs() {
        let stored = stored_reference_tree();
        let read = |indexes: &[u64]| -> Result<Vec<[u8; 32]>, AuditError> {
            Ok(indexes
                .iter()
                .filter_map(|i| stored.get(i).copied())
                .collect())
        };
        let tree = TreeWriter::new(&read);
        for (size, root) in ROOTS {
            assert_eq!(
                BASE64_STANDARD.encode(tree.root(size).expect("root")),
                root,
                "size {size}"
            );
        }
        for (leaf, size, _, _, path) in INCLUSION {
            assert_eq!(
                tree.inclusion(size, leaf).expect("proof"),
                path,
                "leaf {leaf} of {size}"
            );
        }
        for (old, new, _, _, proof) in CONSISTENCY {
            assert_eq!(
                tree.consistency(new, old).expect("proof"),
                proof,
                "{old} to {new}"
            );
        }
        // Hashes the store does not have are an error, not a panic.
        let lost = |_: &[u64]| -> Result<Vec<[u8; 32]>, AuditError> { Ok(Vec::new()) };
        assert!(TreeWriter::new(&lost).root(8).is_err());
    }

    #[test]
    fn the_rebuild_gives_the_stored_hashes_and_the_reference_roots() {
        let stored = stored_reference_tree();
        let mut tree = Rebuild::default();
        for leaf in hex_leaves() {
            let (first, made) = tree.push(leaf_hash(&leaf));
            for (i, h) in (first..).zip(made) {
                assert_eq!(stored.get(&i), Some(&h), "stored hash {i}");
            }
            if let Some((_, root)) = ROOTS.iter().find(|(n, _)| *n == tree.size()) {
                assert_eq!(
                    BASE64_STANDARD.encode(tree.root()),
                    *root,
                    "size {}",
                    tree.size()
                );
            }
        }
        assert_eq!(stored.len(), (first_free(8)) as usize);
        // Resumed from the stored edge, it goes on as if it had seen every leaf.
        let read = |indexes: &[u64]| -> Result<Vec<[u8; 32]>, AuditError> {
            Ok(indexes
                .iter()
                .filter_map(|i| stored.get(i).copied())
                .collect())
        };
        let mut resumed = Rebuild::resume(5, &read).expect("edge");
        for leaf in &hex_leaves()[5..] {
            resumed.push(leaf_hash(leaf));
        }
        assert_eq!(BASE64_STANDARD.encode(resumed.root()), ROOTS[5].1);
    }

    fn first_free(size: u64) -> u64 {
        tlog_tiles::stored_hash_count(size)
    }

    fn keys() -> (NoteSigner, VerifierKey) {
        let key = openssl::pkey::PKey::generate_ed25519().expect("key");
        let seed = key.raw_private_key().expect("seed");
        let public: [u8; 32] = key
            .raw_public_key()
            .expect("public")
            .try_into()
            .expect("32");
        let signer = NoteSigner::new("example.org/log", &seed, &public).expect("signer");
        (
            signer,
            VerifierKey::ed25519("example.org/log", &public).expect("verifier key"),
        )
    }

    #[test]
    fn signed_checkpoints_open_only_with_their_key() {
        let (signer, key) = keys();
        let head = TreeHead {
            size: 8,
            root: h(ROOTS[5].1).0,
        };
        let cp = signer.sign("example.org/log", head).expect("signed");
        let text = cp.note.clone();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[..4], ["example.org/log", "8", ROOTS[5].1, ""]);
        assert!(lines[4].starts_with("— example.org/log "), "{text}");
        assert_eq!(SignedCheckpoint::open(&cp.note, &key).expect("opens"), cp);
        // The key as Go's note package writes it: name, 8 hex digits, base64 of 33 bytes.
        let parts: Vec<&str> = key.as_str().splitn(3, '+').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[1].len(), 8);
        assert_eq!(
            BASE64_STANDARD.decode(parts[2]).expect("base64")[0],
            ALG_ED25519
        );

        let (_, other) = keys();
        assert!(matches!(
            SignedCheckpoint::open(&cp.note, &other),
            Err(ProofError::Note { .. })
        ));
        let forged = cp.note.replacen("\n8\n", "\n9\n", 1);
        assert!(matches!(
            SignedCheckpoint::open(&forged, &key),
            Err(ProofError::Note { .. })
        ));
        let elsewhere = signer.sign("example.org/other", head).expect("signed");
        assert!(SignedCheckpoint::open(&elsewhere.note, &key).is_err());
        assert!(VerifierKey::parse("example.org/log+00000000+AQ==").is_err());
    }

    #[test]
    fn proofs_verify_offline_and_fail_when_changed() {
        let (signer, key) = keys();
        let stored = stored_reference_tree();
        let read = |indexes: &[u64]| -> Result<Vec<[u8; 32]>, AuditError> {
            Ok(indexes
                .iter()
                .filter_map(|i| stored.get(i).copied())
                .collect())
        };
        let tree = TreeWriter::new(&read);
        let head = |size| TreeHead {
            size,
            root: tree.root(size).expect("root"),
        };
        let leaves = hex_leaves();
        let proof = InclusionProof {
            record: BASE64_STANDARD.encode(&leaves[5]),
            leaf_index: 5,
            tree_size: 7,
            inclusion: tree.inclusion(7, 5).expect("path"),
            checkpoint: signer
                .sign("example.org/log", head(7))
                .expect("signed")
                .note,
        };
        assert!(matches!(
            proof.verify(&key),
            Ok(Proven::Inclusion { leaf_index: 5, .. })
        ));
        let mut other_record = proof.clone();
        other_record.record = BASE64_STANDARD.encode(&leaves[4]);
        assert!(matches!(
            other_record.verify(&key),
            Err(ProofError::Inclusion { .. })
        ));
        let mut other_size = proof.clone();
        other_size.tree_size = 8;
        assert!(matches!(
            other_size.verify(&key),
            Err(ProofError::Size { .. })
        ));
        let mut long = proof.clone();
        long.inclusion = vec![long.inclusion[0].clone(); MAX_PROOF_HASHES + 1];
        assert!(matches!(long.verify(&key), Err(ProofError::TooLong(_))));

        let saved = signer.sign("example.org/log", head(3)).expect("signed");
        let consistency = ConsistencyProof {
            old_size: 3,
            new_size: 8,
            old_root: BASE64_STANDARD.encode(head(3).root),
            proof: tree.consistency(8, 3).expect("proof"),
            checkpoint: signer
                .sign("example.org/log", head(8))
                .expect("signed")
                .note,
        };
        assert!(consistency.verify(&key, Some(&saved)).is_ok());
        let mut rewritten = consistency.clone();
        rewritten.old_root = BASE64_STANDARD.encode(head(4).root);
        assert!(matches!(
            rewritten.verify(&key, Some(&saved)),
            Err(ProofError::NotSaved { .. })
        ));
        assert!(matches!(
            rewritten.verify(&key, None),
            Err(ProofError::Consistency { .. })
        ));
        let mut empty = consistency.clone();
        empty.old_size = 0;
        assert!(matches!(
            empty.verify(&key, None),
            Err(ProofError::Range(_))
        ));
        // A tree of the largest size is handled without overflow or panic.
        let mut huge = proof;
        huge.tree_size = u64::MAX;
        huge.leaf_index = u64::MAX - 1;
        assert!(huge.verify(&key).is_err());
    }
}
