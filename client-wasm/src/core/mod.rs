//! The call's pure core: a state machine that takes signaling messages, local UI events and
//! the results of browser operations, and returns [`Command`]s for the web layer to execute.
//!
//! It holds every rule of the call, so they are tested natively with `cargo test`:
//! - the offerer rule: the newcomer offers to the members listed in `joined`; members answer;
//! - perfect negotiation (polite/impolite by client id) so renegotiation and glare can't
//!   deadlock: on an offer collision the impolite peer ignores the remote offer, the polite
//!   one rolls back and answers;
//! - ICE candidates that arrive before the peer exists or before its remote description is set
//!   are buffered and applied once it is;
//! - peer teardown on `user-left`, on leave and on reconnect;
//! - connection failure, the same on both sides: a connection that does not come up within
//!   [`CONNECT_TIMEOUT_MS`] (or fails), or whose ICE restarts do not bring it back, is given up
//!   with a reason ([`Unreachable`]) shown on its tile, and the other side is told, so both show
//!   the same state; `?relay=only` without a TURN server is refused up front;
//! - the status line follows the room's member count;
//! - signaling reconnects with exponential backoff and rejoins the room;
//! - the mesh send budget ([`budget`]): what each link sends, from its statistics and from
//!   how its receiver shows it (told over the data channel, [`PeerData`]).
//!
//! The core never touches the browser: the web layer (`web/`) turns commands into
//! RTCPeerConnection calls and DOM changes, and feeds their outcomes back as [`Event`]s.

pub mod budget;
pub mod panels;

use crate::i18n::{Text, Who};
use budget::{Budget, Change, Encoding, SendSample, Sent, View};
use litemap::LiteMap;
use panels::{Panel, Panels, Participant};
use protocol::{
    ClientId, ClientMessage, ErrorCode, IceServer, Payload, RoomId, ServerMessage, UserId,
};

/// First reconnect delay; doubled on every failed attempt up to [`RECONNECT_MAX_MS`].
pub const RECONNECT_BASE_MS: u32 = 500;
/// Longest reconnect delay.
pub const RECONNECT_MAX_MS: u32 = 10_000;

/// Which kind of session description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdpKind {
    /// An offer.
    Offer,
    /// An answer.
    Answer,
}

/// A local media kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    /// The microphone.
    Audio,
    /// The camera.
    Video,
}

/// What happens to the core: user actions, signaling, and results of browser operations.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The user asked to join `room`.
    Join(RoomId),
    /// The user asked to leave the room (hang up).
    Leave,
    /// The user toggled the microphone or camera.
    Toggle(MediaKind),
    /// The user opened or closed a side panel.
    TogglePanel(Panel),
    /// The user asked for a peer's tile shown large (or the grid again, when it is).
    ToggleFocus(ClientId),
    /// The signaling socket opened.
    SignalOpen,
    /// The signaling socket closed or failed to open.
    SignalClosed,
    /// The reconnect delay elapsed.
    ReconnectDue,
    /// A message from the relay.
    Signal(ServerMessage),
    /// A peer connection wants (re)negotiation (`negotiationneeded`).
    NegotiationNeeded(ClientId),
    /// A local description was created and set; send it.
    LocalDescription(ClientId, SdpKind, Payload),
    /// A remote description was applied.
    RemoteDescriptionSet(ClientId, SdpKind),
    /// Applying a description or creating one failed.
    NegotiationFailed(ClientId, String),
    /// A local ICE candidate (`None`: gathering finished).
    LocalCandidate(ClientId, Option<Payload>),
    /// A peer connection's state changed (`connectionstatechange`).
    PeerState(ClientId, PeerLink),
    /// The user sends a chat message (`time`: ms since the epoch, from the page's clock).
    ChatSend {
        /// The text.
        text: String,
        /// When it was sent.
        time: f64,
    },
    /// A peer's chat data channel opened (`true`) or closed (`false`).
    ChatChannel(ClientId, bool),
    /// A message arrived on a peer's data channel (the JSON text of a [`PeerData`]).
    ChannelData(ClientId, String),
    /// A peer link's sending side was sampled.
    SendStats(ClientId, SendSample),
    /// How this page shows a peer's video now: its tile's height in device pixels, whether
    /// the peer is speaking (whether it is focused, the core knows: see
    /// [`Event::ToggleFocus`]).
    Viewed(ClientId, View),
    /// The user pressed the data-saver button.
    DataSaverToggle,
    /// The user pressed the screen-share button.
    ShareToggle,
    /// Screen sharing ended (stopped by the browser's own control, or it could not start).
    ShareEnded,
    /// The user pressed the record button.
    RecordToggle,
    /// Recording ended without the user (it could not start, or the recorder stopped on its
    /// own), or its file is ready.
    RecordingEnded,
    /// The deadline set by [`Command::WatchPeer`] passed.
    PeerDeadline(ClientId, u32),
    /// Local media settled: whether there is a microphone and a camera track to send.
    LocalMedia {
        /// A microphone track.
        audio: bool,
        /// A camera track.
        video: bool,
    },
}

/// What a peer connection's state means for the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerLink {
    /// Media flows.
    Connected,
    /// Connectivity was lost; the browser may still recover on its own.
    Disconnected,
    /// Connectivity failed: an ICE restart may bring it back.
    Failed,
}

/// ICE restarts tried for a failed connection before it is given up.
pub const MAX_ICE_RESTARTS: u32 = 2;

/// How long a new connection, or an ICE restart, may take to connect before it counts as
/// failed. Browsers take 30 s or more to call ICE failed; a call across NATs connects in well
/// under a second, and over a bad link (200 ms RTT, 5 % loss) in two or three.
pub const CONNECT_TIMEOUT_MS: u32 = 12_000;

/// How long a connection that worked may stay disconnected before it counts as failed (and
/// is restarted): browsers wait 30 s or more to call it failed.
pub const DISCONNECTED_TIMEOUT_MS: u32 = 12_000;

/// Why a peer could not be reached: the state both pages show on its tile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreachable {
    /// It worked, then the path went and ICE restarts did not bring it back.
    Lost,
    /// No direct path and no TURN server to relay through.
    NeedsTurn,
    /// No path, even through the TURN server.
    EvenThroughTurn,
    /// Relay-only mode (`?relay=only`) without a TURN server: nothing can connect.
    RelayOnlyWithoutTurn,
}

impl Unreachable {
    /// The name sent to the other side (and the tile's `data-failed`).
    pub fn wire(self) -> &'static str {
        match self {
            Unreachable::Lost => "lost",
            Unreachable::NeedsTurn => "needs-turn",
            Unreachable::EvenThroughTurn => "even-through-turn",
            Unreachable::RelayOnlyWithoutTurn => "relay-only-without-turn",
        }
    }

    fn from_wire(s: &str) -> Option<Unreachable> {
        [
            Unreachable::Lost,
            Unreachable::NeedsTurn,
            Unreachable::EvenThroughTurn,
            Unreachable::RelayOnlyWithoutTurn,
        ]
        .into_iter()
        .find(|u| u.wire() == s)
    }
}

