//! Routing-table admission through the core (SECURITY.md): a contact that introduces itself
//! joins only once it answered our `iam` at its address as its uid; floods of claims cost a
//! bounded number of checks; lookups keep Sybils of one prefix a minority of a holder set.

use super::*;
use crate::diversity::Diversity;
use crate::store::MemStore;

fn core(diversity: Diversity) -> Core {
    let me = Id([0x80; 32]);
    let mut cfg = CoreConfig::new(me, 5, Some(4000), [1; 32], 7);
    cfg.diversity = diversity;
    Core::new(cfg, Box::new(MemStore::new(me)), 0)
}

fn transmits(c: &mut Core) -> Vec<Transmit> {
    std::iter::from_fn(|| c.poll_transmit()).collect()
}

#[test]
fn an_introduction_is_checked_at_the_claimed_address_before_the_contact_joins() {
    let mut c = core(Diversity::strict());
    let from: SocketAddr = "127.0.1.5:50000".parse().unwrap();
    let uid = Id([0x11; 32]);
    let reply = c.handle_request(1, from, [5; 32], Request::Iam { uid, port: Some(7000) });
    assert!(matches!(reply, Reply::Welcome { uid: u, .. } if u == c.uid()));
    assert_eq!(c.routing().len(), 0, "not before it proved its address");
    let t = transmits(&mut c);
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].to, "127.0.1.5:7000".parse().unwrap());
    assert_eq!(t[0].expected_static, Some([5; 32]));
    assert!(matches!(t[0].request, Request::Iam { uid: u, port: Some(4000) } if u == c.uid()));
    // It answers as another uid: refused.
    c.handle_reply(2, t[0].token, Some((Reply::Welcome { ip: from.ip(), port: 4000, uid: Id([0x12; 32]) }, [5; 32])));
    assert_eq!(c.routing().len(), 0);
    // It introduces itself again and answers as itself: in.
    c.handle_request(3, from, [5; 32], Request::Iam { uid, port: Some(7000) });
    let t = transmits(&mut c);
    assert_eq!(t.len(), 1);
    c.handle_reply(4, t[0].token, Some((Reply::Welcome { ip: from.ip(), port: 4000, uid }, [5; 32])));
    assert_eq!(c.routing().get(&uid).map(|k| k.addr), Some("127.0.1.5:7000".parse().unwrap()));
    // Known exactly: refreshed without another check.
    c.handle_request(5, from, [5; 32], Request::Iam { uid, port: Some(7000) });
    assert!(transmits(&mut c).is_empty());
}

#[test]
fn a_flood_of_claimed_contacts_costs_a_bounded_number_of_checks_and_none_joins() {
    let mut c = core(Diversity::strict());
    let from: SocketAddr = "127.0.9.1:50000".parse().unwrap();
    // Nonsense is ignored outright.
    c.handle_request(1, from, [9; 32], Request::Iam { uid: Id::ZERO, port: Some(0) });
    c.handle_request(1, from, [9; 32], Request::Iam { uid: Id([3; 32]), port: Some(0) });
    c.handle_request(1, from, [9; 32], Request::Iam { uid: Id::ZERO, port: Some(7) });
    assert!(transmits(&mut c).is_empty());
    // 520 claims from one address: at most 4 checks at a time from it.
    for i in 0..520u32 {
        let mut uid = [0x81; 32];
        uid[28..].copy_from_slice(&i.to_be_bytes());
        c.handle_request(2, from, [9; 32], Request::Iam { uid: Id(uid), port: Some(1 + i as u16) });
    }
    let t = transmits(&mut c);
    assert_eq!(t.len(), 4);
    // Nothing listens there: the checks fail, nobody joins, and new checks may start.
    for x in &t {
        c.handle_reply(3, x.token, None);
    }
    assert_eq!(c.routing().len(), 0);
    c.handle_request(4, from, [9; 32], Request::Iam { uid: Id([0x90; 32]), port: Some(9) });
    assert_eq!(transmits(&mut c).len(), 1);
    // Under the default limits loopback is not counted: up to 64 checks in all.
    let mut c = core(Diversity::default());
    for i in 0..100u32 {
        let mut uid = [0x81; 32];
        uid[28..].copy_from_slice(&i.to_be_bytes());
        c.handle_request(2, from, [9; 32], Request::Iam { uid: Id(uid), port: Some(1 + i as u16) });
    }
    assert_eq!(transmits(&mut c).len(), 64);
}
