//! Connect: one `iam` to an address, whoever answers there joins the routing table.

use super::shared::{Cx, Progress, Task};
use crate::core::op::OpResult;
use crate::core::routing::Insert;
use crate::core::rpc::Step;
use crate::error::Error;
use crate::id::{Contact, Id};
use crate::wire::Reply;
use std::net::SocketAddr;

pub(crate) struct Connect {
    addr: SocketAddr,
}

impl Connect {
    pub fn new(addr: SocketAddr) -> Connect {
        Connect { addr }
    }

    fn end(&self, ok: bool) -> Progress {
        Progress::Done(if ok {
            OpResult::Done
        } else {
            OpResult::Failed(Error::Unreachable(format!("{} did not answer", self.addr)))
        })
    }
}

impl Task for Connect {
    fn progress(&mut self, _: &mut Cx) -> Progress {
        Progress::Pending
    }

    fn start(&mut self, cx: &mut Cx) -> Progress {
        // Whoever listens there: no uid or key is known yet, so no introduction either.
        let to = Contact { id: Id::ZERO, addr: self.addr, static_key: [0; 32] };
        let iam = cx.iam();
        cx.send_raw(to, None, iam);
        Progress::Pending
    }

    fn on_reply(&mut self, cx: &mut Cx, _: Step, from: Contact, remote_static: [u8; 32], reply: Reply) -> Progress {
        let ok = match reply {
            Reply::Welcome { uid, .. } => {
                let c = Contact { id: uid, addr: from.addr, static_key: remote_static };
                cx.local.routing.insert(c, cx.now) != Insert::Rejected
            }
            _ => false,
        };
        self.end(ok)
    }

    fn on_failure(&mut self, _: &mut Cx, _: Step, _: Contact) -> Progress {
        self.end(false)
    }
}
