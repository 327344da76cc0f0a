//! The vocabulary: pieces, their ids and their counts.
//!
//! Ids 0, 1 and 2 are `<pad>`, `<bos>` and `<eos>`; piece `i` (in id order) has id `i + 3`.
//!
//! A piece may be a *special token* (a control text such as `<|im_start|>`): it has an id and
//! count 0, is never produced by segmentation, and is only emitted when a caller asks for it.

use std::collections::HashSet;

use crate::error::{Error, Result};

/// Id of `<pad>`.
pub const PAD_ID: u32 = 0;
/// Id of `<bos>`.
pub const BOS_ID: u32 = 1;
/// Id of `<eos>`.
pub const EOS_ID: u32 = 2;
/// Number of ids reserved before the first piece.
pub const NUM_RESERVED: u32 = 3;
/// Names of the reserved ids, in id order.
pub const RESERVED_NAMES: [&str; 3] = ["<pad>", "<bos>", "<eos>"];

/// One vocabulary entry as a model file holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The piece's bytes.
    pub piece: Vec<u8>,
    /// Its id (at least [`NUM_RESERVED`]).
    pub id: u64,
    /// How often it was counted in training: positive for a piece, 0 for a special token.
    pub count: u64,
    /// A special token (valid UTF-8, count 0) rather than a piece of text.
    pub special: bool,
}

impl Entry {
    /// An ordinary piece.
    pub fn piece(piece: Vec<u8>, id: u64, count: u64) -> Entry {
        Entry { piece, id, count, special: false }
    }

    /// A special token.
    pub fn special(text: &str, id: u64) -> Entry {
        Entry { piece: text.as_bytes().to_vec(), id, count: 0, special: true }
    }
}

/// A validated vocabulary: every id from 3 to `3 + len - 1` names one distinct, non-empty piece
/// with a positive count or a special token (UTF-8, count 0), and all 256 single bytes are
/// ordinary pieces (so every text can be encoded).
#[derive(Debug)]
pub struct Vocab {
    pieces: Vec<Box<[u8]>>,
    counts: Vec<u64>,
    /// The indices of `pieces` in the order of their bytes (to look pieces up, and to build the
    /// matcher's trie without sorting again).
    by_bytes: Vec<u32>,
    /// The ids of the special tokens, in id order.
    special_ids: Vec<u32>,
}

