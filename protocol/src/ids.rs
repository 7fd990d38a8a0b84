//! Newtype identifiers: a connection ([`ClientId`], assigned by the relay), a user
//! ([`UserId`], chosen by the client or defaulted to its client id) and a room ([`RoomId`]).
//!
//! Ids arriving from clients are checked by [`ClientId::new`] and friends: non-empty and at most
//! [`MAX_ID_CHARS`] characters, so a peer cannot make the relay store or echo huge keys.

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
}

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdError::Empty => f.write_str("must not be empty"),
            IdError::TooLong => write!(f, "must be at most {MAX_ID_CHARS} characters"),
        }
    }
}

impl std::error::Error for IdError {}

fn check(s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    // Four bytes per char at most, so short byte lengths need no char count.
    if s.len() > MAX_ID_CHARS && s.chars().count() > MAX_ID_CHARS {
        return Err(IdError::TooLong);
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Checks `s` (non-empty, at most [`MAX_ID_CHARS`] characters) and wraps it.
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
}
