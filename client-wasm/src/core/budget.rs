//! The mesh send budget: how much each peer link may send, at what size and frame rate, so
//! that a page's links share its uplink fairly, a small tile is never sent a large picture,
//! and audio keeps flowing when video cannot.
//!
//! In a full mesh a page encodes one stream per peer, and each link's congestion control
//! competes with the others for one uplink. Every [`EVAL_EVERY_MS`] the budget:
//! 1. estimates the uplink: the sum of what the links carry (their own estimates,
//!    `availableOutgoingBitrate`, once their video has flowed [`STARTUP_MS`], less the loss
//!    their receivers report), falling no further
//!    than [`DIP_FLOOR`] on a first congested evaluation, and probing [`PROBE_GROWTH`] higher
//!    once no link has been congested for [`CALM_EVALS_TO_PROBE`] evaluations; while the
//!    uplink bounds the links, rising no more than a probing step over what they are allowed
//!    per evaluation (their own estimates add up to more than the uplink they share), and not
//!    past most of the level where packets were last lost ([`UNDER_LOSS_LEVEL`]) (a link is
//!    congested when its estimate falls under what it may send, or its receiver reports
//!    loss), capped by the page's ceiling;
//! 2. gives each link what it wants at most: the ladder's rate for the number of peers
//!    ([`ladder`]), less when the receiver shows it small ([`View`]), less with data saver;
//!    a focused, speaking or screen-sharing link weighs more;
//! 3. shares the estimate among the links by weight (water-filling: what a link cannot use
//!    goes to the others, but none carries more than [`FAIR_LEAD`] times the slowest, whose
//!    own estimate holds it back: the room left is what lets that one catch up) and turns
//!    each share into an [`Encoding`]: bitrate, height (smaller frames before fewer), frame
//!    rate, or no video at all ([`Limit::Bandwidth`] paused) below [`PAUSE_BELOW_KBPS`],
//!    audio first (and leaner under [`LEAN_AUDIO_BELOW_KBPS`], so a small share still holds
//!    a moving picture); every height steps down while the browser cannot encode the
//!    camera's frame rate ([`CPU_STARVED_BELOW`]);
//! 4. applies a new encoding only when it differs enough ([`CHANGE_FRACTION`] up,
//!    [`DROP_FRACTION`] down, [`RAISE_HEIGHT_MARGIN`] for a taller picture), and pauses or
//!    resumes video only after [`EVALS_TO_PAUSE`] or [`EVALS_TO_RESUME`] evaluations agree
//!    (no oscillation).
//!
//! Without any link estimate (Firefox reports none) the receivers' loss reports alone move
//! the estimate; with neither, the ladder alone sets the rates.

use litemap::LiteMap;
use protocol::ClientId;

