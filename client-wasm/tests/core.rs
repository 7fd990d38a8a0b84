//! Native tests of the call's core state machine: the offerer rule, ICE candidate buffering,
//! glare under perfect negotiation, peer teardown, and reconnect with rejoin.

#![cfg(not(target_arch = "wasm32"))]

use client_wasm::core::{
    CONNECT_TIMEOUT_MS, ChatFrom, Command, Core, DISCONNECTED_TIMEOUT_MS, Event, IcePolicy,
    MediaKind, PeerLink, SdpKind, Unreachable, reconnect_delay,
};
use client_wasm::i18n::{Lang, Text, Who};
use protocol::{
    ClientId, ClientMessage, ErrorCode, Payload, PeerInfo, RoomId, ServerMessage, UserId,
};

fn cid(s: &str) -> ClientId {
    ClientId::new(s).unwrap()
}
fn room() -> RoomId {
    RoomId::new("room").unwrap()
}
fn sdp(s: &str) -> Payload {
    Payload::from_value(&serde_json::json!({"type": "x", "sdp": s})).unwrap()
}
fn cand(n: u32) -> Payload {
    Payload::from_value(&serde_json::json!({"candidate": format!("candidate:{n}")})).unwrap()
}

/// A core that joined `room` as client `me`, connected, with no peers yet.
fn welcomed(me: &str) -> Core {
    let mut core = Core::new(Some(UserId::new("me").unwrap()));
    assert_eq!(core.handle(Event::Join(room()))[1], Command::Connect(None));
    core.handle(Event::SignalOpen);
    let cmds = core.handle(Event::Signal(ServerMessage::Welcome {
        client_id: cid(me),
        ice_servers: vec![],
        resume_token: None,
        resumed: false,
        max_send_kbps: None,
    }));
    assert_eq!(
        cmds,
        vec![
            Command::Send(ClientMessage::Register {
                user_id: Some(UserId::new("me").unwrap())
            }),
            Command::Send(ClientMessage::Join {
                room_id: room(),
                password: None
            }),
        ]
    );
    core
}

/// `cmds` without what the side panels show (tested on their own).
fn no_panels(cmds: Vec<Command>) -> Vec<Command> {
    cmds.into_iter()
        .filter(|c| !matches!(c, Command::ShowPanels(_) | Command::ShowParticipants(_)))
        .collect()
}

fn joined(members: &[&str]) -> Event {
    Event::Signal(ServerMessage::Joined {
        room_id: room(),
        members: members.iter().map(|m| cid(m)).collect(),
        peers: members
            .iter()
            .map(|m| PeerInfo {
                client_id: cid(m),
                user_id: UserId::new(format!("user-{m}")).unwrap(),
            })
            .collect(),
    })
}

fn offer_from(from: &str, s: &str) -> Event {
    Event::Signal(ServerMessage::Offer {
        from_id: cid(from),
        from_user_id: UserId::new(from).unwrap(),
        sdp: sdp(s),
    })
}

fn answer_from(from: &str, s: &str) -> Event {
    Event::Signal(ServerMessage::Answer {
        from_id: cid(from),
        from_user_id: UserId::new(from).unwrap(),
        sdp: sdp(s),
    })
}

fn candidate_from(from: &str, n: u32) -> Event {
    Event::Signal(ServerMessage::Candidate {
        from_id: cid(from),
        from_user_id: UserId::new(from).unwrap(),
        candidate: cand(n),
    })
}

#[test]
fn the_newcomer_offers_to_every_member() {
    let mut core = welcomed("m");
    let cmds = core.handle(joined(&["a", "b"]));
    assert_eq!(
        &cmds[..4],
        &[
            Command::CreatePeer {
                id: cid("a"),
                label: Who::Named("user-a".into()),
                offerer: true
            },
            Command::WatchPeer(cid("a"), watched(&cmds, "a"), CONNECT_TIMEOUT_MS),
            Command::CreatePeer {
                id: cid("b"),
                label: Who::Named("user-b".into()),
                offerer: true
            },
            Command::WatchPeer(cid("b"), watched(&cmds, "b"), CONNECT_TIMEOUT_MS),
        ]
    );
    // The offer starts when the browser asks for negotiation, and is sent once created.
    assert_eq!(
        core.handle(Event::NegotiationNeeded(cid("a"))),
        vec![Command::CreateOffer(cid("a"))]
    );
    // A second negotiationneeded while the offer is being made does not start another one.
    assert_eq!(core.handle(Event::NegotiationNeeded(cid("a"))), vec![]);
    assert_eq!(
        core.handle(Event::LocalDescription(cid("a"), SdpKind::Offer, sdp("o"))),
        vec![Command::Send(ClientMessage::Offer {
            target_id: cid("a"),
            sdp: sdp("o")
        })]
    );
    assert_eq!(
        core.handle(answer_from("a", "ans")),
        vec![Command::SetRemoteDescription(
            cid("a"),
            SdpKind::Answer,
            sdp("ans")
        )]
    );
    assert_eq!(
        core.handle(Event::RemoteDescriptionSet(cid("a"), SdpKind::Answer)),
        vec![]
    );
    // A late duplicate answer is ignored in the stable state.
    assert_eq!(core.handle(answer_from("a", "again")), vec![]);
}

#[test]
fn members_do_not_offer_to_a_newcomer_but_answer_it() {
    let mut core = welcomed("m");
    core.handle(joined(&[]));
    let user_joined = ServerMessage::UserJoined {
        user_id: UserId::new("nina").unwrap(),
        client_id: cid("n"),
    };
    // A short notice says who joined.
    assert_eq!(
        no_panels(core.handle(Event::Signal(user_joined))),
        vec![
            Command::Toast(Text::PeerJoined(Who::Named("nina".into()))),
            Command::Status(in_room(1))
        ]
    );
    let cmds = core.handle(offer_from("n", "o"));
    assert_eq!(
        cmds,
        vec![
            Command::CreatePeer {
                id: cid("n"),
                label: Who::Named("nina".into()),
                offerer: false
            },
            Command::WatchPeer(cid("n"), watched(&cmds, "n"), CONNECT_TIMEOUT_MS),
            Command::SetRemoteDescription(cid("n"), SdpKind::Offer, sdp("o")),
        ]
    );
    assert_eq!(
        core.handle(Event::RemoteDescriptionSet(cid("n"), SdpKind::Offer)),
        vec![Command::CreateAnswer(cid("n"))]
    );
    assert_eq!(
        core.handle(Event::LocalDescription(cid("n"), SdpKind::Answer, sdp("a"))),
        vec![Command::Send(ClientMessage::Answer {
            target_id: cid("n"),
            sdp: sdp("a")
        })]
    );
}

