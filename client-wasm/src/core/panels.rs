//! The call's side panels, as the page shows them: which one is open (the chat or the
//! participants, one at a time), how many chat messages came while the chat was closed, and
//! who is in the call (this page first) with their microphone and camera.

use super::MediaState;
use crate::i18n::Who;

/// A side panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Panel {
    /// The chat.
    Chat,
    /// The participants.
    People,
}

/// The panels' state: shown by the page as it is, never kept there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Panels {
    /// The panel open, if any.
    pub open: Option<Panel>,
    /// Chat messages from others not seen yet (the chat was closed when they came).
    pub unread: u32,
}

impl Panels {
    /// Opens `panel`, or closes it when it is the one open; opening the chat reads it.
    pub fn toggle(&mut self, panel: Panel) {
        self.open = match self.open == Some(panel) {
            true => None,
            false => Some(panel),
        };
        if self.open == Some(Panel::Chat) {
            self.unread = 0;
        }
    }

    /// A message from someone else came: unread unless the chat is open. Whether that
    /// changed anything.
    pub fn chat_came(&mut self) -> bool {
        if self.open == Some(Panel::Chat) {
            return false;
        }
        self.unread = self.unread.saturating_add(1);
        true
    }

    /// Out of a call: nothing open, nothing unread.
    pub fn reset(&mut self) {
        *self = Panels::default();
    }
}

/// One line of the participants panel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    /// Who (`None`: this page).
    pub who: Option<Who>,
    /// Their microphone and camera (`None`: not told yet).
    pub media: Option<MediaState>,
}
