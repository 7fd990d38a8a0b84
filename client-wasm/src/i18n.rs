//! The page's words, in every language it speaks: English and Simplified Chinese (zh-CN).
//!
//! Every string the page shows comes from here. Dynamic ones are [`Text`] values (the core's
//! status lines, notices, button and tile texts), rendered by [`Text::render`]: each language
//! is one exhaustive `match`, so a text without a translation does not compile. The static
//! labels of `www/index.html` name a [`Label`] in `data-i18n` (text), `data-i18n-placeholder`,
//! `data-i18n-title` or `data-i18n-aria-label`; the web layer fills them, and a test reads the
//! page for names that are not labels.
//!
//! The language: `?lang=` when it names one, else the first of `navigator.languages` that is
//! one, else English ([`Lang::pick`]); a switch in the page changes it during a call.

use crate::core::budget::Limit;
use crate::core::{MediaKind, Unreachable};
use crate::stats::Grade;

/// A language of the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// English.
    #[default]
    En,
    /// Simplified Chinese.
    ZhCn,
}

impl Lang {
    /// Every language, in the switch's order.
    pub const ALL: [Lang; 2] = [Lang::En, Lang::ZhCn];

    /// The BCP 47 tag (`<html lang>`, `?lang=`).
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::ZhCn => "zh-CN",
        }
    }

    /// The language's name in itself, for the switch.
    pub fn name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::ZhCn => "简体中文",
        }
    }

    /// The language a BCP 47 tag asks for, if the page speaks it: any English; Chinese
    /// written in simplified characters (`zh`, `zh-CN`, `zh-SG`, `zh-Hans…`), not `zh-TW`,
    /// `zh-HK`, `zh-MO` or `zh-Hant…`.
    pub fn parse(tag: &str) -> Option<Lang> {
        let tag = tag.trim().to_ascii_lowercase().replace('_', "-");
        let mut parts = tag.split('-');
        match parts.next()? {
            "en" => Some(Lang::En),
            "zh" => {
                let traditional = parts.any(|p| matches!(p, "tw" | "hk" | "mo" | "hant"));
                let simplified = tag.contains("-hans");
                (simplified || !traditional).then_some(Lang::ZhCn)
            }
            _ => None,
        }
    }

    /// The page's language: `asked` (`?lang=`) when it is one, else the first of the
    /// browser's `preferred` languages that is, else English.
    pub fn pick<'a>(asked: Option<&str>, preferred: impl IntoIterator<Item = &'a str>) -> Lang {
        asked
            .and_then(Lang::parse)
            .or_else(|| preferred.into_iter().find_map(Lang::parse))
            .unwrap_or_default()
    }
}

/// A static label of the page, named in `www/index.html`'s `data-i18n*` attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    /// The document's title and heading.
    AppTitle,
    /// Before the app has started.
    Loading,
    /// The room field.
    Room,
    /// Its placeholder.
    RoomExample,
    /// The name field.
    Name,
    /// Its placeholder.
    YourName,
    /// The password field.
    Password,
    /// Its placeholder.
    Optional,
    /// The join button.
    Join,
    /// The leave button.
    Leave,
    /// The copy-link button.
    CopyLink,
    /// Its tooltip.
    CopyLinkHint,
    /// The screen-share button's tooltip.
    ShareHint,
    /// The data-saver button.
    DataSaver,
    /// Its tooltip.
    DataSaverHint,
    /// The record button's tooltip.
    RecordHint,
    /// The language switch.
    Language,
    /// The pre-join screen's heading.
    ReadyToJoin,
    /// The microphone level meter.
    MicLevel,
    /// How to join with the microphone or camera off.
    JoinMutedHint,
    /// The control bar.
    CallControls,
    /// The camera picker.
    Camera,
    /// The microphone picker.
    Microphone,
    /// The speaker picker.
    Speaker,
    /// The local tile.
    You,
    /// The grid of remote tiles.
    Participants,
    /// The chat panel.
    Chat,
    /// The chat field.
    Message,
    /// Its placeholder.
    MessageEveryone,
    /// The chat's send button.
    Send,
    /// The leave confirmation's question.
    LeaveQuestion,
    /// Its button that stays in the call.
    Stay,
}

