//! The audit log's Merkle tree proofs, checked by an implementation of RFC 9162 written
//! here from the RFC's text (§2.1.1 the tree hash, §2.1.3.2 and §2.1.4.2 the verification
//! algorithms) and by OpenSSL for the note's Ed25519 signature — not by the code that made
//! them (`tlog_tiles` and `signed_note`, through `kyso::audit`).

#[path = "common/stores.rs"]
mod stores;

use std::sync::Arc;

use base64::prelude::{Engine as _, BASE64_STANDARD};
use kyso::audit::tree::{ConsistencyProof, InclusionProof, ProofError, SignedCheckpoint};
use kyso::audit::{self, AuditLog, AuditStore, Record};
use stores::{entry, Backend};

on_both_stores!(
    every_leaf_of_trees_of_1_to_40_records_proves_by_the_rfc,
    a_record_edited_in_the_database_no_longer_proves,
    a_checkpoint_from_a_rewritten_history_fails_consistency,
    a_proof_of_another_log_or_key_fails,
);

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = openssl::sha::Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finish()
}

fn leaf(record: &[u8]) -> [u8; 32] {
    sha256(&[&[0], record])
}

fn node(l: &[u8; 32], r: &[u8; 32]) -> [u8; 32] {
    sha256(&[&[1], l, r])
}

/// MTH(D[n]) (RFC 9162 §2.1.1), by its recursive definition.
fn mth(leaves: &[[u8; 32]]) -> [u8; 32] {
    match leaves.len() {
        0 => sha256(&[]),
        1 => leaves[0],
        n => {
            // k: the largest power of two smaller than n.
            let mut k = 1;
            while k * 2 < n {
                k *= 2;
            }
            node(&mth(&leaves[..k]), &mth(&leaves[k..]))
        }
    }
}

fn decode(h: &str) -> [u8; 32] {
    BASE64_STANDARD
        .decode(h)
        .expect("base64")
        .try_into()
        .expect("32 bytes")
}

