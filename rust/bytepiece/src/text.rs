//! A text to encode: Unicode text, normalised to NFC as the original does, or raw bytes.

use std::borrow::Cow;

use crate::normalize::nfc;

/// A text to encode.
#[derive(Debug, Clone, Copy)]
pub enum Text<'a> {
    /// Unicode text: normalised to NFC first, as the original does.
    Str(&'a str),
    /// Raw bytes: encoded as they are, without normalisation (they need not be UTF-8).
    Bytes(&'a [u8]),
}

impl Text<'_> {
    /// The bytes that are segmented: the NFC form of a `Str`, a `Bytes` as it is.
    pub fn normalized(&self) -> Cow<'_, [u8]> {
        match self {
            Text::Str(s) => match nfc(s) {
                Cow::Borrowed(b) => Cow::Borrowed(b.as_bytes()),
                Cow::Owned(o) => Cow::Owned(o.into_bytes()),
            },
            Text::Bytes(b) => Cow::Borrowed(b),
        }
    }

    /// The text's bytes as given (UTF-8 for a `Str`), before normalisation.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Text::Str(s) => s.as_bytes(),
            Text::Bytes(b) => b,
        }
    }

    /// The part of the text in the byte `range` (for a `Str`, its ends must be character
    /// boundaries).
    pub fn slice(&self, range: std::ops::Range<usize>) -> Self {
        match self {
            Text::Str(s) => Text::Str(&s[range]),
            Text::Bytes(b) => Text::Bytes(&b[range]),
        }
    }

    /// The length of the text before normalisation (about that of its normalised form).
    pub(crate) fn normalized_len_hint(&self) -> usize {
        match self {
            Text::Str(s) => s.len(),
            Text::Bytes(b) => b.len(),
        }
    }
}
