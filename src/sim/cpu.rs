//! CPU in the WAN model: every simulated peer is one server queue. A message that arrives
//! waits until the peer has finished what came before it, then takes its decoding time (and
//! its share of a handshake); a message sent takes its encoding time before it leaves. So a
//! busy peer delays what it handles, as a real one does. The costs are inputs (peer-bench
//! measures them with the crate's own codec and Noise code at start-up); tests use zero, so
//! their virtual times are exact multiples of the one-way delays.

/// What one peer's CPU spends, in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuCosts {
    /// Encoding and sealing a request of each kind (`RequestKind::ALL` order).
    pub encode_request: [u64; 8],
    /// Opening and decoding one.
    pub decode_request: [u64; 8],
    /// Encoding and sealing the reply to a request of each kind.
    pub encode_reply: [u64; 8],
    /// Opening and decoding one.
    pub decode_reply: [u64; 8],
    /// A whole Noise IK handshake, both sides together.
    pub ik: u64,
    /// A whole Noise XX handshake, both sides together.
    pub xx: u64,
}

/// One side's step of a handshake, charged when it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Dialer writes message 1.
    IkDial,
    /// Responder reads message 1 and writes message 2.
    IkAccept,
    /// Dialer reads message 2.
    IkConfirm,
    XxDial,
    XxAccept,
    /// Dialer reads message 2 and writes message 3.
    XxConfirm,
    /// Responder reads message 3.
    XxFinish,
}

impl CpuCosts {
    /// Nothing costs anything (exact virtual times in tests).
    pub const ZERO: CpuCosts = CpuCosts {
        encode_request: [0; 8],
        decode_request: [0; 8],
        encode_reply: [0; 8],
        decode_reply: [0; 8],
        ik: 0,
        xx: 0,
    };

    /// The share of a handshake one step costs, by its X25519 operations (key generation or
    /// Diffie-Hellman, which dominate): IK is 5 a side (dialer: e, es, ss, then ee, se;
    /// responder: es, ss, e, ee, se), XX 4 a side (dialer: e, then ee, es, se; responder: e,
    /// ee, es, then se).
    pub fn step(&self, s: Step) -> u64 {
        let (whole, units, of) = match s {
            Step::IkDial => (self.ik, 3, 10),
            Step::IkAccept => (self.ik, 5, 10),
            Step::IkConfirm => (self.ik, 2, 10),
            Step::XxDial => (self.xx, 1, 8),
            Step::XxAccept => (self.xx, 3, 8),
            Step::XxConfirm => (self.xx, 3, 8),
            Step::XxFinish => (self.xx, 1, 8),
        };
        whole * units / of
    }
}

/// When each peer's CPU is free again (nanoseconds of virtual time).
#[derive(Default)]
pub struct Queue {
    free_at: Vec<u64>,
}

impl Queue {
    pub fn add_peer(&mut self) {
        self.free_at.push(0);
    }

    /// Work of `ns` that `peer` may start at `now_us`: it starts once the peer is free and
    /// finishes at the returned time (µs, rounded up).
    pub fn run(&mut self, peer: usize, now_us: u64, ns: u64) -> u64 {
        let start = self.free_at[peer].max(now_us * 1000);
        self.free_at[peer] = start + ns;
        (start + ns).div_ceil(1000)
    }
}
