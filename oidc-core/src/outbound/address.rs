//! Which IP addresses the provider may connect to: the SSRF policy.
//!
//! Every address a host name resolves to is classified with [`classify`]; a request goes
//! ahead only if [`AddressPolicy::check`] accepts **all** of them (one private address in
//! an answer is enough to refuse: a mixed answer is how rebinding attacks start). The
//! connector then connects only to those vetted addresses (see
//! [`OutboundClient`](super::OutboundClient)).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What kind of network an IP address belongs to, as far as outbound requests care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AddressClass {
    /// A globally routable unicast address.
    Public,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// RFC 1918 (`10/8`, `172.16/12`, `192.168/16`) and IPv6 unique local (`fc00::/7`).
    Private,
    /// Carrier-grade NAT shared space, `100.64.0.0/10` (RFC 6598).
    SharedCgnat,
    /// `169.254.0.0/16` and `fe80::/10`, where cloud metadata services live
    /// (`169.254.169.254`). The well-known metadata addresses outside that range
    /// (`fd00:ec2::254` of AWS, `100.100.100.200` of Alibaba Cloud) are put in this
    /// class too, so that allowing private networks never allows them.
    LinkLocal,
    /// `0.0.0.0/8` and `::` (on Linux, connecting to `0.0.0.0` reaches the local host).
    Unspecified,
    /// `224.0.0.0/4` and `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// Documentation ranges: `192.0.2/24`, `198.51.100/24`, `203.0.113/24`,
    /// `2001:db8::/32`, `3fff::/20`.
    Documentation,
    /// Anything else that is not globally reachable unicast: `192.0.0.0/24`,
    /// `198.18.0.0/15` (benchmarking), `240.0.0.0/4`, `192.88.99.0/24`, `100::/64`,
    /// `2001::/23`, site-local `fec0::/10`, local-use NAT64 `64:ff9b:1::/48`, and IPv6
    /// forms embedding such an IPv4 address that this list does not classify further.
    Reserved,
}

