//! The first step, before any digest: what each signature dictionary says about its own
//! structure (ByteRange, coverage, the dictionary itself), kept as a [`Prepared`] signature.

use crate::cms::{self, DigestAlgorithm, SignedData};
use crate::pdf::{ByteRange, Coverage, PdfFile, SignatureDict, SignatureKind};
use crate::report::{Check, CheckId, Indication, Outcome, SubIndication};

/// A signature after the checks that need no digest, waiting for its digest.
pub(super) struct Prepared<'a> {
    pub(super) dict: &'a SignatureDict,
    pub(super) checks: Vec<Check>,
    /// The first decisive failure, if any (indication, sub-indication).
    pub(super) verdict: Option<(Indication, SubIndication)>,
    pub(super) range: Option<ByteRange>,
    pub(super) coverage: Option<Coverage>,
    pub(super) cms: Option<SignedData>,
    /// The digest the signature needs over its ranges, and (once computed) the value.
    pub(super) digest_alg: Option<DigestAlgorithm>,
    pub(super) digest: Option<Vec<u8>>,
    pub(super) modifications: Vec<crate::integrity::Change>,
}

impl<'a> Prepared<'a> {
    pub(super) fn new(dict: &'a SignatureDict, bytes: &[u8], pdf: &PdfFile) -> Self {
        let mut p = Prepared {
            dict,
            checks: Vec::new(),
            verdict: None,
            range: None,
            coverage: None,
            cms: None,
            digest_alg: None,
            digest: None,
            modifications: Vec::new(),
        };
        if let Some(why) = &dict.unreadable {
            p.fail(
                CheckId::SignatureDictionary,
                Indication::Failed,
                SubIndication::FormatFailure,
                why.clone(),
            );
            return p;
        }
        if dict.superseded {
            p.fail(
                CheckId::FinalRevision,
                Indication::Failed,
                SubIndication::FormatFailure,
                format!(
                    "this signature of revision {} was overwritten or removed by a later revision: the document as displayed no longer shows it",
                    dict.revision
                ),
            );
        }
        match dict.check_byte_range(bytes) {
            Ok(range) => {
                match dict.gap_in_own_object(&range) {
                    Err(e) => p.fail(
                        CheckId::ByteRange,
                        Indication::Failed,
                        SubIndication::FormatFailure,
                        e.to_string(),
                    ),
                    Ok(()) => p.pass(
                        CheckId::ByteRange,
                        format!(
                            "ByteRange {:?} is well formed and its gap is exactly /Contents",
                            dict.byte_range_raw
                        ),
                    ),
                }
                p.range = Some(range);
                let coverage = coverage(range.end(), bytes, pdf);
                p.coverage = Some(coverage);
                match coverage {
                    Coverage::EntireFile => p.pass(CheckId::Coverage, "the signature covers the entire file".into()),
                    Coverage::EntireRevision(n) => match incomplete_tail(bytes, pdf) {
                        // Bytes after the last complete revision are no incremental update a
                        // verifier can account for, yet lenient readers display what they hold.
                        Some(len) => p.fail(CheckId::Coverage, Indication::Failed, SubIndication::FormatFailure,
                            format!("the signature covers revision {n}, but the file ends with {len} bytes that are not a complete revision")),
                        None => p.push(CheckId::Coverage, Outcome::Info, format!("the signature covers revision {n} of {}; later revisions follow", pdf.revisions.len())),
                    },
                    Coverage::Partial => p.fail(CheckId::Coverage, Indication::Failed, SubIndication::FormatFailure,
                        format!("the signed bytes end at offset {}, which is neither the end of the file nor the end of a revision", range.end())),
                }
            }
            Err(e) => p.fail(
                CheckId::ByteRange,
                Indication::Failed,
                SubIndication::FormatFailure,
                e.to_string(),
            ),
        }
        if dict.blanked {
            p.fail(
                CheckId::CmsStructure,
                Indication::Failed,
                SubIndication::FormatFailure,
                "the signature value was removed after signing: /Contents is all zero, yet its /ByteRange is filled in and its appearance is drawn".into(),
            );
            p.vi("chữ ký đã bị gỡ bỏ sau khi ký: giá trị chữ ký bị xóa trắng, trong khi vùng ký và hình chữ ký vẫn còn".into());
            return p;
        }
        let sub_filter = dict.sub_filter.as_deref().unwrap_or("");
        let supported = match dict.kind {
            SignatureKind::DocumentTimestamp => sub_filter == "ETSI.RFC3161",
            SignatureKind::Signature => matches!(
                sub_filter,
                "adbe.pkcs7.detached"
                    | "ETSI.CAdES.detached"
                    | "adbe.pkcs7.sha1"
                    | "adbe.x509.rsa_sha1"
            ),
        };
        if !supported {
            p.fail(
                CheckId::SubFilter,
                Indication::Indeterminate,
                SubIndication::FormatFailure,
                format!(
                    "SubFilter '{sub_filter}' is not supported; the signature was not evaluated"
                ),
            );
            return p;
        }
        p.pass(CheckId::SubFilter, format!("SubFilter {sub_filter}"));
        if sub_filter == "adbe.x509.rsa_sha1" {
            // ISO 32000-1 §12.8.3.2: /Contents is a DER OCTET STRING holding the PKCS#1
            // signature over the SHA-1 of the ranges; the certificates sit in /Cert.
            p.digest_alg = Some(DigestAlgorithm::Sha1);
            return p;
        }
        match cms::parse_signed_data(&dict.contents) {
            Ok(sd) => {
                p.pass(
                    CheckId::CmsStructure,
                    "CMS SignedData with one SignerInfo".into(),
                );
                p.digest_alg = match (dict.kind, sub_filter) {
                    (SignatureKind::DocumentTimestamp, _) => {
                        cms::parse_tst_info(sd.econtent.as_deref().unwrap_or(&[]))
                            .ok()
                            .and_then(|t| DigestAlgorithm::from_oid(&t.imprint_algorithm.oid))
                    }
                    (_, "adbe.pkcs7.sha1") => Some(DigestAlgorithm::Sha1),
                    _ => DigestAlgorithm::from_oid(&sd.signer.digest_algorithm.oid),
                };
                p.cms = Some(sd);
            }
            Err(e) => p.fail(
                CheckId::CmsStructure,
                Indication::Failed,
                SubIndication::FormatFailure,
                e.to_string(),
            ),
        }
        p
    }

