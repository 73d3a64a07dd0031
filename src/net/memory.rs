//! A `Net`'s memory budgets (issue 13): unsent replies and partial input over all its
//! connections, kept as running totals (each connection's `Meter` before and after it is
//! worked on), and which connection to close when a total passes its budget.

use super::conn::{Conn, Meter};
use super::event::ConnId;
use crate::consts::{OUTPUT_BUDGET_BYTES, PARTIAL_INPUT_BUDGET_BYTES};
use std::cmp::Reverse;

/// Heap bytes the connections hold against the budgets.
#[derive(Default, Debug)]
pub(super) struct Totals {
    pub replies: usize,
    pub input: usize,
}

impl Totals {
    /// A connection's meter went from `before` to `after`.
    pub fn update(&mut self, before: Meter, after: Meter) {
        self.replies = (self.replies + after.replies).saturating_sub(before.replies);
        self.input = (self.input + after.input).saturating_sub(before.input);
    }
}

/// Which budget a connection is closed for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Over {
    Replies,
    Input,
}

/// The connection to close while a total is past its budget: past the output budget, the
/// accepting connection holding the most unsent replies; past the input budget, the one
/// holding the largest incomplete frame (among equals the longest silent: an honest frame
/// keeps arriving). None when within both (or nothing holds anything).
pub(super) fn over_budget<'a>(totals: &Totals, conns: impl Iterator<Item = &'a Conn>) -> Option<(ConnId, Over)> {
    if totals.replies > OUTPUT_BUDGET_BYTES {
        let largest = conns.filter(|c| c.meter().replies > 0).max_by_key(|c| c.meter().replies);
        return largest.map(|c| (c.id, Over::Replies));
    }
    if totals.input > PARTIAL_INPUT_BUDGET_BYTES {
        let largest = conns
            .filter(|c| c.meter().input > 0)
            .max_by_key(|c| (c.partial_frame(), c.meter().input, Reverse(c.last_active)));
        return largest.map(|c| (c.id, Over::Input));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_follow_meters() {
        let mut t = Totals::default();
        t.update(Meter::default(), Meter { replies: 100, input: 7 });
        t.update(Meter { replies: 100, input: 7 }, Meter { replies: 40, input: 0 });
        assert_eq!((t.replies, t.input), (40, 0));
        t.update(Meter { replies: 40, input: 0 }, Meter::default());
        assert_eq!((t.replies, t.input), (0, 0));
    }
}
