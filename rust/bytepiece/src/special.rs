//! Cutting a text at the special tokens allowed in it, as tiktoken's `allowed_special` does:
//! the leftmost match wins and, of two tokens starting at one place, the longer.

use crate::error::{Error, Result};
use crate::vocab::Vocab;

/// One part of a text cut at its special tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part<'t> {
    /// Ordinary text, encoded as such (never empty).
    Text(&'t str),
    /// A special token's id.
    Special(u32),
}

/// Finds the allowed special tokens of a model in text.
#[derive(Debug, Clone)]
pub struct SpecialTokens {
    /// The tokens' texts and ids, longest first (then by text).
    tokens: Vec<(Box<str>, u32)>,
    /// Whether a token starts with this byte.
    first: [bool; 256],
}

impl Default for SpecialTokens {
    /// No token allowed.
    fn default() -> Self {
        SpecialTokens { tokens: Vec::new(), first: [false; 256] }
    }
}

impl SpecialTokens {
    /// The special tokens of `vocab` named in `allowed` (each must be one).
    pub fn allowed(vocab: &Vocab, allowed: &[&str]) -> Result<SpecialTokens> {
        let mut tokens: Vec<(Box<str>, u32)> = Vec::with_capacity(allowed.len());
        for &text in allowed {
            match vocab.id(text.as_bytes()).filter(|&id| vocab.is_special(id)) {
                Some(id) => tokens.push((Box::from(text), id)),
                None => return Err(Error::InvalidArgument(format!("{text:?} is not a special token of the model"))),
            }
        }
        tokens.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        tokens.dedup();
        let mut first = [false; 256];
        for (t, _) in &tokens {
            if let Some(&b) = t.as_bytes().first() {
                first[b as usize] = true;
            }
        }
        Ok(SpecialTokens { tokens, first })
    }

    /// True when no token is allowed (texts are never cut).
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Calls `f` on the parts of `text` in order: the text between tokens (when not empty) and
    /// each token's id. A text without tokens is one part, even when empty.
    pub fn for_each_part<'t>(&self, text: &'t str, mut f: impl FnMut(Part<'t>)) {
        let bytes = text.as_bytes();
        let (mut start, mut i) = (0, 0);
        while i < bytes.len() {
            let token = if self.first[bytes[i] as usize] {
                self.tokens.iter().find(|(t, _)| bytes[i..].starts_with(t.as_bytes()))
            } else {
                None
            };
            match token {
                Some((t, id)) => {
                    // a token is UTF-8 and starts with a leading byte: `i` is a char boundary
                    if i > start {
                        f(Part::Text(&text[start..i]));
                    }
                    f(Part::Special(*id));
                    i += t.len();
                    start = i;
                }
                None => i += 1,
            }
        }
        if start < bytes.len() || start == 0 {
            f(Part::Text(&text[start..]));
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

    fn parts<'t>(tokens: &SpecialTokens, text: &'t str) -> Vec<Part<'t>> {
        let mut out = vec![];
        tokens.for_each_part(text, |p| out.push(p));
        out
    }

    #[test]
    fn texts_are_cut_at_the_longest_leftmost_token() {
        let t = SpecialTokens::allowed(&vocab(), &["<s>", "<s>x"]).unwrap();
        use Part::{Special, Text};
        assert_eq!(parts(&t, "a<s>xb<s><s>"), [Text("a"), Special(260), Text("b"), Special(259), Special(259)]);
        assert_eq!(parts(&t, "中文"), [Text("中文")]);
        assert_eq!(parts(&t, ""), [Text("")]);
        assert_eq!(parts(&t, "<s>"), [Special(259)]);
        let only_short = SpecialTokens::allowed(&vocab(), &["<s>"]).unwrap();
        assert_eq!(parts(&only_short, "<s>x"), [Special(259), Text("x")]);
    }

    #[test]
    fn only_special_tokens_can_be_allowed() {
        let err = SpecialTokens::allowed(&vocab(), &["a"]).unwrap_err().to_string();
        assert!(err.contains("\"a\" is not a special token"), "{err}");
        assert!(SpecialTokens::allowed(&vocab(), &[]).unwrap().is_empty());
    }
}
