//! `TlsSettings::from_config`: Kafka's keys, and one sentence for each refused one.

use std::path::PathBuf;

use super::super::*;

fn from(pairs: &[(&str, &str)]) -> crate::Result<Option<TlsSettings>> {
    TlsSettings::from_config(|key| pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| (*v).to_owned()))
}

/// The error of `pairs` added to a valid keystore location.
fn refused(pairs: &[(&str, &str)]) -> String {
    let mut all = vec![("ssl.keystore.location", "/etc/gregor/broker.pem")];
    all.extend_from_slice(pairs);
    from(&all).unwrap_err().to_string()
}

#[test]
fn given_no_keystore_when_read_should_have_no_settings() {
    assert_eq!(from(&[]), Ok(None));
    assert_eq!(from(&[("ssl.client.auth", "required"), ("ssl.keystore.location", "  ")]), Ok(None));
}

#[test]
fn given_kafkas_keys_when_read_should_make_settings() {
    let settings = from(&[
        ("ssl.keystore.type", "PEM"),
        ("ssl.keystore.location", "/etc/gregor/broker.pem"),
        ("ssl.truststore.type", "pem"),
        ("ssl.truststore.location", "/etc/gregor/ca.pem"),
        ("ssl.client.auth", "REQUIRED"),
        ("ssl.enabled.protocols", "TLSv1.3"),
        ("ssl.protocol", "TLSv1.3"),
        ("ssl.key.password", ""),
        ("ssl.cipher.suites", ""),
        ("ssl.principal.mapping.rules", "DEFAULT"),
    ])
    .unwrap()
    .unwrap();
    assert_eq!(
        settings,
        TlsSettings {
            keystore: KeystoreSource::File(PathBuf::from("/etc/gregor/broker.pem")),
            truststore: Some(TruststoreSource::File(PathBuf::from("/etc/gregor/ca.pem"))),
            client_auth: ClientAuth::Required,
            protocols: vec![TlsVersion::Tls13],
        }
    );

    let defaults = from(&[("ssl.keystore.location", "/k.pem")]).unwrap().unwrap();
    assert_eq!(defaults, TlsSettings::new(KeystoreSource::File(PathBuf::from("/k.pem"))));
    assert_eq!(defaults.protocols, vec![TlsVersion::Tls12, TlsVersion::Tls13]);

    let both = from(&[("ssl.keystore.location", "/k.pem"), ("ssl.enabled.protocols", "TLSv1.3, TLSv1.2,TLSv1.3")]);
    assert_eq!(both.unwrap().unwrap().protocols, vec![TlsVersion::Tls12, TlsVersion::Tls13]);

    let inline = from(&[
        ("ssl.keystore.certificate.chain", "CHAIN"),
        ("ssl.keystore.key", "KEY"),
        ("ssl.truststore.certificates", "CAS"),
        ("ssl.client.auth", "requested"),
    ])
    .unwrap()
    .unwrap();
    assert_eq!(inline.keystore, KeystoreSource::Inline { certificate_chain: "CHAIN".into(), key: "KEY".into() });
    assert_eq!(inline.truststore, Some(TruststoreSource::Inline("CAS".into())));
    assert_eq!(inline.client_auth, ClientAuth::Requested);
    for protocol in ["TLS", "TLSv1.2", "tlsv1.3"] {
        assert!(from(&[("ssl.keystore.location", "/k.pem"), ("ssl.protocol", protocol)]).is_ok());
    }
}

#[test]
fn given_store_types_other_than_pem_when_read_should_say_how_to_convert() {
    assert_eq!(
        refused(&[("ssl.keystore.type", "JKS")]),
        "ssl.keystore.type=JKS is not supported: Gregor reads PEM keystores and truststores only; convert a \
         PKCS12 store with `openssl pkcs12 -in store.p12 -nodes -out store.pem` (a JKS one first with \
         `keytool -importkeystore -srckeystore store.jks -destkeystore store.p12 -deststoretype PKCS12`) and \
         set ssl.keystore.type=PEM"
    );
    assert!(refused(&[("ssl.truststore.type", "PKCS12")]).starts_with("ssl.truststore.type=PKCS12 is not supported"));
}

