//! Piece pruning, as the original's `Trainer.prune_pieces`: drop pieces that are too long or too
//! rare and give their counts to the pieces the Unigram tokenizer of the kept ones splits them
//! into; then drop "wasted" pieces (those that the tokenizer of all kept pieces splits into
//! others) until nothing changes; then, for each vocabulary size from the largest, keep the most
//! frequent pieces and repeat.

use std::collections::HashMap;

use rayon::prelude::*;

use crate::encoder::{best_segmentation, piece_scores, Lattice};
use crate::error::{Error, Result};
use crate::matcher::Matcher;
use crate::monitor::Monitor;
use crate::table::{merge_sorted, PieceTable};
use crate::vocab::{Entry, Vocab, NUM_RESERVED};

/// Piece counts: piece bytes -> count.
pub type PieceCounts = HashMap<Vec<u8>, u64, rustc_hash::FxBuildHasher>;

/// Piece counts as the segmentation makes them, millions of times per corpus: a piece of up to
/// 15 bytes is packed with its length into a `u128` key, so that counting it touches no heap
/// object; longer ones are kept by their bytes.
#[derive(Debug, Default)]
pub struct PieceCounter {
    short: HashMap<u128, u64, rustc_hash::FxBuildHasher>,
    long: PieceCounts,
}

impl PieceCounter {
    /// The longest piece packed in a key.
    const SHORT: usize = 15;

    /// Counts one more `piece`.
    #[inline]
    pub fn add(&mut self, piece: &[u8]) {
        self.add_count(piece, 1);
    }

    /// Counts `piece` `n` more times.
    #[inline]
    pub fn add_count(&mut self, piece: &[u8], n: u64) {
        if piece.len() <= Self::SHORT {
            let mut key = [0u8; 16];
            key[..piece.len()].copy_from_slice(piece);
            key[Self::SHORT] = piece.len() as u8;
            *self.short.entry(u128::from_le_bytes(key)).or_insert(0) += n;
        } else if let Some(c) = self.long.get_mut(piece) {
            *c += n;
        } else {
            self.long.insert(piece.to_vec(), n);
        }
    }

    /// The summed counts of `parts` as a [`PieceTable`] (sorted when serialised or merged)
    /// tagged `tag` (the fingerprint of the parameters and n-gram model that made them). Each
    /// part is sorted on its own thread, then the parts are merged in one sequential pass.
    pub fn table_of(parts: Vec<PieceCounter>, tag: u64) -> Result<PieceTable> {
        let sorted: Vec<_> = parts
            .into_par_iter()
            .map(|part| {
                let mut short: Vec<(u128, u64)> = part.short.into_iter().collect();
                short.sort_unstable();
                let mut long: Vec<(Vec<u8>, u64)> = part.long.into_iter().collect();
                long.sort_unstable();
                (short, long)
            })
            .collect();
        let (mut short, mut long) = (Vec::new(), Vec::new());
        for (s, l) in sorted {
            short = merge_sorted(short, s)?;
            long = merge_sorted(long, l)?;
        }
        let short = short.into_iter().map(|(key, c)| {
            let key = key.to_le_bytes();
            (key[..usize::from(key[Self::SHORT])].to_vec(), c)
        });
        // short and long pieces differ in length: every piece is distinct
        Ok(PieceTable::from_distinct(tag, short.chain(long).collect()))
    }
}

/// The rules of piece pruning.
#[derive(Debug, Clone)]
pub struct PruneConfig {
    /// Pieces longer than this (in bytes) are dropped (single bytes never are).
    pub max_piece_length: usize,
    /// Pieces counted fewer times are dropped (single bytes never are).
    pub min_count: u64,
    /// The vocabulary sizes wanted, reserved ids and special tokens included; each at least
    /// 259 plus the number of special tokens.
    pub max_vocab_sizes: Vec<usize>,
    /// Special tokens reserved before the pieces (none in the original): a piece with the same
    /// text is dropped and its count re-split, as a piece below `min_count` is.
    pub special_tokens: Vec<String>,
}

/// The smallest vocabulary size: 3 reserved ids and the 256 single bytes.
pub const MIN_VOCAB_SIZE: usize = 256 + NUM_RESERVED as usize;

/// A function computing natural logarithms elementwise.
pub type LogFn<'a> = &'a (dyn Fn(&[f64]) -> Result<Vec<f64>> + Sync);