#[test]
fn early_candidates_are_buffered_until_the_remote_description_is_set() {
    let mut core = welcomed("m");
    core.handle(joined(&[]));
    // Before the peer exists.
    assert_eq!(core.handle(candidate_from("n", 1)), vec![]);
    assert_eq!(core.buffered_candidates(&cid("n")), 1);
    core.handle(offer_from("n", "o"));
    // After the peer exists, before its remote description is applied.
    assert_eq!(core.handle(candidate_from("n", 2)), vec![]);
    assert_eq!(core.buffered_candidates(&cid("n")), 2);
    let cmds = core.handle(Event::RemoteDescriptionSet(cid("n"), SdpKind::Offer));
    assert_eq!(
        cmds,
        vec![
            Command::AddCandidate(cid("n"), cand(1)),
            Command::AddCandidate(cid("n"), cand(2)),
            Command::CreateAnswer(cid("n")),
        ]
    );
    assert_eq!(core.buffered_candidates(&cid("n")), 0);
    // From then on candidates apply at once.
    assert_eq!(
        core.handle(candidate_from("n", 3)),
        vec![Command::AddCandidate(cid("n"), cand(3))]
    );
}

#[test]
fn local_candidates_are_sent_and_the_end_marker_is_null() {
    let mut core = welcomed("m");
    core.handle(joined(&["a"]));
    assert_eq!(
        core.handle(Event::LocalCandidate(cid("a"), Some(cand(7)))),
        vec![Command::Send(ClientMessage::Candidate {
            target_id: cid("a"),
            candidate: cand(7)
        })]
    );
    assert_eq!(
        core.handle(Event::LocalCandidate(cid("a"), None)),
        vec![Command::Send(ClientMessage::Candidate {
            target_id: cid("a"),
            candidate: Payload::from_json("null").unwrap()
        })]
    );
    // Nothing is sent for a peer that is gone.
    assert_eq!(
        core.handle(Event::LocalCandidate(cid("zz"), Some(cand(1)))),
        vec![]
    );
}

/// Both sides offer at once: the impolite one ignores the remote offer, the polite one rolls
/// back and answers, and both end stable with one offer/answer exchange.
#[test]
fn glare_resolves_by_politeness() {
    // "a" < "b": a is polite towards b, b impolite towards a.
    let mut a = welcomed("a");
    let mut b = welcomed("b");
    a.handle(joined(&[]));
    b.handle(joined(&["a"]));
    a.handle(offer_from("b", "first")); // a is now answering b's first offer...
    a.handle(Event::RemoteDescriptionSet(cid("b"), SdpKind::Offer));
    a.handle(Event::LocalDescription(
        cid("b"),
        SdpKind::Answer,
        sdp("ans1"),
    ));
    b.handle(Event::NegotiationNeeded(cid("a")));
    b.handle(Event::LocalDescription(
        cid("a"),
        SdpKind::Offer,
        sdp("first"),
    ));
    b.handle(answer_from("a", "ans1"));
    b.handle(Event::RemoteDescriptionSet(cid("a"), SdpKind::Answer));

    // Now both renegotiate at the same time.
    assert_eq!(
        a.handle(Event::NegotiationNeeded(cid("b"))),
        vec![Command::CreateOffer(cid("b"))]
    );
    assert_eq!(
        b.handle(Event::NegotiationNeeded(cid("a"))),
        vec![Command::CreateOffer(cid("a"))]
    );
    a.handle(Event::LocalDescription(
        cid("b"),
        SdpKind::Offer,
        sdp("from-a"),
    ));
    b.handle(Event::LocalDescription(
        cid("a"),
        SdpKind::Offer,
        sdp("from-b"),
    ));

    // The impolite side ignores the colliding offer.
    assert_eq!(b.handle(offer_from("a", "from-a")), vec![]);
    // The polite side accepts it (the browser rolls back its own offer) and answers.
    assert_eq!(
        a.handle(offer_from("b", "from-b")),
        vec![Command::SetRemoteDescription(
            cid("b"),
            SdpKind::Offer,
            sdp("from-b")
        )]
    );
    assert_eq!(
        a.handle(Event::RemoteDescriptionSet(cid("b"), SdpKind::Offer)),
        vec![Command::CreateAnswer(cid("b"))]
    );
    let sent = a.handle(Event::LocalDescription(
        cid("b"),
        SdpKind::Answer,
        sdp("ans2"),
    ));
    assert_eq!(
        sent,
        vec![Command::Send(ClientMessage::Answer {
            target_id: cid("b"),
            sdp: sdp("ans2")
        })]
    );
    // The impolite side takes the answer to its own offer: both are stable again, and a new
    // negotiation can start on either side.
    assert_eq!(
        b.handle(answer_from("a", "ans2")),
        vec![Command::SetRemoteDescription(
            cid("a"),
            SdpKind::Answer,
            sdp("ans2")
        )]
    );
    b.handle(Event::RemoteDescriptionSet(cid("a"), SdpKind::Answer));
    assert_eq!(
        b.handle(Event::NegotiationNeeded(cid("a"))),
        vec![Command::CreateOffer(cid("a"))]
    );
    assert_eq!(
        a.handle(Event::NegotiationNeeded(cid("b"))),
        vec![Command::CreateOffer(cid("b"))]
    );
}

