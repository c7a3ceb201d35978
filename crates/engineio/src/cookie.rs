//! The session cookie (`io` by default) that cookie-sticky load balancers
//! route on, as Node's `cookie` option sets it.

use std::time::Duration;

use crate::sid::Sid;

/// The `SameSite` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    /// `SameSite=Strict`.
    Strict,
    /// `SameSite=Lax` (Node's default).
    Lax,
    /// `SameSite=None` (needs `secure` in browsers).
    None,
}

/// How the session cookie is written. The default is Node's:
/// `io=<sid>; Path=/; HttpOnly; SameSite=Lax`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieConfig {
    /// The cookie name. Default `io`.
    pub name: String,
    /// The `Path` attribute. Default `/`.
    pub path: Option<String>,
    /// The `Domain` attribute. Default none.
    pub domain: Option<String>,
    /// The `HttpOnly` attribute. Default on.
    pub http_only: bool,
    /// The `Secure` attribute. Default off.
    pub secure: bool,
    /// The `SameSite` attribute. Default `Lax`.
    pub same_site: Option<SameSite>,
    /// The `Max-Age` attribute. Default none (a session cookie).
    pub max_age: Option<Duration>,
}

impl Default for CookieConfig {
    fn default() -> Self {
        CookieConfig {
            name: "io".to_owned(),
            path: Some("/".to_owned()),
            domain: None,
            http_only: true,
            secure: false,
            same_site: Some(SameSite::Lax),
            max_age: None,
        }
    }
}

impl CookieConfig {
    /// The `Set-Cookie` value for a session.
    ///
    /// ```
    /// use iocluster_engineio::{CookieConfig, Sid};
    /// let value = CookieConfig::default().set_cookie(&Sid::new("abc"));
    /// assert_eq!(value, "io=abc; Path=/; HttpOnly; SameSite=Lax");
    /// ```
    pub fn set_cookie(&self, sid: &Sid) -> String {
        let mut value = format!("{}={}", self.name, sid);
        if let Some(max_age) = self.max_age {
            value.push_str(&format!("; Max-Age={}", max_age.as_secs()));
        }
        if let Some(domain) = &self.domain {
            value.push_str(&format!("; Domain={domain}"));
        }
        if let Some(path) = &self.path {
            value.push_str(&format!("; Path={path}"));
        }
        if self.http_only {
            value.push_str("; HttpOnly");
        }
        if self.secure {
            value.push_str("; Secure");
        }
        match self.same_site {
            Some(SameSite::Strict) => value.push_str("; SameSite=Strict"),
            Some(SameSite::Lax) => value.push_str("; SameSite=Lax"),
            Some(SameSite::None) => value.push_str("; SameSite=None"),
            None => {}
        }
        value
    }
}
