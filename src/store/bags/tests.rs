//! Tests of `bags`.

use super::*;
use crate::consts;
use rand::{RngCore, SeedableRng};
use std::collections::HashSet;

const TTL: u64 = consts::BAG_ENTRY_TTL_US;
const K: Id = Id([7; 32]);

fn v(i: u8) -> [u8; 32] {
    [i; 32]
}
fn publisher(i: u32) -> [u8; 32] {
    let mut p = [0xAA; 32];
    p[..4].copy_from_slice(&i.to_be_bytes());
    p
}
fn limits() -> BagLimits {
    BagLimits {
        ttl_us: TTL,
        per_key: consts::MAX_BAG_ENTRIES_PER_KEY,
        total: consts::MAX_BAG_ENTRIES_TOTAL,
        publishers_per_entry: consts::MAX_PUBLISHERS_PER_ENTRY,
    }
}
fn small(per_key: usize, total: usize) -> Bags {
    Bags::new(BagLimits { per_key, total, ..limits() })
}
fn no_rand() -> u64 {
    panic!("only sampling draws")
}
fn query(s: &mut Bags, key: &Id, kind: BagKind, max: usize, now: u64) -> Vec<BagEntry> {
    s.query(key, kind, max, now, &mut no_rand)
}
fn values(es: &[BagEntry]) -> Vec<[u8; 32]> {
    es.iter().map(|e| e.value).collect()
}
/// Publish `value` by `n` distinct publishers (numbered from `first`) at `now`.
fn publish_n(s: &mut Bags, key: Id, value: [u8; 32], first: u32, n: u32, now: u64) {
    for i in first..first + n {
        assert!(s.add(key, value, publisher(i), now));
    }
}

/// The derived structures agree with the entries, and nothing stored is dead at `now`.
fn assert_consistent(s: &Bags, now: u64) {
    let ttl = s.limits.ttl_us;
    let mut total = 0;
    let mut index = BTreeSet::new();
    for (k, bag) in &s.bags {
        assert!(!bag.entries.is_empty() && bag.entries.len() <= s.limits.per_key);
        let rank: BTreeSet<Rank> = bag.entries.iter().map(|(v, e)| e.rank(*v)).collect();
        assert_eq!(rank, bag.rank);
        for e in bag.entries.values() {
            assert!(!e.publishers.is_empty() && e.publishers.len() <= s.limits.publishers_per_entry);
            assert!(e.publishers.values().all(|&t| t + ttl > now && t <= e.latest));
            assert!(e.publishers.iter().all(|(p, t)| e.order.contains(&(*t, *p))));
        }
        total += bag.entries.len();
        index.insert((bag.entries.len(), Reverse(bag.latest), *k));
    }
    assert_eq!(total, s.entries);
    assert!(total <= s.limits.total);
    assert_eq!(index, s.index);
    let due: HashSet<(u64, Id, [u8; 32])> = s.heap.iter().map(|r| r.0).collect();
    for (k, bag) in &s.bags {
        for (v, e) in &bag.entries {
            assert!(due.contains(&(e.due, *k, *v)), "every entry is scheduled");
        }
    }
}

#[test]
fn random_operations_keep_the_store_consistent() {
    let mut s = Bags::new(BagLimits { ttl_us: 1_000, per_key: 5, total: 12, publishers_per_entry: 3 });
    let mut rng = rand::rngs::StdRng::seed_from_u64(99);
    let mut now = 0;
    let (mut added, mut refused) = (0, 0);
    for _ in 0..10_000 {
        now += rng.next_u64() % 60;
        let key = Id([(rng.next_u64() % 6) as u8; 32]);
        match rng.next_u64() % 4 {
            0 => {
                let kind = [BagKind::Popular, BagKind::Recent, BagKind::Sample][(rng.next_u64() % 3) as usize];
                let mut r2 = rand::rngs::StdRng::seed_from_u64(now);
                let r = s.query(&key, kind, 3, now, &mut || r2.next_u64());
                assert!(r.len() <= 3 && r.iter().all(|e| (1..=3).contains(&e.count) && e.seconds == 0));
            }
            1 => s.expire(now),
            _ => {
                let ok = s.add(key, v((rng.next_u64() % 9) as u8), publisher((rng.next_u64() % 5) as u32), now);
                if ok {
                    added += 1
                } else {
                    refused += 1
                }
            }
        }
        assert_consistent(&s, now);
    }
    assert!(added > 500 && refused > 0, "both paths exercised: {added} added, {refused} refused");
    s.expire(now + 1_000);
    assert_eq!(s.len(), 0);
    assert_consistent(&s, now + 1_000);
}

