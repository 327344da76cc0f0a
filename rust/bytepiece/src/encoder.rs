//! Unigram encoding: each line of a text is a chunk whose ids are the best (or a sampled) path
//! through its lattice of vocabulary matches ([`crate::lattice`]); and decoding back to bytes.
//! Cost and memory are linear in the text for a given vocabulary.

use std::borrow::Cow;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::lattice::{best_segmentation, piece_scores, sample_path, Lattice};
use crate::matcher::Matcher;
use crate::normalize::split_lines;
use crate::offsets::Alignment;
use crate::sampler::{document_seed, Rng};
use crate::special::{Part, SpecialPolicy};
use crate::text::Text;
use crate::vocab::{Vocab, BOS_ID, EOS_ID, NUM_RESERVED};

/// How to encode.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EncodeOptions<'s> {
    /// Put `<bos>` (id 1) first.
    pub add_bos: bool,
    /// Put `<eos>` (id 2) last.
    pub add_eos: bool,
    /// Below 0: the best segmentation. At least 0: a segmentation drawn with probability
    /// proportional to `exp(alpha * score)` (0 draws uniformly). Must not be NaN or infinite.
    pub alpha: f64,
    /// Which special tokens' texts become their ids, and which are errors (by default, none:
    /// all text is ordinary text).
    pub special: &'s SpecialPolicy,
}

impl Default for EncodeOptions<'_> {
    fn default() -> Self {
        EncodeOptions { add_bos: false, add_eos: false, alpha: -1.0, special: SpecialPolicy::none() }
    }
}

impl EncodeOptions<'_> {
    /// Checks the options: `alpha` must be a finite number.
    pub fn validate(&self) -> Result<()> {
        if self.alpha.is_finite() {
            Ok(())
        } else {
            Err(Error::InvalidArgument(format!(
                "alpha must be a finite number (negative for the best segmentation, >= 0 to sample), got {}",
                self.alpha
            )))
        }
    }
}

/// Where an id came from in the caller's text: `(start, end)`, see [`Encoder::encode_with_offsets`].
pub type Span = (usize, usize);

/// A ready-to-use tokenizer: a vocabulary and its matcher (which holds the piece scores).
#[derive(Debug)]
pub struct Encoder {
    vocab: Vocab,
    matcher: Matcher,
}

impl Encoder {
    /// Builds an encoder, computing logarithms with Rust's `f64::ln`.
    pub fn new(vocab: Vocab) -> Result<Encoder> {
        Encoder::with_log(vocab, |xs| Ok(xs.iter().map(|x| x.ln()).collect()))
    }

    /// Builds an encoder with a given natural logarithm, applied elementwise to the positive
    /// counts (as `f64`, in id order) followed by their total. The Python bindings pass NumPy's
    /// `log`, which the original uses and which on some CPUs differs from the C library's in the
    /// last bit. Special tokens (count 0) score `-inf` and are left out of the matcher.
    pub fn with_log(vocab: Vocab, ln: impl FnOnce(&[f64]) -> Result<Vec<f64>>) -> Result<Encoder> {
        let matcher = Matcher::new(&vocab, &piece_scores(vocab.counts(), ln)?)?;
        Ok(Encoder { vocab, matcher })
    }

    /// The vocabulary.
    pub fn vocab(&self) -> &Vocab {
        &self.vocab
    }

    /// The score (log-probability) of each piece, in id order from id 3 (`-inf` for a special
    /// token).
    pub fn scores(&self) -> &[f64] {
        self.matcher.scores()
    }

    /// Appends the ids of the best segmentation of one chunk (a line, see
    /// [`split_lines`]) to `out`.
    pub fn encode_chunk(&self, chunk: &[u8], lattice: &mut Lattice, out: &mut Vec<u32>) {
        best_segmentation(&self.matcher, chunk, lattice, out);
    }

    /// Encodes one text. `seed` only matters when sampling (`alpha >= 0`).
    pub fn encode(&self, text: Text<'_>, options: &EncodeOptions<'_>, seed: u64) -> Result<Vec<u32>> {
        options.validate()?;
        options.special.check(text)?;
        Ok(self.encode_unchecked(text, options, seed))
    }

