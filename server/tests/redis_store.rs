//! The Redis room store (`server::cluster::RedisStore`) against a real `redis-server`: the
//! rules of `rooms.rs` (join, move, leave, caps, lock, password), routing, exact caps under
//! concurrent joins from many connections, instance heartbeats and clean-up, pub/sub, and
//! clear errors when Redis is down.
//!
//! Each test starts its own `redis-server` (found on `PATH`; `scripts/test.sh` installs it) on
//! a free loopback port, without persistence, and kills it when the test ends; each also uses
//! its own key prefix. A missing `redis-server` fails the tests with a message saying so.

mod common;

use futures_util::StreamExt;
use protocol::{ClientId, RoomId, RoomInfo, UserId};
use server::cluster::{
    JoinOutcome, JoinRefusal, Left, Member, NotInRoom, RedisStore, Route, RouteRefusal, StoreError,
    password_digest,
};
use server::testing::{ClosedPort, RedisServer};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::time::timeout;

fn cid(s: &str) -> ClientId {
    ClientId::new(s).unwrap()
}
fn rid(s: &str) -> RoomId {
    RoomId::new(s).unwrap()
}
fn uid(s: &str) -> UserId {
    UserId::new(s).unwrap()
}
fn member(client: &str, user: &str, instance: &str) -> Member {
    Member {
        client: cid(client),
        user: uid(user),
        instance: instance.to_owned(),
    }
}
fn left(room: &str, members: Vec<Member>) -> Left {
    Left {
        room: rid(room),
        members,
    }
}

/// Connects as `instance` under `prefix` and adds `clients` (user id = client id).
async fn store(redis: &RedisServer, prefix: &str, instance: &str, clients: &[&str]) -> RedisStore {
    let store = RedisStore::connect(&redis.url(), prefix, instance)
        .await
        .expect("connect to the test redis");
    for c in clients {
        assert!(store.add_client(&cid(c), &uid(c)).await.unwrap());
    }
    store
}

/// Joins with room caps that never bite, expecting success; returns the other members.
async fn join_ok(store: &RedisStore, client: &str, room: &str) -> (Option<Left>, Vec<Member>) {
    match store.join(&cid(client), &rid(room), None, 100, 100).await {
        Ok(JoinOutcome::Joined { left, members }) => (left, members),
        other => panic!("{client} joining {room}: {other:?}"),
    }
}

async fn refusal(
    store: &RedisStore,
    client: &str,
    room: &str,
    password: Option<&str>,
    max_members: usize,
    max_rooms: usize,
) -> JoinRefusal {
    let outcome = store
        .join(&cid(client), &rid(room), password, max_members, max_rooms)
        .await
        .unwrap();
    match outcome {
        JoinOutcome::Refused(why) => why,
        other => panic!("{client} joining {room}: expected a refusal, got {other:?}"),
    }
}

async fn room_of(store: &RedisStore, client: &str) -> Option<RoomId> {
    match store.room_members_of(&cid(client)).await.unwrap() {
        Ok((room, _, _)) => Some(room),
        Err(NotInRoom { current: None }) => None,
        Err(other) => panic!("{other:?}"),
    }
}

/// Every key under `prefix`, sorted.
async fn keys(redis: &RedisServer, prefix: &str) -> Vec<String> {
    let mut raw = redis.raw().await;
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut raw)
        .await
        .unwrap();
    keys.sort();
    keys
}