impl AddressClass {
    /// A short name for logs and errors: `"loopback"`, `"private"`, ….
    pub const fn as_str(self) -> &'static str {
        match self {
            AddressClass::Public => "public",
            AddressClass::Loopback => "loopback",
            AddressClass::Private => "private",
            AddressClass::SharedCgnat => "shared (cgnat)",
            AddressClass::LinkLocal => "link-local",
            AddressClass::Unspecified => "unspecified",
            AddressClass::Multicast => "multicast",
            AddressClass::Broadcast => "broadcast",
            AddressClass::Documentation => "documentation",
            AddressClass::Reserved => "reserved",
        }
    }
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Classifies `ip`. IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`),
/// NAT64 (`64:ff9b::/96`) and 6to4 (`2002::/16`) addresses are classified by the IPv4
/// address they embed, so `::ffff:127.0.0.1` is [`AddressClass::Loopback`].
///
/// ```
/// use std::net::IpAddr;
/// use oidc_core::outbound::{AddressClass, classify};
///
/// let ip = |s: &str| s.parse::<IpAddr>().unwrap();
/// assert_eq!(classify(ip("8.8.8.8")), AddressClass::Public);
/// assert_eq!(classify(ip("169.254.169.254")), AddressClass::LinkLocal);
/// assert_eq!(classify(ip("::ffff:10.0.0.1")), AddressClass::Private);
/// assert_eq!(classify(ip("2606:4700::1111")), AddressClass::Public);
/// ```
pub fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    let [a, b, c, d] = ip.octets();
    match (a, b, c) {
        _ if ip.is_broadcast() => AddressClass::Broadcast,
        (100, 100, 100) if d == 200 => AddressClass::LinkLocal,
        (0, _, _) => AddressClass::Unspecified,
        (127, _, _) => AddressClass::Loopback,
        (10, _, _) | (172, 16..=31, _) | (192, 168, _) => AddressClass::Private,
        (100, 64..=127, _) => AddressClass::SharedCgnat,
        (169, 254, _) => AddressClass::LinkLocal,
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => AddressClass::Documentation,
        (224..=239, _, _) => AddressClass::Multicast,
        (192, 0, 0) | (192, 88, 99) | (198, 18..=19, _) | (240..=255, _, _) => {
            AddressClass::Reserved
        }
        _ => AddressClass::Public,
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    let segments = ip.segments();
    let embedded_v4 = |hi: u16, lo: u16| {
        let [h1, h2] = hi.to_be_bytes();
        let [l1, l2] = lo.to_be_bytes();
        Ipv4Addr::new(h1, h2, l1, l2)
    };
    if ip.is_unspecified() {
        return AddressClass::Unspecified;
    }
    if ip.is_loopback() {
        return AddressClass::Loopback;
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    match segments {
        // IPv4-compatible `::a.b.c.d` (deprecated, RFC 4291 §2.5.5.1).
        [0, 0, 0, 0, 0, 0, hi, lo] => non_public(classify_v4(embedded_v4(hi, lo))),
        // NAT64 well-known prefix (RFC 6052): the gateway connects to the embedded address.
        [0x0064, 0xff9b, 0, 0, 0, 0, hi, lo] => classify_v4(embedded_v4(hi, lo)),
        // Local-use NAT64 (RFC 8215).
        [0x0064, 0xff9b, 0x0001, ..] => AddressClass::Reserved,
        // Discard-only (RFC 6666).
        [0x0100, 0, 0, 0, ..] => AddressClass::Reserved,
        // Documentation (RFC 3849, RFC 9637).
        [0x2001, 0x0db8, ..] => AddressClass::Documentation,
        [0x3fff, s, ..] if s & 0xf000 == 0 => AddressClass::Documentation,
        // IETF protocol assignments (Teredo, benchmarking, ORCHID…).
        [0x2001, s, ..] if s < 0x0200 => AddressClass::Reserved,
        // 6to4 (RFC 3056): the relay connects to the embedded address.
        [0x2002, hi, lo, ..] => non_public(classify_v4(embedded_v4(hi, lo))),
        // AWS instance metadata over IPv6.
        [0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254] => AddressClass::LinkLocal,
        [s, ..] if s & 0xfe00 == 0xfc00 => AddressClass::Private,
        [s, ..] if s & 0xffc0 == 0xfe80 => AddressClass::LinkLocal,
        [s, ..] if s & 0xffc0 == 0xfec0 => AddressClass::Reserved,
        [s, ..] if s & 0xff00 == 0xff00 => AddressClass::Multicast,
        _ => AddressClass::Public,
    }
}

/// An IPv6 form that merely embeds a public IPv4 address is still not a normal public
/// IPv6 destination; only the non-public classes of the embedded address are kept.
fn non_public(class: AddressClass) -> AddressClass {
    match class {
        AddressClass::Public => AddressClass::Reserved,
        other => other,
    }
}

/// Which addresses outbound requests may reach. The default, [`AddressPolicy::public_only`],
/// accepts only [`AddressClass::Public`].
///
/// Link-local (cloud metadata), unspecified, multicast, broadcast, documentation and
/// reserved addresses are refused by every policy.
///
/// ```
/// use std::net::IpAddr;
/// use oidc_core::outbound::{AddressClass, AddressPolicy};
///
/// let ip = |s: &str| s.parse::<IpAddr>().unwrap();
/// let policy = AddressPolicy::public_only();
/// assert!(policy.check(ip("93.184.215.14")).is_ok());
/// assert_eq!(policy.check(ip("10.1.2.3")).unwrap_err().class(), AddressClass::Private);
///
/// let tests = AddressPolicy::public_only().insecure_allow_loopback();
/// assert!(tests.check(ip("127.0.0.1")).is_ok());
/// assert!(tests.check(ip("169.254.169.254")).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddressPolicy {
    allow_loopback: bool,
    allow_private: bool,
}

impl AddressPolicy {
    /// Only globally routable unicast addresses.
    pub const fn public_only() -> Self {
        AddressPolicy {
            allow_loopback: false,
            allow_private: false,
        }
    }

    /// Also accept loopback addresses (`127.0.0.0/8`, `::1`).
    ///
    /// Insecure: only for tests that run their peers on the local host. A provider with
    /// this policy can be made to call its own admin ports.
    #[must_use]
    pub const fn insecure_allow_loopback(mut self) -> Self {
        self.allow_loopback = true;
        self
    }

    /// Also accept private networks: RFC 1918, IPv6 unique local, and CGNAT `100.64/10`.
    ///
    /// Insecure: for tests, or for a deployment whose upstream really lives on an internal
    /// network. Never for metadata documents, whose URLs anyone can choose.
    #[must_use]
    pub const fn insecure_allow_private_networks(mut self) -> Self {
        self.allow_private = true;
        self
    }

    /// Accepts `ip`, or says which class made it unacceptable.
    pub fn check(&self, ip: IpAddr) -> Result<(), AddressRefused> {
        let class = classify(ip);
        let allowed = match class {
            AddressClass::Public => true,
            AddressClass::Loopback => self.allow_loopback,
            AddressClass::Private | AddressClass::SharedCgnat => self.allow_private,
            _ => false,
        };
        if allowed {
            Ok(())
        } else {
            Err(AddressRefused { class })
        }
    }

    /// Accepts a whole DNS answer only if every address in it is acceptable (and there is
    /// at least one).
    pub fn check_all(&self, ips: &[IpAddr]) -> Result<(), AddressRefused> {
        if ips.is_empty() {
            return Err(AddressRefused {
                class: AddressClass::Unspecified,
            });
        }
        ips.iter().try_for_each(|ip| self.check(*ip))
    }
}