    /// Encodes one text and gives each id its span in `text`: character positions of a `Str`
    /// (before NFC), byte positions of `Bytes`; see [`crate::offsets`] for pieces that split a
    /// character. A special token's id gets its text's span, `<bos>` the empty span at 0,
    /// `<eos>` the empty span at the end.
    pub fn encode_with_offsets(
        &self,
        text: Text<'_>,
        options: &EncodeOptions<'_>,
        seed: u64,
    ) -> Result<(Vec<u32>, Vec<Span>)> {
        options.validate()?;
        options.special.check(text)?;
        let (mut ids, mut spans) = (Vec::new(), Vec::new());
        if options.add_bos {
            ids.push(BOS_ID);
            spans.push((0, 0));
        }
        let mut rng = Rng::new(seed);
        let lattice = &mut Lattice::default();
        // the parts' positions in the caller's units: characters of a `Str`, bytes of `Bytes`
        let mut at = 0;
        options.special.allowed().for_each_part(text, |_, part| match part {
            Part::Text(t) => {
                let alignment = match t {
                    Text::Str(s) => Alignment::of_str(s),
                    Text::Bytes(b) => Alignment::of_bytes(b),
                };
                let first = ids.len();
                self.append_ids(Text::Bytes(alignment.normalized()), options.alpha, &mut rng, lattice, &mut ids);
                let lengths = ids[first..].iter().filter_map(|&id| self.vocab.piece(id).map(<[u8]>::len));
                spans.extend(alignment.spans(lengths).into_iter().map(|(a, b)| (at + a, at + b)));
                at += alignment.original_len();
            }
            Part::Special(id, token) => {
                let end = at
                    + match text {
                        Text::Str(_) => token.chars().count(),
                        Text::Bytes(_) => token.len(),
                    };
                ids.push(id);
                spans.push((at, end));
                at = end;
            }
        });
        if options.add_eos {
            ids.push(EOS_ID);
            spans.push((at, at));
        }
        Ok((ids, spans))
    }

    fn encode_unchecked(&self, text: Text<'_>, options: &EncodeOptions<'_>, seed: u64) -> Vec<u32> {
        let mut out = Vec::with_capacity(text.normalized_len_hint() / 3 + 2);
        self.append_document(text, options, &mut Rng::new(seed), &mut Lattice::default(), &mut out);
        out
    }

    /// Appends the ids of one document to `out`: `<bos>` if asked, the ids of its parts (the
    /// text between its allowed special tokens, and each token's id), `<eos>` if asked. The
    /// text is not checked for disallowed tokens.
    pub(crate) fn append_document(
        &self,
        text: Text<'_>,
        options: &EncodeOptions<'_>,
        rng: &mut Rng,
        lattice: &mut Lattice,
        out: &mut Vec<u32>,
    ) {
        if options.add_bos {
            out.push(BOS_ID);
        }
        let allowed = options.special.allowed();
        if allowed.is_empty() {
            self.append_ids(text, options.alpha, rng, lattice, out);
        } else {
            allowed.for_each_part(text, |_, part| match part {
                Part::Text(t) => self.append_ids(t, options.alpha, rng, lattice, out),
                Part::Special(id, _) => out.push(id),
            });
        }
        if options.add_eos {
            out.push(EOS_ID);
        }
    }

    /// Appends the ids of `text` (no `<bos>` or `<eos>`, no special tokens) to `out`: its best
    /// segmentation when `alpha < 0`, else one drawn with `rng` (see [`EncodeOptions::alpha`]).
    fn append_ids(&self, text: Text<'_>, alpha: f64, rng: &mut Rng, lattice: &mut Lattice, out: &mut Vec<u32>) {
        let bytes = text.normalized();
        for chunk in split_lines(&bytes) {
            if alpha >= 0.0 {
                sample_path(&self.matcher, chunk, alpha, rng, lattice, out);
            } else {
                self.encode_chunk(chunk, lattice, out);
            }
        }
    }

