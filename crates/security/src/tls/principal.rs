//! The principal of a client certificate under Kafka's `ssl.principal.mapping.rules=DEFAULT`:
//! the subject's distinguished name as Java's `X500Principal.getName()` (RFC 2253) gives it,
//! which is what Kafka's `DefaultKafkaPrincipalBuilder` puts after `User:`.
//!
//! Java's rules, reproduced here (`sun.security.x509.AVA.toRFC2253String`):
//! - RDNs most specific first (the reverse of the certificate's order), joined by `,`; the
//!   attributes of a multi-valued RDN joined by `+`, in encoded order;
//! - the keywords `CN C L ST O OU STREET DC UID`; every other attribute type as its dotted
//!   OID (`1.2.840.113549.1.9.1` for emailAddress), with the value as `#` and the lowercase
//!   hex of its DER encoding;
//! - a value of another type than PrintableString, T61String, IA5String, GeneralString,
//!   BMPString or UTF8String also as `#hex`;
//! - otherwise the value's bytes read as UTF-8, with `, = + < > # ; " \` escaped by a
//!   backslash, NUL as `\00`, and leading and trailing spaces (and CRs) escaped.

use x509_parser::asn1_rs::{Any, Tag, ToDer};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::AttributeTypeAndValue;

use crate::error::{Result, SecurityError};

/// The RFC 2253 keywords Java emits, by OID.
const KEYWORDS: [(&str, &str); 9] = [
    ("2.5.4.3", "CN"),
    ("2.5.4.6", "C"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.9", "STREET"),
    ("0.9.2342.19200300.100.1.25", "DC"),
    ("0.9.2342.19200300.100.1.1", "UID"),
];

/// The subject DN of the DER certificate `der` in Java's RFC 2253 form, e.g.
/// `CN=alice,OU=eng,O=Example,C=US`. The broker makes the principal `User:` + this.
pub fn principal_from_certificate(der: &[u8]) -> Result<String> {
    let (_, certificate) =
        X509Certificate::from_der(der).map_err(|err| SecurityError::TlsCertificate { reason: err.to_string() })?;
    let mut rdns = Vec::new();
    for rdn in certificate.subject().iter_rdn() {
        let attributes: Vec<String> = rdn.iter().map(attribute).collect::<Result<_>>()?;
        rdns.push(attributes.join("+"));
    }
    rdns.reverse();
    Ok(rdns.join(","))
}

fn attribute(attribute: &AttributeTypeAndValue<'_>) -> Result<String> {
    let oid = attribute.attr_type().to_id_string();
    let value = attribute.attr_value();
    match KEYWORDS.iter().find(|(known, _)| *known == oid) {
        Some((_, keyword)) if is_string(value) => {
            Ok(format!("{keyword}={}", escape(&String::from_utf8_lossy(value.data))))
        }
        Some((_, keyword)) => Ok(format!("{keyword}=#{}", hex(value)?)),
        None => Ok(format!("{oid}=#{}", hex(value)?)),
    }
}

/// The string types Java writes as text (`AVA.isDerString(value, false)`).
fn is_string(value: &Any<'_>) -> bool {
    matches!(
        value.tag(),
        Tag::PrintableString | Tag::T61String | Tag::Ia5String | Tag::GeneralString | Tag::BmpString | Tag::Utf8String
    )
}

/// The lowercase hex of the value's whole DER encoding (tag, length, content).
fn hex(value: &Any<'_>) -> Result<String> {
    let der = value.to_der_vec().map_err(|err| SecurityError::TlsCertificate { reason: err.to_string() })?;
    Ok(der.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// RFC 2253 escaping as Java does it.
fn escape(value: &str) -> String {
    const ESCAPEES: &str = ",=+<>#;\"\\";
    let mut escaped: Vec<char> = Vec::with_capacity(value.len());
    for c in value.chars() {
        if ESCAPEES.contains(c) {
            escaped.push('\\');
            escaped.push(c);
        } else if c == '\0' {
            escaped.extend(['\\', '0', '0']);
        } else {
            escaped.push(c);
        }
    }
    let blank = |c: &char| *c == ' ' || *c == '\r';
    let lead = escaped.iter().take_while(|c| blank(c)).count();
    let trail = escaped.len() - escaped.iter().rev().take_while(|c| blank(c)).count();
    let mut out = String::with_capacity(escaped.len() + 4);
    for (i, c) in escaped.into_iter().enumerate() {
        if i < lead || i >= trail {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn given_special_characters_when_escaped_should_match_java() {
        assert_eq!(escape("alice"), "alice");
        assert_eq!(escape("Smith, Alice"), "Smith\\, Alice");
        assert_eq!(escape("a+b=c<d>e#f;g\"h\\i"), "a\\+b\\=c\\<d\\>e\\#f\\;g\\\"h\\\\i");
        assert_eq!(escape("#1"), "\\#1");
        assert_eq!(escape("  padded "), "\\ \\ padded\\ ");
        assert_eq!(escape("nul\0"), "nul\\00");
        assert_eq!(escape("jürgen_o'brien@example.com"), "jürgen_o'brien@example.com");
        assert_eq!(escape("   "), "\\ \\ \\ ");
    }
}
