//! What is measured besides the honest workload: the process's resident memory through an
//! attack (sampled, with a watchdog that stops an attack past a cap, so a run on a peer
//! without defences cannot exhaust the machine), and how much of the honest peers' view of
//! the target the attacker holds.

use super::client::Hostile;
use super::ctx::fresh_key;
use super::testnet::{observer_ip, rss_bytes, Testnet};
use crate::consts::K;
use crate::wire::{Reply, Request};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How often memory is sampled.
const SAMPLE: Duration = Duration::from_millis(50);

/// Samples the process's RSS until finished.
pub struct RssWatch {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RssWatch {
    /// Start sampling; past `cap` bytes raise `abort` (if given).
    pub fn start(cap: Option<(u64, Arc<AtomicBool>)>) -> RssWatch {
        let peak = Arc::new(AtomicU64::new(rss_bytes()));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let now = rss_bytes();
                p.fetch_max(now, Ordering::Relaxed);
                if let Some((cap, abort)) = &cap {
                    if now > *cap {
                        abort.store(true, Ordering::Relaxed);
                    }
                }
                std::thread::sleep(SAMPLE);
            }
        });
        RssWatch { peak, stop, thread: Some(thread) }
    }

    /// Stop; the highest RSS seen.
    pub fn finish(mut self) -> u64 {
        self.halt();
        self.peak.load(Ordering::Relaxed).max(rss_bytes())
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RssWatch {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Whether `ip` is the attacker's (127.0.9.0/24).
pub fn is_attacker(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V4(v) if v.octets()[..3] == [127, 0, 9])
}

/// Ask every honest peer, from the observer's address, for its `K` contacts nearest the
/// target: (contacts that are the attacker's or nonsense, contacts named in all). A peer
/// that does not answer counts for nothing.
pub fn poisoned(net: &Testnet) -> (usize, usize) {
    let mut rng = rand::thread_rng();
    let (mut bad, mut all) = (0, 0);
    for p in &net.peers {
        let Ok(mut h) = Hostile::connect(p.addr(), Some(observer_ip()), fresh_key(&mut rng)) else { continue };
        if let Ok(Reply::Peers(cs)) = h.request(&Request::Peers { key: net.target }) {
            all += cs.len().min(K);
            bad += cs.iter().filter(|c| is_attacker(c.addr.ip()) || c.addr.port() == 0).count();
        }
        h.reset();
    }
    (bad, all)
}
