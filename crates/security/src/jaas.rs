//! Kafka's JAAS config values, as `sasl.jaas.config` and
//! `listener.name.<listener>.<mechanism>.sasl.jaas.config` hold them in server.properties:
//!
//! ```text
//! org.apache.kafka.common.security.plain.PlainLoginModule required
//!     username="admin" password="admin-secret" user_admin="admin-secret";
//! ```
//!
//! The grammar is what Kafka's `JaasConfig` accepts through Java's `StreamTokenizer`:
//! `<class> <flag> (<key>=<value>)* ;` with `//` and `/* */` comments, values quoted with
//! `"` or `'` (Java escapes) or bare words. Kafka requires the `;` and exactly one login
//! module per property; so does this parser, so a file that works with Kafka works here
//! and one that Kafka refuses is refused with Kafka's message.

use std::collections::BTreeMap;
use std::fmt;
use std::iter::Peekable;
use std::str::CharIndices;

use crate::error::{Result, SecurityError};

/// How a login module's result counts, as JAAS defines it. Gregor only records it: with
/// one module per property every flag means "this module decides".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlFlag {
    Required,
    Requisite,
    Sufficient,
    Optional,
}

impl ControlFlag {
    /// The flag a word names, case-insensitively as Kafka reads it.
    fn parse(word: &str) -> Result<Self> {
        match word.to_ascii_lowercase().as_str() {
            "required" => Ok(Self::Required),
            "requisite" => Ok(Self::Requisite),
            "sufficient" => Ok(Self::Sufficient),
            "optional" => Ok(Self::Optional),
            _ => Err(SecurityError::JaasInvalidControlFlag { flag: word.to_owned() }),
        }
    }
}

/// One parsed JAAS entry. `Debug` shows option names only: the values are passwords.
#[derive(Clone, PartialEq, Eq)]
pub struct JaasConfig {
    /// The login module class, e.g. `org.apache.kafka.common.security.plain.PlainLoginModule`.
    pub login_module: String,
    pub control_flag: ControlFlag,
    /// Options in key order; a repeated key keeps its last value, as Kafka's map does.
    pub options: BTreeMap<String, String>,
}

impl fmt::Debug for JaasConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JaasConfig")
            .field("login_module", &self.login_module)
            .field("control_flag", &self.control_flag)
            .field("option_keys", &self.options.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl JaasConfig {
    /// The value of option `key`.
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options.get(key).map(String::as_str)
    }
}

/// Parses one JAAS config value holding exactly one login module.
pub fn parse(text: &str) -> Result<JaasConfig> {
    let mut tokens = Tokenizer::new(text);
    let mut entries = Vec::new();
    while let Some(entry) = parse_entry(&mut tokens)? {
        entries.push(entry);
    }
    if entries.len() != 1 {
        return Err(SecurityError::JaasModuleCount { count: entries.len() });
    }
    Ok(entries.remove(0))
}

/// The PLAIN users a `PlainLoginModule` entry declares: option `user_<name>="<password>"`
/// for each. Kafka's PlainServerCallbackHandler reads them the same way.
pub fn plain_users(config: &JaasConfig) -> BTreeMap<String, String> {
    config
        .options
        .iter()
        .filter_map(|(key, value)| key.strip_prefix("user_").map(|name| (name.to_owned(), value.clone())))
        .filter(|(name, _)| !name.is_empty())
        .collect()
}

/// One `<class> <flag> options ;`, or `None` at the end of the text.
fn parse_entry(tokens: &mut Tokenizer<'_>) -> Result<Option<JaasConfig>> {
    let login_module = match tokens.next_token()? {
        Token::End => return Ok(None),
        Token::Word(word) => word,
        other => return Err(tokens.unexpected(&other)),
    };
    let control_flag = match tokens.next_token()? {
        Token::End => return Err(SecurityError::JaasControlFlagMissing),
        Token::Word(word) => ControlFlag::parse(&word)?,
        other => return Err(tokens.unexpected(&other)),
    };
    let mut options = BTreeMap::new();
    loop {
        let key = match tokens.next_token()? {
            Token::Semicolon => break,
            Token::End => return Err(SecurityError::JaasNotTerminated),
            Token::Word(key) | Token::Quoted(key) => key,
            other @ Token::Equals => return Err(tokens.unexpected(&other)),
        };
        let value = parse_value(tokens, &key)?;
        options.insert(key, value);
    }
    Ok(Some(JaasConfig { login_module, control_flag, options }))
}