#[tokio::test]
async fn join_move_and_leave_report_the_right_members() {
    let redis = RedisServer::start();
    let p = "t-join:";
    let a = store(&redis, p, "A", &["a", "c"]).await;
    let b = store(&redis, p, "B", &["b"]).await;

    assert_eq!(join_ok(&a, "a", "r").await, (None, vec![]));
    assert_eq!(
        join_ok(&b, "b", "r").await,
        (None, vec![member("a", "a", "A")])
    );
    assert_eq!(
        join_ok(&a, "c", "r").await.1,
        vec![member("a", "a", "A"), member("b", "b", "B")],
        "the others, oldest first, with their instances"
    );
    // Joining one's own room again repeats the answer and changes nothing.
    assert_eq!(
        a.join(&cid("a"), &rid("r"), None, 1, 1).await.unwrap(),
        JoinOutcome::AlreadyIn {
            members: vec![member("b", "b", "B"), member("c", "c", "A")]
        }
    );
    // Moving to another room leaves the first one, and says who remains there.
    assert_eq!(
        join_ok(&a, "a", "q").await,
        (
            Some(left(
                "r",
                vec![member("b", "b", "B"), member("c", "c", "A")]
            )),
            vec![]
        )
    );

    // Leaving checks the room named.
    assert_eq!(
        b.leave(&cid("b"), Some(&rid("q"))).await.unwrap(),
        Err(NotInRoom {
            current: Some(rid("r"))
        })
    );
    assert_eq!(
        b.leave(&cid("b"), Some(&rid("r"))).await.unwrap(),
        Ok(left("r", vec![member("c", "c", "A")]))
    );
    assert_eq!(
        b.leave(&cid("b"), None).await.unwrap(),
        Err(NotInRoom { current: None })
    );

    // A disconnect tells the room; the emptied room is deleted; a second one is a no-op.
    assert_eq!(
        a.remove_client(&cid("c")).await.unwrap(),
        Some(left("r", vec![]))
    );
    assert_eq!(a.remove_client(&cid("c")).await.unwrap(), None);
    assert_eq!(
        a.list_rooms(10, None, 4).await.unwrap(),
        (
            vec![RoomInfo {
                id: rid("q"),
                member_count: 1,
                max_members: 4,
                locked: false
            }],
            false
        )
    );

    // A new user id shows in what others are told.
    a.set_user(&cid("a"), &uid("alice")).await.unwrap();
    assert_eq!(
        join_ok(&b, "b", "q").await,
        (None, vec![member("a", "alice", "A")])
    );

    // Unknown clients and taken ids.
    assert!(matches!(
        a.join(&cid("ghost"), &rid("q"), None, 10, 10).await,
        Err(StoreError::UnknownClient(c)) if c == cid("ghost")
    ));
    assert!(matches!(
        a.set_user(&cid("ghost"), &uid("x")).await,
        Err(StoreError::UnknownClient(_))
    ));
    assert!(!a.add_client(&cid("b"), &uid("thief")).await.unwrap());
    assert_eq!(room_of(&b, "b").await, Some(rid("q")));

    // Once everyone is gone only the join counter and the instance registry remain.
    a.remove_client(&cid("a")).await.unwrap();
    b.remove_client(&cid("b")).await.unwrap();
    assert_eq!(
        keys(&redis, p).await,
        vec![format!("{p}instances"), format!("{p}seq")]
    );
}

#[tokio::test]
async fn full_locked_and_too_many_rooms_refuse_without_moving() {
    let redis = RedisServer::start();
    let s = store(&redis, "t-caps:", "A", &["a", "b", "c", "d"]).await;
    let (members, rooms) = (2, 2);
    for (c, r) in [("a", "r"), ("b", "r"), ("c", "q")] {
        assert!(matches!(
            s.join(&cid(c), &rid(r), None, members, rooms)
                .await
                .unwrap(),
            JoinOutcome::Joined { .. }
        ));
    }
    assert_eq!(
        refusal(&s, "c", "r", None, members, rooms).await,
        JoinRefusal::Full
    );
    assert_eq!(
        room_of(&s, "c").await,
        Some(rid("q")),
        "a refused join keeps the old room"
    );
    assert_eq!(
        refusal(&s, "d", "x", None, members, rooms).await,
        JoinRefusal::TooManyRooms
    );
    // c is alone in q, so moving to a new room does not add one.
    assert_eq!(
        s.join(&cid("c"), &rid("x"), None, members, rooms)
            .await
            .unwrap(),
        JoinOutcome::Joined {
            left: Some(left("q", vec![])),
            members: vec![]
        }
    );
    // But a move out of a room with others in it does.
    assert_eq!(
        refusal(&s, "a", "y", None, members, rooms).await,
        JoinRefusal::TooManyRooms
    );

    // Locking: every member is returned, the named room is checked, joins are refused.
    assert_eq!(
        s.set_locked(&cid("c"), None, true).await.unwrap(),
        Ok((rid("x"), vec![member("c", "c", "A")]))
    );
    assert_eq!(
        s.set_locked(&cid("c"), Some(&rid("r")), false)
            .await
            .unwrap(),
        Err(NotInRoom {
            current: Some(rid("x"))
        })
    );
    assert_eq!(
        s.set_locked(&cid("d"), None, false).await.unwrap(),
        Err(NotInRoom { current: None })
    );
    s.leave(&cid("a"), Some(&rid("r"))).await.unwrap().unwrap();
    assert_eq!(
        refusal(&s, "a", "x", None, members, rooms).await,
        JoinRefusal::Locked
    );
    let (listed, truncated) = s.list_rooms(1000, None, members).await.unwrap();
    assert!(!truncated);
    assert_eq!(
        listed
            .iter()
            .map(|r| (r.id.as_str(), r.member_count, r.locked))
            .collect::<Vec<_>>(),
        vec![("r", 1, false), ("x", 1, true)]
    );
    assert!(s.list_rooms(1, None, members).await.unwrap().1);
    assert_eq!(
        s.list_rooms(0, None, members).await.unwrap(),
        (vec![], true)
    );

    assert_eq!(
        s.set_locked(&cid("c"), Some(&rid("x")), false)
            .await
            .unwrap(),
        Ok((rid("x"), vec![member("c", "c", "A")]))
    );
    assert_eq!(
        s.join(&cid("a"), &rid("x"), None, members, rooms)
            .await
            .unwrap(),
        JoinOutcome::Joined {
            left: None,
            members: vec![member("c", "c", "A")]
        }
    );
    // The lock goes with the room: a room re-created under the same name is open.
    s.set_locked(&cid("a"), None, true).await.unwrap().unwrap();
    s.leave(&cid("a"), None).await.unwrap().unwrap();
    s.leave(&cid("c"), None).await.unwrap().unwrap();
    assert_eq!(join_ok(&s, "a", "x").await, (None, vec![]));
    assert_eq!(join_ok(&s, "c", "x").await.1, vec![member("a", "a", "A")]);
}