#[test]
fn peers_are_torn_down_on_leave_failure_and_hang_up() {
    let mut core = welcomed("m");
    core.handle(joined(&["a", "b", "c"]));
    let left = ServerMessage::UserLeft {
        user_id: UserId::new("a").unwrap(),
        client_id: cid("a"),
    };
    assert_eq!(
        no_panels(core.handle(Event::Signal(left.clone()))),
        vec![
            Command::ClosePeer(cid("a")),
            Command::Toast(Text::PeerLeft(Who::Named("user-a".into()))),
            Command::Status(in_room(2))
        ]
    );
    // A second notice for the same peer does nothing.
    assert_eq!(core.handle(Event::Signal(left)), vec![]);
    // A connection that worked and then failed is restarted, and given up only when restarts
    // do not help: its tile stays, saying why.
    core.handle(Event::PeerState(cid("b"), PeerLink::Connected));
    for _ in 0..client_wasm::core::MAX_ICE_RESTARTS {
        let cmds = core.handle(Event::PeerState(cid("b"), PeerLink::Failed));
        assert!(cmds.contains(&Command::RestartIce(cid("b"))), "{cmds:?}");
    }
    let cmds = core.handle(Event::PeerState(cid("b"), PeerLink::Failed));
    assert_eq!(
        cmds.last(),
        Some(&Command::PeerFailed(cid("b"), Unreachable::Lost))
    );
    assert_eq!(core.peer_ids().collect::<Vec<_>>(), vec![&cid("c")]);
    let cmds = core.handle(Event::Leave);
    assert_eq!(
        cmds[0],
        Command::Send(ClientMessage::Leave {
            room_id: Some(room())
        })
    );
    assert_eq!(cmds[1], Command::ClosePeer(cid("c")));
    assert_eq!(
        cmds[2],
        Command::ClosePeer(cid("b")),
        "the failed tile goes too"
    );
    assert_eq!(core.peer_ids().count(), 0);
}

#[test]
fn signaling_loss_reconnects_with_backoff_and_rejoins() {
    let mut core = welcomed("m");
    core.handle(joined(&["a"]));
    let cmds = core.handle(Event::SignalClosed);
    assert!(matches!(&cmds[0], Command::Status(s) if en(s).contains("reconnecting")));
    assert_eq!(cmds[1], Command::ScheduleReconnect(reconnect_delay(0)));
    assert_eq!(
        core.handle(Event::ReconnectDue),
        vec![Command::Connect(None)]
    );
    // The relay is still down: the next delay is longer.
    let cmds = core.handle(Event::SignalClosed);
    assert_eq!(cmds[1], Command::ScheduleReconnect(reconnect_delay(1)));
    assert!(reconnect_delay(1) > reconnect_delay(0));
    assert_eq!(reconnect_delay(30), 10_000, "capped");
    core.handle(Event::ReconnectDue);
    core.handle(Event::SignalOpen);
    // A new session: the old peers go, and the room is joined again.
    let cmds = core.handle(Event::Signal(ServerMessage::Welcome {
        client_id: cid("m2"),
        ice_servers: vec![],
        resume_token: None,
        resumed: false,
        max_send_kbps: None,
    }));
    assert_eq!(cmds[0], Command::ClosePeer(cid("a")));
    assert_eq!(
        cmds.last(),
        Some(&Command::Send(ClientMessage::Join {
            room_id: room(),
            password: None
        }))
    );
    // And the backoff starts over.
    let cmds = core.handle(Event::SignalClosed);
    assert_eq!(cmds[1], Command::ScheduleReconnect(reconnect_delay(0)));
}

#[test]
fn toggles_flip_track_state() {
    let mut core = welcomed("m");
    assert_eq!(
        no_panels(core.handle(Event::Toggle(MediaKind::Audio))),
        vec![Command::SetTrackEnabled(MediaKind::Audio, false)]
    );
    assert!(!core.media_on(MediaKind::Audio));
    assert_eq!(
        no_panels(core.handle(Event::Toggle(MediaKind::Audio))),
        vec![Command::SetTrackEnabled(MediaKind::Audio, true)]
    );
    assert_eq!(
        no_panels(core.handle(Event::Toggle(MediaKind::Video))),
        vec![Command::SetTrackEnabled(MediaKind::Video, false)]
    );
}

#[test]
fn a_refused_join_is_reported_and_not_retried() {
    let mut core = welcomed("m");
    let err = ServerMessage::JoinError {
        error: "room room is full".into(),
        room_id: Some(room()),
        code: None,
    };
    let cmds = core.handle(Event::Signal(err));
    assert!(matches!(&cmds[0], Command::Status(s) if en(s).contains("full")));
    // With no room wanted, losing the relay does not reconnect.
    assert_eq!(
        core.handle(Event::SignalClosed),
        vec![Command::Status(Text::Disconnected)]
    );
}

#[test]
fn the_room_password_goes_with_every_join_and_welcome_ice_servers_are_used() {
    let mut core = Core::new(None);
    core.set_password(Some("pw".into()));
    core.handle(Event::Join(room()));
    core.handle(Event::SignalOpen);
    let ice = vec![protocol::IceServer {
        urls: vec!["turn:t.example".into()],
        username: Some("1:u".into()),
        credential: Some("c".into()),
    }];
    let cmds = core.handle(Event::Signal(ServerMessage::Welcome {
        client_id: cid("m"),
        ice_servers: ice.clone(),
        resume_token: None,
        resumed: false,
        max_send_kbps: None,
    }));
    assert_eq!(
        cmds,
        vec![
            Command::UseIceServers(ice),
            Command::Send(ClientMessage::Join {
                room_id: room(),
                password: Some("pw".into())
            }),
        ]
    );
    // An empty password means none.
    core.set_password(Some(String::new()));
    let cmds = core.handle(Event::Join(RoomId::new("other").unwrap()));
    assert_eq!(
        cmds.last(),
        Some(&Command::Send(ClientMessage::Join {
            room_id: RoomId::new("other").unwrap(),
            password: None
        }))
    );
}

#[test]
fn a_dropped_socket_resumes_the_session_and_keeps_the_calls() {
    let mut core = Core::new(None);
    core.handle(Event::Join(room()));
    core.handle(Event::SignalOpen);
    let welcome = |token: &str, resumed: bool| {
        Event::Signal(ServerMessage::Welcome {
            client_id: cid("m"),
            ice_servers: vec![],
            resume_token: Some(token.into()),
            resumed,
            max_send_kbps: None,
        })
    };
    core.handle(welcome("t1", false));
    core.handle(joined(&["a"]));
    core.handle(Event::PeerState(cid("a"), PeerLink::Connected));
    core.handle(Event::SignalClosed);
    // Reconnecting presents the session's token.
    assert_eq!(
        core.handle(Event::ReconnectDue),
        vec![Command::Connect(Some("t1".into()))]
    );
    core.handle(Event::SignalOpen);
    let cmds = core.handle(welcome("t2", true));
    assert!(
        !cmds
            .iter()
            .any(|c| matches!(c, Command::ClosePeer(_) | Command::Send(_))),
        "the call goes on without rejoining: {cmds:?}"
    );
    assert_eq!(core.peer_ids().collect::<Vec<_>>(), vec![&cid("a")]);
    // Candidates keep flowing to the peer.
    assert_eq!(
        core.handle(Event::LocalCandidate(cid("a"), Some(cand(1))))
            .len(),
        1,
        "the link is up again"
    );
    // The rotated token is the one used next time.
    core.handle(Event::SignalClosed);
    assert_eq!(
        core.handle(Event::ReconnectDue),
        vec![Command::Connect(Some("t2".into()))]
    );
}

