//! Protobuf request decoding: every request message of the API, and what the service reads
//! from them (metadata, checkpoints sent back).
#![no_main]
use kyso::service::{convert, proto};
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = proto::VerifyDocumentRequest::decode(data) {
        let _ = convert::metadata(r.metadata);
    }
    if let Ok(c) = proto::VerifyDocumentChunk::decode(data) {
        let _ = convert::metadata(c.metadata);
    }
    let _ = proto::ExtractSignaturesRequest::decode(data);
    let _ = proto::GetSignedRevisionRequest::decode(data);
    let _ = proto::QueryRecordsRequest::decode(data);
    let _ = proto::GetRecordRequest::decode(data);
    if let Ok(v) = proto::VerifyLogRequest::decode(data) {
        for c in &v.kept_checkpoints {
            let _ = convert::from_checkpoint(c);
        }
    }
});