/// `= value` after `key`.
fn parse_value(tokens: &mut Tokenizer<'_>, key: &str) -> Result<String> {
    let missing = || SecurityError::JaasValueMissing { key: key.to_owned() };
    if tokens.next_token()? != Token::Equals {
        return Err(missing());
    }
    match tokens.next_token()? {
        Token::Word(value) | Token::Quoted(value) => Ok(value),
        _ => Err(missing()),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Equals,
    Semicolon,
    End,
}

/// Java `StreamTokenizer` as Kafka configures it, minus its number parsing (a bare `42`
/// is a word here, where Kafka would say "Value not specified").
struct Tokenizer<'a> {
    chars: Peekable<CharIndices<'a>>,
    /// Byte offset where the last token started, for error messages.
    start: usize,
}

impl<'a> Tokenizer<'a> {
    fn new(text: &'a str) -> Self {
        Self { chars: text.char_indices().peekable(), start: 0 }
    }

    fn unexpected(&self, token: &Token) -> SecurityError {
        let found = match token {
            Token::Equals => '=',
            Token::Semicolon => ';',
            Token::Quoted(_) => '"',
            Token::Word(word) => word.chars().next().unwrap_or(' '),
            Token::End => ' ',
        };
        SecurityError::JaasUnexpected { found, position: self.start }
    }

    fn next_token(&mut self) -> Result<Token> {
        self.skip_blanks_and_comments()?;
        let Some(&(at, c)) = self.chars.peek() else { return Ok(Token::End) };
        self.start = at;
        match c {
            '=' | ';' => {
                self.chars.next();
                Ok(if c == '=' { Token::Equals } else { Token::Semicolon })
            }
            '"' | '\'' => self.quoted(at, c).map(Token::Quoted),
            c if is_word_char(c) => Ok(Token::Word(self.word())),
            found => Err(SecurityError::JaasUnexpected { found, position: at }),
        }
    }

    fn skip_blanks_and_comments(&mut self) -> Result<()> {
        while let Some(&(at, c)) = self.chars.peek() {
            if c.is_whitespace() || c.is_control() {
                self.chars.next();
            } else if c == '/' && self.comment(at)? {
                continue;
            } else {
                break;
            }
        }
        Ok(())
    }

    /// Skips a `//` or `/* */` comment at `at`; false (nothing consumed) if `/` starts none.
    fn comment(&mut self, at: usize) -> Result<bool> {
        let mut ahead = self.chars.clone();
        ahead.next();
        let block = match ahead.peek() {
            Some((_, '/')) => false,
            Some((_, '*')) => true,
            _ => return Ok(false),
        };
        ahead.next();
        self.chars = ahead;
        if !block {
            self.chars.by_ref().take_while(|&(_, c)| c != '\n').for_each(drop);
            return Ok(true);
        }
        let mut previous = ' ';
        for (_, c) in self.chars.by_ref() {
            if previous == '*' && c == '/' {
                return Ok(true);
            }
            previous = c;
        }
        Err(SecurityError::JaasUnterminated { what: "comment", position: at })
    }

    fn word(&mut self) -> String {
        let mut word = String::new();
        while let Some(&(_, c)) = self.chars.peek() {
            if !is_word_char(c) {
                break;
            }
            word.push(c);
            self.chars.next();
        }
        word
    }

    /// A value between `quote`s, with Java's escapes.
    fn quoted(&mut self, at: usize, quote: char) -> Result<String> {
        self.chars.next();
        let mut value = String::new();
        while let Some((_, c)) = self.chars.next() {
            match c {
                c if c == quote => return Ok(value),
                '\\' => match self.escape() {
                    Some(c) => value.push(c),
                    None => break,
                },
                c => value.push(c),
            }
        }
        Err(SecurityError::JaasUnterminated { what: "quoted value", position: at })
    }

    /// The character a `\` escape stands for; `None` at the end of the text.
    fn escape(&mut self) -> Option<char> {
        let (_, c) = self.chars.next()?;
        Some(match c {
            'a' => '\u{7}',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'v' => '\u{b}',
            '0'..='7' => self.octal(c),
            other => other,
        })
    }

    /// Java's octal escape: up to three digits, the third only if the first is 0-3.
    fn octal(&mut self, first: char) -> char {
        let mut value = first.to_digit(8).unwrap_or(0);
        let digits = if first <= '3' { 2 } else { 1 };
        for _ in 0..digits {
            match self.chars.peek().and_then(|&(_, c)| c.to_digit(8)) {
                Some(digit) => {
                    value = value * 8 + digit;
                    self.chars.next();
                }
                None => break,
            }
        }
        char::from_u32(value).unwrap_or('\u{fffd}')
    }
}

