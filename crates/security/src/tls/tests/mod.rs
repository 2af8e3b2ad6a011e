//! Full handshakes in memory (rustls connections exchanging bytes through buffers), with a
//! test CA from [`crate::testing::TestPki`].

mod settings;

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, ProtocolVersion, ServerConfig, ServerConnection};

use super::*;
use crate::testing::{TestIdentity, TestPki};
use crate::SecurityError;

const ALICE: &str = "CN=alice,OU=eng,O=Example,C=US";

/// Runs the handshake and a round trip of application data; the first side's error otherwise.
fn handshake(
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
    name: &str,
) -> Result<(ServerConnection, ClientConnection), rustls::Error> {
    let mut server = ServerConnection::new(server)?;
    let mut client = ClientConnection::new(client, ServerName::try_from(name.to_owned()).unwrap())?;
    client.writer().write_all(b"ping").unwrap();
    for _ in 0..16 {
        let (mut to_server, mut to_client) = (Vec::new(), Vec::new());
        while client.wants_write() {
            client.write_tls(&mut to_server).unwrap();
        }
        let mut rd = to_server.as_slice();
        while !rd.is_empty() {
            server.read_tls(&mut rd).unwrap();
            server.process_new_packets()?;
        }
        while server.wants_write() {
            server.write_tls(&mut to_client).unwrap();
        }
        let mut rd = to_client.as_slice();
        while !rd.is_empty() {
            client.read_tls(&mut rd).unwrap();
            client.process_new_packets()?;
        }
        let mut received = [0u8; 4];
        if !server.is_handshaking() && server.reader().read_exact(&mut received).is_ok() {
            assert_eq!(&received, b"ping");
            assert!(!client.is_handshaking());
            return Ok((server, client));
        }
    }
    panic!("the handshake did not finish");
}

/// A CA, a server identity for localhost and 127.0.0.1, and a temporary directory.
struct Fixture {
    pki: TestPki,
    server: TestIdentity,
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let pki = TestPki::new();
        let server = pki.server_pem(&["localhost", "127.0.0.1"]);
        Self { pki, server, dir: tempfile::tempdir().unwrap() }
    }

    /// Settings with the keystore and truststore as files.
    fn settings(&self, client_auth: ClientAuth, protocols: &[TlsVersion]) -> TlsSettings {
        let keystore = self.dir.path().join("keystore.pem");
        let truststore = self.dir.path().join("truststore.pem");
        self.server.write_keystore(&keystore).unwrap();
        std::fs::write(&truststore, self.pki.ca_pem()).unwrap();
        TlsSettings {
            keystore: KeystoreSource::File(keystore),
            truststore: Some(TruststoreSource::File(truststore)),
            client_auth,
            protocols: protocols.to_vec(),
        }
    }

    fn server_config(&self, client_auth: ClientAuth, protocols: &[TlsVersion]) -> Arc<ServerConfig> {
        ServerTls::load(&self.settings(client_auth, protocols)).unwrap().config()
    }

    fn client(&self, identity: Option<&TestIdentity>) -> Arc<ClientConfig> {
        client_config(self.pki.ca_pem(), identity.map(|id| (id.cert_pem.as_str(), id.key_pem.as_str())), true).unwrap()
    }
}

/// A client config that offers only `version`.
fn client_with_version(pki: &TestPki, version: &'static rustls::SupportedProtocolVersion) -> Arc<ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in pem::certificates(pki.ca_pem(), "test").unwrap() {
        roots.add(cert).unwrap();
    }
    let config = ClientConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(&[version])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

#[test]
fn given_both_versions_when_a_default_client_connects_should_negotiate_tls13() {
    let fx = Fixture::new();
    let (server, client) =
        handshake(fx.server_config(ClientAuth::None, &TlsVersion::ALL), fx.client(None), "localhost")
            .expect("handshake");
    assert_eq!(server.protocol_version(), Some(ProtocolVersion::TLSv1_3));
    assert_eq!(client.peer_certificates().unwrap()[0].as_ref(), fx.server.cert_der.as_slice());
    assert!(server.peer_certificates().is_none());
    assert_eq!(server.alpn_protocol(), None);
    let ip = handshake(fx.server_config(ClientAuth::None, &TlsVersion::ALL), fx.client(None), "127.0.0.1");
    assert!(ip.is_ok(), "the certificate covers 127.0.0.1: {:?}", ip.err());
}

