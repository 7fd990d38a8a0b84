//! `setup` mode: complete call set-ups per second, the signaling a real call costs the relay.
//!
//! C workers each repeat, until the time is up: connect clients A and B, A joins room
//! `s{worker}-{n}`, then B (B's `joined` must list A, A must get `user-joined` for B); B sends a
//! ~5 KB offer to A, A answers ~5 KB to B; each sends 4 candidates to the other and receives the
//! other's 4; both close. Payloads are checked to arrive unchanged.
//!
//! With several instances, set-up k (counted over all workers) connects A to instance `k % N`
//! and B to instance `(k + 1) % N`, so that each call crosses instances; with
//! `--same-instance` both connect to instance `k % N`. CPU time is summed over the instances.

use crate::client::{self, Client, Endpoint, RECV_TIMEOUT, Ws};
use crate::procfs;
use crate::stats::{Percentiles, nanos, ratio, round3};
use crate::target::{Figures, Target, TargetArgs};
use anyhow::{Context, Result, bail, ensure};
use clap::Args;
use futures_util::SinkExt;
use serde::Serialize;
use serde_json::Value;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use tokio::time::{sleep, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Candidates each side trickles per set-up.
const CANDIDATES: usize = 4;
/// Pause after a failed set-up, so that a relay refusing everything is not hammered in a loop.
const FAILURE_PAUSE: Duration = Duration::from_millis(50);

/// Options of the `setup` mode.
#[derive(Args, Debug)]
pub struct SetupArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Workers running set-ups one after another.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Seconds to run (the set-ups in progress then finish).
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = crate::parse_secs)]
    duration: Duration,
    /// Approximate size of the offer's and the answer's SDP text.
    #[arg(long, default_value_t = 5000)]
    sdp_bytes: usize,
    /// With several instances, connect both clients of a call to the same instance (calls
    /// spread round-robin) instead of to two different ones.
    #[arg(long)]
    same_instance: bool,
}

/// The JSON report of one `setup` run.
#[derive(Debug, Serialize)]
pub struct SetupReport {
    mode: &'static str,
    /// The first instance's URL (all of them: `per_instance`).
    url: String,
    /// Whether the two clients of every call are on different instances.
    cross_instance: bool,
    concurrency: usize,
    /// Until the last worker finished.
    duration_s: f64,
    setups: usize,
    failures: usize,
    first_failure: Option<String>,
    setups_per_s: f64,
    /// Summed over the instances, as every server figure below.
    server_cpu_s: f64,
    /// Server CPU time as a share of one core over the run.
    server_cpu_percent: f64,
    setups_per_server_cpu_s: Option<f64>,
    /// Per CPU-second of the instances and of the Redis they share (the bench's own
    /// redis-server); the same as `setups_per_server_cpu_s` without Redis.
    setups_per_cpu_s_with_redis: Option<f64>,
    bench_cpu_s: f64,
    /// From the first connect to the last candidate received (closing excluded).
    setup_time: Percentiles,
    offer_sdp_chars: usize,
    answer_sdp_chars: usize,
    /// Close handshakes that failed or timed out (the set-up still counts).
    close_failures: usize,
    first_close_failure: Option<String>,
    server_rss_after_kb: u64,
    /// How the spawned server ended after SIGTERM (`i0: ...; i1: ...` for several).
    server_exit: Option<String>,
    #[serde(flatten)]
    target: Figures,
}

/// The signaling payloads, built once.
struct Payloads {
    offer_sdp: String,
    answer_sdp: String,
    /// JSON text of the candidates the offerer (B) and the answerer (A) send.
    offerer_candidates: Vec<String>,
    answerer_candidates: Vec<String>,
}

/// Where the workers' calls connect.
struct Placement {
    endpoints: Vec<Endpoint>,
    same_instance: bool,
    /// Set-ups started so far, over all workers.
    next: AtomicUsize,
    /// Connections opened to each instance.
    clients: Vec<AtomicUsize>,
}

impl Placement {
    /// The endpoints of the next call's A and B.
    fn next_call(&self) -> (&Endpoint, &Endpoint) {
        let n = self.endpoints.len();
        let k = self.next.fetch_add(1, Ordering::Relaxed);
        let a = k % n;
        let b = if self.same_instance { a } else { (k + 1) % n };
        self.clients[a].fetch_add(1, Ordering::Relaxed);
        self.clients[b].fetch_add(1, Ordering::Relaxed);
        (&self.endpoints[a], &self.endpoints[b])
    }
}

