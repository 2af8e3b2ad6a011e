//! Who is calling: a console login session (an HttpOnly, SameSite=Strict cookie made by
//! `POST /api/v1/login`, ended by logout or `console.session.timeout.ms` of idleness) or
//! HTTP basic auth of a `console.users` user. A change made with the cookie must also
//! carry `X-Gregor-Console` (a header another site's page cannot send without CORS),
//! so a forged cross-site form changes nothing.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use rand::Rng;
use serde_json::json;

use crate::auth::{Role, Users};

pub(crate) const COOKIE: &str = "gregor_session";
/// Sent by the console on every call.
pub(crate) const CONSOLE_HEADER: &str = "x-gregor-console";

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Principal {
    pub(crate) user: String,
    pub(crate) role: Role,
    pub(crate) via_cookie: bool,
}

#[derive(Debug)]
struct Session {
    user: String,
    role: Role,
    last_seen: Instant,
}

/// The live console sessions of this node (in memory: a restart logs everyone out).
#[derive(Debug)]
pub(crate) struct Sessions {
    users: Users,
    idle_timeout: Duration,
    live: Mutex<HashMap<String, Session>>,
}

/// A JSON error: `{"error": NAME, "message": ...}`.
pub(crate) fn error(status: StatusCode, name: &str, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": name, "message": message.into() }))).into_response()
}

impl Sessions {
    pub(crate) fn new(users: Users, idle_timeout: Duration) -> Self {
        Self { users, idle_timeout, live: Mutex::new(HashMap::new()) }
    }

    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.live.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Checks the password and opens a session; returns its token.
    pub(crate) fn login(&self, user: &str, password: &str) -> Option<(String, Role)> {
        let role = self.users.verify(user, password)?;
        let token: [u8; 32] = rand::thread_rng().gen();
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token);
        let mut live = self.live();
        let now = Instant::now();
        live.retain(|_, s| now.duration_since(s.last_seen) < self.idle_timeout);
        let _ = live.insert(token.clone(), Session { user: user.to_owned(), role, last_seen: now });
        Some((token, role))
    }

    pub(crate) fn logout(&self, headers: &HeaderMap) {
        if let Some(token) = cookie(headers) {
            let _ = self.live().remove(token);
        }
    }

    /// The caller from the session cookie or basic auth, or the 401 to answer.
    pub(crate) fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, Response> {
        if let Some(token) = cookie(headers) {
            if let Some(principal) = self.session(token) {
                return Ok(principal);
            }
            if headers.get(header::AUTHORIZATION).is_none() {
                return Err(unauthorized(headers, "the session has ended: log in again"));
            }
        }
        let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
            return Err(unauthorized(headers, "log in: HTTP basic auth or a console session"));
        };
        let decoded = value
            .strip_prefix("Basic ")
            .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64.trim()).ok())
            .and_then(|raw| String::from_utf8(raw).ok());
        let Some((name, password)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
            return Err(unauthorized(headers, "malformed basic auth header"));
        };
        match self.users.verify(name, password) {
            Some(role) => Ok(Principal { user: name.to_owned(), role, via_cookie: false }),
            None => Err(unauthorized(headers, "wrong user name or password")),
        }
    }

    /// As `authenticate`, and the caller may change things: an admin, and with a cookie
    /// the console's header too.
    pub(crate) fn authorize_change(&self, headers: &HeaderMap) -> Result<String, Response> {
        let principal = self.authenticate(headers)?;
        if principal.role != Role::Admin {
            let message = format!("user '{}' is a viewer: read only", principal.user);
            return Err(error(StatusCode::FORBIDDEN, "FORBIDDEN", message));
        }
        if principal.via_cookie && !headers.contains_key(CONSOLE_HEADER) {
            let message = "a change with the session cookie needs the X-Gregor-Console header";
            return Err(error(StatusCode::FORBIDDEN, "FORBIDDEN", message));
        }
        Ok(principal.user)
    }

    fn session(&self, token: &str) -> Option<Principal> {
        let mut live = self.live();
        let now = Instant::now();
        let session = live.get_mut(token)?;
        if now.duration_since(session.last_seen) >= self.idle_timeout {
            let _ = live.remove(token);
            return None;
        }
        session.last_seen = now; // idle timeout: each call keeps the session alive
        Some(Principal { user: session.user.clone(), role: session.role, via_cookie: true })
    }

    /// The `Set-Cookie` of a new session.
    pub(crate) fn set_cookie(&self, token: &str) -> HeaderValue {
        let max_age = self.idle_timeout.as_secs().max(1);
        HeaderValue::from_str(&format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}"))
            .expect("a URL-safe token")
    }
}

/// The `Set-Cookie` that removes the session cookie.
pub(crate) fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static("gregor_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
}

fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
        .filter(|v| !v.is_empty())
}

/// 401; `WWW-Authenticate` only for callers other than the console, whose script would
/// otherwise get the browser's own login dialog.
pub(crate) fn unauthorized(headers: &HeaderMap, why: &str) -> Response {
    let mut response = error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", why);
    if !headers.contains_key(CONSOLE_HEADER) {
        let _ =
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"gregor\""));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sessions(timeout: Duration) -> Sessions {
        Sessions::new(Users::parse("alice:pw:admin,bob:pw:viewer").unwrap(), timeout)
    }

    fn with_cookie(token: &str, console: bool) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let _ =
            headers.insert(header::COOKIE, HeaderValue::from_str(&format!("theme=dark; {COOKIE}={token}")).unwrap());
        if console {
            let _ = headers.insert(CONSOLE_HEADER, HeaderValue::from_static("1"));
        }
        headers
    }

    #[test]
    fn given_a_login_should_know_the_cookie_until_logout() {
        let s = sessions(Duration::from_secs(60));
        assert!(s.login("alice", "wrong").is_none());
        let (token, role) = s.login("alice", "pw").unwrap();
        assert_eq!(role, Role::Admin);
        let principal = s.authenticate(&with_cookie(&token, true)).unwrap();
        assert_eq!((principal.user.as_str(), principal.via_cookie), ("alice", true));
        s.logout(&with_cookie(&token, true));
        assert!(s.authenticate(&with_cookie(&token, true)).is_err());
    }

    #[test]
    fn given_a_cookie_change_without_the_console_header_should_refuse() {
        let s = sessions(Duration::from_secs(60));
        let (token, _) = s.login("alice", "pw").unwrap();
        assert!(s.authorize_change(&with_cookie(&token, false)).is_err(), "CSRF guard");
        assert_eq!(s.authorize_change(&with_cookie(&token, true)).unwrap(), "alice");
        let (viewer, _) = s.login("bob", "pw").unwrap();
        let refused = s.authorize_change(&with_cookie(&viewer, true)).unwrap_err();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn given_an_idle_session_should_end_it() {
        let s = sessions(Duration::from_millis(1));
        let (token, _) = s.login("alice", "pw").unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let refused = s.authenticate(&with_cookie(&token, true)).unwrap_err();
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        assert!(refused.headers().get(header::WWW_AUTHENTICATE).is_none(), "no browser dialog for the console");
    }
}
