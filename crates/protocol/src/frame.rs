//! Kafka framing: every request and response is an `i32` big-endian size followed by
//! that many bytes. A request frame starts with its header; the header's version
//! depends on the api key and version, so it is decoded here once for every handler.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::ProtocolError;

/// Size of the length prefix in front of every frame.
pub const LENGTH_PREFIX: usize = 4;

/// Reads the length prefix at the start of `buf`. `Ok(None)` while fewer than four bytes
/// are buffered; an error for a negative length or one over `max_frame_bytes`, after which
/// the connection can only be closed (the stream can no longer be re-synchronised).
pub fn frame_length(buf: &[u8], max_frame_bytes: usize) -> Result<Option<usize>, ProtocolError> {
    let Some(prefix) = buf.get(..LENGTH_PREFIX) else {
        return Ok(None);
    };
    let len = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
    let len = usize::try_from(len).map_err(|_| ProtocolError::NegativeFrameLength(len))?;
    if len > max_frame_bytes {
        return Err(ProtocolError::FrameTooLarge { size: len, max: max_frame_bytes });
    }
    Ok(Some(len))
}

/// The fixed start of every request header (v0 and later): enough to answer or log a
/// request whose remaining header or body cannot be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestPrefix {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
}

impl RequestPrefix {
    pub fn peek(frame: &[u8]) -> Option<Self> {
        let b = frame.get(..8)?;
        Some(Self {
            api_key: i16::from_be_bytes([b[0], b[1]]),
            api_version: i16::from_be_bytes([b[2], b[3]]),
            correlation_id: i32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        })
    }
}

/// Decodes the request header at the start of `frame`, leaving `frame` at the body.
pub fn decode_request_header(frame: &mut Bytes) -> Result<(ApiKey, RequestHeader), ProtocolError> {
    let prefix = RequestPrefix::peek(frame).ok_or(ProtocolError::Malformed {
        what: "request header",
        source: anyhow::anyhow!("frame of {} bytes is shorter than a header", frame.len()),
    })?;
    let api_key = ApiKey::try_from(prefix.api_key).map_err(|()| ProtocolError::UnknownApiKey(prefix.api_key))?;
    let header_version = api_key.request_header_version(prefix.api_version);
    let header = RequestHeader::decode(frame, header_version)
        .map_err(|source| ProtocolError::Malformed { what: "request header", source })?;
    Ok((api_key, header))
}

/// Decodes a request body of the given version.
pub fn decode_body<T: Decodable>(body: &mut Bytes, version: i16) -> Result<T, ProtocolError> {
    T::decode(body, version).map_err(|source| ProtocolError::Malformed { what: "request body", source })
}

/// Encodes a whole response frame: length prefix, response header, body.
pub fn encode_response<T: Encodable>(
    api_key: ApiKey,
    api_version: i16,
    correlation_id: i32,
    body: &T,
) -> Result<BytesMut, ProtocolError> {
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let header_version = api_key.response_header_version(api_version);
    let malformed = |source| ProtocolError::Malformed { what: "response", source };
    let size =
        header.compute_size(header_version).map_err(malformed)? + body.compute_size(api_version).map_err(malformed)?;
    let mut out = BytesMut::with_capacity(LENGTH_PREFIX + size);
    out.put_i32(i32::try_from(size).map_err(|_| malformed(anyhow::anyhow!("response of {size} bytes")))?);
    header.encode(&mut out, header_version).map_err(malformed)?;
    body.encode(&mut out, api_version).map_err(malformed)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
    use kafka_protocol::protocol::StrBytes;

    fn request_frame(version: i16) -> Bytes {
        let header = RequestHeader::default()
            .with_request_api_key(ApiKey::ApiVersions as i16)
            .with_request_api_version(version)
            .with_correlation_id(7)
            .with_client_id(Some(StrBytes::from_static_str("test")));
        let body = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("t"))
            .with_client_software_version(StrBytes::from_static_str("1"));
        let mut buf = BytesMut::new();
        header.encode(&mut buf, ApiKey::ApiVersions.request_header_version(version)).unwrap();
        body.encode(&mut buf, version).unwrap();
        buf.freeze()
    }

    #[test]
    fn given_flexible_request_should_decode_header_and_body() {
        let mut frame = request_frame(3);
        let (key, header) = decode_request_header(&mut frame).unwrap();
        assert_eq!(key, ApiKey::ApiVersions);
        assert_eq!(header.correlation_id, 7);
        let body: ApiVersionsRequest = decode_body(&mut frame, 3).unwrap();
        assert_eq!(body.client_software_name.as_str(), "t");
    }

    #[test]
    fn given_length_prefix_should_enforce_limit() {
        assert_eq!(frame_length(&[0, 0], 10).unwrap(), None);
        assert_eq!(frame_length(&[0, 0, 0, 9], 10).unwrap(), Some(9));
        assert!(frame_length(&[0, 0, 0, 11], 10).is_err());
        assert!(frame_length(&[0xff, 0, 0, 0], 10).is_err());
    }

    #[test]
    fn given_response_should_prefix_its_length() {
        let out = encode_response(ApiKey::ApiVersions, 3, 9, &ApiVersionsResponse::default()).unwrap();
        let len = i32::from_be_bytes([out[0], out[1], out[2], out[3]]) as usize;
        assert_eq!(len + 4, out.len());
        assert_eq!(&out[4..8], &9i32.to_be_bytes());
    }

    #[test]
    fn given_truncated_frames_should_error_not_panic() {
        let full = request_frame(3);
        for cut in 0..full.len() {
            let mut frame = full.slice(..cut);
            if let Ok((_, h)) = decode_request_header(&mut frame) {
                let _ = decode_body::<ApiVersionsRequest>(&mut frame, h.request_api_version);
            }
        }
    }

    /// Declared counts and lengths are untrusted: a 2^31 array count or string length in a
    /// tiny body must fail to decode, not allocate (see vendor/kafka-protocol/PATCHES.md).
    #[test]
    fn given_huge_declared_counts_should_fail_without_allocating() {
        use kafka_protocol::messages::{CreateTopicsRequest, MetadataRequest, ProduceRequest};
        let huge_count = Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff, 0, 1]);
        assert!(decode_body::<MetadataRequest>(&mut huge_count.clone(), 1).is_err());
        assert!(decode_body::<CreateTopicsRequest>(&mut huge_count.clone(), 2).is_err());
        let compact_huge = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0x0f, 0]);
        assert!(decode_body::<MetadataRequest>(&mut compact_huge.clone(), 12).is_err());
        // transactional_id with a 4-billion-byte compact length
        assert!(decode_body::<ProduceRequest>(&mut compact_huge.clone(), 9).is_err());
    }
}
