//! Native tests of the page's words: the language picked, every label the page names known
//! and every text of the page from the catalogue, and every text in both languages.

#![cfg(not(target_arch = "wasm32"))]

use client_wasm::core::budget::{Limit, Sent};
use client_wasm::core::{MediaKind, Unreachable};
use client_wasm::i18n::{Device, Label, Lang, MediaFailure, ShareFailure, Text, Who};
use client_wasm::stats::{Grade, Quality, Received};

const PAGE: &str = include_str!("../../www/index.html");

#[test]
fn the_language_is_asked_for_then_the_browsers_then_english() {
    assert_eq!(Lang::pick(Some("zh-CN"), ["en-US"]), Lang::ZhCn);
    assert_eq!(Lang::pick(Some("en"), ["zh-CN"]), Lang::En);
    // An unknown ?lang= falls back to the browser's languages, in their order.
    assert_eq!(Lang::pick(Some("xx"), ["fr-FR", "zh", "en"]), Lang::ZhCn);
    assert_eq!(Lang::pick(None, ["de", "en-GB", "zh-CN"]), Lang::En);
    assert_eq!(Lang::pick(None, ["de", "fr"]), Lang::En);
    assert_eq!(Lang::pick(None, std::iter::empty()), Lang::En);
    for simplified in [
        "zh",
        "zh-CN",
        "zh-cn",
        "zh_CN",
        "zh-SG",
        "zh-Hans",
        "zh-Hans-HK",
    ] {
        assert_eq!(Lang::parse(simplified), Some(Lang::ZhCn), "{simplified}");
    }
    // Traditional characters are not simplified Chinese: not picked for it.
    for traditional in ["zh-TW", "zh-HK", "zh-MO", "zh-Hant", "zh-Hant-CN"] {
        assert_eq!(Lang::parse(traditional), None, "{traditional}");
    }
    for lang in Lang::ALL {
        assert_eq!(Lang::parse(lang.tag()), Some(lang));
    }
}

#[test]
fn label_names_are_distinct_and_found_again() {
    let mut keys: Vec<&str> = Label::ALL.iter().map(|l| l.key()).collect();
    for label in Label::ALL {
        assert_eq!(Label::from_key(label.key()), Some(label));
    }
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), Label::ALL.len(), "two labels share a name");
    assert_eq!(Label::from_key("no-such-label"), None);
}

/// An attribute: name and value.
type Attr = (String, String);

/// The page's tags: name, attributes, and the text right after the tag.
fn tags(html: &str) -> Vec<(String, Vec<Attr>, String)> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        rest = &rest[start + 1..];
        let Some(end) = rest.find('>') else { break };
        let inside = &rest[..end];
        let after = &rest[end + 1..];
        let text = after[..after.find('<').unwrap_or(after.len())]
            .trim()
            .to_owned();
        rest = after;
        if inside.starts_with(['/', '!']) {
            continue;
        }
        let name: String = inside
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        out.push((
            name,
            attributes(&inside[inside.find(' ').unwrap_or(inside.len())..]),
            text,
        ));
    }
    out
}

fn attributes(mut s: &str) -> Vec<Attr> {
    let mut out = Vec::new();
    loop {
        s = s.trim_start();
        let name_len = s
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(s.len());
        if name_len == 0 {
            return out;
        }
        let name = s[..name_len].to_owned();
        s = &s[name_len..];
        let value = match s.strip_prefix("=\"") {
            Some(v) => {
                let end = v.find('"').expect("a closed attribute value");
                s = &v[end + 1..];
                v[..end].to_owned()
            }
            None => String::new(),
        };
        out.push((name, value));
    }
}