/// How often the budget is evaluated, ms.
pub const EVAL_EVERY_MS: f64 = 3000.0;
/// Opus's bitrate on a link, kbit/s (the browsers' own for a voice).
pub const OPUS_KBPS: u32 = 32;
/// Opus's bitrate on a link whose share is small ([`LEAN_AUDIO_BELOW_KBPS`]), kbit/s: still
/// a clear voice, and room for a moving picture beside it.
pub const LEAN_OPUS_KBPS: u32 = 16;
/// The headers of a link's 50 audio packets a second (RTP with its extensions, SRTP, UDP and
/// IP: ~70 bytes each), kbit/s.
pub const AUDIO_HEADERS_KBPS: f64 = 28.0;
/// What a link's audio takes, kbit/s: Opus and its headers.
pub const AUDIO_KBPS: f64 = OPUS_KBPS as f64 + AUDIO_HEADERS_KBPS;
/// What a lean link's audio takes, kbit/s.
pub const LEAN_AUDIO_KBPS: f64 = LEAN_OPUS_KBPS as f64 + AUDIO_HEADERS_KBPS;
/// A link whose share (audio and video) falls under this sends lean audio...
pub const LEAN_AUDIO_BELOW_KBPS: f64 = 160.0;
/// ...until its share is back at this, kbit/s.
pub const FULL_AUDIO_FROM_KBPS: f64 = 200.0;
/// The part of a link's own estimate its media may take: the rest is for what the link
/// sends besides (RTCP, the feedback on what this page receives, retransmissions), which
/// its estimate does not count and which an uplink at its limit loses first.
pub const MEDIA_PART_OF_ESTIMATE: f64 = 0.9;
/// A link whose video share falls under this sends its minimal layer (120 lines at
/// [`MIN_FPS`]), and pauses its video after [`EVALS_TO_PAUSE`] evaluations there, kbit/s.
pub const PAUSE_BELOW_KBPS: f64 = 40.0;
/// A link sending its minimal layer goes back to the camera's frame rate, and no longer
/// counts towards a pause, once its video share is back at this for [`EVALS_TO_RESUME`]
/// evaluations, kbit/s: a share that hovers around [`PAUSE_BELOW_KBPS`] (two links on a
/// 200 kbit/s uplink) pauses.
pub const MINIMAL_UNTIL_KBPS: f64 = 45.0;
/// A paused link's video resumes once its share is back above this, kbit/s.
pub const RESUME_ABOVE_KBPS: f64 = 80.0;
/// How long a paused video waits before it tries again, even without a better estimate
/// (a link sending audio alone may never see its estimate grow), ms; twice as long after a
/// retry that paused again, four times after two.
pub const PAUSE_RETRY_MS: f64 = 10_000.0;
/// Evaluations in a row that must agree before video pauses: congestion control cuts deep
/// after a loss and climbs back within seconds, and a pause costs at least
/// [`PAUSE_RETRY_MS`] of video.
pub const EVALS_TO_PAUSE: u32 = 3;
/// Evaluations in a row that must agree before video resumes.
pub const EVALS_TO_RESUME: u32 = 2;
/// A higher bitrate is applied when it is above the applied one by more than this fraction.
pub const CHANGE_FRACTION: f64 = 0.15;
/// A lower one, when it is under it by more than this: rates drop at once, and rise with care.
pub const DROP_FRACTION: f64 = 0.05;
/// How much higher than what the links carry the estimate goes while none is congested.
pub const PROBE_GROWTH: f64 = 1.15;
/// Where the links last lost packets, the estimate rises up to this fraction of what they
/// were allowed then, and no further until [`LOSS_LEVEL_EVALS`] calm evaluations pass
/// (probing past a level that lost is what loses again); then it rises a probing step
/// ([`PROBE_GROWTH`]) over what they are allowed per calm evaluation.
pub const UNDER_LOSS_LEVEL: f64 = 0.9;
/// Calm evaluations after which the level that lost starts to be lifted: the level is set
/// where the links were cut to after a loss, often deeper than the uplink needs.
pub const LOSS_LEVEL_EVALS: u32 = 6;
/// A link's own estimate is heeded once its video has flowed this long, ms. It starts at a
/// guess (Chromium's: 300 kbit/s) and probes up in its first seconds, up to the sender's
/// maximum bitrate: a cap set at the guess would stop that probe, and the link would climb
/// from there in the budget's small steps for half a minute.
pub const STARTUP_MS: f64 = 5000.0;
/// Evaluations in a row without congestion before the estimate probes higher: after a
/// congestion the rates hold for a while instead of sawing up and down.
pub const CALM_EVALS_TO_PROBE: u32 = 3;
/// On a first congested evaluation without loss the estimate falls at most to this fraction
/// of the last one: congestion control dips below the uplink after each loss, and a budget set at the
/// dip would waste the rest. A second congested evaluation in a row follows the links'
/// estimates all the way (the uplink did shrink).
pub const DIP_FLOOR: f64 = 0.85;
/// A link whose receiver reports more loss than this is congested: congestion control holds
/// its rate up to 10 % loss, which a queue in the way turns into lost audio.
pub const LOSSY_ABOVE: f64 = 0.03;
/// What a lossy link carries is cut by its loss and this much more, so the queue drains.
pub const LOSS_MARGIN: f64 = 0.03;
/// After a cut for loss, the link's loss reports are not heeded for this long, ms: they
/// come a report interval late, and would cut again for the loss already cut for.
pub const LOSS_HOLD_MS: f64 = 2.0 * EVAL_EVERY_MS;
/// A link is congested when its own estimate is under this fraction of what it may send.
pub const CONGESTED_BELOW: f64 = 0.85;
/// A congested link is held back further on than the uplink when its receiver reports this
/// much more loss than any other link's...
pub const OWN_LOSS_MORE: f64 = 0.02;
/// ...or its round trip has grown this much more (ms) than any other's: a queue of its own.
pub const OWN_QUEUE_MS_MORE: f64 = 40.0;
/// A link held back further on may carry this much more than it does now.
pub const CARRY_GROWTH: f64 = 1.25;
/// The most a link may carry over the slowest link sharing the uplink with it (per weight):
/// links that share an uplink get rates within this of each other.
pub const FAIR_LEAD: f64 = 1.15;
/// Data saver: each link's video at most this, kbit/s, and [`DATA_SAVER_HEIGHT`].
pub const DATA_SAVER_KBPS: f64 = 200.0;
/// Data saver: each link's video at most this tall.
pub const DATA_SAVER_HEIGHT: u32 = 240;
/// A link encoding under this fraction of the camera's frame rate, the network not in the
/// way, starves for CPU (or the engine says its encoder is CPU-limited).
pub const CPU_STARVED_BELOW: f64 = 0.6;
/// Every link encoding at least this fraction of the camera's frame rate is well fed.
pub const CPU_FED_ABOVE: f64 = 0.85;
/// Evaluations in a row of starving before every link steps one height down...
pub const CPU_STARVED_EVALS: u32 = 2;
/// ...and of being well fed before they step one back up; doubled (up to 8 times) each time
/// a step back up starved again, so the heights settle instead of sawing.
pub const CPU_FED_EVALS: u32 = 10;
/// The most height steps the CPU takes away.
pub const MAX_CPU_STEPS: usize = 2;
/// The frame rate of a link's minimal layer, and of a shared screen.
pub const MIN_FPS: u32 = 15;
/// The frame rate otherwise.
pub const MAX_FPS: u32 = 30;

/// A link's picture gets taller only up to the tallest height its share holds with this much
/// room ([`kbps_for`]); it gets smaller as soon as the share is under 80 % of what its height
/// needs.
pub const RAISE_HEIGHT_MARGIN: f64 = 1.1;

/// The heights a link is encoded at (the encoder's steps; 120 lines is the minimal layer,
/// for a share that cannot hold 180 lines at the camera's frame rate).
pub const HEIGHTS: [u32; 8] = [120, 180, 240, 360, 480, 540, 720, 1080];

/// What a link may send at most for this many peers: video bitrate and height.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rung {
    /// Video, kbit/s.
    pub kbps: f64,
    /// Height, pixels.
    pub height: u32,
}

/// The ladder: each link's most, by the number of peers (measured in the network lab: four
/// pages on 2 Mbit/s uplinks each send three links of 600 kbit/s at 25–30 fps).
pub fn ladder(peers: usize) -> Rung {
    match peers {
        0 | 1 => Rung {
            kbps: 1700.0,
            height: 720,
        },
        2 | 3 => Rung {
            kbps: 600.0,
            height: 480,
        },
        4..=6 => Rung {
            kbps: 300.0,
            height: 360,
        },
        _ => Rung {
            kbps: 150.0,
            height: 240,
        },
    }
}

/// The bitrate a height needs for a sharp picture at 30 fps (VP8), kbit/s.
pub fn kbps_for(height: u32) -> f64 {
    match height {
        0..=120 => 70.0,
        121..=180 => 130.0,
        181..=240 => 200.0,
        241..=360 => 350.0,
        361..=480 => 550.0,
        481..=540 => 800.0,
        541..=720 => 1500.0,
        _ => 2500.0,
    }
}