/// What tells the other side that this one gave their connection up, sent as the relay's
/// `message` content: `{"peerFailed": reason, "ufrag": …}`. `ufrag` is the ICE user fragment
/// of the receiver's side of that connection (from its last description): a notice about an
/// older connection (one it has restarted or made again since) is ignored.
#[derive(serde::Serialize, serde::Deserialize)]
struct PeerFailedNotice {
    #[serde(rename = "peerFailed")]
    peer_failed: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ufrag: Option<String>,
}

/// A received description's SDP, where it is an object.
#[derive(serde::Deserialize)]
struct SdpOf {
    sdp: String,
}

/// The SDP text in a received description payload: an object with `sdp` (`{"type",
/// "sdp"}`), or a bare string.
pub fn description_sdp(payload: &Payload) -> Option<String> {
    payload
        .parse::<String>()
        .or_else(|_| payload.parse::<SdpOf>().map(|d| d.sdp))
        .ok()
}

/// The ICE user fragment (`a=ice-ufrag:`) of a description payload.
fn ice_ufrag(description: &Payload) -> Option<String> {
    let sdp = description_sdp(description)?;
    sdp.lines()
        .find_map(|l| l.trim().strip_prefix("a=ice-ufrag:"))
        .map(|u| u.trim().to_owned())
}

/// Which ICE servers the page has, for telling up front what cannot connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IcePolicy {
    /// Only relayed candidates (`?relay=only`).
    pub relay_only: bool,
    /// The page chose its ICE servers (`?ice=`): the relay's are not used.
    pub from_page: bool,
    /// The page's own ICE servers include a TURN server.
    pub page_turn: bool,
}

/// The highest number added to a display name another member of the room has ("Ann (9)").
pub const MAX_NAME_SUFFIX: u32 = 9;

/// One chat message as it travels (data channel, or the relay's `message` as fallback):
/// `{"chat": text, "name": sender's name, "time": ms since the epoch}`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChatLine {
    /// The text.
    pub chat: String,
    /// The sender's display name.
    pub name: String,
    /// When it was sent, ms since the epoch (the sender's clock).
    pub time: f64,
}

/// What the web layer must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Open the signaling socket, resuming the session of this token when there is one.
    Connect(Option<String>),
    /// Call back with [`Event::ReconnectDue`] after this many milliseconds.
    ScheduleReconnect(u32),
    /// Send a message to the relay.
    Send(ClientMessage),
    /// Create a peer connection and its tile. `offerer`: attach local tracks now (so that
    /// `negotiationneeded` fires and an offer follows); otherwise attach them once the remote
    /// offer is applied, so the answer carries them.
    CreatePeer {
        /// The remote client.
        id: ClientId,
        /// The label of its tile.
        label: Who,
        /// Whether this side offers first.
        offerer: bool,
    },
    /// Close a peer connection and remove its tile.
    ClosePeer(ClientId),
    /// Create an offer and set it as the local description.
    CreateOffer(ClientId),
    /// Create an answer and set it as the local description.
    CreateAnswer(ClientId),
    /// Apply a remote description (rolling back a local offer first when needed).
    SetRemoteDescription(ClientId, SdpKind, Payload),
    /// Add a remote ICE candidate.
    AddCandidate(ClientId, Payload),
    /// Enable or disable local tracks of a kind.
    SetTrackEnabled(MediaKind, bool),
    /// Show this connection status.
    Status(Text),
    /// Show a short notice that goes away by itself (someone joined or left).
    Toast(Text),
    /// Show the side panels this way (which is open, the chat's unread count).
    ShowPanels(Panels),
    /// Show this peer's tile large, the others small (`None`: every tile alike).
    ShowFocus(Option<ClientId>),
    /// List who is in the call (this page first) in the participants panel.
    ShowParticipants(Vec<Participant>),
    /// Use these ICE servers for new peer connections (from the relay's `welcome`).
    UseIceServers(Vec<IceServer>),
    /// Send text on a peer's data channel.
    SendChannelData(ClientId, String),
    /// Encode the video sent to a peer this way (`RTCRtpSender.setParameters`).
    SetEncoding(ClientId, Encoding),
    /// Show on a peer's tile what is sent to it.
    ShowSent(ClientId, Sent),
    /// Show on a peer's tile that it paused its video to this page for lack of bandwidth.
    ShowRemotePaused(ClientId, bool),
    /// Show on a peer's tile whether its microphone and camera are on.
    ShowPeerMedia(ClientId, MediaState),
    /// Show whether data saver is on.
    ShowDataSaver(bool),
    /// Ask for a screen and send it instead of the camera on every peer connection.
    StartShare,
    /// Stop sharing the screen and send the camera again.
    StopShare,
    /// Start recording the call locally.
    StartRecording,
    /// Stop recording and offer the file.
    StopRecording,
    /// Restart ICE on a peer connection (it renegotiates with new credentials).
    RestartIce(ClientId),
    /// Show whether a peer's connection is reconnecting.
    PeerReconnecting(ClientId, bool),
    /// Call back with [`Event::PeerDeadline`] (with this attempt) after this many ms, unless
    /// the peer is closed first.
    WatchPeer(ClientId, u32, u32),
    /// Close a peer's connection but keep its tile, showing why it cannot be reached.
    PeerFailed(ClientId, Unreachable),
    /// Show a chat message.
    ShowChat {
        /// The message.
        line: ChatLine,
        /// Who sent it, and how it came.
        from: ChatFrom,
    },
}

/// What peers tell each other over the data channel (or the relay's `message` when it is
/// not open), besides chat.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(untagged, try_from = "PeerDataWire")]
pub enum PeerData {
    /// The receiver shows the sender's video this way: `{"view": {"height", "focused",
    /// "speaking"}}`.
    View {
        /// How.
        view: ViewHint,
    },
    /// The sender paused (`"paused"`) or resumed (`"resumed"`) its video to the receiver:
    /// `{"video": "paused", "why": "bandwidth"}`.
    Video {
        /// `paused` or `resumed`.
        video: String,
        /// Why (`bandwidth`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        why: Option<String>,
    },
    /// The sender's microphone and camera: told to each peer when its data channel opens,
    /// and to all on every change.
    Media {
        /// Which are on.
        media: MediaState,
    },
}

/// A [`PeerData`] as read: its one key says which it is (read through this struct, not as
/// an untagged enum, whose buffering of every input costs the page's bundle ~10 KB).
#[derive(serde::Deserialize)]
struct PeerDataWire {
    view: Option<ViewHint>,
    video: Option<String>,
    why: Option<String>,
    media: Option<MediaState>,
}

impl TryFrom<PeerDataWire> for PeerData {
    type Error = &'static str;

    fn try_from(w: PeerDataWire) -> Result<PeerData, &'static str> {
        match (w.view, w.video, w.media) {
            (Some(view), _, _) => Ok(PeerData::View { view }),
            (None, Some(video), _) => Ok(PeerData::Video { video, why: w.why }),
            (None, None, Some(media)) => Ok(PeerData::Media { media }),
            (None, None, None) => Err("neither view, video nor media"),
        }
    }
}

/// Whether a page's microphone and camera are on, as the others show it on its tile:
/// `{"media": {"mic": true, "cam": false}}` (off also when it has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MediaState {
    /// The microphone sends sound.
    pub mic: bool,
    /// The camera sends pictures.
    pub cam: bool,
}