#[test]
fn popularity_counts_distinct_publishers() {
    let mut s = Bags::new(limits());
    for t in 0..1000 {
        assert!(s.add(K, v(1), publisher(0), t));
    }
    publish_n(&mut s, K, v(2), 0, 5, 1000);
    let r = query(&mut s, &K, BagKind::Popular, 20, 1000);
    assert_eq!(r.len(), 2);
    assert_eq!((r[0].value, r[0].count), (v(2), 5));
    assert_eq!((r[1].value, r[1].count), (v(1), 1));
    // A thousand republishes do not pile up records.
    assert!(s.bags[&K].entries[&v(1)].order.len() <= 18);
    assert_eq!(s.len(), 2);
}

#[test]
fn publishers_per_entry_saturate() {
    let mut s = Bags::new(BagLimits { publishers_per_entry: 3, ..limits() });
    for i in 0..5 {
        assert!(s.add(K, v(1), publisher(i), 1_000_000 * i as u64));
    }
    let r = query(&mut s, &K, BagKind::Popular, 20, 5_000_000);
    assert_eq!((r[0].count, r[0].seconds), (3, 1));
    // The oldest publishers were forgotten: publisher 4 republishing does not raise the count.
    assert!(s.add(K, v(1), publisher(4), 6_000_000));
    assert_eq!(query(&mut s, &K, BagKind::Popular, 20, 6_000_000)[0].count, 3);
}

#[test]
fn popular_and_recent_orderings() {
    let mut s = Bags::new(limits());
    publish_n(&mut s, K, v(1), 0, 3, 10); // 3 publishers, old
    publish_n(&mut s, K, v(4), 30, 2, 15_000_000); // 2 publishers
    publish_n(&mut s, K, v(2), 10, 1, 20_000_000); // 1 publisher
    publish_n(&mut s, K, v(5), 40, 3, 25_000_000); // 3 publishers, newer than v(1)
    publish_n(&mut s, K, v(3), 20, 1, 30_000_000); // 1 publisher, newest
    let now = 40_000_000;
    let p = query(&mut s, &K, BagKind::Popular, 20, now);
    assert_eq!(values(&p), vec![v(5), v(1), v(4), v(3), v(2)]);
    assert_eq!(p.iter().map(|e| e.count).collect::<Vec<_>>(), vec![3, 3, 2, 1, 1]);
    assert_eq!(p.iter().map(|e| e.seconds).collect::<Vec<_>>(), vec![15, 39, 25, 10, 20]);
    let r = query(&mut s, &K, BagKind::Recent, 20, now);
    assert_eq!(values(&r), vec![v(3), v(5), v(2), v(4), v(1)]);
    assert_eq!(values(&query(&mut s, &K, BagKind::Popular, 2, now)), vec![v(5), v(1)]);
    assert_eq!(values(&query(&mut s, &K, BagKind::Recent, 3, now)), vec![v(3), v(5), v(2)]);
    assert!(query(&mut s, &K, BagKind::Recent, 0, now).is_empty());
    assert!(query(&mut s, &Id([9; 32]), BagKind::Popular, 20, now).is_empty());
}

