//! The network lab itself (`e2e::netlab`): traffic from a home reaches the public network
//! only through its NAT, each NAT kind maps ports as it should, links get their delay, loss
//! and rate, a cut link carries nothing until restored, and nothing is left behind, on the
//! machine's own interfaces or in its namespaces, even when a test panics.

use e2e::netlab::{HomeSpec, Lab, Link, Nat, PUBLIC_ADDR};
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

const DEADLINE: Duration = Duration::from_secs(5);

/// The machine's own interfaces (one line each, without counters that change).
fn root_links() -> Vec<String> {
    let out = Command::new("ip").args(["-o", "link"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
        .collect()
}

fn namespaces() -> String {
    let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The source port the public side sees for a datagram sent from `home` to `to`.
async fn seen_from(lab: &Lab, home: usize, to: &[u16]) -> Vec<SocketAddr> {
    let client = Lab::udp_in(&lab.home_ns(home), "0.0.0.0:0".parse().unwrap()).unwrap();
    let mut seen = Vec::new();
    for port in to {
        let server = Lab::udp_in(&lab.public_ns(), SocketAddr::from((PUBLIC_ADDR, *port))).unwrap();
        let target = SocketAddr::from((PUBLIC_ADDR, server.local_addr().unwrap().port()));
        client.send_to(b"hello", target).await.unwrap();
        let mut buf = [0u8; 16];
        let (_, from) = timeout(DEADLINE, server.recv_from(&mut buf))
            .await
            .expect("the datagram arrives")
            .unwrap();
        seen.push(from);
    }
    seen
}

#[tokio::test]
async fn homes_reach_the_public_network_only_through_their_nat_as_its_kind_maps() {
    let before = root_links();
    let lab = Lab::new(&[
        HomeSpec::behind(Nat::Cone),
        HomeSpec::behind(Nat::Symmetric),
        HomeSpec::behind(Nat::Open),
    ])
    .unwrap();
    assert_eq!(
        root_links(),
        before,
        "the machine's own interfaces are untouched"
    );

    let cone = seen_from(&lab, 0, &[0, 0]).await;
    let symmetric = seen_from(&lab, 1, &[0, 0]).await;
    for (k, seen) in [(0, &cone), (1, &symmetric)] {
        for from in seen {
            assert_eq!(
                from.ip(),
                std::net::IpAddr::V4(lab.nat_public_addr(k)),
                "home {k} is seen at its NAT's public address"
            );
        }
    }
    // Without a NAT, the home's own address is what the public side sees.
    for from in seen_from(&lab, 2, &[0]).await {
        assert_eq!(from.ip(), std::net::IpAddr::V4(lab.home_addr(2)));
    }
    // ...and other homes reach it there, both ways.
    let open = Lab::udp_in(&lab.home_ns(2), "0.0.0.0:5000".parse().unwrap()).unwrap();
    let behind = Lab::udp_in(&lab.home_ns(0), "0.0.0.0:0".parse().unwrap()).unwrap();
    behind
        .send_to(b"hi", SocketAddr::from((lab.home_addr(2), 5000)))
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    let (_, from) = timeout(DEADLINE, open.recv_from(&mut buf))
        .await
        .expect("the open home is reachable from behind a NAT")
        .unwrap();
    open.send_to(b"back", from).await.unwrap();
    timeout(DEADLINE, behind.recv_from(&mut buf))
        .await
        .expect("and its answer gets back")
        .unwrap();
    // One local port, two destinations: the cone keeps one public port, the symmetric NAT
    // takes a new one for each destination.
    assert_eq!(cone[0].port(), cone[1].port(), "{cone:?}");
    assert_ne!(symmetric[0].port(), symmetric[1].port(), "{symmetric:?}");

    // A home is not reachable from outside unless it sent first.
    let stranger = Lab::udp_in(&lab.public_ns(), SocketAddr::from((PUBLIC_ADDR, 0))).unwrap();
    let home = Lab::udp_in(&lab.home_ns(0), "0.0.0.0:4000".parse().unwrap()).unwrap();
    stranger
        .send_to(b"unasked", SocketAddr::from((lab.nat_public_addr(0), 4000)))
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    assert!(
        timeout(Duration::from_millis(300), home.recv_from(&mut buf))
            .await
            .is_err(),
        "an unasked datagram got through the NAT"
    );
}

#[tokio::test]
async fn a_link_gets_its_delay_and_loss() {
    let lossy = Link {
        delay_ms: 60,
        loss_pct: 25,
        ..Link::default()
    };
    let lab = Lab::new(&[HomeSpec::behind(Nat::Cone).on(lossy)]).unwrap();
    let server = Lab::udp_in(&lab.public_ns(), SocketAddr::from((PUBLIC_ADDR, 0))).unwrap();
    let target = SocketAddr::from((PUBLIC_ADDR, server.local_addr().unwrap().port()));
    let client = Lab::udp_in(&lab.home_ns(0), "0.0.0.0:0".parse().unwrap()).unwrap();
    // Echo on the public side, so each datagram crosses the link twice.
    let echo = tokio::spawn(async move {
        let mut buf = [0u8; 64];
        while let Ok((n, from)) = server.recv_from(&mut buf).await {
            let _ = server.send_to(&buf[..n], from).await;
        }
    });
    let client = std::sync::Arc::new(client);
    let receiver = client.clone();
    let started = Instant::now();
    // Each answer carries its send time; what has not come back a second after the last send
    // is lost.
    let collect = tokio::spawn(async move {
        let (mut back, mut fastest) = (0u32, Duration::MAX);
        let mut buf = [0u8; 64];
        while let Ok(Ok((8, _))) =
            timeout(Duration::from_secs(1), receiver.recv_from(&mut buf)).await
        {
            let sent_at = u64::from_be_bytes(buf[..8].try_into().unwrap());
            let now = u64::try_from(started.elapsed().as_micros()).unwrap();
            back += 1;
            fastest = fastest.min(Duration::from_micros(now - sent_at));
        }
        (back, fastest)
    });
    let sent = 300u32;
    for _ in 0..sent {
        let at = u64::try_from(started.elapsed().as_micros()).unwrap();
        client.send_to(&at.to_be_bytes(), target).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let (back, fastest) = collect.await.unwrap();
    echo.abort();
    // Twice the delay, both ways; 25 % loss each way leaves about 56 % of round trips.
    assert!(
        fastest >= Duration::from_millis(120),
        "fastest round trip {fastest:?}"
    );
    let share = f64::from(back) / f64::from(sent);
    assert!((0.35..0.8).contains(&share), "{back} of {sent} came back");
}

#[tokio::test]
async fn a_link_can_turn_bad_and_good_again_while_in_use() {
    let lab = Lab::new(&[HomeSpec::behind(Nat::Cone)]).unwrap();
    let server = Lab::udp_in(&lab.public_ns(), SocketAddr::from((PUBLIC_ADDR, 0))).unwrap();
    let target = SocketAddr::from((PUBLIC_ADDR, server.local_addr().unwrap().port()));
    let client = Lab::udp_in(&lab.home_ns(0), "0.0.0.0:0".parse().unwrap()).unwrap();
    let one_way = async || {
        let started = Instant::now();
        client.send_to(b"t", target).await.unwrap();
        let mut buf = [0u8; 8];
        timeout(DEADLINE, server.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        started.elapsed()
    };
    assert!(one_way().await < Duration::from_millis(50));
    let slow = Link {
        delay_ms: 150,
        ..Link::default()
    };
    lab.set_link(0, slow).unwrap();
    assert!(one_way().await >= Duration::from_millis(150));
    lab.set_link(0, Link::default()).unwrap();
    assert!(one_way().await < Duration::from_millis(50));
}

#[tokio::test]
async fn a_capped_uplink_does_not_carry_more_than_its_rate() {
    let capped = Link {
        up_kbit: Some(2000),
        ..Link::default()
    };
    let lab = Lab::new(&[HomeSpec::behind(Nat::Cone).on(capped)]).unwrap();
    let listener = tokio::net::TcpListener::from_std(lab.listen_public(0).unwrap()).unwrap();
    let addr = SocketAddr::from((PUBLIC_ADDR, listener.local_addr().unwrap().port()));
    let sink = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut total = 0usize;
        let mut buf = vec![0u8; 65536];
        let started = Instant::now();
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
        (total, started.elapsed())
    });
    let mut up = Lab::connect_in(&lab.home_ns(0), addr).await.unwrap();
    let chunk = vec![7u8; 16 * 1024];
    let sending = Instant::now();
    while sending.elapsed() < Duration::from_secs(2) {
        up.write_all(&chunk).await.unwrap();
    }
    up.shutdown().await.unwrap();
    drop(up);
    let (bytes, took) = timeout(Duration::from_secs(20), sink)
        .await
        .unwrap()
        .unwrap();
    let kbit = bytes as f64 * 8.0 / 1000.0 / took.as_secs_f64();
    // The cap holds (a burst and the queue's contents let it through a little over).
    assert!(
        kbit < 2000.0 * 1.3,
        "{kbit:.0} kbit/s through a 2000 kbit/s uplink"
    );
    assert!(bytes > 100_000, "only {bytes} bytes went through");
}

#[tokio::test]
async fn a_cut_link_carries_nothing_until_it_is_restored() {
    let lab = Lab::new(&[HomeSpec::behind(Nat::Cone)]).unwrap();
    let listener = tokio::net::TcpListener::from_std(lab.listen_public(0).unwrap()).unwrap();
    let addr = SocketAddr::from((PUBLIC_ADDR, listener.local_addr().unwrap().port()));
    lab.cut(0).unwrap();
    let cut = timeout(
        Duration::from_millis(500),
        Lab::connect_in(&lab.home_ns(0), addr),
    )
    .await;
    assert!(!matches!(cut, Ok(Ok(_))), "connected over a cut link");
    lab.restore(0).unwrap();
    let home = lab.home_ns(0);
    let connect = timeout(DEADLINE, Lab::connect_in(&home, addr));
    let (accepted, connected) = tokio::join!(listener.accept(), connect);
    assert!(accepted.is_ok());
    assert!(matches!(connected, Ok(Ok(_))));
}

#[test]
fn nothing_is_left_after_the_lab_even_when_a_test_panics() {
    let before = root_links();
    let names = std::thread::spawn(|| {
        let lab = Lab::new(&[HomeSpec::behind(Nat::Cone).on(Link {
            delay_ms: 10,
            ..Link::default()
        })])
        .unwrap();
        let names = vec![lab.public_ns(), lab.home_ns(0)];
        std::panic::panic_any(names);
    })
    .join()
    .expect_err("the thread panics")
    .downcast::<Vec<String>>()
    .expect("the names");
    let left = namespaces();
    for name in names.iter() {
        assert!(!left.contains(name.as_str()), "{name} left in {left}");
    }
    assert_eq!(root_links(), before);
}
