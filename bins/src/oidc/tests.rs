//! Tests of `bins/src/oidc.rs`.

use super::*;

const AUDIENCE: &str = "http://127.0.0.1:8765/mcp";

fn granted(config: &ProviderConfig, scope: &str, resource: &str) -> String {
    config
        .scope_for_resources(
            &Scope::parse(scope).unwrap(),
            &[ResourceIndicator::parse(resource).unwrap()],
        )
        .unwrap()
        .to_string()
}

#[test]
fn by_default_the_seed_scopes_gain_both_memory_scopes_for_the_mcp_resource() {
    // The settings `stack` passes: only the audience differs from the defaults.
    let args = OidcArgs::parse_from([
        "oidc-server",
        "--default-audience=http://127.0.0.1:9999/mcp",
        "--resource-scopes=",
    ]);
    let config = provider_config(&args).unwrap();
    assert_eq!(
        granted(&config, "openid email profile", "http://127.0.0.1:9999/mcp"),
        "openid email profile memories:read memories:write"
    );
    assert_eq!(
        granted(&config, "openid memories:read", "http://127.0.0.1:9999/mcp"),
        "openid memories:read",
        "naming one memory scope yields only that one"
    );
}

#[test]
fn resource_scopes_parse_and_override_the_default_audience() {
    let audience = ResourceIndicator::parse(AUDIENCE).unwrap();
    let entries = resource_scopes(
        " https://other.example/api = memories:read ; http://127.0.0.1:8765/mcp=memories:write,",
        &audience,
    )
    .unwrap();
    assert_eq!(
        entries.len(),
        2,
        "the audience is listed: no built-in entry"
    );
    assert_eq!(
        entries[1].defaults().map(Scope::as_str),
        Some("memories:write")
    );
    let off = resource_scopes(&format!("{AUDIENCE}="), &audience).unwrap();
    assert_eq!(off.len(), 1);
    assert_eq!(
        off[0].defaults(),
        None,
        "`resource=` turns the defaults off"
    );
    let default = resource_scopes("", &audience).unwrap();
    assert_eq!(
        default[0].defaults().map(Scope::as_str),
        Some("memories:read memories:write")
    );
}

#[test]
fn malformed_resource_scopes_are_refused_with_the_setting_named() {
    let audience = ResourceIndicator::parse(AUDIENCE).unwrap();
    for (setting, expected) in [
        ("memories:read", "entry 1"),
        ("https://a.example/=memories:read;not a uri=x", "entry 2"),
        (
            "http://127.0.0.1:8765/mcp=memories:read;HTTP://127.0.0.1:8765/mcp=",
            "already listed",
        ),
    ] {
        let error = format!("{:#}", resource_scopes(setting, &audience).unwrap_err());
        assert!(error.contains("OIDC_RESOURCE_SCOPES"), "{error}");
        assert!(error.contains(expected), "{error}");
    }
    for (setting, expected) in [
        ("https://elsewhere.example/=memories:read", "does not serve"),
        (
            &format!("{AUDIENCE}=memories:admin") as &str,
            "configured scopes",
        ),
        (
            &format!("{AUDIENCE}=offline_access") as &str,
            "configured scopes",
        ),
    ] {
        let args = OidcArgs::parse_from([
            "oidc-server".to_owned(),
            format!("--default-audience={AUDIENCE}"),
            format!("--resource-scopes={setting}"),
        ]);
        let error = format!("{:#}", provider_config(&args).unwrap_err());
        assert!(error.contains("OIDC_RESOURCE_SCOPES"), "{error}");
        assert!(error.contains(expected), "{error}");
    }
}

#[test]
fn dynamic_client_ttl_takes_units_and_off() {
    let days = |v: &str| duration_setting(v).unwrap().map(|d| d.as_secs());
    assert_eq!(days("30d"), Some(30 * 24 * 3600));
    assert_eq!(days("12h"), Some(12 * 3600));
    assert_eq!(days("90m"), Some(90 * 60));
    assert_eq!(days("600"), Some(600));
    assert_eq!(days(" 600s "), Some(600));
    assert_eq!(days("OFF"), None);
    for bad in ["", "d", "30w", "-1d", "1.5d", "99999999999999999999d"] {
        assert!(duration_setting(bad).is_err(), "{bad}");
    }
    let config = provider_config(&OidcArgs::parse_from(["oidc-server"])).unwrap();
    assert_eq!(
        config.registration.unused_client_ttl,
        Some(Duration::from_secs(30 * 24 * 3600)),
        "the default"
    );
    let short = OidcArgs::parse_from(["oidc-server", "--dynamic-client-ttl=10s"]);
    let error = format!("{:#}", provider_config(&short).unwrap_err());
    assert!(error.contains("at least a minute"), "{error}");
}