/// Prunes `pieces` (the merged piece counts of the whole corpus) and returns one vocabulary
/// (piece -> count) per size of `config.max_vocab_sizes`, largest first, reporting to `monitor`.
///
/// The re-segmentations of dropped pieces (`split_pieces`) run here, in parallel on the
/// current rayon pool: they are work on the piece table, not on the corpus, so a distributed
/// trainer runs this step on its client (see the `table` module).
pub fn prune_pieces(
    pieces: PieceTable,
    config: &PruneConfig,
    ln: LogFn<'_>,
    monitor: &dyn Monitor,
) -> Result<Vec<PieceCounts>> {
    let specials = &config.special_tokens;
    check_special_tokens(specials)?;
    let least = MIN_VOCAB_SIZE + specials.len();
    let mut sizes = config.max_vocab_sizes.clone();
    if let Some(&small) = sizes.iter().find(|&&s| s < least) {
        return Err(Error::InvalidArgument(format!(
            "max_vocab_size must be at least {least} (3 reserved ids, {} special tokens and 256 bytes), got {small}",
            specials.len()
        )));
    }
    // the pieces' share of each size
    let mut sizes: Vec<usize> = sizes.iter_mut().map(|s| *s - specials.len()).collect();
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    let (keep, drop): (Vec<_>, Vec<_>) = pieces.into_entries().into_iter().partition(|(p, c)| {
        p.len() == 1
            || (p.len() <= config.max_piece_length
                && *c >= config.min_count
                && !specials.iter().any(|s| s.as_bytes() == p))
    });
    let mut keep: PieceCounts = keep.into_iter().collect();
    // every byte is a piece: one never seen counts 1
    for b in 0..=255u8 {
        keep.entry(vec![b]).or_insert(1);
    }
    let drop: Vec<(&[u8], u64)> = drop.iter().map(|(p, c)| (&p[..], *c)).collect();
    let mut splitter = Splitter::new(&keep, ln)?;
    for (p, c) in splitter.split(&drop, monitor)? {
        *keep.entry(p).or_insert(0) += c;
    }
    keep = drop_wasted(keep, &mut splitter, ln, monitor)?;
    let mut out = Vec::with_capacity(sizes.len());
    for size in sizes {
        if keep.len() > size - NUM_RESERVED as usize {
            let mut ranked: Vec<(Vec<u8>, u64)> = keep.into_iter().collect();
            ranked.sort_unstable_by(|(pa, ca), (pb, cb)| {
                (pa.len() > 1, std::cmp::Reverse(*ca), std::cmp::Reverse(pa.len()), pa)
                    .cmp(&(pb.len() > 1, std::cmp::Reverse(*cb), std::cmp::Reverse(pb.len()), pb))
            });
            let dropped = ranked.split_off(size - NUM_RESERVED as usize);
            keep = ranked.into_iter().collect();
            let dropped: Vec<(&[u8], u64)> = dropped.iter().map(|(p, c)| (&p[..], *c)).collect();
            splitter = Splitter::new(&keep, ln)?;
            for (p, c) in splitter.split(&dropped, monitor)? {
                *keep.entry(p).or_insert(0) += c;
            }
            keep = drop_wasted(keep, &mut splitter, ln, monitor)?;
        }
        out.push(keep.clone());
    }
    Ok(out)
}

/// Checks a list of special tokens: distinct, each of two bytes or more (a single byte is always
/// an ordinary piece).
pub fn check_special_tokens(specials: &[String]) -> Result<()> {
    for (i, s) in specials.iter().enumerate() {
        if s.len() < 2 {
            return Err(Error::InvalidArgument(format!(
                "special token {s:?} is shorter than 2 bytes: every single byte is an ordinary piece"
            )));
        }
        if specials[..i].contains(s) {
            return Err(Error::InvalidArgument(format!("special token {s:?} is given twice")));
        }
    }
    Ok(())
}

/// Re-splits every kept piece with the tokenizer of all kept pieces until the number of pieces
/// stops changing; a piece that is split into others loses its count to them. `splitter` holds
/// every piece of `keep` (and is rescored for each round).
fn drop_wasted(mut keep: PieceCounts, splitter: &mut Splitter, ln: LogFn<'_>, monitor: &dyn Monitor) -> Result<PieceCounts> {
    loop {
        let before = keep.len();
        splitter.rescore(&keep, ln)?;
        let all: Vec<(&[u8], u64)> = keep.iter().map(|(p, c)| (&p[..], *c)).collect();
        keep = splitter.split(&all, monitor)?.into_iter().collect();
        if keep.len() == before {
            return Ok(keep);
        }
    }
}