impl Label {
    /// Every label.
    pub const ALL: [Label; 32] = [
        Label::AppTitle,
        Label::Loading,
        Label::Room,
        Label::RoomExample,
        Label::Name,
        Label::YourName,
        Label::Password,
        Label::Optional,
        Label::Join,
        Label::Leave,
        Label::CopyLink,
        Label::CopyLinkHint,
        Label::ShareHint,
        Label::DataSaver,
        Label::DataSaverHint,
        Label::RecordHint,
        Label::Language,
        Label::ReadyToJoin,
        Label::MicLevel,
        Label::JoinMutedHint,
        Label::CallControls,
        Label::Camera,
        Label::Microphone,
        Label::Speaker,
        Label::You,
        Label::Participants,
        Label::Chat,
        Label::Message,
        Label::MessageEveryone,
        Label::Send,
        Label::LeaveQuestion,
        Label::Stay,
    ];

    /// Its name in the page's `data-i18n*` attributes.
    pub fn key(self) -> &'static str {
        match self {
            Label::AppTitle => "app-title",
            Label::Loading => "loading",
            Label::Room => "room",
            Label::RoomExample => "room-example",
            Label::Name => "name",
            Label::YourName => "your-name",
            Label::Password => "password",
            Label::Optional => "optional",
            Label::Join => "join",
            Label::Leave => "leave",
            Label::CopyLink => "copy-link",
            Label::CopyLinkHint => "copy-link-hint",
            Label::ShareHint => "share-hint",
            Label::DataSaver => "data-saver",
            Label::DataSaverHint => "data-saver-hint",
            Label::RecordHint => "record-hint",
            Label::Language => "language",
            Label::ReadyToJoin => "ready-to-join",
            Label::MicLevel => "mic-level",
            Label::JoinMutedHint => "join-muted-hint",
            Label::CallControls => "call-controls",
            Label::Camera => "camera",
            Label::Microphone => "microphone",
            Label::Speaker => "speaker",
            Label::You => "you",
            Label::Participants => "participants",
            Label::Chat => "chat",
            Label::Message => "message",
            Label::MessageEveryone => "message-everyone",
            Label::Send => "send",
            Label::LeaveQuestion => "leave-question",
            Label::Stay => "stay",
        }
    }

    /// The label a `data-i18n*` attribute names.
    pub fn from_key(key: &str) -> Option<Label> {
        Label::ALL.into_iter().find(|l| l.key() == key)
    }
}

/// Why the camera and microphone could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaFailure {
    /// The user or the browser said no.
    Denied,
    /// None there.
    NotFound,
    /// Another program holds them.
    InUse,
    /// Anything else.
    Unavailable,
}

/// A kind of device a picker lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    /// A camera.
    Camera,
    /// A microphone.
    Microphone,
    /// A speaker (an audio output).
    Speaker,
}

impl From<MediaKind> for Device {
    fn from(kind: MediaKind) -> Device {
        match kind {
            MediaKind::Audio => Device::Microphone,
            MediaKind::Video => Device::Camera,
        }
    }
}

/// Why screen sharing did not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareFailure {
    /// Cancelled in the picker, or not allowed.
    NotAllowed,
    /// No screen or window to capture.
    NoScreen,
    /// The browser cannot share a screen.
    Unsupported,
    /// Capturing failed.
    CaptureFailed,
    /// Anything else.
    Refused,
}

/// Who a remote tile is: a display name, or only the relay's id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Who {
    /// Shown as it is.
    Named(String),
    /// No name: "peer <id>".
    Id(String),
}

