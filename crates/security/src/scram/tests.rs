//! SCRAM against RFC 7677's test vector, full exchanges between [`ScramClient`] and
//! [`ScramServer`] for both mechanisms, and every way a client message can be refused.

use base64::Engine;

use super::messages::{escape_name, unescape_name};
use super::*;
use crate::error::SecurityError;

// RFC 7677 §3.
const RFC_CLIENT_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
const RFC_SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
const RFC_SALT: &str = "W22ZaJ0SNY7soEsUEjb6gQ==";
const RFC_CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
const RFC_SERVER_FIRST: &str = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const RFC_CLIENT_FINAL: &str =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
const RFC_SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

const SHA256: ScramMechanism = ScramMechanism::ScramSha256;
const SHA512: ScramMechanism = ScramMechanism::ScramSha512;

fn rfc_credential() -> ScramCredential {
    let salt = BASE64.decode(RFC_SALT).unwrap();
    ScramCredential::from_password(SHA256, "pencil", &salt, 4096).unwrap()
}

fn rfc_server() -> ScramServer {
    let mut server = ScramServer::new(SHA256, RFC_SERVER_NONCE.into());
    let server_first = server.client_first(RFC_CLIENT_FIRST.as_bytes(), |_| Some(rfc_credential())).unwrap();
    assert_eq!(String::from_utf8(server_first).unwrap(), RFC_SERVER_FIRST);
    server
}

/// A server that knows `alice`/`secret` for `mechanism`.
fn server_for(mechanism: ScramMechanism) -> (ScramServer, ScramCredential) {
    let credential = ScramCredential::from_password(mechanism, "secret", &[7; 32], 4096).unwrap();
    (ScramServer::new(mechanism, "server-nonce".into()), credential)
}

fn lookup(credential: &ScramCredential) -> impl FnOnce(&str) -> Option<ScramCredential> + '_ {
    move |user| (user == "alice").then(|| credential.clone())
}

/// Runs client-first and server-first for `user`, answering with `password`.
fn client_final_for(
    mechanism: ScramMechanism,
    user: &str,
    password: &str,
) -> (ScramServer, ScramClient, Result<Vec<u8>, SecurityError>) {
    let (mut server, credential) = server_for(mechanism);
    let mut client = ScramClient::new(mechanism, "client-nonce".into());
    let server_first = server.client_first(&client.client_first(user), lookup(&credential)).unwrap();
    let client_final = client.server_first(&server_first, password);
    (server, client, client_final)
}

#[test]
fn given_rfc7677_vector_when_served_should_answer_its_server_signature() {
    let mut server = rfc_server();
    let (server_final, user) = server.client_final(RFC_CLIENT_FINAL.as_bytes()).unwrap();
    assert_eq!(String::from_utf8(server_final).unwrap(), RFC_SERVER_FINAL);
    assert_eq!(user, "user");
    assert!(server.is_complete());
}

#[test]
fn given_rfc7677_vector_when_run_by_the_client_should_send_its_proof() {
    let mut client = ScramClient::new(SHA256, RFC_CLIENT_NONCE.into());
    assert_eq!(client.client_first("user"), RFC_CLIENT_FIRST.as_bytes());
    let client_final = client.server_first(RFC_SERVER_FIRST.as_bytes(), "pencil").unwrap();
    assert_eq!(String::from_utf8(client_final).unwrap(), RFC_CLIENT_FINAL);
    client.server_final(RFC_SERVER_FINAL.as_bytes()).unwrap();
    assert!(client.is_complete());
}

#[test]
fn given_both_mechanisms_when_client_and_server_exchange_should_authenticate_each_other() {
    for mechanism in ScramMechanism::ALL {
        let (mut server, mut client, client_final) = client_final_for(mechanism, "alice", "secret");
        let (server_final, user) = server.client_final(&client_final.unwrap()).unwrap();
        assert_eq!(user, "alice");
        client.server_final(&server_final).unwrap();
        let signature = server_final.strip_prefix(b"v=").unwrap();
        assert_eq!(BASE64.decode(signature).unwrap().len(), mechanism.hash_len(), "{mechanism}");
    }
}

