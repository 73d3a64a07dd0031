//! The process's budget of open connections: every `Net` of the process counts its
//! connections here, so that together they stay within a share of the descriptor limit
//! (past it, a `Net` closes one of its idle connections before opening another).

use crate::consts::FD_BUDGET_PERCENT;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Connections open in this process, over every `Net`.
static OPEN: AtomicUsize = AtomicUsize::new(0);

pub(super) fn opened() {
    OPEN.fetch_add(1, Ordering::Relaxed);
}

pub(super) fn closed(n: usize) {
    OPEN.fetch_sub(n, Ordering::Relaxed);
}

/// The process's peers hold as many connections as they may.
pub(super) fn exhausted() -> bool {
    OPEN.load(Ordering::Relaxed) >= limit()
}

/// How many connections this process's peers may hold together before closing idle ones.
fn limit() -> usize {
    static LIMIT: OnceLock<usize> = OnceLock::new();
    *LIMIT.get_or_init(|| {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit only writes the struct it is given.
        let soft =
            if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 { lim.rlim_cur as usize } else { 1024 };
        (soft.min(1 << 20) * FD_BUDGET_PERCENT / 100).max(64)
    })
}
