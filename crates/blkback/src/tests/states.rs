//! The vbd XenBus state machine and its nodes.

use proptest::prelude::*;
use xen_abi::xenbus::XenbusState as X;

use crate::request::VbdParams;
use crate::xenbus::*;

fn sit(backend: X, frontend: FrontendState) -> Situation {
    Situation {
        backend,
        frontend,
        device: DeviceStatus::Open,
        ring_connected: false,
        online: true,
    }
}

fn st(x: X) -> FrontendState {
    FrontendState::State(x)
}

#[test]
fn handshake_and_teardown() {
    let mut s = sit(X::Initialising, st(X::Initialising));
    s.device = DeviceStatus::Pending;
    assert_eq!(next_step(&s), Step::Wait);
    s.device = DeviceStatus::Open;
    assert_eq!(next_step(&s), Step::PublishFeatures);
    s.backend = X::InitWait;
    assert_eq!(next_step(&s), Step::Wait);
    s.frontend = st(X::Initialised);
    assert_eq!(next_step(&s), Step::Connect);
    s.backend = X::Connected;
    s.ring_connected = true;
    assert_eq!(next_step(&s), Step::Wait);
    s.frontend = st(X::Connected);
    assert_eq!(next_step(&s), Step::Wait);
    // Detach: the front end closes.
    s.frontend = st(X::Closing);
    assert_eq!(next_step(&s), Step::Switch(X::Closing));
    s.backend = X::Closing;
    assert_eq!(next_step(&s), Step::Wait);
    s.frontend = st(X::Closed);
    assert_eq!(next_step(&s), Step::Disconnect);
    s.backend = X::Closed;
    s.ring_connected = false;
    assert_eq!(next_step(&s), Step::Wait, "still online: may reconnect");
    s.online = false;
    assert_eq!(next_step(&s), Step::Remove);
}

#[test]
fn front_end_reconnects_after_closing() {
    let mut s = sit(X::Closed, st(X::Initialising));
    assert_eq!(next_step(&s), Step::Switch(X::InitWait));
    s.online = false;
    assert_eq!(
        next_step(&s),
        Step::Wait,
        "detached devices do not come back"
    );
}

#[test]
fn front_end_that_skips_states() {
    // Initialised before we published: features first, then connect.
    let s = sit(X::Initialising, st(X::Initialised));
    assert_eq!(next_step(&s), Step::PublishFeatures);
    let s = sit(X::InitWait, st(X::Connected));
    assert_eq!(next_step(&s), Step::Connect);
    // Connected state but the ring is not (e.g. after a failed connect that
    // went back): connect again rather than claim to be connected.
    let s = sit(X::Connected, st(X::Connected));
    assert_eq!(next_step(&s), Step::Connect);
    // Closed without Closing first.
    let mut s = sit(X::Connected, st(X::Closed));
    s.ring_connected = true;
    assert_eq!(next_step(&s), Step::Disconnect);
}

#[test]
fn toolstack_closing_waits_for_the_front_end() {
    // xm block-detach: online = 0, backend state = Closing.
    let mut s = sit(X::Closing, st(X::Connected));
    s.ring_connected = true;
    s.online = false;
    assert_eq!(next_step(&s), Step::Wait);
    s.frontend = st(X::Closing);
    assert_eq!(next_step(&s), Step::Wait);
    s.frontend = st(X::Closed);
    assert_eq!(next_step(&s), Step::Disconnect);
}

#[test]
fn bad_front_end_states_are_fatal() {
    for fe in [
        FrontendState::Invalid,
        st(X::Reconfiguring),
        st(X::Reconfigured),
    ] {
        assert_eq!(
            next_step(&sit(X::InitWait, fe)),
            Step::Fatal(FatalReason::BadFrontendState)
        );
    }
    assert_eq!(FrontendState::parse(Some(b"9")), FrontendState::Invalid);
    assert_eq!(FrontendState::parse(Some(b"x")), FrontendState::Invalid);
    assert_eq!(FrontendState::parse(Some(b"")), FrontendState::Invalid);
    assert_eq!(FrontendState::parse(Some(b"3")), st(X::Initialised));
    assert_eq!(FrontendState::parse(None), FrontendState::Absent);
}

