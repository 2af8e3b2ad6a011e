//! RFC 5802's four messages, parsed from untrusted bytes and formatted. Parsing borrows
//! from the input and allocates at most in proportion to it; every malformed input is an
//! error naming the rule it breaks.

use base64::Engine;

use super::{ScramMechanism, BASE64};
use crate::error::{Result, SecurityError};

/// `client-first-message`, borrowed from the client's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ClientFirst<'a> {
    /// `n,,` or `n,a=<authzid>,` exactly as sent: the final message's `c=` must repeat it.
    pub(super) gs2_header: &'a str,
    /// The unescaped authzid, if the header names one.
    pub(super) authzid: Option<String>,
    /// The unescaped user name.
    pub(super) user: String,
    pub(super) nonce: &'a str,
    /// Everything after the GS2 header: the first part of the AuthMessage.
    pub(super) bare: &'a str,
}

/// `client-final-message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ClientFinal<'a> {
    pub(super) channel_binding: Vec<u8>,
    pub(super) nonce: &'a str,
    pub(super) proof: Vec<u8>,
    /// The message up to `,p=`: the last part of the AuthMessage.
    pub(super) without_proof: &'a str,
}

/// `server-first-message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ServerFirst<'a> {
    pub(super) nonce: &'a str,
    pub(super) salt: Vec<u8>,
    pub(super) iterations: u32,
}

/// `server-final-message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ServerFinal<'a> {
    Verifier(Vec<u8>),
    Error(&'a str),
}

/// Parsing rules for one mechanism, so errors name it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Grammar(pub(super) ScramMechanism);

impl Grammar {
    fn malformed(self, reason: &'static str) -> SecurityError {
        SecurityError::ScramMalformed { mechanism: self.0, reason }
    }

    fn text(self, message: &[u8]) -> Result<&str> {
        std::str::from_utf8(message).map_err(|_| self.malformed("not valid UTF-8"))
    }

    /// The value of attribute `name` (`name=value`).
    fn attribute<'a>(self, part: Option<&'a str>, name: &str, reason: &'static str) -> Result<&'a str> {
        part.and_then(|p| p.strip_prefix(name)).and_then(|p| p.strip_prefix('=')).ok_or(self.malformed(reason))
    }

    fn base64(self, value: &str, reason: &'static str) -> Result<Vec<u8>> {
        BASE64.decode(value).map_err(|_| self.malformed(reason))
    }

    /// A nonce: one or more printable ASCII characters other than `,`.
    fn nonce(self, value: &str) -> Result<()> {
        let printable = |b: &u8| (0x21..=0x7e).contains(b) && *b != b',';
        if value.is_empty() || !value.as_bytes().iter().all(printable) {
            return Err(self.malformed("the nonce is empty or not printable ASCII"));
        }
        Ok(())
    }