#[tokio::test]
async fn the_creator_sets_the_password_and_later_joiners_need_it() {
    let redis = RedisServer::start();
    let p = "t-pw:";
    let s = store(&redis, p, "A", &["a", "b", "c"]).await;
    assert!(matches!(
        s.join(&cid("a"), &rid("r"), Some("s3cret"), 10, 10)
            .await
            .unwrap(),
        JoinOutcome::Joined { .. }
    ));
    assert_eq!(
        refusal(&s, "b", "r", None, 10, 10).await,
        JoinRefusal::BadPassword { required: true }
    );
    assert_eq!(
        refusal(&s, "b", "r", Some("guess"), 10, 10).await,
        JoinRefusal::BadPassword { required: false }
    );
    // Only the salted digest is stored.
    let mut raw = redis.raw().await;
    let stored: String = redis::cmd("HGET")
        .arg(format!("{p}room:r:meta"))
        .arg("pw")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(stored, password_digest(&rid("r"), "s3cret"));
    assert!(!stored.contains("s3cret"));
    assert_eq!(
        s.join(&cid("b"), &rid("r"), Some("s3cret"), 10, 10)
            .await
            .unwrap(),
        JoinOutcome::Joined {
            left: None,
            members: vec![member("a", "a", "A")]
        }
    );
    // A password given for an existing open room does not set one.
    join_ok(&s, "c", "open").await;
    assert!(matches!(
        s.join(&cid("a"), &rid("open"), Some("late"), 10, 10)
            .await
            .unwrap(),
        JoinOutcome::Joined { .. }
    ));
    s.leave(&cid("a"), None).await.unwrap().unwrap();
    join_ok(&s, "a", "open").await;
    // When the room empties it is gone, password and all.
    s.leave(&cid("b"), None).await.unwrap().unwrap();
    join_ok(&s, "b", "r").await;
}

#[tokio::test]
async fn the_list_shows_rooms_without_a_password_within_the_allowed_ones() {
    let redis = RedisServer::start();
    let s = store(&redis, "list:", "A", &["a", "b", "c", "d"]).await;
    join_ok(&s, "a", "zulu").await;
    join_ok(&s, "b", "alpha").await;
    s.join(&cid("c"), &rid("secret"), Some("pw"), 10, 10)
        .await
        .unwrap();
    join_ok(&s, "d", "mike").await;
    let ids = |(list, truncated): (Vec<RoomInfo>, bool)| {
        let ids: Vec<String> = list.into_iter().map(|r| r.id.to_string()).collect();
        (ids, truncated)
    };
    let strs = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let all = s.list_rooms(10, None, 10).await.unwrap();
    assert_eq!(ids(all), (strs(&["alpha", "mike", "zulu"]), false));
    let two = s.list_rooms(2, None, 10).await.unwrap();
    assert_eq!(ids(two), (strs(&["alpha", "mike"]), true));
    let allowed = strs(&["zulu", "secret", "nowhere", "alpha", "zulu"]);
    let some = s.list_rooms(10, Some(&allowed), 10).await.unwrap();
    assert_eq!(ids(some), (strs(&["alpha", "zulu"]), false));
    let one = s.list_rooms(1, Some(&allowed), 10).await.unwrap();
    assert_eq!(ids(one), (strs(&["alpha"]), true));
    // Emptied rooms leave the list with their room.
    s.remove_client(&cid("b")).await.unwrap();
    s.remove_client(&cid("c")).await.unwrap();
    let after = s.list_rooms(10, None, 10).await.unwrap();
    assert_eq!(ids(after).0, strs(&["mike", "zulu"]));
    assert!(
        !keys(&redis, "list:")
            .await
            .iter()
            .any(|k| k.contains("secret"))
    );
}