/// The Unigram tokenizer of the kept pieces, which the original builds anew for every round.
/// Until the next vocabulary size, rounds only drop pieces, so the trie is built once for a set
/// of pieces and rescored for each later round: a piece no longer kept scores `-inf` and is
/// never chosen, which gives the segmentations of the smaller set's own tokenizer.
struct Splitter {
    vocab: Vocab,
    matcher: Matcher,
}

impl Splitter {
    /// The tokenizer of `keep`.
    fn new(keep: &PieceCounts, ln: LogFn<'_>) -> Result<Splitter> {
        let vocab = vocab_of(keep, &[], "kept pieces")?;
        let matcher = Matcher::new(&vocab, &piece_scores(vocab.counts(), |xs| ln(xs))?)?;
        Ok(Splitter { vocab, matcher })
    }

    /// Rescores for the counts of `keep`, whose pieces must all be in the vocabulary.
    fn rescore(&mut self, keep: &PieceCounts, ln: LogFn<'_>) -> Result<()> {
        let counts: Vec<u64> = self.vocab.pieces().iter().map(|p| keep.get(&p[..]).copied().unwrap_or(0)).collect();
        if counts.iter().filter(|&&c| c > 0).count() != keep.len() {
            return Err(Error::InvalidArgument("kept pieces outside the tokenizer being rescored".into()));
        }
        self.matcher.rescore(&piece_scores(&counts, |xs| ln(xs))?)
    }

    /// Splits each piece of `drop` and returns the summed counts of the pieces produced (the
    /// counts of `drop` flowing to them).
    fn split(&self, drop: &[(&[u8], u64)], monitor: &dyn Monitor) -> Result<Vec<(Vec<u8>, u64)>> {
        monitor.check()?;
        monitor.stage("Prune Pieces", Some(drop.len() as u64));
        let n = self.vocab.len();
        // One tally (a count per piece of the vocabulary) per rayon job, not per part.
        let counts = drop
            .par_chunks(4096)
            .try_fold(
                || (vec![0u64; n], Lattice::default(), Vec::new()),
                |(mut counts, mut lattice, mut ids), part| {
                    for &(piece, count) in part {
                        ids.clear();
                        best_segmentation(&self.matcher, piece, &mut lattice, &mut ids);
                        for &id in &ids {
                            counts[(id - NUM_RESERVED) as usize] += count;
                        }
                    }
                    monitor.advance(part.len() as u64);
                    monitor.check().map(|()| (counts, lattice, ids))
                },
            )
            .map(|tally| tally.map(|(counts, _, _)| counts))
            .try_reduce_with(|mut a, b| {
                a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
                Ok(a)
            })
            .transpose()?
            .unwrap_or_else(|| vec![0u64; n]);
        Ok(self
            .vocab
            .pieces()
            .iter()
            .zip(counts)
            .filter(|&(_, c)| c > 0)
            .map(|(p, c)| (p.to_vec(), c))
            .collect())
    }
}

