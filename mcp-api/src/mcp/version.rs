//! [`ProtocolVersion`]: the MCP revisions this server speaks, and the two eras they form.

use std::fmt;

/// An MCP protocol revision this server implements.
///
/// Revisions up to 2025-11-25 are *legacy*: a client opens them with an `initialize`
/// handshake. 2026-07-28 is *modern*: every request carries its version in `_meta` and
/// the `MCP-Protocol-Version` header, and there is no handshake.
///
/// ```
/// use mcp_api::mcp::ProtocolVersion;
///
/// let version = ProtocolVersion::parse("2025-06-18");
/// assert_eq!(version, Some(ProtocolVersion::V2025_06_18));
/// assert!(!ProtocolVersion::V2025_06_18.is_modern());
/// assert!(ProtocolVersion::parse("2099-01-01").is_none());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum ProtocolVersion {
    /// The first revision, with the HTTP+SSE transport.
    V2024_11_05,
    /// Streamable HTTP, tool annotations.
    V2025_03_26,
    /// Structured tool output, the `MCP-Protocol-Version` header.
    V2025_06_18,
    /// SSE priming events, input-validation errors as tool results.
    V2025_11_25,
    /// The stateless core: per-request metadata, `server/discover`, no sessions.
    V2026_07_28,
}

impl ProtocolVersion {
    /// Every supported revision, newest first.
    pub const ALL: [ProtocolVersion; 5] = [
        ProtocolVersion::V2026_07_28,
        ProtocolVersion::V2025_11_25,
        ProtocolVersion::V2025_06_18,
        ProtocolVersion::V2025_03_26,
        ProtocolVersion::V2024_11_05,
    ];

    /// The newest revision an `initialize` handshake can negotiate.
    pub const LATEST_LEGACY: ProtocolVersion = ProtocolVersion::V2025_11_25;

    /// What a Streamable HTTP server assumes when a legacy request names no version.
    pub const STREAMABLE_DEFAULT: ProtocolVersion = ProtocolVersion::V2025_03_26;

    /// The revision named by `text`, if this server implements it.
    #[must_use]
    pub fn parse(text: &str) -> Option<ProtocolVersion> {
        ProtocolVersion::ALL
            .into_iter()
            .find(|version| version.as_str() == text)
    }

    /// The revision's name, as on the wire.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ProtocolVersion::V2024_11_05 => "2024-11-05",
            ProtocolVersion::V2025_03_26 => "2025-03-26",
            ProtocolVersion::V2025_06_18 => "2025-06-18",
            ProtocolVersion::V2025_11_25 => "2025-11-25",
            ProtocolVersion::V2026_07_28 => "2026-07-28",
        }
    }

    /// Whether this is a modern (handshake-free, per-request metadata) revision.
    #[must_use]
    pub fn is_modern(self) -> bool {
        self >= ProtocolVersion::V2026_07_28
    }

    /// The answer to an `initialize` request for `requested`: the same revision if it is a
    /// legacy one this server implements, otherwise the newest legacy revision (the client
    /// then decides whether it can use it).
    ///
    /// ```
    /// use mcp_api::mcp::ProtocolVersion;
    ///
    /// assert_eq!(ProtocolVersion::negotiate("2025-03-26"), ProtocolVersion::V2025_03_26);
    /// assert_eq!(ProtocolVersion::negotiate("1999-01-01"), ProtocolVersion::V2025_11_25);
    /// assert_eq!(ProtocolVersion::negotiate("2026-07-28"), ProtocolVersion::V2025_11_25);
    /// ```
    #[must_use]
    pub fn negotiate(requested: &str) -> ProtocolVersion {
        match ProtocolVersion::parse(requested) {
            Some(version) if !version.is_modern() => version,
            _ => ProtocolVersion::LATEST_LEGACY,
        }
    }

    /// Whether SSE answers in this revision start with a priming event (an `id` and empty
    /// data). Only 2025-11-25 defines it: earlier clients cannot parse an event without
    /// data, and 2026-07-28 removed stream resumption.
    pub(crate) fn primes_sse_streams(self) -> bool {
        self == ProtocolVersion::V2025_11_25
    }

    /// The names of every supported revision, newest first.
    pub(crate) fn supported_names() -> Vec<&'static str> {
        ProtocolVersion::ALL.into_iter().map(Self::as_str).collect()
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_version_round_trips_through_its_name() {
        for version in ProtocolVersion::ALL {
            assert_eq!(ProtocolVersion::parse(version.as_str()), Some(version));
        }
    }

    #[test]
    fn only_2026_is_modern() {
        let modern: Vec<_> = ProtocolVersion::ALL
            .into_iter()
            .filter(|version| version.is_modern())
            .collect();
        assert_eq!(modern, [ProtocolVersion::V2026_07_28]);
    }

    #[test]
    fn priming_is_a_2025_11_25_feature() {
        assert!(ProtocolVersion::V2025_11_25.primes_sse_streams());
        assert!(!ProtocolVersion::V2025_06_18.primes_sse_streams());
        assert!(!ProtocolVersion::V2026_07_28.primes_sse_streams());
    }
}