/// A text the page shows, with what it says in it.
#[derive(Debug, Clone, PartialEq)]
pub enum Text {
    /// A static label.
    Label(Label),
    /// Before joining.
    ReadyToJoin,
    /// Opening the signaling socket.
    Connecting,
    /// The socket is open.
    ConnectedToRelay,
    /// The socket closed while no call was on.
    Disconnected,
    /// The socket was lost (`was_up`) or could not be opened; trying again in `seconds`.
    RelayLost {
        /// Whether it had been open.
        was_up: bool,
        /// When it tries again.
        seconds: f64,
    },
    /// Resumed after the socket came back.
    Resumed,
    /// In a room.
    InRoom {
        /// The room.
        room: String,
        /// The others in it.
        others: usize,
        /// Relay-only mode without a TURN server: said as long as it holds.
        relay_only_without_turn: bool,
    },
    /// Left.
    LeftCall,
    /// The relay's `join-error`.
    JoinFailed(String),
    /// The relay's `error`.
    RelayRefused(String),
    /// The page's id is taken in the room.
    IdTaken,
    /// The name is taken, even with every number.
    NameTaken(String),
    /// The name is taken: joining with a number.
    JoiningAs {
        /// The name asked for.
        name: String,
        /// The name used.
        numbered: String,
    },
    /// Relay-only mode without a TURN server, said on welcome.
    RelayOnlyCannotConnect,
    /// Why a connection cannot come up (its tile's line).
    Unreachable(Unreachable),
    /// The status line about one connection that cannot come up.
    PeerUnreachable(Who, Unreachable),
    /// Negotiating with a peer failed.
    NegotiationFailed {
        /// The peer's id.
        id: String,
        /// The engine's error.
        why: String,
    },
    /// A remote tile's name.
    Peer(Who),
    /// Someone joined the call.
    PeerJoined(Who),
    /// Someone left it.
    PeerLeft(Who),
    /// Chat messages not read yet (said on the chat button).
    Unread(u32),
    /// A tile's buttons: show it large (or again in the grid), full screen, picture in
    /// picture.
    TileFocus,
    /// See `TileFocus`.
    TileFullscreen,
    /// See `TileFocus`.
    TilePictureInPicture,
    /// The grid without anybody else.
    NobodyYet,
    /// A tile whose sender paused its video to this page.
    VideoPaused,
    /// A tile whose connection is reconnecting.
    Reconnecting,
    /// The badge of a tile whose microphone is off.
    MicOff,
    /// The badge, and the picture, of a tile whose camera is off.
    CamOff,
    /// A technical error (the API and the engine's message), shown as a notice.
    Error(String),
    /// The app failed to start.
    AppFailed(String),
    /// Waiting for the camera and microphone prompt.
    WaitingForMedia,
    /// The camera and microphone could not be opened.
    MediaFailed(MediaFailure, String),
    /// Receive-only (`?media=none`).
    ReceiveOnly,
    /// The pre-join screen's help when the camera and microphone could not be opened.
    MediaHelp(MediaFailure),
    /// The room name is not valid (the protocol's reason, in English).
    BadRoom(String),
    /// The link was copied (or could not be, and is shown to copy by hand).
    LinkToShare(String),
    /// Screen sharing did not start.
    ShareFailed(ShareFailure, String),
    /// Recording was asked for without local media.
    NothingToRecord,
    /// The recording stopped before its first frame.
    NothingRecorded,
    /// The microphone or camera button, for the state it is in (`on`: the track is on).
    MediaButton(MediaKind, bool),
    /// Its tooltip, with its key.
    MediaButtonHint(MediaKind, bool),
    /// The screen-share button (`on`: sharing).
    ShareButton(bool),
    /// The record button, with the megabytes so far while on.
    RecordButton(Option<f64>),
    /// The link to a finished recording, with its megabytes.
    DownloadRecording(f64),
    /// A device without a label in its picker: "Camera 2".
    DeviceNumbered(Device, usize),
    /// A picker's tooltip, for how many devices it found.
    DevicePicker(Device, usize),
    /// A tile's quality line.
    Quality(crate::stats::Quality),
    /// The tile's region holding the quality line.
    ConnectionQuality,
    /// The tile's region holding the media lines.
    MediaLines,
    /// The tile's line about the video received.
    Received(crate::stats::Received),
    /// The tile's line about the video sent.
    Sent(crate::core::budget::Sent),
}