#[tokio::test]
async fn a_member_cannot_take_another_members_id() {
    let redis = RedisServer::start();
    let s = store(&redis, "ids:", "A", &["a", "b", "c"]).await;
    assert!(s.set_user(&cid("a"), &uid("alice")).await.unwrap());
    join_ok(&s, "a", "r").await;
    join_ok(&s, "b", "r").await;
    // Another member's user id or client id: refused, nothing changed.
    assert!(!s.set_user(&cid("b"), &uid("alice")).await.unwrap());
    assert!(!s.set_user(&cid("b"), &uid("a")).await.unwrap());
    assert!(s.set_user(&cid("b"), &uid("bob")).await.unwrap());
    // Out of a room anything goes; a join then checks.
    assert!(s.set_user(&cid("c"), &uid("bob")).await.unwrap());
    assert_eq!(
        refusal(&s, "c", "r", None, 10, 10).await,
        JoinRefusal::UserIdTaken
    );
    assert_eq!(room_of(&s, "c").await, None);
    // The password is checked first: who may not enter does not learn who is inside.
    s.join(&cid("a"), &rid("vault"), Some("pw"), 10, 10)
        .await
        .unwrap();
    assert!(s.set_user(&cid("c"), &uid("alice")).await.unwrap());
    assert_eq!(
        refusal(&s, "c", "vault", None, 10, 10).await,
        JoinRefusal::BadPassword { required: true }
    );
}

#[tokio::test]
async fn routes_only_within_the_room_and_names_the_target_instance() {
    let redis = RedisServer::start();
    let p = "t-route:";
    let a = store(&redis, p, "A", &["a", "c", "d"]).await;
    let b = store(&redis, p, "B", &["b"]).await;
    a.set_user(&cid("a"), &uid("alice")).await.unwrap();
    join_ok(&a, "a", "r").await;
    join_ok(&b, "b", "r").await;
    join_ok(&a, "c", "q").await;

    assert_eq!(
        a.route(&cid("a"), &cid("b")).await.unwrap(),
        Ok(Route {
            instance: "B".into(),
            from_user: uid("alice")
        })
    );
    assert_eq!(
        b.route(&cid("b"), &cid("a")).await.unwrap(),
        Ok(Route {
            instance: "A".into(),
            from_user: uid("b")
        })
    );
    assert_eq!(
        a.route(&cid("a"), &cid("c")).await.unwrap(),
        Err(RouteRefusal::TargetNotInRoom),
        "another room"
    );
    assert_eq!(
        a.route(&cid("a"), &cid("nobody")).await.unwrap(),
        Err(RouteRefusal::TargetNotInRoom),
        "unknown target"
    );
    assert_eq!(
        a.route(&cid("d"), &cid("a")).await.unwrap(),
        Err(RouteRefusal::NotInRoom),
        "sender in no room"
    );
    assert!(matches!(
        a.route(&cid("nobody"), &cid("a")).await,
        Err(StoreError::UnknownClient(_))
    ));

    assert_eq!(
        b.room_members_of(&cid("b")).await.unwrap(),
        Ok((rid("r"), uid("b"), vec![member("a", "alice", "A")]))
    );
    assert_eq!(
        a.room_members_of(&cid("d")).await.unwrap(),
        Err(NotInRoom { current: None })
    );
}