#[test]
fn a_new_display_name_is_registered_at_once_when_connected() {
    let mut core = welcomed("m");
    assert_eq!(
        core.set_user_name(Some(UserId::new("me").unwrap())),
        vec![],
        "unchanged"
    );
    assert_eq!(
        core.set_user_name(Some(UserId::new("Ann").unwrap())),
        vec![Command::Send(ClientMessage::Register {
            user_id: Some(UserId::new("Ann").unwrap())
        })]
    );
    // Before connecting, it waits for the welcome.
    let mut fresh = Core::new(None);
    assert_eq!(
        fresh.set_user_name(Some(UserId::new("Bo").unwrap())),
        vec![]
    );
    fresh.handle(Event::Join(room()));
    fresh.handle(Event::SignalOpen);
    let cmds = fresh.handle(Event::Signal(ServerMessage::Welcome {
        client_id: cid("f"),
        ice_servers: vec![],
        resume_token: None,
        resumed: false,
        max_send_kbps: None,
    }));
    assert_eq!(
        cmds[0],
        Command::Send(ClientMessage::Register {
            user_id: Some(UserId::new("Bo").unwrap())
        })
    );
}

#[test]
fn a_name_another_member_has_gets_a_number_and_the_join_is_tried_again() {
    let mut core = welcomed("m");
    let taken = || {
        Event::Signal(ServerMessage::JoinError {
            error: "user id me is already used in room room: pick another".into(),
            room_id: Some(room()),
            code: Some(ErrorCode::UserIdTaken),
        })
    };
    let again = |name: &str| {
        vec![
            Command::Send(ClientMessage::Register {
                user_id: Some(UserId::new(name).unwrap()),
            }),
            Command::Send(ClientMessage::Join {
                room_id: room(),
                password: None,
            }),
        ]
    };
    let cmds = core.handle(taken());
    assert!(
        matches!(&cmds[0], Command::Status(s) if en(s).contains("me (2)")),
        "{cmds:?}"
    );
    assert_eq!(cmds[1..], again("me (2)"));
    assert_eq!(core.handle(taken())[1..], again("me (3)"));
    for _ in 4..=9 {
        core.handle(taken());
    }
    // After "(9)" it gives up and says so.
    let cmds = core.handle(taken());
    assert!(
        matches!(&cmds[..], [Command::Status(s)] if en(s).contains("pick another")),
        "{cmds:?}"
    );
    // A long name is shortened to fit its number.
    let long = "n".repeat(protocol::MAX_ID_CHARS);
    let mut core = Core::new(Some(UserId::new(long.clone()).unwrap()));
    core.handle(Event::Join(room()));
    core.handle(Event::SignalOpen);
    core.handle(Event::Signal(ServerMessage::Welcome {
        client_id: cid("x"),
        ice_servers: vec![],
        resume_token: None,
        resumed: false,
        max_send_kbps: None,
    }));
    let cmds = core.handle(taken());
    let Command::Send(ClientMessage::Register {
        user_id: Some(name),
    }) = &cmds[1]
    else {
        panic!("{cmds:?}");
    };
    assert!(name.as_str().ends_with("n (2)"));
    assert_eq!(name.as_str().chars().count(), protocol::MAX_ID_CHARS);
}

