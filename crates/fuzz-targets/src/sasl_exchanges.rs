//! Target `sasl_exchanges`: what a client can send before it is authenticated, and the
//! JAAS text an operator writes. One input feeds the SASL/PLAIN server, the JAAS parser
//! and a SCRAM server's `client_first` then `client_final`.
//!
//! ```text
//!  flags u8     bit 0 SCRAM-SHA-512 (else -256), bit 1 guided SCRAM, bit 2 wrong password,
//!               bit 3 unknown user, bit 4 mutate client-first (else client-final)
//!  plain        u16 length + bytes: a PLAIN message
//!  jaas         u16 length + bytes: a JAAS config value (lossy UTF-8)
//!  raw SCRAM    u16 length + client-first, u16 length + client-final
//!  guided SCRAM a real ScramClient writes both messages; then u16 position, u8 bytes
//!               to delete, u8 length + bytes to insert there
//! ```
//!
//! Raw mode reaches the parsers; guided mode reaches proof checking, which random bytes
//! never would. Invariants checked: nothing panics; a PLAIN or SCRAM success is only ever
//! for a known user with the right password; an untouched guided exchange with the right
//! password succeeds and the client accepts the server's signature; a parsed JAAS config
//! written back out parses to the same config.

use std::sync::OnceLock;

use gregor_security::{jaas, plain, ScramClient, ScramCredential, ScramMechanism, ScramServer};

use crate::input::Input;

const SCRAM_USER: &str = "user";
const SCRAM_PASSWORD: &str = "pencil";
// RFC 7677's salt and server nonce, so the RFC's own messages succeed in raw mode.
const SALT: [u8; 16] = [0x5b, 0x6d, 0x99, 0x68, 0x9d, 0x12, 0x35, 0x8e, 0xec, 0xa0, 0x4b, 0x14, 0x12, 0x36, 0xfa, 0x81];
const SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
const CLIENT_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
const MAX_MESSAGE: usize = 1024;

const SHA512: u8 = 1;
const GUIDED: u8 = 2;
const WRONG_PASSWORD: u8 = 4;
const UNKNOWN_USER: u8 = 8;
const MUTATE_FIRST: u8 = 16;

/// Runs one input through PLAIN, JAAS and SCRAM; panics only on a broken invariant.
pub fn sasl_exchanges(data: &[u8]) {
    let mut input = Input::new(data);
    let flags = input.u8();
    check_plain(input.bytes(MAX_MESSAGE));
    check_jaas(&String::from_utf8_lossy(input.bytes(MAX_MESSAGE)));
    let mechanism = if flags & SHA512 != 0 { ScramMechanism::ScramSha512 } else { ScramMechanism::ScramSha256 };
    if flags & GUIDED == 0 {
        let client_first = input.bytes(MAX_MESSAGE);
        let client_final = input.bytes(MAX_MESSAGE);
        let _ = scram_server_run(mechanism, client_first, |_| client_final.to_vec());
    } else {
        check_guided_scram(mechanism, flags, &mut input);
    }
}

fn plain_users() -> &'static plain::PlainUsers {
    static USERS: OnceLock<plain::PlainUsers> = OnceLock::new();
    USERS.get_or_init(|| {
        let mut users = plain::PlainUsers::default();
        users.insert("admin", plain::PlainPassword::Clear("admin-secret".into()));
        users.insert_hashed("carol", &plain::PlainPassword::hashed_entry("carol-secret")).unwrap();
        users
    })
}

fn check_plain(message: &[u8]) {
    if let Ok(user) = plain::authenticate(message, plain_users()) {
        let password = message.rsplit(|&b| b == 0).next().unwrap_or_default();
        let expected: &[u8] = if user == "admin" { b"admin-secret" } else { b"carol-secret" };
        assert_eq!(password, expected, "PLAIN accepted {user} with a wrong password");
    }
}

fn check_jaas(text: &str) {
    let Ok(config) = jaas::parse(text) else { return };
    let _ = plain::PlainUsers::from_jaas(&config);
    let written = write_jaas(&config);
    assert_eq!(jaas::parse(&written).as_ref(), Ok(&config), "{text:?} written back as {written:?}");
}

/// The config as JAAS text: every key and value quoted, `\` and `"` escaped.
fn write_jaas(config: &jaas::JaasConfig) -> String {
    let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let options: Vec<String> = config.options.iter().map(|(k, v)| format!("{}={}", quote(k), quote(v))).collect();
    format!("{} {:?} {};", config.login_module, config.control_flag, options.join(" "))
}

fn credential(mechanism: ScramMechanism) -> ScramCredential {
    static CREDENTIALS: OnceLock<[ScramCredential; 2]> = OnceLock::new();
    let [sha256, sha512] = CREDENTIALS.get_or_init(|| {
        ScramMechanism::ALL.map(|m| ScramCredential::from_password(m, SCRAM_PASSWORD, &SALT, 4096).unwrap())
    });
    match mechanism {
        ScramMechanism::ScramSha256 => sha256.clone(),
        ScramMechanism::ScramSha512 => sha512.clone(),
    }
}