#[test]
fn sample_is_a_subset_without_duplicates_covering_all() {
    let mut s = Bags::new(limits());
    for i in 0..10 {
        publish_n(&mut s, K, v(i), u32::from(i) * 10, 1 + u32::from(i % 3), 100);
    }
    let all: HashSet<[u8; 32]> = (0..10).map(v).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let mut seen = HashSet::new();
    for _ in 0..200 {
        let r = s.query(&K, BagKind::Sample, 4, 200, &mut || rng.next_u64());
        let got: HashSet<[u8; 32]> = values(&r).into_iter().collect();
        assert_eq!((r.len(), got.len()), (4, 4), "four distinct entries");
        assert!(got.is_subset(&all));
        seen.extend(got);
    }
    assert_eq!(seen, all, "every entry is drawn sometimes");
    let r = s.query(&K, BagKind::Sample, 50, 200, &mut || rng.next_u64());
    assert_eq!(values(&r).into_iter().collect::<HashSet<_>>(), all, "max above size gives all");
    // Counts and ages are carried along.
    assert!(r.iter().all(|e| e.count == 1 + u32::from(e.value[0] % 3) && e.seconds == 0));
}

#[test]
fn sample_is_uniform() {
    let mut s = Bags::new(limits());
    for i in 0..10 {
        // Unequal popularity and age must not bias the sample.
        publish_n(&mut s, K, v(i), u32::from(i) * 10, 1 + u32::from(i), u64::from(i) * 1000);
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(2024);
    let mut hits = [0u32; 10];
    let draws = 10_000;
    for _ in 0..draws {
        let r = s.query(&K, BagKind::Sample, 1, 10_000, &mut || rng.next_u64());
        assert_eq!(r.len(), 1);
        hits[r[0].value[0] as usize] += 1;
    }
    let expected = f64::from(draws) / 10.0;
    let chi2: f64 = hits.iter().map(|&h| (f64::from(h) - expected).powi(2) / expected).sum();
    // Chi-square with 9 degrees of freedom: P(X > 27.877) = 0.001.
    assert!(chi2 < 27.877, "chi-square {chi2} for {hits:?}");
}

#[test]
fn entries_expire_after_the_ttl_and_republishing_refreshes() {
    let mut s = Bags::new(limits());
    assert!(s.add(K, v(1), publisher(1), 0));
    assert!(s.add(K, v(2), publisher(1), 0));
    assert!(s.add(K, v(1), publisher(2), TTL / 2));
    let r = query(&mut s, &K, BagKind::Popular, 20, TTL - 1);
    assert_eq!((r[0].value, r[0].count, r[0].seconds), (v(1), 2, (TTL / 2 - 1) / 1_000_000));
    assert_eq!(r.len(), 2);
    // At TTL publisher 1's publishes stop counting: v(2) is gone, v(1) has one publisher.
    let r = query(&mut s, &K, BagKind::Popular, 20, TTL);
    assert_eq!(values(&r), vec![v(1)]);
    assert_eq!(r[0].count, 1);
    assert_eq!(s.len(), 1);
    // Publisher 1 republishes: counted again, and outlives publisher 2.
    assert!(s.add(K, v(1), publisher(1), TTL));
    assert_eq!(query(&mut s, &K, BagKind::Popular, 20, TTL)[0].count, 2);
    s.expire(TTL / 2 + TTL);
    let r = query(&mut s, &K, BagKind::Recent, 20, TTL / 2 + TTL);
    assert_eq!((r.len(), r[0].count, r[0].seconds), (1, 1, TTL / 2 / 1_000_000));
    s.expire(2 * TTL);
    assert_eq!(s.len(), 0);
    assert!(s.bags.is_empty() && s.index.is_empty() && s.heap.is_empty());
    assert!(query(&mut s, &K, BagKind::Popular, 20, 2 * TTL).is_empty());
}

#[test]
fn full_bag_evicts_least_popular_then_oldest() {
    let mut s = small(3, 100);
    publish_n(&mut s, K, v(1), 0, 2, 1);
    publish_n(&mut s, K, v(2), 10, 1, 2);
    publish_n(&mut s, K, v(3), 20, 1, 3);
    assert!(s.add(K, v(4), publisher(30), 4));
    let mut got = values(&query(&mut s, &K, BagKind::Popular, 20, 5));
    got.sort();
    assert_eq!(got, vec![v(1), v(3), v(4)], "v(2): one publisher, oldest");
    // Everyone stored is more popular than a newcomer: the newcomer is refused.
    publish_n(&mut s, K, v(3), 40, 1, 6);
    publish_n(&mut s, K, v(4), 50, 1, 6);
    assert!(!s.add(K, v(5), publisher(60), 7));
    assert_eq!(s.len(), 3);
    // Expired entries make room: only v(1), republished, is still live at TTL + 6.
    publish_n(&mut s, K, v(1), 70, 1, TTL);
    assert!(s.add(K, v(5), publisher(60), TTL + 6));
    let got = query(&mut s, &K, BagKind::Popular, 20, TTL + 6);
    assert_eq!(
        got.iter().map(|e| (e.value, e.count)).collect::<Vec<_>>(),
        vec![(v(5), 1), (v(1), 1)],
        "ties: newest first"
    );
}

#[test]
fn churn_keeps_the_expiry_heap_bounded() {
    let mut s = small(3, 100);
    for i in 0..5000u32 {
        let mut val = [0u8; 32];
        val[..4].copy_from_slice(&i.to_be_bytes());
        assert!(s.add(K, val, publisher(i), u64::from(i)));
    }
    assert_eq!(s.len(), 3);
    assert!(s.heap.len() <= 2 * 3 + 1024 + 1, "heap {}", s.heap.len());
    assert_consistent(&s, 5000);
    s.expire(5000 + TTL);
    assert_eq!((s.len(), s.heap.len()), (0, 0));
}

#[test]
fn total_bound_evicts_from_the_largest_bag() {
    let (k1, k2, k3) = (Id([1; 32]), Id([2; 32]), Id([3; 32]));
    let mut s = small(10, 4);
    publish_n(&mut s, k1, v(1), 0, 1, 1);
    publish_n(&mut s, k1, v(2), 10, 2, 2);
    publish_n(&mut s, k1, v(3), 20, 1, 3);
    publish_n(&mut s, k2, v(1), 30, 1, 0);
    assert!(s.add(k3, v(9), publisher(40), 5));
    assert_eq!(s.len(), 4);
    let mut got = values(&query(&mut s, &k1, BagKind::Popular, 20, 6));
    got.sort();
    assert_eq!(got, vec![v(2), v(3)], "k1 is largest; v(1) its least popular, oldest");
    assert_eq!(query(&mut s, &k2, BagKind::Popular, 20, 6).len(), 1);
    assert_eq!(query(&mut s, &k3, BagKind::Popular, 20, 6).len(), 1);
    // Equal sizes: the bag published to least recently gives way.
    let mut s = small(10, 2);
    publish_n(&mut s, k1, v(1), 0, 1, 1);
    publish_n(&mut s, k2, v(1), 0, 1, 2);
    assert!(s.add(k3, v(1), publisher(0), 3));
    assert!(query(&mut s, &k1, BagKind::Popular, 20, 4).is_empty());
    assert_eq!(query(&mut s, &k2, BagKind::Popular, 20, 4).len(), 1);
    // The newcomer's own bag is the largest and all of it is more popular: refused.
    let mut s = small(10, 2);
    publish_n(&mut s, k1, v(1), 0, 2, 1);
    publish_n(&mut s, k1, v(2), 0, 2, 1);
    assert!(!s.add(k1, v(3), publisher(9), 2));
    assert_eq!(s.len(), 2);
    // Expired entries anywhere are dropped before anything live is evicted.
    let mut s = small(10, 2);
    publish_n(&mut s, k1, v(1), 0, 3, 0);
    publish_n(&mut s, k2, v(1), 0, 1, TTL / 2);
    assert!(s.add(k3, v(1), publisher(0), TTL));
    assert!(query(&mut s, &k1, BagKind::Popular, 20, TTL).is_empty());
    assert_eq!(query(&mut s, &k2, BagKind::Popular, 20, TTL).len(), 1);
}
