//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677) as Kafka's `ScramSaslServer` and
//! `ScramSaslClient` speak them: no channel binding, no SASLprep (Kafka hashes the
//! password's UTF-8 bytes as they are), iterations bounded by Kafka's 4096..=16384.
//!
//! ```text
//!  client                                   server
//!  client-first  n,,n=user,r=cnonce   ──►   lookup(user) → ScramCredential
//!                                     ◄──   server-first  r=cnonce+snonce,s=salt,i=N
//!  client-final  c=biws,r=..,p=proof  ──►   check nonce, verify proof
//!                                     ◄──   server-final  v=server-signature
//! ```

mod client;
mod credential;
mod messages;
mod server;
#[cfg(test)]
mod tests;

use std::fmt;

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

pub use client::ScramClient;
pub use credential::ScramCredential;
pub use server::{ScramServer, FAKE_SALT_LEN};

/// A SCRAM mechanism Gregor serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScramMechanism {
    ScramSha256,
    ScramSha512,
}

impl fmt::Display for ScramMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl ScramMechanism {
    pub const ALL: [ScramMechanism; 2] = [Self::ScramSha256, Self::ScramSha512];

    /// The SASL mechanism name.
    pub fn name(self) -> &'static str {
        match self {
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Kafka's mechanism type in DescribeUserScramCredentials and
    /// AlterUserScramCredentials (0 is Kafka's UNKNOWN).
    pub fn type_code(self) -> i8 {
        match self {
            Self::ScramSha256 => 1,
            Self::ScramSha512 => 2,
        }
    }

    pub fn from_type_code(code: i8) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.type_code() == code)
    }

    /// The fewest iterations Kafka accepts (for new credentials and at login).
    pub fn min_iterations(self) -> u32 {
        4096
    }

    /// The most iterations AlterUserScramCredentials accepts; it bounds the work one login
    /// can cost the broker and a client.
    pub fn max_iterations(self) -> u32 {
        16384
    }

    /// Bytes of the hash: the length of salted passwords, keys, proofs and signatures.
    pub fn hash_len(self) -> usize {
        match self {
            Self::ScramSha256 => 32,
            Self::ScramSha512 => 64,
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::ScramSha256 => Sha256::digest(data).to_vec(),
            Self::ScramSha512 => Sha512::digest(data).to_vec(),
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
            // HMAC pads or hashes any key to its block size, so no key is refused.
            let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key).expect("HMAC accepts every key length");
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        match self {
            Self::ScramSha256 => run::<Hmac<Sha256>>(key, data),
            Self::ScramSha512 => run::<Hmac<Sha512>>(key, data),
        }
    }

    /// RFC 5802's `Hi()`: PBKDF2 with this HMAC. Clients send it in
    /// AlterUserScramCredentials, so the broker never sees the password.
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut out = vec![0u8; self.hash_len()];
        match self {
            Self::ScramSha256 => pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out),
            Self::ScramSha512 => pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out),
        }
        out
    }

    fn client_key(self, salted_password: &[u8]) -> Vec<u8> {
        self.hmac(salted_password, b"Client Key")
    }

    fn server_key(self, salted_password: &[u8]) -> Vec<u8> {
        self.hmac(salted_password, b"Server Key")
    }
}

/// A nonce from caller-supplied random bytes (18 or more from a CSPRNG is plenty):
/// base64, which is printable and never contains `,`, as RFC 5802 requires of nonces.
pub fn nonce_from_bytes(random: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(random)
}

/// Standard base64 that, like Java's decoder, does not insist on padding.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

fn xor(left: &[u8], right: &[u8]) -> Vec<u8> {
    left.iter().zip(right).map(|(a, b)| a ^ b).collect()
}