#[test]
fn chat_goes_by_data_channel_when_open_and_by_the_relay_otherwise() {
    use client_wasm::core::ChatLine;
    let mut core = welcomed("m");
    core.handle(joined(&["a", "b"]));
    core.handle(Event::ChatChannel(cid("a"), true));
    let cmds = core.handle(Event::ChatSend {
        text: "hi".into(),
        time: 1000.0,
    });
    let line = ChatLine {
        chat: "hi".into(),
        name: "me".into(),
        time: 1000.0,
    };
    let json = serde_json::to_string(&line).unwrap();
    assert_eq!(
        cmds,
        vec![
            Command::SendChannelData(cid("a"), json.clone()),
            // b's channel is not open yet: the relay carries it, nothing is lost.
            Command::Send(ClientMessage::Message {
                target_id: Some(cid("b")),
                content: Payload::from_json(json.clone()).unwrap(),
            }),
            Command::ShowChat {
                line: line.clone(),
                from: ChatFrom::Me
            },
        ]
    );
    // Received either way, it is shown.
    assert_eq!(
        no_panels(core.handle(Event::ChannelData(cid("a"), json.clone()))),
        vec![Command::ShowChat {
            line: line.clone(),
            from: ChatFrom::Channel
        }]
    );
    let via_relay = ServerMessage::Message {
        from_id: cid("b"),
        from_user_id: UserId::new("b").unwrap(),
        content: Payload::from_json(json).unwrap(),
    };
    assert_eq!(
        no_panels(core.handle(Event::Signal(via_relay))),
        vec![Command::ShowChat {
            line,
            from: ChatFrom::Relay
        }]
    );
    // Other apps' messages are not chat.
    let other = ServerMessage::Message {
        from_id: cid("b"),
        from_user_id: UserId::new("b").unwrap(),
        content: Payload::from_json(r#"{"x":1}"#).unwrap(),
    };
    assert_eq!(core.handle(Event::Signal(other)), vec![]);
}

#[test]
fn screen_sharing_starts_stops_and_ends_from_the_browser() {
    let mut core = welcomed("m");
    assert_eq!(core.handle(Event::ShareToggle), vec![Command::StartShare]);
    assert!(core.sharing());
    assert_eq!(core.handle(Event::ShareToggle), vec![Command::StopShare]);
    assert!(!core.sharing());
    core.handle(Event::ShareToggle);
    // The browser's own stop control (or a refused picker) ends it once.
    assert_eq!(core.handle(Event::ShareEnded), vec![Command::StopShare]);
    assert_eq!(core.handle(Event::ShareEnded), vec![]);
}

#[test]
fn a_failed_connection_is_restarted_and_shows_reconnecting_until_it_recovers() {
    let mut core = welcomed("m");
    core.handle(joined(&["a"]));
    core.handle(Event::PeerState(cid("a"), PeerLink::Connected));
    // Disconnected: reconnecting, and a deadline for coming back on its own.
    let cmds = core.handle(Event::PeerState(cid("a"), PeerLink::Disconnected));
    assert_eq!(cmds[0], Command::PeerReconnecting(cid("a"), true));
    assert!(matches!(
        cmds[1],
        Command::WatchPeer(ref id, _, DISCONNECTED_TIMEOUT_MS) if *id == cid("a")
    ));
    let cmds = core.handle(Event::PeerState(cid("a"), PeerLink::Failed));
    assert_eq!(
        &cmds[..2],
        &[
            Command::PeerReconnecting(cid("a"), true),
            Command::RestartIce(cid("a"))
        ]
    );
    // The restart has a deadline of its own.
    assert!(matches!(
        cmds[2],
        Command::WatchPeer(ref id, _, CONNECT_TIMEOUT_MS) if *id == cid("a")
    ));
    // The restart renegotiates through the usual offer path.
    assert_eq!(
        core.handle(Event::NegotiationNeeded(cid("a"))),
        vec![Command::CreateOffer(cid("a"))]
    );
    assert_eq!(
        core.handle(Event::PeerState(cid("a"), PeerLink::Connected)),
        vec![Command::PeerReconnecting(cid("a"), false)]
    );
    // Recovered: the restart budget is whole again.
    for _ in 0..client_wasm::core::MAX_ICE_RESTARTS {
        let cmds = core.handle(Event::PeerState(cid("a"), PeerLink::Failed));
        assert!(cmds.contains(&Command::RestartIce(cid("a"))), "{cmds:?}");
    }
}

#[test]
fn recording_starts_and_stops() {
    let mut core = welcomed("m");
    assert_eq!(
        core.handle(Event::RecordToggle),
        vec![Command::StartRecording]
    );
    assert_eq!(
        core.handle(Event::RecordToggle),
        vec![Command::StopRecording]
    );
    // The file of a recording the user stopped is ready: nothing more to do.
    assert_eq!(core.handle(Event::RecordingEnded), vec![]);
}

#[test]
fn a_recording_that_cannot_start_or_stops_on_its_own_leaves_recording() {
    let mut core = welcomed("m");
    core.handle(Event::RecordToggle);
    // The web layer could not start it (or the recorder stopped): the button is released
    // once, and the next click starts again instead of stopping nothing.
    assert_eq!(
        core.handle(Event::RecordingEnded),
        vec![Command::StopRecording]
    );
    assert_eq!(core.handle(Event::RecordingEnded), vec![]);
    assert_eq!(
        core.handle(Event::RecordToggle),
        vec![Command::StartRecording]
    );
}

/// The attempt that `cmds` watch for `id` (from its `WatchPeer`).
fn watched(cmds: &[Command], id: &str) -> u32 {
    cmds.iter()
        .find_map(|c| match c {
            Command::WatchPeer(p, attempt, _) if *p == cid(id) => Some(*attempt),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no deadline for {id} in {cmds:?}"))
}

fn user_joined(id: &str) -> Event {
    Event::Signal(ServerMessage::UserJoined {
        user_id: UserId::new(format!("user-{id}")).unwrap(),
        client_id: cid(id),
    })
}

fn user_left(id: &str) -> Event {
    Event::Signal(ServerMessage::UserLeft {
        user_id: UserId::new(format!("user-{id}")).unwrap(),
        client_id: cid(id),
    })
}

fn statuses(cmds: &[Command]) -> Vec<String> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::Status(s) => Some(en(s)),
            _ => None,
        })
        .collect()
}

/// A status line in English.
fn en(text: &Text) -> String {
    text.render(Lang::En)
}

/// The status of room "room" with `others` others.
fn in_room(others: usize) -> Text {
    Text::InRoom {
        room: "room".into(),
        others,
        relay_only_without_turn: false,
    }
}

#[test]
fn the_status_follows_the_member_count() {
    let mut core = welcomed("m");
    assert_eq!(
        statuses(&core.handle(joined(&[]))),
        ["in room room: waiting for others"]
    );
    assert_eq!(
        statuses(&core.handle(user_joined("a"))),
        ["in room room with 1 other"]
    );
    assert_eq!(
        statuses(&core.handle(user_joined("b"))),
        ["in room room with 2 others"]
    );
    assert_eq!(
        statuses(&core.handle(user_left("a"))),
        ["in room room with 1 other"]
    );
    assert_eq!(
        statuses(&core.handle(user_left("b"))),
        ["in room room: waiting for others"]
    );
    // A reference relay's `joined` has members but no `peers`: they count too.
    let mut core = welcomed("m");
    let bare = Event::Signal(ServerMessage::Joined {
        room_id: room(),
        members: vec![cid("x"), cid("y")],
        peers: vec![],
    });
    assert_eq!(statuses(&core.handle(bare)), ["in room room with 2 others"]);
}