/// The tallest step a video bitrate holds (smaller frames rather than fewer).
pub fn height_for(kbps: f64) -> u32 {
    HEIGHTS
        .iter()
        .rev()
        .copied()
        .find(|h| kbps_for(*h) * 0.8 <= kbps)
        .unwrap_or(HEIGHTS[0])
}

/// The smallest step at least `height` tall (a tile of 200 pixels gets 240).
pub fn step_up(height: u32) -> u32 {
    HEIGHTS
        .iter()
        .copied()
        .find(|h| *h >= height)
        .unwrap_or(HEIGHTS[HEIGHTS.len() - 1])
}

/// How the receiver shows this page's video: sent by the receiver over the data channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct View {
    /// The tile's height in device pixels (rounded up to a step of [`HEIGHTS`]).
    pub height: u32,
    /// The tile is focused (shown large).
    pub focused: bool,
    /// This page is the receiver's active speaker.
    pub speaking: bool,
}

/// What the engine says limits a link's encoder (`qualityLimitationReason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EngineLimit {
    /// Nothing, or not reported.
    #[default]
    None,
    /// The CPU: the encoder cannot keep up (this machine, not the network).
    Cpu,
    /// The bandwidth estimate.
    Bandwidth,
}

/// One link's sending side, from its `getStats()`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SendSample {
    /// When it was taken, ms.
    pub at_ms: f64,
    /// The link's own estimate of what it can send (`availableOutgoingBitrate`), kbit/s.
    pub available_kbps: Option<f64>,
    /// Bytes of video and of audio sent so far.
    pub video_bytes: u64,
    /// See `video_bytes`.
    pub audio_bytes: u64,
    /// The height of the video sent now (`frameHeight`), and its frame rate.
    pub frame_height: Option<u32>,
    /// See `frame_height`.
    pub fps: Option<f64>,
    /// The height of the track being sent (the camera's or the screen's).
    pub source_height: Option<u32>,
    /// The connection's round-trip time now, ms.
    pub rtt_ms: Option<f64>,
    /// The camera's (or screen's) frame rate (the track's settings).
    pub source_fps: Option<f64>,
    /// The fraction of packets lost on the way, as the receiver last reported it (RTCP,
    /// `remote-inbound-rtp` `fractionLost`; the most of audio and video).
    pub loss: Option<f64>,
    /// What limits the encoder, as the engine says.
    pub engine_limit: EngineLimit,
}

/// Why a link sends less than it could.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Nothing: the ladder's most for this many peers.
    Peers,
    /// The uplink estimate (shared among the links).
    Bandwidth,
    /// The receiver shows it small.
    ReceiverSize,
    /// The user's data saver.
    DataSaver,
    /// The page's configured ceiling.
    Ceiling,
    /// The encoder cannot keep up (reported by the engine).
    Cpu,
}

impl Limit {
    /// The reason in words (the tile's `data-send-limit`).
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::Peers => "peers",
            Limit::Bandwidth => "bandwidth",
            Limit::ReceiverSize => "receiver size",
            Limit::DataSaver => "data saver",
            Limit::Ceiling => "ceiling",
            Limit::Cpu => "cpu",
        }
    }
}

/// How one link's video is to be encoded (`RTCRtpSender.setParameters`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Encoding {
    /// Whether video is sent at all (audio always is).
    pub active: bool,
    /// Opus's most bitrate, kbit/s ([`OPUS_KBPS`], or [`LEAN_OPUS_KBPS`] on a small share).
    pub audio_kbps: u32,
    /// The most video bitrate, kbit/s.
    pub max_kbps: u32,
    /// The height aimed at.
    pub height: u32,
    /// `scaleResolutionDownBy`: the source's height over `height` (at least 1).
    pub scale_down: f64,
    /// The most frames per second.
    pub max_fps: u32,
    /// A shared screen: keep the resolution, lose frames first.
    pub screen: bool,
    /// Why it is not more.
    pub limit: Limit,
}

/// What the tile of a link shows about sending, refreshed on every sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sent {
    /// Bitrate sent over the last interval (video and audio), kbit/s.
    pub kbps: Option<f64>,
    /// The height and frame rate sent now.
    pub height: Option<u32>,
    /// See `height`.
    pub fps: Option<f64>,
    /// Video paused for lack of bandwidth.
    pub paused: bool,
    /// Why it is not more (`None`: not evaluated yet).
    pub limit: Option<Limit>,
    /// What the link's own estimate leaves its media ([`MEDIA_PART_OF_ESTIMATE`] of it, once
    /// heeded: see [`STARTUP_MS`]), kbit/s.
    pub estimate_kbps: Option<f64>,
    /// The most the budget lets it send now (audio and video), kbit/s.
    pub allowed_kbps: Option<f64>,
    /// The fraction of its packets the receiver last reported lost.
    pub loss: Option<f64>,
}

impl Sent {
    /// Its figures, e.g. `360p 30 fps 290 kb/s` (the tile's line adds the reason in words).
    pub fn figures(&self) -> String {
        crate::stats::media_figures(self.height, self.fps, self.kbps)
    }
}

/// A change for the web layer to carry out on a link.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Encode the link's video this way.
    Encode(ClientId, Encoding),
    /// The link's video paused (`true`) or resumed: tell the receiver.
    Paused(ClientId, bool),
}