#[test]
fn given_tls13_only_when_clients_connect_should_refuse_tls12() {
    let fx = Fixture::new();
    let server = fx.server_config(ClientAuth::None, &[TlsVersion::Tls13]);
    let (connection, _) =
        handshake(Arc::clone(&server), client_with_version(&fx.pki, &rustls::version::TLS13), "localhost").unwrap();
    assert_eq!(connection.protocol_version(), Some(ProtocolVersion::TLSv1_3));
    assert!(handshake(server, client_with_version(&fx.pki, &rustls::version::TLS12), "localhost").is_err());
}

#[test]
fn given_tls12_only_when_clients_connect_should_negotiate_tls12() {
    let fx = Fixture::new();
    let server = fx.server_config(ClientAuth::None, &[TlsVersion::Tls12]);
    let (connection, _) = handshake(Arc::clone(&server), fx.client(None), "localhost").unwrap();
    assert_eq!(connection.protocol_version(), Some(ProtocolVersion::TLSv1_2));
    assert!(handshake(server, client_with_version(&fx.pki, &rustls::version::TLS13), "localhost").is_err());
}

#[test]
fn given_client_auth_required_when_clients_connect_should_admit_only_certificates_of_the_truststore() {
    let fx = Fixture::new();
    let alice = fx.pki.client_pem(ALICE);
    let stranger = TestPki::named("Other CA").client_pem(ALICE);
    for versions in [vec![TlsVersion::Tls13], vec![TlsVersion::Tls12]] {
        let server = fx.server_config(ClientAuth::Required, &versions);
        let (connection, _) = handshake(Arc::clone(&server), fx.client(Some(&alice)), "localhost").unwrap();
        let peer = &connection.peer_certificates().expect("a client certificate")[0];
        assert_eq!(principal_from_certificate(peer).unwrap(), ALICE);

        let err = handshake(Arc::clone(&server), fx.client(None), "localhost").unwrap_err();
        assert_eq!(err, rustls::Error::NoCertificatesPresented, "{versions:?}");
        let err = handshake(server, fx.client(Some(&stranger)), "localhost").unwrap_err();
        assert!(matches!(err, rustls::Error::InvalidCertificate(_)), "{versions:?}: {err:?}");
    }
}

#[test]
fn given_client_auth_requested_when_clients_connect_should_admit_anonymous_and_verified_clients() {
    let fx = Fixture::new();
    let server = fx.server_config(ClientAuth::Requested, &TlsVersion::ALL);
    let (anonymous, _) = handshake(Arc::clone(&server), fx.client(None), "localhost").unwrap();
    assert!(anonymous.peer_certificates().is_none());

    let alice = fx.pki.client_pem(ALICE);
    let (verified, _) = handshake(Arc::clone(&server), fx.client(Some(&alice)), "localhost").unwrap();
    assert_eq!(verified.peer_certificates().unwrap()[0].as_ref(), alice.cert_der.as_slice());

    let stranger = TestPki::named("Other CA").client_pem(ALICE);
    assert!(handshake(server, fx.client(Some(&stranger)), "localhost").is_err());
}

#[test]
fn given_no_client_auth_when_a_client_has_a_certificate_should_not_ask_for_it() {
    let fx = Fixture::new();
    let alice = fx.pki.client_pem(ALICE);
    let (connection, _) =
        handshake(fx.server_config(ClientAuth::None, &TlsVersion::ALL), fx.client(Some(&alice)), "localhost").unwrap();
    assert!(connection.peer_certificates().is_none());
}