/// 50 instances, each with its own connection and client, join one room with room for 10 at
/// the same moment: exactly 10 get in.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn room_caps_hold_exactly_under_concurrent_joins() {
    let redis = RedisServer::start();
    let p = "t-race:";
    const N: usize = 50;
    const MAX: usize = 10;
    let mut stores = Vec::new();
    for i in 0..N {
        let name = format!("c{i}");
        stores.push(store(&redis, p, &format!("i{i}"), &[&name]).await);
    }

    let race = |room: Option<&'static str>, max_rooms: usize| {
        let barrier = Arc::new(tokio::sync::Barrier::new(N));
        let tasks: Vec<_> = stores
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let (s, barrier) = (s.clone(), barrier.clone());
                let room = room.map_or_else(|| format!("room{i}"), str::to_owned);
                tokio::spawn(async move {
                    barrier.wait().await;
                    s.join(&cid(&format!("c{i}")), &rid(&room), None, MAX, max_rooms)
                        .await
                })
            })
            .collect();
        async move {
            let mut outcomes = Vec::new();
            for t in tasks {
                outcomes.push(t.await.unwrap().unwrap());
            }
            outcomes
        }
    };

    let outcomes = race(Some("hot"), 1000).await;
    let joined = outcomes
        .iter()
        .filter(|o| matches!(o, JoinOutcome::Joined { .. }))
        .count();
    let full = outcomes
        .iter()
        .filter(|o| **o == JoinOutcome::Refused(JoinRefusal::Full))
        .count();
    assert_eq!((joined, full), (MAX, N - MAX), "{outcomes:?}");
    let mut raw = redis.raw().await;
    let count: usize = redis::cmd("ZCARD")
        .arg(format!("{p}room:hot:members"))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(count, MAX);
    let (rooms, _) = stores[0].list_rooms(10, None, MAX).await.unwrap();
    assert_eq!(rooms.len(), 1);
    assert_eq!(rooms[0].member_count, MAX);

    // The room count holds too: everyone races to create a room of its own with a cap of 8
    // rooms. Exactly 7 get one: the hot room stays (too few of its members can leave to empty
    // it and free its slot).
    let outcomes = race(None, 8).await;
    let joined = outcomes
        .iter()
        .filter(|o| matches!(o, JoinOutcome::Joined { .. }))
        .count();
    let too_many = outcomes
        .iter()
        .filter(|o| **o == JoinOutcome::Refused(JoinRefusal::TooManyRooms))
        .count();
    assert_eq!((joined, too_many), (7, N - 7), "{outcomes:?}");
    assert_eq!(
        stores[0].list_rooms(100, None, MAX).await.unwrap().0.len(),
        8
    );
}

#[tokio::test]
async fn removing_a_dead_instance_removes_only_its_clients_and_reports_them() {
    let redis = RedisServer::start();
    let p = "t-reap:";
    let a = store(&redis, p, "A", &["a1", "a2", "a3", "a4"]).await;
    let b = store(&redis, p, "B", &["b1", "b2"]).await;
    a.heartbeat(Duration::from_secs(60)).await.unwrap();
    b.heartbeat(Duration::from_secs(60)).await.unwrap();
    join_ok(&a, "a1", "r").await;
    join_ok(&b, "b1", "r").await;
    join_ok(&a, "a4", "r").await;
    join_ok(&a, "a2", "q").await;
    join_ok(&b, "b2", "q").await;
    join_ok(&a, "a3", "alone").await;
    a.leave(&cid("a3"), None).await.unwrap().unwrap();

    let mut removed = b.remove_instance("A").await.unwrap();
    removed.sort_by(|x, y| x.1.client.cmp(&y.1.client));
    assert_eq!(
        removed,
        vec![
            (
                left("r", vec![member("b1", "b1", "B")]),
                member("a1", "a1", "A")
            ),
            (
                left("q", vec![member("b2", "b2", "B")]),
                member("a2", "a2", "A")
            ),
            (
                left("r", vec![member("b1", "b1", "B")]),
                member("a4", "a4", "A")
            ),
        ],
        "whom to tell excludes the dead instance's own clients; a3 was in no room"
    );
    assert_eq!(
        b.room_members_of(&cid("b1")).await.unwrap(),
        Ok((rid("r"), uid("b1"), vec![]))
    );
    assert_eq!(
        b.room_members_of(&cid("b2")).await.unwrap(),
        Ok((rid("q"), uid("b2"), vec![]))
    );
    assert_eq!(
        b.route(&cid("b1"), &cid("a1")).await.unwrap(),
        Err(RouteRefusal::TargetNotInRoom)
    );
    for c in ["a1", "a2", "a3", "a4"] {
        assert!(matches!(
            a.route(&cid(c), &cid("b1")).await,
            Err(StoreError::UnknownClient(_))
        ));
    }
    assert!(
        b.remove_instance("A").await.unwrap().is_empty(),
        "idempotent"
    );
    assert!(
        b.dead_instances().await.unwrap().is_empty(),
        "A is forgotten"
    );
    let keys = keys(&redis, p).await;
    assert!(
        keys.iter().all(|k| !k.contains("instance:A")),
        "nothing of A remains: {keys:?}"
    );
    assert!(keys.contains(&format!("{p}client:b1")));
}