impl Default for AddressPolicy {
    fn default() -> Self {
        AddressPolicy::public_only()
    }
}

/// An address was refused by the [`AddressPolicy`]. The message names the class, not the
/// address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("destination address is {class}, which outbound requests may not reach")]
pub struct AddressRefused {
    class: AddressClass,
}

impl AddressRefused {
    /// The class of the refused address.
    pub fn class(&self) -> AddressClass {
        self.class
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(s: &str) -> AddressClass {
        classify(s.parse().unwrap())
    }

    #[test]
    fn ipv4_ranges() {
        use AddressClass::*;
        for (ip, expected) in [
            ("1.1.1.1", Public),
            ("8.8.8.8", Public),
            ("0.0.0.0", Unspecified),
            ("0.1.2.3", Unspecified),
            ("127.0.0.1", Loopback),
            ("127.255.255.254", Loopback),
            ("10.0.0.1", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("172.32.0.1", Public),
            ("172.15.255.255", Public),
            ("192.168.1.1", Private),
            ("100.64.0.1", SharedCgnat),
            ("100.127.255.255", SharedCgnat),
            ("100.128.0.1", Public),
            ("100.100.100.200", LinkLocal),
            ("169.254.169.254", LinkLocal),
            ("192.0.2.1", Documentation),
            ("198.51.100.7", Documentation),
            ("203.0.113.9", Documentation),
            ("224.0.0.1", Multicast),
            ("239.255.255.250", Multicast),
            ("255.255.255.255", Broadcast),
            ("240.0.0.1", Reserved),
            ("192.0.0.8", Reserved),
            ("198.18.0.1", Reserved),
            ("192.88.99.1", Reserved),
        ] {
            assert_eq!(class(ip), expected, "{ip}");
        }
    }

    #[test]
    fn ipv6_ranges() {
        use AddressClass::*;
        for (ip, expected) in [
            ("2606:4700:4700::1111", Public),
            ("2a00:1450:4001::200e", Public),
            ("::", Unspecified),
            ("::1", Loopback),
            ("fc00::1", Private),
            ("fd12:3456::1", Private),
            ("fe80::1", LinkLocal),
            ("febf::1", LinkLocal),
            ("fec0::1", Reserved),
            ("ff02::1", Multicast),
            ("2001:db8::1", Documentation),
            ("3fff::1", Documentation),
            ("3fff:1000::1", Public),
            ("fd00:ec2::254", LinkLocal),
            ("2001::1", Reserved),
            ("100::1", Reserved),
            ("64:ff9b:1::1", Reserved),
            ("::ffff:127.0.0.1", Loopback),
            ("::ffff:169.254.169.254", LinkLocal),
            ("::ffff:10.1.1.1", Private),
            ("::ffff:8.8.8.8", Public),
            ("::127.0.0.1", Loopback),
            ("::8.8.8.8", Reserved),
            ("64:ff9b::a9fe:a9fe", LinkLocal),
            ("64:ff9b::808:808", Public),
            ("2002:7f00:1::1", Loopback),
            ("2002:a00:1::1", Private),
            ("2002:808:808::1", Reserved),
        ] {
            assert_eq!(class(ip), expected, "{ip}");
        }
    }

    #[test]
    fn policies() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let strict = AddressPolicy::default();
        assert_eq!(strict, AddressPolicy::public_only());
        assert!(strict.check(ip("1.1.1.1")).is_ok());
        assert!(strict.check(ip("127.0.0.1")).is_err());
        assert!(strict.check(ip("192.168.0.1")).is_err());

        let loopback = strict.insecure_allow_loopback();
        assert!(loopback.check(ip("127.0.0.1")).is_ok());
        assert!(loopback.check(ip("::1")).is_ok());
        assert!(loopback.check(ip("10.0.0.1")).is_err());

        let private = strict.insecure_allow_private_networks();
        assert!(private.check(ip("10.0.0.1")).is_ok());
        assert!(private.check(ip("fd00::1")).is_ok());
        assert!(private.check(ip("100.64.1.1")).is_ok());
        assert!(private.check(ip("127.0.0.1")).is_err());

        let everything = private.insecure_allow_loopback();
        for never in [
            "169.254.169.254",
            "fe80::1",
            "0.0.0.0",
            "::",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.2.1",
        ] {
            assert!(everything.check(ip(never)).is_err(), "{never}");
        }
    }

    #[test]
    fn one_bad_address_spoils_the_answer() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let policy = AddressPolicy::public_only();
        assert!(policy.check_all(&[ip("1.1.1.1"), ip("8.8.8.8")]).is_ok());
        assert_eq!(
            policy
                .check_all(&[ip("1.1.1.1"), ip("127.0.0.1")])
                .unwrap_err()
                .class(),
            AddressClass::Loopback
        );
        assert!(policy.check_all(&[]).is_err());
    }
}
