//! PEM stores: certificates and private keys out of PEM text, with errors that name where
//! the text came from (`source_name`, e.g. `ssl.keystore.location file /etc/gregor/broker.pem`).
//!
//! Kafka's inline settings (`ssl.keystore.key`, `ssl.keystore.certificate.chain`,
//! `ssl.truststore.certificates`) are written in `server.properties` with `\` continuations,
//! which join the lines; Kafka's own parser accepts the resulting one-line PEM, so this one
//! does too: every `-----BEGIN X-----` / `-----END X-----` marker and every word between
//! markers is put on its own line before rustls' PEM reader (`rustls::pki_types::pem`) sees
//! the text.

use std::path::Path;

use rustls::pki_types::pem::{PemObject, SectionKind};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::{Result, SecurityError};

/// The file `key` names, read whole; its errors say `"{key} file {path}"`.
pub fn read_file(key: &str, path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .map_err(|err| SecurityError::TlsRead { source_name: file_source_name(key, path), reason: err.to_string() })
}

/// How errors name a store file: `ssl.keystore.location file /etc/gregor/broker.pem`.
pub fn file_source_name(key: &str, path: &Path) -> String {
    format!("{key} file {}", path.display())
}

/// Every certificate of `text`, in order; at least one.
pub fn certificates(text: &str, source_name: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certificates: Vec<_> = sections(text, source_name)?
        .into_iter()
        .filter(|(kind, _)| *kind == SectionKind::Certificate)
        .map(|(_, der)| CertificateDer::from(der))
        .collect();
    if certificates.is_empty() {
        return Err(pem_error(source_name, "no certificate (-----BEGIN CERTIFICATE-----) found"));
    }
    Ok(certificates)
}

/// The one private key of `text`: PKCS#8 (`PRIVATE KEY`), PKCS#1 (`RSA PRIVATE KEY`) or SEC1
/// (`EC PRIVATE KEY`), unencrypted.
pub fn private_key(text: &str, source_name: &str) -> Result<PrivateKeyDer<'static>> {
    let mut keys: Vec<PrivateKeyDer<'static>> = sections(text, source_name)?
        .into_iter()
        .filter_map(|(kind, der)| match kind {
            SectionKind::PrivateKey => Some(PrivateKeyDer::Pkcs8(der.into())),
            SectionKind::RsaPrivateKey => Some(PrivateKeyDer::Pkcs1(der.into())),
            SectionKind::EcPrivateKey => Some(PrivateKeyDer::Sec1(der.into())),
            _ => None,
        })
        .collect();
    match keys.len() {
        1 => Ok(keys.remove(0)),
        0 => Err(pem_error(source_name, "no private key (-----BEGIN PRIVATE KEY-----) found")),
        n => Err(pem_error(source_name, &format!("{n} private keys found, expected one"))),
    }
}

/// The PEM sections of `text`, after refusing encrypted keys and normalizing one-line PEM.
fn sections(text: &str, source_name: &str) -> Result<Vec<(SectionKind, Vec<u8>)>> {
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") || text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(pem_error(
            source_name,
            "the private key is encrypted; give an unencrypted PKCS#8 key \
             (`openssl pkcs8 -topk8 -nocrypt -in key.pem -out key-plain.pem`)",
        ));
    }
    let normalized = normalize(text);
    <(SectionKind, Vec<u8>)>::pem_slice_iter(normalized.as_bytes())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|err| pem_error(source_name, &describe(&err)))
}

fn describe(err: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    match err {
        Error::MissingSectionEnd { end_marker } => {
            format!("-----BEGIN {}----- without its -----END----- line", String::from_utf8_lossy(end_marker))
        }
        Error::IllegalSectionStart { line } => {
            format!("malformed line {:?}", String::from_utf8_lossy(line))
        }
        Error::Base64Decode(reason) => format!("bad base64 ({reason})"),
        other => other.to_string(),
    }
}

