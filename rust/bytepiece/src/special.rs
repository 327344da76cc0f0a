//! Special tokens in text to encode, with tiktoken's rules: the text of a special token inside
//! the input is an error unless the token is *allowed* (its text becomes its one id) or the
//! check is off for it (its text is encoded as ordinary text). Matching is leftmost and, of two
//! tokens starting at one place, the longer wins.

use crate::error::{Error, Result};
use crate::text::Text;
use crate::vocab::Vocab;

/// One part of a text cut at its special tokens.
#[derive(Debug, Clone, Copy)]
pub enum Part<'t> {
    /// Ordinary text, encoded as such (of the text's kind: a `Str` cut at tokens stays UTF-8).
    Text(Text<'t>),
    /// A special token's id, and its text.
    Special(u32, &'t str),
}

/// A set of special tokens of a model, found in text by [`SpecialTokens::find`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecialTokens {
    /// The tokens' texts and ids, longest first (then by text).
    tokens: Vec<(Box<str>, u32)>,
    /// Whether a token starts with this byte.
    first: [bool; 256],
}

impl Default for SpecialTokens {
    /// No token.
    fn default() -> Self {
        SpecialTokens::NONE
    }
}

/// Which of a model's special tokens a caller names: all of them, or some by their texts.
#[derive(Debug, Clone, Copy)]
pub enum Selection<'a> {
    /// Every special token of the model.
    All,
    /// The tokens with these texts (each must be one of the model's special tokens).
    Named(&'a [&'a str]),
}

impl SpecialTokens {
    /// No token: texts are never cut.
    pub const NONE: SpecialTokens = SpecialTokens { tokens: Vec::new(), first: [false; 256] };

    /// The special tokens of `vocab` that `selection` names. A name that is not one of them is
    /// an [`Error::UnknownSpecialToken`] for the caller's `argument`.
    pub fn select(vocab: &Vocab, selection: Selection<'_>, argument: &str) -> Result<SpecialTokens> {
        let tokens: Vec<(Box<str>, u32)> = match selection {
            Selection::All => vocab
                .special_ids()
                .iter()
                .map(|&id| {
                    let piece = vocab.piece(id).unwrap_or_default();
                    (Box::from(String::from_utf8_lossy(piece)), id)
                })
                .collect(),
            Selection::Named(names) => {
                let mut sorted = names.to_vec();
                sorted.sort_unstable();
                let mut tokens = Vec::with_capacity(names.len());
                for text in sorted {
                    match vocab.id(text.as_bytes()).filter(|&id| vocab.is_special(id)) {
                        Some(id) => tokens.push((Box::from(text), id)),
                        None => {
                            return Err(Error::UnknownSpecialToken { argument: argument.into(), token: text.into() })
                        }
                    }
                }
                tokens
            }
        };
        Ok(SpecialTokens::of(tokens))
    }

    /// A set of `(text, id)` tokens, in any order and possibly repeated.
    fn of(mut tokens: Vec<(Box<str>, u32)>) -> SpecialTokens {
        tokens.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        tokens.dedup();
        let mut first = [false; 256];
        for (t, _) in &tokens {
            if let Some(&b) = t.as_bytes().first() {
                first[b as usize] = true;
            }
        }
        SpecialTokens { tokens, first }
    }

    /// True when there is no token (texts are never cut).
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// These tokens less those of `other`.
    fn without(self, other: &SpecialTokens) -> SpecialTokens {
        SpecialTokens::of(self.tokens.into_iter().filter(|t| !other.tokens.contains(t)).collect())
    }

    /// The token that starts at byte `i` of `bytes` (the longest of them), if any.
    #[inline]
    fn at(&self, bytes: &[u8], i: usize) -> Option<(&str, u32)> {
        if !self.first[bytes[i] as usize] {
            return None;
        }
        self.tokens.iter().find(|(t, _)| bytes[i..].starts_with(t.as_bytes())).map(|(t, id)| (&**t, *id))
    }

    /// The leftmost token in `bytes`: its byte position, text and id.
    pub fn find(&self, bytes: &[u8]) -> Option<(usize, &str, u32)> {
        if self.is_empty() {
            return None;
        }
        (0..bytes.len()).find_map(|i| self.at(bytes, i).map(|(t, id)| (i, t, id)))
    }

    /// Calls `f` on the parts of `text` in order, each with its byte position in `text`: the
    /// text between tokens (when not empty) and each token. A text without tokens is one
    /// part, even when empty.
    pub fn for_each_part<'t>(&'t self, text: Text<'t>, mut f: impl FnMut(usize, Part<'t>)) {
        let bytes = text.bytes();
        let (mut start, mut i) = (0, 0);
        while i < bytes.len() {
            match self.at(bytes, i) {
                Some((t, id)) => {
                    // a token is UTF-8 and starts with a leading byte: in a `Str`, `i` and
                    // `i + t.len()` are character boundaries
                    if i > start {
                        f(start, Part::Text(text.slice(start..i)));
                    }
                    f(i, Part::Special(id, t));
                    i += t.len();
                    start = i;
                }
                None => i += 1,
            }
        }
        if start < bytes.len() || start == 0 {
            f(start, Part::Text(text.slice(start..bytes.len())));
        }
    }
}

