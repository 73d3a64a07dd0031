//! Merging what several peers answered into one result.

use crate::wire::{BagEntry, BagKind};
use rand::seq::SliceRandom;
use rand::Rng;
use std::collections::HashMap;

/// Merge bag replies from the nearest peers of a key into at most `cap` values.
/// Replies carry counts, not publishers, and every publisher writes to all `replication`
/// nearest peers, so summing counts would count one publisher once per replica: an entry's
/// popularity is the largest count any replica saw, its age the smallest.
pub fn merge_bags<R: Rng>(kind: BagKind, replies: Vec<Vec<BagEntry>>, cap: usize, rng: &mut R) -> Vec<[u8; 32]> {
    // Each entry with its best rank in any reply: replies are already in the asked order at
    // full time resolution, which whole-second ages alone would lose.
    let mut merged: HashMap<[u8; 32], (BagEntry, usize)> = HashMap::new();
    for reply in replies {
        for (rank, e) in reply.into_iter().enumerate() {
            merged
                .entry(e.value)
                .and_modify(|(m, r)| {
                    m.count = m.count.max(e.count);
                    m.seconds = m.seconds.min(e.seconds);
                    *r = (*r).min(rank);
                })
                .or_insert((e, rank));
        }
    }
    let mut all: Vec<(BagEntry, usize)> = merged.into_values().collect();
    // A fixed order first so results do not depend on hash-map order.
    all.sort_by_key(|a| a.0.value);
    match kind {
        BagKind::Popular => {
            all.sort_by(|(a, ra), (b, rb)| b.count.cmp(&a.count).then(a.seconds.cmp(&b.seconds)).then(ra.cmp(rb)))
        }
        BagKind::Recent => {
            all.sort_by(|(a, ra), (b, rb)| a.seconds.cmp(&b.seconds).then(ra.cmp(rb)).then(b.count.cmp(&a.count)))
        }
        BagKind::Sample => all.shuffle(rng),
    }
    all.into_iter().take(cap).map(|(e, _)| e.value).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn e(v: u8, count: u32, seconds: u64) -> BagEntry {
        BagEntry { value: [v; 32], count, seconds }
    }

    #[test]
    fn merge_dedups_replicas() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let replies = vec![vec![e(1, 3, 10), e(2, 5, 50)], vec![e(1, 4, 5), e(3, 1, 1)]];
        assert_eq!(merge_bags(BagKind::Popular, replies.clone(), 10, &mut rng), vec![[2; 32], [1; 32], [3; 32]]);
        assert_eq!(merge_bags(BagKind::Recent, replies.clone(), 2, &mut rng), vec![[3; 32], [1; 32]]);
        let mut s = merge_bags(BagKind::Sample, replies, 10, &mut rng);
        s.sort();
        assert_eq!(s, vec![[1; 32], [2; 32], [3; 32]]);
    }
}
