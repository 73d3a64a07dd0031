//! The `Net`'s memory budgets (issue 13): unsent replies and partial input over all its
//! connections, kept as running totals (each connection's `Meter` before and after it is
//! worked on), and the connections closed when a total passes its budget.

use super::conn::Meter;
use super::event::ConnError;
use super::{Net, NetEvent};
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

impl Net {
    /// Close connections until both totals are within their budgets: past the output budget,
    /// the accepting connection holding the most unsent replies; past the input budget, the
    /// connection holding the largest incomplete frame (the longest silent first, among
    /// equals: an honest frame keeps arriving).
    pub(super) fn enforce_budgets(&mut self, events: &mut Vec<NetEvent>) {
        while self.totals.replies > OUTPUT_BUDGET_BYTES {
            let largest = self.conns.values().filter(|c| c.meter().replies > 0).max_by_key(|c| c.meter().replies);
            let Some(id) = largest.map(|c| c.id) else {
                break;
            };
            self.defences.closed_output_budget += 1;
            self.note(&ConnError::Protocol("over the budget of unsent replies"));
            self.close(id, events);
        }
        while self.totals.input > PARTIAL_INPUT_BUDGET_BYTES {
            let largest = self
                .conns
                .values()
                .filter(|c| c.meter().input > 0)
                .max_by_key(|c| (c.partial_frame(), c.meter().input, Reverse(c.last_active)));
            let Some(id) = largest.map(|c| c.id) else {
                break;
            };
            self.defences.closed_input_budget += 1;
            self.note(&ConnError::Protocol("over the budget of partial input"));
            self.close(id, events);
        }
    }
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