#[tokio::test]
async fn instances_whose_heartbeat_expires_are_dead() {
    let redis = RedisServer::start();
    let p = "t-beat:";
    let a = store(&redis, p, "A", &[]).await;
    let b = store(&redis, p, "B", &[]).await;
    a.heartbeat(Duration::from_secs(60)).await.unwrap();
    b.heartbeat(Duration::from_secs(60)).await.unwrap();
    assert!(a.dead_instances().await.unwrap().is_empty());

    let mut raw = redis.raw().await;
    let _: () = redis::cmd("PEXPIRE")
        .arg(format!("{p}instance:A:alive"))
        .arg(20)
        .query_async(&mut raw)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let dead = b.dead_instances().await.unwrap();
        if dead == ["A"] {
            break;
        }
        assert!(dead.is_empty(), "{dead:?}");
        assert!(Instant::now() < deadline, "A's heartbeat never expired");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A heartbeat brings it back.
    a.heartbeat(Duration::from_secs(60)).await.unwrap();
    assert!(b.dead_instances().await.unwrap().is_empty());

    // An instance that added clients but never beat counts as dead.
    store(&redis, p, "C", &["c1"]).await;
    assert_eq!(a.dead_instances().await.unwrap(), ["C"]);
}

#[tokio::test]
async fn published_messages_reach_the_instance_subscribed() {
    let redis = RedisServer::start();
    let a = store(&redis, "t-pub:", "A", &[]).await;
    let mut inbox_b = RedisStore::subscribe(&redis.url(), "t-pub:", "B")
        .await
        .unwrap();
    let mut other_prefix = RedisStore::subscribe(&redis.url(), "t-other:", "B")
        .await
        .unwrap();

    assert_eq!(a.publish("B", r#"{"type":"offer"}"#).await.unwrap(), 1);
    assert_eq!(a.publish("C", "nobody listens").await.unwrap(), 0);
    assert_eq!(a.publish("B", "second").await.unwrap(), 1);
    for expected in [r#"{"type":"offer"}"#, "second"] {
        let got = timeout(Duration::from_secs(5), inbox_b.next()).await;
        assert_eq!(got.expect("delivered in time").as_deref(), Some(expected));
    }
    assert!(
        timeout(Duration::from_millis(100), other_prefix.next())
            .await
            .is_err(),
        "prefixes isolate channels"
    );
}

#[tokio::test]
async fn an_unreachable_redis_is_a_clear_error() {
    let closed = ClosedPort::hold();
    let port = closed.port();
    let url = format!("redis://127.0.0.1:{port}/");
    let started = Instant::now();
    let err = RedisStore::connect(&url, "t-down:", "A")
        .await
        .expect_err("nothing listens there");
    assert!(
        matches!(&err, StoreError::Unreachable { addr, .. } if *addr == format!("127.0.0.1:{port}")),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("cannot reach Redis at 127.0.0.1:{port}: ")),
        "{text}"
    );
    assert!(started.elapsed() < Duration::from_secs(10), "fails fast");
    assert!(matches!(
        RedisStore::subscribe(&url, "t-down:", "A").await,
        Err(StoreError::Unreachable { .. })
    ));
    assert!(matches!(
        RedisStore::connect("http://nope", "t-down:", "A").await,
        Err(StoreError::InvalidUrl(_))
    ));
}

#[tokio::test]
async fn the_store_reports_a_lost_redis_and_recovers_when_it_returns() {
    let mut redis = RedisServer::start();
    let s = store(&redis, "t-lost:", "A", &["a"]).await;
    join_ok(&s, "a", "r").await;

    redis.stop();
    let started = Instant::now();
    assert!(matches!(
        s.route(&cid("a"), &cid("a")).await,
        Err(StoreError::Redis(_))
    ));
    assert!(started.elapsed() < Duration::from_secs(10), "fails fast");

    // A fresh Redis has lost every client: the store reconnects and says so.
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    let outcome = loop {
        match s.route(&cid("a"), &cid("a")).await {
            Err(StoreError::Redis(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => break other,
        }
    };
    assert!(
        matches!(outcome, Err(StoreError::UnknownClient(_))),
        "{outcome:?}"
    );
    assert!(s.add_client(&cid("a"), &uid("a")).await.unwrap());
    assert_eq!(join_ok(&s, "a", "r").await, (None, vec![]));
}
