//! Why a file cannot be evaluated, or a signed version not extracted.

use crate::pdf::PdfError;

/// Why a file could not be evaluated.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The file cannot be read as a PDF.
    #[error(transparent)]
    Pdf(#[from] PdfError),
    /// OpenSSL failed to hash (it does not, short of running out of memory).
    #[error("hashing failed in OpenSSL: {reason}")]
    Crypto {
        /// OpenSSL's first reason.
        reason: String,
    },
}

impl From<openssl::error::ErrorStack> for VerifyError {
    fn from(e: openssl::error::ErrorStack) -> Self {
        VerifyError::Crypto {
            reason: crate::cms::first_openssl_reason(&e),
        }
    }
}

/// Why the signed version of a signature cannot be extracted.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// The file cannot be read as a PDF.
    #[error(transparent)]
    Pdf(#[from] PdfError),
    /// The file has fewer signatures.
    #[error("there is no signature {number}: the file has {count}")]
    NoSuchSignature {
        /// The number asked for.
        number: usize,
        /// How many signatures the file has.
        count: usize,
    },
    /// The signature's `/ByteRange` is unusable.
    #[error("signature {number} does not say which bytes it covers")]
    ByteRange {
        /// The signature's number.
        number: usize,
        /// What is wrong with its `/ByteRange`.
        #[source]
        source: crate::pdf::ByteRangeError,
    },
}
