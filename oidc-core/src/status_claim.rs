//! The `status` claim of access tokens (draft-ietf-oauth-status-list): which entry of
//! which list holds a token's status. Below both [`jwt`](crate::jwt), which writes the
//! claim, and [`status_list`](crate::status_list), which serves the lists and re-exports
//! everything here.

use serde::{Deserialize, Serialize};

use crate::types::Issuer;

/// The path of status list `n` under the issuer is `{STATUS_LISTS_PATH}/{n}`; the path
/// itself serves the Status List Aggregation (`{"status_lists": [uri, …]}`).
pub const STATUS_LISTS_PATH: &str = "/statuslists";

/// Where an entry lives: list number (from 1) and index in the list (from 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StatusIndex {
    /// The list number; the list is served at `{issuer}/statuslists/{list}`.
    pub list: u64,
    /// The entry within the list.
    pub index: u64,
}

impl StatusIndex {
    /// Entry `index` of list `list`.
    ///
    /// ```
    /// use oidc_core::status_list::StatusIndex;
    ///
    /// let entry = StatusIndex::new(1, 42);
    /// assert_eq!((entry.list, entry.index), (1, 42));
    /// ```
    pub fn new(list: u64, index: u64) -> StatusIndex {
        StatusIndex { list, index }
    }
}

/// The URI of status list `list` of `issuer`: `{issuer}/statuslists/{list}`, which is
/// also the `sub` of its Status List Token.
///
/// ```
/// use oidc_core::status_list::status_list_uri;
/// use oidc_core::types::Issuer;
///
/// let issuer = Issuer::parse("https://auth.example.com/t1/")?;
/// assert_eq!(status_list_uri(&issuer, 3), "https://auth.example.com/t1/statuslists/3");
/// # Ok::<(), oidc_core::InvalidValue>(())
/// ```
pub fn status_list_uri(issuer: &Issuer, list: u64) -> String {
    issuer.join(&format!("{STATUS_LISTS_PATH}/{list}"))
}

/// The `status` claim of a referenced token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusClaim {
    /// The Status List mechanism.
    pub status_list: StatusListReference,
}

/// `status.status_list`: which entry of which list holds the token's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusListReference {
    /// The entry.
    pub idx: u64,
    /// The list's URI (the `sub` of its Status List Token).
    pub uri: String,
}

impl StatusClaim {
    /// The claim for `entry` of `issuer`'s lists.
    ///
    /// ```
    /// use oidc_core::status_list::{StatusClaim, StatusIndex};
    /// use oidc_core::types::Issuer;
    ///
    /// let claim = StatusClaim::new(&Issuer::parse("https://auth.example.com")?, StatusIndex::new(2, 7));
    /// assert_eq!(
    ///     serde_json::to_string(&claim)?,
    ///     r#"{"status_list":{"idx":7,"uri":"https://auth.example.com/statuslists/2"}}"#
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(issuer: &Issuer, entry: StatusIndex) -> StatusClaim {
        StatusClaim {
            status_list: StatusListReference {
                idx: entry.index,
                uri: status_list_uri(issuer, entry.list),
            },
        }
    }
}
