//! A `Net`'s configuration, and its per-address limits on inbound connections (issue 13): how
//! many one remote address may hold open and have in handshake at once. One host should not take every inbound slot, nor
//! keep dozens of handshakes (each a Diffie-Hellman or three) going.
//!
//! An IPv4 address counts alone; IPv6 addresses count per /64, since one host is commonly
//! given a whole /64 and could otherwise spread over 2^64 addresses. An IPv4-mapped IPv6
//! address counts as the IPv4 address it maps.

use crate::consts::{MAX_HANDSHAKES_PER_IP, MAX_INBOUND_PER_IP};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

/// What a `Net` is made with.
pub struct NetConfig {
    pub bind: SocketAddr,
    /// X25519 static secret of this peer's Noise identity.
    pub static_secret: [u8; 32],
    /// Per-address caps on inbound connections.
    pub limits: NetLimits,
}

impl NetConfig {
    /// Listen on `bind` with this static secret and the default limits.
    pub fn new(bind: SocketAddr, static_secret: [u8; 32]) -> NetConfig {
        NetConfig { bind, static_secret, limits: NetLimits::default() }
    }
}

/// Per-address caps on inbound connections, part of `NetConfig`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetLimits {
    /// Inbound connections one remote address (IPv6: /64) may hold open; past it a new one
    /// from there is closed at accept.
    pub max_inbound_per_ip: usize,
    /// Inbound handshakes one remote address may have in progress; past it a new connection
    /// from there is closed at accept.
    pub max_handshakes_per_ip: usize,
    /// Loopback addresses are not capped: a local testnet runs hundreds of peers on
    /// 127.0.0.1. Tests of the caps turn this off.
    pub exempt_loopback: bool,
}

impl Default for NetLimits {
    fn default() -> NetLimits {
        NetLimits {
            max_inbound_per_ip: MAX_INBOUND_PER_IP,
            max_handshakes_per_ip: MAX_HANDSHAKES_PER_IP,
            exempt_loopback: true,
        }
    }
}

/// What the caps count connections by: an IPv4 address or an IPv6 /64.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(super) struct Source(IpAddr);

impl Source {
    pub fn of(ip: IpAddr) -> Source {
        match ip {
            IpAddr::V4(_) => Source(ip),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Source(IpAddr::V4(v4)),
                None => {
                    let s = v6.segments();
                    Source(IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0)))
                }
            },
        }
    }

    fn is_loopback(self) -> bool {
        self.0.is_loopback()
    }
}

#[derive(Default, Clone, Copy)]
struct Count {
    inbound: u32,
    handshakes: u32,
}

/// Inbound connections and handshakes per source, kept in step by `Net` as connections
/// open, finish their handshake and close.
pub(super) struct PerSource {
    limits: NetLimits,
    counts: HashMap<Source, Count>,
}

impl PerSource {
    pub fn new(limits: NetLimits) -> PerSource {
        PerSource { limits, counts: HashMap::new() }
    }

    /// Whether one more inbound connection from `s` is within the caps.
    pub fn admits(&self, s: Source) -> bool {
        if self.limits.exempt_loopback && s.is_loopback() {
            return true;
        }
        let c = self.counts.get(&s).copied().unwrap_or_default();
        (c.inbound as usize) < self.limits.max_inbound_per_ip
            && (c.handshakes as usize) < self.limits.max_handshakes_per_ip
    }

    /// Inbound connections open from `s` (eviction prefers the source holding the most).
    pub fn inbound(&self, s: Source) -> usize {
        self.counts.get(&s).map_or(0, |c| c.inbound as usize)
    }

    /// An inbound connection from `s` was accepted; its handshake is under way.
    pub fn opened(&mut self, s: Source) {
        let c = self.counts.entry(s).or_default();
        c.inbound += 1;
        c.handshakes += 1;
    }

    /// An inbound connection from `s` completed its handshake.
    pub fn handshake_done(&mut self, s: Source) {
        if let Some(c) = self.counts.get_mut(&s) {
            c.handshakes = c.handshakes.saturating_sub(1);
        }
    }

    /// An inbound connection from `s` closed, `handshaking` if before its handshake completed.
    pub fn closed(&mut self, s: Source, handshaking: bool) {
        if let Some(c) = self.counts.get_mut(&s) {
            c.inbound = c.inbound.saturating_sub(1);
            if handshaking {
                c.handshakes = c.handshakes.saturating_sub(1);
            }
            if c.inbound == 0 {
                self.counts.remove(&s);
                if self.counts.capacity() > 4 * self.counts.len() + 16 {
                    self.counts.shrink_to(2 * self.counts.len());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Source {
        Source::of(s.parse().unwrap())
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_as_ipv4() {
        assert_eq!(ip("2001:db8:1:2:aaaa::1"), ip("2001:db8:1:2:bbbb::2"));
        assert_ne!(ip("2001:db8:1:2::1"), ip("2001:db8:1:3::1"));
        assert_eq!(ip("::ffff:10.0.0.1"), ip("10.0.0.1"));
        assert_ne!(ip("10.0.0.1"), ip("10.0.0.2"));
    }

    /// The caps hold per source, count handshakes apart, and loopback is exempt only when
    /// the limits say so.
    #[test]
    fn caps_per_source() {
        let limits = NetLimits { max_inbound_per_ip: 3, max_handshakes_per_ip: 2, exempt_loopback: false };
        let mut p = PerSource::new(limits);
        let a = ip("127.0.9.1");
        p.opened(a);
        p.opened(a);
        assert!(!p.admits(a), "two handshakes in progress");
        assert!(p.admits(ip("127.0.9.2")));
        p.handshake_done(a);
        assert!(p.admits(a));
        p.opened(a);
        p.handshake_done(a);
        assert!(!p.admits(a), "three open");
        assert_eq!(p.inbound(a), 3);
        p.closed(a, false);
        assert!(p.admits(a));
        p.closed(a, false);
        p.closed(a, false);
        assert!(p.counts.is_empty(), "a source with nothing open is forgotten");
        let mut open = PerSource::new(NetLimits { exempt_loopback: true, ..limits });
        for _ in 0..10 {
            open.opened(a);
        }
        assert!(open.admits(a));
        let public = ip("192.0.2.7");
        open.opened(public);
        open.opened(public);
        assert!(!open.admits(public), "only loopback is exempt");
    }
}