/// RFC 9162 §2.1.3.2: verifying an inclusion proof.
fn rfc_inclusion(
    index: u64,
    size: u64,
    leaf_hash: [u8; 32],
    path: &[[u8; 32]],
    root: [u8; 32],
) -> bool {
    if index >= size {
        return false;
    }
    let (mut fnn, mut sn, mut r) = (index, size - 1, leaf_hash);
    for p in path {
        if sn == 0 {
            return false;
        }
        if fnn & 1 == 1 || fnn == sn {
            r = node(p, &r);
            if fnn & 1 == 0 {
                while fnn & 1 == 0 && fnn != 0 {
                    fnn >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node(&r, p);
        }
        fnn >>= 1;
        sn >>= 1;
    }
    sn == 0 && r == root
}

/// RFC 9162 §2.1.4.2: verifying a consistency proof.
fn rfc_consistency(
    first: u64,
    second: u64,
    first_hash: [u8; 32],
    second_hash: [u8; 32],
    proof: &[[u8; 32]],
) -> bool {
    if first == second {
        return proof.is_empty() && first_hash == second_hash;
    }
    if first == 0 || first > second || proof.is_empty() {
        return false;
    }
    let mut path = proof.to_vec();
    if first.is_power_of_two() {
        path.insert(0, first_hash);
    }
    let (mut fnn, mut sn) = (first - 1, second - 1);
    while fnn & 1 == 1 {
        fnn >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if sn == 0 {
            return false;
        }
        if fnn & 1 == 1 || fnn == sn {
            fr = node(c, &fr);
            sr = node(c, &sr);
            if fnn & 1 == 0 {
                while fnn & 1 == 0 && fnn != 0 {
                    fnn >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node(&sr, c);
        }
        fnn >>= 1;
        sn >>= 1;
    }
    fr == first_hash && sr == second_hash && sn == 0
}

/// The note's tree (size, root), its signature checked with OpenSSL against `public`: the
/// text up to the blank line is signed; the signature line is `— <name> <base64 of the
/// 4-byte key id and the 64-byte signature>` (C2SP signed-note).
fn open_note(note: &str, name: &str, public: &[u8; 32]) -> Option<(u64, [u8; 32])> {
    let (text, signatures) = note.split_once("\n\n")?;
    let text = format!("{text}\n");
    let key =
        openssl::pkey::PKey::public_key_from_raw_bytes(public, openssl::pkey::Id::ED25519).ok()?;
    let id = &sha256(&[name.as_bytes(), b"\n", &[1], public])[..4];
    let signed = signatures.lines().any(|line| {
        let Some((who, b64)) = line.strip_prefix("— ").and_then(|l| l.split_once(' ')) else {
            return false;
        };
        let Ok(sig) = BASE64_STANDARD.decode(b64) else {
            return false;
        };
        who == name
            && sig.len() == 68
            && &sig[..4] == id
            && openssl::sign::Verifier::new_without_digest(&key)
                .and_then(|mut v| v.verify_oneshot(&sig[4..], text.as_bytes()))
                .unwrap_or(false)
    });
    let mut lines = text.lines();
    (signed && lines.next()? == name).then_some(())?;
    let size = lines.next()?.parse().ok()?;
    Some((size, decode(lines.next()?)))
}

const ORIGIN: &str = "kyso.test.example/audit";

fn start(b: &Backend) -> (Arc<dyn AuditStore>, AuditLog) {
    let store = b.open();
    let log = AuditLog::start(store.clone(), b.key(), Some(ORIGIN)).expect("log");
    (store, log)
}

fn raw_public(log: &AuditLog) -> [u8; 32] {
    log.key()
        .public_key()
        .raw_public_key()
        .expect("raw")
        .try_into()
        .expect("32")
}

fn every_leaf_of_trees_of_1_to_40_records_proves_by_the_rfc(b: Backend) {
    let (store, log) = start(&b);
    let public = raw_public(&log);
    let mut leaves = Vec::new();
    let mut checkpoints: Vec<SignedCheckpoint> = Vec::new();
    for n in 1..=40u64 {
        // One record per commit: each commit signs the tree of n records.
        let committed = log.append_blocking(entry(n)).expect("append");
        assert_eq!(committed.sequence, n);
        let cp = (*committed.checkpoint).clone();
        let r = store.get(n).expect("read").expect("record");
        leaves.push(leaf(&Record::canonical(
            r.sequence,
            &r.previous_hash,
            &r.entry,
        )));
        let (size, root) = open_note(&cp.note, ORIGIN, &public).expect("the note verifies");
        assert_eq!(
            (size, root),
            (n, mth(&leaves)),
            "the signed root is MTH of the records"
        );
        for i in 1..=n {
            let p = audit::prove(store.as_ref(), i, &cp).expect("proof");
            let record = BASE64_STANDARD.decode(&p.record).expect("base64");
            assert_eq!(leaf(&record), leaves[(i - 1) as usize], "leaf {i} of {n}");
            let path: Vec<[u8; 32]> = p.inclusion.iter().map(|h| decode(h)).collect();
            assert!(
                rfc_inclusion(p.leaf_index, p.tree_size, leaf(&record), &path, root),
                "record {i} in the tree of {n}"
            );
            // The checker here is not one that passes everything.
            if let Some(first) = path.first() {
                let mut bent = path.clone();
                bent[0] = node(first, first);
                assert!(!rfc_inclusion(
                    p.leaf_index,
                    p.tree_size,
                    leaf(&record),
                    &bent,
                    root
                ));
            }
            assert!(!rfc_inclusion(
                p.leaf_index,
                p.tree_size,
                leaf(b"other"),
                &path,
                root
            ));
            // The receipt the service gives for the commit's own record is the same proof.
            if i == n {
                assert_eq!(log.receipt(&committed).expect("receipt"), p);
            }
        }
        for old in checkpoints.iter().filter(|c| c.head.size <= n) {
            let p = audit::prove_consistency(store.as_ref(), old.head.size, &cp).expect("proof");
            let proof: Vec<[u8; 32]> = p.proof.iter().map(|h| decode(h)).collect();
            assert_eq!(decode(&p.old_root), old.head.root);
            assert!(
                rfc_consistency(old.head.size, n, old.head.root, root, &proof),
                "{} to {n}",
                old.head.size
            );
            assert!(p.verify(log.verifier_key(), Some(old)).is_ok());
            if old.head.size < n {
                let other = node(&old.head.root, &old.head.root);
                assert!(!rfc_consistency(old.head.size, n, other, root, &proof));
            }
        }
        checkpoints.push(cp);
    }
    log.close();
    let check = audit::verify_log(
        store.as_ref(),
        log.key().public_key(),
        0,
        None,
        &checkpoints,
    )
    .expect("readable");
    assert!(check.ok, "{}", check.problem);
    assert_eq!(check.records_checked, 40);
}

fn a_record_edited_in_the_database_no_longer_proves(b: Backend) {
    let (store, log) = start(&b);
    let mut last = None;
    for n in 1..=9 {
        last = Some(log.append_blocking(entry(n)).expect("append"));
    }
    let cp = last.expect("committed").checkpoint;
    let before = audit::prove(store.as_ref(), 4, &cp).expect("proof");
    assert!(before.verify(log.verifier_key()).is_ok());
    b.sql("UPDATE records SET verdict = 'INVALID' WHERE sequence = 4");
    let after = audit::prove(store.as_ref(), 4, &cp).expect("a proof is still made");
    assert_ne!(after.record, before.record);
    assert!(matches!(
        after.verify(log.verifier_key()),
        Err(ProofError::Inclusion { leaf_index: 3 })
    ));
    // The auditor's check names it too.
    let check =
        audit::verify_log(store.as_ref(), log.key().public_key(), 0, None, &[]).expect("readable");
    assert_eq!(check.first_bad_sequence, Some(4), "{}", check.problem);
    log.close();
}

fn a_checkpoint_from_a_rewritten_history_fails_consistency(honest: Backend) {
    // Two histories signed with one key under one name, the same but for record 3: what
    // an operator with the key who rewrote the log would publish.
    let rewritten = honest.fresh();
    drop(honest.key());
    std::fs::copy(
        honest.dir().join("audit-key.pem"),
        rewritten.dir().join("audit-key.pem"),
    )
    .expect("the same key");
    let (_, a) = start(&honest);
    let (b_store, b) = start(&rewritten);
    let mut saved = None;
    for n in 1..=6 {
        saved = Some(a.append_blocking(entry(n)).expect("append").checkpoint);
        let mut e = entry(n);
        if n == 3 {
            e.verdict = "INVALID".into();
        }
        b.append_blocking(e).expect("append");
    }
    let saved = (*saved.expect("the auditor's checkpoint of 6")).clone();
    let mut latest = None;
    for n in 7..=10 {
        latest = Some(b.append_blocking(entry(n)).expect("append").checkpoint);
    }
    let latest = latest.expect("the tree of 10");
    let proof = audit::prove_consistency(b_store.as_ref(), 6, &latest).expect("proof");
    // The proof holds for the rewritten tree of 6 …
    assert!(proof.verify(b.verifier_key(), None).is_ok());
    // … not for the one the auditor saved.
    assert!(matches!(
        proof.verify(b.verifier_key(), Some(&saved)),
        Err(ProofError::NotSaved { .. })
    ));
    let forged = ConsistencyProof {
        old_root: BASE64_STANDARD.encode(saved.head.root),
        ..proof
    };
    assert!(matches!(
        forged.verify(b.verifier_key(), Some(&saved)),
        Err(ProofError::Consistency { old_size: 6 })
    ));
    // And the rewritten log, checked against the saved checkpoint, fails at it.
    let check = audit::verify_log(
        b_store.as_ref(),
        b.key().public_key(),
        0,
        None,
        std::slice::from_ref(&saved),
    )
    .expect("readable");
    assert_eq!(check.first_bad_sequence, Some(6), "{}", check.problem);
    assert!(check.problem.contains("rewritten"), "{}", check.problem);
    a.close();
    b.close();
}

fn a_proof_of_another_log_or_key_fails(b: Backend) {
    let (store, log) = start(&b);
    let committed = log.append_blocking(entry(1)).expect("append");
    let receipt: InclusionProof = log.receipt(&committed).expect("receipt");
    let other = b.fresh();
    let (_, stranger) = start(&other);
    assert!(matches!(
        receipt.verify(stranger.verifier_key()),
        Err(ProofError::Note { .. })
    ));
    // A log keeps its name: starting it under another is refused.
    log.close();
    let e = AuditLog::start(store, b.key(), Some("kyso.other.example/audit"))
        .err()
        .expect("refused");
    assert!(e.to_string().contains("kyso.test.example/audit"), "{e}");
    stranger.close();
}