#[test]
fn every_text_of_the_page_comes_from_the_catalogue() {
    let tags = tags(PAGE);
    assert!(tags.len() > 30, "the page was read: {} tags", tags.len());
    let mut named = 0;
    for (tag, attrs, text) in &tags {
        let get = |name: &str| attrs.iter().find(|(n, _)| n == name).map(|(_, v)| v);
        // Every name given is a label.
        for (name, value) in attrs.iter().filter(|(n, _)| n.starts_with("data-i18n")) {
            if name != "data-i18n-by" {
                assert!(
                    Label::from_key(value).is_some(),
                    "<{tag} {name}=\"{value}\">: no such label"
                );
                named += 1;
            }
        }
        let by_app = get("data-i18n-by").is_some_and(|v| v == "app");
        // Text shown: named, or written by the app (the script and the style are not text).
        if !text.is_empty() && !matches!(tag.as_str(), "script" | "style") {
            assert!(
                get("data-i18n").is_some() || by_app,
                "<{tag}> says {text:?} in one language"
            );
        }
        // Words in attributes: named, or written by the app.
        for attr in ["placeholder", "title", "aria-label"] {
            if get(attr).is_some() && !by_app {
                assert!(
                    get(&format!("data-i18n-{attr}")).is_some(),
                    "<{tag} {attr}=...> is in one language"
                );
            }
        }
    }
    assert!(named >= Label::ALL.len() - 1, "{named} names on the page");
}

/// One of every text (a new kind of text must be added here: the match below has no
/// catch-all, so the test does not compile without it).
fn every_text() -> Vec<Text> {
    let quality = Quality {
        rtt_ms: Some(20.0),
        kbps: Some(1200.0),
        loss_pct: Some(0.5),
        grade: Grade::Good,
    };
    let sent = Sent {
        kbps: Some(290.0),
        height: Some(360),
        fps: Some(30.0),
        paused: false,
        limit: Some(Limit::ReceiverSize),
        estimate_kbps: None,
        allowed_kbps: None,
        loss: None,
    };
    let mut texts: Vec<Text> = Label::ALL.into_iter().map(Text::Label).collect();
    texts.extend([
        Text::ReadyToJoin,
        Text::Connecting,
        Text::ConnectedToRelay,
        Text::Disconnected,
        Text::RelayLost {
            was_up: true,
            seconds: 1.0,
        },
        Text::Resumed,
        Text::InRoom {
            room: "r".into(),
            others: 2,
            relay_only_without_turn: true,
        },
        Text::LeftCall,
        Text::JoinFailed("room-full".into()),
        Text::RelayRefused("bad".into()),
        Text::IdTaken,
        Text::NameTaken("Ann".into()),
        Text::JoiningAs {
            name: "Ann".into(),
            numbered: "Ann (2)".into(),
        },
        Text::RelayOnlyCannotConnect,
        Text::Unreachable(Unreachable::NeedsTurn),
        Text::PeerUnreachable(Who::Id("x".into()), Unreachable::Lost),
        Text::NegotiationFailed {
            id: "x".into(),
            why: "e".into(),
        },
        Text::Peer(Who::Id("x".into())),
        Text::PeerJoined(Who::Named("Ann".into())),
        Text::PeerLeft(Who::Id("x".into())),
        Text::Unread(3),
        Text::NobodyYet,
        Text::VideoPaused,
        Text::Reconnecting,
        Text::MicOff,
        Text::TileFocus,
        Text::TileFullscreen,
        Text::TilePictureInPicture,
        Text::CamOff,
        Text::Error("getStats: e".into()),
        Text::AppFailed("e".into()),
        Text::WaitingForMedia,
        Text::MediaFailed(MediaFailure::InUse, "e".into()),
        Text::ReceiveOnly,
        Text::MediaHelp(MediaFailure::Denied),
        Text::MediaHelp(MediaFailure::NotFound),
        Text::BadRoom("is empty".into()),
        Text::LinkToShare("https://x/?room=r".into()),
        Text::ShareFailed(ShareFailure::NoScreen, "e".into()),
        Text::NothingToRecord,
        Text::NothingRecorded,
        Text::MediaButton(MediaKind::Audio, true),
        Text::MediaButtonHint(MediaKind::Video, false),
        Text::ShareButton(true),
        Text::RecordButton(Some(1.5)),
        Text::DownloadRecording(1.5),
        Text::DeviceNumbered(Device::Camera, 2),
        Text::DevicePicker(Device::Microphone, 1),
        Text::DevicePicker(Device::Speaker, 3),
        Text::Quality(quality),
        Text::ConnectionQuality,
        Text::MediaLines,
        Text::Received(Received {
            height: Some(480),
            fps: Some(30.0),
            kbps: Some(450.0),
        }),
        Text::Sent(sent),
    ]);
    for text in &texts {
        covered(text);
    }
    texts
}