/// What one worker measured.
#[derive(Default)]
struct WorkerTally {
    setup_nanos: Vec<u64>,
    failures: usize,
    first_failure: Option<String>,
    close_failures: usize,
    first_close_failure: Option<String>,
}

/// Runs the `setup` mode.
pub async fn run(args: SetupArgs) -> Result<SetupReport> {
    ensure!(args.concurrency > 0, "--concurrency must be at least 1");
    ensure!(!args.duration.is_zero(), "--duration must be positive");
    let mut target = Target::start(&args.target)?;
    let endpoints = target.endpoints();
    let placement = Arc::new(Placement {
        clients: endpoints.iter().map(|_| AtomicUsize::new(0)).collect(),
        same_instance: args.same_instance,
        next: AtomicUsize::new(0),
        endpoints,
    });
    let payloads = Arc::new(Payloads {
        offer_sdp: sdp(args.sdp_bytes, SdpRole::Offer),
        answer_sdp: sdp(args.sdp_bytes, SdpRole::Answer),
        offerer_candidates: candidates("0a1b"),
        answerer_candidates: candidates("9f8e"),
    });

    let start = target.usage()?;
    let own_start = procfs::own_cpu_seconds()?;
    let started = Instant::now();
    let deadline = started + args.duration;
    let mut workers = JoinSet::new();
    for worker in 0..args.concurrency {
        let (placement, payloads) = (placement.clone(), payloads.clone());
        workers.spawn(run_worker(worker, placement, payloads, deadline));
    }
    let mut total = WorkerTally::default();
    // Each step of a set-up is bounded by the receive timeout; this bounds the whole run.
    let run_timeout = args.duration + 4 * RECV_TIMEOUT;
    let collect = async {
        while let Some(joined) = workers.join_next().await {
            let tally = joined.context("worker panicked")?;
            total.setup_nanos.extend(tally.setup_nanos);
            total.failures += tally.failures;
            total.close_failures += tally.close_failures;
            if total.first_close_failure.is_none() {
                total.first_close_failure = tally.first_close_failure;
            }
            if total.first_failure.is_none() {
                total.first_failure = tally.first_failure;
            }
        }
        anyhow::Ok(())
    };
    timeout(run_timeout, collect)
        .await
        .with_context(|| format!("the workers did not finish within {run_timeout:?}"))??;
    let elapsed = started.elapsed().as_secs_f64();
    let end = target.usage()?;
    let bench_cpu_s = procfs::own_cpu_seconds()? - own_start;
    let server_cpu_s = end.cpu_s() - start.cpu_s();
    target.check_running()?;
    let clients: Vec<usize> = placement
        .clients
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .collect();
    let mut figures = target.figures(&start, &start, &end, elapsed, &clients);
    let url = target.url();
    let cross_instance = target.len() > 1 && !args.same_instance;
    let server_exit = target.stop(&mut figures)?;

    let setups = total.setup_nanos.len();
    Ok(SetupReport {
        mode: "setup",
        url,
        cross_instance,
        concurrency: args.concurrency,
        duration_s: round3(elapsed),
        setups,
        failures: total.failures,
        first_failure: total.first_failure,
        setups_per_s: round3(setups as f64 / elapsed),
        server_cpu_s: round3(server_cpu_s),
        server_cpu_percent: round3(server_cpu_s / elapsed * 100.0),
        setups_per_server_cpu_s: ratio(setups as f64, server_cpu_s),
        setups_per_cpu_s_with_redis: figures
            .cpu_with_redis(server_cpu_s)
            .and_then(|cpu| ratio(setups as f64, cpu)),
        bench_cpu_s: round3(bench_cpu_s),
        setup_time: Percentiles::from_nanos(&mut total.setup_nanos),
        offer_sdp_chars: payloads.offer_sdp.len(),
        answer_sdp_chars: payloads.answer_sdp.len(),
        close_failures: total.close_failures,
        first_close_failure: total.first_close_failure,
        server_rss_after_kb: end.rss_kb(),
        server_exit,
        target: figures,
    })
}

