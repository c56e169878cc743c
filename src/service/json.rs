//! The JSON the service and its clients share: records, checkpoints and times as
//! `kyso client … --format json`, `kyso audit … --format json` and the HTTP API write them.

use base64::prelude::{Engine as _, BASE64_STANDARD};

use super::{convert, proto};
use crate::audit::tree::{SignedCheckpoint, TreeHead};

/// A protobuf time as RFC 3339 text.
pub fn rfc3339(t: Option<&prost_types::Timestamp>) -> Option<String> {
    t.and_then(convert::from_timestamp).and_then(|t| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    })
}

/// A checkpoint as `kyso audit checkpoint --format json` and `kyso client audit checkpoint
/// --format json` print it and `--checkpoint FILE` reads it back: the tree's size and root
/// and the signed note (C2SP tlog-checkpoint) that vouches for both.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Checkpoint {
    /// How many records the tree holds.
    pub tree_size: u64,
    /// Its root hash, base64.
    pub root_hash: String,
    /// The signed note.
    pub note: String,
    /// The log's verifier key (`<name>+<key id>+<base64 key>`), when the service gave it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub verifier_key: String,
}

impl Checkpoint {
    /// The checkpoint of `cp`, with the verifier key `verifier_key` ("" to leave it out).
    pub fn of(cp: &SignedCheckpoint, verifier_key: String) -> Checkpoint {
        Checkpoint {
            tree_size: cp.head.size,
            root_hash: BASE64_STANDARD.encode(cp.head.root),
            note: cp.note.clone(),
            verifier_key,
        }
    }

    /// The checkpoint the protocol carries.
    pub fn from_proto(c: &proto::Checkpoint) -> Checkpoint {
        Checkpoint {
            tree_size: c.tree_size,
            root_hash: BASE64_STANDARD.encode(&c.root_hash),
            note: c.note.clone(),
            verifier_key: c.verifier_key.clone(),
        }
    }

    /// The signed checkpoint it holds; `None` when the root is not base64 of 32 bytes.
    pub fn signed(&self) -> Option<SignedCheckpoint> {
        let root = BASE64_STANDARD
            .decode(&self.root_hash)
            .ok()?
            .try_into()
            .ok()?;
        Some(SignedCheckpoint {
            head: TreeHead {
                size: self.tree_size,
                root,
            },
            note: self.note.clone(),
        })
    }

    /// The checkpoint as the protocol carries it.
    pub fn to_proto(&self) -> Option<proto::Checkpoint> {
        let signed = self.signed()?;
        Some(convert::checkpoint(
            &signed,
            String::new(),
            self.verifier_key.clone(),
        ))
    }
}

/// An audit record as JSON: what `kyso audit query --format json`, `kyso client audit
/// query --format json` and `GET /api/v1/records` print.
pub fn record(r: &proto::AuditRecord) -> serde_json::Value {
    serde_json::to_value(Record::from_proto(r)).unwrap_or_default()
}

/// An audit record, as the JSON of the CLI and the HTTP API has it.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Record {
    /// Its id (the sequence, as text).
    pub id: String,
    /// Its place in the log, from 1.
    pub sequence: u64,
    /// When the request was answered (RFC 3339).
    pub time: Option<String>,
    /// Who called.
    pub principal: String,
    /// From where.
    pub peer: String,
    /// The gRPC method or HTTP route.
    pub method: String,
    /// Hex SHA-256 of the document, empty without one.
    pub document_sha256: Option<String>,
    /// The document's size in bytes.
    pub document_size: Option<u64>,
    /// The caller's id of the document (its DMS's).
    pub document_id: String,
    /// The document's number (số, ký hiệu).
    pub document_number: String,
    /// Who sent the document.
    pub sender: String,
    /// The caller's other metadata.
    pub extra: std::collections::BTreeMap<String, String>,
    /// Each signature as verified.
    pub signatures: Vec<RecordSignature>,
    /// The document rules' result, when they were applied.
    pub policy: Option<RecordPolicy>,
    /// `VALID`, `INVALID`, `INDETERMINATE`, `UNSIGNED`; empty for a refused request.
    pub verdict: String,
    /// The status and message of a refused request.
    pub error: Option<String>,
    /// The kyso that answered.
    pub kyso_version: String,
    /// The fingerprint of the trust it verified with.
    pub trust_fingerprint: String,
    /// The hash of the record before, hex.
    pub previous_hash: String,
    /// This record's hash, hex.
    pub hash: String,
}

