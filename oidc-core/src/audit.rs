//! Security audit events, logged with `tracing` under the target `audit`.
//!
//! Events carry identifiers (client ids, subjects, key ids, reasons) and never a token,
//! code, secret, password or email address.

/// Something a security reviewer wants a record of.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuditEvent<'a> {
    /// An authorization code was issued.
    CodeIssued {
        /// The client.
        client_id: &'a str,
        /// The user.
        subject: &'a str,
        /// The scope granted, including a resource's default scopes.
        scope: &'a str,
    },
    /// A code was redeemed for tokens.
    CodeRedeemed {
        /// The client.
        client_id: &'a str,
    },
    /// A code was presented again: every token issued from it has been revoked.
    CodeReplayed {
        /// The client that presented it.
        client_id: &'a str,
    },
    /// A refresh token was rotated.
    RefreshRotated {
        /// The client.
        client_id: &'a str,
    },
    /// An already-used refresh token was presented: its whole family is revoked.
    RefreshReused {
        /// The client that presented it.
        client_id: &'a str,
    },
    /// A token was revoked at the revocation endpoint.
    TokenRevoked {
        /// The client.
        client_id: &'a str,
    },
    /// A user revoked a client's grants through the account API.
    AccountGrantsRevoked {
        /// The user.
        subject: &'a str,
        /// The client whose grants were revoked.
        client_id: &'a str,
        /// How many grants were revoked.
        grants: u64,
        /// The client with account access that asked.
        through: &'a str,
    },
    /// A client registered (dynamic registration or a metadata document).
    ClientRegistered {
        /// The new client.
        client_id: &'a str,
        /// How: `"dcr"` or `"metadata_document"`.
        how: &'a str,
    },
    /// The signing key changed state.
    KeyRotated {
        /// The key.
        kid: &'a str,
        /// Its new state: `"generated"`, `"activated"`, `"retired"`, `"dropped"`.
        state: &'a str,
    },
    /// A user logged in.
    LoginSucceeded {
        /// The login method's name.
        method: &'a str,
        /// Our subject for the user.
        subject: &'a str,
    },
    /// A login was refused.
    LoginRefused {
        /// The login method's name.
        method: &'a str,
        /// Why, e.g. `"email_not_verified"`, `"hosted_domain_mismatch"`, `"bad_password"`.
        reason: &'a str,
    },
    /// Too many failed logins: further attempts wait.
    LoginLockedOut {
        /// The login method's name.
        method: &'a str,
    },
    /// A request was refused by a rate limit.
    RateLimited {
        /// The endpoint.
        endpoint: &'a str,
    },
}

/// Logs `event` at `info` under the target `audit`.
pub fn record(event: &AuditEvent<'_>) {
    match event {
        AuditEvent::CodeIssued {
            client_id,
            subject,
            scope,
        } => {
            tracing::info!(target: "audit", event = "code_issued", client_id, subject, scope);
        }
        AuditEvent::CodeRedeemed { client_id } => {
            tracing::info!(target: "audit", event = "code_redeemed", client_id);
        }
        AuditEvent::CodeReplayed { client_id } => {
            tracing::warn!(target: "audit", event = "code_replayed", client_id, "tokens issued from the code were revoked");
        }
        AuditEvent::RefreshRotated { client_id } => {
            tracing::info!(target: "audit", event = "refresh_rotated", client_id);
        }
        AuditEvent::RefreshReused { client_id } => {
            tracing::warn!(target: "audit", event = "refresh_reused", client_id, "the token family was revoked");
        }
        AuditEvent::TokenRevoked { client_id } => {
            tracing::info!(target: "audit", event = "token_revoked", client_id);
        }
        AuditEvent::AccountGrantsRevoked {
            subject,
            client_id,
            grants,
            through,
        } => {
            tracing::info!(target: "audit", event = "account_grants_revoked", subject, client_id, grants, through);
        }
        AuditEvent::ClientRegistered { client_id, how } => {
            tracing::info!(target: "audit", event = "client_registered", client_id, how);
        }
        AuditEvent::KeyRotated { kid, state } => {
            tracing::info!(target: "audit", event = "key_rotated", kid, state);
        }
        AuditEvent::LoginSucceeded { method, subject } => {
            tracing::info!(target: "audit", event = "login_succeeded", method, subject);
        }
        AuditEvent::LoginRefused { method, reason } => {
            tracing::warn!(target: "audit", event = "login_refused", method, reason);
        }
        AuditEvent::LoginLockedOut { method } => {
            tracing::warn!(target: "audit", event = "login_locked_out", method);
        }
        AuditEvent::RateLimited { endpoint } => {
            tracing::warn!(target: "audit", event = "rate_limited", endpoint);
        }
    }
}