/// The notice a page sends the other side when it gives their connection up.
fn failed_notice(to: &str, why: &str) -> Command {
    Command::Send(ClientMessage::Message {
        target_id: Some(cid(to)),
        content: Payload::from_json(format!(r#"{{"peerFailed":"{why}"}}"#)).unwrap(),
    })
}

#[test]
fn a_connection_that_never_comes_up_is_given_up_on_both_sides_at_its_deadline() {
    let mut core = welcomed("m");
    let cmds = core.handle(joined(&["a", "b"]));
    let (wa, wb) = (watched(&cmds, "a"), watched(&cmds, "b"));
    assert_ne!(wa, wb, "every deadline has a number of its own");
    // b connects: its deadline, when it comes, is stale.
    core.handle(Event::PeerState(cid("b"), PeerLink::Connected));
    assert_eq!(core.handle(Event::PeerDeadline(cid("b"), wb)), vec![]);
    // a never does: given up, the other side told, the tile kept with the reason.
    let cmds = core.handle(Event::PeerDeadline(cid("a"), wa));
    assert_eq!(
        cmds,
        vec![
            failed_notice("a", "needs-turn"),
            Command::Status(Text::PeerUnreachable(
                Who::Named("user-a".into()),
                Unreachable::NeedsTurn
            )),
            Command::PeerFailed(cid("a"), Unreachable::NeedsTurn),
        ]
    );
    assert_eq!(core.peer_ids().collect::<Vec<_>>(), vec![&cid("b")]);
    // Its late events change nothing; its leaving removes the tile.
    assert_eq!(core.handle(Event::PeerDeadline(cid("a"), wa)), vec![]);
    assert_eq!(
        core.handle(Event::PeerState(cid("a"), PeerLink::Failed)),
        vec![]
    );
    let cmds = core.handle(user_left("a"));
    assert_eq!(cmds[0], Command::ClosePeer(cid("a")));

    // The other side shows the same on the notice, without answering it.
    let mut other = welcomed("a");
    other.handle(joined(&["m"]));
    let notice = Event::Signal(ServerMessage::Message {
        from_id: cid("m"),
        from_user_id: UserId::new("me").unwrap(),
        content: Payload::from_json(r#"{"peerFailed":"needs-turn"}"#).unwrap(),
    });
    let cmds = other.handle(notice.clone());
    assert_eq!(
        cmds.last(),
        Some(&Command::PeerFailed(cid("m"), Unreachable::NeedsTurn))
    );
    assert!(
        !cmds.iter().any(|c| matches!(c, Command::Send(_))),
        "no notice back: {cmds:?}"
    );
    assert_eq!(other.handle(notice), vec![], "a second notice does nothing");
    // An offer from it later (its network changed) starts a new connection and tile.
    let cmds = other.handle(offer_from("m", "again"));
    assert_eq!(cmds[0], Command::ClosePeer(cid("m")));
    assert!(matches!(
        cmds[1],
        Command::CreatePeer { offerer: false, .. }
    ));
}

#[test]
fn an_unanswered_ice_restart_times_out_and_the_peer_is_given_up() {
    let mut core = welcomed("m");
    core.handle(joined(&["a"]));
    core.handle(Event::PeerState(cid("a"), PeerLink::Connected));
    let mut attempt = None;
    for _ in 0..client_wasm::core::MAX_ICE_RESTARTS {
        let cmds = match attempt {
            None => core.handle(Event::PeerState(cid("a"), PeerLink::Failed)),
            // The restart's offer was never answered: its deadline passes.
            Some(n) => core.handle(Event::PeerDeadline(cid("a"), n)),
        };
        assert!(cmds.contains(&Command::RestartIce(cid("a"))), "{cmds:?}");
        attempt = cmds.iter().find_map(|c| match c {
            Command::WatchPeer(_, n, _) => Some(*n),
            _ => None,
        });
    }
    let cmds = core.handle(Event::PeerDeadline(cid("a"), attempt.unwrap()));
    // It worked before: "lost", not a network that needs TURN.
    assert_eq!(cmds[0], failed_notice("a", "lost"));
    assert_eq!(
        cmds.last(),
        Some(&Command::PeerFailed(cid("a"), Unreachable::Lost))
    );
}

#[test]
fn a_connection_disconnected_too_long_is_restarted_without_waiting_for_the_browser() {
    let mut core = welcomed("m");
    core.handle(joined(&["a"]));
    core.handle(Event::PeerState(cid("a"), PeerLink::Connected));
    let cmds = core.handle(Event::PeerState(cid("a"), PeerLink::Disconnected));
    let Command::WatchPeer(_, attempt, _) = cmds[1] else {
        panic!("{cmds:?}");
    };
    // Back on its own before the deadline: the deadline is void.
    core.handle(Event::PeerState(cid("a"), PeerLink::Connected));
    assert_eq!(core.handle(Event::PeerDeadline(cid("a"), attempt)), vec![]);
    // Not back by the deadline: restarted.
    let cmds = core.handle(Event::PeerState(cid("a"), PeerLink::Disconnected));
    let Command::WatchPeer(_, attempt, _) = cmds[1] else {
        panic!("{cmds:?}");
    };
    let cmds = core.handle(Event::PeerDeadline(cid("a"), attempt));
    assert!(cmds.contains(&Command::RestartIce(cid("a"))), "{cmds:?}");
}

fn description(ufrag: &str) -> Payload {
    sdp(&format!("v=0\r\na=ice-ufrag:{ufrag}\r\na=ice-pwd:x\r\n"))
}

#[test]
fn a_notice_about_an_older_connection_is_ignored() {
    // m offers to a with ufrag "mine1"; a answers with "theirs1".
    let mut core = welcomed("m");
    let wa = watched(&core.handle(joined(&["a"])), "a");
    core.handle(Event::NegotiationNeeded(cid("a")));
    core.handle(Event::LocalDescription(
        cid("a"),
        SdpKind::Offer,
        description("mine1"),
    ));
    core.handle(Event::Signal(ServerMessage::Answer {
        from_id: cid("a"),
        from_user_id: UserId::new("a").unwrap(),
        sdp: description("theirs1"),
    }));
    // Given up here: the notice names a's side of the connection.
    let cmds = core.handle(Event::PeerDeadline(cid("a"), wa));
    assert_eq!(
        cmds[0],
        Command::Send(ClientMessage::Message {
            target_id: Some(cid("a")),
            content: Payload::from_json(r#"{"peerFailed":"needs-turn","ufrag":"theirs1"}"#)
                .unwrap(),
        })
    );
    // On a's side, a notice naming an older connection than its current one does nothing.
    let mut other = welcomed("a");
    other.handle(offer_from("m", "o"));
    other.handle(Event::RemoteDescriptionSet(cid("m"), SdpKind::Offer));
    other.handle(Event::LocalDescription(
        cid("m"),
        SdpKind::Answer,
        description("theirs2"),
    ));
    let notice = |ufrag: &str| {
        Event::Signal(ServerMessage::Message {
            from_id: cid("m"),
            from_user_id: UserId::new("me").unwrap(),
            content: Payload::from_json(format!(
                r#"{{"peerFailed":"needs-turn","ufrag":"{ufrag}"}}"#
            ))
            .unwrap(),
        })
    };
    assert_eq!(other.handle(notice("theirs1")), vec![]);
    let cmds = other.handle(notice("theirs2"));
    assert_eq!(
        cmds.last(),
        Some(&Command::PeerFailed(cid("m"), Unreachable::NeedsTurn))
    );
}

#[test]
fn with_a_turn_server_the_reason_says_even_through_it() {
    let mut core = Core::new(None);
    core.handle(Event::Join(room()));
    core.handle(Event::SignalOpen);
    core.handle(Event::Signal(ServerMessage::Welcome {
        client_id: cid("m"),
        ice_servers: vec![protocol::IceServer {
            urls: vec!["turn:t.example:3478".into()],
            username: Some("u".into()),
            credential: Some("c".into()),
        }],
        resume_token: None,
        resumed: false,
        max_send_kbps: None,
    }));
    let wa = watched(&core.handle(joined(&["a"])), "a");
    let cmds = core.handle(Event::PeerDeadline(cid("a"), wa));
    assert_eq!(
        cmds.last(),
        Some(&Command::PeerFailed(cid("a"), Unreachable::EvenThroughTurn))
    );
}

#[test]
fn relay_only_without_a_turn_server_is_refused_up_front() {
    let relay_only = IcePolicy {
        relay_only: true,
        from_page: false,
        page_turn: false,
    };
    let mut core = Core::new(None);
    core.set_ice_policy(relay_only);
    core.handle(Event::Join(room()));
    core.handle(Event::SignalOpen);
    let cmds = core.handle(Event::Signal(ServerMessage::Welcome {
        client_id: cid("m"),
        ice_servers: vec![],
        resume_token: None,
        resumed: false,
        max_send_kbps: None,
    }));
    assert!(
        statuses(&cmds)
            .iter()
            .any(|s| s.contains("relay-only mode needs a TURN server")),
        "{cmds:?}"
    );
    // Every peer is refused at once, and its side told; the status keeps saying why.
    let cmds = core.handle(joined(&["a"]));
    assert!(
        statuses(&cmds)
            .iter()
            .any(|s| s.starts_with("in room room with 1 other · relay-only mode needs")),
        "{cmds:?}"
    );
    assert!(matches!(cmds[0], Command::CreatePeer { .. }));
    assert!(cmds.contains(&failed_notice("a", "relay-only-without-turn")));
    assert!(cmds.contains(&Command::PeerFailed(
        cid("a"),
        Unreachable::RelayOnlyWithoutTurn
    )));
    assert!(!cmds.iter().any(|c| matches!(c, Command::WatchPeer(..))));
    let cmds = core.handle(offer_from("b", "o"));
    assert!(
        !cmds
            .iter()
            .any(|c| matches!(c, Command::SetRemoteDescription(..))),
        "{cmds:?}"
    );

    // With a TURN server from the relay, relay-only calls go ahead.
    let mut core = Core::new(None);
    core.set_ice_policy(relay_only);
    core.handle(Event::Join(room()));
    core.handle(Event::SignalOpen);
    core.handle(Event::Signal(ServerMessage::Welcome {
        client_id: cid("m"),
        ice_servers: vec![protocol::IceServer {
            urls: vec!["turn:t.example:3478".into()],
            username: None,
            credential: None,
        }],
        resume_token: None,
        resumed: false,
        max_send_kbps: None,
    }));
    let cmds = core.handle(joined(&["a"]));
    assert!(cmds.contains(&Command::WatchPeer(
        cid("a"),
        watched(&cmds, "a"),
        CONNECT_TIMEOUT_MS
    )));
}

#[test]
fn connections_given_up_while_away_are_called_again_when_the_session_resumes() {
    let mut core = Core::new(Some(UserId::new("me").unwrap()));
    core.handle(Event::Join(room()));
    core.handle(Event::SignalOpen);
    core.handle(Event::Signal(ServerMessage::Welcome {
        client_id: cid("m"),
        ice_servers: vec![],
        resume_token: Some("t".into()),
        resumed: false,
        max_send_kbps: None,
    }));
    let wa = watched(&core.handle(joined(&["a", "b", "c"])), "a");
    core.handle(Event::PeerState(cid("b"), PeerLink::Connected));
    // c has a remote description, but is not up.
    core.handle(answer_from("c", "ans"));
    core.handle(Event::RemoteDescriptionSet(cid("c"), SdpKind::Answer));
    // The link goes: a's connection is given up, the relay socket is lost, and c's is not up.
    core.handle(Event::PeerDeadline(cid("a"), wa));
    core.handle(Event::SignalClosed);
    core.handle(Event::ReconnectDue);
    core.handle(Event::SignalOpen);
    let cmds = core.handle(Event::Signal(ServerMessage::Welcome {
        client_id: cid("m"),
        ice_servers: vec![],
        resume_token: Some("t2".into()),
        resumed: true,
        max_send_kbps: None,
    }));
    // b's call goes on untouched; a is called again, as a newcomer would.
    assert!(!cmds.contains(&Command::ClosePeer(cid("b"))), "{cmds:?}");
    let a_again = cmds.iter().position(|c| *c == Command::ClosePeer(cid("a")));
    let created = cmds.iter().position(
        |c| matches!(c, Command::CreatePeer { id, offerer: true, .. } if *id == cid("a")),
    );
    assert!(a_again.is_some() && created > a_again, "{cmds:?}");
    // a is told first (the relay may not have carried it while this page was away), so that
    // its side drops the old connection before the new offer comes.
    let told = cmds
        .iter()
        .position(|c| matches!(c, Command::Send(ClientMessage::Message { .. })));
    assert!(told < a_again, "{cmds:?}");
    // c restarts ICE on the connection it has: the other side knows that one.
    assert!(cmds.contains(&Command::RestartIce(cid("c"))), "{cmds:?}");
    assert!(!cmds.contains(&Command::ClosePeer(cid("c"))), "{cmds:?}");
}

#[test]
fn an_offer_from_the_connection_that_was_replaced_is_ignored() {
    let mut core = welcomed("m");
    let wa = watched(&core.handle(joined(&["a"])), "a");
    core.handle(Event::NegotiationNeeded(cid("a")));
    core.handle(Event::LocalDescription(
        cid("a"),
        SdpKind::Offer,
        description("m1"),
    ));
    core.handle(Event::Signal(ServerMessage::Answer {
        from_id: cid("a"),
        from_user_id: UserId::new("a").unwrap(),
        sdp: description("old"),
    }));
    core.handle(Event::PeerDeadline(cid("a"), wa));
    // Away and back: a is called again on a new connection.
    core.handle(Event::SignalClosed);
    core.handle(Event::ReconnectDue);
    core.handle(Event::SignalOpen);
    core.handle(Event::Signal(ServerMessage::Welcome {
        client_id: cid("m"),
        ice_servers: vec![],
        resume_token: None,
        resumed: true,
        max_send_kbps: None,
    }));
    // An offer a's old connection sent meanwhile (it waited at the relay) changes nothing...
    let offer = |ufrag: &str| {
        Event::Signal(ServerMessage::Offer {
            from_id: cid("a"),
            from_user_id: UserId::new("a").unwrap(),
            sdp: description(ufrag),
        })
    };
    assert_eq!(core.handle(offer("old")), vec![]);
    // ...while one from its new connection is taken.
    let cmds = core.handle(offer("new"));
    assert!(
        cmds.iter()
            .any(|c| matches!(c, Command::SetRemoteDescription(_, SdpKind::Offer, _))),
        "{cmds:?}"
    );
}

#[test]
fn peers_are_told_whether_the_microphone_and_camera_are_on() {
    use client_wasm::core::MediaState;
    let state = |mic: bool, cam: bool| format!(r#"{{"media":{{"mic":{mic},"cam":{cam}}}}}"#);
    let mut core = welcomed("m");
    core.handle(joined(&["a", "b"]));
    // A peer is told when its data channel opens...
    assert_eq!(
        core.handle(Event::ChatChannel(cid("a"), true)),
        vec![Command::SendChannelData(cid("a"), state(true, true))]
    );
    assert_eq!(core.handle(Event::ChatChannel(cid("a"), false)), vec![]);
    core.handle(Event::ChatChannel(cid("a"), true));
    // ...and every peer whose channel is open, on each change (b is told when its opens).
    assert_eq!(
        no_panels(core.handle(Event::Toggle(MediaKind::Audio))),
        vec![
            Command::SetTrackEnabled(MediaKind::Audio, false),
            Command::SendChannelData(cid("a"), state(false, true)),
        ]
    );
    assert_eq!(
        core.handle(Event::ChatChannel(cid("b"), true)),
        vec![Command::SendChannelData(cid("b"), state(false, true))]
    );
    // A page without a camera says its camera is off, whatever the button says.
    assert_eq!(
        core.handle(Event::LocalMedia {
            audio: true,
            video: false
        }),
        vec![
            Command::SendChannelData(cid("a"), state(false, false)),
            Command::SendChannelData(cid("b"), state(false, false)),
        ]
    );
    assert_eq!(
        core.media_state(),
        MediaState {
            mic: false,
            cam: false
        }
    );
    // What a peer says is shown on its tile, whichever way it came; strangers are ignored.
    let told = MediaState {
        mic: false,
        cam: true,
    };
    assert_eq!(
        no_panels(core.handle(Event::ChannelData(cid("a"), state(false, true)))),
        vec![Command::ShowPeerMedia(cid("a"), told)]
    );
    let via_relay = ServerMessage::Message {
        from_id: cid("b"),
        from_user_id: UserId::new("b").unwrap(),
        content: Payload::from_json(state(true, false)).unwrap(),
    };
    assert_eq!(
        no_panels(core.handle(Event::Signal(via_relay))),
        vec![Command::ShowPeerMedia(
            cid("b"),
            MediaState {
                mic: true,
                cam: false
            }
        )]
    );
    assert_eq!(
        core.handle(Event::ChannelData(cid("z"), state(true, true))),
        vec![]
    );
}

#[test]
fn the_panels_count_unread_chat_and_list_who_is_in_the_call() {
    use client_wasm::core::MediaState;
    use client_wasm::core::panels::{Panel, Panels, Participant};
    let mut core = welcomed("m");
    // Joining lists this page first, then the others (nothing told of their media yet).
    let cmds = core.handle(joined(&["b", "a"]));
    let named = |n: &str| Some(Who::Named(n.into()));
    let me = |mic, cam| Participant {
        who: None,
        media: Some(MediaState { mic, cam }),
    };
    let listed = vec![
        me(true, true),
        Participant {
            who: named("user-a"),
            media: None,
        },
        Participant {
            who: named("user-b"),
            media: None,
        },
    ];
    assert!(
        cmds.contains(&Command::ShowParticipants(listed.clone())),
        "{cmds:?}"
    );
    // A peer's media state and this page's toggles update the list.
    let cmds = core.handle(Event::ChannelData(
        cid("a"),
        r#"{"media":{"mic":false,"cam":true}}"#.into(),
    ));
    let mut now = listed.clone();
    now[1].media = Some(MediaState {
        mic: false,
        cam: true,
    });
    assert!(
        cmds.contains(&Command::ShowParticipants(now.clone())),
        "{cmds:?}"
    );
    let cmds = core.handle(Event::Toggle(MediaKind::Video));
    now[0] = me(true, false);
    assert!(
        cmds.contains(&Command::ShowParticipants(now.clone())),
        "{cmds:?}"
    );
    // One leaves: the list shrinks.
    let cmds = core.handle(Event::Signal(ServerMessage::UserLeft {
        user_id: UserId::new("user-b").unwrap(),
        client_id: cid("b"),
    }));
    now.pop();
    assert!(cmds.contains(&Command::ShowParticipants(now)), "{cmds:?}");
    // Chat from others while the chat is closed is unread; opening it reads it; while it is
    // open nothing is unread; one panel at a time.
    let line = r#"{"chat":"hi","name":"a","time":1}"#;
    let panels = |open, unread| Command::ShowPanels(Panels { open, unread });
    let cmds = core.handle(Event::ChannelData(cid("a"), line.into()));
    assert_eq!(cmds.last(), Some(&panels(None, 1)), "{cmds:?}");
    let cmds = core.handle(Event::ChannelData(cid("a"), line.into()));
    assert_eq!(cmds.last(), Some(&panels(None, 2)), "{cmds:?}");
    assert_eq!(
        core.handle(Event::TogglePanel(Panel::Chat)),
        vec![panels(Some(Panel::Chat), 0)]
    );
    let cmds = core.handle(Event::ChannelData(cid("a"), line.into()));
    assert!(
        !cmds.iter().any(|c| matches!(c, Command::ShowPanels(_))),
        "{cmds:?}"
    );
    assert_eq!(
        core.handle(Event::TogglePanel(Panel::People)),
        vec![panels(Some(Panel::People), 0)]
    );
    assert_eq!(
        core.handle(Event::TogglePanel(Panel::People)),
        vec![panels(None, 0)]
    );
    // Leaving closes the panels.
    core.handle(Event::TogglePanel(Panel::Chat));
    let cmds = core.handle(Event::Leave);
    assert!(cmds.contains(&panels(None, 0)), "{cmds:?}");
}