/// The wire form of a [`View`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ViewHint {
    /// The tile's height, device pixels.
    pub height: u32,
    /// Whether the tile is focused.
    #[serde(default)]
    pub focused: bool,
    /// Whether the sender is the active speaker.
    #[serde(default)]
    pub speaking: bool,
}

/// The longest tile height a receiver can claim (a hint is only a hint).
const MAX_VIEW_HEIGHT: u32 = 4320;

impl From<ViewHint> for View {
    fn from(h: ViewHint) -> View {
        View {
            height: h.height.min(MAX_VIEW_HEIGHT),
            focused: h.focused,
            speaking: h.speaking,
        }
    }
}

/// Where a shown chat line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatFrom {
    /// Typed on this page.
    Me,
    /// From a peer, over its data channel.
    Channel,
    /// From a peer, through the relay (its channel to this page was not open).
    Relay,
}

/// Negotiation state of one peer, mirroring the RTCPeerConnection's signaling state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signaling {
    Stable,
    HaveLocalOffer,
    HaveRemoteOffer,
}

/// One remote peer.
#[derive(Debug)]
struct Peer {
    polite: bool,
    signaling: Signaling,
    making_offer: bool,
    ignore_offer: bool,
    /// Whether a remote description has been applied (candidates can be added).
    remote_set: bool,
    /// Candidates waiting for the remote description.
    pending: Vec<Payload>,
    /// Whether the chat data channel is open.
    chat_open: bool,
    /// ICE restarts tried since the connection last worked.
    restarts: u32,
    /// Whether the connection is up now, and whether it ever was.
    up: bool,
    ever_up: bool,
    /// The attempt watched now (see [`Core::next_watch`]): a deadline of another one is stale.
    attempt: u32,
    /// The ICE user fragments of this side's last two descriptions (an offer may still be
    /// unanswered, or rolled back), and of the other side's last one.
    local_ufrags: Vec<String>,
    remote_ufrag: Option<String>,
    /// The other side's ICE user fragment on the connection this one replaced: an offer
    /// still carrying it (it waited at the relay) belongs to that dead connection.
    stale_ufrag: Option<String>,
}

/// A connection given up: why, and the other side's ICE user fragment on it.
#[derive(Debug)]
struct Gone {
    why: Unreachable,
    remote_ufrag: Option<String>,
}

/// Connection to the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Down,
    Connecting,
    Up,
}

/// The state of the call.
#[derive(Debug)]
pub struct Core {
    link: Link,
    me: Option<ClientId>,
    /// The room the user wants to be in (kept across reconnects).
    room: Option<RoomId>,
    /// Whether the relay confirmed the room.
    in_room: bool,
    peers: LiteMap<ClientId, Peer>,
    /// Members whose connection was given up, and why (their tiles say so).
    failed: LiteMap<ClientId, Gone>,
    /// Numbers every watched attempt of every connection, never reset, so that a deadline
    /// meant for a connection that was closed meanwhile never applies to the next one.
    watches: u32,
    /// The page's ICE servers, and whether a TURN server is known (the page's or the relay's).
    ice: IcePolicy,
    turn: bool,
    /// Candidates from clients we have no peer connection for yet.
    early: LiteMap<ClientId, Vec<Payload>>,
    names: LiteMap<ClientId, UserId>,
    user_name: Option<UserId>,
    /// The number added to the name ("Ann (2)") while the relay says another member of the
    /// room already has it (0: none).
    name_suffix: u32,
    /// The room password sent with `join`.
    password: Option<String>,
    /// The relay's token for resuming this session after a dropped socket.
    resume_token: Option<String>,
    mic_on: bool,
    cam_on: bool,
    /// Which local tracks there are (until media settles: both, as asked for).
    has_media: MediaState,
    sharing: bool,
    recording: bool,
    attempt: u32,
    /// What each link sends (see [`budget`]).
    budget: Budget,
    /// The view of each peer's video last told to it.
    views_told: LiteMap<ClientId, View>,
    /// The page's own send ceiling and the relay's (from `welcome`), kbit/s: the lower holds.
    page_ceiling: Option<u32>,
    relay_ceiling: Option<u32>,
    /// The side panels, and each peer's microphone and camera as it last told them.
    panels: Panels,
    peer_media: LiteMap<ClientId, MediaState>,
    /// The peer whose tile is shown large.
    focused: Option<ClientId>,
}

impl Default for Core {
    fn default() -> Self {
        Core::new(None)
    }
}

impl Core {
    /// A core that has not connected yet; `user_name` is sent with `register`.
    pub fn new(user_name: Option<UserId>) -> Self {
        Core {
            link: Link::Down,
            me: None,
            room: None,
            in_room: false,
            peers: LiteMap::new(),
            failed: LiteMap::new(),
            watches: 0,
            ice: IcePolicy::default(),
            turn: false,
            early: LiteMap::new(),
            names: LiteMap::new(),
            user_name,
            name_suffix: 0,
            password: None,
            resume_token: None,
            mic_on: true,
            cam_on: true,
            has_media: MediaState {
                mic: true,
                cam: true,
            },
            sharing: false,
            recording: false,
            attempt: 0,
            budget: Budget::new(),
            views_told: LiteMap::new(),
            page_ceiling: None,
            relay_ceiling: None,
            panels: Panels::default(),
            peer_media: LiteMap::new(),
            focused: None,
        }
    }

    /// Sets the most this page sends over all its links, kbit/s (the page's configuration;
    /// the relay's ceiling, when lower, still holds).
    pub fn set_send_ceiling(&mut self, kbps: Option<u32>) {
        self.page_ceiling = kbps.filter(|k| *k > 0);
        self.apply_ceiling();
    }

    /// Gives the budget the lower of the page's and the relay's ceilings.
    fn apply_ceiling(&mut self) {
        let lower = match (self.page_ceiling, self.relay_ceiling) {
            (Some(p), Some(r)) => Some(p.min(r)),
            (p, r) => p.or(r),
        };
        self.budget.set_ceiling(lower);
    }

    /// Turns the send budget off or on (see [`Budget::set_enabled`]).
    pub fn set_budget_enabled(&mut self, on: bool) {
        self.budget.set_enabled(on);
    }

    /// Sets the display name sent with `register` (on the next connection, or at once when
    /// connected and it changed).
    pub fn set_user_name(&mut self, name: Option<UserId>) -> Vec<Command> {
        if name == self.user_name {
            return Vec::new();
        }
        self.user_name = name;
        self.name_suffix = 0;
        match (self.registered_name(), self.link) {
            (Some(name), Link::Up) => {
                vec![Command::Send(ClientMessage::Register {
                    user_id: Some(name),
                })]
            }
            _ => Vec::new(),
        }
    }

    /// The name sent with `register`: the display name, with its number when the room holds
    /// it already ("Ann (2)"; shortened to fit an id when need be).
    fn registered_name(&self) -> Option<UserId> {
        let name = self.user_name.as_ref()?;
        if self.name_suffix == 0 {
            return Some(name.clone());
        }
        let tail = format!(" ({})", self.name_suffix);
        let keep = protocol::MAX_ID_CHARS - tail.chars().count();
        let head: String = name.as_str().chars().take(keep).collect();
        UserId::new(head + &tail).ok()
    }