/// One link's state.
#[derive(Debug, Default)]
struct LinkState {
    view: Option<View>,
    last: Option<SendSample>,
    /// Sent over the last interval, kbit/s: audio and video, and audio alone.
    sent_kbps: Option<f64>,
    /// See `sent_kbps`.
    audio_sent_kbps: Option<f64>,
    applied: Option<Encoding>,
    /// Its share was under what it wanted at the last evaluation (the uplink held it back).
    short: bool,
    paused: bool,
    paused_at: f64,
    /// Resumed by a retry, not by a better share; and retries that paused again.
    retrying: bool,
    failed_retries: u32,
    /// The shortest round trip seen, ms.
    min_rtt_ms: Option<f64>,
    /// Loss reports before this time are not heeded (see [`LOSS_HOLD_MS`]).
    loss_hold_until: f64,
    /// Evaluations in a row that wanted the pause state to flip.
    flip_votes: u32,
    /// Sending its minimal layer, on the way to a pause, and the evaluations in a row its
    /// share could leave it (see [`minimal_layer`]).
    minimal: bool,
    over_minimal: u32,
    /// When its video first flowed (see [`STARTUP_MS`]).
    video_since: Option<f64>,
}

impl LinkState {
    /// What the link may send now, audio included (what its estimate is compared with).
    fn allowed_kbps(&self) -> Option<f64> {
        let a = self.applied?;
        Some(self.audio_takes(a.audio_kbps) + if a.active { f64::from(a.max_kbps) } else { 0.0 })
    }

    /// What its audio takes with Opus capped at `opus_kbps`, headers included, kbit/s: what
    /// it was seen sending when that is more (a browser that does not heed the cap: Firefox
    /// sends its own rate).
    fn audio_takes(&self, opus_kbps: u32) -> f64 {
        let sent = self.audio_sent_kbps.unwrap_or(0.0);
        f64::from(opus_kbps).max(sent) + AUDIO_HEADERS_KBPS
    }

    /// The loss its receiver reports now (0 when not reported).
    fn loss_now(&self) -> f64 {
        self.last.and_then(|s| s.loss).unwrap_or(0.0)
    }

    /// How much longer its round trip is now than the shortest seen: the queues on its way.
    fn queue_ms(&self) -> Option<f64> {
        Some(self.last?.rtt_ms? - self.min_rtt_ms?)
    }

    /// The loss its receiver reports, when above [`LOSSY_ABOVE`].
    fn loss(&self) -> Option<f64> {
        self.last.and_then(|s| s.loss).filter(|l| *l > LOSSY_ABOVE)
    }

    /// Its own estimate is under what it may send, or its receiver reports loss.
    fn congested(&self) -> bool {
        let avail = self.last.and_then(|s| s.available_kbps);
        let under = match (avail, self.allowed_kbps()) {
            (Some(avail), Some(allowed)) => avail < allowed * CONGESTED_BELOW,
            _ => false,
        };
        under || self.loss().is_some()
    }

    /// What the link carries, kbit/s: its estimate, or what it may send when that is more
    /// and it is not congested; less the loss its receiver reports (what did not get through,
    /// and a margin, so that the queue in the way drains).
    fn carried(&self, wanted: f64) -> f64 {
        let avail = self.last.and_then(|s| s.available_kbps);
        let base = match (avail, self.allowed_kbps()) {
            (Some(a), Some(allowed)) if self.loss().is_some() => a.min(allowed),
            (Some(a), Some(allowed)) if !self.congested() => a.max(allowed),
            (Some(a), _) => a,
            (None, Some(allowed)) => allowed,
            (None, None) => wanted,
        };
        match self.loss() {
            Some(loss) => base * (1.0 - loss - LOSS_MARGIN).max(0.5),
            None => base,
        }
    }
}

/// What the budget needs to know of one link for one evaluation.
#[derive(Debug, Clone, Copy)]
struct Want {
    /// Audio and video at most, kbit/s.
    kbps: f64,
    /// The most it can carry (its estimate, when congested).
    carry: f64,
    weight: f64,
    limit: Limit,
    height: u32,
}

/// The page's send budget; see the module doc.
#[derive(Debug, Default)]
pub struct Budget {
    links: LiteMap<ClientId, LinkState>,
    ceiling_kbps: Option<f64>,
    data_saver: bool,
    screen: bool,
    last_eval: Option<f64>,
    /// Evaluations in a row in which no link was congested.
    calm_evals: u32,
    /// Evaluations in a row in which a link was congested.
    congested_evals: u32,
    /// The last estimate, kbit/s.
    last_total: Option<f64>,
    /// What the links were allowed together when they last lost packets, kbit/s.
    loss_level: Option<f64>,
    /// Height steps taken away for lack of CPU, and the evaluations in a row that starved or
    /// were well fed.
    cpu_steps: usize,
    starved_evals: u32,
    fed_evals: u32,
    /// Evaluations of being well fed needed to step back up, and whether the last step was up.
    fed_needed: u32,
    stepped_up: bool,
    /// Off: nothing is ever changed (every link left to the browser, for comparisons).
    off: bool,
}

impl Budget {
    /// A budget without links, ceiling or data saver.
    pub fn new() -> Budget {
        Budget::default()
    }

    /// Starts budgeting a link.
    pub fn add(&mut self, id: ClientId) {
        self.links.entry(id).or_default();
        self.last_eval = None;
    }

    /// Stops budgeting a link (closed or given up): the others share its part.
    pub fn remove(&mut self, id: &ClientId) {
        if self.links.remove(id).is_some() {
            self.last_eval = None;
        }
    }

    /// Turns the budget off (`false`): links are then left to the browser's own rate control
    /// (what sending was before this budget; for comparisons, `?budget=off`).
    pub fn set_enabled(&mut self, on: bool) {
        self.off = !on;
    }

