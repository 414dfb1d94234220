//! The configuration of an upstream login: which issuer, which client, who may log in.

use std::fmt;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::types::{Issuer, Scope};

/// Google's issuer.
pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";
/// The legacy spelling of Google's issuer, still found in the `iss` claim of some Google
/// ID tokens. Accepted only for the `iss` claim of a [`UpstreamFlavor::Google`] upstream.
pub const GOOGLE_LEGACY_ISSUER: &str = "accounts.google.com";
/// Default lifetime of an upstream login (state, nonce, verifier): 10 minutes.
pub const DEFAULT_STATE_TTL: Duration = Duration::from_secs(600);

/// Longest `sub`, `email`, `hd` or `name` accepted from an ID token, in bytes.
pub(super) const MAX_CLAIM_BYTES: usize = 255;

/// Which provider-specific behaviour an upstream gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpstreamFlavor {
    /// Google: `iss` may also be [`GOOGLE_LEGACY_ISSUER`]; `access_type=online`,
    /// `prompt=select_account`, and `hd` as a hint when exactly one hosted domain is
    /// configured; `max_age=0` (not `prompt=login`, which Google does not define) to force
    /// a fresh login.
    Google,
    /// Any OpenID provider: `prompt=login` to force a fresh login, nothing else added.
    Generic,
}

/// The client secret registered at the upstream provider. Redacted `Debug`, zeroed on
/// drop, not `Clone`.
pub struct ClientSecret(Zeroizing<String>);

impl ClientSecret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        ClientSecret(Zeroizing::new(secret.into()))
    }

    /// The secret, for the token request. Do not log it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret(<redacted>)")
    }
}

/// Configuration of an upstream login.
///
/// Who may log in: with [`hosted_domains`](Self::hosted_domains), the ID token's `hd`
/// claim must be one of them (the `hd` request parameter is only a hint and is never
/// trusted). With [`allowed_emails`](Self::allowed_emails) and/or
/// [`allowed_email_domains`](Self::allowed_email_domains), the ID token's email must be
/// verified (`email_verified: true`) and be one of the emails or in one of the domains.
/// Both kinds of rule apply when both are set. Without any rule,
/// [`allow_any_user`](Self::allow_any_user) must be set explicitly, or [`Upstream`](super::Upstream)
/// refuses the configuration.
///
/// ```
/// use oidc_core::login::{ClientSecret, UpstreamConfig};
/// use oidc_core::types::Issuer;
///
/// let ours = Issuer::parse("https://auth.example.com")?;
/// let config = UpstreamConfig::google("1234.apps.googleusercontent.com", ClientSecret::new("GOCSPX-…"), &ours)
///     .hosted_domains(["example.com"]);
/// assert_eq!(config.name(), "google");
/// assert_eq!(config.callback_url(), "https://auth.example.com/login/google/callback");
/// assert!(config.has_restriction());
/// # Ok::<(), oidc_core::InvalidValue>(())
/// ```
#[derive(Debug)]
#[must_use]
pub struct UpstreamConfig {
    pub(super) issuer: Issuer,
    pub(super) our_issuer: Issuer,
    pub(super) client_id: String,
    pub(super) client_secret: ClientSecret,
    pub(super) name: Option<String>,
    pub(super) label: Option<String>,
    pub(super) flavor: UpstreamFlavor,
    pub(super) scopes: Scope,
    pub(super) hosted_domains: Vec<String>,
    pub(super) allowed_emails: Vec<String>,
    pub(super) allowed_email_domains: Vec<String>,
    pub(super) allow_any_user: bool,
    pub(super) state_ttl: Duration,
}

impl UpstreamConfig {
    /// Google as the upstream (issuer [`GOOGLE_ISSUER`]), for the provider whose issuer
    /// is `our_issuer`.
    pub fn google(
        client_id: impl Into<String>,
        client_secret: ClientSecret,
        our_issuer: &Issuer,
    ) -> Self {
        // GOOGLE_ISSUER is a valid issuer.
        let issuer = Issuer::parse(GOOGLE_ISSUER)
            .unwrap_or_else(|_| unreachable!("GOOGLE_ISSUER is a valid issuer"));
        Self::new(issuer, client_id, client_secret, our_issuer)
    }