/// Repeats set-ups until `deadline`.
async fn run_worker(
    worker: usize,
    placement: Arc<Placement>,
    payloads: Arc<Payloads>,
    deadline: Instant,
) -> WorkerTally {
    let mut tally = WorkerTally::default();
    let mut n = 0;
    while Instant::now() < deadline {
        let room = format!("s{worker}-{n}");
        n += 1;
        let started = Instant::now();
        let (a, b) = placement.next_call();
        match call(a, b, &room, &payloads).await {
            Ok((a, b)) => {
                tally.setup_nanos.push(nanos(started.elapsed()));
                let (closed_a, closed_b) = tokio::join!(a.close(), b.close());
                for closed in [closed_a, closed_b] {
                    if let Err(e) = closed {
                        tally.close_failures += 1;
                        tally
                            .first_close_failure
                            .get_or_insert_with(|| format!("{e:#}"));
                    }
                }
            }
            Err(e) => {
                tally.failures += 1;
                tally
                    .first_failure
                    .get_or_insert_with(|| format!("room {room}: {e:#}"));
                sleep(FAILURE_PAUSE).await;
            }
        }
    }
    tally
}

/// One call's signaling in room `room`, A connected to `a` and B to `b`; returns both clients,
/// still connected.
async fn call(
    a: &Endpoint,
    b: &Endpoint,
    room: &str,
    payloads: &Payloads,
) -> Result<(Client, Client)> {
    let config = WebSocketConfig::default();
    let mut a = Client::connect(a, config).await.context("A connects")?;
    let mut b = Client::connect(b, config).await.context("B connects")?;
    a.join(room).await.context("A joins")?;
    let joined = b.join(room).await.context("B joins")?;
    let members = joined.get("members").and_then(Value::as_array);
    if !members.is_some_and(|m| m.iter().any(|id| id.as_str() == Some(&a.id))) {
        bail!("B's `joined` does not list A ({}): {joined}", a.id);
    }
    let user_joined = a.expect("user-joined").await.context("A waits for B")?;
    let newcomer = client::str_field(&user_joined, "clientId")?;
    if newcomer != b.id {
        bail!("A's `user-joined` names {newcomer}, not B ({})", b.id);
    }

    send_signal(
        &mut b.ws,
        "offer",
        &a.id,
        "sdp",
        &[json_string(&payloads.offer_sdp)?],
    )
    .await?;
    let offer = a.expect("offer").await.context("A waits for the offer")?;
    check_relayed(
        &offer,
        &b.id,
        "sdp",
        &Value::from(payloads.offer_sdp.as_str()),
    )?;
    send_signal(
        &mut a.ws,
        "answer",
        &b.id,
        "sdp",
        &[json_string(&payloads.answer_sdp)?],
    )
    .await?;
    let answer = b.expect("answer").await.context("B waits for the answer")?;
    check_relayed(
        &answer,
        &a.id,
        "sdp",
        &Value::from(payloads.answer_sdp.as_str()),
    )?;

    send_signal(
        &mut a.ws,
        "candidate",
        &b.id,
        "candidate",
        &payloads.answerer_candidates,
    )
    .await?;
    send_signal(
        &mut b.ws,
        "candidate",
        &a.id,
        "candidate",
        &payloads.offerer_candidates,
    )
    .await?;
    let (a_id, b_id) = (a.id.clone(), b.id.clone());
    for (receiver, sender, sent) in [
        (&mut a, &b_id, &payloads.offerer_candidates),
        (&mut b, &a_id, &payloads.answerer_candidates),
    ] {
        for text in sent {
            let candidate = receiver
                .expect("candidate")
                .await
                .context("waiting for candidates")?;
            let expected: Value = serde_json::from_str(text).context("bad candidate payload")?;
            check_relayed(&candidate, sender, "candidate", &expected)?;
        }
    }
    Ok((a, b))
}

