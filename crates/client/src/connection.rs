//! One TCP connection to one broker: framing, correlation ids, and the ApiVersions
//! handshake that fixes, per API, the highest version both sides speak.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use gregor_protocol::kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader, SaslAuthenticateRequest,
    SaslHandshakeRequest,
};
use gregor_protocol::kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes, VersionRange};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::{ClientError, Result};
use crate::security::{ClientSecurity, SaslExchange, SaslLogin};

/// A plaintext or TLS byte stream.
trait Stream: AsyncRead + AsyncWrite + Send + Unpin + std::fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + std::fmt::Debug> Stream for T {}

/// Largest response frame accepted (Kafka's default `fetch.max.bytes` is 50 MiB).
const MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;
const UNSUPPORTED_VERSION: i16 = 35;

/// Versions the broker advertised for one API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiRange {
    pub api_key: i16,
    pub min: i16,
    pub max: i16,
}

/// A connection whose API versions are known.
#[derive(Debug)]
pub struct Connection {
    addr: String,
    stream: Box<dyn Stream>,
    next_correlation_id: i32,
    client_id: StrBytes,
    timeout: Duration,
    versions: BTreeMap<i16, ApiRange>,
}

impl Connection {
    /// Connects to `addr` (HOST:PORT) over PLAINTEXT and negotiates API versions.
    pub async fn connect(addr: &str, client_id: &str, timeout: Duration) -> Result<Self> {
        Self::connect_with(addr, client_id, timeout, &ClientSecurity::default()).await
    }