#[test]
fn given_wrong_password_when_proving_should_fail_with_invalid_credentials() {
    for mechanism in ScramMechanism::ALL {
        let (mut server, _, client_final) = client_final_for(mechanism, "alice", "guess");
        let err = server.client_final(&client_final.unwrap()).unwrap_err();
        assert_eq!(err, SecurityError::InvalidUserCredentials);
        assert_eq!(err.to_string(), "Authentication failed: Invalid user credentials");
        assert_eq!(err.kafka_code(), 58);
        assert!(!server.is_complete());
    }
}

#[test]
fn given_unknown_user_when_exchanging_should_answer_a_fake_salt_and_fail_at_the_proof() {
    let (mut server, mut client, client_final) = client_final_for(SHA512, "mallory", "secret");
    let client_final = client_final.expect("an unknown user gets a well-formed server-first");
    assert_eq!(server.client_final(&client_final).unwrap_err(), SecurityError::InvalidUserCredentials);
    assert_eq!(client.server_final(b"v=AAAA").unwrap_err(), SecurityError::InvalidServerSignature);
}

#[test]
fn given_fake_salt_key_when_unknown_user_retries_should_see_the_same_salt() {
    let salt_of = |nonce: &str, user: &str| {
        let mut server = ScramServer::new(SHA256, nonce.into()).with_fake_salt_key(b"broker secret");
        let first = server.client_first(format!("n,,n={user},r=abc").as_bytes(), |_| None).unwrap();
        let text = String::from_utf8(first).unwrap();
        let salt = text.split(',').nth(1).unwrap().strip_prefix("s=").unwrap().to_owned();
        assert_eq!(BASE64.decode(&salt).unwrap().len(), FAKE_SALT_LEN);
        assert!(text.ends_with(",i=4096"));
        salt
    };
    assert_eq!(salt_of("one", "mallory"), salt_of("two", "mallory"));
    assert_ne!(salt_of("one", "mallory"), salt_of("one", "trudy"));
}

#[test]
fn given_authzid_when_client_first_arrives_should_accept_only_the_users_own() {
    let (mut server, credential) = server_for(SHA256);
    let first = server.client_first(b"n,a=alice,n=alice,r=abc", lookup(&credential)).unwrap();
    assert!(first.starts_with(b"r=abcserver-nonce,s="));
    let proof = "c=bixhPWFsaWNlLA==,r=abcserver-nonce,p=AAAA";
    assert_eq!(server.client_final(proof.as_bytes()).unwrap_err(), SecurityError::InvalidUserCredentials);

    let (mut server, credential) = server_for(SHA256);
    let err = server.client_first(b"n,a=admin,n=alice,r=abc", lookup(&credential)).unwrap_err();
    assert_eq!(err, SecurityError::AuthorizationIdMismatch);
}

#[test]
fn given_escaped_names_when_parsed_should_unescape_and_round_trip() {
    assert_eq!(unescape_name("a=2Cb=3Dc").as_deref(), Some("a,b=c"));
    assert_eq!(escape_name("a,b=c"), "a=2Cb=3Dc");
    for bad in ["", "a=", "a=2", "a=2c", "a=41", "a\0b"] {
        assert_eq!(unescape_name(bad), None, "{bad:?}");
    }
    let credential = ScramCredential::from_password(SHA256, "pw", &[1; 32], 4096).unwrap();
    let mut server = ScramServer::new(SHA256, "s".into());
    let mut client = ScramClient::new(SHA256, "c".into());
    let looked_up = |user: &str| (user == "we,ird=name").then(|| credential.clone());
    let server_first = server.client_first(&client.client_first("we,ird=name"), looked_up).unwrap();
    let (server_final, user) = server.client_final(&client.server_first(&server_first, "pw").unwrap()).unwrap();
    assert_eq!(user, "we,ird=name");
    client.server_final(&server_final).unwrap();
}

