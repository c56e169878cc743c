//! Every signature's digest and the file's SHA-256 in about one pass.

use openssl::hash::Hasher;

use super::error::VerifyError;
use super::prepare::Prepared;
use crate::cms::DigestAlgorithm;

/// Hashes every signature's ranges and the whole file in about one pass. The ranges of the
/// signatures of one file share a prefix — each later revision starts with all of the
/// earlier ones — and so does the whole file: with the requests sorted by where their first
/// range ends, one running hasher per algorithm over `[0, pos)` is advanced to each first
/// range's end and cloned, and the clone takes the rest. The file's SHA-256 is the last
/// SHA-256 request, a "first range" covering all of it. Returns the file's SHA-256.
pub(super) fn hash_ranges_and_file(
    bytes: &[u8],
    prepared: &mut [Prepared<'_>],
) -> Result<[u8; 32], VerifyError> {
    /// One digest to compute: `alg` over `[0, first_len)` then `second`; `index` is the
    /// signature it is for, `None` for the whole file.
    struct Request {
        alg: DigestAlgorithm,
        first_len: usize,
        second: std::ops::Range<usize>,
        index: Option<usize>,
    }
    let mut requests: Vec<Request> = prepared
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            let (alg, r) = (p.digest_alg?, p.range?);
            Some(Request {
                alg,
                first_len: r.first_len,
                second: r.second_start..r.end(),
                index: Some(i),
            })
        })
        .collect();
    requests.push(Request {
        alg: DigestAlgorithm::Sha256,
        first_len: bytes.len(),
        second: bytes.len()..bytes.len(),
        index: None,
    });
    requests.sort_by_key(|r| (r.alg as u8, r.first_len, r.index.is_none()));
    let mut file = [0u8; 32];
    let mut running: Option<(DigestAlgorithm, Hasher, usize)> = None;
    for r in requests {
        let (_, hasher, pos) = match running.take() {
            Some((a, h, pos)) if a == r.alg && pos <= r.first_len => running.insert((a, h, pos)),
            _ => running.insert((r.alg, r.alg.hasher()?, 0)),
        };
        hasher.update(&bytes[*pos..r.first_len])?;
        *pos = r.first_len;
        let mut branch = hasher.clone();
        branch.update(&bytes[r.second])?;
        let digest = r.alg.finish(&mut branch)?;
        match r.index {
            Some(i) => prepared[i].digest = Some(digest),
            None => file.copy_from_slice(&digest),
        }
    }
    Ok(file)
}
