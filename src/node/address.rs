//! Addresses a program names: host names resolved for `connect` and for binding, and the
//! address a peer on the program-supplied transport takes from its uid when the program
//! gives none (PROTOCOL.md §8).

use crate::error::{Error, Result};
use crate::id::Id;
use sha2::{Digest, Sha256};
use std::net::{IpAddr, Ipv6Addr, SocketAddr, ToSocketAddrs};

/// Whether `host` can be a DNS name at all (RFC 1123 labels: letters, digits and inner `-`,
/// 1..63 each, at most 253 in all, an optional final dot; the last label not all digits,
/// RFC 3696 §2, so `999.1.1.1` is a bad address rather than a name). What fails here is
/// unresolvable without asking any resolver, and so is the special-use `.invalid` (RFC 6761
/// §6.4), which resolvers must not look up either.
fn plausible_name(host: &str) -> bool {
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.is_empty() || name.len() > 253 {
        return false;
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    let last = name.rsplit('.').next().unwrap_or("");
    name.split('.').all(label_ok) && !last.eq_ignore_ascii_case("invalid") && !last.bytes().all(|b| b.is_ascii_digit())
}

/// Every address `host` (an IP text or a host name) names, in the resolver's order; empty
/// when it names none.
pub fn resolve(host: &str, port: u16) -> Vec<SocketAddr> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return vec![SocketAddr::new(ip, port)];
    }
    if !plausible_name(host) {
        return Vec::new();
    }
    (host, port).to_socket_addrs().map(|a| a.collect()).unwrap_or_default()
}

/// The addresses of `host` a peer can reach: with `family` (a TCP peer's bound address) only
/// those of that family (a socket bound to 127.0.0.1 cannot reach ::1, which `localhost`
/// often names first); None, all of them.
pub fn reachable(host: &str, port: u16, family: Option<&SocketAddr>) -> Result<Vec<SocketAddr>> {
    let all = resolve(host, port);
    if all.is_empty() {
        return Err(Error::Unreachable(format!("cannot resolve {host:?}")));
    }
    let Some(me) = family else {
        return Ok(all);
    };
    let same: Vec<SocketAddr> = all.iter().copied().filter(|a| a.is_ipv4() == me.is_ipv4()).collect();
    if same.is_empty() {
        let family = if me.is_ipv4() { "IPv4" } else { "IPv6" };
        return Err(Error::Unreachable(format!("{host:?} has no {family} address")));
    }
    Ok(same)
}

/// The IP a peer binds (or takes on the program's network) for `host`: the text itself, or
/// the name's first IPv4 address, else its first address.
pub fn bind_ip(host: &str) -> Result<IpAddr> {
    let all = resolve(host, 0);
    all.iter()
        .find(|a| a.is_ipv4())
        .or(all.first())
        .map(|a| a.ip())
        .ok_or_else(|| Error::Invalid(format!("`ip` is neither an IP address nor a resolvable host name: {host:?}")))
}

/// The address of an external peer whose program gave none: a unique local IPv6 address
/// (fd00::/8) holding 120 bits of SHA-256 of the whole uid, and a port (1024..65535) from 16
/// more. Two uids collide only as SHA-256 does, unlike an address cut from the uid's first
/// bytes.
pub fn derived(uid: &Id) -> SocketAddr {
    let mut h = Sha256::new();
    h.update(b"libpeer external address v1");
    h.update(uid.0);
    let d = h.finalize();
    let mut ip = [0u8; 16];
    ip[0] = 0xfd;
    ip[1..].copy_from_slice(&d[..15]);
    let port = 1024 + u16::from_be_bytes([d[15], d[16]]) % (65535 - 1024 + 1);
    SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_need_no_resolver() {
        assert_eq!(resolve("127.0.0.2", 7), vec!["127.0.0.2:7".parse().unwrap()]);
        assert_eq!(resolve("::1", 7), vec!["[::1]:7".parse().unwrap()]);
        assert_eq!(bind_ip("127.0.0.1").unwrap(), "127.0.0.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn impossible_and_invalid_names_resolve_to_nothing() {
        for host in [
            "",
            "bad host!",
            "a..b",
            "-x",
            "x-",
            "nowhere.invalid",
            "INVALID",
            "x.invalid.",
            "999.1.1.1",
            "1.2.3",
            "999.1.1.1:80",
        ] {
            assert!(resolve(host, 1).is_empty(), "{host:?}");
            assert!(matches!(reachable(host, 1, None), Err(Error::Unreachable(_))));
            assert!(matches!(bind_ip(host), Err(Error::Invalid(_))), "{host:?}");
        }
        assert!(!plausible_name(&"a".repeat(64)));
        assert!(plausible_name("localhost") && plausible_name("example.org.") && plausible_name("a-b.c1"));
    }

    #[test]
    fn localhost_resolves_in_the_peers_family() {
        // /etc/hosts names localhost on every Debian system; no resolver is asked.
        let v4 = reachable("localhost", 9, Some(&"127.0.0.1:1".parse().unwrap())).unwrap();
        assert!(v4.iter().all(|a| a.is_ipv4() && a.ip().is_loopback() && a.port() == 9), "{v4:?}");
        // A program's network has no families: an IPv4 text is reachable from anywhere.
        assert_eq!(reachable("127.0.0.1", 9, None).unwrap(), vec!["127.0.0.1:9".parse().unwrap()]);
        assert!(reachable("127.0.0.1", 9, Some(&"[fd00::1]:1".parse().unwrap())).is_err());
        assert!(bind_ip("localhost").unwrap().is_loopback());
    }

    #[test]
    fn derived_addresses_use_the_whole_uid() {
        let a = Id([7; 32]);
        let mut b = a;
        b.0[31] ^= 1; // shares 31 bytes with `a`
        let (da, db) = (derived(&a), derived(&b));
        assert_eq!(da, derived(&a), "stable");
        assert_ne!(da.ip(), db.ip());
        for d in [da, db] {
            assert!(matches!(d.ip(), IpAddr::V6(v6) if v6.octets()[0] == 0xfd), "{d}");
            assert!(d.port() >= 1024);
        }
    }
}