impl Vocab {
    /// Builds a vocabulary from entries in any order, checking every rule of the model format.
    ///
    /// `origin` names where the entries came from (a path, or "model dict") for error messages.
    pub fn from_entries(entries: Vec<Entry>, origin: &str) -> Result<Vocab> {
        let invalid = |message: String| Error::InvalidModel { origin: origin.to_string(), message };
        if entries.is_empty() {
            return Err(invalid("the vocabulary is empty".into()));
        }
        let n = entries.len();
        let mut slots: Vec<Option<(Box<[u8]>, u64)>> = vec![None; n];
        let mut out_of_range = None;
        for entry in entries {
            if entry.piece.is_empty() {
                return Err(invalid(format!("id {} has an empty piece", entry.id)));
            }
            if entry.special {
                if std::str::from_utf8(&entry.piece).is_err() || entry.count != 0 {
                    return Err(invalid(format!(
                        "special token {} (id {}) must be UTF-8 text with count 0",
                        show_piece(&entry.piece),
                        entry.id
                    )));
                }
            } else if entry.count == 0 {
                return Err(invalid(format!(
                    "piece {} (id {}) has count 0; counts must be positive",
                    show_piece(&entry.piece),
                    entry.id
                )));
            }
            let slot = entry.id.checked_sub(u64::from(NUM_RESERVED)).filter(|&i| i < n as u64);
            let Some(slot) = slot else {
                out_of_range.get_or_insert((entry.id, entry.piece));
                continue;
            };
            if slots[slot as usize].is_some() {
                return Err(invalid(format!("id {} is used by more than one piece", entry.id)));
            }
            slots[slot as usize] = Some((entry.piece.into_boxed_slice(), entry.count));
        }
        if let Some((id, piece)) = out_of_range {
            let missing: Vec<String> = (0..n)
                .filter(|&i| slots[i].is_none())
                .take(5)
                .map(|i| (i as u64 + u64::from(NUM_RESERVED)).to_string())
                .collect();
            return Err(invalid(format!(
                "the {n} pieces must have the ids {NUM_RESERVED} to {} (0-2 are reserved), but piece {} has id {id}{}",
                n as u64 + u64::from(NUM_RESERVED) - 1,
                show_piece(&piece),
                if missing.is_empty() { String::new() } else { format!(" and id {} is missing", missing.join(", ")) }
            )));
        }
        // Every slot is filled: n entries, n slots, no slot filled twice.
        let (pieces, counts): (Vec<Box<[u8]>>, Vec<u64>) = slots.into_iter().flatten().unzip();
        // sorted by the first 8 bytes as a number first: fewer byte-string comparisons
        let head = |p: &[u8]| {
            let mut bytes = [0u8; 8];
            bytes[..p.len().min(8)].copy_from_slice(&p[..p.len().min(8)]);
            u64::from_be_bytes(bytes)
        };
        let mut keyed: Vec<(u64, u32)> = pieces.iter().zip(0..n as u32).map(|(p, i)| (head(p), i)).collect();
        keyed.sort_unstable_by(|&(ha, a), &(hb, b)| {
            ha.cmp(&hb).then_with(|| pieces[a as usize].cmp(&pieces[b as usize]))
        });
        let by_bytes: Vec<u32> = keyed.into_iter().map(|(_, i)| i).collect();
        if let Some(pair) = by_bytes.windows(2).find(|w| pieces[w[0] as usize] == pieces[w[1] as usize]) {
            let (first, second) = (pair[0].min(pair[1]) as usize, pair[0].max(pair[1]) as usize);
            let what = if counts[first] == 0 || counts[second] == 0 { "special token" } else { "piece" };
            return Err(invalid(format!(
                "{what} {} appears twice (ids {} and {})",
                show_piece(&pieces[first]),
                first as u32 + NUM_RESERVED,
                second as u32 + NUM_RESERVED
            )));
        }
        let special_ids = (0..n as u32).filter(|&i| counts[i as usize] == 0).map(|i| i + NUM_RESERVED).collect();
        let vocab = Vocab { pieces, counts, by_bytes, special_ids };
        let missing: Vec<String> = (0..=255u8)
            .filter(|b| vocab.id(&[*b]).is_none_or(|id| vocab.is_special(id)))
            .map(|b| format!("0x{b:02x}"))
            .collect();
        if !missing.is_empty() {
            return Err(invalid(format!(
                "{} single-byte piece(s) missing ({}{}); every byte must be a piece",
                missing.len(),
                missing[..missing.len().min(8)].join(", "),
                if missing.len() > 8 { ", ..." } else { "" }
            )));
        }
        Ok(vocab)
    }

    /// Number of pieces (the vocabulary size less the 3 reserved ids).
    pub fn len(&self) -> usize {
        self.pieces.len()
    }

    /// Always false: a validated vocabulary has at least the 256 single bytes.
    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    /// Total number of ids, the reserved ones included.
    pub fn vocab_size(&self) -> usize {
        self.pieces.len() + NUM_RESERVED as usize
    }

    /// The pieces in id order (piece `i` has id `i + 3`).
    pub fn pieces(&self) -> &[Box<[u8]>] {
        &self.pieces
    }

    /// The counts in id order.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// The bytes of the piece with this id, or `None` for a reserved or unknown id.
    pub fn piece(&self, id: u32) -> Option<&[u8]> {
        let i = id.checked_sub(NUM_RESERVED)? as usize;
        self.pieces.get(i).map(|p| &**p)
    }

    /// The id of a piece or special token, or `None` when it is not in the vocabulary.
    pub fn id(&self, piece: &[u8]) -> Option<u32> {
        let found = self.by_bytes.binary_search_by(|&i| (*self.pieces[i as usize]).cmp(piece)).ok()?;
        Some(self.by_bytes[found] + NUM_RESERVED)
    }

    /// The index in [`Self::pieces`] of every piece and special token, in the order of their
    /// bytes.
    pub(crate) fn by_bytes(&self) -> &[u32] {
        &self.by_bytes
    }

    /// True when `id` is a special token's (never produced by segmentation).
    pub fn is_special(&self, id: u32) -> bool {
        id.checked_sub(NUM_RESERVED).and_then(|i| self.counts.get(i as usize)).is_some_and(|&c| c == 0)
    }

    /// The ids of the special tokens, in id order.
    pub fn special_ids(&self) -> &[u32] {
        &self.special_ids
    }