#[test]
fn given_client_configs_when_the_name_does_not_match_should_check_it_only_if_asked() {
    let fx = Fixture::new();
    let server = fx.server_config(ClientAuth::None, &TlsVersion::ALL);
    assert!(handshake(Arc::clone(&server), fx.client(None), "broker.example").is_err());
    let lenient = client_config(fx.pki.ca_pem(), None, false).unwrap();
    assert!(handshake(Arc::clone(&server), Arc::clone(&lenient), "broker.example").is_ok());
    // Without hostname verification the chain is still checked.
    let other = TestPki::named("Other CA");
    let untrusting = client_config(other.ca_pem(), None, false).unwrap();
    assert!(handshake(server, untrusting, "localhost").is_err());
}

#[test]
fn given_client_certificates_when_mapped_should_give_javas_rfc2253_subject() {
    let pki = TestPki::new();
    let name = |subject: &str| principal_from_certificate(&pki.client_pem(subject).cert_der).unwrap();
    assert_eq!(name(ALICE), ALICE);
    assert_eq!(name("CN=Smith\\, Alice,O=Example"), "CN=Smith\\, Alice,O=Example");
    assert_eq!(name("CN=a+b=c;d,OU= padded "), "CN=a\\+b\\=c\\;d,OU=\\ padded\\ ");
    assert_eq!(name("UID=alice,DC=example"), "UID=alice,DC=example");
    // Types without an RFC 2253 keyword: the dotted OID and the hex of the DER value.
    assert_eq!(
        name("EMAILADDRESS=alice@example.com,CN=alice"),
        "1.2.840.113549.1.9.1=#1611616c696365406578616d706c652e636f6d,CN=alice"
    );
    let err = principal_from_certificate(b"not a certificate").unwrap_err();
    assert!(err.to_string().starts_with("cannot read the subject of the client certificate"), "{err}");
}

/// Replaces `path`'s content and moves its modification time, as a new file would have.
fn replace(path: &Path, content: &str, age: u64) {
    std::fs::write(path, content).unwrap();
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() + Duration::from_secs(age)).unwrap();
}

#[test]
fn given_a_replaced_keystore_when_reloaded_should_serve_the_new_certificate_and_keep_the_old_on_garbage() {
    let fx = Fixture::new();
    let settings = fx.settings(ClientAuth::None, &TlsVersion::ALL);
    let KeystoreSource::File(keystore) = settings.keystore.clone() else { unreachable!() };
    let tls = ServerTls::load(&settings).unwrap();
    let served = |tls: &ServerTls| {
        let (_, client) = handshake(tls.config(), fx.client(None), "localhost").unwrap();
        client.peer_certificates().unwrap()[0].as_ref().to_vec()
    };
    assert_eq!(served(&tls), fx.server.cert_der);
    assert_eq!(tls.reload_if_changed(), Ok(false), "nothing changed");

    let renewed = fx.pki.server_pem(&["localhost"]);
    replace(&keystore, &renewed.keystore_pem(), 10);
    assert_eq!(tls.reload_if_changed(), Ok(true));
    assert_eq!(served(&tls), renewed.cert_der);
    assert_eq!(tls.reload_if_changed(), Ok(false));

    replace(&keystore, "garbage", 20);
    let err = tls.reload_if_changed().unwrap_err();
    assert_eq!(
        err,
        SecurityError::TlsPem {
            source_name: format!("ssl.keystore.location file {}", keystore.display()),
            reason: "no certificate (-----BEGIN CERTIFICATE-----) found".into(),
        }
    );
    assert_eq!(served(&tls), renewed.cert_der, "the old config stays");
    assert_eq!(tls.reload_if_changed(), Ok(false), "the bad file is reported once");

    std::fs::remove_file(&keystore).unwrap();
    let err = tls.reload_if_changed().unwrap_err();
    assert!(matches!(err, SecurityError::TlsRead { .. }), "{err:?}");
    assert_eq!(served(&tls), renewed.cert_der);

    // A file renamed over the keystore, as certificate tooling writes it.
    let staged = fx.dir.path().join("staged.pem");
    fx.server.write_keystore(&staged).unwrap();
    std::fs::rename(&staged, &keystore).unwrap();
    assert_eq!(tls.reload_if_changed(), Ok(true));
    assert_eq!(served(&tls), fx.server.cert_der);
}