/// What becomes of the special tokens' texts in a text to encode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecialPolicy {
    /// Tokens whose text becomes their id.
    allowed: SpecialTokens,
    /// Tokens whose text is an error (none of them allowed).
    disallowed: SpecialTokens,
}

impl SpecialPolicy {
    /// Every text is ordinary text: no token is cut out, none is an error.
    pub fn none() -> &'static SpecialPolicy {
        static NONE: SpecialPolicy = SpecialPolicy { allowed: SpecialTokens::NONE, disallowed: SpecialTokens::NONE };
        &NONE
    }

    /// tiktoken's `allowed_special` and `disallowed_special` for the special tokens of `vocab`
    /// (a token both allowed and disallowed is allowed).
    pub fn new(vocab: &Vocab, allowed: Selection<'_>, disallowed: Selection<'_>) -> Result<SpecialPolicy> {
        let allowed = SpecialTokens::select(vocab, allowed, "allowed_special")?;
        let disallowed = SpecialTokens::select(vocab, disallowed, "disallowed_special")?.without(&allowed);
        Ok(SpecialPolicy { allowed, disallowed })
    }

    /// Only `allowed`'s tokens matter: their texts become their ids, other texts are text.
    pub fn allowing(allowed: SpecialTokens) -> SpecialPolicy {
        SpecialPolicy { allowed, disallowed: SpecialTokens::NONE }
    }

    /// The tokens whose text becomes their id.
    pub fn allowed(&self) -> &SpecialTokens {
        &self.allowed
    }

    /// True when no text can fail [`SpecialPolicy::check`].
    pub fn checks_nothing(&self) -> bool {
        self.disallowed.is_empty()
    }

    /// Fails with [`Error::DisallowedSpecialToken`] on the first disallowed token in `text`, at
    /// its character position in a `Str`, its byte position in `Bytes`.
    pub fn check(&self, text: Text<'_>) -> Result<()> {
        match self.disallowed.find(text.bytes()) {
            None => Ok(()),
            Some((i, token, _)) => {
                let at = match text {
                    Text::Str(s) => s[..i].chars().count(),
                    Text::Bytes(_) => i,
                };
                Err(Error::DisallowedSpecialToken { token: token.into(), at })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::tests::entries_with;
    use crate::vocab::Entry;

    fn vocab() -> Vocab {
        let mut entries = entries_with(&[]);
        entries.push(Entry::special("<s>", 259));
        entries.push(Entry::special("<s>x", 260));
        Vocab::from_entries(entries, "test").unwrap()
    }

    #[derive(Debug, PartialEq)]
    enum P {
        T(String),
        S(u32),
    }

    fn parts(tokens: &SpecialTokens, text: &str) -> Vec<P> {
        let mut out = vec![];
        tokens.for_each_part(Text::Str(text), |_, p| match p {
            Part::Text(t) => out.push(P::T(String::from_utf8(t.bytes().to_vec()).unwrap())),
            Part::Special(id, _) => out.push(P::S(id)),
        });
        out
    }

    fn named(names: &[&str]) -> SpecialTokens {
        SpecialTokens::select(&vocab(), Selection::Named(names), "allowed_special").unwrap()
    }

    #[test]
    fn texts_are_cut_at_the_longest_leftmost_token() {
        let t = named(&["<s>", "<s>x"]);
        let text = |s: &str| P::T(s.into());
        assert_eq!(parts(&t, "a<s>xb<s><s>"), [text("a"), P::S(260), text("b"), P::S(259), P::S(259)]);
        assert_eq!(parts(&t, "中文"), [text("中文")]);
        assert_eq!(parts(&t, ""), [text("")]);
        assert_eq!(parts(&t, "<s>"), [P::S(259)]);
        assert_eq!(parts(&named(&["<s>"]), "<s>x"), [P::S(259), text("x")]);
        assert_eq!(SpecialTokens::select(&vocab(), Selection::All, "a").unwrap(), t);
    }

    #[test]
    fn only_special_tokens_can_be_named() {
        let err = SpecialTokens::select(&vocab(), Selection::Named(&["b", "a"]), "allowed_special").unwrap_err();
        assert!(matches!(&err, Error::UnknownSpecialToken { token, .. } if token == "a"), "{err}");
        assert!(err.to_string().starts_with("allowed_special: \"a\""), "{err}");
        assert!(named(&[]).is_empty());
    }

    #[test]
    fn disallowed_tokens_are_errors_at_their_position_unless_allowed() {
        let v = vocab();
        let all = SpecialPolicy::new(&v, Selection::Named(&[]), Selection::All).unwrap();
        let err = all.check(Text::Str("中a<s>x")).unwrap_err();
        assert!(matches!(&err, Error::DisallowedSpecialToken { token, at: 2 } if token == "<s>x"), "{err}");
        let err = all.check(Text::Bytes("中a<s>".as_bytes())).unwrap_err();
        assert!(matches!(&err, Error::DisallowedSpecialToken { at: 4, .. }), "{err}");
        assert!(all.check(Text::Str("<x>")).is_ok());
        // as tiktoken, the check looks for the disallowed tokens in the whole text
        let some = SpecialPolicy::new(&v, Selection::Named(&["<s>"]), Selection::All).unwrap();
        assert!(some.check(Text::Str("<s><s>")).is_ok());
        assert!(some.check(Text::Str("<s>x")).is_err());
        assert!(SpecialPolicy::none().check(Text::Str("<s>")).is_ok());
    }
}
