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
//! | [`cms`] | CMS SignedData: parsing, digests, signature values, ESS, TSTInfo (OpenSSL crypto) |
//! | [`trust`] | trust anchors, intermediates, path building and RFC 5280 validation at a time; pinned trust profiles (`bcy`, `neac`) and the trust store |
//! | [`timestamp`] | RFC 3161 tokens: imprint, token signature, TSA chain; the proven time |
//! | [`ocsp`] | OCSP responses: reading, responder authorisation, answers; requests |
//! | [`revocation`] | CRLs and OCSP responses from every source; a certificate's status at a time |
//! | [`online`] | fetching CRLs, OCSP answers and caIssuers (HTTP, timeouts, size limits, cache) |
//! | [`integrity`] | what changed after each signature, classified by rule, under DocMDP/FieldMDP |
//! | [`report`] | indications, checks, verdicts, and their JSON and text renderings |
//! | [`verify`] | the core function that runs the modules above over one document |
//! | [`policy`] | signer roles (personal / organisation) and the `decree-30` rules for Vietnamese official documents |
//! | [`cli`] | `kyso verify`, `kyso extract` and `kyso trust`: arguments, output, exit status (a thin layer over [`verify()`]) |
//!
//! Each module owns its error type. A signature that fails verification is not an error: it
//! is a report that says FAILED. An `Err` means kyso could not evaluate the input at all.

pub mod audit;
pub mod cms;
pub mod integrity;
pub mod names;
pub mod pdf;
pub mod policy;
pub mod report;
pub mod revocation;
pub mod service;
pub mod timestamp;
pub mod trust;
pub mod verify;

pub use report::{Report, Verdict};
pub use verify::{signed_version, verify, Context, ExtractError, Settings, VerifyError};
