//! The WAN model's round-trip times, from synthetic coordinates as in the King and Vivaldi
//! measurements of internet latency (Dabek et al., "Vivaldi", SIGCOMM 2004: a 2-D Euclidean
//! position plus a "height", the delay of the host's access link, predicts most measured
//! RTTs well):
//!
//! RTT(a, b) = |pos(a) - pos(b)| + height(a) + height(b), in milliseconds, each way half.
//!
//! - Positions: each peer falls in one of six regions (`REGIONS`: the continents, weighted
//!   roughly as internet users are) and lies at a Gaussian offset (`SPREAD_MS`) from its
//!   centre. The centres are a map of inter-continental RTTs (North America - Europe,
//!   - Asia, - South America, ...) shrunk by the one factor (`MAP_SCALE`) the fit chose.
//! - Heights: log-normal, median `HEIGHT_MEDIAN_MS`, log-spread `HEIGHT_SIGMA`: most access
//!   links add a few milliseconds, a few (mobile, satellite, bufferbloat) hundreds. They make
//!   the tail: pairs with a slow end.
//! - Fitted (`MAP_SCALE`, the heights' median and spread) so that the RTT of random pairs has
//!   median ~80 ms and p99 ~400 ms, the figures issue 12 asks for (`quantiles` measures it;
//!   peer-bench wan prints it, tests/sim_wan.rs bounds it).
//! - Stable per pair: coordinates are drawn once per peer from the simulation's seed, and
//!   there is no jitter, so one pair always sees the same RTT.

use rand::Rng;

/// A region: its share of the peers and its centre (milliseconds of RTT, before `MAP_SCALE`).
pub struct Region {
    pub name: &'static str,
    pub weight: f64,
    pub centre: (f64, f64),
}

/// The map: centres placed so the distances are typical inter-continental RTTs (North
/// America - Europe 90 ms, - Asia 160, - South America 130, Europe - Asia 220, ...).
pub const REGIONS: [Region; 6] = [
    Region { name: "North America", weight: 0.20, centre: (0.0, 0.0) },
    Region { name: "Europe", weight: 0.30, centre: (90.0, 0.0) },
    Region { name: "Asia", weight: 0.35, centre: (-82.0, 138.0) },
    Region { name: "South America", weight: 0.08, centre: (-62.0, -115.0) },
    Region { name: "Oceania", weight: 0.02, centre: (-170.0, 60.0) },
    Region { name: "Africa", weight: 0.05, centre: (170.0, -60.0) },
];
/// Scale of the map (the fit's first parameter).
pub const MAP_SCALE: f64 = 0.35;
/// Standard deviation of a peer's offset from its region's centre, per axis (after scaling).
pub const SPREAD_MS: f64 = 7.0;
/// Median access delay a peer adds to each of its round trips (the fit's second parameter).
pub const HEIGHT_MEDIAN_MS: f64 = 6.8;
/// Standard deviation of the log of the access delay (the fit's third parameter).
pub const HEIGHT_SIGMA: f64 = 1.5;

/// Where a peer sits: a point on the plane and its access delay, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Coord {
    pub x: f32,
    pub y: f32,
    pub height: f32,
}

impl Coord {
    /// A peer's coordinates, drawn from the model.
    pub fn draw(rng: &mut impl Rng) -> Coord {
        let mut u: f64 = rng.gen();
        let mut region = &REGIONS[REGIONS.len() - 1];
        for r in &REGIONS {
            if u < r.weight {
                region = r;
                break;
            }
            u -= r.weight;
        }
        let (cx, cy) = region.centre;
        let x = cx * MAP_SCALE + SPREAD_MS * gauss(rng);
        let y = cy * MAP_SCALE + SPREAD_MS * gauss(rng);
        let height = HEIGHT_MEDIAN_MS * (HEIGHT_SIGMA * gauss(rng)).exp();
        Coord { x: x as f32, y: y as f32, height: height as f32 }
    }

    /// One-way delay to `other` in microseconds: half the modelled RTT.
    pub fn one_way_us(&self, other: &Coord) -> u64 {
        let (dx, dy) = (f64::from(self.x - other.x), f64::from(self.y - other.y));
        let rtt_ms = (dx * dx + dy * dy).sqrt() + f64::from(self.height) + f64::from(other.height);
        (rtt_ms * 500.0).round() as u64
    }
}

/// A standard normal deviate (Box-Muller; `rand` alone has no normal distribution).
fn gauss(rng: &mut impl Rng) -> f64 {
    let u1: f64 = 1.0 - rng.gen::<f64>();
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// p10, p50, p90 and p99 of the RTT (µs) over `pairs` random pairs of distinct peers.
pub fn quantiles(coords: &[Coord], pairs: usize, rng: &mut impl Rng) -> [u64; 4] {
    if coords.len() < 2 {
        return [0; 4];
    }
    let mut v: Vec<u64> = (0..pairs)
        .map(|_| {
            let a = rng.gen_range(0..coords.len());
            let b = (a + rng.gen_range(1..coords.len())) % coords.len();
            2 * coords[a].one_way_us(&coords[b])
        })
        .collect();
    v.sort_unstable();
    [0.10, 0.50, 0.90, 0.99].map(|p| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1])
}