    /// Budgets exactly these links: new ones are added, the others dropped.
    pub fn keep_only<'a>(&mut self, ids: impl Iterator<Item = &'a ClientId>) {
        // A few peers: a list is all it takes (and costs the bundle no tree code).
        let ids: Vec<&ClientId> = ids.collect();
        let before = self.links.len();
        self.links.retain(|id, _| ids.contains(&id));
        for id in ids {
            if !self.links.contains_key(id) {
                self.add(id.clone());
            }
        }
        if self.links.len() != before {
            self.last_eval = None;
        }
    }

    /// Sets the most the page sends over all its links, kbit/s (`None`: no ceiling).
    pub fn set_ceiling(&mut self, kbps: Option<u32>) {
        self.ceiling_kbps = kbps.filter(|k| *k > 0).map(f64::from);
        self.last_eval = None;
    }

    /// Turns data saver on or off.
    pub fn set_data_saver(&mut self, on: bool) {
        self.data_saver = on;
        self.last_eval = None;
    }

    /// Whether data saver is on.
    pub fn data_saver(&self) -> bool {
        self.data_saver
    }

    /// Whether the video sent is a shared screen.
    pub fn set_screen(&mut self, on: bool) {
        self.screen = on;
        self.last_eval = None;
    }

    /// The receiver of link `id` shows it this way; `true` when that changes the budget.
    pub fn set_view(&mut self, id: &ClientId, view: View) -> bool {
        let Some(link) = self.links.get_mut(id) else {
            return false;
        };
        let changed = link.view != Some(view);
        link.view = Some(view);
        if changed {
            self.last_eval = None;
        }
        changed
    }

    /// Records a sample of link `id`; returns what its tile shows.
    pub fn sample(&mut self, id: &ClientId, sample: SendSample) -> Option<Sent> {
        let link = self.links.get_mut(id)?;
        if let Some(prev) = link.last {
            let secs = (sample.at_ms - prev.at_ms) / 1000.0;
            let bytes = (sample.video_bytes + sample.audio_bytes)
                .saturating_sub(prev.video_bytes + prev.audio_bytes);
            let kbps = |bytes: u64| (secs > 0.0).then(|| bytes as f64 * 8.0 / 1000.0 / secs);
            link.sent_kbps = kbps(bytes);
            link.audio_sent_kbps = kbps(sample.audio_bytes.saturating_sub(prev.audio_bytes));
        }
        if sample.video_bytes > 0 && link.video_since.is_none() {
            link.video_since = Some(sample.at_ms);
        }
        let started = link
            .video_since
            .is_some_and(|t| sample.at_ms - t >= STARTUP_MS);
        let heeded = SendSample {
            available_kbps: sample
                .available_kbps
                .filter(|_| started)
                .map(|a| a * MEDIA_PART_OF_ESTIMATE),
            // Reported, not heeded: the link still counts as one whose loss is known.
            loss: sample.loss.map(|l| {
                if sample.at_ms >= link.loss_hold_until {
                    l
                } else {
                    0.0
                }
            }),
            ..sample
        };
        link.last = Some(heeded);
        if let Some(rtt) = sample.rtt_ms {
            link.min_rtt_ms = Some(link.min_rtt_ms.map_or(rtt, |m| m.min(rtt)));
        }
        // The engine's CPU limit is told apart from the network's: this machine, not the
        // link, is what holds the encoder back then.
        let limit = match sample.engine_limit {
            EngineLimit::Cpu => Some(Limit::Cpu),
            _ => link.applied.map(|a| a.limit),
        };
        Some(Sent {
            kbps: link.sent_kbps,
            height: sample.frame_height,
            fps: sample.fps,
            paused: link.paused,
            limit,
            estimate_kbps: heeded.available_kbps,
            allowed_kbps: link.allowed_kbps(),
            loss: sample.loss,
        })
    }

    /// Evaluates the budget when it is due (every [`EVAL_EVERY_MS`], or at once after a
    /// change of links, views or settings); returns the changes to carry out.
    pub fn evaluate(&mut self, now_ms: f64) -> Vec<Change> {
        if self.links.is_empty() || self.off {
            return Vec::new();
        }
        if self
            .last_eval
            .is_some_and(|at| now_ms - at < EVAL_EVERY_MS && now_ms >= at)
        {
            return Vec::new();
        }
        self.last_eval = Some(now_ms);
        let own = self.held_further_on();
        let mut wants: Vec<Want> = self
            .links
            .values()
            .zip(&own)
            .map(|(l, own)| self.want(l, *own))
            .collect();
        let congested = self.links.values().any(LinkState::congested);
        self.calm_evals = if congested { 0 } else { self.calm_evals + 1 };
        self.congested_evals = if congested {
            self.congested_evals + 1
        } else {
            0
        };
        self.count_cpu();
        if self.lossy() {
            self.loss_level = Some(self.level_that_lost());
        } else if self.calm_evals >= LOSS_LEVEL_EVALS {
            // Forgotten a probing step at a time: lifted at once, the links would leap to
            // what their own estimates add up to, more than the uplink they share. Never
            // lowered by it (paused links are allowed their audio alone).
            let wanted: f64 = wants.iter().map(|w| w.kbps).sum();
            let step = self.allowed_kbps() / UNDER_LOSS_LEVEL * PROBE_GROWTH;
            self.loss_level = self
                .loss_level
                .map(|level| level.max(step))
                .filter(|level| level * UNDER_LOSS_LEVEL < wanted);
        }
        let (total, ceiling_bound) = self.estimate(&wants, &own);
        self.last_total = Some(total);
        for (_, link) in self.links.iter_mut().filter(|(_, l)| l.loss().is_some()) {
            link.loss_hold_until = now_ms + LOSS_HOLD_MS;
        }
        self.lead_at_most(&mut wants, &own);
        let shares = water_fill(total, &wants);
        let mut out = Vec::new();
        let ids: Vec<ClientId> = self.links.keys().cloned().collect();
        for ((id, want), share) in ids.into_iter().zip(wants).zip(shares) {
            self.settle(id, want, share, ceiling_bound, now_ms, &mut out);
        }
        out
    }

    /// Steps every link's height down while the browser cannot encode the camera's frame
    /// rate with the network not in the way (fewer pixels to capture, scale and encode), and
    /// back up once it has kept up for a while.
    fn count_cpu(&mut self) {
        let fed = |l: &LinkState, fraction: f64| -> Option<bool> {
            let (s, applied) = (l.last?, l.applied?);
            if !applied.active || applied.screen || applied.limit == Limit::Bandwidth {
                return None;
            }
            if s.engine_limit == EngineLimit::Cpu {
                return Some(false);
            }
            Some(s.fps? >= fraction * s.source_fps.filter(|f| *f > 0.0)?)
        };
        let starved = self
            .links
            .values()
            .any(|l| fed(l, CPU_STARVED_BELOW) == Some(false));
        let well_fed = self
            .links
            .values()
            .all(|l| fed(l, CPU_FED_ABOVE) != Some(false));
        self.starved_evals = if starved { self.starved_evals + 1 } else { 0 };
        self.fed_evals = if well_fed { self.fed_evals + 1 } else { 0 };
        let needed = self.fed_needed.max(CPU_FED_EVALS);
        if self.starved_evals >= CPU_STARVED_EVALS && self.cpu_steps < MAX_CPU_STEPS {
            self.cpu_steps += 1;
            self.starved_evals = 0;
            if std::mem::take(&mut self.stepped_up) {
                self.fed_needed = (needed * 2).min(8 * CPU_FED_EVALS);
            }
        } else if self.fed_evals >= needed && self.cpu_steps > 0 {
            self.cpu_steps -= 1;
            self.fed_evals = 0;
            self.stepped_up = true;
        }
    }

    /// Which links are held back further on than this page's uplink (the receiver's downlink):
    /// congested while the others are not, and standing out by their own loss or queueing
    /// delay. A link that is only slower to grab its part of a shared uplink (its estimate
    /// lower, its loss and delay the same as the others') is not: it gets its even share.
    fn held_further_on(&self) -> Vec<bool> {
        let links: Vec<&LinkState> = self.links.values().collect();
        let all = links.iter().all(|l| l.congested());
        (0..links.len())
            .map(|i| {
                let others = links.iter().enumerate().filter(|(j, _)| *j != i);
                let (loss, queue) = others.fold((0.0f64, 0.0f64), |(l, q), (_, o)| {
                    (l.max(o.loss_now()), q.max(o.queue_ms().unwrap_or(0.0)))
                });
                let me = links[i];
                let stands_out = me.loss_now() > loss + OWN_LOSS_MORE
                    || me.queue_ms().is_some_and(|q| q > queue + OWN_QUEUE_MS_MORE);
                !all && me.congested() && stands_out
            })
            .collect()
    }

    /// Keeps the links that are not congested within [`FAIR_LEAD`] of the slowest congested
    /// one (per weight) sharing this page's uplink: its video flowing, its own estimate under
    /// what it may send, not held back further on (`own`). Its congestion control backed off
    /// more than the others'; the room they leave it is what lets it catch up. (Links all
    /// congested together dipped together: [`DIP_FLOOR`] is for them.)
    fn lead_at_most(&self, wants: &mut [Want], own: &[bool]) {
        let slowest = self
            .links
            .values()
            .zip(wants.iter())
            .zip(own)
            .filter(|((l, _), own)| {
                let flowing = l.applied.is_some_and(|a| a.active);
                let estimated = l.last.is_some_and(|s| s.available_kbps.is_some());
                !**own && flowing && estimated && l.congested()
            })
            .map(|((l, w), _)| l.carried(w.kbps) / w.weight)
            .reduce(f64::min);
        let Some(per_weight) = slowest else {
            return;
        };
        for ((l, w), own) in self.links.values().zip(wants.iter_mut()).zip(own) {
            if !own && !l.congested() {
                w.carry = w.carry.min(per_weight * w.weight * FAIR_LEAD);
            }
        }
    }

    /// What a link wants at most, and how much it weighs; `own_limit`: a link held back
    /// further on carries a little more than it does now, no more.
    fn want(&self, link: &LinkState, own_limit: bool) -> Want {
        let rung = ladder(self.links.len());
        let view = link.view.unwrap_or_default();
        let mut weight = if view.focused {
            2.0
        } else if view.speaking {
            1.5
        } else {
            1.0
        };
        let mut kbps = rung.kbps * weight;
        let mut height = rung.height;
        if self.screen {
            weight *= 2.0;
            kbps = (rung.kbps * 2.0).max(kbps);
            height = HEIGHTS[HEIGHTS.len() - 1];
        }
        // The top of the ladder is the most any link gets, focused or not.
        kbps = kbps.min(ladder(1).kbps);
        let mut limit = Limit::Peers;
        if view.height > 0 && !self.screen {
            let shown = step_up(view.height);
            // A tile as tall as the camera's picture is not what holds the link back.
            let source = link.last.and_then(|s| s.source_height).filter(|h| *h > 0);
            let smaller = shown < height.min(source.unwrap_or(height));
            if shown < height {
                height = shown;
            }
            if kbps_for(shown) < kbps {
                kbps = kbps_for(shown);
                if smaller {
                    limit = Limit::ReceiverSize;
                }
            }
        }
        if self.data_saver && kbps > DATA_SAVER_KBPS {
            kbps = DATA_SAVER_KBPS;
            height = height.min(DATA_SAVER_HEIGHT);
            limit = Limit::DataSaver;
        }
        let total = kbps + link.audio_takes(OPUS_KBPS);
        let carry = match own_limit {
            true => link.carried(total) * CARRY_GROWTH,
            false => f64::INFINITY,
        };
        Want {
            kbps: total,
            carry,
            weight,
            limit,
            height,
        }
    }

    /// Whether a link's receiver reports loss (above [`LOSSY_ABOVE`], heeded now).
    fn lossy(&self) -> bool {
        self.links.values().any(|l| l.loss().is_some())
    }

    /// Where the links lose packets now, kbit/s: what they are allowed; but after a cut for
    /// an earlier loss, what they are allowed was cut already, and loss reported since may
    /// be of the time before it (a report covers seconds): then no lower than the links' own
    /// estimates (which fall with loss that lasts) or the last level, whichever is lower.
    fn level_that_lost(&self) -> f64 {
        let allowed = self.allowed_kbps();
        match (self.loss_level, self.estimated_total()) {
            (Some(last), Some(estimated)) => allowed.max(last.min(estimated)),
            _ => allowed,
        }
    }

    /// What the links' own estimates add up to (each heeded, see [`STARTUP_MS`]), capped by
    /// the page's ceiling; `None` unless every link has one.
    fn estimated_total(&self) -> Option<f64> {
        let sum = self
            .links
            .values()
            .map(|l| l.last?.available_kbps)
            .sum::<Option<f64>>()?;
        Some(self.ceiling_kbps.map_or(sum, |c| sum.min(c)))
    }

    /// What the links may send together now, kbit/s.
    fn allowed_kbps(&self) -> f64 {
        self.links
            .values()
            .filter_map(LinkState::allowed_kbps)
            .sum()
    }

    /// The most the links may rise to together in one evaluation, kbit/s: a probing step
    /// over what a link whose video flows is allowed (the links' own estimates, each above
    /// its part of the uplink they share while it sends less, add up to more than the
    /// uplink carries: followed at once, they would flood it); what it wants for a link
    /// whose video is paused or not yet encoded.
    fn ramp_kbps(&self, wants: &[Want]) -> f64 {
        self.links
            .values()
            .zip(wants)
            .map(|(l, w)| match l.applied.filter(|a| a.active) {
                Some(_) => l.allowed_kbps().unwrap_or(w.kbps) * PROBE_GROWTH,
                None => w.kbps,
            })
            .sum()
    }

    /// Whether the uplink held a link back at the last evaluation (its share under what it
    /// wanted): then the links rise by [`Budget::ramp_kbps`]; otherwise they get what they
    /// want at once (a peer left, a tile was focused).
    fn bandwidth_bound(&self) -> bool {
        self.links.values().any(|l| l.short)
    }

    /// The uplink estimate, kbit/s, and whether the ceiling bounds it; links held back
    /// further on (`own`) count with room to grow (see [`CARRY_GROWTH`]).
    fn estimate(&self, wants: &[Want], own: &[bool]) -> (f64, bool) {
        let wanted: f64 = wants.iter().map(|w| w.kbps).sum();
        let known = self.links.values().any(|l| {
            l.last
                .is_some_and(|s| s.available_kbps.is_some() || s.loss.is_some())
        });
        let mut total = if known {
            let congested = self.links.values().any(LinkState::congested);
            let carried: f64 = self
                .links
                .values()
                .zip(wants.iter().zip(own))
                .map(|(l, (w, own))| match own {
                    true => l.carried(w.kbps) * CARRY_GROWTH,
                    false => l.carried(w.kbps),
                })
                .sum();
            // Loss is no dip: what did not get through is followed at once.
            let lossy = self.lossy();
            if congested {
                match self.last_total {
                    Some(last) if self.congested_evals < 2 && !lossy => {
                        carried.max(last * DIP_FLOOR)
                    }
                    _ => carried,
                }
            } else {
                let grown = match self.calm_evals < CALM_EVALS_TO_PROBE {
                    true => carried,
                    false => carried * PROBE_GROWTH,
                };
                let grown = match self.bandwidth_bound() {
                    true => grown.min(self.ramp_kbps(wants)),
                    false => grown,
                };
                let allowed = self.allowed_kbps();
                match self.loss_level {
                    Some(level) => grown.min((level * UNDER_LOSS_LEVEL).max(allowed)),
                    None => grown,
                }
            }
        } else {
            wanted
        };
        total = total.min(wanted);
        match self.ceiling_kbps {
            Some(ceiling) if ceiling < total => (ceiling, true),
            _ => (total, false),
        }
    }

    /// Turns link `id`'s share into its encoding, applying it when it changed enough.
    fn settle(
        &mut self,
        id: ClientId,
        want: Want,
        share: f64,
        ceiling_bound: bool,
        now_ms: f64,
        out: &mut Vec<Change>,
    ) {
        let screen = self.screen;
        let Some(link) = self.links.get_mut(&id) else {
            return;
        };
        let was_lean = link.applied.is_some_and(|a| a.audio_kbps < OPUS_KBPS);
        let lean = share < LEAN_AUDIO_BELOW_KBPS || (was_lean && share < FULL_AUDIO_FROM_KBPS);
        let audio_kbps = if lean { LEAN_OPUS_KBPS } else { OPUS_KBPS };
        let video = share - link.audio_takes(audio_kbps);
        let short = share < want.kbps * 0.95;
        link.short = short;
        let limit = match (short, ceiling_bound) {
            (false, _) => want.limit,
            (true, true) => Limit::Ceiling,
            (true, false) => Limit::Bandwidth,
        };
        let was_paused = link.paused;
        // Climbing back after a cut is no reason to pause.
        let rising = link
            .applied
            .is_some_and(|a| a.active && video > f64::from(a.max_kbps) * (1.0 + DROP_FRACTION));
        vote_pause(link, video, rising, now_ms);
        let source = link.last.and_then(|s| s.source_height);
        let mut fits = height_for(video);
        // A taller picture only once the share holds it with room: each change of size is a
        // key frame, a burst a small uplink pays for in lost packets and a freeze.
        let bandwidth_bound = |a: &Encoding| matches!(a.limit, Limit::Bandwidth | Limit::Ceiling);
        if let Some(a) = link
            .applied
            .filter(|a| fits > a.height && bandwidth_bound(a))
        {
            let held = HEIGHTS
                .iter()
                .rev()
                .copied()
                .find(|h| kbps_for(*h) * RAISE_HEIGHT_MARGIN <= video);
            fits = held.unwrap_or(HEIGHTS[0]).clamp(a.height, fits);
        }
        let mut height = want.height.min(if screen { want.height } else { fits });
        if let Some(source) = source.filter(|s| *s > 0) {
            height = height.min(source);
        }
        let step = HEIGHTS.iter().position(|h| *h >= height).unwrap_or(0);
        let cpu_height = HEIGHTS[step.saturating_sub(self.cpu_steps)];
        let limit = match cpu_height < height && !screen {
            true => {
                height = cpu_height;
                Limit::Cpu
            }
            false => limit,
        };
        let encoding = Encoding {
            active: !link.paused,
            audio_kbps,
            max_kbps: video as u32,
            height,
            scale_down: source.map_or(1.0, |s| (f64::from(s) / f64::from(height)).max(1.0)),
            max_fps: if screen || link.minimal {
                MIN_FPS
            } else {
                MAX_FPS
            },
            screen,
            limit,
        };
        if differs(link.applied.as_ref(), &encoding, !short) {
            link.applied = Some(encoding);
            out.push(Change::Encode(id.clone(), encoding));
        }
        if link.paused != was_paused {
            out.push(Change::Paused(id, link.paused));
        }
    }
}