#[test]
fn given_passwords_when_read_should_refuse_them() {
    assert_eq!(
        refused(&[("ssl.key.password", "secret")]),
        "ssl.key.password is set but Gregor does not read encrypted private keys: give an unencrypted PKCS#8 \
         key (`openssl pkcs8 -topk8 -nocrypt -in key.pem -out key-plain.pem`) and remove ssl.key.password"
    );
    assert_eq!(
        refused(&[("ssl.keystore.password", "secret")]),
        "ssl.keystore.password cannot be set with a PEM store (as in Kafka): PEM files have no store password, \
         remove ssl.keystore.password"
    );
    assert!(refused(&[("ssl.truststore.password", "secret")]).starts_with("ssl.truststore.password cannot be set"));
}

#[test]
fn given_unsupported_tuning_when_read_should_refuse_it() {
    assert_eq!(
        refused(&[("ssl.cipher.suites", "TLS_AES_128_GCM_SHA256")]),
        "ssl.cipher.suites is not supported: rustls' default cipher suites apply, remove the setting"
    );
    assert_eq!(
        refused(&[("ssl.principal.mapping.rules", "RULE:^CN=(.*?),.*$/$1/,DEFAULT")]),
        "ssl.principal.mapping.rules=RULE:^CN=(.*?),.*$/$1/,DEFAULT is not supported: only DEFAULT (the client \
         certificate's subject distinguished name) is"
    );
    assert_eq!(
        refused(&[("ssl.enabled.protocols", "TLSv1.2,TLSv1.1")]),
        "ssl.enabled.protocols=TLSv1.1 is not supported: expected TLSv1.2 and/or TLSv1.3 (older versions are not served)"
    );
    assert_eq!(
        refused(&[("ssl.protocol", "SSLv3")]),
        "ssl.protocol=SSLv3 is not supported: expected TLS, TLSv1.2 or TLSv1.3"
    );
    assert_eq!(
        refused(&[("ssl.client.auth", "sometimes")]),
        "ssl.client.auth=sometimes is not supported: expected required, requested or none"
    );
}

#[test]
fn given_incomplete_or_conflicting_stores_when_read_should_say_which_keys() {
    assert_eq!(
        refused(&[("ssl.client.auth", "required")]),
        "ssl.client.auth=required needs a truststore to verify client certificates with: set \
         ssl.truststore.location (a PEM file of CA certificates) or ssl.truststore.certificates"
    );
    assert!(refused(&[("ssl.client.auth", "requested")]).starts_with("ssl.client.auth=requested needs a truststore"));
    assert_eq!(
        refused(&[("ssl.keystore.certificate.chain", "CHAIN")]),
        "ssl.keystore.location and ssl.keystore.certificate.chain are both set: give the store as a file or \
         inline, not both"
    );
    assert_eq!(
        refused(&[("ssl.keystore.key", "KEY")]),
        "ssl.keystore.location and ssl.keystore.key are both set: give the store as a file or inline, not both"
    );
    assert_eq!(
        refused(&[("ssl.truststore.location", "/ca.pem"), ("ssl.truststore.certificates", "CAS")]),
        "ssl.truststore.location and ssl.truststore.certificates are both set: give the store as a file or \
         inline, not both"
    );
    assert_eq!(
        from(&[("ssl.keystore.certificate.chain", "CHAIN")]).unwrap_err().to_string(),
        "ssl.keystore.certificate.chain needs ssl.keystore.key (the certificate chain's unencrypted private key, PEM)"
    );
    assert_eq!(
        from(&[("ssl.keystore.key", "KEY")]).unwrap_err().to_string(),
        "ssl.keystore.key needs ssl.keystore.certificate.chain (the key's certificate chain, PEM, leaf first)"
    );
    let err = from(&[("ssl.keystore.key", "KEY")]).unwrap_err();
    assert_eq!(err.kafka_code(), -1);
}