impl Text {
    /// The text in `lang`.
    pub fn render(&self, lang: Lang) -> String {
        let p = lang.phrases();
        match self {
            Text::Label(l) => (p.label)(*l).into(),
            Text::ReadyToJoin => p.ready_to_join.into(),
            Text::Connecting => p.connecting.into(),
            Text::ConnectedToRelay => p.connected_to_relay.into(),
            Text::Disconnected => p.disconnected.into(),
            Text::RelayLost { was_up, seconds } => {
                let template = if *was_up {
                    p.relay_lost
                } else {
                    p.relay_unreachable
                };
                fill(template, &[("s", &format!("{seconds:.1}"))])
            }
            Text::Resumed => p.resumed.into(),
            Text::InRoom {
                room,
                others,
                relay_only_without_turn,
            } => {
                let template = match others {
                    0 => p.in_room_alone,
                    1 => p.in_room_one,
                    _ => p.in_room_many,
                };
                let mut s = fill(template, &[("room", room), ("n", &others.to_string())]);
                if *relay_only_without_turn {
                    s.push_str(" · ");
                    s.push_str((p.unreachable)(Unreachable::RelayOnlyWithoutTurn));
                }
                s
            }
            Text::LeftCall => p.left_call.into(),
            Text::JoinFailed(e) => fill(p.join_failed, &[("e", e)]),
            Text::RelayRefused(e) => fill(p.relay_refused, &[("e", e)]),
            Text::IdTaken => p.id_taken.into(),
            Text::NameTaken(name) => fill(p.name_taken, &[("name", name)]),
            Text::JoiningAs { name, numbered } => {
                fill(p.joining_as, &[("name", name), ("numbered", numbered)])
            }
            Text::RelayOnlyCannotConnect => fill(
                p.relay_only_cannot_connect,
                &[("why", (p.unreachable)(Unreachable::RelayOnlyWithoutTurn))],
            ),
            Text::Unreachable(u) => (p.unreachable)(*u).into(),
            Text::PeerUnreachable(who, u) => fill(
                p.peer_unreachable,
                &[("who", &who.render(p)), ("why", (p.unreachable)(*u))],
            ),
            Text::NegotiationFailed { id, why } => {
                fill(p.negotiation_failed, &[("id", id), ("why", why)])
            }
            Text::Peer(who) => who.render(p),
            Text::PeerJoined(who) => fill(p.peer_joined, &[("who", &who.render(p))]),
            Text::PeerLeft(who) => fill(p.peer_left, &[("who", &who.render(p))]),
            Text::Unread(0) => String::new(),
            Text::Unread(n) => fill(p.unread, &[("n", &n.to_string())]),
            Text::NobodyYet => p.nobody_yet.into(),
            Text::VideoPaused => p.video_paused.into(),
            Text::Reconnecting => p.reconnecting.into(),
            Text::MicOff => p.mic_off.into(),
            Text::CamOff => p.cam_off.into(),
            Text::TileFocus => p.tile_focus.into(),
            Text::TileFullscreen => p.tile_fullscreen.into(),
            Text::TilePictureInPicture => p.tile_pip.into(),
            Text::Error(e) => fill(p.error, &[("e", e)]),
            Text::AppFailed(e) => fill(p.app_failed, &[("e", e)]),
            Text::WaitingForMedia => p.waiting_for_media.into(),
            Text::MediaFailed(why, e) => fill(
                p.media_failed,
                &[("why", (p.media_failure)(*why)), ("e", e)],
            ),
            Text::ReceiveOnly => p.receive_only.into(),
            Text::MediaHelp(why) => (p.media_help)(*why).into(),
            Text::BadRoom(e) => fill(p.bad_room, &[("e", e)]),
            Text::LinkToShare(href) => fill(p.link_to_share, &[("href", href)]),
            Text::ShareFailed(why, e) => fill(
                p.share_failed,
                &[("why", (p.share_failure)(*why)), ("e", e)],
            ),
            Text::NothingToRecord => p.nothing_to_record.into(),
            Text::NothingRecorded => p.nothing_recorded.into(),
            Text::MediaButton(kind, on) => (p.media_button)(*kind, *on).into(),
            Text::MediaButtonHint(kind, on) => fill(
                p.button_hint,
                &[
                    ("label", (p.media_button)(*kind, *on)),
                    ("what", (p.key_hint)(*kind)),
                ],
            ),
            Text::ShareButton(on) => if *on { p.stop_sharing } else { p.share_screen }.into(),
            Text::RecordButton(None) => p.record.into(),
            Text::RecordButton(Some(mb)) => fill(p.stop_recording, &[("mb", &format!("{mb:.1}"))]),
            Text::DownloadRecording(mb) => {
                fill(p.download_recording, &[("mb", &format!("{mb:.1}"))])
            }
            Text::DeviceNumbered(kind, n) => fill(
                p.device_numbered,
                &[("device", (p.device)(*kind)), ("n", &n.to_string())],
            ),
            Text::DevicePicker(kind, n) => {
                let template = match n {
                    0 => p.device_none,
                    1 => p.device_only,
                    _ => "{device}",
                };
                fill(template, &[("device", (p.device)(*kind))])
            }
            Text::Quality(q) => fill(
                p.quality,
                &[
                    ("grade", (p.grade)(q.grade)),
                    ("figures", &q.figures()),
                    ("loss", &q.loss()),
                ],
            ),
            Text::ConnectionQuality => p.connection_quality.into(),
            Text::MediaLines => p.media_lines.into(),
            Text::Received(r) => format!("↓ {}", r.figures()),
            Text::Sent(s) if s.paused => p.sent_paused.into(),
            Text::Sent(s) => match s.limit {
                Some(Limit::Peers) | None => format!("↑ {}", s.figures()),
                Some(limit) => fill(
                    p.sent_limited,
                    &[("figures", &s.figures()), ("why", (p.limit)(limit))],
                ),
            },
        }
    }
}