#[test]
fn given_channel_binding_or_delegation_tokens_when_requested_should_refuse_clearly() {
    let cases: &[(&[u8], SecurityError)] = &[
        (b"p=tls-unique,,n=alice,r=abc", SecurityError::ChannelBindingNotSupported),
        (b"y,,n=alice,r=abc", SecurityError::ChannelBindingNotSupported),
        (b"n,,n=alice,r=abc,tokenauth=true", SecurityError::DelegationTokenNotSupported),
        (b"n,,n=alice,r=abc,tokenauth=TRUE", SecurityError::DelegationTokenNotSupported),
    ];
    for (message, expected) in cases {
        let (mut server, credential) = server_for(SHA256);
        assert_eq!(&server.client_first(message, lookup(&credential)).unwrap_err(), expected);
        assert_eq!(expected.kafka_code(), 58);
    }
    let (mut server, credential) = server_for(SHA256);
    assert!(server.client_first(b"n,,n=alice,r=abc,tokenauth=false,x=1", lookup(&credential)).is_ok());
}

#[test]
fn given_malformed_client_first_messages_when_received_should_fail_without_panic() {
    let bad: &[&[u8]] = &[
        b"",
        b"n",
        b"n,",
        b"n,,",
        b"x,,n=alice,r=abc",
        b"n,b=alice,n=alice,r=abc",
        b"n,a=,n=alice,r=abc",
        b"n,,m=ext,n=alice,r=abc",
        b"n,,n=,r=abc",
        b"n,,n=al=ice,r=abc",
        b"n,,u=alice,r=abc",
        b"n,,n=alice",
        b"n,,n=alice,r=",
        b"n,,n=alice,r=a\x7fb",
        b"n,,n=alice,x=abc",
        b"n,,n=alice,r=abc,novalue",
        b"n,,n=alice,r=abc,9=x",
        b"n,,n=al\xffice,r=abc",
    ];
    for message in bad {
        let (mut server, credential) = server_for(SHA256);
        let err = server.client_first(message, lookup(&credential)).unwrap_err();
        assert!(matches!(err, SecurityError::ScramMalformed { .. }), "{:?}: {err:?}", String::from_utf8_lossy(message));
        assert!(err.to_string().starts_with("Invalid SCRAM-SHA-256 message: "), "{err}");
    }
}

#[test]
fn given_malformed_or_tampered_client_final_messages_when_received_should_fail() {
    let (_, _, good) = client_final_for(SHA256, "alice", "secret");
    let good = String::from_utf8(good.unwrap()).unwrap();
    let (prefix, proof) = good.rsplit_once(",p=").unwrap();
    let wrong_nonce = good.replace("r=client-nonceserver-nonce", "r=client-nonceserver-noncX");
    let short_nonce = good.replace("r=client-nonceserver-nonce", "r=client-nonce");
    let cases: Vec<(String, Option<SecurityError>)> = vec![
        (String::new(), None),
        (prefix.to_owned(), None),
        (format!("{prefix},p=***"), None),
        (format!("{prefix},p="), Some(SecurityError::InvalidUserCredentials)),
        (format!("{prefix},p={}", &proof[4..]), Some(SecurityError::InvalidUserCredentials)),
        (good.replacen("c=biws", "c=eSws", 1), None),
        (good.replacen("c=biws", "c=!!", 1), None),
        (good.replacen("c=biws,", "", 1), None),
        (wrong_nonce, Some(SecurityError::InvalidNonce)),
        (short_nonce, Some(SecurityError::InvalidNonce)),
        (good.replacen(",r=", ",x=", 1), None),
        (format!("{prefix},ext,p={proof}"), None),
    ];
    for (message, expected) in cases {
        let (mut server, credential) = server_for(SHA256);
        server.client_first(b"n,,n=alice,r=client-nonce", lookup(&credential)).unwrap();
        let err = server.client_final(message.as_bytes()).unwrap_err();
        match expected {
            Some(expected) => assert_eq!(err, expected, "{message}"),
            None => assert!(matches!(err, SecurityError::ScramMalformed { .. }), "{message}: {err:?}"),
        }
    }
    let (mut server, credential) = server_for(SHA256);
    server.client_first(b"n,,n=alice,r=client-nonce", lookup(&credential)).unwrap();
    // An extension parses, and being part of the AuthMessage it invalidates a proof made without it.
    let err = server.client_final(format!("{prefix},x=1,p={proof}").as_bytes()).unwrap_err();
    assert_eq!(err, SecurityError::InvalidUserCredentials);
}