    /// The entries of this vocabulary, in id order (what [`Vocab::from_entries`] takes back).
    pub fn entries(&self) -> Vec<Entry> {
        self.pieces
            .iter()
            .zip(&self.counts)
            .enumerate()
            .map(|(i, (p, &c))| Entry {
                piece: p.to_vec(),
                id: i as u64 + u64::from(NUM_RESERVED),
                count: c,
                special: c == 0,
            })
            .collect()
    }
}

/// Vocabulary surgery: each change gives a new vocabulary in which the ids stay contiguous.
impl Vocab {
    /// This vocabulary with the special tokens `tokens` added at the next free ids, in order;
    /// tokens that are already special are skipped. Returns it and how many were added. A
    /// token must be a text of 2 bytes or more (single bytes are pieces), and not the text of
    /// an ordinary piece.
    pub fn with_special_tokens(&self, tokens: &[&str]) -> Result<(Vocab, usize)> {
        let mut entries = self.entries();
        let mut added: HashSet<&str> = HashSet::new();
        for &token in tokens {
            if token.len() < 2 {
                return Err(Error::InvalidArgument(format!(
                    "a special token is a text of 2 bytes or more, got {token:?}"
                )));
            }
            match self.id(token.as_bytes()) {
                Some(id) if self.is_special(id) => {}
                Some(id) => {
                    return Err(Error::InvalidArgument(format!(
                        "{token:?} is an ordinary piece (id {id}): remove the piece first"
                    )))
                }
                None if added.contains(token) => {}
                None => {
                    added.insert(token);
                    entries.push(Entry::special(token, (entries.len() + NUM_RESERVED as usize) as u64));
                }
            }
        }
        Ok((Vocab::from_entries(entries, "the vocabulary")?, added.len()))
    }

    /// This vocabulary with ordinary pieces added at the next free ids, each with its count
    /// (positive); returns it and their ids. The pieces must be new, distinct and non-empty.
    pub fn with_pieces(&self, pieces: &[(&[u8], u64)]) -> Result<(Vocab, Vec<u32>)> {
        let mut entries = self.entries();
        let mut ids = Vec::with_capacity(pieces.len());
        let mut seen: HashSet<&[u8]> = HashSet::new();
        for &(piece, count) in pieces {
            if piece.is_empty() || !seen.insert(piece) {
                return Err(Error::InvalidArgument("the pieces to add must be distinct and non-empty".into()));
            }
            if count == 0 {
                return Err(Error::InvalidArgument(format!("the count of {} must be positive", show_piece(piece))));
            }
            if let Some(id) = self.id(piece) {
                return Err(Error::InvalidArgument(format!(
                    "{} is already in the vocabulary (id {id})",
                    show_piece(piece)
                )));
            }
            let id = entries.len() as u32 + NUM_RESERVED;
            entries.push(Entry::piece(piece.to_vec(), u64::from(id), count));
            ids.push(id);
        }
        Ok((Vocab::from_entries(entries, "the vocabulary")?, ids))
    }

    /// This vocabulary without `pieces` (ordinary pieces or special tokens); the ids after each
    /// removed one move down. Single bytes cannot be removed: every text must stay encodable.
    pub fn without_pieces(&self, pieces: &[&[u8]]) -> Result<Vocab> {
        let mut gone = vec![false; self.len()];
        for &piece in pieces {
            if piece.len() == 1 {
                return Err(Error::InvalidArgument(format!(
                    "{} is a single byte: every byte must stay a piece",
                    show_piece(piece)
                )));
            }
            match self.id(piece) {
                Some(id) => gone[(id - NUM_RESERVED) as usize] = true,
                None => return Err(Error::InvalidArgument(format!("{} is not in the vocabulary", show_piece(piece)))),
            }
        }
        let mut entries: Vec<Entry> =
            self.entries().into_iter().zip(gone).filter(|(_, g)| !g).map(|(e, _)| e).collect();
        for (i, e) in entries.iter_mut().enumerate() {
            e.id = (i + NUM_RESERVED as usize) as u64;
        }
        Vocab::from_entries(entries, "the vocabulary")
    }
}