#[test]
fn missing_image_is_fatal_before_init_wait() {
    let mut s = sit(X::Initialising, st(X::Initialising));
    s.device = DeviceStatus::Failed;
    assert_eq!(next_step(&s), Step::Fatal(FatalReason::DeviceUnavailable));
}

#[test]
fn front_end_gone() {
    // The front directory does not exist yet: wait for it.
    assert_eq!(
        next_step(&sit(X::InitWait, FrontendState::Absent)),
        Step::Wait
    );
    // It vanished (domain destroyed) while connected: disconnect, then remove.
    let mut s = sit(X::Connected, FrontendState::Absent);
    s.ring_connected = true;
    assert_eq!(next_step(&s), Step::Disconnect);
    s.ring_connected = false;
    s.backend = X::Closed;
    assert_eq!(next_step(&s), Step::Remove);
    assert_eq!(next_step(&sit(X::InitWait, st(X::Unknown))), Step::Remove);
}

/// What the caller does for a step, as the back end's state.
fn apply(s: &mut Situation, step: Step) {
    match step {
        Step::Wait | Step::Remove => {}
        Step::PublishFeatures => s.backend = X::InitWait,
        Step::Connect => {
            s.backend = X::Connected;
            s.ring_connected = true;
        }
        Step::Switch(x) => s.backend = x,
        Step::Disconnect => {
            s.backend = X::Closed;
            s.ring_connected = false;
        }
        Step::Fatal(_) => {
            s.backend = X::Closing;
            s.ring_connected = false;
        }
    }
}

fn any_state() -> impl Strategy<Value = X> {
    (0u32..9).prop_map(|v| X::from_u32(v).unwrap())
}

fn any_fe() -> impl Strategy<Value = FrontendState> {
    prop_oneof![
        Just(FrontendState::Absent),
        Just(FrontendState::Invalid),
        any_state().prop_map(FrontendState::State),
    ]
}

proptest! {
    /// Whatever the front end shows, the back end settles (Wait or Remove)
    /// within a few steps: no ping-pong between states, and it never claims
    /// Connected without a ring.
    #[test]
    fn settles(
        backend in any_state(),
        frontend in any_fe(),
        device in prop_oneof![Just(DeviceStatus::Pending), Just(DeviceStatus::Open), Just(DeviceStatus::Failed)],
        ring_connected in any::<bool>(),
        online in any::<bool>(),
    ) {
        let mut s = Situation { backend, frontend, device, ring_connected, online };
        let mut steps = 0;
        loop {
            let step = next_step(&s);
            if matches!(step, Step::Wait | Step::Remove) {
                break;
            }
            apply(&mut s, step);
            steps += 1;
            prop_assert!(steps <= 4, "does not settle: {:?}", s);
        }
        if s.backend == X::Connected && matches!(s.frontend, FrontendState::State(X::Initialised | X::Connected)) {
            prop_assert!(s.ring_connected);
        }
    }
}