    /// The relay refused to let this name into the room: joins again with the next number,
    /// up to "(9)".
    fn name_taken(&mut self, out: &mut Vec<Command>) {
        let (Some(name), Some(room)) = (self.user_name.clone(), self.room.clone()) else {
            self.room = None;
            out.push(Command::Status(Text::IdTaken));
            return;
        };
        if self.name_suffix >= MAX_NAME_SUFFIX {
            self.room = None;
            out.push(Command::Status(Text::NameTaken(name.to_string())));
            return;
        }
        self.name_suffix = self.name_suffix.max(1) + 1;
        let Some(numbered) = self.registered_name() else {
            return;
        };
        out.push(Command::Status(Text::JoiningAs {
            name: name.to_string(),
            numbered: numbered.to_string(),
        }));
        out.push(Command::Send(ClientMessage::Register {
            user_id: Some(numbered),
        }));
        out.push(Command::Send(ClientMessage::Join {
            room_id: room,
            password: self.password.clone(),
        }));
    }

    /// Sets the page's ICE servers (before joining).
    pub fn set_ice_policy(&mut self, ice: IcePolicy) {
        self.ice = ice;
        self.turn = ice.page_turn;
    }

    /// Why a connection that cannot come up fails, with the ICE servers at hand.
    fn unreachable(&self) -> Unreachable {
        match (self.ice.relay_only, self.turn) {
            (true, false) => Unreachable::RelayOnlyWithoutTurn,
            (_, true) => Unreachable::EvenThroughTurn,
            (false, false) => Unreachable::NeedsTurn,
        }
    }

    /// The status line for the room and its member count.
    fn room_status(&self, out: &mut Vec<Command>) {
        let (Some(room), true) = (&self.room, self.in_room) else {
            return;
        };
        out.push(Command::Status(Text::InRoom {
            room: room.to_string(),
            others: self.names.len(),
            // Said as long as it holds, not once and overwritten.
            relay_only_without_turn: self.ice.relay_only && !self.turn,
        }));
        self.show_participants(out);
    }

    /// Lists who is in the call: this page, then the others by name (in a room, or joining
    /// one).
    fn show_participants(&self, out: &mut Vec<Command>) {
        if self.room.is_none() {
            return;
        }
        let me = Participant {
            who: None,
            media: Some(self.media_state()),
        };
        let mut others: Vec<Participant> = self
            .names
            .keys()
            .map(|id| Participant {
                who: Some(self.label(id)),
                media: self.peer_media.get(id).copied(),
            })
            .collect();
        others.sort_by_key(|p| p.who.clone());
        out.push(Command::ShowParticipants(
            std::iter::once(me).chain(others).collect(),
        ));
    }

    /// A chat line to show; one from someone else is unread while the chat is closed.
    fn show_chat(&mut self, line: ChatLine, from: ChatFrom, out: &mut Vec<Command>) {
        out.push(Command::ShowChat { line, from });
        if from != ChatFrom::Me && self.panels.chat_came() {
            out.push(Command::ShowPanels(self.panels));
        }
    }

    /// A fresh number for a watched attempt.
    fn next_watch(&mut self) -> u32 {
        self.watches = self.watches.wrapping_add(1);
        self.watches
    }

    /// Gives the connection to `id` up: it is closed, its tile says why, and (when `tell`)
    /// the other side is told, so that it shows the same.
    fn give_up(&mut self, id: ClientId, why: Unreachable, tell: bool, out: &mut Vec<Command>) {
        let remote_ufrag = self.peers.remove(&id).and_then(|p| p.remote_ufrag);
        if tell {
            self.tell_failed(&id, why, remote_ufrag.clone(), out);
        }
        self.failed.insert(id.clone(), Gone { why, remote_ufrag });
        out.push(Command::Status(Text::PeerUnreachable(self.label(&id), why)));
        out.push(Command::PeerFailed(id, why));
    }

    /// Tells `id` that its connection (the one where its ICE user fragment is `ufrag`) was
    /// given up here, when the relay can carry it.
    fn tell_failed(
        &self,
        id: &ClientId,
        why: Unreachable,
        ufrag: Option<String>,
        out: &mut Vec<Command>,
    ) {
        if self.link != Link::Up || !self.in_room {
            return;
        }
        let notice = PeerFailedNotice {
            peer_failed: why.wire().to_owned(),
            ufrag,
        };
        let json = serde_json::to_string(&notice).expect("a notice serializes");
        out.push(Command::Send(ClientMessage::Message {
            target_id: Some(id.clone()),
            content: Payload::from_json(json).expect("valid JSON"),
        }));
    }

    /// After a resumed session: connections given up while away are told so (the relay may
    /// not have carried it) and called again, as a newcomer would; connections not up restart
    /// ICE on the connection they have. Those that are up go on untouched.
    fn call_again(&mut self, out: &mut Vec<Command>) {
        for (id, gone) in std::mem::take(&mut self.failed) {
            self.tell_failed(&id, gone.why, gone.remote_ufrag.clone(), out);
            self.close_peer(&id, out);
            // Candidates that waited for it belong to the dead connection.
            self.early.remove(&id);
            self.create_peer(id.clone(), true, out);
            if let Some(peer) = self.peers.get_mut(&id) {
                peer.stale_ufrag = gone.remote_ufrag;
            }
        }
        let down: Vec<ClientId> = self
            .peers
            .iter()
            .filter(|(_, p)| !p.up && p.remote_set)
            .map(|(id, _)| id.clone())
            .collect();
        for id in down {
            let attempt = self.next_watch();
            if let Some(peer) = self.peers.get_mut(&id) {
                peer.attempt = attempt;
            }
            out.push(Command::RestartIce(id.clone()));
            out.push(Command::WatchPeer(id, attempt, CONNECT_TIMEOUT_MS));
        }
    }

    /// A connection that did not come up, or went down for good: restarted while restarts
    /// may help (it worked before), else given up.
    fn peer_failed(&mut self, id: ClientId, out: &mut Vec<Command>) {
        let relay_up = self.link == Link::Up;
        let attempt = self.next_watch();
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        peer.up = false;
        if peer.ever_up && peer.restarts < MAX_ICE_RESTARTS && relay_up {
            peer.restarts += 1;
            peer.attempt = attempt;
            out.push(Command::PeerReconnecting(id.clone(), true));
            out.push(Command::RestartIce(id.clone()));
            out.push(Command::WatchPeer(id, attempt, CONNECT_TIMEOUT_MS));
        } else {
            let why = if peer.ever_up {
                Unreachable::Lost
            } else {
                self.unreachable()
            };
            self.give_up(id, why, true, out);
        }
    }

    /// Sets the room password sent with the next joins (`None`: no password).
    pub fn set_password(&mut self, password: Option<String>) {
        self.password = password.filter(|p| !p.is_empty());
    }

    /// This client's id, once welcomed.
    pub fn me(&self) -> Option<&ClientId> {
        self.me.as_ref()
    }

    /// The remote peers, by id.
    pub fn peer_ids(&self) -> impl Iterator<Item = &ClientId> {
        self.peers.keys()
    }