fn covered(text: &Text) {
    match text {
        Text::Label(_)
        | Text::ReadyToJoin
        | Text::Connecting
        | Text::ConnectedToRelay
        | Text::Disconnected
        | Text::RelayLost { .. }
        | Text::Resumed
        | Text::InRoom { .. }
        | Text::LeftCall
        | Text::JoinFailed(_)
        | Text::RelayRefused(_)
        | Text::IdTaken
        | Text::NameTaken(_)
        | Text::JoiningAs { .. }
        | Text::RelayOnlyCannotConnect
        | Text::Unreachable(_)
        | Text::PeerUnreachable(..)
        | Text::NegotiationFailed { .. }
        | Text::Peer(_)
        | Text::PeerJoined(_)
        | Text::PeerLeft(_)
        | Text::Unread(_)
        | Text::NobodyYet
        | Text::VideoPaused
        | Text::Reconnecting
        | Text::MicOff
        | Text::TileFocus
        | Text::TileFullscreen
        | Text::TilePictureInPicture
        | Text::CamOff
        | Text::Error(_)
        | Text::AppFailed(_)
        | Text::WaitingForMedia
        | Text::MediaFailed(..)
        | Text::ReceiveOnly
        | Text::MediaHelp(_)
        | Text::BadRoom(_)
        | Text::LinkToShare(_)
        | Text::ShareFailed(..)
        | Text::NothingToRecord
        | Text::NothingRecorded
        | Text::MediaButton(..)
        | Text::MediaButtonHint(..)
        | Text::ShareButton(_)
        | Text::RecordButton(_)
        | Text::DownloadRecording(_)
        | Text::DeviceNumbered(..)
        | Text::DevicePicker(..)
        | Text::Quality(_)
        | Text::ConnectionQuality
        | Text::MediaLines
        | Text::Received(_)
        | Text::Sent(_) => {}
    }
}

fn has_chinese(s: &str) -> bool {
    s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
}

#[test]
fn every_text_is_said_in_both_languages() {
    for text in every_text() {
        let (en, zh) = (text.render(Lang::En), text.render(Lang::ZhCn));
        assert!(!en.trim().is_empty(), "{text:?} says nothing in English");
        // Every place for a value got one.
        assert!(
            !en.contains('{') && !zh.contains('{'),
            "{text:?}: {en} / {zh}"
        );
        // Figures alone (what is received) read the same in both.
        if matches!(text, Text::Received(_)) {
            assert_eq!(en, zh);
            continue;
        }
        assert!(!has_chinese(&en), "{text:?} in English: {en}");
        assert!(has_chinese(&zh), "{text:?} in Chinese has no Chinese: {zh}");
    }
}

#[test]
fn what_a_text_carries_is_in_it_in_both_languages() {
    let text = Text::JoiningAs {
        name: "Ann".into(),
        numbered: "Ann (2)".into(),
    };
    for lang in Lang::ALL {
        let s = text.render(lang);
        assert!(s.contains("Ann (2)") && s.contains("Ann "), "{s}");
    }
    let room = Text::InRoom {
        room: "standup".into(),
        others: 3,
        relay_only_without_turn: false,
    };
    assert_eq!(room.render(Lang::En), "in room standup with 3 others");
    assert_eq!(room.render(Lang::ZhCn), "在房间 standup 中，另有 3 人");
    let one = Text::InRoom {
        room: "standup".into(),
        others: 1,
        relay_only_without_turn: false,
    };
    assert_eq!(one.render(Lang::En), "in room standup with 1 other");
}

#[test]
fn a_value_is_put_in_as_it_is() {
    // A name that looks like a place for a value is not filled in again.
    let text = Text::JoiningAs {
        name: "{numbered}".into(),
        numbered: "{name} (2)".into(),
    };
    assert_eq!(
        text.render(Lang::En),
        "the name {numbered} is taken in this room: joining as {name} (2)"
    );
    assert_eq!(
        Text::Error("a } and a {".into()).render(Lang::ZhCn),
        "出错了：a } and a {"
    );
}