impl Who {
    fn render(&self, p: &Phrases) -> String {
        match self {
            Who::Named(name) => name.clone(),
            Who::Id(id) => fill(p.peer_id, &[("id", id)]),
        }
    }
}

impl Lang {
    fn phrases(self) -> &'static Phrases {
        match self {
            Lang::En => &EN,
            Lang::ZhCn => &ZH,
        }
    }
}

/// `template` with each `{key}` replaced by its value in `args`, in one pass (a value is
/// never read for keys); an unknown key stays as it is.
fn fill(template: &str, args: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            rest = &rest[open..];
            break;
        };
        let key = &after[..close];
        match args.iter().find(|(k, _)| *k == key) {
            Some((_, value)) => out.push_str(value),
            None => out.push_str(&rest[open..open + close + 2]),
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

/// What a language says: its phrases (`{key}` marks where a value goes) and its words for
/// each kind of thing. Every language gives every field, or it does not compile.
struct Phrases {
    label: fn(Label) -> &'static str,
    unreachable: fn(Unreachable) -> &'static str,
    media_failure: fn(MediaFailure) -> &'static str,
    media_help: fn(MediaFailure) -> &'static str,
    share_failure: fn(ShareFailure) -> &'static str,
    media_button: fn(MediaKind, bool) -> &'static str,
    key_hint: fn(MediaKind) -> &'static str,
    device: fn(Device) -> &'static str,
    grade: fn(Grade) -> &'static str,
    limit: fn(Limit) -> &'static str,
    ready_to_join: &'static str,
    connecting: &'static str,
    connected_to_relay: &'static str,
    disconnected: &'static str,
    relay_lost: &'static str,
    relay_unreachable: &'static str,
    resumed: &'static str,
    in_room_alone: &'static str,
    in_room_one: &'static str,
    in_room_many: &'static str,
    left_call: &'static str,
    join_failed: &'static str,
    relay_refused: &'static str,
    id_taken: &'static str,
    name_taken: &'static str,
    joining_as: &'static str,
    relay_only_cannot_connect: &'static str,
    peer_unreachable: &'static str,
    negotiation_failed: &'static str,
    peer_id: &'static str,
    peer_joined: &'static str,
    peer_left: &'static str,
    unread: &'static str,
    nobody_yet: &'static str,
    video_paused: &'static str,
    reconnecting: &'static str,
    mic_off: &'static str,
    cam_off: &'static str,
    tile_focus: &'static str,
    tile_fullscreen: &'static str,
    tile_pip: &'static str,
    error: &'static str,
    app_failed: &'static str,
    waiting_for_media: &'static str,
    media_failed: &'static str,
    receive_only: &'static str,
    bad_room: &'static str,
    link_to_share: &'static str,
    share_failed: &'static str,
    nothing_to_record: &'static str,
    nothing_recorded: &'static str,
    button_hint: &'static str,
    share_screen: &'static str,
    stop_sharing: &'static str,
    record: &'static str,
    stop_recording: &'static str,
    download_recording: &'static str,
    device_numbered: &'static str,
    device_none: &'static str,
    device_only: &'static str,
    quality: &'static str,
    connection_quality: &'static str,
    media_lines: &'static str,
    sent_paused: &'static str,
    sent_limited: &'static str,
}

static EN: Phrases = Phrases {
    label: label_en,
    unreachable: unreachable_en,
    media_failure: |why| match why {
        MediaFailure::Denied => "camera and microphone access was denied",
        MediaFailure::NotFound => "no camera or microphone found",
        MediaFailure::InUse => "the camera or microphone is in use by another program",
        MediaFailure::Unavailable => "camera and microphone are unavailable",
    },
    media_help: |why| match why {
        MediaFailure::Denied => {
            "The browser blocked the camera and microphone for this site. To allow them, click \
             the camera or lock icon in the address bar, choose Allow, then reload the page. You \
             can also join without them, to watch and listen."
        }
        MediaFailure::NotFound => {
            "No camera or microphone was found. Connect one and reload the page, or join \
             without them, to watch and listen."
        }
        MediaFailure::InUse => {
            "Another program is using the camera or microphone. Close it and reload the page, \
             or join without them, to watch and listen."
        }
        MediaFailure::Unavailable => {
            "The camera and microphone could not be opened. Reload the page to try again, or \
             join without them, to watch and listen."
        }
    },
    share_failure: |why| match why {
        ShareFailure::NotAllowed => "sharing was cancelled or is not allowed for this page",
        ShareFailure::NoScreen => "this browser found no screen or window to capture",
        ShareFailure::Unsupported => "this browser cannot share a screen",
        ShareFailure::CaptureFailed => "the screen could not be captured",
        ShareFailure::Refused => "the browser refused",
    },
    media_button: |kind, on| match (kind, on) {
        (MediaKind::Audio, true) => "Mute",
        (MediaKind::Audio, false) => "Unmute",
        (MediaKind::Video, true) => "Camera off",
        (MediaKind::Video, false) => "Camera on",
    },
    key_hint: |kind| match kind {
        MediaKind::Audio => "microphone, key m",
        MediaKind::Video => "camera, key v",
    },
    device: |kind| match kind {
        Device::Microphone => "Microphone",
        Device::Camera => "Camera",
        Device::Speaker => "Speaker",
    },
    grade: |grade| match grade {
        Grade::Unknown => "unknown",
        Grade::Good => "good",
        Grade::Fair => "fair",
        Grade::Poor => "poor",
    },
    // The English words are the tile's `data-send-limit` codes.
    limit: Limit::as_str,
    ready_to_join: "not in a call: pick a room and join",
    connecting: "connecting…",
    connected_to_relay: "connected to the relay",
    disconnected: "disconnected",
    relay_lost: "lost the relay: reconnecting in {s} s…",
    relay_unreachable: "relay unreachable: reconnecting in {s} s…",
    resumed: "reconnected to the relay (session resumed)",
    in_room_alone: "in room {room}: waiting for others",
    in_room_one: "in room {room} with 1 other",
    in_room_many: "in room {room} with {n} others",
    left_call: "left the call",
    join_failed: "could not join: {e}",
    relay_refused: "relay refused: {e}",
    id_taken: "could not join: your id is taken in this room",
    name_taken: "could not join: the name {name} is taken in this room; pick another",
    joining_as: "the name {name} is taken in this room: joining as {numbered}",
    relay_only_cannot_connect: "{why}: calls cannot connect",
    peer_unreachable: "{who}: {why}",
    negotiation_failed: "negotiation with {id} failed: {why}",
    peer_id: "peer {id}",
    peer_joined: "{who} joined",
    peer_left: "{who} left",
    unread: "{n} unread",
    nobody_yet: "Nobody else here yet: share the link to invite someone.",
    video_paused: "video paused: low bandwidth",
    reconnecting: "reconnecting…",
    mic_off: "microphone off",
    cam_off: "camera off",
    tile_focus: "Show large",
    tile_fullscreen: "Full screen",
    tile_pip: "Picture in picture",
    error: "{e}",
    app_failed: "The app could not start: {e}",
    waiting_for_media: "waiting for camera and microphone…",
    media_failed: "{why} ({e}). You can still join and receive the others.",
    receive_only: "Receive-only: camera and microphone not requested (media=none).",
    bad_room: "Room name {e}.",
    link_to_share: "Link to share: {href}",
    share_failed: "Screen sharing did not start: {why} ({e}).",
    nothing_to_record: "Nothing to record: no camera or microphone.",
    nothing_recorded: "Nothing was recorded: stopped before the first frame.",
    button_hint: "{label} ({what})",
    share_screen: "Share screen",
    stop_sharing: "Stop sharing",
    record: "Record",
    stop_recording: "Stop recording ({mb} MB)",
    download_recording: "Download the recording ({mb} MB)",
    device_numbered: "{device} {n}",
    device_none: "{device}: none found",
    device_only: "{device}: the only one found",
    quality: "{grade} · {figures} · {loss} loss",
    connection_quality: "connection quality",
    media_lines: "video received and sent",
    sent_paused: "↑ audio only: video paused (low bandwidth)",
    sent_limited: "↑ {figures} ({why})",
};

static ZH: Phrases = Phrases {
    label: label_zh,
    unreachable: unreachable_zh,
    media_failure: |why| match why {
        MediaFailure::Denied => "摄像头和麦克风的访问被拒绝",
        MediaFailure::NotFound => "未找到摄像头或麦克风",
        MediaFailure::InUse => "摄像头或麦克风正被其他程序使用",
        MediaFailure::Unavailable => "摄像头和麦克风不可用",
    },
    media_help: |why| match why {
        MediaFailure::Denied => {
            "浏览器阻止了此网站使用摄像头和麦克风。要允许使用，请点击地址栏中的摄像头或锁形图标，\
             选择“允许”，然后重新加载页面。你也可以不使用它们加入，只观看和收听。"
        }
        MediaFailure::NotFound => {
            "未找到摄像头或麦克风。请连接设备后重新加载页面，或不使用它们加入，只观看和收听。"
        }
        MediaFailure::InUse => {
            "其他程序正在使用摄像头或麦克风。请关闭该程序后重新加载页面，或不使用它们加入，\
             只观看和收听。"
        }
        MediaFailure::Unavailable => {
            "无法打开摄像头和麦克风。请重新加载页面再试，或不使用它们加入，只观看和收听。"
        }
    },
    share_failure: |why| match why {
        ShareFailure::NotAllowed => "共享已取消，或此页面不允许共享",
        ShareFailure::NoScreen => "浏览器未找到可捕获的屏幕或窗口",
        ShareFailure::Unsupported => "此浏览器无法共享屏幕",
        ShareFailure::CaptureFailed => "无法捕获屏幕",
        ShareFailure::Refused => "浏览器拒绝了请求",
    },
    media_button: |kind, on| match (kind, on) {
        (MediaKind::Audio, true) => "静音",
        (MediaKind::Audio, false) => "取消静音",
        (MediaKind::Video, true) => "关闭摄像头",
        (MediaKind::Video, false) => "开启摄像头",
    },
    key_hint: |kind| match kind {
        MediaKind::Audio => "麦克风，按键 m",
        MediaKind::Video => "摄像头，按键 v",
    },
    device: |kind| match kind {
        Device::Microphone => "麦克风",
        Device::Camera => "摄像头",
        Device::Speaker => "扬声器",
    },
    grade: |grade| match grade {
        Grade::Unknown => "未知",
        Grade::Good => "良好",
        Grade::Fair => "一般",
        Grade::Poor => "较差",
    },
    limit: |limit| match limit {
        Limit::Peers => "人数",
        Limit::Bandwidth => "带宽",
        Limit::ReceiverSize => "对方画面尺寸",
        Limit::DataSaver => "省流量",
        Limit::Ceiling => "上限",
        Limit::Cpu => "CPU",
    },
    ready_to_join: "未在通话中：请选择房间并加入",
    connecting: "正在连接…",
    connected_to_relay: "已连接到信令服务器",
    disconnected: "已断开连接",
    relay_lost: "与信令服务器的连接已断开：{s} 秒后重新连接…",
    relay_unreachable: "无法连接信令服务器：{s} 秒后重新连接…",
    resumed: "已重新连接到信令服务器（会话已恢复）",
    in_room_alone: "在房间 {room} 中：等待其他人加入",
    in_room_one: "在房间 {room} 中，另有 1 人",
    in_room_many: "在房间 {room} 中，另有 {n} 人",
    left_call: "已离开通话",
    join_failed: "无法加入：{e}",
    relay_refused: "信令服务器拒绝：{e}",
    id_taken: "无法加入：你的 ID 已在此房间中被使用",
    name_taken: "无法加入：名字 {name} 已在此房间中被使用，请换一个",
    joining_as: "名字 {name} 已在此房间中被使用：以 {numbered} 加入",
    relay_only_cannot_connect: "{why}：通话无法连接",
    peer_unreachable: "{who}：{why}",
    negotiation_failed: "与 {id} 协商失败：{why}",
    peer_id: "成员 {id}",
    peer_joined: "{who} 加入了通话",
    peer_left: "{who} 离开了通话",
    unread: "{n} 条未读",
    nobody_yet: "这里还没有其他人：分享链接邀请别人加入。",
    video_paused: "视频已暂停：带宽不足",
    reconnecting: "正在重新连接…",
    mic_off: "麦克风已关闭",
    cam_off: "摄像头已关闭",
    tile_focus: "放大显示",
    tile_fullscreen: "全屏",
    tile_pip: "画中画",
    error: "出错了：{e}",
    app_failed: "应用无法启动：{e}",
    waiting_for_media: "正在等待摄像头和麦克风…",
    media_failed: "{why}（{e}）。你仍可加入并接收其他人的音视频。",
    receive_only: "仅接收：未请求摄像头和麦克风（media=none）。",
    bad_room: "房间名无效（{e}）。",
    link_to_share: "分享链接：{href}",
    share_failed: "屏幕共享未能开始：{why}（{e}）。",
    nothing_to_record: "没有可录制的内容：没有摄像头或麦克风。",
    nothing_recorded: "没有录到内容：在第一帧之前就停止了。",
    button_hint: "{label}（{what}）",
    share_screen: "共享屏幕",
    stop_sharing: "停止共享",
    record: "录制",
    stop_recording: "停止录制（{mb} MB）",
    download_recording: "下载录制文件（{mb} MB）",
    device_numbered: "{device} {n}",
    device_none: "{device}：未找到",
    device_only: "{device}：仅找到这一个",
    quality: "{grade} · {figures} · 丢包 {loss}",
    connection_quality: "连接质量",
    media_lines: "收到和发送的视频",
    sent_paused: "↑ 仅音频：视频已暂停（带宽不足）",
    sent_limited: "↑ {figures}（{why}）",
};

fn label_en(label: Label) -> &'static str {
    match label {
        Label::AppTitle => "Rust video call",
        Label::Loading => "loading…",
        Label::Room => "Room",
        Label::RoomExample => "e.g. team-standup",
        Label::Name => "Name",
        Label::YourName => "your name",
        Label::Password => "Password",
        Label::Optional => "optional",
        Label::Join => "Join",
        Label::Leave => "Leave",
        Label::CopyLink => "Copy link",
        Label::CopyLinkHint => "Copy a link to this room",
        Label::ShareHint => "Share your screen instead of the camera",
        Label::DataSaver => "Data saver",
        Label::DataSaverHint => "Send less: small, low-rate video to everyone (audio unchanged)",
        Label::RecordHint => "Record the call on this device",
        Label::Language => "Language",
        Label::ReadyToJoin => "Ready to join?",
        Label::MicLevel => "Microphone level",
        Label::JoinMutedHint => {
            "To join with your microphone or camera off, turn it off with the buttons under the preview."
        }
        Label::CallControls => "Call controls",
        Label::Camera => "Camera",
        Label::Microphone => "Microphone",
        Label::Speaker => "Speaker",
        Label::You => "You",
        Label::Participants => "Participants",
        Label::Chat => "Chat",
        Label::Message => "Message",
        Label::MessageEveryone => "Message everyone",
        Label::Send => "Send",
        Label::LeaveQuestion => "Leave the call?",
        Label::Stay => "Stay",
    }
}