#[test]
fn frontend_transport_nodes() {
    let ok = FrontendNodes {
        ring_ref: Some(b"8"),
        event_channel: Some(b"5\0"),
        protocol: Some(b"x86_32-abi"),
        ..Default::default()
    };
    assert_eq!(
        ok.parse(),
        Ok(FrontendRing {
            ring_ref: 8,
            event_channel: 5
        })
    );
    // No protocol node: our own ABI.
    let no_proto = FrontendNodes {
        protocol: None,
        ..ok
    };
    assert!(no_proto.parse().is_ok());
    let zero_order = FrontendNodes {
        ring_page_order: Some(b"0"),
        num_queues: Some(b"1"),
        ..ok
    };
    assert!(zero_order.parse().is_ok());
    let cases: &[(FrontendNodes, FrontendError)] = &[
        (
            FrontendNodes {
                protocol: Some(b"x86_64-abi"),
                ..ok
            },
            FrontendError::UnsupportedProtocol,
        ),
        (
            FrontendNodes {
                protocol: Some(b""),
                ..ok
            },
            FrontendError::UnsupportedProtocol,
        ),
        (
            FrontendNodes {
                protocol: Some(b"x86_32-abiX"),
                ..ok
            },
            FrontendError::UnsupportedProtocol,
        ),
        (
            FrontendNodes {
                ring_ref: None,
                ..ok
            },
            FrontendError::Missing("ring-ref"),
        ),
        (
            FrontendNodes {
                event_channel: None,
                ..ok
            },
            FrontendError::Missing("event-channel"),
        ),
        (
            FrontendNodes {
                ring_ref: Some(b"12a"),
                ..ok
            },
            FrontendError::NotANumber("ring-ref"),
        ),
        (
            FrontendNodes {
                ring_ref: Some(b"-1"),
                ..ok
            },
            FrontendError::NotANumber("ring-ref"),
        ),
        (
            FrontendNodes {
                ring_ref: Some(b" 12"),
                ..ok
            },
            FrontendError::NotANumber("ring-ref"),
        ),
        (
            FrontendNodes {
                ring_ref: Some(b""),
                ..ok
            },
            FrontendError::NotANumber("ring-ref"),
        ),
        (
            FrontendNodes {
                ring_ref: Some(b"4294967296"),
                ..ok
            },
            FrontendError::NotANumber("ring-ref"),
        ),
        (
            FrontendNodes {
                event_channel: Some(b"99999999999999999999"),
                ..ok
            },
            FrontendError::NotANumber("event-channel"),
        ),
        (
            FrontendNodes {
                ring_page_order: Some(b"1"),
                ..ok
            },
            FrontendError::RingTooLarge,
        ),
        (
            FrontendNodes {
                ring_page_order: Some(b"x"),
                ..ok
            },
            FrontendError::NotANumber("ring-page-order"),
        ),
        (
            FrontendNodes {
                num_queues: Some(b"2"),
                ..ok
            },
            FrontendError::TooManyQueues,
        ),
    ];
    for (n, e) in cases {
        assert_eq!(n.parse(), Err(*e), "{n:?}");
    }
    assert_eq!(
        FrontendNodes {
            ring_ref: Some(b"4294967295"),
            ..ok
        }
        .parse()
        .map(|r| r.ring_ref),
        Ok(u32::MAX)
    );
}

#[test]
fn backend_nodes() {
    let rw = VbdParams::new(8192, false, true);
    assert_eq!(
        feature_nodes(&rw),
        [
            ("feature-flush-cache", 1),
            ("feature-barrier", 1),
            ("feature-persistent", 0),
            ("max-ring-page-order", 0)
        ]
    );
    assert_eq!(
        connect_nodes(&rw),
        [("sectors", 8192), ("info", 0), ("sector-size", 512)]
    );
    let ro = VbdParams::new(100, true, true);
    assert_eq!(
        feature_nodes(&ro)[..2],
        [("feature-flush-cache", 0), ("feature-barrier", 0)]
    );
    assert_eq!(connect_nodes(&ro)[1], ("info", 4));
    let cd = VbdParams { cdrom: true, ..ro };
    assert_eq!(info(&cd), 5);
}

#[test]
fn toolstack_nodes() {
    assert_eq!(
        VbdTarget::parse(Some("file"), Some("/vm/domains/brun/disk.img"), Some("w")),
        Ok(VbdTarget {
            kind: TargetKind::File,
            path: "/vm/domains/brun/disk.img",
            readonly: false
        })
    );
    assert_eq!(
        VbdTarget::parse(Some("phy"), Some("/dev/vda2"), Some("r")).map(|t| (t.kind, t.readonly)),
        Ok((TargetKind::Phy, true))
    );
    assert_eq!(
        VbdTarget::parse(Some("tap"), Some("aio:/x"), Some("w")),
        Err(TargetError::UnsupportedType)
    );
    assert_eq!(
        VbdTarget::parse(None, Some("/x"), Some("w")),
        Err(TargetError::Missing("type"))
    );
    assert_eq!(
        VbdTarget::parse(Some("file"), None, Some("w")),
        Err(TargetError::Missing("params"))
    );
    assert_eq!(
        VbdTarget::parse(Some("file"), Some(""), Some("w")),
        Err(TargetError::EmptyParams)
    );
    assert_eq!(
        VbdTarget::parse(Some("file"), Some("/x"), None),
        Err(TargetError::Missing("mode"))
    );
    assert_eq!(
        VbdTarget::parse(Some("file"), Some("/x"), Some("rw")),
        Err(TargetError::BadMode)
    );
}

#[test]
fn paths() {
    let d = BackendDir {
        frontend: 1,
        devid: 2049,
    };
    assert_eq!(d.to_string(), "backend/vbd/1/2049");
    assert_eq!(ErrorNode(d).to_string(), "error/backend/vbd/1/2049/error");
}