/// Counts the evaluations that want link's video paused or resumed, and flips it after
/// [`EVALS_TO_PAUSE`] or [`EVALS_TO_RESUME`] of them; a video paused for
/// [`PAUSE_RETRY_MS`] tries again. Paused: when its video sends its minimal layer (see
/// [`minimal_layer`]), counting no evaluation in which its share is `rising` (climbing back
/// after a cut); resumed: once the share is above [`RESUME_ABOVE_KBPS`].
fn vote_pause(link: &mut LinkState, video: f64, rising: bool, now_ms: f64) {
    let retry_after = PAUSE_RETRY_MS * f64::from(1u32 << link.failed_retries.min(2));
    let retry = link.paused && now_ms - link.paused_at >= retry_after;
    minimal_layer(link, video);
    link.flip_votes = match (link.paused, link.minimal, rising) {
        (true, _, _) if video >= RESUME_ABOVE_KBPS || retry => link.flip_votes + 1,
        (true, _, _) | (false, false, _) => 0,
        (false, true, true) => link.flip_votes,
        (false, true, false) => link.flip_votes + 1,
    };
    let needed = if link.paused {
        EVALS_TO_RESUME
    } else {
        EVALS_TO_PAUSE
    };
    if link.flip_votes < needed {
        return;
    }
    link.flip_votes = 0;
    link.paused = !link.paused;
    link.paused_at = now_ms;
    // A retry resumes on the minimal layer, on its way to a pause again unless its share grew.
    link.minimal = !link.paused && video < MINIMAL_UNTIL_KBPS;
    link.over_minimal = 0;
    match (link.paused, retry) {
        // Paused again soon after a retry: the next retry waits twice as long (up to 4×).
        (true, _) if link.retrying => link.failed_retries += 1,
        (true, _) => {}
        (false, true) => link.retrying = true,
        (false, false) => link.failed_retries = 0,
    }
    if link.paused {
        link.retrying = false;
    }
}