#[test]
fn given_messages_out_of_order_when_received_should_fail_with_illegal_state() {
    let (mut server, credential) = server_for(SHA256);
    let err = server.client_final(b"c=biws,r=x,p=AAAA").unwrap_err();
    assert_eq!(err, SecurityError::IllegalState { state: "awaiting client-first-message" });
    assert_eq!(err.kafka_code(), 34);
    let err = server.client_first(b"n,,n=alice,r=abc", lookup(&credential)).unwrap_err();
    assert_eq!(err, SecurityError::IllegalState { state: "failed" });

    let (mut server, mut client, client_final) = client_final_for(SHA256, "alice", "secret");
    let client_final = client_final.unwrap();
    let (server_final, _) = server.client_final(&client_final).unwrap();
    assert_eq!(server.client_final(&client_final).unwrap_err(), SecurityError::IllegalState { state: "complete" });
    assert!(matches!(server.client_first(b"n,,n=alice,r=a", |_| None), Err(SecurityError::IllegalState { .. })));
    client.server_final(&server_final).unwrap();
    assert!(matches!(client.server_final(&server_final), Err(SecurityError::IllegalState { .. })));

    let mut client = ScramClient::new(SHA256, "c".into());
    assert!(matches!(client.server_first(RFC_SERVER_FIRST.as_bytes(), "pw"), Err(SecurityError::IllegalState { .. })));
}

#[test]
fn given_a_failed_client_first_when_retried_should_stay_failed() {
    let (mut server, credential) = server_for(SHA256);
    assert!(server.client_first(b"garbage", lookup(&credential)).is_err());
    let err = server.client_first(b"n,,n=alice,r=abc", lookup(&credential)).unwrap_err();
    assert_eq!(err, SecurityError::IllegalState { state: "failed" });
}

#[test]
fn given_stored_credential_unfit_for_login_when_looked_up_should_refuse() {
    let weak = ScramCredential { iterations: 1000, ..rfc_credential() };
    let mut server = ScramServer::new(SHA256, "s".into());
    let err = server.client_first(RFC_CLIENT_FIRST.as_bytes(), |_| Some(weak)).unwrap_err();
    assert_eq!(err.to_string(), "Iterations 1000 is less than the minimum 4096 for SCRAM-SHA-256");
    let other_mechanism = ScramCredential::from_password(SHA512, "pencil", b"salt", 4096).unwrap();
    let mut server = ScramServer::new(SHA256, "s".into());
    let err = server.client_first(RFC_CLIENT_FIRST.as_bytes(), |_| Some(other_mechanism)).unwrap_err();
    assert!(matches!(err, SecurityError::InvalidCredential { .. }), "{err:?}");
}

#[test]
fn given_hostile_server_messages_when_client_receives_them_should_fail() {
    let first_with = |message: &str| {
        let mut client = ScramClient::new(SHA256, RFC_CLIENT_NONCE.into());
        let _ = client.client_first("user");
        client.server_first(message.as_bytes(), "pencil")
    };
    let salt = format!(",s={RFC_SALT}");
    assert_eq!(first_with(&format!("r=other{salt},i=4096")).unwrap_err(), SecurityError::InvalidNonce);
    assert_eq!(first_with(&format!("r={RFC_CLIENT_NONCE}{salt},i=4096")).unwrap_err(), SecurityError::InvalidNonce);
    let nonce = format!("r={RFC_CLIENT_NONCE}x");
    assert!(matches!(first_with(&format!("{nonce}{salt},i=4095")), Err(SecurityError::IterationsBelowMinimum { .. })));
    let err = first_with(&format!("{nonce}{salt},i=16385")).unwrap_err();
    assert_eq!(err.kafka_code(), 93);
    for bad in ["", "m=x", &nonce, &format!("{nonce},s=,i=4096"), &format!("{nonce}{salt},i=-1")] {
        assert!(matches!(first_with(bad), Err(SecurityError::ScramMalformed { .. })), "{bad}");
    }

    let mut client = ScramClient::new(SHA256, RFC_CLIENT_NONCE.into());
    let _ = client.client_first("user");
    client.server_first(RFC_SERVER_FIRST.as_bytes(), "pencil").unwrap();
    let err = client.server_final(b"e=invalid-proof").unwrap_err();
    assert_eq!(err, SecurityError::ScramServerError { error: "invalid-proof".into() });
}

