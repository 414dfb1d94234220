//! Tests of [`ProviderConfig`](super::ProviderConfig).

use super::*;

const MCP: &str = "https://mcp.example.com/mcp";
const OTHER: &str = "https://api.example.com/other";
const PLAIN: &str = "https://plain.example.com/api";

fn resource(value: &str) -> ResourceIndicator {
    ResourceIndicator::parse(value).unwrap()
}

fn scope(value: &str) -> Scope {
    Scope::parse(value).unwrap()
}

/// MCP defaults to both memory scopes, OTHER to `other:read`, PLAIN has none.
fn config() -> ProviderConfig {
    ProviderConfig::new(
        Issuer::parse("https://auth.example.com").unwrap(),
        resource(MCP),
    )
    .with_resource(resource(OTHER))
    .with_resource(resource(PLAIN))
    .with_scope(ScopeDefinition::new("memories:read", "Read").unwrap())
    .with_scope(ScopeDefinition::new("memories:write", "Write").unwrap())
    .with_scope(ScopeDefinition::new("other:read", "Other").unwrap())
    .with_resource_scopes(
        ResourceScopes::parse(&format!("{MCP}=memories:read memories:write")).unwrap(),
    )
    .with_resource_scopes(ResourceScopes::parse(&format!("{OTHER}=other:read")).unwrap())
}

fn grant(config: &ProviderConfig, requested: &str, resources: &[&str]) -> String {
    let resources: Vec<ResourceIndicator> = resources.iter().map(|r| resource(r)).collect();
    config
        .scope_for_resources(&scope(requested), &resources)
        .unwrap()
        .to_string()
}

#[test]
fn seed_scopes_for_the_mcp_resource_gain_both_memory_scopes() {
    assert_eq!(
        grant(&config(), "openid email profile", &[MCP]),
        "openid email profile memories:read memories:write"
    );
}

#[test]
fn scope_escalation_by_naming_one_resource_scope_is_refused() {
    // Naming memories:read must not yield memories:write.
    assert_eq!(
        grant(&config(), "openid memories:read", &[MCP]),
        "openid memories:read"
    );
    assert_eq!(grant(&config(), "memories:write", &[MCP]), "memories:write");
}

#[test]
fn a_resource_without_defaults_gains_nothing() {
    assert_eq!(grant(&config(), "openid email", &[PLAIN]), "openid email");
    let explicit_none = config().with_resource_scopes(ResourceScopes::new(resource(MCP), None));
    assert_eq!(grant(&explicit_none, "openid", &[MCP]), "openid");
}

#[test]
fn a_scope_of_another_resource_does_not_suppress_this_resources_defaults() {
    // other:read belongs to OTHER only: MCP still gets its defaults.
    assert_eq!(
        grant(&config(), "openid other:read", &[MCP]),
        "openid other:read memories:read memories:write"
    );
    // With both resources, each is judged on its own scopes.
    assert_eq!(
        grant(&config(), "openid memories:read", &[MCP, OTHER]),
        "openid memories:read other:read"
    );
    assert_eq!(
        grant(&config(), "openid", &[OTHER, MCP]),
        "openid other:read memories:read memories:write"
    );
}

#[test]
fn defaults_are_not_added_twice_and_the_request_keeps_its_order() {
    let shared = config().with_resource_scopes(
        ResourceScopes::parse(&format!("{OTHER}=memories:read other:read")).unwrap(),
    );
    assert_eq!(
        grant(&shared, "profile openid", &[MCP, OTHER]),
        "profile openid memories:read memories:write other:read"
    );
    // A scope both resources own suppresses both.
    assert_eq!(
        grant(&shared, "memories:read", &[MCP, OTHER]),
        "memories:read"
    );
}

#[test]
fn resource_scopes_parse_entries() {
    let entry = ResourceScopes::parse(&format!("  {MCP} =memories:read\tmemories:write ")).unwrap();
    assert_eq!(entry.resource().as_str(), MCP);
    assert_eq!(
        entry.defaults().map(Scope::as_str),
        Some("memories:read memories:write")
    );
    assert_eq!(
        ResourceScopes::parse(&format!("{MCP}=  "))
            .unwrap()
            .defaults(),
        None
    );
    let upper = ResourceScopes::parse("HTTPS://MCP.Example.com/mcp=memories:read").unwrap();
    assert_eq!(
        upper.resource().as_str(),
        MCP,
        "normalised like a request's resource"
    );
    for malformed in [
        "",
        MCP,
        "=memories:read",
        "mcp=memories:read",
        "https://mcp.example.com/mcp#x=memories:read",
        "https://mcp.example.com/mcp=memories:read \"quoted\"",
    ] {
        assert!(
            matches!(
                ResourceScopes::parse(malformed),
                Err(ProviderError::InvalidConfig(_))
            ),
            "{malformed:?} was accepted"
        );
    }
}

#[test]
fn resource_scopes_are_validated() {
    assert!(config().validate().is_ok());
    let reason = |config: ProviderConfig| match config.validate() {
        Err(ProviderError::InvalidConfig(reason)) => reason,
        other => panic!("accepted: {other:?}"),
    };
    let unserved = config().with_resource_scopes(
        ResourceScopes::parse("https://elsewhere.example/=memories:read").unwrap(),
    );
    assert!(reason(unserved).contains("does not serve"));
    let unknown = config()
        .with_resource_scopes(ResourceScopes::parse(&format!("{MCP}=memories:admin")).unwrap());
    assert!(reason(unknown).contains("configured scopes"));
    let standard = config().with_resource_scopes(
        ResourceScopes::parse(&format!("{MCP}=memories:read offline_access")).unwrap(),
    );
    assert!(reason(standard).contains("offline_access"));
    let mut twice = config();
    twice
        .resource_scopes
        .push(ResourceScopes::parse(&format!("{OTHER}=other:read")).unwrap());
    assert!(reason(twice).contains("twice"));
}

#[test]
fn with_resource_scopes_replaces_an_earlier_entry() {
    let config = config()
        .with_resource_scopes(ResourceScopes::parse(&format!("{MCP}=memories:read")).unwrap());
    assert_eq!(config.resource_scopes.len(), 2);
    assert_eq!(
        config.default_scopes_for(&resource(MCP)).map(Scope::as_str),
        Some("memories:read")
    );
    assert_eq!(config.default_scopes_for(&resource(PLAIN)), None);
}