#[test]
fn token_lifetimes_and_status_lists_are_configurable_within_bounds() {
    let config = provider_config(&OidcArgs::parse_from(["oidc-server"])).unwrap();
    assert_eq!(config.lifetimes.access, Duration::from_secs(3600));
    assert!(config.status_lists.enabled);
    assert_eq!(config.status_lists.ttl, Duration::from_secs(10));
    let args = OidcArgs::parse_from([
        "oidc-server",
        "--access-token-ttl=12h",
        "--status-list-ttl=30",
        "--token-status=off",
    ]);
    let config = provider_config(&args).unwrap();
    assert_eq!(config.lifetimes.access, Duration::from_secs(12 * 3600));
    assert!(config.rotation.retain_after_retire() >= Duration::from_secs(12 * 3600));
    assert_eq!(config.status_lists.ttl, Duration::from_secs(30));
    assert!(!config.status_lists.enabled);
    for (flag, value, variable) in [
        ("--access-token-ttl", "59", "OIDC_ACCESS_TOKEN_TTL"),
        ("--access-token-ttl", "2d", "OIDC_ACCESS_TOKEN_TTL"),
        ("--access-token-ttl", "off", "OIDC_ACCESS_TOKEN_TTL"),
        ("--access-token-ttl", "an hour", "OIDC_ACCESS_TOKEN_TTL"),
        ("--status-list-ttl", "0", "OIDC_STATUS_LIST_TTL"),
        ("--status-list-ttl", "2h", "OIDC_STATUS_LIST_TTL"),
        ("--status-list-ttl", "-1", "OIDC_STATUS_LIST_TTL"),
    ] {
        let args = OidcArgs::parse_from(["oidc-server".to_owned(), format!("{flag}={value}")]);
        let error = format!("{:#}", provider_config(&args).unwrap_err());
        assert!(error.contains(variable), "{value}: {error}");
    }
    assert!(OidcArgs::try_parse_from(["oidc-server", "--token-status=maybe"]).is_err());
}

#[test]
fn health_token_is_hashed_checked_and_never_echoed() {
    let token = "0123456789abcdef0123456789abcdef";
    let args = OidcArgs::parse_from(["oidc-server".to_owned(), format!("--health-token={token}")]);
    assert!(!format!("{args:?}").contains(token));
    let config = provider_config(&args).unwrap();
    assert!(config.health_token.unwrap().matches(token));
    assert!(!format!("{config:?}").contains(token));
    let weak = "short-token";
    let args = OidcArgs::parse_from(["oidc-server".to_owned(), format!("--health-token={weak}")]);
    let error = format!("{:#}", provider_config(&args).unwrap_err());
    assert!(error.contains("OIDC_HEALTH_TOKEN"), "{error}");
    assert!(!error.contains(weak), "{error}");
}

