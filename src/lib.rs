//! kyso ("ký số", digital signing) tells whether the digital signatures in a PDF are genuine
//! and whether the document is still what was signed, for the Party and State bodies of
//! Vietnam (see `DESIGN.md` of the project for the whole picture).
//!
//! # Layout
//!
//! The verification core is pure and synchronous: bytes and a [`Context`] in, a [`Report`]
//! out, with the validation time an input. Lower modules never import higher ones.
//!
//! | module | owns |
//! |---|---|
//! | [`pdf`] | revisions, signature dictionaries and fields, ByteRange structure (on lopdf); the text of signature appearances |
//! | `cms` (internal) | CMS SignedData: parsing, digests, signature values, ESS, TSTInfo (OpenSSL crypto) |
//! | [`trust`] | trust anchors, intermediates, path building and RFC 5280 validation at a time; pinned trust profiles (`bcy`, `neac`) and the trust store |
//! | [`timestamp`] | RFC 3161 tokens: imprint, token signature, TSA chain; the proven time |
//! | [`revocation`] | CRLs and OCSP responses from every source, fetched when allowed ([`revocation::fetch`]); a certificate's status at a time |
//! | [`integrity`] | what changed after each signature, classified by rule, under DocMDP/FieldMDP |
//! | [`render`] | pages drawn (hayro) and the signed page compared with the page now, pixel by pixel |
//! | [`report`] | indications, checks, verdicts, and their JSON and text renderings |
//! | [`mod@verify`] | the core function [`verify()`], its steps, its [`Context`] and per-call [`Inputs`] |
//! | [`policy`] | signer roles (personal / organisation) and the `decree-30` rules for Vietnamese official documents |
//! | [`names`] | the one table of names of each enum (JSON, configuration, command line) |
//! | [`service`] | `kyso serve`: the gRPC services, their refusals, configuration and protocol conversions |
//! | [`audit`] | the audit log: records, hash chain, the Merkle tree and its signed checkpoints and proofs, group commit, the SQLite and PostgreSQL stores |
//!
//! The command line (`kyso verify`, `serve`, `audit`, `client`, `trust`) is the binary's
//! (`src/cli/`), a thin layer over the library.
//!
//! Each module owns its error type. A signature that fails verification is not an error: it
//! is a report that says FAILED. An `Err` means kyso could not evaluate the input at all.
//!
//! # Use
//!
//! The crate root holds what an embedder needs to verify documents; the modules hold the
//! rest (public for the binary, the service and the tests).
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::path::PathBuf;
//! let trust = kyso::TrustStore::from_paths(
//!     &[PathBuf::from("root-ca.pem")],
//!     &[PathBuf::from("sub-ca.pem")],
//! )?;
//! let ctx = kyso::Context::new(trust);
//! let pdf = std::fs::read("494-BC-TU.pdf")?;
//! let report = kyso::verify(&pdf, &ctx, kyso::Inputs::at(time::OffsetDateTime::now_utc()))?;
//! println!("{}", kyso::render_text(&report, "494-BC-TU.pdf", kyso::Lang::Vi));
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub mod audit;
pub(crate) mod cms;
pub mod integrity;
pub mod names;
pub mod pdf;
pub mod policy;
pub mod render;
pub mod report;
pub mod revocation;
pub mod service;
pub mod timestamp;
pub mod trust;
pub mod verify;

pub use policy::{Expect, PolicyChoice};
pub use report::{render_text, Indication, Lang, Report, SignatureReport, SubIndication, Verdict};
pub use trust::TrustStore;
pub use verify::{
    signed_version, verify, Context, ContextError, ExtractError, Inputs, RevocationMode, Settings,
    VerifyError,
};

/// `error` and each of its causes, once each, as one line: "trust profile bcy: cannot read
/// …: No such file or directory". kyso's errors name what failed and leave the cause to
/// their source, so this is how they are shown to a person.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}