    /// Connects to `addr` (HOST:PORT), with TLS and SASL as `security` says, and
    /// negotiates API versions.
    pub async fn connect_with(
        addr: &str,
        client_id: &str,
        timeout: Duration,
        security: &ClientSecurity,
    ) -> Result<Self> {
        let connect_err = |reason: String| ClientError::Connect { addr: addr.to_owned(), reason };
        let tcp = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| connect_err(format!("no answer within {} ms", timeout.as_millis())))?
            .map_err(|e| connect_err(io_reason(&e)))?;
        let _ = tcp.set_nodelay(true);
        let stream: Box<dyn Stream> = match &security.tls {
            None => Box::new(tcp),
            Some(config) => {
                let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h).trim_start_matches('[').trim_end_matches(']');
                let name = rustls::pki_types::ServerName::try_from(host.to_owned())
                    .map_err(|e| connect_err(format!("'{host}' is not a TLS server name: {e}")))?;
                let connector = tokio_rustls::TlsConnector::from(config.clone());
                let tls = tokio::time::timeout(timeout, connector.connect(name, tcp))
                    .await
                    .map_err(|_| connect_err("no TLS handshake within the timeout".into()))?
                    .map_err(|e| connect_err(format!("TLS handshake failed: {e}")))?;
                Box::new(tls)
            }
        };
        let mut conn = Self {
            addr: addr.to_owned(),
            stream,
            next_correlation_id: 1,
            client_id: StrBytes::from_string(client_id.to_owned()),
            timeout,
            versions: BTreeMap::new(),
        };
        conn.negotiate().await?;
        if let Some(login) = &security.sasl {
            conn.authenticate(login).await?;
        }
        Ok(conn)
    }

    /// SaslHandshake v1, then SaslAuthenticate rounds until the exchange completes.
    async fn authenticate(&mut self, login: &SaslLogin) -> Result<()> {
        let mechanism = StrBytes::from_static_str(login.mechanism.name());
        let handshake = self.send(&SaslHandshakeRequest::default().with_mechanism(mechanism), Some(1)).await?;
        if handshake.error_code != 0 {
            let enabled: Vec<String> = handshake.mechanisms.iter().map(ToString::to_string).collect();
            return Err(ClientError::Broker {
                context: format!(
                    "{} refused SASL mechanism {} (enabled: {})",
                    self.addr,
                    login.mechanism.name(),
                    enabled.join(", ")
                ),
                code: handshake.error_code,
                message: None,
            });
        }
        let mut exchange = SaslExchange::start(login);
        let mut answer: Option<Vec<u8>> = None;
        while let Some(token) = exchange.next(answer.as_deref())? {
            let request = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token));
            let response = self.send(&request, Some(2)).await?;
            if response.error_code != 0 {
                return Err(ClientError::Broker {
                    context: format!("{} refused the SASL login of '{}'", self.addr, login.username),
                    code: response.error_code,
                    message: response.error_message.map(|m| m.to_string()),
                });
            }
            answer = Some(response.auth_bytes.to_vec());
        }
        Ok(())
    }

    /// The HOST:PORT this connection was opened to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Every API the broker advertised, by key.
    pub fn api_versions(&self) -> impl Iterator<Item = &ApiRange> {
        self.versions.values()
    }

    /// The version to use for `R`: the highest both sides speak, at most `cap`.
    pub fn version_for<R: Request>(&self, cap: Option<i16>) -> Result<i16> {
        let ours = R::VERSIONS;
        let ours = VersionRange { min: ours.min, max: cap.map_or(ours.max, |c| c.min(ours.max)) };
        let api = api_name(R::KEY);
        let unsupported = || ClientError::Unsupported { addr: self.addr.clone(), api: api.clone() };
        let theirs = self.versions.get(&R::KEY).ok_or_else(unsupported)?;
        let common = ours.intersect(&VersionRange { min: theirs.min, max: theirs.max });
        if common.is_empty() {
            return Err(unsupported());
        }
        Ok(common.max)
    }

    /// Sends `request` at the negotiated version (at most `cap`) and decodes the answer.
    pub async fn send<R: Request>(&mut self, request: &R, cap: Option<i16>) -> Result<R::Response> {
        let version = self.version_for::<R>(cap)?;
        self.send_version(request, version).await
    }

    /// Sends `request` at exactly `version` and decodes the answer.
    pub async fn send_version<R: Request>(&mut self, request: &R, version: i16) -> Result<R::Response> {
        let correlation_id = self.write_request(R::KEY, version, request).await?;
        let mut body = self.read_response(R::KEY, version, correlation_id).await?;
        R::Response::decode(&mut body, version)
            .map_err(|e| ClientError::codec(format!("decode the {} response", api_name(R::KEY)), e))
    }

    /// Sends `request` and does not wait: for Produce with acks=0, which gets no answer.
    pub async fn send_oneway<R: Request>(&mut self, request: &R, cap: Option<i16>) -> Result<()> {
        let version = self.version_for::<R>(cap)?;
        self.write_request(R::KEY, version, request).await.map(|_| ())
    }

    async fn negotiate(&mut self) -> Result<()> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("gregor-client"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let mut version = 3;
        let mut body = self.api_versions_round(&request, version).await?;
        if body.len() >= 2 && i16::from_be_bytes([body[0], body[1]]) == UNSUPPORTED_VERSION {
            // KIP-511: an older broker answers in v0 with its own table; retry at its best.
            let table = decode_api_versions(&mut body, 0)?;
            version =
                table.api_keys.iter().find(|k| k.api_key == ApiKey::ApiVersions as i16).map_or(0, |k| k.max_version);
            version = version.min(3);
            body = self.api_versions_round(&request, version).await?;
        }
        let response = decode_api_versions(&mut body, version)?;
        if response.error_code != 0 {
            return Err(ClientError::Broker {
                context: format!("{} refused ApiVersions", self.addr),
                code: response.error_code,
                message: None,
            });
        }
        self.versions = response
            .api_keys
            .iter()
            .map(|k| (k.api_key, ApiRange { api_key: k.api_key, min: k.min_version, max: k.max_version }))
            .collect();
        Ok(())
    }

    async fn api_versions_round(&mut self, request: &ApiVersionsRequest, version: i16) -> Result<Bytes> {
        let id = self.write_request(ApiKey::ApiVersions as i16, version, request).await?;
        self.read_response(ApiKey::ApiVersions as i16, version, id).await
    }

    async fn write_request<M: Encodable>(&mut self, key: i16, version: i16, body: &M) -> Result<i32> {
        let api = ApiKey::try_from(key).map_err(|()| ClientError::Other(format!("unknown API key {key}")))?;
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(key)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(self.client_id.clone()));
        let what = || format!("encode the {} request", api_name(key));
        let mut buf = BytesMut::with_capacity(256);
        buf.put_i32(0);
        header.encode(&mut buf, api.request_header_version(version)).map_err(|e| ClientError::codec(what(), e))?;
        body.encode(&mut buf, version).map_err(|e| ClientError::codec(what(), e))?;
        let len = i32::try_from(buf.len() - 4).map_err(|_| ClientError::codec(what(), "request too large"))?;
        buf[..4].copy_from_slice(&len.to_be_bytes());
        let write = self.stream.write_all(&buf);
        match tokio::time::timeout(self.timeout, write).await {
            Ok(Ok(())) => Ok(correlation_id),
            Ok(Err(e)) => Err(self.io_error(&e)),
            Err(_) => Err(self.timeout_error(key)),
        }
    }

    async fn read_response(&mut self, key: i16, version: i16, correlation_id: i32) -> Result<Bytes> {
        let frame = match tokio::time::timeout(self.timeout, self.read_frame()).await {
            Ok(frame) => frame?,
            Err(_) => return Err(self.timeout_error(key)),
        };
        let mut body = frame;
        let header_version = ApiKey::try_from(key).map_or(0, |k| k.response_header_version(version));
        let header = ResponseHeader::decode(&mut body, header_version)
            .map_err(|e| ClientError::codec("decode a response header", e))?;
        if header.correlation_id != correlation_id {
            return Err(ClientError::Io {
                addr: self.addr.clone(),
                reason: format!("answer {} arrived for request {correlation_id}", header.correlation_id),
            });
        }
        Ok(body)
    }

    async fn read_frame(&mut self) -> Result<Bytes> {
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len).await.map_err(|e| self.io_error(&e))?;
        let len = i32::from_be_bytes(len);
        let len = usize::try_from(len).ok().filter(|l| *l <= MAX_RESPONSE_BYTES).ok_or_else(|| ClientError::Io {
            addr: self.addr.clone(),
            reason: format!("the broker sent a frame of {len} bytes"),
        })?;
        let mut buf = vec![0u8; len];
        self.stream.read_exact(&mut buf).await.map_err(|e| self.io_error(&e))?;
        Ok(Bytes::from(buf))
    }

    fn io_error(&self, e: &std::io::Error) -> ClientError {
        ClientError::Io { addr: self.addr.clone(), reason: io_reason(e) }
    }

    fn timeout_error(&self, key: i16) -> ClientError {
        ClientError::Timeout { addr: self.addr.clone(), api: api_name(key), timeout_ms: self.timeout.as_millis() }
    }
}

fn decode_api_versions(body: &mut Bytes, version: i16) -> Result<ApiVersionsResponse> {
    ApiVersionsResponse::decode(body, version).map_err(|e| ClientError::codec("decode the ApiVersions response", e))
}

/// Kafka's name of an API key: `Produce`, `ListOffsets`, ...
pub fn api_name(key: i16) -> String {
    ApiKey::try_from(key).map_or_else(|()| format!("API {key}"), |k| format!("{k:?}"))
}

/// An I/O error as a short lowercase phrase: "connection refused".
fn io_reason(e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => "connection refused".into(),
        K::ConnectionReset => "connection reset by the broker".into(),
        K::UnexpectedEof => "the broker closed the connection".into(),
        K::BrokenPipe => "the broker closed the connection".into(),
        K::TimedOut => "timed out".into(),
        _ => {
            let text = e.to_string();
            // "Connection refused (os error 111)" -> "connection refused"
            let text = text.split(" (os error").next().unwrap_or(&text).to_owned();
            let mut chars = text.chars();
            chars.next().map_or(text.clone(), |c| c.to_lowercase().chain(chars).collect())
        }
    }
}