fn label_zh(label: Label) -> &'static str {
    match label {
        Label::AppTitle => "Rust 视频通话",
        Label::Loading => "正在加载…",
        Label::Room => "房间 ID",
        Label::RoomExample => "例如 team-standup",
        Label::Name => "名字",
        Label::YourName => "你的名字",
        Label::Password => "密码",
        Label::Optional => "可选",
        Label::Join => "加入房间",
        Label::Leave => "离开",
        Label::CopyLink => "复制链接",
        Label::CopyLinkHint => "复制此房间的链接",
        Label::ShareHint => "共享你的屏幕，代替摄像头画面",
        Label::DataSaver => "省流量",
        Label::DataSaverHint => "少发送一些：给每个人发送小尺寸、低码率的视频（音频不变）",
        Label::RecordHint => "在本设备上录制通话",
        Label::Language => "语言",
        Label::ReadyToJoin => "准备好加入了吗？",
        Label::MicLevel => "麦克风音量",
        Label::JoinMutedHint => "如需关闭麦克风或摄像头加入，请先用预览画面下方的按钮将其关闭。",
        Label::CallControls => "通话控制",
        Label::Camera => "摄像头",
        Label::Microphone => "麦克风",
        Label::Speaker => "扬声器",
        Label::You => "你",
        Label::Participants => "参与者",
        Label::Chat => "聊天",
        Label::Message => "消息",
        Label::MessageEveryone => "发消息给所有人",
        Label::Send => "发送",
        Label::LeaveQuestion => "要离开通话吗？",
        Label::Stay => "留下",
    }
}

fn unreachable_en(u: Unreachable) -> &'static str {
    match u {
        Unreachable::Lost => "connection lost; it comes back when the network does",
        Unreachable::NeedsTurn => "can't connect directly; this network needs a TURN server",
        Unreachable::EvenThroughTurn => "can't connect, even through the TURN server",
        Unreachable::RelayOnlyWithoutTurn => {
            "relay-only mode needs a TURN server, and none is configured"
        }
    }
}

fn unreachable_zh(u: Unreachable) -> &'static str {
    match u {
        Unreachable::Lost => "连接已断开；网络恢复后会自动重连",
        Unreachable::NeedsTurn => "无法直接连接；此网络需要 TURN 服务器",
        Unreachable::EvenThroughTurn => "即使通过 TURN 服务器也无法连接",
        Unreachable::RelayOnlyWithoutTurn => "仅中继模式需要 TURN 服务器，但未配置",
    }
}