#[test]
fn given_a_replaced_truststore_when_reloaded_should_verify_clients_against_the_new_cas() {
    let fx = Fixture::new();
    let settings = fx.settings(ClientAuth::Required, &TlsVersion::ALL);
    let Some(TruststoreSource::File(truststore)) = settings.truststore.clone() else { unreachable!() };
    let tls = ServerTls::load(&settings).unwrap();
    let other = TestPki::named("Other CA");
    let bob = other.client_pem("CN=bob");
    assert!(handshake(tls.config(), fx.client(Some(&bob)), "localhost").is_err());
    replace(&truststore, &format!("{}{}", fx.pki.ca_pem(), other.ca_pem()), 10);
    assert_eq!(tls.reload_if_changed(), Ok(true));
    let (connection, _) = handshake(tls.config(), fx.client(Some(&bob)), "localhost").unwrap();
    assert_eq!(principal_from_certificate(&connection.peer_certificates().unwrap()[0]).unwrap(), "CN=bob");
}

#[test]
fn given_inline_pem_when_loaded_should_serve_it_even_on_one_line() {
    let fx = Fixture::new();
    let alice = fx.pki.client_pem(ALICE);
    // What a server.properties value with `\` continuations becomes: one line.
    let one_line = |pem: &str| pem.lines().collect::<Vec<_>>().join(" ");
    for join in [|pem: &str| pem.to_owned(), one_line] {
        let config = [
            ("ssl.keystore.type", "PEM".to_owned()),
            ("ssl.keystore.certificate.chain", join(&fx.server.cert_pem)),
            ("ssl.keystore.key", join(&fx.server.key_pem)),
            ("ssl.truststore.type", "PEM".to_owned()),
            ("ssl.truststore.certificates", join(fx.pki.ca_pem())),
            ("ssl.client.auth", "required".to_owned()),
        ];
        let get = |key: &str| config.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone());
        let settings = TlsSettings::from_config(get).unwrap().expect("a keystore is configured");
        assert!(format!("{settings:?}").contains("<redacted>"), "Debug hides the key");
        let tls = ServerTls::load(&settings).unwrap();
        assert_eq!(tls.reload_if_changed(), Ok(false), "inline PEM has no file to watch");
        let (connection, _) = handshake(tls.config(), fx.client(Some(&alice)), "localhost").unwrap();
        assert!(connection.peer_certificates().is_some());
    }
}

#[test]
fn given_bad_files_when_loaded_should_name_the_setting_and_the_file() {
    let fx = Fixture::new();
    let mut settings = fx.settings(ClientAuth::Required, &TlsVersion::ALL);
    let missing = fx.dir.path().join("missing.pem");
    settings.truststore = Some(TruststoreSource::File(missing.clone()));
    let err = ServerTls::load(&settings).unwrap_err();
    assert!(
        err.to_string().starts_with(&format!("cannot read ssl.truststore.location file {}: ", missing.display())),
        "{err}"
    );

    let other = fx.pki.server_pem(&["localhost"]);
    let mismatched = fx.dir.path().join("mismatched.pem");
    std::fs::write(&mismatched, format!("{}{}", other.key_pem, fx.server.cert_pem)).unwrap();
    let settings = TlsSettings::new(KeystoreSource::File(mismatched.clone()));
    assert_eq!(
        ServerTls::load(&settings).unwrap_err().to_string(),
        format!(
            "unusable TLS certificate and key from ssl.keystore.location file {}: the private key does not match \
             the first certificate (the chain must start with the key's own certificate)",
            mismatched.display()
        )
    );

    let only_cert = fx.dir.path().join("only-cert.pem");
    std::fs::write(&only_cert, &fx.server.cert_pem).unwrap();
    let err = ServerTls::load(&TlsSettings::new(KeystoreSource::File(only_cert.clone()))).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "invalid PEM in ssl.keystore.location file {}: no private key (-----BEGIN PRIVATE KEY-----) found",
            only_cert.display()
        )
    );
}