fn pem_error(source_name: &str, reason: &str) -> SecurityError {
    SecurityError::TlsPem { source_name: source_name.to_owned(), reason: reason.to_owned() }
}

/// `text` with each `-----...-----` marker on a line of its own and each whitespace-separated
/// word between markers on its own line, which the line-based PEM reader accepts whatever
/// line breaks the text had.
fn normalize(text: &str) -> String {
    fn words(text: &str, out: &mut String) {
        for word in text.split_whitespace() {
            out.push_str(word);
            out.push('\n');
        }
    }
    let mut out = String::with_capacity(text.len() + 64);
    let mut rest = text;
    while let Some(start) = rest.find("-----") {
        words(&rest[..start], &mut out);
        let after = &rest[start + 5..];
        let Some(end) = after.find("-----") else {
            words(&rest[start..], &mut out);
            return out;
        };
        out.push_str("-----");
        out.push_str(after[..end].trim());
        out.push_str("-----\n");
        rest = &after[end + 5..];
    }
    words(rest, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CERT: &str = "-----BEGIN CERTIFICATE-----\nAQID\nBAU=\n-----END CERTIFICATE-----\n";

    #[test]
    fn given_multiline_and_one_line_pem_when_read_should_find_the_same_sections() {
        let one_line = "-----BEGIN CERTIFICATE----- AQID BAU= -----END CERTIFICATE-----";
        let crlf = CERT.replace('\n', "\r\n");
        for text in [CERT, one_line, crlf.as_str(), "-----BEGIN CERTIFICATE-----AQIDBAU=-----END CERTIFICATE-----"] {
            let certs = certificates(text, "test").unwrap();
            assert_eq!(certs.len(), 1, "{text:?}");
            assert_eq!(certs[0].as_ref(), &[1, 2, 3, 4, 5]);
        }
        let two = format!("garbage before\n{CERT}{CERT}");
        assert_eq!(certificates(&two, "test").unwrap().len(), 2);
    }

    #[test]
    fn given_pem_without_what_is_needed_when_read_should_name_the_source() {
        let err = certificates("nothing here", "ssl.truststore.location file /x.pem").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid PEM in ssl.truststore.location file /x.pem: no certificate (-----BEGIN CERTIFICATE-----) found"
        );
        let err = private_key(CERT, "ssl.keystore.key").unwrap_err();
        assert!(err.to_string().contains("no private key"), "{err}");
        let err = certificates("-----BEGIN CERTIFICATE-----\nAQID\n", "k").unwrap_err();
        assert!(err.to_string().contains("without its -----END----- line"), "{err}");
        let err = certificates("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n", "k").unwrap_err();
        assert!(err.to_string().contains("bad base64"), "{err}");
    }

    #[test]
    fn given_encrypted_keys_when_read_should_refuse_them() {
        for text in [
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAQID\n-----END ENCRYPTED PRIVATE KEY-----\n",
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAQID\n-----END RSA PRIVATE KEY-----\n",
        ] {
            let err = private_key(text, "ssl.keystore.key").unwrap_err();
            assert!(err.to_string().contains("the private key is encrypted"), "{err}");
        }
    }

    #[test]
    fn given_key_kinds_when_read_should_keep_their_encoding() {
        let pem = |label: &str| format!("-----BEGIN {label}-----\nAQID\n-----END {label}-----\n");
        assert!(matches!(private_key(&pem("PRIVATE KEY"), "k"), Ok(PrivateKeyDer::Pkcs8(_))));
        assert!(matches!(private_key(&pem("RSA PRIVATE KEY"), "k"), Ok(PrivateKeyDer::Pkcs1(_))));
        assert!(matches!(private_key(&pem("EC PRIVATE KEY"), "k"), Ok(PrivateKeyDer::Sec1(_))));
        let two = format!("{}{}", pem("PRIVATE KEY"), pem("PRIVATE KEY"));
        assert!(private_key(&two, "k").unwrap_err().to_string().contains("2 private keys found"));
    }
}
