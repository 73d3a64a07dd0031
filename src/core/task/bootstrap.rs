//! Bootstrap (PROTOCOL.md §5): a lookup of our own uid, which fills the nearby buckets, then
//! one lookup of a random uid in every farther bucket that is not full, all at once.

use super::find::no_known_peer;
use super::shared::{drive, refuse, take_contacts, Cx, Progress, Task};
use crate::consts::K;
use crate::core::lookup::Lookup;
use crate::core::op::OpResult;
use crate::core::rpc::Step;
use crate::id::Contact;
use crate::wire::{Reply, Request};

pub(crate) struct Bootstrap {
    lookups: Vec<Lookup>,
    /// Step number of `lookups[0]`: the far-bucket lookups are numbered after our own uid's,
    /// so a late reply from the first phase never feeds a lookup of the second.
    first: usize,
    refreshing: bool,
}

impl Bootstrap {
    pub fn new() -> Bootstrap {
        Bootstrap { lookups: Vec::new(), first: 0, refreshing: false }
    }

    fn lookup(&mut self, step: Step) -> Option<&mut Lookup> {
        match step {
            Step::Lookup(i) => self.lookups.get_mut(i.checked_sub(self.first)?),
            Step::Final => None,
        }
    }

}

impl Task for Bootstrap {
    fn progress(&mut self, cx: &mut Cx) -> Progress {
        let mut finished = true;
        for (i, l) in self.lookups.iter_mut().enumerate() {
            finished &= drive(cx, l, self.first + i, &|key| Request::Peers { key });
        }
        if !finished {
            return Progress::Pending;
        }
        if self.refreshing {
            return Progress::Done(OpResult::Done);
        }
        // Nearby peers are known now; refresh every far bucket that is not full.
        self.refreshing = true;
        let me = cx.local.me;
        let nearest = cx.local.routing.closest(&me, 1);
        let depth = nearest.first().and_then(|c| me.common_prefix(&c.id)).unwrap_or(0);
        let mut far = Vec::new();
        for b in 0..depth {
            if cx.local.routing.bucket_len(b) < K {
                let target = me.random_in_bucket(b, &mut cx.local.rng);
                far.push(cx.lookup(target, K));
            }
        }
        if far.is_empty() {
            return Progress::Done(OpResult::Done);
        }
        self.first += self.lookups.len();
        self.lookups = far;
        self.progress(cx)
    }

    fn start(&mut self, cx: &mut Cx) -> Progress {
        if cx.local.routing.is_empty() {
            return Progress::Done(no_known_peer());
        }
        self.lookups = vec![cx.lookup(cx.local.me, K)];
        self.progress(cx)
    }

    fn on_reply(&mut self, cx: &mut Cx, step: Step, from: Contact, _: [u8; 32], reply: Reply) -> Progress {
        let Some(l) = self.lookup(step) else {
            // A first-phase straggler answering after the switch: alive, nothing to feed.
            if matches!(reply, Reply::Peers(_)) {
                cx.trust(from);
            }
            return self.progress(cx);
        };
        if take_contacts(cx, l, from, reply).is_some() {
            refuse(cx, l, &from);
        }
        self.progress(cx)
    }

    fn on_failure(&mut self, cx: &mut Cx, step: Step, to: Contact) -> Progress {
        if let Some(l) = self.lookup(step) {
            l.on_failure(&to);
        }
        self.progress(cx)
    }
}