    /// Encodes many texts on the current rayon pool (see [`crate::parallel`]); the result is the
    /// same as encoding them one by one with seeds `document_seed(seed, index)`, whatever the
    /// number of threads. A disallowed special token fails the batch, naming the first text
    /// that holds one.
    pub fn encode_batch(&self, texts: &[Text<'_>], options: &EncodeOptions<'_>, seed: u64) -> Result<Vec<Vec<u32>>> {
        self.encode_batch_at(texts, options, seed, 0)
    }

    /// [`Encoder::encode_batch`] for a slice of a larger batch that starts at index `first`
    /// (documents are seeded by their index in the whole batch).
    pub fn encode_batch_at(
        &self,
        texts: &[Text<'_>],
        options: &EncodeOptions<'_>,
        seed: u64,
        first: usize,
    ) -> Result<Vec<Vec<u32>>> {
        options.validate()?;
        if !options.special.checks_nothing() {
            let failed = texts
                .par_iter()
                .enumerate()
                .filter_map(|(i, t)| options.special.check(*t).err().map(|e| (i, e)))
                .min_by_key(|(i, _)| *i);
            if let Some((_, e)) = failed {
                return Err(e);
            }
        }
        Ok(texts
            .par_iter()
            .enumerate()
            .with_min_len(1)
            .map(|(i, t)| self.encode_unchecked(*t, options, document_seed(seed, first + i)))
            .collect())
    }

    /// The counts to give new pieces so that each scores as if training had seen it as often
    /// as it occurs in `texts` (text from the domain the pieces come from): its occurrences in
    /// the texts' NFC form (not overlapping) over the number of ids this encoder gives them,
    /// times the total count of the vocabulary, rounded half to even (at least 1). A piece that
    /// does not occur in the texts is an error.
    pub fn estimate_counts(&self, pieces: &[&[u8]], texts: &[Text<'_>]) -> Result<Vec<u64>> {
        let docs: Vec<Cow<'_, [u8]>> = texts.par_iter().map(Text::normalized).collect();
        let bytes: Vec<Text<'_>> = docs.iter().map(|d| Text::Bytes(d)).collect();
        let tokens: u128 =
            self.encode_batch(&bytes, &EncodeOptions::default(), 0)?.iter().map(|d| d.len() as u128).sum();
        let total: u128 = self.vocab.counts().iter().map(|&c| u128::from(c)).sum();
        pieces
            .iter()
            .map(|&piece| {
                let found: u128 = docs.iter().map(|d| occurrences(d, piece) as u128).sum();
                if found == 0 {
                    return Err(Error::InvalidArgument(format!(
                        "{} does not occur in the given texts",
                        crate::vocab::show_piece(piece)
                    )));
                }
                // total * found / tokens, rounded half to even
                let tokens = tokens.max(1);
                let (q, r) = (total * found / tokens, total * found % tokens);
                let up = 2 * r > tokens || (2 * r == tokens && q % 2 == 1);
                Ok(u64::try_from(q + u128::from(up)).unwrap_or(u64::MAX).max(1))
            })
            .collect()
    }

    /// The bytes of the given ids joined; ids 0, 1 and 2 (and negative ones) are skipped, as the
    /// original skips them. An id past the vocabulary is an error.
    pub fn decode(&self, ids: &[i64]) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(ids.len() * 3);
        for &id in ids {
            if id < i64::from(NUM_RESERVED) {
                continue;
            }
            let piece = u32::try_from(id)
                .ok()
                .and_then(|id| self.vocab.piece(id))
                .ok_or(Error::UnknownId { id, vocab_size: self.vocab.vocab_size() })?;
            out.extend_from_slice(piece);
        }
        Ok(out)
    }
}

/// The occurrences of `needle` (not empty) in `haystack`, not overlapping.
fn occurrences(haystack: &[u8], needle: &[u8]) -> usize {
    let (mut n, mut i) = (0, 0);
    while i + needle.len() <= haystack.len() {
        if haystack[i..].starts_with(needle) {
            n += 1;
            i += needle.len();
        } else {
            i += 1;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::tests::entries_with;

    fn toy(extra: &[(&[u8], u64)]) -> Encoder {
        Encoder::new(Vocab::from_entries(entries_with(extra), "toy").unwrap()).unwrap()
    }

    fn pieces(enc: &Encoder, ids: &[u32]) -> Vec<String> {
        ids.iter().map(|&i| String::from_utf8_lossy(enc.vocab().piece(i).unwrap()).into_owned()).collect()
    }

    fn best(enc: &Encoder, text: &str) -> Vec<String> {
        let ids = enc.encode(Text::Str(text), &EncodeOptions::default(), 0).unwrap();
        pieces(enc, &ids)
    }

    #[test]
    fn prefers_frequent_pieces() {
        let enc = toy(&[(b"ab", 1000), (b"bc", 10)]);
        assert_eq!(best(&enc, "abc"), ["ab", "c"]);
        let enc = toy(&[(b"ab", 10), (b"bc", 1000)]);
        assert_eq!(best(&enc, "abc"), ["a", "bc"]);
    }

    #[test]
    fn ties_go_to_the_first_candidate_as_in_the_original() {
        // ab|c and a|bc have bitwise-equal scores; at end 3 "bc" is seen before "c", and a later
        // equal candidate does not replace it.
        let enc = toy(&[(b"ab", 1), (b"bc", 1)]);
        assert_eq!(best(&enc, "abc"), ["a", "bc"]);
    }

    #[test]
    fn lines_are_encoded_separately_and_specials_added() {
        let enc = toy(&[(b"a\nb", 1_000_000)]);
        assert_eq!(best(&enc, "a\nb"), ["a", "\n", "b"]);
        let opts = EncodeOptions { add_bos: true, add_eos: true, ..Default::default() };
        let ids = enc.encode(Text::Str(""), &opts, 0).unwrap();
        assert_eq!(ids, [BOS_ID, EOS_ID]);
    }

    #[test]
    fn nfc_applies_to_str_but_not_to_bytes() {
        let enc = toy(&[]);
        let s = enc.encode(Text::Str("e\u{301}"), &EncodeOptions::default(), 0).unwrap();
        assert_eq!(enc.decode(&s.iter().map(|&i| i64::from(i)).collect::<Vec<_>>()).unwrap(), "\u{e9}".as_bytes());
        let b = enc.encode(Text::Bytes("e\u{301}".as_bytes()), &EncodeOptions::default(), 0).unwrap();
        assert_eq!(b.len(), 3);
    }

    #[test]
    fn decode_skips_reserved_and_rejects_unknown() {
        let enc = toy(&[(b"ab", 3)]);
        assert_eq!(enc.decode(&[1, 259, -4, 2, 100]).unwrap(), b"aba");
        assert!(enc.decode(&[260]).unwrap_err().to_string().contains("id 260"));
    }

    #[test]
    fn a_run_of_a_million_bytes_is_one_pass_without_recursion() {
        let enc = toy(&[(b"aa", 5), (b"aaaa", 50)]);
        // the lattice's edges, counted: a walk from every start passes the trie's 4 nodes a, aa,
        // aaa (no piece) and aaaa, fewer near the end, so doubling the run doubles them (a walk
        // that did not stop would grow with the text)
        let edges = |n: usize| {
            let text = vec![b'a'; n];
            let mut count = 0usize;
            for s in 0..n {
                enc.matcher.for_each_prefix(&text, s, |_, _, _| count += 1);
            }
            count
        };
        assert_eq!(edges(200_000), 4 * 200_000 - 6);
        assert_eq!(edges(400_000), 2 * edges(200_000) + 6);
        // a recursive backtrack would overflow the stack of a test thread on this chunk
        let text = "a".repeat(1_000_001);
        let ids = enc.encode(Text::Str(&text), &EncodeOptions::default(), 0).unwrap();
        assert_eq!(ids.len(), 250_001);
    }

    #[test]
    fn rejects_non_finite_alpha() {
        let enc = toy(&[]);
        for alpha in [f64::NAN, f64::INFINITY] {
            let opts = EncodeOptions { alpha, ..Default::default() };
            assert!(enc.encode(Text::Str("x"), &opts, 0).is_err());
        }
    }

    #[test]
    fn sampling_is_seeded_and_always_a_segmentation() {
        let enc = toy(&[(b"ab", 50), (b"bc", 50), (b"abc", 5)]);
        let opts = EncodeOptions { alpha: 0.0, ..Default::default() };
        let text = "abcabcabc\nabc";
        let draw = |seed| enc.encode(Text::Str(text), &opts, seed).unwrap();
        assert_eq!(draw(1), draw(1));
        let distinct: std::collections::HashSet<Vec<u32>> = (0..50).map(draw).collect();
        assert!(distinct.len() > 10);
        for ids in distinct {
            let wide: Vec<i64> = ids.iter().map(|&i| i64::from(i)).collect();
            assert_eq!(enc.decode(&wide).unwrap(), text.as_bytes());
        }
        // a huge alpha overflows scores to -inf and must still give a segmentation
        let opts = EncodeOptions { alpha: 1e308, ..Default::default() };
        let ids = enc.encode(Text::Str(text), &opts, 3).unwrap();
        let wide: Vec<i64> = ids.iter().map(|&i| i64::from(i)).collect();
        assert_eq!(enc.decode(&wide).unwrap(), text.as_bytes());
    }

    #[test]
    fn batch_equals_one_by_one() {
        let enc = toy(&[(b"ab", 50), (b"bc", 50)]);
        let texts: Vec<String> = (0..40).map(|i| "abc".repeat(i)).collect();
        let inputs: Vec<Text> = texts.iter().map(|t| Text::Str(t)).collect();
        for alpha in [-1.0, 0.5] {
            let opts = EncodeOptions { alpha, ..Default::default() };
            let batch = enc.encode_batch(&inputs, &opts, 9).unwrap();
            for (i, t) in inputs.iter().enumerate() {
                assert_eq!(batch[i], enc.encode(*t, &opts, document_seed(9, i)).unwrap());
            }
        }
    }

    #[test]
    fn allowed_special_tokens_become_their_ids_with_their_spans() {
        use crate::special::{Selection, SpecialPolicy};
        use crate::vocab::Entry;
        let mut entries = entries_with(&[(b"ab", 5)]);
        entries.push(Entry::special("<s>", 260));
        let enc = Encoder::new(Vocab::from_entries(entries, "toy").unwrap()).unwrap();
        let all = SpecialPolicy::new(enc.vocab(), Selection::All, Selection::All).unwrap();
        let opts = EncodeOptions { add_bos: true, add_eos: true, special: &all, ..Default::default() };
        let plain = |t: &str| enc.encode(Text::Str(t), &EncodeOptions::default(), 0).unwrap();
        let want = [vec![BOS_ID], plain("ab\u{e9}"), vec![260], plain("e\u{301}b"), vec![EOS_ID]].concat();
        assert_eq!(enc.encode(Text::Str("ab\u{e9}<s>e\u{301}b"), &opts, 0).unwrap(), want);
        let (ids, spans) = enc.encode_with_offsets(Text::Str("ab\u{e9}<s>e\u{301}b"), &opts, 0).unwrap();
        assert_eq!(ids, want);
        // characters of the text as given: "ab", the two bytes of "é" (each gets the character),
        // "<s>" at 3..6, then the two bytes of "é" that NFC made of "e\u{301}" (two characters)
        // and "b"
        assert_eq!(spans, [(0, 0), (0, 2), (2, 3), (2, 3), (3, 6), (6, 8), (6, 8), (8, 9), (9, 9)]);
        let (_, byte_spans) = enc.encode_with_offsets(Text::Bytes(b"a<s>b"), &opts, 0).unwrap();
        assert_eq!(byte_spans, [(0, 0), (0, 1), (1, 4), (4, 5), (5, 5)]);
        // not allowed: an error, for one text and for the first text of a batch that has one
        let none = SpecialPolicy::new(enc.vocab(), Selection::Named(&[]), Selection::All).unwrap();
        let strict = EncodeOptions { special: &none, ..Default::default() };
        assert!(matches!(enc.encode(Text::Str("x<s>"), &strict, 0), Err(Error::DisallowedSpecialToken { at: 1, .. })));
        let texts = [Text::Str("ok"), Text::Str("<s>"), Text::Str("..<s>")];
        let err = enc.encode_batch(&texts, &strict, 0).unwrap_err();
        assert!(matches!(err, Error::DisallowedSpecialToken { at: 0, .. }), "{err}");
        // no policy: the token's text is ordinary text
        assert_eq!(plain("<s>").len(), 3);
    }

    #[test]
    fn estimated_counts_are_shares_of_the_total_rounded_half_to_even() {
        let enc = toy(&[(b"ab", 5)]);
        // the total count is 256 + 5 = 261; "abab ab" is 4 ids (ab, ab, " ", ab) and holds "ab" 3 times
        let texts = [Text::Str("abab ab")];
        let ids = enc.encode(texts[0], &EncodeOptions::default(), 0).unwrap().len() as u64;
        assert_eq!(ids, 4);
        // 261 * 3 / 4 = 195.75
        assert_eq!(enc.estimate_counts(&[b"ab"], &texts).unwrap(), [196]);
        // "aaa" holds "aa" once (not overlapping): 261 / 4 = 65.25
        assert_eq!(enc.estimate_counts(&[b"aa"], &[Text::Str("aaa ")]).unwrap(), [65]);
        assert_eq!(occurrences(b"aaaa", b"aa"), 2);
        assert!(enc.estimate_counts(&[b"zz"], &texts).unwrap_err().to_string().contains("does not occur"));
    }
}