    /// Any OpenID provider as the upstream. The flavor, and with it the default name
    /// (`"google"` or `"oidc"`), follows from the issuer.
    pub fn new(
        issuer: Issuer,
        client_id: impl Into<String>,
        client_secret: ClientSecret,
        our_issuer: &Issuer,
    ) -> Self {
        let flavor = if issuer.as_str() == GOOGLE_ISSUER {
            UpstreamFlavor::Google
        } else {
            UpstreamFlavor::Generic
        };
        UpstreamConfig {
            issuer,
            our_issuer: our_issuer.clone(),
            client_id: client_id.into(),
            client_secret,
            name: None,
            label: None,
            flavor,
            // Three valid scope tokens.
            scopes: Scope::parse("openid email profile")
                .unwrap_or_else(|_| unreachable!("a valid scope")),
            hosted_domains: Vec::new(),
            allowed_emails: Vec::new(),
            allowed_email_domains: Vec::new(),
            allow_any_user: false,
            state_ttl: DEFAULT_STATE_TTL,
        }
    }

    /// Sets the flavor (by default [`UpstreamFlavor::Google`] for [`GOOGLE_ISSUER`] and
    /// [`UpstreamFlavor::Generic`] for any other issuer), and with it the default name
    /// and label.
    pub fn flavor(mut self, flavor: UpstreamFlavor) -> Self {
        self.flavor = flavor;
        self
    }

    /// The machine name (`[a-z0-9-]`, 1 to 32 characters; default `"google"` or
    /// `"oidc"` by flavor), which also names the paths: `/login/{name}` and the callback
    /// `/login/{name}/callback`. Needed only to run two upstreams of the same flavor.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The label of a login chooser button (default "Sign in with Google", or "Sign in
    /// with" and the issuer's host).
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// The scopes requested upstream (default `openid email profile`; `openid` is added
    /// if missing).
    pub fn scopes(mut self, scopes: Scope) -> Self {
        self.scopes = if scopes.contains("openid") {
            scopes
        } else {
            Scope::from_tokens(std::iter::once("openid").chain(scopes.iter())).unwrap_or(scopes)
        };
        self
    }

    /// Only users whose ID token carries one of these `hd` (Google Workspace domain)
    /// values may log in.
    pub fn hosted_domains<S: AsRef<str>>(mut self, domains: impl IntoIterator<Item = S>) -> Self {
        self.hosted_domains = domains
            .into_iter()
            .map(|d| d.as_ref().trim().to_ascii_lowercase())
            .filter(|d| !d.is_empty())
            .collect();
        self
    }

    /// Only users with one of these verified email addresses (or one in
    /// [`allowed_email_domains`](Self::allowed_email_domains)) may log in. Compared
    /// without regard to ASCII case.
    pub fn allowed_emails<S: AsRef<str>>(mut self, emails: impl IntoIterator<Item = S>) -> Self {
        self.allowed_emails = emails
            .into_iter()
            .map(|e| e.as_ref().trim().to_ascii_lowercase())
            .filter(|e| !e.is_empty())
            .collect();
        self
    }

    /// Only users with a verified email address in one of these domains (or one listed
    /// in [`allowed_emails`](Self::allowed_emails)) may log in.
    pub fn allowed_email_domains<S: AsRef<str>>(
        mut self,
        domains: impl IntoIterator<Item = S>,
    ) -> Self {
        self.allowed_email_domains = domains
            .into_iter()
            .map(|d| {
                d.as_ref()
                    .trim()
                    .trim_start_matches('@')
                    .to_ascii_lowercase()
            })
            .filter(|d| !d.is_empty())
            .collect();
        self
    }

    /// Lets every account of the upstream log in when no other rule is set. Must be
    /// chosen explicitly: with Google, "any user" means any Google account in the world.
    pub fn allow_any_user(mut self, allow: bool) -> Self {
        self.allow_any_user = allow;
        self
    }

    /// How long a started login may take (default 10 minutes).
    pub fn state_ttl(mut self, ttl: Duration) -> Self {
        self.state_ttl = ttl;
        self
    }

    /// The upstream issuer.
    pub fn issuer(&self) -> &Issuer {
        &self.issuer
    }

    /// The machine name.
    pub fn name(&self) -> &str {
        match (&self.name, self.flavor) {
            (Some(name), _) => name,
            (None, UpstreamFlavor::Google) => "google",
            (None, UpstreamFlavor::Generic) => "oidc",
        }
    }

    /// The label of a login chooser button.
    pub fn label(&self) -> String {
        match (&self.label, self.flavor) {
            (Some(label), _) => label.clone(),
            (None, UpstreamFlavor::Google) => "Sign in with Google".to_owned(),
            (None, UpstreamFlavor::Generic) => {
                format!("Sign in with {}", host_of(self.issuer.as_str()))
            }
        }
    }

    /// Our callback URL, to register at the upstream: our issuer +
    /// `/login/{name}/callback`.
    pub fn callback_url(&self) -> String {
        self.our_issuer.join(&self.callback_path())
    }

    /// Whether some rule restricts who may log in.
    pub fn has_restriction(&self) -> bool {
        !self.hosted_domains.is_empty()
            || !self.allowed_emails.is_empty()
            || !self.allowed_email_domains.is_empty()
    }

