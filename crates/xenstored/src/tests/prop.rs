//! Random operation sequences never panic, keep the tree consistent, and every
//! reply is well formed.

use super::*;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Write(u8, usize, u8),
    Mkdir(u8, usize),
    Rm(u8, usize),
    SetPerms(u8, usize, u8, u8),
    Read(u8, usize),
    Dir(u8, usize),
    Watch(u8, usize),
    Start(u8),
    TxWrite(u8, u8, usize),
    End(u8, u8, bool),
    Release(u8),
    Garbage(u8, Vec<u8>),
}

const PATHS: [&str; 10] = [
    "/a",
    "/a/b",
    "/a/b/c",
    "/local/domain/1/x",
    "/local/domain/1/x/y",
    "/local/domain/2/z",
    "rel",
    "rel/deep/er",
    "/",
    "/vm/q",
];

fn op() -> impl Strategy<Value = Op> {
    let d = 0u8..3;
    let p = 0..PATHS.len();
    prop_oneof![
        (d.clone(), p.clone(), any::<u8>()).prop_map(|(d, p, v)| Op::Write(d, p, v)),
        (d.clone(), p.clone()).prop_map(|(d, p)| Op::Mkdir(d, p)),
        (d.clone(), p.clone()).prop_map(|(d, p)| Op::Rm(d, p)),
        (d.clone(), p.clone(), 0u8..4, 0u8..3).prop_map(|(d, p, a, o)| Op::SetPerms(d, p, a, o)),
        (d.clone(), p.clone()).prop_map(|(d, p)| Op::Read(d, p)),
        (d.clone(), p.clone()).prop_map(|(d, p)| Op::Dir(d, p)),
        (d.clone(), p.clone()).prop_map(|(d, p)| Op::Watch(d, p)),
        d.clone().prop_map(Op::Start),
        (d.clone(), 0u8..4, p.clone()).prop_map(|(d, t, p)| Op::TxWrite(d, t, p)),
        (d.clone(), 0u8..4, any::<bool>()).prop_map(|(d, t, c)| Op::End(d, t, c)),
        (1u8..3).prop_map(Op::Release),
        (d, proptest::collection::vec(any::<u8>(), 0..40)).prop_map(|(d, g)| Op::Garbage(d, g)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn random_sequences_keep_the_tree_consistent(ops in proptest::collection::vec(op(), 1..40)) {
        let mut x = Xenstored::with_quota(Quota { max_nodes_per_domain: 6, ..Quota::default() });
        let mut txs: BTreeMap<DomId, Vec<u32>> = BTreeMap::new();
        let mut req = 0u32;
        for dom in [1u16, 2] {
            x.introduce(dom, 1, 1).unwrap();
            x.mkdir(&format!("/local/domain/{dom}")).unwrap();
            x.set_perms(&format!("/local/domain/{dom}"), crate::Perms::parse([format!("n{dom}").as_bytes()]).unwrap()).unwrap();
        }
        for op in ops {
            req += 1;
            let (dom, ty, tx, payload): (DomId, u32, u32, Vec<u8>) = match &op {
                Op::Write(d, p, v) => (*d as DomId, XS_WRITE, 0, [z(PATHS[*p]), vec![*v]].concat()),
                Op::Mkdir(d, p) => (*d as DomId, XS_MKDIR, 0, z(PATHS[*p])),
                Op::Rm(d, p) => (*d as DomId, XS_RM, 0, z(PATHS[*p])),
                Op::SetPerms(d, p, a, o) => {
                    let l = ["n", "r", "w", "b"][*a as usize];
                    (*d as DomId, XS_SET_PERMS, 0, zs(&[PATHS[*p], &format!("{l}{o}")]))
                }
                Op::Read(d, p) => (*d as DomId, XS_READ, 0, z(PATHS[*p])),
                Op::Dir(d, p) => (*d as DomId, XS_DIRECTORY, 0, z(PATHS[*p])),
                Op::Watch(d, p) => (*d as DomId, XS_WATCH, 0, zs(&[PATHS[*p], "t"])),
                Op::Start(d) => (*d as DomId, XS_TRANSACTION_START, 0, z("")),
                Op::TxWrite(d, t, p) => {
                    let tx = txs.get(&(*d as DomId)).and_then(|v| v.get(*t as usize)).copied().unwrap_or(77);
                    (*d as DomId, XS_WRITE, tx, [z(PATHS[*p]), b"v".to_vec()].concat())
                }
                Op::End(d, t, c) => {
                    let tx = txs.get(&(*d as DomId)).and_then(|v| v.get(*t as usize)).copied().unwrap_or(77);
                    (*d as DomId, XS_TRANSACTION_END, tx, z(if *c { "T" } else { "F" }))
                }
                Op::Release(d) => (0, XS_RELEASE, 0, z(&format!("{d}"))),
                Op::Garbage(d, g) => {
                    // Arbitrary bytes as a payload of an arbitrary type.
                    let ty = g.first().map_or(0, |&b| u32::from(b % 24));
                    (*d as DomId, ty, 0, g.clone())
                }
            };
            let before = x.store().owned_count(dom);
            let msg = Message::new(ty, req, tx, payload);
            match x.handle(dom, &msg) {
                Err(_) => prop_assert!(!x.is_domain_introduced(dom)),
                Ok(out) => {
                    prop_assert!(!out.is_empty());
                    let r = &out[0];
                    prop_assert_eq!(r.header.req_id, req);
                    prop_assert_eq!(r.header.tx_id, tx);
                    prop_assert!(r.header.type_ == ty || r.header.type_ == XS_ERROR);
                    prop_assert!(r.payload.len() <= XENSTORE_PAYLOAD_MAX as usize);
                    if r.header.type_ == XS_ERROR {
                        prop_assert!(XsError::from_name(&r.payload).is_some());
                    } else if ty == XS_TRANSACTION_START {
                        let id: u32 = core::str::from_utf8(&r.payload[..r.payload.len() - 1]).unwrap().parse().unwrap();
                        txs.entry(dom).or_default().push(id);
                    }
                    for e in &out[1..] {
                        prop_assert_eq!(e.header.type_, XS_WATCH_EVENT);
                    }
                }
            }
            if let Op::Release(d) = op {
                txs.remove(&(d as DomId));
            }
            prop_assert_eq!(x.store().check(), Ok(()));
            let after = x.store().owned_count(dom);
            if dom != 0 && after > before {
                prop_assert!(after <= 6, "a domain's own requests stay within its node quota");
            }
            for dom in [1u16, 2] {
                if let Some(c) = x.connection(dom) {
                    prop_assert!(c.transaction_count() <= Quota::default().max_transactions);
                }
            }
        }
    }
}