/// A short printable form of a piece for messages: its text when it is UTF-8, else its bytes.
pub fn show_piece(piece: &[u8]) -> String {
    let shown = match std::str::from_utf8(piece) {
        Ok(text) => format!("{text:?}"),
        Err(_) => format!("b\"{}\"", piece.escape_ascii()),
    };
    if shown.chars().count() > 40 {
        let cut: String = shown.chars().take(37).collect();
        format!("{cut}...")
    } else {
        shown
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// All 256 single bytes with count 1, then the given pieces, ids in that order.
    pub(crate) fn entries_with(extra: &[(&[u8], u64)]) -> Vec<Entry> {
        let mut pieces: Vec<(Vec<u8>, u64)> = (0..=255u8).map(|b| (vec![b], 1)).collect();
        pieces.extend(extra.iter().map(|(p, c)| (p.to_vec(), *c)));
        pieces.into_iter().enumerate().map(|(i, (piece, count))| Entry::piece(piece, i as u64 + 3, count)).collect()
    }

    fn err(entries: Vec<Entry>) -> String {
        Vocab::from_entries(entries, "m.model").unwrap_err().to_string()
    }

    #[test]
    fn valid_vocabulary_maps_both_ways() {
        let v = Vocab::from_entries(entries_with(&[(b"ab", 5)]), "m").unwrap();
        assert_eq!(v.len(), 257);
        assert_eq!(v.vocab_size(), 260);
        assert_eq!(v.id(b"ab"), Some(259));
        assert_eq!(v.piece(259), Some(&b"ab"[..]));
        assert_eq!(v.piece(2), None);
        assert_eq!(v.piece(260), None);
        assert_eq!(v.id(b"zz"), None);
    }

    #[test]
    fn rejects_broken_vocabularies_with_a_reason() {
        assert!(err(vec![]).contains("empty"));
        let mut e = entries_with(&[(b"ab", 5)]);
        e[256].id = 3;
        assert!(err(e).contains("more than one piece"), "duplicate id");
        let mut e = entries_with(&[(b"ab", 5)]);
        e[256].id = 1000;
        let msg = err(e);
        assert!(msg.contains("has id 1000 and id 259 is missing"), "{msg}");
        let mut e = entries_with(&[(b"ab", 5)]);
        e[256].count = 0;
        assert!(err(e).contains("count 0"));
        let e = entries_with(&[(b"a", 5)]);
        assert!(err(e).contains("appears twice"));
        let mut e = entries_with(&[(b"ab", 5)]);
        e[7].piece = b"xy".to_vec();
        let msg = err(e);
        assert!(msg.contains("1 single-byte piece(s) missing (0x07)"), "{msg}");
        assert!(msg.starts_with("m.model: "));
    }

    #[test]
    fn surgery_keeps_ids_contiguous_and_refuses_what_breaks_the_model() {
        let v = Vocab::from_entries(entries_with(&[(b"ab", 5)]), "m").unwrap();
        let (v, added) = v.with_special_tokens(&["<s>", "<t>", "<s>"]).unwrap();
        assert_eq!((added, v.id(b"<s>"), v.id(b"<t>")), (2, Some(260), Some(261)));
        assert!(v.is_special(260));
        assert_eq!(v.with_special_tokens(&["<s>"]).unwrap().1, 0);
        assert!(v.with_special_tokens(&["ab"]).unwrap_err().to_string().contains("ordinary piece (id 259)"));
        assert!(v.with_special_tokens(&["x"]).unwrap_err().to_string().contains("2 bytes or more"));

        let (v, ids) = v.with_pieces(&[(b"abc", 7), (b"zz", 1)]).unwrap();
        assert_eq!(ids, [262, 263]);
        assert_eq!(v.counts()[259], 7);
        assert!(v.with_pieces(&[(b"ab", 1)]).unwrap_err().to_string().contains("already in the vocabulary (id 259)"));
        assert!(v.with_pieces(&[(b"q1", 1), (b"q1", 1)]).unwrap_err().to_string().contains("distinct"));
        assert!(v.with_pieces(&[(b"q1", 0)]).unwrap_err().to_string().contains("positive"));

        let v = v.without_pieces(&[b"ab", b"<s>"]).unwrap();
        assert_eq!((v.id(b"<t>"), v.id(b"abc"), v.id(b"zz"), v.id(b"ab")), (Some(259), Some(260), Some(261), None));
        assert!(v.is_special(259));
        assert!(v.without_pieces(&[b"a"]).unwrap_err().to_string().contains("single byte"));
        assert!(v.without_pieces(&[b"nope"]).unwrap_err().to_string().contains("not in the vocabulary"));
    }
}
