//! A raw Kafka protocol client for tests: hand-built requests over a plain TCP stream,
//! to check the broker's answers byte for byte where client libraries would hide them.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use gregor_protocol::kafka_protocol::messages::{ApiKey, RequestHeader};
use gregor_protocol::kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct Raw {
    pub stream: TcpStream,
}

impl Raw {
    pub async fn connect(bootstrap: &str) -> Self {
        Self { stream: TcpStream::connect(bootstrap).await.expect("connect") }
    }

    pub fn frame<T: Encodable>(key: ApiKey, version: i16, correlation_id: i32, body: &T) -> BytesMut {
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("raw-test")));
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        header.encode(&mut buf, key.request_header_version(version)).unwrap();
        body.encode(&mut buf, version).unwrap();
        let len = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&len.to_be_bytes());
        buf
    }

    pub async fn send<T: Encodable>(&mut self, key: ApiKey, version: i16, correlation_id: i32, body: &T) {
        self.stream.write_all(&Self::frame(key, version, correlation_id, body)).await.expect("write");
    }

    /// Reads one response frame; returns its correlation id and the body after the header.
    pub async fn receive(&mut self, key: ApiKey, version: i16) -> (i32, Bytes) {
        let len =
            tokio::time::timeout(Duration::from_secs(10), self.stream.read_i32()).await.expect("response").unwrap();
        let mut buf = vec![0u8; len as usize];
        self.stream.read_exact(&mut buf).await.expect("body");
        let mut body = Bytes::from(buf);
        let correlation_id = body.get_i32();
        if key.response_header_version(version) >= 1 {
            assert_eq!(body.get_u8(), 0, "no tagged fields in the response header");
        }
        (correlation_id, body)
    }

    pub async fn call<Req: Encodable, Resp: Decodable>(&mut self, key: ApiKey, version: i16, body: &Req) -> Resp {
        self.send(key, version, 1, body).await;
        let (_, mut bytes) = self.receive(key, version).await;
        Resp::decode(&mut bytes, version).expect("decodable response")
    }

    /// True when the broker closed the connection (read returns EOF or an error).
    pub async fn closed_by_broker(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(tokio::time::timeout(Duration::from_secs(10), self.stream.read(&mut byte)).await, Ok(Ok(0) | Err(_)))
    }
}