#[test]
fn given_credentials_when_stored_as_strings_should_round_trip_in_kafkas_form() {
    let credential = rfc_credential();
    let text = credential.to_storage_string();
    assert!(text.starts_with(&format!("salt={RFC_SALT},stored_key=")), "{text}");
    assert!(text.ends_with(",iterations=4096"));
    assert_eq!(ScramCredential::from_storage_string(SHA256, &text).unwrap(), credential);
    let reordered: Vec<&str> = text.split(',').rev().collect();
    assert_eq!(ScramCredential::from_storage_string(SHA256, &reordered.join(",")).unwrap(), credential);
    let shown = format!("{credential:?}");
    assert!(!shown.contains("stored_key:") && shown.contains("iterations: 4096"), "{shown}");
}

#[test]
fn given_broken_storage_strings_when_parsed_should_refuse_them() {
    let text = rfc_credential().to_storage_string();
    let broken = [
        String::new(),
        text.replace(",iterations=4096", ""),
        format!("{text},iterations=4096"),
        format!("{text},extra=1"),
        text.replace("iterations=4096", "iterations=many"),
        text.replace("iterations=4096", "iterations=0"),
        text.replace("salt=", "salt=!"),
        text.replace(&format!("salt={RFC_SALT}"), "salt="),
        text.replace(",stored_key=", ",stored_key"),
    ];
    for bad in &broken {
        let err = ScramCredential::from_storage_string(SHA256, bad).unwrap_err();
        assert!(matches!(err, SecurityError::InvalidCredential { .. }), "{bad}: {err:?}");
    }
    assert!(ScramCredential::from_storage_string(SHA512, &text).is_err(), "SHA-256 keys are too short for SHA-512");
}

#[test]
fn given_salted_password_when_credential_is_made_should_match_from_password() {
    for mechanism in ScramMechanism::ALL {
        let salted = mechanism.salted_password(b"pw", b"salt", 8192);
        let from_salted = ScramCredential::from_salted_password(mechanism, &salted, b"salt", 8192).unwrap();
        assert_eq!(from_salted, ScramCredential::from_password(mechanism, "pw", b"salt", 8192).unwrap());
        let err = ScramCredential::from_salted_password(mechanism, &salted[1..], b"salt", 8192).unwrap_err();
        assert!(matches!(err, SecurityError::UnacceptableCredential { .. }));
    }
}

#[test]
fn given_new_credentials_when_iterations_or_salt_are_out_of_bounds_should_refuse_with_93() {
    for (iterations, salt) in [(4095, &b"s"[..]), (16385, b"s"), (0, b"s"), (4096, b"")] {
        let err = ScramCredential::from_password(SHA256, "pw", salt, iterations).unwrap_err();
        assert_eq!(err.kafka_code(), 93, "{iterations} {salt:?}");
    }
    assert!(ScramCredential::from_password(SHA512, "pw", b"s", 16384).is_ok());
    assert_eq!(
        ScramCredential::from_password(SHA256, "pw", b"s", 1).unwrap_err().to_string(),
        "Too few iterations for SCRAM-SHA-256: 1 (allowed 4096..=16384)"
    );
}

#[test]
fn given_mechanisms_when_named_or_coded_should_match_kafka() {
    assert_eq!(ScramMechanism::from_name("SCRAM-SHA-256"), Some(SHA256));
    assert_eq!(ScramMechanism::from_name("SCRAM-SHA-512"), Some(SHA512));
    assert_eq!(ScramMechanism::from_name("SCRAM-SHA-1"), None);
    assert_eq!((SHA256.type_code(), SHA512.type_code()), (1, 2));
    assert_eq!(ScramMechanism::from_type_code(2), Some(SHA512));
    assert_eq!(ScramMechanism::from_type_code(0), None);
    assert_eq!((SHA512.min_iterations(), SHA512.max_iterations()), (4096, 16384));
}

#[test]
fn given_random_bytes_when_made_a_nonce_should_be_printable_without_commas() {
    let nonce = nonce_from_bytes(&[0xff, 0xfb, 0x00, 0x3e, 0x3f, 0x10, 0x20, 0x30, 0x40]);
    assert!(nonce.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b','), "{nonce}");
    let _ = ScramServer::new(SHA256, nonce);
}
