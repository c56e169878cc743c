//! Encrypted files: with the empty user password (RC4, AES-128, AES-256) kyso reads them;
//! with a real password it says the file is encrypted, not that it is broken.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use kyso::pdf::PdfError;
use kyso::{Verdict, VerifyError};
use lopdf::encryption::crypt_filters::{Aes128CryptFilter, Aes256CryptFilter, CryptFilter};
use lopdf::{EncryptionState, EncryptionVersion, Permissions};

/// `certs-test/pdf/unsigned.pdf` encrypted by lopdf under `cipher` with `user_password`.
fn encrypted(cipher: &str, user_password: &str) -> Vec<u8> {
    let mut doc = lopdf::Document::load_mem(&common::fixture("unsigned.pdf")).expect("loads");
    doc.trailer.set(
        "ID",
        lopdf::Object::Array(vec![
            lopdf::Object::string_literal(b"0123456789abcdef".to_vec()),
            lopdf::Object::string_literal(b"0123456789abcdef".to_vec()),
        ]),
    );
    let key = [7u8; 32];
    let filters = |f: Arc<dyn CryptFilter>| BTreeMap::from([(b"StdCF".to_vec(), f)]);
    let version = match cipher {
        "RC4" => EncryptionVersion::V2 {
            document: &doc,
            owner_password: "owner",
            user_password,
            key_length: 128,
            permissions: Permissions::all(),
        },
        "AES-128" => EncryptionVersion::V4 {
            document: &doc,
            encrypt_metadata: true,
            crypt_filters: filters(Arc::new(Aes128CryptFilter)),
            stream_filter: b"StdCF".to_vec(),
            string_filter: b"StdCF".to_vec(),
            owner_password: "owner",
            user_password,
            permissions: Permissions::all(),
        },
        _ => EncryptionVersion::V5 {
            encrypt_metadata: true,
            crypt_filters: filters(Arc::new(Aes256CryptFilter)),
            file_encryption_key: &key,
            stream_filter: b"StdCF".to_vec(),
            string_filter: b"StdCF".to_vec(),
            owner_password: "owner",
            user_password,
            permissions: Permissions::all(),
        },
    };
    let state = EncryptionState::try_from(version).expect("encryption state");
    doc.encrypt(&state).expect("encrypts");
    let mut out = Vec::new();
    doc.save_to(&mut out).expect("saves");
    out
}

#[test]
fn empty_user_password_files_are_read() {
    for cipher in ["RC4", "AES-128", "AES-256"] {
        let bytes = encrypted(cipher, "");
        let report = kyso::verify(&bytes, &common::context(), common::inputs())
            .unwrap_or_else(|e| panic!("{cipher}: {e}"));
        assert_eq!(report.verdict, Verdict::Unsigned, "{cipher}");
        assert!(
            report.decrypted.is_some(),
            "{cipher}: the report says the file was decrypted"
        );
    }
}

#[test]
fn password_protected_files_are_reported_as_encrypted() {
    for cipher in ["RC4", "AES-128", "AES-256"] {
        let bytes = encrypted(cipher, "secret");
        match kyso::verify(&bytes, &common::context(), common::inputs()) {
            Err(VerifyError::Pdf(PdfError::Encrypted { method })) => {
                assert!(!method.is_empty(), "{cipher}");
            }
            other => panic!("{cipher}: expected Encrypted, got {other:?}"),
        }
    }
}