/// Whether the link's video sends its minimal layer: from a share under
/// [`PAUSE_BELOW_KBPS`] until [`EVALS_TO_RESUME`] evaluations in a row at
/// [`MINIMAL_UNTIL_KBPS`] or more. A share that peaks there for one evaluation and is cut
/// for the loss it caused (two links on a 200 kbit/s uplink) stays on it, and pauses.
fn minimal_layer(link: &mut LinkState, video: f64) {
    if video < PAUSE_BELOW_KBPS {
        link.minimal = true;
        link.over_minimal = 0;
    } else if video >= MINIMAL_UNTIL_KBPS {
        link.over_minimal += 1;
        if link.over_minimal >= EVALS_TO_RESUME {
            link.minimal = false;
        }
    } else {
        link.over_minimal = 0;
    }
}

/// Whether `next` differs enough from what is applied to be applied.
/// `at_top`: `next` is all the link wants, which is applied however little it rises (a last
/// step under [`CHANGE_FRACTION`] would otherwise never come).
fn differs(applied: Option<&Encoding>, next: &Encoding, at_top: bool) -> bool {
    let Some(a) = applied else {
        return true;
    };
    let rate = f64::from(a.max_kbps).max(1.0);
    let rise = if at_top { 0.01 } else { CHANGE_FRACTION };
    a.active != next.active
        || a.audio_kbps != next.audio_kbps
        || a.height != next.height
        || a.max_fps != next.max_fps
        || a.screen != next.screen
        || f64::from(next.max_kbps) > rate * (1.0 + rise)
        || f64::from(next.max_kbps) < rate * (1.0 - DROP_FRACTION)
        || (a.scale_down - next.scale_down).abs() > 0.01
}

/// Shares `total` among links by weight, none above what it wants or can carry; what one
/// cannot use goes to the others.
fn water_fill(total: f64, wants: &[Want]) -> Vec<f64> {
    let mut shares = vec![0.0; wants.len()];
    let mut open: Vec<usize> = (0..wants.len()).collect();
    let mut left = total.max(0.0);
    while !open.is_empty() && left > 1e-6 {
        let weights: f64 = open.iter().map(|&i| wants[i].weight).sum();
        let mut capped = Vec::new();
        let mut given = 0.0;
        for &i in &open {
            let cap = wants[i].kbps.min(wants[i].carry);
            let fair = left * wants[i].weight / weights;
            let room = cap - shares[i];
            if room <= fair {
                shares[i] = cap;
                given += room.max(0.0);
                capped.push(i);
            }
        }
        if capped.is_empty() {
            for &i in &open {
                shares[i] += left * wants[i].weight / weights;
            }
            break;
        }
        left -= given;
        open.retain(|i| !capped.contains(i));
    }
    shares
}
