//! The JSON the service and its clients share: records, checkpoints and times as
//! `kyso client … --format json`, `kyso audit … --format json` and the HTTP API write them.

use super::{convert, proto};

/// A protobuf time as RFC 3339 text.
pub fn rfc3339(t: Option<&prost_types::Timestamp>) -> Option<String> {
    t.and_then(convert::from_timestamp).and_then(|t| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    })
}

/// A checkpoint as `kyso client audit checkpoint --format json` prints it and
/// `--checkpoint FILE` reads it back.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Checkpoint {
    /// The sequence of the last record it covers.
    pub sequence: u64,
    /// That record's hash, hex.
    pub head_hash: String,
    /// RFC 3339, to the nanosecond (the signature covers it).
    pub time: String,
    /// The Ed25519 signature, hex.
    pub signature: String,
    /// The log's public key, PEM (SubjectPublicKeyInfo).
    #[serde(default)]
    pub public_key_pem: String,
}

impl Checkpoint {
    /// The checkpoint the protocol carries.
    pub fn from_proto(c: &proto::Checkpoint) -> Checkpoint {
        let time = rfc3339(c.time.as_ref()).unwrap_or_default();
        Checkpoint {
            sequence: c.sequence,
            head_hash: c.head_hash.clone(),
            time,
            signature: c.signature.clone(),
            public_key_pem: c.public_key_pem.clone(),
        }
    }

    /// The checkpoint as the protocol carries it; the time must read as RFC 3339.
    pub fn to_proto(&self) -> Result<proto::Checkpoint, time::error::Parse> {
        let time = time::OffsetDateTime::parse(
            &self.time,
            &time::format_description::well_known::Rfc3339,
        )?;
        Ok(proto::Checkpoint {
            sequence: self.sequence,
            head_hash: self.head_hash.clone(),
            time: Some(convert::timestamp(time)),
            signature: self.signature.clone(),
            public_key_pem: self.public_key_pem.clone(),
        })
    }
}

/// An audit record as JSON: what `kyso audit query --format json`, `kyso client audit
/// query --format json` and `GET /api/v1/records` print.
pub fn record(r: &proto::AuditRecord) -> serde_json::Value {
    let time = |t: &Option<prost_types::Timestamp>| rfc3339(t.as_ref());
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
            "indication": convert::from_indication(s.indication_code).map(|x| x.name()),
            "sub_indication": convert::from_sub_indication(s.sub_indication_code).map(|x| x.name()),
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
        "verdict": convert::from_verdict(r.verdict_code).map(|v| v.name()).unwrap_or_default(),
        "error": r.error,
        "kyso_version": r.kyso_version,
        "trust_fingerprint": r.trust_fingerprint,
        "previous_hash": r.previous_hash,
        "hash": r.hash,
    })
}