/// Sends one `kind` message per payload (raw JSON text in field `field`) to `target`, with one
/// flush for all of them.
async fn send_signal(
    ws: &mut Ws,
    kind: &str,
    target: &str,
    field: &str,
    payloads: &[String],
) -> Result<()> {
    let target = json_string(target)?;
    let send = async {
        for payload in payloads {
            let text = format!(r#"{{"type":"{kind}","targetId":{target},"{field}":{payload}}}"#);
            ws.feed(Message::text(text)).await?;
        }
        ws.flush().await
    };
    timeout(RECV_TIMEOUT, send)
        .await
        .with_context(|| format!("sending {kind} timed out"))?
        .with_context(|| format!("cannot send {kind}"))
}

/// Checks that a relayed message comes from `sender` and carries `expected` unchanged.
fn check_relayed(message: &Value, sender: &str, field: &str, expected: &Value) -> Result<()> {
    let kind = client::str_field(message, "type")?;
    let from = client::str_field(message, "fromId")?;
    if from != sender {
        bail!("{kind} from {from}, expected it from {sender}");
    }
    if message.get(field) != Some(expected) {
        bail!("{kind}: field `{field}` changed in transit");
    }
    Ok(())
}

fn json_string(s: &str) -> Result<String> {
    serde_json::to_string(s).context("cannot encode a JSON string")
}

/// Which side of the negotiation an SDP is for.
#[derive(Clone, Copy)]
enum SdpRole {
    Offer,
    Answer,
}

/// A browser-like SDP (one audio and one video section, trickle ICE, DTLS fingerprint) of at
/// least `target_len` bytes: video codecs are added until it is long enough, much as a real
/// browser's list of H.264 profiles makes its offers about 5 KB.
fn sdp(target_len: usize, role: SdpRole) -> String {
    let (session, ufrag, setup) = match role {
        SdpRole::Offer => ("4611731400430051336", "Kd3n", "actpass"),
        SdpRole::Answer => ("8213965309128471105", "p9Xa", "active"),
    };
    let transport = format!(
        "c=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\na=ice-ufrag:{ufrag}\r\n\
         a=ice-pwd:vQ1n7Yz0bJ4cR8sT2wU6xA3d\r\na=ice-options:trickle\r\n\
         a=fingerprint:sha-256 3C:4A:9F:11:D2:7E:58:B0:6A:C4:2F:91:E3:0D:7B:55:\
         A8:1C:64:F7:3E:92:0B:D5:C8:17:6E:A3:40:BF:29:D1\r\na=setup:{setup}\r\n"
    );
    let mut head = format!(
        "v=0\r\no=- {session} 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n\
         a=extmap-allow-mixed\r\na=msid-semantic: WMS bench\r\n\
         m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\n"
    );
    head.push_str(&transport);
    head.push_str(
        "a=mid:0\r\na=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
         a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n\
         a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n\
         a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\na=sendrecv\r\n\
         a=msid:bench 6f1c2a9e-audio\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\n\
         a=rtcp-fb:111 transport-cc\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n\
         a=rtpmap:63 red/48000/2\r\na=fmtp:63 111/111\r\na=rtpmap:9 G722/8000\r\n\
         a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:13 CN/8000\r\n\
         a=rtpmap:110 telephone-event/48000\r\na=rtpmap:126 telephone-event/8000\r\n\
         a=ssrc:1811386391 cname:Yd3bench0cname\r\na=ssrc:1811386391 msid:bench 6f1c2a9e-audio\r\n",
    );
    let mut video = transport;
    video.push_str(
        "a=mid:1\r\na=extmap:14 urn:ietf:params:rtp-hdrext:toffset\r\n\
         a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n\
         a=extmap:13 urn:3gpp:video-orientation\r\n\
         a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n\
         a=extmap:5 http://www.webrtc.org/experiments/rtp-hdrext/playout-delay\r\n\
         a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\na=sendrecv\r\n\
         a=msid:bench 0d7e4b3c-video\r\na=rtcp-mux\r\na=rtcp-rsize\r\n",
    );
    let tail = "a=ssrc-group:FID 2231627014 632943048\r\n\
                a=ssrc:2231627014 cname:Yd3bench0cname\r\n\
                a=ssrc:2231627014 msid:bench 0d7e4b3c-video\r\n\
                a=ssrc:632943048 cname:Yd3bench0cname\r\n\
                a=ssrc:632943048 msid:bench 0d7e4b3c-video\r\n";
    const CODECS: [(&str, &str); 8] = [
        ("VP8/90000", ""),
        ("VP9/90000", "profile-id=0"),
        ("VP9/90000", "profile-id=2"),
        (
            "H264/90000",
            "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f",
        ),
        (
            "H264/90000",
            "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f",
        ),
        (
            "H264/90000",
            "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f",
        ),
        ("AV1/90000", "level-idx=5;profile=0;tier=0"),
        (
            "H264/90000",
            "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=64001f",
        ),
    ];
    let mut payload_types = Vec::new();
    let mut codecs = String::new();
    // Payload types 96..=127, then 35..=63: the dynamic ranges browsers use.
    let mut free_types = (96..=127).chain(35..=63).collect::<Vec<u32>>().into_iter();
    let fixed_len = head.len() + video.len() + tail.len() + "m=video 9 UDP/TLS/RTP/SAVPF\r\n".len();
    for (name, fmtp) in CODECS.iter().cycle() {
        if fixed_len + codecs.len() + 4 * payload_types.len() >= target_len {
            break;
        }
        let (Some(pt), Some(rtx)) = (free_types.next(), free_types.next()) else {
            break;
        };
        payload_types.extend([pt, rtx]);
        let _ = write!(codecs, "a=rtpmap:{pt} {name}\r\n");
        for feedback in ["goog-remb", "transport-cc", "ccm fir", "nack", "nack pli"] {
            let _ = write!(codecs, "a=rtcp-fb:{pt} {feedback}\r\n");
        }
        if !fmtp.is_empty() {
            let _ = write!(codecs, "a=fmtp:{pt} {fmtp}\r\n");
        }
        let _ = write!(
            codecs,
            "a=rtpmap:{rtx} rtx/90000\r\na=fmtp:{rtx} apt={pt}\r\n"
        );
    }
    let mut sdp = head;
    sdp.push_str("m=video 9 UDP/TLS/RTP/SAVPF");
    for pt in &payload_types {
        let _ = write!(sdp, " {pt}");
    }
    sdp.push_str("\r\n");
    sdp.push_str(&video);
    sdp.push_str(&codecs);
    sdp.push_str(tail);
    sdp
}

/// The JSON text of [`CANDIDATES`] browser-like ICE candidates (host, server-reflexive, relay)
/// for ICE username fragment `ufrag`.
fn candidates(ufrag: &str) -> Vec<String> {
    let lines = [
        "candidate:1467250027 1 udp 2122260223 192.168.1.23 54321 typ host generation 0",
        "candidate:2999745851 1 tcp 1518280447 192.168.1.23 9 typ host tcptype active generation 0",
        "candidate:842163049 1 udp 1686052607 203.0.113.7 61665 typ srflx raddr 192.168.1.23 \
         rport 54321 generation 0",
        "candidate:3745478281 1 udp 41885439 198.51.100.40 3478 typ relay raddr 203.0.113.7 \
         rport 61665 generation 0",
    ];
    lines
        .iter()
        .take(CANDIDATES)
        .map(|line| {
            serde_json::json!({
                "candidate": format!("{line} ufrag {ufrag} network-cost 10"),
                "sdpMid": "0",
                "sdpMLineIndex": 0,
                "usernameFragment": ufrag,
            })
            .to_string()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdp_reaches_the_requested_size_and_stays_well_formed() {
        for role in [SdpRole::Offer, SdpRole::Answer] {
            let sdp = sdp(5000, role);
            assert!((5000..5600).contains(&sdp.len()), "{} bytes", sdp.len());
            assert!(sdp.starts_with("v=0\r\n") && sdp.ends_with("\r\n"));
            assert!(
                sdp.split("\r\n")
                    .filter(|l| !l.is_empty())
                    .all(|l| l.as_bytes()[1] == b'=')
            );
            let m_video = sdp.lines().find(|l| l.starts_with("m=video")).unwrap();
            let rtpmaps = sdp.matches("a=rtpmap:").count() - 8;
            assert_eq!(m_video.split(' ').count() - 3, rtpmaps);
        }
    }

    #[test]
    fn candidates_are_json_objects() {
        let all = candidates("abcd");
        assert_eq!(all.len(), CANDIDATES);
        for c in all {
            let v: Value = serde_json::from_str(&c).unwrap();
            assert!(v["candidate"].as_str().unwrap().starts_with("candidate:"));
        }
    }
}