/// One server exchange; `client_final` sees the server-first-message. The server's
/// final message and user on success.
fn scram_server_run(
    mechanism: ScramMechanism,
    client_first: &[u8],
    client_final: impl FnOnce(&[u8]) -> Vec<u8>,
) -> Option<(Vec<u8>, String)> {
    let mut server = ScramServer::new(mechanism, SERVER_NONCE.into());
    let server_first = server.client_first(client_first, |user| (user == SCRAM_USER).then(|| credential(mechanism)));
    let outcome = server.client_final(&client_final(server_first.as_deref().ok()?)).ok();
    assert_eq!(outcome.is_some(), server.is_complete());
    assert!(server.client_final(b"c=biws,r=x,p=AAAA").is_err(), "a finished exchange takes no more messages");
    let (server_final, user) = outcome?;
    assert_eq!(user, SCRAM_USER, "SCRAM accepted a user without a credential");
    Some((server_final, user))
}

fn check_guided_scram(mechanism: ScramMechanism, flags: u8, input: &mut Input<'_>) {
    let position = usize::from(input.u16());
    let delete = usize::from(input.u8() % 9);
    let insert = input.bytes(255);
    let edit = |message: &mut Vec<u8>| {
        let at = position.min(message.len());
        let end = (at + delete).min(message.len());
        message.splice(at..end, insert.iter().copied());
    };
    let user = if flags & UNKNOWN_USER != 0 { "mallory" } else { SCRAM_USER };
    let password = if flags & WRONG_PASSWORD != 0 { "pencil!" } else { SCRAM_PASSWORD };
    let mut client = ScramClient::new(mechanism, CLIENT_NONCE.into());
    let mut client_first = client.client_first(user);
    let untouched = delete == 0 && insert.is_empty();
    if flags & MUTATE_FIRST != 0 {
        edit(&mut client_first);
    }
    let outcome = scram_server_run(mechanism, &client_first, |server_first| {
        let mut client_final = client.server_first(server_first, password).unwrap_or_default();
        if flags & MUTATE_FIRST == 0 {
            edit(&mut client_final);
        }
        client_final
    });
    let honest = user == SCRAM_USER && password == SCRAM_PASSWORD;
    if untouched {
        assert_eq!(outcome.is_some(), honest, "an untouched exchange succeeds exactly when the password is right");
    }
    if let Some((server_final, _)) = outcome {
        assert!(honest, "SCRAM accepted a wrong password");
        client.server_final(&server_final).expect("the client accepts the signature of a server that accepted it");
    }
}

/// Seeds that reach each path: the RFC 7677 exchange in raw mode, guided exchanges of
/// both mechanisms, a wrong password, an unknown user, delegation tokens, and a valid
/// PLAIN message and Kafka's JAAS example in each.
pub(crate) fn seeds() -> Vec<(String, Vec<u8>)> {
    let rfc_first = format!("n,,n=user,r={CLIENT_NONCE}");
    let rfc_final = format!("c=biws,r={CLIENT_NONCE}{SERVER_NONCE},p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
    let raw = |flags: u8, first: &str, last: &str| seed(flags, &[first.as_bytes(), last.as_bytes()], &[]);
    let guided = |flags: u8, edit: &[u8]| seed(flags | GUIDED, &[], edit);
    vec![
        ("rfc7677-raw".into(), raw(0, &rfc_first, &rfc_final)),
        ("tokenauth-raw".into(), raw(SHA512, &format!("{rfc_first},tokenauth=true"), "")),
        ("guided-sha256".into(), guided(0, &[0, 0, 0, 0])),
        ("guided-sha512".into(), guided(SHA512, &[0, 0, 0, 0])),
        ("guided-wrong-password".into(), guided(WRONG_PASSWORD, &[0, 0, 0, 0])),
        ("guided-unknown-user".into(), guided(SHA512 | UNKNOWN_USER, &[0, 0, 0, 0])),
        ("guided-edit-final-nonce".into(), guided(0, &[0, 30, 1, 1, b'X'])),
        ("guided-edit-first-authzid".into(), guided(MUTATE_FIRST, &[0, 2, 0, 6, b'a', b'=', b'u', b's', b'e', b'r'])),
    ]
}

fn seed(flags: u8, scram: &[&[u8]], edit: &[u8]) -> Vec<u8> {
    let jaas = r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";"#;
    let mut out = vec![flags];
    for chunk in [&b"\0admin\0admin-secret"[..], jaas.as_bytes()].iter().chain(scram) {
        let len = u16::try_from(chunk.len()).expect("a seed chunk fits a u16");
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(edit);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_the_rfc_seed_when_run_raw_should_authenticate() {
        let rfc_first = format!("n,,n=user,r={CLIENT_NONCE}");
        let rfc_final = format!("c=biws,r={CLIENT_NONCE}{SERVER_NONCE},p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
        let outcome = scram_server_run(ScramMechanism::ScramSha256, rfc_first.as_bytes(), |_| rfc_final.into_bytes());
        assert_eq!(outcome.map(|(_, user)| user).as_deref(), Some(SCRAM_USER));
    }

    #[test]
    fn given_every_seed_when_run_should_pass() {
        for (_, seed) in seeds() {
            sasl_exchanges(&seed);
        }
    }

    #[test]
    fn given_kafkas_jaas_example_when_written_back_should_parse_alike() {
        check_jaas(r#"M required a="x\"y\\z" b=plain c='q';"#);
    }
}