/// Characters of a bare word: Java's defaults (letters, digits, `.`, `-`) plus the `_`
/// and `$` Kafka adds, so class names and simple values need no quotes.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '$' | '-' | '.')
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: &str = r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";"#;

    #[test]
    fn given_kafkas_plain_example_when_parsed_should_give_module_flag_options_and_users() {
        let config = parse(PLAIN).unwrap();
        assert_eq!(config.login_module, "org.apache.kafka.common.security.plain.PlainLoginModule");
        assert_eq!(config.control_flag, ControlFlag::Required);
        assert_eq!(config.option("username"), Some("admin"));
        assert_eq!(config.option("password"), Some("admin-secret"));
        assert_eq!(config.options.len(), 4);
        let users = plain_users(&config);
        assert_eq!(users.len(), 2);
        assert_eq!(users["admin"], "admin-secret");
        assert_eq!(users["alice"], "alice-secret");
    }

    #[test]
    fn given_scram_module_with_comments_newlines_and_bare_values_when_parsed_should_read_them() {
        let text = "// broker credentials\n org.apache.kafka.common.security.scram.ScramLoginModule\n\
                    /* flag */ REQUIRED\n username=admin password='x' tokenauth=true iterations=8192 ;  ";
        let config = parse(text).unwrap();
        assert_eq!(config.login_module, "org.apache.kafka.common.security.scram.ScramLoginModule");
        assert_eq!(config.control_flag, ControlFlag::Required);
        assert_eq!(config.option("username"), Some("admin"));
        assert_eq!(config.option("password"), Some("x"));
        assert_eq!(config.option("iterations"), Some("8192"));
    }

    #[test]
    fn given_escapes_in_quoted_values_when_parsed_should_unescape_as_java() {
        let config = parse(r#"M optional a="q\"uote" b='it\'s' c="back\\slash" d="\101\tz" e="";"#).unwrap();
        assert_eq!(config.control_flag, ControlFlag::Optional);
        assert_eq!(config.option("a"), Some("q\"uote"));
        assert_eq!(config.option("b"), Some("it's"));
        assert_eq!(config.option("c"), Some("back\\slash"));
        assert_eq!(config.option("d"), Some("A\tz"));
        assert_eq!(config.option("e"), Some(""));
        assert_eq!(parse("M sufficient k=\"ünï ;=\";").unwrap().option("k"), Some("ünï ;="));
        assert_eq!(parse("M requisite k=1 k=2;").unwrap().option("k"), Some("2"));
    }

    #[test]
    fn given_broken_configs_when_parsed_should_name_the_problem() {
        use SecurityError::*;
        let cases: &[(&str, SecurityError)] = &[
            ("", JaasModuleCount { count: 0 }),
            ("  // nothing\n", JaasModuleCount { count: 0 }),
            ("A required; B required;", JaasModuleCount { count: 2 }),
            ("A", JaasControlFlagMissing),
            ("A mandatory;", JaasInvalidControlFlag { flag: "mandatory".into() }),
            ("A required user=\"x\"", JaasNotTerminated),
            ("A required user;", JaasValueMissing { key: "user".into() }),
            ("A required user=;", JaasValueMissing { key: "user".into() }),
            ("A required user=", JaasValueMissing { key: "user".into() }),
            ("A required =x;", JaasUnexpected { found: '=', position: 11 }),
            ("; A required;", JaasUnexpected { found: ';', position: 0 }),
            ("A required k=\"open;", JaasUnterminated { what: "quoted value", position: 13 }),
            ("A required k=\"open\\", JaasUnterminated { what: "quoted value", position: 13 }),
            ("A required /* never closed", JaasUnterminated { what: "comment", position: 11 }),
            ("A required k=@;", JaasUnexpected { found: '@', position: 13 }),
            ("A required k=v / ;", JaasUnexpected { found: '/', position: 15 }),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text).as_ref(), Err(expected), "{text:?}");
        }
    }

    #[test]
    fn given_user_options_when_listing_plain_users_should_skip_other_and_empty_names() {
        let config = parse(r#"M required user_="nobody" username="u" user_bob="b";"#).unwrap();
        assert_eq!(plain_users(&config).into_iter().collect::<Vec<_>>(), [("bob".to_owned(), "b".to_owned())]);
    }

    #[test]
    fn given_a_config_when_debug_printed_should_not_show_passwords() {
        let shown = format!("{:?}", parse(PLAIN).unwrap());
        assert!(shown.contains("user_alice"));
        assert!(!shown.contains("secret"), "{shown}");
    }

    #[test]
    fn given_every_prefix_of_a_config_when_parsed_should_not_panic() {
        let text = "A required /* c */ k=\"v\\1\\n\" // x\n k2='w';";
        for end in (0..=text.len()).filter(|&end| text.is_char_boundary(end)) {
            let _ = parse(&text[..end]);
        }
    }
}