/// A signature as a record keeps it.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct RecordSignature {
    /// The signature field's name.
    pub field: Option<String>,
    /// The signer's common name.
    pub signer_common_name: Option<String>,
    /// The signer's organisation.
    pub signer_organization: Option<String>,
    /// The signer certificate's serial, hex.
    pub signer_serial: Option<String>,
    /// The signer certificate's SHA-256, hex.
    pub certificate_sha256: Option<String>,
    /// The signer certificate's issuer.
    pub issuer: Option<String>,
    /// When it was signed (RFC 3339).
    pub signing_time: Option<String>,
    /// `PASSED`, `FAILED`, `INDETERMINATE`.
    pub indication: Option<&'static str>,
    /// Why, when not passed.
    pub sub_indication: Option<&'static str>,
    /// The signer's role (`ROLE_PERSON`, `ROLE_SEAL`, …).
    pub role: Option<&'static str>,
}

/// The document rules' result as a record keeps it.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct RecordPolicy {
    /// The policy's id, e.g. `decree-30`.
    pub id: String,
    /// Its version.
    pub version: String,
    /// The SHA-256 of its rules.
    pub sha256: String,
    /// The profile the document was found to be.
    pub profile: &'static str,
    /// The profile it was expected to be.
    pub expected: &'static str,
    /// Whether it conforms.
    pub conforms: bool,
}

impl Record {
    /// The record the protocol carries.
    pub fn from_proto(r: &proto::AuditRecord) -> Record {
        let time = |t: &Option<prost_types::Timestamp>| rfc3339(t.as_ref());
        Record {
            id: r.id.clone(),
            sequence: r.sequence,
            time: time(&r.time),
            principal: r.principal.clone(),
            peer: r.peer.clone(),
            method: r.method.clone(),
            document_sha256: r.document_sha256.clone(),
            document_size: r.document_size,
            document_id: r.document_id.clone(),
            document_number: r.document_number.clone(),
            sender: r.sender.clone(),
            extra: r.extra.clone().into_iter().collect(),
            signatures: r
                .signatures
                .iter()
                .map(|s| RecordSignature {
                    field: s.field.clone(),
                    signer_common_name: s.signer_common_name.clone(),
                    signer_organization: s.signer_organization.clone(),
                    signer_serial: s.signer_serial.clone(),
                    certificate_sha256: s.certificate_sha256.clone(),
                    issuer: s.issuer.clone(),
                    signing_time: time(&s.signing_time),
                    indication: convert::from_indication(s.indication_code).map(|x| x.name()),
                    sub_indication: convert::from_sub_indication(s.sub_indication_code)
                        .map(|x| x.name()),
                    role: proto::Role::try_from(s.role)
                        .ok()
                        .filter(|r| *r != proto::Role::Unspecified)
                        .map(|r| r.as_str_name()),
                })
                .collect(),
            policy: r.policy.as_ref().map(|p| RecordPolicy {
                id: p.id.clone(),
                version: p.version.clone(),
                sha256: p.sha256.clone(),
                profile: proto::Profile::try_from(p.profile)
                    .map(|v| v.as_str_name())
                    .unwrap_or("PROFILE_UNSPECIFIED"),
                expected: proto::ExpectedProfile::try_from(p.expected)
                    .map(|v| v.as_str_name())
                    .unwrap_or("EXPECTED_PROFILE_UNSPECIFIED"),
                conforms: p.conforms,
            }),
            verdict: convert::from_verdict(r.verdict_code)
                .map(|v| v.name().to_owned())
                .unwrap_or_default(),
            error: r.error.clone(),
            kyso_version: r.kyso_version.clone(),
            trust_fingerprint: r.trust_fingerprint.clone(),
            previous_hash: r.previous_hash.clone(),
            hash: r.hash.clone(),
        }
    }
}

/// A page of records: `GET /api/v1/records`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct RecordsPage {
    /// The records, newest first.
    pub records: Vec<Record>,
    /// The token of the next page; empty on the last.
    pub next_page_token: String,
}