    /// Whether the screen is being shared.
    pub fn sharing(&self) -> bool {
        self.sharing
    }

    /// Whether the microphone / camera are on.
    pub fn media_on(&self, kind: MediaKind) -> bool {
        match kind {
            MediaKind::Audio => self.mic_on,
            MediaKind::Video => self.cam_on,
        }
    }

    /// Candidates buffered for `id` (for tests and diagnostics).
    pub fn buffered_candidates(&self, id: &ClientId) -> usize {
        self.peers.get(id).map_or(0, |p| p.pending.len()) + self.early.get(id).map_or(0, Vec::len)
    }

    /// Handles one event and returns the commands it causes, in order.
    pub fn handle(&mut self, event: Event) -> Vec<Command> {
        let mut out = Vec::new();
        match event {
            Event::Join(room) => self.on_join(room, &mut out),
            Event::Leave => self.on_leave(&mut out),
            Event::Toggle(kind) => self.on_toggle(kind, &mut out),
            Event::TogglePanel(panel) => {
                self.panels.toggle(panel);
                out.push(Command::ShowPanels(self.panels));
            }
            Event::ToggleFocus(id) => self.on_toggle_focus(id, &mut out),
            Event::LocalMedia { audio, video } => self.on_local_media(audio, video, &mut out),
            Event::SignalOpen => {
                self.link = Link::Up;
                self.attempt = 0;
                out.push(Command::Status(Text::ConnectedToRelay));
            }
            Event::SignalClosed => self.on_signal_closed(&mut out),
            Event::ReconnectDue => {
                if self.link == Link::Connecting && self.room.is_some() {
                    out.push(Command::Connect(self.resume_token.clone()));
                }
            }
            Event::Signal(msg) => self.on_signal(msg, &mut out),
            Event::NegotiationNeeded(id) => self.on_negotiation_needed(id, &mut out),
            Event::LocalDescription(id, kind, sdp) => {
                self.on_local_description(id, kind, sdp, &mut out)
            }
            Event::RemoteDescriptionSet(id, kind) => {
                self.on_remote_description_set(id, kind, &mut out)
            }
            Event::NegotiationFailed(id, why) => self.on_negotiation_failed(id, why, &mut out),
            Event::LocalCandidate(id, candidate) => {
                self.on_local_candidate(id, candidate, &mut out)
            }
            Event::ChatSend { text, time } => self.on_chat_send(text, time, &mut out),
            Event::ShareToggle => self.on_share_toggle(&mut out),
            Event::RecordToggle => self.on_record_toggle(&mut out),
            Event::ShareEnded => {
                if std::mem::take(&mut self.sharing) {
                    self.budget.set_screen(false);
                    out.push(Command::StopShare);
                }
            }
            Event::RecordingEnded => {
                if std::mem::take(&mut self.recording) {
                    out.push(Command::StopRecording);
                }
            }
            Event::ChatChannel(id, open) => self.on_chat_channel(id, open, &mut out),
            Event::ChannelData(id, text) => self.on_channel_data(id, &text, &mut out),
            Event::SendStats(id, sample) => self.on_send_stats(id, sample, &mut out),
            Event::Viewed(id, view) => self.on_viewed(id, view, &mut out),
            Event::DataSaverToggle => {
                let on = !self.budget.data_saver();
                self.budget.set_data_saver(on);
                out.push(Command::ShowDataSaver(on));
            }
            Event::PeerState(id, link) => self.on_peer_link(id, link, &mut out),
            Event::PeerDeadline(id, attempt) => self.on_peer_deadline(id, attempt, &mut out),
        }
        // The budget shares the uplink among the links there are now.
        self.budget.keep_only(self.peers.keys());
        self.views_told.retain(|id, _| self.peers.contains_key(id));
        out
    }

    /// The microphone or camera button: the track is turned on or off, the peers told.
    fn on_toggle(&mut self, kind: MediaKind, out: &mut Vec<Command>) {
        let on = match kind {
            MediaKind::Audio => &mut self.mic_on,
            MediaKind::Video => &mut self.cam_on,
        };
        *on = !*on;
        out.push(Command::SetTrackEnabled(kind, *on));
        self.tell_media_state(None, out);
        self.show_participants(out);
    }

    /// Local media settled: the peers are told which devices there are.
    fn on_local_media(&mut self, audio: bool, video: bool, out: &mut Vec<Command>) {
        self.has_media = MediaState {
            mic: audio,
            cam: video,
        };
        self.tell_media_state(None, out);
    }

    /// Negotiating with a peer failed: said in the status line.
    fn on_negotiation_failed(&mut self, id: ClientId, why: String, out: &mut Vec<Command>) {
        if let Some(peer) = self.peers.get_mut(&id) {
            peer.making_offer = false;
        }
        out.push(Command::Status(Text::NegotiationFailed {
            id: id.to_string(),
            why,
        }));
    }

    /// A local ICE candidate (or the end of them) goes to the peer through the relay.
    fn on_local_candidate(
        &mut self,
        id: ClientId,
        candidate: Option<Payload>,
        out: &mut Vec<Command>,
    ) {
        if self.peers.contains_key(&id) && self.link == Link::Up {
            let candidate = candidate.unwrap_or_else(null_payload);
            out.push(Command::Send(ClientMessage::Candidate {
                target_id: id,
                candidate,
            }));
        }
    }

    /// The screen-share button: sharing starts or stops.
    fn on_share_toggle(&mut self, out: &mut Vec<Command>) {
        self.sharing = !self.sharing;
        self.budget.set_screen(self.sharing);
        out.push(if self.sharing {
            Command::StartShare
        } else {
            Command::StopShare
        });
    }

    /// The record button: recording starts or stops.
    fn on_record_toggle(&mut self, out: &mut Vec<Command>) {
        self.recording = !self.recording;
        out.push(if self.recording {
            Command::StartRecording
        } else {
            Command::StopRecording
        });
    }

    /// A peer's data channel opened or closed: once open, it is told this page's media.
    fn on_chat_channel(&mut self, id: ClientId, open: bool, out: &mut Vec<Command>) {
        if let Some(peer) = self.peers.get_mut(&id) {
            peer.chat_open = open;
            if open {
                self.tell_media_state(Some(&id), out);
            }
        }
    }

    /// A connection's deadline passed: if that attempt is still not up, it failed.
    fn on_peer_deadline(&mut self, id: ClientId, attempt: u32, out: &mut Vec<Command>) {
        let due = self
            .peers
            .get(&id)
            .is_some_and(|p| p.attempt == attempt && !p.up);
        if due {
            self.peer_failed(id, out);
        }
    }

    /// Joins `room`: at once when connected (leaving any calls), else once connected.
    fn on_join(&mut self, room: RoomId, out: &mut Vec<Command>) {
        self.room = Some(room.clone());
        match self.link {
            Link::Up => {
                self.close_all(out);
                let password = self.password.clone();
                out.push(Command::Send(ClientMessage::Join {
                    room_id: room,
                    password,
                }));
            }
            Link::Down => {
                self.link = Link::Connecting;
                out.push(Command::Status(Text::Connecting));
                out.push(Command::Connect(None));
            }
            Link::Connecting => {}
        }
    }