const PAGE_HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn clients_file(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clients.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

#[test]
fn clients_file_entries_become_static_clients() {
    let (_dir, path) = clients_file(&format!(
        r#"
[[clients]]
client_id = "memory-page"
name = "Memory page"
redirect_uris = ["https://mcp.example.com/app/callback"]
secret_sha256 = "{}"
account_access = true

[[clients]]
client_id = "cli"
name = "Command line"
redirect_uris = ["http://127.0.0.1/callback", "http://localhost/cb"]
refresh_tokens = false
"#,
        PAGE_HASH.to_ascii_uppercase()
    ));
    let clients = read_clients(&path).unwrap();
    assert_eq!(clients.len(), 2);
    let page = &clients[0];
    assert_eq!(page.client_id().as_str(), "memory-page");
    assert_eq!(page.client().name, "Memory page");
    assert!(page.has_account_access());
    assert!(page.client().refresh_tokens, "refresh tokens by default");
    assert!(
        page.client()
            .secret_hash
            .as_ref()
            .is_some_and(|h| h.matches("test")),
        "the hash is of `test`"
    );
    let cli = &clients[1];
    assert!(cli.client().secret_hash.is_none(), "no hash: public");
    assert!(!cli.client().refresh_tokens);
    assert!(!cli.has_account_access(), "no account access by default");
    assert_eq!(cli.client().redirect_uris.len(), 2);

    let args = OidcArgs::parse_from([
        "oidc-server".to_owned(),
        format!("--clients-file={}", path.display()),
    ]);
    let config = provider_config(&args).unwrap();
    assert_eq!(config.static_clients, clients);
}

#[test]
fn malformed_clients_files_are_refused_naming_the_file_and_entry_never_a_secret() {
    let entry = |extra: &str| {
        format!(
            "[[clients]]\nclient_id = \"ok\"\nname = \"Ok\"\nredirect_uris = [\"https://ok.example/cb\"]\n\n\
             [[clients]]\nclient_id = \"web\"\nname = \"Web\"\n{extra}\n"
        )
    };
    for (text, expected) in [
        (
            entry(
                "redirect_uris = [\"https://web.example/cb\"]\nclient_secret = \"hunter2-plain\"",
            ),
            "unknown field `client_secret`",
        ),
        (
            entry(
                "redirect_uris = [\"https://web.example/cb\"]\nsecret_sha256 = \"hunter2-plain\"",
            ),
            "secret_sha256 must be 64 hex characters",
        ),
        (entry(""), "missing field `redirect_uris`"),
        (entry("redirect_uris = []"), "at least one uri"),
        (
            entry("redirect_uris = [\"https://web.example/cb#frag\"]"),
            "not an acceptable redirect uri",
        ),
        (
            entry("redirect_uris = [\"https://web.example/cb\"]\nrefresh_tokens = \"yes\""),
            "expected a boolean",
        ),
        (
            entry("redirect_uris = [\"https://web.example/cb\"]").replace("\"web\"", "\"ok\""),
            "already used by entry 1",
        ),
    ] {
        let (_dir, path) = clients_file(&text);
        let error = format!("{:#}", read_clients(&path).unwrap_err());
        assert!(error.contains(&path.display().to_string()), "{error}");
        assert!(error.contains("clients entry 2"), "{error}");
        assert!(error.contains(expected), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }
}

#[test]
fn an_extra_client_may_not_be_configured_twice() {
    let (_dir, path) = clients_file(
        "[[clients]]\nclient_id = \"memory-page\"\nname = \"Mine\"\nredirect_uris = [\"https://a.example/cb\"]\n",
    );
    let mut args = OidcArgs::parse_from([
        "oidc-server".to_owned(),
        format!("--clients-file={}", path.display()),
    ]);
    args.extra_clients.push(
        StaticClient::public(
            ClientId::parse("memory-page").unwrap(),
            "Memory page",
            vec![RedirectUri::parse("https://b.example/cb").unwrap()],
        )
        .with_account_access(),
    );
    let error = format!("{:#}", provider_config(&args).unwrap_err());
    assert!(error.contains("`memory-page` is reserved"), "{error}");
    args.extra_clients[0] = StaticClient::public(
        ClientId::parse("other").unwrap(),
        "Other",
        vec![RedirectUri::parse("https://b.example/cb").unwrap()],
    );
    assert_eq!(provider_config(&args).unwrap().static_clients.len(), 2);
}

#[test]
fn debug_of_the_arguments_does_not_show_the_client_secret() {
    let args = OidcArgs::parse_from([
        "oidc-server",
        "--google-client-id=id.apps.googleusercontent.com",
        "--google-client-secret=GOCSPX-never-in-a-log",
    ]);
    let debug = format!("{args:?}");
    assert!(!debug.contains("GOCSPX-never-in-a-log"), "{debug}");
    assert!(debug.contains("id.apps.googleusercontent.com"), "{debug}");
    let secret = args
        .google_client_secret
        .as_ref()
        .map(Secret::expose_secret);
    assert_eq!(secret, Some("GOCSPX-never-in-a-log"));
}