    pub(super) fn client_first(self, message: &[u8]) -> Result<ClientFirst<'_>> {
        let text = self.text(message)?;
        let (gs2_header, authzid, bare) = self.gs2_header(text)?;
        let mut parts = bare.split(',');
        let first = parts.next();
        if first.is_some_and(|p| p.starts_with("m=")) {
            return Err(self.malformed("mandatory extensions (m=) are not supported"));
        }
        let user = unescape_name(self.attribute(first, "n", "the user name (n=) is missing")?)
            .ok_or(self.malformed("the user name is empty or badly escaped"))?;
        let nonce = self.attribute(parts.next(), "r", "the nonce (r=) is missing")?;
        self.nonce(nonce)?;
        self.extensions(parts)?;
        Ok(ClientFirst { gs2_header, authzid, user, nonce, bare })
    }

    /// Splits `gs2-header client-first-message-bare`.
    fn gs2_header(self, text: &str) -> Result<(&str, Option<String>, &str)> {
        let mut fields = text.splitn(3, ',');
        match fields.next() {
            Some("n") => {}
            Some(flag) if flag == "y" || flag.starts_with("p=") => {
                return Err(SecurityError::ChannelBindingNotSupported);
            }
            _ => return Err(self.malformed("the GS2 header does not start with n, y or p=")),
        }
        let authzid = match fields.next() {
            Some("") => None,
            Some(field) => {
                let name = field.strip_prefix("a=").ok_or(self.malformed("the GS2 authzid is not a=<name>"))?;
                Some(unescape_name(name).ok_or(self.malformed("the authzid is empty or badly escaped"))?)
            }
            None => return Err(self.malformed("the GS2 header is incomplete")),
        };
        let bare = fields.next().ok_or(self.malformed("the GS2 header is incomplete"))?;
        Ok((&text[..text.len() - bare.len()], authzid, bare))
    }

    /// Extensions after the nonce. Kafka's only one is `tokenauth=true` (delegation tokens,
    /// which Gregor does not issue); others are ignored, as Kafka ignores them.
    fn extensions<'a>(self, parts: impl Iterator<Item = &'a str>) -> Result<()> {
        for part in parts {
            let (key, value) = part.split_once('=').ok_or(self.malformed("an extension is not key=value"))?;
            if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphabetic()) {
                return Err(self.malformed("an extension name is not alphabetic"));
            }
            if key == "tokenauth" && value.eq_ignore_ascii_case("true") {
                return Err(SecurityError::DelegationTokenNotSupported);
            }
        }
        Ok(())
    }

    pub(super) fn client_final(self, message: &[u8]) -> Result<ClientFinal<'_>> {
        let text = self.text(message)?;
        let (without_proof, proof) = text.rsplit_once(",p=").ok_or(self.malformed("the proof (p=) is missing"))?;
        let proof = self.base64(proof, "the proof is not base64")?;
        let mut parts = without_proof.split(',');
        let channel_binding = self.attribute(parts.next(), "c", "the channel binding (c=) is missing")?;
        let channel_binding = self.base64(channel_binding, "the channel binding is not base64")?;
        let nonce = self.attribute(parts.next(), "r", "the nonce (r=) is missing")?;
        self.nonce(nonce)?;
        if parts.any(|p| !p.contains('=')) {
            return Err(self.malformed("an extension is not key=value"));
        }
        Ok(ClientFinal { channel_binding, nonce, proof, without_proof })
    }

    pub(super) fn server_first(self, message: &[u8]) -> Result<ServerFirst<'_>> {
        let text = self.text(message)?;
        let mut parts = text.split(',');
        if text.starts_with("m=") {
            return Err(self.malformed("mandatory extensions (m=) are not supported"));
        }
        let nonce = self.attribute(parts.next(), "r", "the nonce (r=) is missing")?;
        self.nonce(nonce)?;
        let salt =
            self.base64(self.attribute(parts.next(), "s", "the salt (s=) is missing")?, "the salt is not base64")?;
        let iterations = self.attribute(parts.next(), "i", "the iteration count (i=) is missing")?;
        let iterations = iterations.parse().map_err(|_| self.malformed("the iteration count is not a number"))?;
        if salt.is_empty() {
            return Err(self.malformed("the salt is empty"));
        }
        Ok(ServerFirst { nonce, salt, iterations })
    }

    pub(super) fn server_final(self, message: &[u8]) -> Result<ServerFinal<'_>> {
        let text = self.text(message)?;
        let first = text.split(',').next();
        if let Ok(error) = self.attribute(first, "e", "") {
            return Ok(ServerFinal::Error(error));
        }
        let verifier = self.attribute(first, "v", "the server signature (v=) is missing")?;
        Ok(ServerFinal::Verifier(self.base64(verifier, "the server signature is not base64")?))
    }
}

pub(super) fn format_server_first(nonce: &str, salt: &[u8], iterations: u32) -> Vec<u8> {
    format!("r={nonce},s={},i={iterations}", BASE64.encode(salt)).into_bytes()
}

pub(super) fn format_server_final(signature: &[u8]) -> Vec<u8> {
    format!("v={}", BASE64.encode(signature)).into_bytes()
}

pub(super) fn format_client_final_without_proof(gs2_header: &str, nonce: &str) -> String {
    format!("c={},r={nonce}", BASE64.encode(gs2_header))
}

pub(super) fn format_proof(proof: &[u8]) -> String {
    format!(",p={}", BASE64.encode(proof))
}

/// RFC 5802 `saslname`: `,` and `=` travel as `=2C` and `=3D`.
pub(super) fn escape_name(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

/// The name a `saslname` stands for; `None` if empty, holding NUL, or with an `=` that
/// starts neither `=2C` nor `=3D`.
pub(super) fn unescape_name(escaped: &str) -> Option<String> {
    if escaped.is_empty() || escaped.contains('\0') {
        return None;
    }
    let mut name = String::with_capacity(escaped.len());
    let mut rest = escaped;
    while let Some(at) = rest.find('=') {
        name.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if after.starts_with("2C") {
            name.push(',');
        } else if after.starts_with("3D") {
            name.push('=');
        } else {
            return None;
        }
        rest = &after[2..];
    }
    name.push_str(rest);
    Some(name)
}
