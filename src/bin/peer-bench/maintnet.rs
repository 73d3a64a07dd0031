//! Maintenance cost on real sockets (issue 9): N peers on loopback with a short republish
//! interval hold V values from P publishers; after a warm-up interval, the requests and TCP
//! bytes each peer sends while nothing but maintenance runs are counted over a window of
//! whole intervals, and given per peer per interval. With the default interval (1 h) the
//! same work happens once an hour (bucket refreshes too: their interval is the smaller of
//! 1 h and the republish interval), so "per interval" is the hourly cost at the defaults of
//! an otherwise idle network, with one difference: here connections stay warm between
//! intervals (idle ones close after 60 s), at 1 h each would pay a Noise handshake.

use peer::{Id, Node, Options};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

#[derive(clap::Args)]
pub struct Opts {
    /// Peers on loopback
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub peers: usize,
    /// Values stored (100 B each)
    #[arg(long, default_value_t = 1000, value_name = "V")]
    pub values: usize,
    /// Peers that publish them
    #[arg(long, default_value_t = 20, value_name = "P")]
    pub publishers: usize,
    /// Republish interval, seconds (records live 6 intervals)
    #[arg(long, default_value_t = 10, value_name = "S")]
    pub interval: u32,
    /// Intervals measured
    #[arg(long, default_value_t = 3, value_name = "W")]
    pub windows: u32,
    /// Seed of every random choice
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

pub fn main(o: &Opts) -> Result<(), String> {
    let (n, values, publishers, interval, windows, seed) =
        (o.peers, o.values, o.publishers, o.interval, o.windows, o.seed);
    if n < 10 || publishers == 0 || publishers > n || interval == 0 || windows == 0 {
        return Err("need --peers >= 10, 1 <= --publishers <= --peers, --interval >= 1, --windows >= 1".into());
    }
    println!(
        "maintenance on real sockets: {n} peers, {values} values of 100 B from {publishers} publishers, \
         republish every {interval} s, lifetime {} s, {windows} intervals measured; {}",
        interval * 6,
        crate::machine()
    );
    let mut rng = StdRng::seed_from_u64(seed);
    let opts = Options { republish_s: interval, expire_s: interval * 6, ..Options::default() };
    let nodes: Vec<Node> = (0..n)
        .map(|_| Node::with_options(Some(Id::random(&mut rng)), LOOPBACK, 0, &opts))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("peer: {e}"))?;
    for node in &nodes[1..] {
        node.connect(LOOPBACK, nodes[0].port()).map_err(|e| format!("connect: {e}"))?;
    }
    for node in &nodes {
        node.bootstrap().map_err(|e| format!("bootstrap: {e}"))?;
    }
    let mut keys = Vec::with_capacity(values);
    for i in 0..values {
        let v: Vec<u8> = (0..100).map(|_| rng.gen()).collect();
        keys.push(nodes[i % publishers].set(&v).map_err(|e| format!("set: {e}"))?);
    }
    // Warm-up: one interval, so every republish and re-store schedule is in its steady phase.
    std::thread::sleep(Duration::from_secs(interval as u64 + 1));
    let before: Vec<_> = nodes.iter().map(|n| n.stats()).collect::<Result<_, _>>().map_err(|e| e.to_string())?;
    let t = Instant::now();
    std::thread::sleep(Duration::from_secs((interval * windows) as u64));
    let secs = t.elapsed().as_secs_f64();
    let after: Vec<_> = nodes.iter().map(|n| n.stats()).collect::<Result<_, _>>().map_err(|e| e.to_string())?;
    let per = |f: &dyn Fn(&peer::Stats) -> u64| -> f64 {
        let total: u64 = before.iter().zip(&after).map(|(b, a)| f(a) - f(b)).sum();
        total as f64 / n as f64 / (secs / interval as f64)
    };
    let sent = per(&|s| s.requests_sent);
    let bytes = per(&|s| s.bytes_sent);
    let republished = per(&|s| s.republished);
    let restored = per(&|s| s.restored);
    let handed = per(&|s| s.handed_over);
    let refreshes = per(&|s| s.bucket_refreshes);
    let held: usize = after.iter().map(|s| s.values).sum();
    println!("per peer per republish interval (= per hour at the default 1 h interval):");
    println!("  requests sent      {sent:>10.1}");
    println!("  TCP bytes sent     {bytes:>10.0}  ({:.1} KiB)", bytes / 1024.0);
    println!("  republish stores   {republished:>10.2}  (publishers only; averaged over all peers)");
    println!("  holder re-stores   {restored:>10.2}");
    println!("  handovers          {handed:>10.2}");
    println!("  bucket refreshes   {refreshes:>10.2}  (lookups of K = 20; an idle network's buckets all go stale)");
    println!("values held: {held} copies of {values} values ({:.2} per value)", held as f64 / values as f64);
    // Every value is still there after the window.
    let reader = &nodes[n - 1];
    let mut found = 0;
    for k in &keys {
        if reader.get(k).map_err(|e| e.to_string())?.is_some() {
            found += 1;
        }
    }
    println!("readable after the window: {found}/{values}");
    if found != values {
        return Err(format!("{} values lost", values - found));
    }
    Ok(())
}
