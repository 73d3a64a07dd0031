//! Codec throughput: encode and decode of `set` requests (and of the `value` replies a ref
//! gets back) with values of 1 KiB and of the maximum size, random bytes. MB/s counts the
//! message text; the value MB/s column counts the payload it carries.

use crate::table;
use peer::wire::{decode_reply, decode_request, encode_reply, encode_request, Reply, Request};
use peer::MAX_VALUE_SIZE;
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use std::hint::black_box;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Opts {
    /// Time spent on each figure (0.01..=60)
    #[arg(long, default_value_t = 1.0, value_name = "S")]
    pub seconds: f64,
}

pub fn main(o: &Opts) -> Result<(), String> {
    let seconds = o.seconds;
    if !(0.01..=60.0).contains(&seconds) {
        return Err("--seconds is 0.01..=60".into());
    }
    let budget = Duration::from_secs_f64(seconds);
    println!("codec throughput, {seconds} s per figure; {}", crate::machine());
    let mut rng = StdRng::seed_from_u64(7);
    let mut rows = Vec::new();
    for size in [1024, MAX_VALUE_SIZE] {
        let mut value = vec![0u8; size];
        rng.fill_bytes(&mut value);
        let req = Request::Set { value: value.clone().into(), lifetime: None };
        let mut text = Vec::new();
        encode_request(&req, &mut text);
        let enc = rate(budget, |out| encode_request(&req, out));
        let dec = rate(budget, |_| {
            black_box(decode_request(black_box(&text)).expect("own encoding decodes"));
        });
        rows.push(row(&format!("set, {size} B value"), text.len(), size, enc, dec));

        let rep = Reply::Value(value.into());
        let mut text = Vec::new();
        encode_reply(&rep, &mut text);
        let enc = rate(budget, |out| encode_reply(&rep, out));
        let dec = rate(budget, |_| {
            black_box(decode_reply(black_box(&text)).expect("own encoding decodes"));
        });
        rows.push(row(&format!("value reply, {size} B"), text.len(), size, enc, dec));
    }
    println!();
    table(
        &[
            "message",
            "text B",
            "encode MB/s",
            "decode MB/s",
            "enc value MB/s",
            "dec value MB/s",
            "encode µs",
            "decode µs",
        ],
        &rows,
    );
    Ok(())
}

/// Runs of `f` per second over `budget` (after a short warm-up).
fn rate(budget: Duration, mut f: impl FnMut(&mut Vec<u8>)) -> f64 {
    let mut out = Vec::new();
    for _ in 0..3 {
        out.clear();
        f(&mut out);
    }
    let t = Instant::now();
    let mut n = 0u64;
    while t.elapsed() < budget {
        for _ in 0..8 {
            out.clear();
            f(&mut out);
            black_box(&out);
        }
        n += 8;
    }
    n as f64 / t.elapsed().as_secs_f64()
}

fn row(name: &str, text: usize, value: usize, enc: f64, dec: f64) -> Vec<String> {
    let mb = |per_s: f64, bytes: usize| format!("{:.0}", per_s * bytes as f64 / 1e6);
    vec![
        name.to_string(),
        text.to_string(),
        mb(enc, text),
        mb(dec, text),
        mb(enc, value),
        mb(dec, value),
        format!("{:.2}", 1e6 / enc),
        format!("{:.2}", 1e6 / dec),
    ]
}