    pub(super) fn path_prefix(&self) -> String {
        format!("/login/{}", self.name())
    }

    pub(super) fn callback_path(&self) -> String {
        format!("/login/{}/callback", self.name())
    }

    pub(super) fn has_email_rule(&self) -> bool {
        !self.allowed_emails.is_empty() || !self.allowed_email_domains.is_empty()
    }

    /// Whether `email` (verified) is on the allow-list: listed, or in a listed domain.
    /// Compared without case.
    pub(super) fn email_allowed(&self, email: &str) -> bool {
        let email = email.to_ascii_lowercase();
        let domain = email.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
        self.allowed_emails.contains(&email)
            || self.allowed_email_domains.iter().any(|d| d == domain)
    }
}

/// Setting up an upstream failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    /// The configuration is unusable (no restriction on who may log in, a bad name, …).
    #[error("upstream configuration: {0}")]
    Config(String),
    /// The discovery document could not be fetched or is not acceptable.
    #[error("upstream discovery: {0}")]
    Discovery(String),
    /// The ID token verifier could not be built.
    #[error("upstream id token verifier: {0}")]
    Verifier(#[from] jwks_verify::BuildError),
}

pub(super) fn check_config(config: &UpstreamConfig) -> Result<(), UpstreamError> {
    let name = config.name();
    let name_ok = !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !name_ok {
        return Err(UpstreamError::Config(
            "name must be 1 to 32 characters of [a-z0-9-]".into(),
        ));
    }
    if name == "password" {
        return Err(UpstreamError::Config(
            "name \"password\" belongs to the password login".into(),
        ));
    }
    if config.client_id.is_empty() || config.client_secret.expose_secret().is_empty() {
        return Err(UpstreamError::Config(
            "client_id and client_secret are required".into(),
        ));
    }
    if !config.has_restriction() && !config.allow_any_user {
        return Err(UpstreamError::Config(
            "no rule restricts who may log in: set hosted domains, allowed emails or allowed email domains, or allow any user explicitly".into(),
        ));
    }
    if config.state_ttl.is_zero() {
        return Err(UpstreamError::Config("state ttl must be positive".into()));
    }
    Ok(())
}

fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| url.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours() -> Issuer {
        Issuer::parse("https://auth.example.com").unwrap()
    }

    #[test]
    fn google_defaults() {
        let config = UpstreamConfig::google("id", ClientSecret::new("s"), &ours());
        assert_eq!(config.issuer().as_str(), GOOGLE_ISSUER);
        assert_eq!(config.name(), "google");
        assert_eq!(config.flavor, UpstreamFlavor::Google);
        assert_eq!(config.scopes.as_str(), "openid email profile");
        assert_eq!(
            config.callback_url(),
            "https://auth.example.com/login/google/callback"
        );
        assert!(!config.has_restriction());
        assert!(check_config(&config).is_err(), "unrestricted by default");
        assert!(check_config(&config.allow_any_user(true)).is_ok());
    }

    #[test]
    fn generic_names_and_paths() {
        let issuer = Issuer::parse("https://login.example.org").unwrap();
        let config = UpstreamConfig::new(issuer, "id", ClientSecret::new("s"), &ours())
            .allowed_email_domains(["@Example.org"]);
        assert_eq!(config.name(), "oidc");
        assert_eq!(config.label(), "Sign in with login.example.org");
        assert_eq!(config.allowed_email_domains, ["example.org"]);
        assert_eq!(config.path_prefix(), "/login/oidc");
        let renamed = config.with_name("corp");
        assert_eq!(
            renamed.callback_url(),
            "https://auth.example.com/login/corp/callback"
        );
        assert!(check_config(&renamed).is_ok());
        for bad in ["", "Corp", "a/b", "password"] {
            let issuer = Issuer::parse("https://login.example.org").unwrap();
            let config = UpstreamConfig::new(issuer, "id", ClientSecret::new("s"), &ours())
                .allow_any_user(true)
                .with_name(bad);
            assert!(check_config(&config).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn scopes_always_include_openid() {
        let config = UpstreamConfig::google("id", ClientSecret::new("s"), &ours())
            .scopes(Scope::parse("email").unwrap());
        assert_eq!(config.scopes.as_str(), "openid email");
    }

    #[test]
    fn client_secret_is_redacted() {
        let config = UpstreamConfig::google("id", ClientSecret::new("GOCSPX-very-secret"), &ours());
        let debug = format!("{config:?}");
        assert!(!debug.contains("very-secret"));
        assert!(debug.contains("ClientSecret(<redacted>)"));
    }
}