/// What a log check found: `POST /api/v1/log/verify`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct LogCheck {
    /// Whether the log checked out.
    pub ok: bool,
    /// Records checked.
    pub records_checked: u64,
    /// Signed checkpoints checked.
    pub checkpoints_checked: u64,
    /// The first record that failed, if one did.
    pub first_bad_sequence: Option<u64>,
    /// What failed there.
    pub problem: String,
}

impl LogCheck {
    /// The check the protocol carries.
    pub fn from_proto(c: &proto::VerifyLogResponse) -> LogCheck {
        LogCheck {
            ok: c.ok,
            records_checked: c.records_checked,
            checkpoints_checked: c.checkpoints_checked,
            first_bad_sequence: c.first_bad_sequence,
            problem: c.problem.clone(),
        }
    }
}

/// A verification's answer: the report as `kyso verify --format json` writes it (without
/// `file`), with its audit record's id and the text summary.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct VerifyAnswer {
    /// The report.
    #[serde(flatten)]
    pub report: crate::Report,
    /// The id of the audit record of this call.
    pub audit_record_id: String,
    /// The report as text for a person, in the language asked for.
    pub summary: String,
    /// The receipt of the audit record: its inclusion proof under a signed checkpoint,
    /// which `kyso audit verify-proof` checks with nothing but the log's verifier key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt: Option<crate::audit::tree::InclusionProof>,
}

/// A page drawn on white (`POST /api/v1/pages/{p}/rendering`, and each side of a
/// comparison).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct PageRendering {
    /// The page, from 1.
    pub page: u32,
    /// The pages the document has.
    pub pages: u32,
    /// The picture's width in pixels.
    pub width: u32,
    /// The picture's height in pixels.
    pub height: u32,
    /// From the page's user space (where a widget's `rect` is) to the picture's pixels, y
    /// downwards: `x' = a·x + c·y + e`, `y' = b·x + d·y + f` for `[a, b, c, d, e, f]`.
    pub transform: [f64; 6],
    /// The picture, PNG, base64.
    pub png: String,
    /// The audit record of this call (only on `POST /api/v1/pages/{p}/rendering`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_record_id: Option<String>,
}

impl PageRendering {
    /// The answer of `r`.
    pub fn of(r: &crate::render::Rendering, audit_record_id: Option<String>) -> PageRendering {
        use base64::Engine as _;
        PageRendering {
            page: r.page,
            pages: r.pages,
            width: r.width,
            height: r.height,
            transform: r.transform,
            png: base64::engine::general_purpose::STANDARD.encode(&r.png),
            audit_record_id,
        }
    }
}

/// A page as a signature signed it beside the page now
/// (`POST /api/v1/signatures/{n}/comparison`).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct PageComparison {
    /// The signature, from 1.
    pub signature: u32,
    /// The page, from 1.
    pub page: u32,
    /// The page as signed; absent when the signed version had no such page.
    pub signed: Option<PageRendering>,
    /// The page now, at the same scale.
    pub now: PageRendering,
    /// The areas that look different, `[x0, y0, x1, y1]` as fractions of the picture from
    /// its top left corner; the whole page when it was added or changed size. Empty when
    /// the two look the same.
    pub changed: Vec<[f32; 4]>,
    /// How many pixels differ.
    pub differing_pixels: u64,
    /// The audit record of this call.
    pub audit_record_id: String,
}

impl PageComparison {
    /// The answer of `c`, signature `signature`'s.
    pub fn of(c: &crate::render::Comparison, signature: u32, audit_record_id: String) -> Self {
        PageComparison {
            signature,
            page: c.now.page,
            signed: c.signed.as_ref().map(|r| PageRendering::of(r, None)),
            now: PageRendering::of(&c.now, None),
            changed: c.changed.clone(),
            differing_pixels: c.differing_pixels,
            audit_record_id,
        }
    }
}

/// A refused request: `{"error": {"code", "message"}}`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What was refused.
    pub error: ErrorDetail,
}

/// The refusal's code and message.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// The gRPC name of the refusal's status (`INVALID_ARGUMENT`, `UNAUTHENTICATED`, …).
    pub code: &'static str,
    /// What is wrong, for the caller.
    pub message: String,
}
