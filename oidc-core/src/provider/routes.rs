//! The provider's request paths and which endpoint a path reaches (sans I/O).

use std::sync::Arc;

use super::config::ProviderConfig;
use super::errors::ProviderError;
use crate::authn::Authenticator;
use crate::discovery;

/// The path of the account API's grant list, under the issuer's path.
const ACCOUNT_GRANTS_PATH: &str = "/account/grants";
/// The path of the account API's revocation, under the issuer's path.
const ACCOUNT_REVOKE_PATH: &str = "/account/grants/revoke";

/// The request paths of the endpoints (under the issuer's path).
pub(crate) struct Paths {
    pub(crate) well_known: Vec<String>,
    pub(crate) jwks: String,
    pub(crate) authorize: String,
    pub(crate) select_login: String,
    pub(crate) consent: String,
    pub(crate) token: String,
    pub(crate) userinfo: String,
    pub(crate) revoke: String,
    pub(crate) introspect: String,
    pub(crate) register: String,
    pub(crate) health: String,
    /// The account API: the user's grants, and their revocation.
    pub(crate) account_grants: String,
    pub(crate) account_revoke: String,
    /// The Status List Aggregation; list `n` is at `{status_lists}/{n}`.
    pub(crate) status_lists: String,
    /// `(prefix, authenticator index)`.
    pub(crate) login: Vec<(String, usize)>,
}

/// Which endpoint a request reaches.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    Discovery,
    Jwks,
    Authorize,
    SelectLogin,
    Consent,
    Token,
    Userinfo,
    Revoke,
    Introspect,
    Register,
    Health,
    AccountGrants,
    AccountRevoke,
    StatusListAggregation,
    StatusList(u64),
    Login(usize),
    NotFound,
}

impl Paths {
    /// The route of a request path.
    pub(crate) fn route(&self, config: &ProviderConfig, path: &str) -> Route {
        let p = self;
        if p.well_known.iter().any(|w| w == path) {
            return Route::Discovery;
        }
        let fixed = [
            (&p.jwks, Route::Jwks),
            (&p.authorize, Route::Authorize),
            (&p.select_login, Route::SelectLogin),
            (&p.consent, Route::Consent),
            (&p.token, Route::Token),
            (&p.userinfo, Route::Userinfo),
            (&p.revoke, Route::Revoke),
            (&p.introspect, Route::Introspect),
            (&p.health, Route::Health),
            (&p.account_grants, Route::AccountGrants),
            (&p.account_revoke, Route::AccountRevoke),
        ];
        if let Some((_, route)) = fixed.iter().find(|(candidate, _)| *candidate == path) {
            return *route;
        }
        if config.registration.enabled && p.register == path {
            return Route::Register;
        }
        if config.status_lists.enabled
            && let Some(rest) = path.strip_prefix(p.status_lists.as_str())
        {
            if rest.is_empty() {
                return Route::StatusListAggregation;
            }
            if let Some(number) = rest.strip_prefix('/').and_then(parse_list_number) {
                return Route::StatusList(number);
            }
        }
        if let Some((_, index)) = p.login.iter().find(|(prefix, _)| under(path, prefix)) {
            return Route::Login(*index);
        }
        Route::NotFound
    }

    pub(crate) fn new(
        config: &ProviderConfig,
        authenticators: &[Arc<dyn Authenticator>],
    ) -> Result<Paths, ProviderError> {
        let base = config.issuer.path();
        let at = |path: &str| format!("{base}{path}");
        let mut paths = Paths {
            well_known: discovery::well_known_paths(&config.issuer),
            jwks: at(discovery::JWKS_PATH),
            authorize: at(discovery::AUTHORIZATION_PATH),
            select_login: at("/authorize/select"),
            consent: at("/consent"),
            token: at(discovery::TOKEN_PATH),
            userinfo: at(discovery::USERINFO_PATH),
            revoke: at(discovery::REVOCATION_PATH),
            introspect: at(discovery::INTROSPECTION_PATH),
            register: at(discovery::REGISTRATION_PATH),
            health: at("/health"),
            account_grants: at(ACCOUNT_GRANTS_PATH),
            account_revoke: at(ACCOUNT_REVOKE_PATH),
            status_lists: at(crate::status_list::STATUS_LISTS_PATH),
            login: Vec::new(),
        };
        let fixed = [
            &paths.jwks,
            &paths.authorize,
            &paths.select_login,
            &paths.consent,
            &paths.token,
            &paths.userinfo,
            &paths.revoke,
            &paths.introspect,
            &paths.register,
            &paths.health,
            &paths.account_grants,
            &paths.status_lists,
        ];
        for (index, authenticator) in authenticators.iter().enumerate() {
            let prefix = authenticator.path_prefix();
            let valid = prefix.len() > 1
                && prefix.starts_with('/')
                && !prefix.ends_with('/')
                && !prefix.contains(['?', '#', ' ']);
            if !valid {
                return Err(ProviderError::InvalidConfig(
                    "a login path prefix must start with / and not end with /",
                ));
            }
            let full = at(prefix);
            let clashes = fixed.iter().any(|p| under(p, &full) || under(&full, p))
                || paths.well_known.iter().any(|p| under(p, &full))
                || paths
                    .login
                    .iter()
                    .any(|(p, _)| under(p, &full) || under(&full, p));
            if clashes {
                return Err(ProviderError::InvalidConfig(
                    "login path prefixes must not overlap each other or the provider's paths",
                ));
            }
            paths.login.push((full, index));
        }
        Ok(paths)
    }
}

/// The list number of a request path below `{issuer}/statuslists/`: canonical decimal
/// digits (no sign, no leading zero), at least 1.
pub(crate) fn parse_list_number(rest: &str) -> Option<u64> {
    if rest.is_empty() || rest.starts_with('0') || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    rest.parse().ok()
}

/// Whether `path` is `prefix` or below it (segment-wise).
fn under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_numbers_are_canonical_decimals() {
        assert_eq!(parse_list_number("1"), Some(1));
        assert_eq!(parse_list_number("42"), Some(42));
        for bad in [
            "",
            "0",
            "01",
            "+1",
            "-1",
            "1a",
            "1/",
            "99999999999999999999",
        ] {
            assert_eq!(parse_list_number(bad), None, "{bad}");
        }
    }

    #[test]
    fn paths_nest_by_segment() {
        assert!(under("/login/google", "/login/google"));
        assert!(under("/login/google/callback", "/login/google"));
        assert!(!under("/login/googlex", "/login/google"));
        assert!(!under("/login", "/login/google"));
    }
}