    /// Leaves the room and ends every call.
    fn on_leave(&mut self, out: &mut Vec<Command>) {
        if let Some(room) = self.room.take() {
            if self.link == Link::Up && self.in_room {
                out.push(Command::Send(ClientMessage::Leave {
                    room_id: Some(room),
                }));
            }
        }
        self.in_room = false;
        self.close_all(out);
        self.panels.reset();
        self.peer_media.clear();
        out.push(Command::ShowPanels(self.panels));
        out.push(Command::Status(Text::LeftCall));
    }

    /// The signaling socket closed: in a room, reconnect after a growing delay.
    fn on_signal_closed(&mut self, out: &mut Vec<Command>) {
        let was = self.link;
        self.link = Link::Down;
        self.in_room = false;
        if self.room.is_some() {
            // Calls in progress keep their media; peers are replaced after rejoining.
            let delay = reconnect_delay(self.attempt);
            self.attempt = self.attempt.saturating_add(1);
            self.link = Link::Connecting;
            out.push(Command::Status(Text::RelayLost {
                was_up: was == Link::Up,
                seconds: f64::from(delay) / 1000.0,
            }));
            out.push(Command::ScheduleReconnect(delay));
        } else {
            out.push(Command::Status(Text::Disconnected));
        }
    }

    /// A peer connection wants (re)negotiation: an offer, when stable.
    fn on_negotiation_needed(&mut self, id: ClientId, out: &mut Vec<Command>) {
        if let Some(peer) = self.peers.get_mut(&id) {
            // Only start an offer from a stable state; a renegotiation wanted during
            // one fires again once stable.
            if peer.signaling == Signaling::Stable && !peer.making_offer {
                peer.making_offer = true;
                out.push(Command::CreateOffer(id));
            }
        }
    }

