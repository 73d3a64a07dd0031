//! `make demo`: a small network of libpeer peers in one process, on loopback, showing each
//! operation of the Rust API (`peer::Node`) with timings. Meant to be read by a newcomer:
//! each step prints a short header, then what happened.
//!
//! Exit status 0 when every checked result was right (values read back byte for byte,
//! namespace records as written), 1 otherwise.

use peer::consts::{DEFAULT_REPLICATION, MAX_VALUE_SIZE};
use peer::{BagKind, Id, Node};
use rand::seq::SliceRandom;
use rand::{Rng, RngCore};
use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;
use std::time::{Duration, Instant};

const PEERS: usize = 24;
const VALUES: usize = 50;
/// Per-operation lines printed before switching to the summary table.
const SHOWN: usize = 6;
const STOPPED: usize = 5;
const BAG_PUBLISHERS: usize = 10;
const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn main() -> ExitCode {
    let started = Instant::now();
    match run() {
        Ok(0) => {
            println!("\nDone in {:.1} s, every check passed.", started.elapsed().as_secs_f64());
            ExitCode::SUCCESS
        }
        Ok(failed) => {
            println!("\nDone in {:.1} s: {failed} check(s) FAILED (see above).", started.elapsed().as_secs_f64());
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("\npeer-demo: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs every step; returns how many checks failed.
fn run() -> peer::Result<usize> {
    let mut rng = rand::thread_rng();
    let mut failed = 0;

    header(&format!(
        "1. Start {PEERS} peers on 127.0.0.1 (random uids, ephemeral ports, replication {DEFAULT_REPLICATION})"
    ));
    let t = Instant::now();
    let mut nodes = Vec::with_capacity(PEERS);
    for _ in 0..PEERS {
        nodes.push(Node::new(Id::random(&mut rng), LOCALHOST, 0, DEFAULT_REPLICATION)?);
    }
    println!("started {PEERS} peers in {}", ms(t.elapsed()));
    for (i, n) in nodes.iter().enumerate().take(3) {
        println!("  peer {i:<2}  port {:<5}  uid {}", n.port(), hex(&n.uid().0));
    }
    println!("  ...");

    header("2. Connect every peer to peer 0, then bootstrap (fill routing tables)");
    let first_port = nodes[0].port();
    let t = Instant::now();
    for n in &nodes[1..] {
        n.connect(LOCALHOST, first_port)?;
    }
    let connect_time = t.elapsed();
    let t = Instant::now();
    for n in &nodes {
        n.bootstrap()?;
    }
    println!("connect: {}   bootstrap (all {PEERS}, one after another): {}", ms(connect_time), ms(t.elapsed()));
    let contacts = nodes.iter().map(|n| n.stats().map(|s| s.contacts)).collect::<peer::Result<Vec<_>>>()?;
    println!(
        "routing table sizes (contacts): min {}  median {}  max {}   (a full view would be {})",
        contacts.iter().min().unwrap_or(&0),
        percentile(&contacts, 50.0),
        contacts.iter().max().unwrap_or(&0),
        PEERS - 1
    );

    header(&format!("3. Store {VALUES} values from random peers, read each back from another peer"));
    let values = demo_values(&mut rng);
    let (mut set_ms, mut ref_ms) = (Vec::new(), Vec::new());
    let (mut set_ok, mut ref_ok) = (0, 0);
    let mut keys = Vec::with_capacity(VALUES);
    println!(
        "{:>3}  {:>9}  {:>7}  {:>7}  {:<17} {:>9}  {:>9}",
        "#", "size (B)", "set by", "read by", "key", "set", "ref"
    );
    for (i, value) in values.iter().enumerate() {
        let (a, b) = two_distinct(&mut rng, nodes.len());
        let t = Instant::now();
        let key = match nodes[a].set(value) {
            Ok(key) => key,
            Err(e) => {
                println!("{i:>3}  {:>9}  set from peer {a} FAILED: {e}", value.len());
                failed += 1;
                keys.push(None);
                continue;
            }
        };
        let set_time = t.elapsed();
        set_ms.push(set_time);
        set_ok += 1;
        let t = Instant::now();
        let got = nodes[b].get(&key);
        let ref_time = t.elapsed();
        ref_ms.push(ref_time);
        let outcome = match &got {
            Ok(Some(v)) if v == value => {
                ref_ok += 1;
                "ok"
            }
            Ok(Some(_)) => "WRONG BYTES",
            Ok(None) => "NOT FOUND",
            Err(_) => "ERROR",
        };
        if outcome != "ok" {
            failed += 1;
        }
        if i < SHOWN || outcome != "ok" {
            println!(
                "{i:>3}  {:>9}  {:>7}  {:>7}  {:<17} {:>9}  {:>9}  {outcome}",
                value.len(),
                format!("peer {a}"),
                format!("peer {b}"),
                hex(&key.0),
                ms(set_time),
                ms(ref_time)
            );
            if let Err(e) = got {
                println!("     ref error: {e}");
            }
        } else if i == SHOWN {
            println!("  ... (remaining operations summarised below)");
        }
        keys.push(Some(key));
    }
    println!();
    latency_table(&[("set", VALUES, set_ok, &set_ms), ("ref", set_ok, ref_ok, &ref_ms)]);
    let largest = values.iter().map(Vec::len).max().unwrap_or(0);
    println!(
        "sizes from {} B to {largest} B (MAX_VALUE_SIZE = {MAX_VALUE_SIZE})",
        values.iter().map(Vec::len).min().unwrap_or(0)
    );

    header("4. Look up a key nobody stored");
    let missing = Id::random(&mut rng);
    let reader = rng.gen_range(0..nodes.len());
    let t = Instant::now();
    match nodes[reader].get(&missing)? {
        None => println!("peer {reader}: key {} not found, answered in {}", hex(&missing.0), ms(t.elapsed())),
        Some(v) => {
            println!("peer {reader}: key {} unexpectedly FOUND ({} bytes)", hex(&missing.0), v.len());
            failed += 1;
        }
    }

    header(&format!("5. Stop {STOPPED} peers abruptly, read every value again from the survivors"));
    let mut order: Vec<usize> = (0..nodes.len()).collect();
    order.shuffle(&mut rng);
    let (stopped, survivors) = order.split_at(STOPPED);
    let mut stopped = stopped.to_vec();
    stopped.sort_unstable();
    let t = Instant::now();
    for &i in &stopped {
        nodes[i].close();
    }
    println!("stopped peers {:?} in {}", stopped, ms(t.elapsed()));
    let (mut found, mut lost, mut reread_ms) = (0, 0, Vec::new());
    for (value, key) in values.iter().zip(&keys) {
        let Some(key) = key else { continue };
        let r = *survivors.choose(&mut rng).expect("survivors");
        let t = Instant::now();
        let got = nodes[r].get(key);
        reread_ms.push(t.elapsed());
        match got {
            Ok(Some(v)) if &v == value => found += 1,
            Ok(Some(_)) => {
                println!("peer {r}: value {} came back with WRONG BYTES", hex(&key.0));
                failed += 1;
            }
            Ok(None) => lost += 1,
            Err(e) => {
                println!("peer {r}: ref {} failed: {e}", hex(&key.0));
                lost += 1;
            }
        }
    }
    println!("found {found} of {set_ok} values");
    if lost > 0 {
        println!("({lost} lost: every copy was on a stopped peer, or the lookup could not reach one)");
    }
    latency_table(&[("ref", set_ok, found, &reread_ms)]);

    header(&format!("6. Bags: {BAG_PUBLISHERS} peers publish into one bag, others query it"));
    let bag_key = Id::hash(b"demo bag: favourite colours");
    let names = ["red", "green", "blue", "violet"];
    let colour = |name: &str| Id::hash(name.as_bytes()).0;
    // red by all 10 publishers, green by 6, blue by 3, violet by 1 (published last).
    let publishers = &survivors[..BAG_PUBLISHERS];
    let t = Instant::now();
    for (j, &p) in publishers.iter().enumerate() {
        for (name, by) in [("red", BAG_PUBLISHERS), ("green", 6), ("blue", 3)] {
            if j < by {
                nodes[p].bag_publish(&bag_key, &colour(name))?;
            }
        }
    }
    nodes[publishers[BAG_PUBLISHERS - 1]].bag_publish(&bag_key, &colour("violet"))?;
    println!("published 20 entries (red by 10 peers, green by 6, blue by 3, violet by 1) in {}", ms(t.elapsed()));
    let name_of = |v: &[u8; 32]| names.iter().find(|n| colour(n) == *v).map_or_else(|| hex(v), |n| n.to_string());
    let asker = survivors[BAG_PUBLISHERS];
    for (label, kind) in [("popular", BagKind::Popular), ("recent", BagKind::Recent), ("sample", BagKind::Sample)] {
        let t = Instant::now();
        let got = nodes[asker].bag_query(kind, &bag_key, 10)?;
        let list: Vec<String> = got.iter().map(name_of).collect();
        println!("peer {asker:<2} {label:<8} {:>9}  {}", ms(t.elapsed()), list.join(", "));
        if kind == BagKind::Popular && got.first() != Some(&colour("red")) {
            println!("  the most popular entry should be red: FAILED");
            failed += 1;
        }
    }
    // Ask one particular peer for its own copy: the survivor nearest to the bag's key.
    let nearest = *survivors.iter().min_by_key(|&&i| nodes[i].uid().distance(&bag_key)).expect("survivors");
    let t = Instant::now();
    let got = nodes[asker].bag_query_at(&nodes[nearest].uid(), BagKind::Popular, &bag_key, 10)?;
    let list: Vec<String> = got.iter().map(name_of).collect();
    println!(
        "peer {nearest:<2} (nearest to the key) holds, most popular first ({}): {}",
        ms(t.elapsed()),
        list.join(", ")
    );

    header("7. Namespaces: records signed with a fresh Ed25519 key pair");
    let (secret, public) = peer::sign::keypair(&mut rand::rngs::OsRng);
    let ns_key = Id::hash(b"profile").0;
    let v1 = Id::hash(b"profile version 1").0;
    let v2 = Id::hash(b"profile version 2").0;
    let (w, r) = pick_two(&mut rng, survivors);
    println!("public key {}   key {}", hex(&public), hex(&ns_key));
    let t = Instant::now();
    let sig1 = nodes[w].namespace_set(&secret, &public, &ns_key, &v1)?;
    println!("peer {w:<2} {:<30} {:>9}  signature {}", "set version 1", ms(t.elapsed()), hex(&sig1));
    failed += namespace_check(&nodes[r], r, &public, &ns_key, None, &v1, "ref (expect version 1)")?;
    let (w, r) = pick_two(&mut rng, survivors);
    let t = Instant::now();
    let sig2 = nodes[w].namespace_set(&secret, &public, &ns_key, &v2)?;
    println!("peer {w:<2} {:<30} {:>9}  signature {}", "set version 2 (overwrites it)", ms(t.elapsed()), hex(&sig2));
    failed += namespace_check(&nodes[r], r, &public, &ns_key, None, &v2, "ref (expect version 2)")?;
    failed += namespace_check(&nodes[r], r, &public, &ns_key, Some(&sig2), &v2, "ref pinned to version 2's sig.")?;

    header("8. Close every peer (each close waits until its peer has stopped)");
    let t = Instant::now();
    for &i in survivors {
        nodes[i].close();
    }
    drop(nodes);
    println!("closed {} peers in {}", PEERS - STOPPED, ms(t.elapsed()));
    Ok(failed)
}

/// Reads a namespace record and compares it with `want`; returns 1 on a mismatch.
fn namespace_check(
    node: &Node,
    index: usize,
    public: &[u8; 32],
    key: &[u8; 32],
    pin: Option<&[u8; 64]>,
    want: &[u8; 32],
    what: &str,
) -> peer::Result<usize> {
    let t = Instant::now();
    let got = node.namespace_ref(public, key, pin)?;
    let took = ms(t.elapsed());
    let (outcome, bad) = match got {
        Some((v, _)) if v == *want => ("ok", 0),
        Some(_) => ("WRONG VALUE", 1),
        None => ("NOT FOUND", 1),
    };
    println!("peer {index:<2} {what:<30} {took:>9}  {outcome}");
    Ok(bad)
}

/// Fifty values: a few chosen sizes first (so the per-operation lines show them), including
/// the largest allowed, then random sizes up to 16 KiB. Random bytes make every key distinct.
fn demo_values(rng: &mut impl RngCore) -> Vec<Vec<u8>> {
    let mut sizes = vec![1, 1_000, MAX_VALUE_SIZE, 100_000, 32, 65_536];
    while sizes.len() < VALUES {
        sizes.push(rand::Rng::gen_range(rng, 1..=16_384));
    }
    sizes
        .into_iter()
        .map(|n| {
            let mut v = vec![0u8; n];
            rng.fill_bytes(&mut v);
            v
        })
        .collect()
}

fn two_distinct(rng: &mut impl Rng, n: usize) -> (usize, usize) {
    let a = rng.gen_range(0..n);
    let b = (a + rng.gen_range(1..n)) % n;
    (a, b)
}

fn pick_two(rng: &mut impl Rng, from: &[usize]) -> (usize, usize) {
    let (a, b) = two_distinct(rng, from.len());
    (from[a], from[b])
}

fn latency_table(rows: &[(&str, usize, usize, &Vec<Duration>)]) {
    println!("{:<4} {:>5} {:>5} {:>9} {:>9} {:>9}", "op", "ops", "ok", "p50 ms", "p99 ms", "max ms");
    for (op, ops, ok, times) in rows {
        let ms: Vec<f64> = times.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        let max = ms.iter().cloned().fold(0.0, f64::max);
        println!(
            "{op:<4} {ops:>5} {ok:>5} {:>9.2} {:>9.2} {max:>9.2}",
            percentile_f(&ms, 50.0),
            percentile_f(&ms, 99.0)
        );
    }
}

/// Nearest-rank percentile; 0 for an empty list.
fn percentile_f(xs: &[f64], p: f64) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    v[rank.min(v.len()) - 1]
}

fn percentile(xs: &[usize], p: f64) -> usize {
    percentile_f(&xs.iter().map(|&x| x as f64).collect::<Vec<_>>(), p) as usize
}

fn header(title: &str) {
    println!("\n== {title}");
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// The first 8 bytes in hex: enough to tell identifiers apart on screen.
fn hex(b: &[u8]) -> String {
    let mut s: String = b.iter().take(8).map(|x| format!("{x:02x}")).collect();
    s.push('…');
    s
}
