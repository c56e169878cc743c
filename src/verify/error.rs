//! Why a file cannot be evaluated, or a signed version not extracted.

use crate::pdf::PdfError;

/// Why a file could not be evaluated.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Pdf(#[from] PdfError),
    #[error("hashing failed in OpenSSL")]
    Crypto(#[from] openssl::error::ErrorStack),
}

/// Why the signed version of a signature cannot be extracted.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error(transparent)]
    Pdf(#[from] PdfError),
    #[error("there is no signature {number}: the file has {count}")]
    NoSuchSignature { number: usize, count: usize },
    #[error("signature {number} does not say which bytes it covers")]
    ByteRange {
        number: usize,
        #[source]
        source: crate::pdf::ByteRangeError,
    },
}