    /// A local description is set: it is sent, and its ICE user fragment kept.
    fn on_local_description(
        &mut self,
        id: ClientId,
        kind: SdpKind,
        sdp: Payload,
        out: &mut Vec<Command>,
    ) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        if let Some(ufrag) = ice_ufrag(&sdp) {
            if peer.local_ufrags.len() == 2 {
                peer.local_ufrags.remove(0);
            }
            peer.local_ufrags.push(ufrag);
        }
        match kind {
            SdpKind::Offer => {
                peer.making_offer = false;
                peer.signaling = Signaling::HaveLocalOffer;
                out.push(Command::Send(ClientMessage::Offer { target_id: id, sdp }));
            }
            SdpKind::Answer => {
                peer.signaling = Signaling::Stable;
                out.push(Command::Send(ClientMessage::Answer { target_id: id, sdp }));
            }
        }
    }

    /// A remote description is applied: buffered candidates follow, an offer is answered.
    fn on_remote_description_set(&mut self, id: ClientId, kind: SdpKind, out: &mut Vec<Command>) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        peer.remote_set = true;
        for c in peer.pending.drain(..) {
            out.push(Command::AddCandidate(id.clone(), c));
        }
        match kind {
            SdpKind::Offer => out.push(Command::CreateAnswer(id)),
            SdpKind::Answer => peer.signaling = Signaling::Stable,
        }
    }

    /// Sends a chat line to everyone in the room (data channel, else the relay) and shows it.
    fn on_chat_send(&mut self, text: String, time: f64, out: &mut Vec<Command>) {
        let name = match (&self.user_name, &self.me) {
            (Some(name), _) => name.to_string(),
            (None, Some(me)) => format!("peer {me}"),
            (None, None) => "you".to_owned(),
        };
        let line = ChatLine {
            chat: text,
            name,
            time,
        };
        let json = serde_json::to_string(&line).expect("a chat line serializes");
        // Everyone known in the room: members whose peer connection is not even made
        // yet (they just joined) get it through the relay too.
        let mut members: LiteMap<&ClientId, ()> = LiteMap::new();
        for id in self.peers.keys().chain(self.names.keys()) {
            members.insert(id, ());
        }
        for (id, ()) in members {
            if self.peers.get(id).is_some_and(|p| p.chat_open) {
                out.push(Command::SendChannelData(id.clone(), json.clone()));
            } else if self.link == Link::Up && self.in_room {
                // Not open yet (or closed): the relay carries it, so nothing is lost.
                let content = Payload::from_json(json.clone()).expect("valid JSON");
                out.push(Command::Send(ClientMessage::Message {
                    target_id: Some(id.clone()),
                    content,
                }));
            }
        }
        out.push(Command::ShowChat {
            line,
            from: ChatFrom::Me,
        });
    }

    /// A message on a peer's data channel: peer data, or a chat line.
    fn on_channel_data(&mut self, id: ClientId, text: &str, out: &mut Vec<Command>) {
        if let Ok(data) = serde_json::from_str::<PeerData>(text) {
            self.on_peer_data(id, data, out);
        } else if let Ok(line) = serde_json::from_str::<ChatLine>(text) {
            self.show_chat(line, ChatFrom::Channel, out);
        }
    }

    /// A peer connection's state changed: up, reconnecting (with a deadline), or failed.
    fn on_peer_link(&mut self, id: ClientId, link: PeerLink, out: &mut Vec<Command>) {
        let attempt = self.next_watch();
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        match link {
            PeerLink::Connected => {
                peer.restarts = 0;
                peer.up = true;
                peer.ever_up = true;
                // Whatever deadline is pending was for an attempt that succeeded.
                peer.attempt = attempt;
                out.push(Command::PeerReconnecting(id, false));
            }
            PeerLink::Disconnected => {
                peer.up = false;
                // It may come back on its own; if not soon, it is treated as failed.
                peer.attempt = attempt;
                out.push(Command::PeerReconnecting(id.clone(), true));
                out.push(Command::WatchPeer(id, attempt, DISCONNECTED_TIMEOUT_MS));
            }
            PeerLink::Failed => self.peer_failed(id, out),
        }
    }

    /// A link was sampled: its tile shows what it sends, and the budget is evaluated when due.
    fn on_send_stats(&mut self, id: ClientId, sample: SendSample, out: &mut Vec<Command>) {
        if !self.peers.get(&id).is_some_and(|p| p.up) {
            return;
        }
        if let Some(sent) = self.budget.sample(&id, sample) {
            out.push(Command::ShowSent(id, sent));
        }
        for change in self.budget.evaluate(sample.at_ms) {
            match change {
                Change::Encode(id, encoding) => out.push(Command::SetEncoding(id, encoding)),
                Change::Paused(id, paused) => {
                    let data = PeerData::Video {
                        video: if paused { "paused" } else { "resumed" }.to_owned(),
                        why: paused.then(|| "bandwidth".to_owned()),
                    };
                    self.tell_peer(&id, &data, out);
                }
            }
        }
    }

    /// This page shows `id`'s video as `view`: `id` is told when that changed.
    fn on_viewed(&mut self, id: ClientId, view: View, out: &mut Vec<Command>) {
        if !self.peers.get(&id).is_some_and(|p| p.up) {
            return;
        }
        // Told in the encoder's steps, so a tile resized by a few pixels says nothing new;
        // 0 (not shown, size unknown) stays 0.
        let height = match view.height {
            0 => 0,
            h => budget::step_up(h),
        };
        let focused = self.focused.as_ref() == Some(&id);
        let view = View {
            height,
            focused,
            ..view
        };
        if self.views_told.get(&id) == Some(&view) {
            return;
        }
        self.views_told.insert(id.clone(), view);
        let hint = PeerData::View {
            view: ViewHint {
                height: view.height,
                focused: view.focused,
                speaking: view.speaking,
            },
        };
        self.tell_peer(&id, &hint, out);
    }

    /// What a peer told this page about its video, or about how it shows this page's.
    fn on_peer_data(&mut self, id: ClientId, data: PeerData, out: &mut Vec<Command>) {
        if !self.peers.contains_key(&id) {
            return;
        }
        match data {
            PeerData::View { view } => {
                self.budget.set_view(&id, view.into());
            }
            PeerData::Video { video, .. } => {
                out.push(Command::ShowRemotePaused(id, video == "paused"));
            }
            PeerData::Media { media } => {
                self.peer_media.insert(id.clone(), media);
                out.push(Command::ShowPeerMedia(id, media));
                self.show_participants(out);
            }
        }
    }

    /// What this page's microphone and camera send now.
    pub fn media_state(&self) -> MediaState {
        MediaState {
            mic: self.mic_on && self.has_media.mic,
            cam: self.cam_on && self.has_media.cam,
        }
    }

    /// Tells `to` (or every peer whose data channel is open) what this page's microphone and
    /// camera send. A peer whose channel is not open yet is told when it opens.
    fn tell_media_state(&self, to: Option<&ClientId>, out: &mut Vec<Command>) {
        let data = PeerData::Media {
            media: self.media_state(),
        };
        let open: Vec<&ClientId> = match to {
            Some(id) => vec![id],
            None => self
                .peers
                .iter()
                .filter(|(_, p)| p.chat_open)
                .map(|(id, _)| id)
                .collect(),
        };
        for id in open {
            self.tell_peer(id, &data, out);
        }
    }

    /// Sends `data` to a peer over its data channel, or through the relay when the channel
    /// is not open.
    fn tell_peer(&self, id: &ClientId, data: &PeerData, out: &mut Vec<Command>) {
        let json = serde_json::to_string(data).expect("peer data serializes");
        if self.peers.get(id).is_some_and(|p| p.chat_open) {
            out.push(Command::SendChannelData(id.clone(), json));
        } else if self.link == Link::Up && self.in_room {
            out.push(Command::Send(ClientMessage::Message {
                target_id: Some(id.clone()),
                content: Payload::from_json(json).expect("valid JSON"),
            }));
        }
    }

    fn on_signal(&mut self, msg: ServerMessage, out: &mut Vec<Command>) {
        match msg {
            ServerMessage::Welcome {
                client_id,
                ice_servers,
                resume_token,
                resumed,
                max_send_kbps,
            } => self.on_welcome(
                client_id,
                ice_servers,
                resume_token,
                resumed,
                max_send_kbps,
                out,
            ),
            ServerMessage::Joined {
                room_id,
                members,
                peers,
            } => self.on_joined(room_id, members, peers, out),
            ServerMessage::UserJoined { user_id, client_id } => {
                // The newcomer offers; its tile appears with its offer.
                self.names.insert(client_id.clone(), user_id);
                out.push(Command::Toast(Text::PeerJoined(self.label(&client_id))));
                self.room_status(out);
            }
            ServerMessage::UserLeft { client_id, .. } => self.on_user_left(client_id, out),
            ServerMessage::Left { .. } => self.in_room = false,
            ServerMessage::JoinError {
                code: Some(ErrorCode::UserIdTaken),
                ..
            } => self.name_taken(out),
            ServerMessage::JoinError { error, .. } => {
                self.room = None;
                out.push(Command::Status(Text::JoinFailed(error.to_string())));
            }
            ServerMessage::Offer { from_id, sdp, .. } => self.on_offer(from_id, sdp, out),
            ServerMessage::Answer { from_id, sdp, .. } => self.on_answer(from_id, sdp, out),
            ServerMessage::Candidate {
                from_id, candidate, ..
            } => self.on_remote_candidate(from_id, candidate, out),
            ServerMessage::Error { message, .. } => {
                out.push(Command::Status(Text::RelayRefused(message.to_string())));
            }
            ServerMessage::Message {
                from_id, content, ..
            } => self.on_relay_message(from_id, content, out),
            ServerMessage::Registered { .. }
            | ServerMessage::Locked { .. }
            | ServerMessage::Unlocked { .. }
            | ServerMessage::Rooms { .. } => {}
        }
    }

    /// Welcomed: a resumed session goes on; a new one starts over (ICE servers, name, room).
    fn on_welcome(
        &mut self,
        client_id: ClientId,
        ice_servers: Vec<IceServer>,
        resume_token: Option<String>,
        resumed: bool,
        max_send_kbps: Option<u32>,
        out: &mut Vec<Command>,
    ) {
        self.resume_token = resume_token;
        self.relay_ceiling = max_send_kbps.filter(|k| *k > 0);
        self.apply_ceiling();
        if resumed && self.me.as_ref().is_none_or(|me| *me == client_id) {
            // The same session: room, peers and calls go on untouched.
            self.me = Some(client_id);
            self.in_room = self.room.is_some();
            out.push(Command::Status(Text::Resumed));
            // What changed while the socket was down (a toggle) shows now.
            self.show_participants(out);
            self.call_again(out);
            return;
        }
        self.me = Some(client_id);
        // A new session: peers of the old one can't be reached any more.
        self.close_all(out);
        self.turn = self.ice.page_turn;
        if !ice_servers.is_empty() && !self.ice.from_page {
            self.turn = ice_servers.iter().any(IceServer::is_turn);
            out.push(Command::UseIceServers(ice_servers));
        }
        if self.ice.relay_only && !self.turn {
            out.push(Command::Status(Text::RelayOnlyCannotConnect));
        }
        // A new session tries the name as it is first.
        self.name_suffix = 0;
        if let Some(name) = self.registered_name() {
            out.push(Command::Send(ClientMessage::Register {
                user_id: Some(name),
            }));
        }
        if let Some(room) = &self.room {
            out.push(Command::Send(ClientMessage::Join {
                room_id: room.clone(),
                password: self.password.clone(),
            }));
        }
    }

    /// In the room: the newcomer offers to every member already there.
    fn on_joined(
        &mut self,
        room_id: RoomId,
        members: Vec<ClientId>,
        peers: Vec<protocol::PeerInfo>,
        out: &mut Vec<Command>,
    ) {
        self.in_room = true;
        for p in peers {
            self.names.insert(p.client_id, p.user_id);
        }
        for id in &members {
            self.names
                .entry(id.clone())
                .or_insert_with(|| UserId::from(id.clone()));
        }
        self.room = Some(room_id);
        // The offerer rule: the newcomer offers to everyone already there.
        for id in members {
            self.create_peer(id, true, out);
        }
        self.room_status(out);
    }

    /// A member left: its connection and tile go, the status line follows.
    fn on_user_left(&mut self, client_id: ClientId, out: &mut Vec<Command>) {
        self.early.remove(&client_id);
        let failed = self.failed.remove(&client_id).is_some();
        if self.peers.remove(&client_id).is_some() || failed {
            self.close_peer(&client_id, out);
        }
        let who = self.label(&client_id);
        self.peer_media.remove(&client_id);
        if self.names.remove(&client_id).is_some() {
            out.push(Command::Toast(Text::PeerLeft(who)));
            self.room_status(out);
        }
    }

    /// An answer: applied when it answers the offer waited on.
    fn on_answer(&mut self, from_id: ClientId, sdp: Payload, out: &mut Vec<Command>) {
        let Some(peer) = self.peers.get_mut(&from_id) else {
            return;
        };
        // An answer only matters to an offer we are waiting on.
        if peer.signaling == Signaling::HaveLocalOffer {
            peer.remote_ufrag = ice_ufrag(&sdp).or(peer.remote_ufrag.take());
            out.push(Command::SetRemoteDescription(from_id, SdpKind::Answer, sdp));
        }
    }

    /// A remote candidate: added once the remote description is set, kept until then.
    fn on_remote_candidate(
        &mut self,
        from_id: ClientId,
        candidate: Payload,
        out: &mut Vec<Command>,
    ) {
        match self.peers.get_mut(&from_id) {
            Some(peer) if peer.remote_set => {
                out.push(Command::AddCandidate(from_id, candidate));
            }
            // Kept even after an ignored offer: the peer's ICE agent is the same, and
            // its candidates apply once its answer to our offer is set.
            Some(peer) => peer.pending.push(candidate),
            // A given-up connection's candidates would only confuse the next one.
            None if self.failed.contains_key(&from_id) => {}
            None => self.early.entry(from_id).or_default().push(candidate),
        }
    }

    /// A relayed message: a peer giving our connection up, peer data, or chat.
    fn on_relay_message(&mut self, from_id: ClientId, content: Payload, out: &mut Vec<Command>) {
        if let Ok(notice) = content.parse::<PeerFailedNotice>() {
            // The other side gave our connection up: show the same, without answering,
            // unless the notice is about an older connection than ours.
            let why = Unreachable::from_wire(&notice.peer_failed);
            let current = self
                .peers
                .get(&from_id)
                .is_some_and(|p| match &notice.ufrag {
                    Some(ufrag) => p.local_ufrags.contains(ufrag),
                    // Given up before any description: it can only be one not up yet.
                    None => !p.ever_up,
                });
            if let (Some(why), true) = (why, current) {
                self.give_up(from_id, why, false, out);
            }
        } else if let Ok(data) = content.parse::<PeerData>() {
            self.on_peer_data(from_id, data, out);
        } else if let Ok(line) = content.parse::<ChatLine>() {
            // Chat that came through the relay (the sender's channel to us was not open).
            self.show_chat(line, ChatFrom::Relay, out);
        }
    }

    fn on_offer(&mut self, from: ClientId, sdp: Payload, out: &mut Vec<Command>) {
        let ufrag = ice_ufrag(&sdp);
        let stale = |p: &Peer| ufrag.is_some() && p.stale_ufrag == ufrag;
        if self.peers.get(&from).is_some_and(stale) {
            return; // From the connection this one replaced: it waited at the relay.
        }
        if self.failed.remove(&from).is_some() {
            // It tries again (its network may have changed): a new connection, a new tile.
            self.close_peer(&from, out);
        }
        if !self.peers.contains_key(&from) {
            self.create_peer(from.clone(), false, out);
        }
        let Some(peer) = self.peers.get_mut(&from) else {
            return; // Given up at once (relay-only without TURN).
        };
        let collision = peer.making_offer || peer.signaling != Signaling::Stable;
        peer.ignore_offer = !peer.polite && collision;
        if peer.ignore_offer {
            return;
        }
        // The polite side rolls back its own offer (implicitly, in the browser) and answers.
        peer.signaling = Signaling::HaveRemoteOffer;
        peer.making_offer = false;
        peer.remote_ufrag = ufrag.or(peer.remote_ufrag.take());
        out.push(Command::SetRemoteDescription(from, SdpKind::Offer, sdp));
    }

    fn create_peer(&mut self, id: ClientId, offerer: bool, out: &mut Vec<Command>) {
        let attempt = self.next_watch();
        let me = self.me.as_ref().map_or("", ClientId::as_str);
        let peer = Peer {
            // A fixed order of ids gives each pair one polite and one impolite side.
            polite: me < id.as_str(),
            signaling: Signaling::Stable,
            making_offer: false,
            ignore_offer: false,
            remote_set: false,
            pending: self.early.remove(&id).unwrap_or_default(),
            chat_open: false,
            restarts: 0,
            up: false,
            ever_up: false,
            attempt,
            local_ufrags: Vec::new(),
            remote_ufrag: None,
            stale_ufrag: None,
        };
        self.peers.insert(id.clone(), peer);
        let label = self.label(&id);
        out.push(Command::CreatePeer {
            id: id.clone(),
            label,
            offerer,
        });
        if self.ice.relay_only && !self.turn {
            // Nothing could connect: say so now rather than after the deadline.
            self.give_up(id, Unreachable::RelayOnlyWithoutTurn, true, out);
            return;
        }
        out.push(Command::WatchPeer(id, attempt, CONNECT_TIMEOUT_MS));
    }

    fn label(&self, id: &ClientId) -> Who {
        match self.names.get(id) {
            Some(name) if name.as_str() != id.as_str() => Who::Named(name.to_string()),
            _ => Who::Id(id.to_string()),
        }
    }

    /// A peer's connection and tile go; a tile shown large goes back to the grid.
    fn close_peer(&mut self, id: &ClientId, out: &mut Vec<Command>) {
        out.push(Command::ClosePeer(id.clone()));
        if self.focused.as_ref() == Some(id) {
            self.focused = None;
            out.push(Command::ShowFocus(None));
        }
    }

    /// Shows `id`'s tile large, or the grid again when it is; a peer without a tile is no
    /// one to show.
    fn on_toggle_focus(&mut self, id: ClientId, out: &mut Vec<Command>) {
        if !self.peers.contains_key(&id) && !self.failed.contains_key(&id) {
            return;
        }
        self.focused = match self.focused.as_ref() == Some(&id) {
            true => None,
            false => Some(id),
        };
        out.push(Command::ShowFocus(self.focused.clone()));
    }

    fn close_all(&mut self, out: &mut Vec<Command>) {
        let peers = std::mem::take(&mut self.peers)
            .into_iter()
            .map(|(id, _)| id);
        let failed = std::mem::take(&mut self.failed)
            .into_iter()
            .map(|(id, _)| id);
        for id in peers.chain(failed) {
            self.close_peer(&id, out);
        }
        self.early.clear();
        // The members of the room being left (a new `joined` lists the next room's).
        self.names.clear();
    }
}

/// The reconnect delay after `attempt` failed attempts.
pub fn reconnect_delay(attempt: u32) -> u32 {
    RECONNECT_BASE_MS
        .saturating_mul(1 << attempt.min(16))
        .min(RECONNECT_MAX_MS)
}

fn null_payload() -> Payload {
    Payload::from_json("null").expect("null is JSON")
}
