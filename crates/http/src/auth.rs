//! Who may use the admin API: the users of `console.users` (`name:password:role`,
//! comma-separated; the password plain, `sha256:<hex>` or `argon2:<PHC string>`; role
//! `admin` or `viewer`), or, when none are configured, an `admin` whose random password
//! the broker prints once at its first start and keeps only as a SHA-256 hash in the
//! data dir (`console-admin.sha256`). A viewer reads everything and changes nothing.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::Path;

use argon2::{Argon2, PasswordHash, PasswordVerifier};
use rand::Rng;
use sha2::{Digest, Sha256};

/// The file that keeps the generated admin password's hash.
pub const GENERATED_ADMIN_FILE: &str = "console-admin.sha256";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Viewer,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Viewer => "viewer",
        }
    }
}

#[derive(Clone, PartialEq, Eq)]
enum Secret {
    Plain(String),
    Sha256([u8; 32]),
    Argon2(String),
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)") // never a password in a log line
    }
}

impl Secret {
    fn parse(text: &str) -> Result<Self, String> {
        if let Some(hex) = text.strip_prefix("sha256:") {
            return decode_hex32(hex).map(Self::Sha256).ok_or_else(|| "a sha256: hash needs 64 hex digits".into());
        }
        if let Some(phc) = text.strip_prefix("argon2:") {
            PasswordHash::new(phc).map_err(|e| format!("an argon2: hash must be a PHC string ({e})"))?;
            return Ok(Self::Argon2(phc.to_owned()));
        }
        Ok(Self::Plain(text.to_owned()))
    }

    fn matches(&self, password: &str) -> bool {
        match self {
            Self::Plain(p) => constant_time_eq(p.as_bytes(), password.as_bytes()),
            Self::Sha256(hash) => constant_time_eq(hash, &Sha256::digest(password.as_bytes())),
            Self::Argon2(phc) => PasswordHash::new(phc)
                .is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok()),
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn decode_hex32(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn encode_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The users allowed in, by name.
#[derive(Debug, Clone, Default)]
pub struct Users(BTreeMap<String, (Secret, Role)>);

impl Users {
    /// `console.users`: `name:password:role,...`. An empty value means no users.
    pub fn parse(value: &str) -> Result<Self, String> {
        let mut users = BTreeMap::new();
        for entry in entries(value) {
            let entry = entry.as_str();
            let (name, rest) = entry.split_once(':').ok_or_else(|| format!("'{entry}' is not name:password:role"))?;
            let (secret, role) = rest.rsplit_once(':').ok_or_else(|| format!("'{name}' has no role"))?;
            let role = match role {
                "admin" => Role::Admin,
                "viewer" => Role::Viewer,
                other => return Err(format!("user '{name}' has role '{other}': use admin or viewer")),
            };
            if name.is_empty() || secret.is_empty() {
                return Err(format!("'{entry}' needs a name and a password"));
            }
            let secret = Secret::parse(secret).map_err(|e| format!("user '{name}': {e}"))?;
            let _ = users.insert(name.to_owned(), (secret, role));
        }
        Ok(Self(users))
    }

    /// The configured users, or the generated admin: read from `data_dir`, or made now.
    /// Returns the new password when one was made (to print once).
    pub fn load_or_generate(configured: &str, data_dir: &Path) -> Result<(Self, Option<String>), String> {
        let users = Self::parse(configured).map_err(|e| format!("console.users: {e}"))?;
        if !users.0.is_empty() {
            return Ok((users, None));
        }
        let path = data_dir.join(GENERATED_ADMIN_FILE);
        if let Ok(text) = std::fs::read_to_string(&path) {
            let hash = decode_hex32(&text)
                .ok_or_else(|| format!("{} is damaged: delete it for a new password", path.display()))?;
            return Ok((Self::admin(Secret::Sha256(hash)), None));
        }
        let password: String =
            rand::thread_rng().sample_iter(&rand::distributions::Alphanumeric).take(24).map(char::from).collect();
        let hash = Sha256::digest(password.as_bytes());
        write_private(&path, &encode_hex(&hash)).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok((Self::admin(Secret::Sha256(hash.into())), Some(password)))
    }

    fn admin(secret: Secret) -> Self {
        Self(BTreeMap::from([("admin".to_owned(), (secret, Role::Admin))]))
    }

    /// The role of `name` if `password` is theirs.
    pub fn verify(&self, name: &str, password: &str) -> Option<Role> {
        let (secret, role) = self.0.get(name)?;
        secret.matches(password).then_some(*role)
    }
}

/// The comma-separated entries, keeping the commas inside an argon2 PHC string
/// (`m=19456,t=2,p=1`): a piece starts a new entry only if it begins with a user name
/// and a colon (names have no `$` or `=`).
fn entries(value: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for piece in value.split(',') {
        let starts_entry = piece.split_once(':').is_some_and(|(name, _)| !name.contains(['$', '=']));
        match out.last_mut() {
            Some(last) if !starts_entry => {
                last.push(',');
                last.push_str(piece);
            }
            _ => out.push(piece.to_owned()),
        }
    }
    out.into_iter().map(|e| e.trim().to_owned()).filter(|e| !e.is_empty()).collect()
}

/// Creates `path` readable by its owner only (the hash still should not be world-readable).
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
    let mut options = std::fs::OpenOptions::new();
    let _ = options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let _ = options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_configured_users_should_check_passwords_and_roles() {
        let sha = encode_hex(&Sha256::digest(b"s3cret"));
        let users = Users::parse(&format!("alice:pw:admin, bob:sha256:{sha}:viewer")).unwrap();
        assert_eq!(users.verify("alice", "pw"), Some(Role::Admin));
        assert_eq!(users.verify("alice", "PW"), None);
        assert_eq!(users.verify("bob", "s3cret"), Some(Role::Viewer));
        assert_eq!(users.verify("carol", "pw"), None);
    }

    #[test]
    fn given_an_argon2_hash_should_verify_it() {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let salt = SaltString::from_b64("c2FsdHNhbHRzYWx0").unwrap();
        let phc = Argon2::default().hash_password(b"horse", &salt).unwrap().to_string();
        let users = Users::parse(&format!("ops:argon2:{phc}:admin,dev:pw:viewer")).unwrap();
        assert_eq!(users.verify("dev", "pw"), Some(Role::Viewer));
        assert_eq!(users.verify("ops", "horse"), Some(Role::Admin));
        assert_eq!(users.verify("ops", "battery"), None);
    }

    #[test]
    fn given_bad_entries_should_say_why() {
        assert!(Users::parse("alice:pw:root").unwrap_err().contains("admin or viewer"));
        assert!(Users::parse("alice").unwrap_err().contains("name:password:role"));
        assert!(Users::parse("a:sha256:abc:admin").unwrap_err().contains("64 hex"));
    }

    #[test]
    fn given_no_users_should_generate_an_admin_once() {
        let dir = tempfile::tempdir().unwrap();
        let (users, password) = Users::load_or_generate("", dir.path()).unwrap();
        let password = password.expect("a new password");
        assert_eq!(users.verify("admin", &password), Some(Role::Admin));
        let stored = std::fs::read_to_string(dir.path().join(GENERATED_ADMIN_FILE)).unwrap();
        assert!(!stored.contains(&password), "only the hash is kept");
        let (again, none) = Users::load_or_generate("", dir.path()).unwrap();
        assert!(none.is_none(), "printed once");
        assert_eq!(again.verify("admin", &password), Some(Role::Admin));
    }
}
