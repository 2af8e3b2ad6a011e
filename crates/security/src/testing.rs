//! A throwaway PKI for tests (cargo feature `testing`, rcgen): a CA, server certificates for
//! given host names and IP addresses, client certificates with a given subject, as PEM text
//! or as files in Kafka's keystore and truststore layout.
//!
//! ```ignore
//! let pki = TestPki::new();
//! let files = pki.write_files(dir.path(), &["localhost", "127.0.0.1"])?;
//! // ssl.keystore.location=files.keystore, ssl.truststore.location=files.truststore
//! let alice = pki.client_pem("CN=alice,OU=eng,O=Example,C=US");
//! ```
#![allow(clippy::missing_panics_doc)]

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose,
};

/// A CA that signs certificates on demand. Keys are ECDSA P-256 (quick to make).
pub struct TestPki {
    ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl fmt::Debug for TestPki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestPki").field("ca_pem", &self.ca_pem).finish_non_exhaustive()
    }
}

/// A certificate signed by the [`TestPki`] CA and its private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestIdentity {
    /// The certificate, PEM (the chain: the CA itself is not included, as a truststore has it).
    pub cert_pem: String,
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// The unencrypted PKCS#8 private key, PEM.
    pub key_pem: String,
}

impl TestIdentity {
    /// Key and certificate in one text, as `ssl.keystore.location` holds them.
    pub fn keystore_pem(&self) -> String {
        format!("{}{}", self.key_pem, self.cert_pem)
    }

    /// Writes [`TestIdentity::keystore_pem`] to `path`.
    pub fn write_keystore(&self, path: &Path) -> io::Result<()> {
        std::fs::write(path, self.keystore_pem())
    }
}

/// The files [`TestPki::write_files`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestPkiFiles {
    /// The server's key and certificate (`ssl.keystore.location`).
    pub keystore: PathBuf,
    /// The CA certificate (`ssl.truststore.location`, and the client's truststore).
    pub truststore: PathBuf,
    /// The server identity written to `keystore`.
    pub server: TestIdentity,
}

impl Default for TestPki {
    fn default() -> Self {
        Self::new()
    }
}

impl TestPki {
    /// A new CA, `CN=Gregor Test CA`.
    pub fn new() -> Self {
        Self::named("Gregor Test CA")
    }

    /// A new CA with the common name `name` (another CA's certificates do not chain to it).
    pub fn named(name: &str) -> Self {
        let key = KeyPair::generate().expect("generate the CA key");
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_pem = params.self_signed(&key).expect("self-sign the CA").pem();
        Self { ca_pem, issuer: Issuer::new(params, key) }
    }

    /// The CA certificate, PEM: what a truststore holds.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A server certificate for `hosts` (DNS names or IP addresses, as subject alternative
    /// names), `CN=` the first of them.
    pub fn server_pem(&self, hosts: &[&str]) -> TestIdentity {
        let mut params = CertificateParams::new(hosts.iter().map(|host| (*host).to_owned()).collect::<Vec<_>>())
            .expect("host names");
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, hosts.first().copied().unwrap_or("server"));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(&params)
    }

    /// A client certificate whose subject is the RFC 2253 `subject` (`CN=alice,OU=eng,O=Example,C=US`,
    /// most specific first, `\` escapes; keywords CN OU O C L ST STREET DC UID and EMAILADDRESS
    /// (an IA5String, as real certificates have it), each at most once).
    pub fn client_pem(&self, subject: &str) -> TestIdentity {
        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name(subject);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(&params)
    }

    /// Writes `keystore.pem` (a server identity for `hosts`) and `truststore.pem` (the CA) to `dir`.
    pub fn write_files(&self, dir: &Path, hosts: &[&str]) -> io::Result<TestPkiFiles> {
        let server = self.server_pem(hosts);
        let keystore = dir.join("keystore.pem");
        let truststore = dir.join("truststore.pem");
        server.write_keystore(&keystore)?;
        std::fs::write(&truststore, &self.ca_pem)?;
        Ok(TestPkiFiles { keystore, truststore, server })
    }

    fn sign(&self, params: &CertificateParams) -> TestIdentity {
        let key = KeyPair::generate().expect("generate a key");
        let certificate = params.signed_by(&key, &self.issuer).expect("sign the certificate");
        TestIdentity { cert_pem: certificate.pem(), cert_der: certificate.der().to_vec(), key_pem: key.serialize_pem() }
    }
}

/// An RFC 2253 string as a certificate subject (reversed: the certificate lists the least
/// specific RDN first).
fn distinguished_name(subject: &str) -> DistinguishedName {
    let mut rdns: Vec<(String, String)> = Vec::new();
    let (mut keyword, mut value) = (String::new(), String::new());
    let (mut in_value, mut escaped) = (false, false);
    for c in subject.chars() {
        match c {
            _ if escaped => {
                value.push(c);
                escaped = false;
            }
            '\\' => escaped = true,
            ',' => {
                rdns.push((std::mem::take(&mut keyword), std::mem::take(&mut value)));
                in_value = false;
            }
            '=' if !in_value => in_value = true,
            _ if in_value => value.push(c),
            _ => keyword.push(c),
        }
    }
    rdns.push((keyword, value));
    let mut name = DistinguishedName::new();
    for (keyword, value) in rdns.into_iter().rev() {
        let dn_type = match keyword.trim().to_ascii_uppercase().as_str() {
            "CN" => DnType::CommonName,
            "OU" => DnType::OrganizationalUnitName,
            "O" => DnType::OrganizationName,
            "C" => DnType::CountryName,
            "L" => DnType::LocalityName,
            "ST" => DnType::StateOrProvinceName,
            "STREET" => DnType::CustomDnType(vec![2, 5, 4, 9]),
            "DC" => DnType::CustomDnType(vec![0, 9, 2342, 19200300, 100, 1, 25]),
            "UID" => DnType::CustomDnType(vec![0, 9, 2342, 19200300, 100, 1, 1]),
            "EMAILADDRESS" => {
                let email = rcgen::string::Ia5String::try_from(value).expect("an ASCII e-mail address");
                name.push(DnType::CustomDnType(vec![1, 2, 840, 113549, 1, 9, 1]), DnValue::Ia5String(email));
                continue;
            }
            other => panic!("unsupported subject keyword {other} in {subject}"),
        };
        name.push(dn_type, value);
    }
    name
}