/// The vocabulary of `pieces` as the original dumps it: ids from 3 by (length, bytes), after
/// the special tokens `specials` (ids from 3, in the given order; none in the original).
pub fn vocab_of(pieces: &PieceCounts, specials: &[String], origin: &str) -> Result<Vocab> {
    let mut sorted: Vec<(&Vec<u8>, &u64)> = pieces.iter().collect();
    sorted.sort_unstable_by(|(a, _), (b, _)| (a.len(), a).cmp(&(b.len(), b)));
    let first = u64::from(NUM_RESERVED);
    let entries = specials
        .iter()
        .enumerate()
        .map(|(i, s)| Entry::special(s, i as u64 + first))
        .chain(sorted.into_iter().enumerate().map(|(i, (p, &c))| {
            Entry::piece(p.clone(), (specials.len() + i) as u64 + first, c)
        }))
        .collect();
    Vocab::from_entries(entries, origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn piece_counter_counts_short_and_long_pieces_and_merges() {
        let long = [7u8; 40];
        let mut a = PieceCounter::default();
        for p in [&b""[..], b"a", b"a", b"\0", b"\0\0", &long[..15], &long[..16], &long] {
            a.add(p);
        }
        let mut b = PieceCounter::default();
        b.add(b"a");
        b.add(&long);
        let table = PieceCounter::table_of(vec![a, b], 9).unwrap().sorted();
        assert_eq!(table.tag(), 9);
        assert!(table.entries().windows(2).all(|w| w[0].0 < w[1].0), "sorted");
        let counts: PieceCounts = table.into_entries().into_iter().collect();
        let expect: PieceCounts = [
            (b"".to_vec(), 1),
            (b"a".to_vec(), 3),
            (b"\0".to_vec(), 1),
            (b"\0\0".to_vec(), 1),
            (long[..15].to_vec(), 1),
            (long[..16].to_vec(), 1),
            (long.to_vec(), 2),
        ]
        .into_iter()
        .collect();
        assert_eq!(counts, expect);
    }

    use crate::test_support::ln;

    #[test]
    fn rare_and_long_pieces_give_their_counts_to_their_parts() {
        let mut pieces = PieceCounter::default();
        pieces.add_count(b"ab", 50);
        pieces.add_count(b"abc", 1); // rare: split into ab + c
        pieces.add_count(b"abababab", 10); // too long: split into ab x4
        let config = PruneConfig { max_piece_length: 4, min_count: 2, max_vocab_sizes: vec![1000], special_tokens: vec![] };
        let out = prune_pieces(PieceCounter::table_of(vec![pieces], 0).unwrap(), &config, &ln, &crate::monitor::Silent).unwrap();
        assert_eq!(out.len(), 1);
        let v = &out[0];
        assert_eq!(v[&b"ab".to_vec()], 50 + 1 + 40);
        assert_eq!(v[&b"c".to_vec()], 1 + 1);
        assert!(!v.contains_key(&b"abc".to_vec()));
        assert_eq!(v.len(), 257);
    }

    #[test]
    fn a_rescored_splitter_splits_as_one_built_for_fewer_pieces() {
        // a vocabulary where dropping pieces and changing counts changes the best splits
        let counts = |extra: &[(&[u8], u64)]| -> PieceCounts {
            let mut keep: PieceCounts = (0..=255u8).map(|b| (vec![b], 3)).collect();
            keep.extend(extra.iter().map(|&(p, c)| (p.to_vec(), c)));
            keep
        };
        let all = counts(&[(b"ab", 40), (b"abc", 9), (b"bcd", 30), (b"cd", 5), (b"abcd", 2), (b"da", 7)]);
        let fewer = counts(&[(b"ab", 3), (b"bcd", 60), (b"cd", 50), (b"da", 1)]);
        let texts: Vec<&[u8]> = vec![b"abcd", b"abcdabcd", b"dabcdab", b"xabcdcdy", b"abc"];
        let drop: Vec<(&[u8], u64)> = texts.iter().enumerate().map(|(i, t)| (*t, i as u64 + 1)).collect();
        let sorted = |mut v: Vec<(Vec<u8>, u64)>| {
            v.sort_unstable();
            v
        };
        let mut reused = Splitter::new(&all, &ln).unwrap();
        let before = sorted(reused.split(&drop, &crate::monitor::Silent).unwrap());
        reused.rescore(&fewer, &ln).unwrap();
        let fresh = Splitter::new(&fewer, &ln).unwrap();
        let after = sorted(reused.split(&drop, &crate::monitor::Silent).unwrap());
        assert_eq!(after, sorted(fresh.split(&drop, &crate::monitor::Silent).unwrap()));
        assert_ne!(after, before, "the rescoring changed the splits");
        assert!(after.iter().all(|(p, _)| fewer.contains_key(p)), "dropped pieces are never used");
        // a piece outside the trie cannot be rescored
        assert!(reused.rescore(&counts(&[(b"zz", 4)]), &ln).is_err());
    }

    #[test]
    fn each_size_keeps_the_most_frequent_pieces() {
        let mut pieces = PieceCounter::default();
        for (i, p) in [b"xa", b"xb", b"xc", b"xd"].iter().enumerate() {
            pieces.add_count(*p, 100 * (i as u64 + 1));
        }
        let config = PruneConfig { max_piece_length: 36, min_count: 2, max_vocab_sizes: vec![260, 1000, 261], special_tokens: vec![] };
        let out = prune_pieces(PieceCounter::table_of(vec![pieces], 0).unwrap(), &config, &ln, &crate::monitor::Silent).unwrap();
        assert_eq!(out.iter().map(|v| v.len()).collect::<Vec<_>>(), [260, 258, 257]);
        assert!(out[2].contains_key(b"xd".as_slice()));
        assert!(prune_pieces(PieceTable::default(), &PruneConfig { max_vocab_sizes: vec![100], ..config }, &ln, &crate::monitor::Silent).is_err());
    }
}
