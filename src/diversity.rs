//! Address diversity (SECURITY.md): how many routing contacts, holders of one record and
//! stored records one IP address or one network prefix (an IPv4 /24, an IPv6 /48) may
//! take. An attacker has many uids and keys for free but few addresses, so these limits
//! are what keeps one address from filling a routing table, standing as all the holders
//! of a key, or filling a store.
//!
//! Local test networks run hundreds of peers on one loopback address, so by default the
//! limits do not count loopback addresses (`exempt_loopback`); `Diversity::strict` counts
//! them too (the attack tests put honest peers and the attacker on different 127.x.y.z).

use std::net::IpAddr;

/// A network prefix an attacker is assumed to control whole: the /24 of an IPv4 address,
/// the /48 of an IPv6 one (a site's allocation).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Prefix(u64);

impl Prefix {
    pub fn of(ip: IpAddr) -> Prefix {
        match canonical(ip) {
            IpAddr::V4(v4) => Prefix(u64::from(u32::from(v4) >> 8)),
            // Tagged so an IPv6 /48 never equals an IPv4 /24.
            IpAddr::V6(v6) => Prefix((1 << 63) | (u128::from(v6) >> 80) as u64),
        }
    }
}

/// An IPv4-mapped IPv6 address counts as the IPv4 address it carries.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The limits, per routing-table bucket, per routing table, and per set of peers one store
/// goes to or one read asks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Diversity {
    /// Contacts of one bucket on one IP address.
    pub ip_per_bucket: usize,
    /// Contacts of one bucket in one prefix.
    pub prefix_per_bucket: usize,
    /// Contacts of the whole table on one IP address.
    pub ip_per_table: usize,
    /// Contacts of the whole table in one prefix.
    pub prefix_per_table: usize,
    /// Peers on one IP address among those a lookup counts as the nearest (the holders a
    /// store goes to, the peers a read asks).
    pub ip_per_set: usize,
    /// Peers in one prefix among them: of `replication` r, at most ceil(r / 3), so an
    /// attacker's prefix is a minority of every holder set.
    pub prefix_share_per_set: usize,
    /// Loopback addresses are not counted (local test networks).
    pub exempt_loopback: bool,
}

impl Default for Diversity {
    /// The internet's limits, loopback exempt. aMule's Kad keeps two contacts per /24 in a
    /// bucket of 10 and one per IP in its whole table; with buckets of 20, and NATs putting
    /// several peers behind one address, these allow a little more.
    fn default() -> Self {
        Diversity {
            ip_per_bucket: 2,
            prefix_per_bucket: 4,
            ip_per_table: 4,
            prefix_per_table: 16,
            ip_per_set: 1,
            prefix_share_per_set: 3,
            exempt_loopback: true,
        }
    }
}

impl Diversity {
    /// The same limits, counting loopback addresses too.
    pub fn strict() -> Diversity {
        Diversity { exempt_loopback: false, ..Diversity::default() }
    }

    /// No limits at all.
    pub fn off() -> Diversity {
        Diversity {
            ip_per_bucket: usize::MAX,
            prefix_per_bucket: usize::MAX,
            ip_per_table: usize::MAX,
            prefix_per_table: usize::MAX,
            ip_per_set: usize::MAX,
            prefix_share_per_set: 1,
            exempt_loopback: true,
        }
    }

    /// Whether `ip` is counted at all.
    pub fn counts(&self, ip: IpAddr) -> bool {
        !(self.exempt_loopback && canonical(ip).is_loopback())
    }

    /// Peers of one prefix allowed in a set of `n`.
    pub fn prefix_per_set(&self, n: usize) -> usize {
        n.div_ceil(self.prefix_share_per_set.max(1)).max(1)
    }

    /// How the C ABI, the Schemes and the command line name a setting: 0 the default,
    /// 1 strict, 2 off.
    pub fn from_code(code: u32) -> Option<Diversity> {
        match code {
            0 => Some(Diversity::default()),
            1 => Some(Diversity::strict()),
            2 => Some(Diversity::off()),
            _ => None,
        }
    }
}

/// Counts of addresses and prefixes in a set being built (a lookup's nearest, a bucket).
#[derive(Default, Debug)]
pub struct Tally {
    ips: Vec<(IpAddr, usize)>,
    prefixes: Vec<(Prefix, usize)>,
}

impl Tally {
    /// Whether one more peer at `ip` keeps within (`per_ip`, `per_prefix`).
    pub fn fits(&self, d: &Diversity, ip: IpAddr, per_ip: usize, per_prefix: usize) -> bool {
        if !d.counts(ip) {
            return true;
        }
        let ip = canonical(ip);
        let p = Prefix::of(ip);
        let n_ip = self.ips.iter().find(|e| e.0 == ip).map_or(0, |e| e.1);
        let n_prefix = self.prefixes.iter().find(|e| e.0 == p).map_or(0, |e| e.1);
        n_ip < per_ip && n_prefix < per_prefix
    }

    /// Count one more peer at `ip`.
    pub fn add(&mut self, d: &Diversity, ip: IpAddr) {
        if !d.counts(ip) {
            return;
        }
        let ip = canonical(ip);
        let p = Prefix::of(ip);
        match self.ips.iter_mut().find(|e| e.0 == ip) {
            Some(e) => e.1 += 1,
            None => self.ips.push((ip, 1)),
        }
        match self.prefixes.iter_mut().find(|e| e.0 == p) {
            Some(e) => e.1 += 1,
            None => self.prefixes.push((p, 1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_limits() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(Prefix::of(ip("10.1.2.3")), Prefix::of(ip("10.1.2.200")));
        assert_ne!(Prefix::of(ip("10.1.2.3")), Prefix::of(ip("10.1.3.3")));
        assert_eq!(Prefix::of(ip("::ffff:10.1.2.3")), Prefix::of(ip("10.1.2.9")));
        assert_eq!(Prefix::of(ip("2001:db8:1::1")), Prefix::of(ip("2001:db8:1:ffff::2")));
        assert_ne!(Prefix::of(ip("2001:db8:1::1")), Prefix::of(ip("2001:db8:2::1")));
        let d = Diversity::strict();
        let mut t = Tally::default();
        assert!(t.fits(&d, ip("127.0.9.1"), 1, 2));
        t.add(&d, ip("127.0.9.1"));
        assert!(!t.fits(&d, ip("127.0.9.1"), 1, 2), "one per IP");
        assert!(t.fits(&d, ip("127.0.9.2"), 1, 2));
        t.add(&d, ip("127.0.9.2"));
        assert!(!t.fits(&d, ip("127.0.9.3"), 1, 2), "two per prefix");
        assert!(t.fits(&d, ip("127.0.8.3"), 1, 2));
        // The default does not count loopback.
        let mut t = Tally::default();
        for _ in 0..10 {
            assert!(t.fits(&Diversity::default(), ip("127.0.0.1"), 1, 1));
            t.add(&Diversity::default(), ip("127.0.0.1"));
        }
        assert_eq!(d.prefix_per_set(5), 2);
        assert_eq!(d.prefix_per_set(20), 7);
        assert_eq!(d.prefix_per_set(1), 1);
    }
}