    pub(super) fn push(&mut self, id: CheckId, outcome: Outcome, detail: String) {
        self.checks.push(Check {
            id,
            outcome,
            detail,
            detail_vi: crate::report::check_vi(id, outcome).to_owned(),
        });
    }

    /// Says the last check's detail for a clerk, in Vietnamese, with its facts.
    pub(super) fn vi(&mut self, text: String) {
        if let Some(c) = self.checks.last_mut() {
            c.detail_vi = text;
        }
    }

    pub(super) fn pass(&mut self, id: CheckId, detail: String) {
        self.push(id, Outcome::Passed, detail);
    }

    pub(super) fn fail(
        &mut self,
        id: CheckId,
        indication: Indication,
        sub: SubIndication,
        detail: String,
    ) {
        self.push(id, Outcome::Failed, detail);
        // The first FAILED wins over any INDETERMINATE; among equals, the first found.
        match self.verdict {
            None => self.verdict = Some((indication, sub)),
            Some((Indication::Indeterminate, _)) if indication == Indication::Failed => {
                self.verdict = Some((indication, sub));
            }
            _ => {}
        }
    }
}

/// Where the signed bytes end, relative to the file and its revisions. Trailing whitespace
/// or NUL padding after the last `%%EOF` does not count as content.
pub(super) fn coverage(end: usize, bytes: &[u8], pdf: &PdfFile) -> Coverage {
    if is_blank(&bytes[end.min(bytes.len())..]) {
        return Coverage::EntireFile;
    }
    // The end of a revision is its %%EOF plus an optional end-of-line: accept either.
    pdf.revisions
        .iter()
        .find(|r| {
            let eof_end = r.end
                - bytes[..r.end]
                    .iter()
                    .rev()
                    .take_while(|b| matches!(b, b'\r' | b'\n'))
                    .count();
            (eof_end..=r.end).contains(&end)
        })
        .map_or(Coverage::Partial, |r| Coverage::EntireRevision(r.number))
}

/// The length of what follows the last complete revision, when it is more than whitespace.
pub(super) fn incomplete_tail(bytes: &[u8], pdf: &PdfFile) -> Option<usize> {
    let last_end = pdf.revisions.last().map_or(0, |r| r.end);
    let tail = &bytes[last_end.min(bytes.len())..];
    (!is_blank(tail)).then_some(tail.len())
}

pub(super) fn is_blank(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .all(|b| matches!(b, b'\r' | b'\n' | b' ' | b'\t' | b'\0'))
}
