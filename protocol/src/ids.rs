//! Newtype identifiers: a connection ([`ClientId`], assigned by the relay), a user
//! ([`UserId`], chosen by the client or defaulted to its client id) and a room ([`RoomId`]).
//!
//! Every id is checked when it is made, by [`ClientId::new`] and friends or by deserializing
//! (which goes through the same check): non-empty, at most [`MAX_ID_CHARS`] characters, and
//! free of characters that change how text around them is shown ([`forbidden_in_id`]: control
//! characters, line separators and bidirectional overrides), so a peer can neither make the
//! relay store or echo huge keys nor make its name read as someone else's on another screen.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The longest id, in characters, that the relay accepts from a client.
pub const MAX_ID_CHARS: usize = 128;

/// Why a string is not a valid id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdError {
    /// The string is empty.
    Empty,
    /// The string has more than [`MAX_ID_CHARS`] characters.
    TooLong,
    /// The string holds a character that [`forbidden_in_id`] refuses.
    Forbidden(char),
}

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdError::Empty => f.write_str("must not be empty"),
            IdError::TooLong => write!(f, "must be at most {MAX_ID_CHARS} characters"),
            IdError::Forbidden(c) => write!(
                f,
                "must not contain control, line-separator or bidirectional-override characters \
                 (found U+{:04X})",
                u32::from(*c)
            ),
        }
    }
}

impl std::error::Error for IdError {}

/// Whether `c` may not appear in an id: C0 and C1 control characters (NUL, newline, escape,
/// ...), the line and paragraph separators, and the bidirectional formatting characters
/// (embeddings, overrides, isolates and marks: U+202E makes "alice\u{202E}nip.exe" show as
/// "aliceexe.pin"). Joiners (U+200D, used in emoji sequences) and other letters stay allowed.
pub fn forbidden_in_id(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' // arabic letter mark
                | '\u{200E}'..='\u{200F}' // left-to-right and right-to-left marks
                | '\u{2028}'..='\u{2029}' // line and paragraph separators
                | '\u{202A}'..='\u{202E}' // embeddings and overrides
                | '\u{2066}'..='\u{2069}' // isolates
        )
}

fn check(s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    // Four bytes per char at most, so short byte lengths need no char count.
    if s.len() > MAX_ID_CHARS && s.chars().count() > MAX_ID_CHARS {
        return Err(IdError::TooLong);
    }
    match s.chars().find(|&c| forbidden_in_id(c)) {
        Some(c) => Err(IdError::Forbidden(c)),
        None => Ok(()),
    }
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(into = "String", try_from = "String")]
        pub struct $name(String);

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl $name {
            /// Checks `s` (non-empty, at most [`MAX_ID_CHARS`] characters, nothing
            /// [`forbidden_in_id`]) and wraps it.
            pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                check(&s)?;
                Ok(Self(s))
            }

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

id_type!(
    /// One connection to the relay, assigned by the relay in `welcome`. Relayed messages carry
    /// the sender's client id in `fromId`, stamped by the relay, never taken from the sender.
    ClientId
);
id_type!(
    /// A user's name as given in `register` (defaults to the client id).
    UserId
);
id_type!(
    /// A room: a set of clients that may signal each other.
    RoomId
);

impl From<ClientId> for UserId {
    /// The default user id of a client that never registered is its client id.
    fn from(id: ClientId) -> Self {
        UserId(id.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked() {
        assert_eq!(RoomId::new(""), Err(IdError::Empty));
        assert!(RoomId::new("a".repeat(MAX_ID_CHARS)).is_ok());
        assert_eq!(
            RoomId::new("a".repeat(MAX_ID_CHARS + 1)),
            Err(IdError::TooLong)
        );
        // 128 four-byte characters are 512 bytes and still fit.
        assert!(UserId::new("😀".repeat(MAX_ID_CHARS)).is_ok());
        assert_eq!(
            UserId::new("😀".repeat(MAX_ID_CHARS + 1)),
            Err(IdError::TooLong)
        );
    }

    #[test]
    fn ids_refuse_characters_that_change_how_text_is_shown() {
        for bad in [
            "a\0b",
            "line\nbreak",
            "esc\u{1b}[31m",
            "c1\u{85}",
            "del\u{7f}",
            "alice\u{202E}nip.exe",
            "iso\u{2066}late",
            "mark\u{200F}",
            "sep\u{2028}",
            "alm\u{061C}",
        ] {
            assert!(
                matches!(UserId::new(bad), Err(IdError::Forbidden(_))),
                "{bad:?} accepted"
            );
        }
        for good in [
            "Zoë",
            "李雷",
            "👩\u{200D}💻 dev",
            "tab-free name",
            "o'brien",
        ] {
            assert!(UserId::new(good).is_ok(), "{good:?} refused");
        }
        let e = RoomId::new("x\u{202E}").unwrap_err().to_string();
        assert!(e.contains("U+202E"), "{e}");
    }

    #[test]
    fn deserializing_checks_like_new() {
        let ok: ClientId = serde_json::from_str("\"abc\"").unwrap();
        assert_eq!(ok.as_str(), "abc");
        for bad in ["\"\"", "\"a\\u0000\"", "\"a\\u202eb\""] {
            assert!(
                serde_json::from_str::<ClientId>(bad).is_err(),
                "{bad} accepted"
            );
        }
        let long = format!("\"{}\"", "r".repeat(MAX_ID_CHARS + 1));
        assert!(serde_json::from_str::<RoomId>(&long).is_err());
        assert_eq!(serde_json::to_string(&ok).unwrap(), "\"abc\"");
    }
}
