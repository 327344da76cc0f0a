//! Count tables: the serialisable, mergeable results of the per-shard stages of training.
//!
//! Training splits into maps over shards of the corpus and merges of their results:
//!
//! 1. each shard's byte n-grams are counted into an [`NgramTable`] (unpruned);
//! 2. the tables are merged ([`NgramTable::merge`]: a sum, in any order and any tree) and pruned
//!    by `min_count` ([`NgramTable::pruned`]); the pruned table is the n-gram model that is
//!    broadcast (the model is built from it with [`crate::model::NgramModel::from_table`]);
//! 3. each shard is segmented with the model and its pieces counted into a [`PieceTable`];
//! 4. the piece tables are merged ([`PieceTable::merge`]) and pruned into vocabularies
//!    ([`crate::prune::prune_pieces`]).
//!
//! The single-machine trainer takes the same path within one process: its n-gram counts become a
//! (pruned) [`NgramTable`] and its piece counts a [`PieceTable`], with the same code.
//!
//! # Binary format, version 1
//!
//! All integers are little-endian.
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | magic `BPCOUNT\0` |
//! | 8 | 2 | version, `1` |
//! | 10 | 1 | kind: `1` n-gram counts, `2` piece counts |
//! | 11 | 1 | order: the longest n-gram (1 to 8) for n-gram counts, `0` for piece counts |
//! | 12 | 4 | reserved, `0` |
//! | 16 | 8 | tag: a fingerprint of the parameters that made the table (tables merge only with equal tags) |
//! | 24 | 8 | min_count: `0` for counts as counted; else the table was pruned: n-grams of 2 bytes or more counted fewer times were dropped (n-gram counts only) |
//! | 32 | 8 | total: the number of byte positions counted (n-gram counts), `0` for piece counts |
//! | 40 | 8 | number of entries |
//! | 48 | | n-gram counts: `order` numbers of entries (`u64`), of the n-grams of 1 to `order` bytes; then every entry as `(key: u64, count: u64)`, by length, then by increasing key; the key packs the n-gram's bytes, first byte most significant |
//! | 48 | | piece counts: every entry as `(length: u32, bytes, count: u64)`, by increasing bytes (lexicographic order) |
//! | end − 8 | 8 | checksum of every byte before it (see [`checksum`]) |
//!
//! Keys are strictly increasing (each n-gram or piece appears once); n-gram counts are at least 1.

use rayon::slice::ParallelSliceMut;

use crate::error::{Error, Result};
use crate::ngram::MAX_ORDER;

/// The first 8 bytes of a serialised table.
pub const MAGIC: &[u8; 8] = b"BPCOUNT\0";
/// The version of the format written (and the only one read).
pub const VERSION: u16 = 1;
/// The size of the fixed header.
const HEADER: usize = 48;

/// What a serialised table holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Byte n-gram counts ([`NgramTable`]).
    Ngrams = 1,
    /// Piece counts ([`PieceTable`]).
    Pieces = 2,
}

/// A 64-bit checksum of `bytes`: FNV-1a over little-endian 8-byte words (the last one padded
/// with zeros), then the length, finished with a multiply-xorshift. Catches truncation and
/// corruption; it is not cryptographic.
pub fn checksum(bytes: &[u8]) -> u64 {
    let mut h = Hasher::default();
    let mut words = bytes.chunks_exact(8);
    for w in words.by_ref() {
        h.word(u64::from_le_bytes(w.try_into().unwrap_or_default()));
    }
    let mut tail = [0u8; 8];
    tail[..words.remainder().len()].copy_from_slice(words.remainder());
    h.word(u64::from_le_bytes(tail));
    h.word(bytes.len() as u64);
    h.finish()
}

/// The word hash of [`checksum`], also used for fingerprints of parameters and models.
#[derive(Debug, Clone, Copy)]
pub struct Hasher(u64);

impl Default for Hasher {
    fn default() -> Self {
        Hasher(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher {
    /// Adds a word.
    #[inline]
    pub fn word(&mut self, w: u64) -> &mut Self {
        self.0 = (self.0 ^ w).wrapping_mul(0x0000_0100_0000_01b3).rotate_left(29);
        self
    }

    /// The hash of the words added.
    pub fn finish(&self) -> u64 {
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^ (x >> 33)
    }
}

/// [`NgramTable::fingerprint`] computed as the entries go by (by length, then by key), for
/// tables that are never held whole.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fingerprint(Hasher);

impl Fingerprint {
    /// The fingerprint of a table's header.
    pub(crate) fn new(order: usize, tag: u64, min_count: u64, positions: u64) -> Fingerprint {
        let mut h = Hasher::default();
        h.word(order as u64).word(tag).word(min_count).word(positions);
        Fingerprint(h)
    }

    /// Adds an entry.
    #[inline]
    pub(crate) fn entry(&mut self, key: u64, count: u64) {
        self.0.word(key).word(count);
    }

    /// Ends the list of one length, of `len` entries.
    pub(crate) fn end_list(&mut self, len: u64) {
        self.0.word(len);
    }

    /// The fingerprint.
    pub(crate) fn finish(&self) -> u64 {
        self.0.finish()
    }
}

/// Whether an n-gram of `len` bytes counted `count` times is kept in a table pruned by
/// `min_count`: single bytes always are. The one pruning rule of the n-gram model.
#[inline]
pub fn keeps_ngram(len: usize, count: u64, min_count: u64) -> bool {
    len == 1 || count >= min_count
}

/// Sums two lists sorted by strictly increasing keys into one; a sum past `u64::MAX` (only
/// possible from forged tables) is an error.
pub(crate) fn merge_sorted<K: Ord>(a: Vec<(K, u64)>, b: Vec<(K, u64)>) -> Result<Vec<(K, u64)>> {
    let mut out = Vec::with_capacity(a.len().max(b.len()));
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => match x.0.cmp(&y.0) {
                std::cmp::Ordering::Less => a.next(),
                std::cmp::Ordering::Greater => b.next(),
                std::cmp::Ordering::Equal => {
                    let (k, c) = a.next().unwrap_or_else(|| unreachable!());
                    let (_, d) = b.next().unwrap_or_else(|| unreachable!());
                    let sum = c.checked_add(d).ok_or_else(|| {
                        Error::InvalidArgument(
                            "the tables' counts sum past 2^64 - 1: they cannot be real counts".into(),
                        )
                    })?;
                    Some((k, sum))
                }
            },
            (Some(_), None) => a.next(),
            (None, Some(_)) => b.next(),
            (None, None) => return Ok(out),
        };
        out.extend(next);
    }
}

/// Writes the header of a table.
fn header(kind: Kind, order: usize, tag: u64, min_count: u64, total: u64, entries: u64, capacity: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(capacity + HEADER + 8);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.push(kind as u8);
    out.push(order as u8);
    out.extend_from_slice(&0u32.to_le_bytes());
    for x in [tag, min_count, total, entries] {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

/// Appends the checksum.
fn seal(mut out: Vec<u8>) -> Vec<u8> {
    let sum = checksum(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

/// A reader of a serialised table that names it (`origin`) in its errors.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    origin: &'a str,
}

/// The fixed header, read.
struct Header {
    order: usize,
    tag: u64,
    min_count: u64,
    total: u64,
    entries: u64,
}

impl<'a> Reader<'a> {
    /// Checks the magic, version, kind and checksum, and reads the header.
    fn open(bytes: &'a [u8], kind: Kind, origin: &'a str) -> Result<(Reader<'a>, Header)> {
        let bad = |m: String| Err(Error::InvalidArgument(format!("{origin}: {m}")));
        if bytes.len() < HEADER + 8 || &bytes[..8] != MAGIC {
            return bad("not a bytepiece count table (bad magic or too short)".into());
        }
        let version = u16::from_le_bytes([bytes[8], bytes[9]]);
        if version != VERSION {
            return bad(format!("count table version {version} is not supported (this is version {VERSION})"));
        }
        if bytes[10] != kind as u8 {
            return bad(format!("holds counts of kind {}, expected {} ({kind:?})", bytes[10], kind as u8));
        }
        let (body, sum) = bytes.split_at(bytes.len() - 8);
        if checksum(body) != u64::from_le_bytes(sum.try_into().unwrap_or_default()) {
            return bad("corrupt count table (checksum mismatch)".into());
        }
        let mut r = Reader { bytes: body, at: 16, origin };
        let order = usize::from(bytes[11]);
        let (tag, min_count, total, entries) = (r.u64()?, r.u64()?, r.u64()?, r.u64()?);
        Ok((r, Header { order, tag, min_count, total, entries }))
    }

    fn error(&self, m: &str) -> Error {
        Error::InvalidArgument(format!("{}: corrupt count table ({m} at byte {})", self.origin, self.at))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.bytes.len() - self.at < n {
            return Err(self.error("truncated"));
        }
        self.at += n;
        Ok(&self.bytes[self.at - n..self.at])
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap_or_default()))
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap_or_default()))
    }

    /// Fails unless every byte was read.
    fn end(&self) -> Result<()> {
        if self.at == self.bytes.len() {
            Ok(())
        } else {
            Err(self.error("trailing bytes"))
        }
    }
}

/// Byte n-gram counts sorted by key, one list per length: a shard's counts (`min_count` 0), or
/// the merged counts pruned into what the n-gram model is built from. See the module
/// documentation for the format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NgramTable {
    order: usize,
    tag: u64,
    min_count: u64,
    positions: u64,
    /// `entries[j - 1]`: the n-grams of `j` bytes, `(packed key, count)` by increasing key.
    entries: Vec<Vec<(u64, u64)>>,
}

impl NgramTable {
    /// A table of n-grams up to `order` bytes with `positions` byte positions counted, from
    /// `entries[j - 1]`, the n-grams of `j` bytes sorted by increasing key (checked), pruned by
    /// `min_count` (0: not pruned), made with the parameters fingerprinted by `tag`.
    pub fn new(
        order: usize,
        tag: u64,
        min_count: u64,
        positions: u64,
        entries: Vec<Vec<(u64, u64)>>,
    ) -> Result<NgramTable> {
        let table = NgramTable { order, tag, min_count, positions, entries };
        table.check("n-gram table")?;
        Ok(table)
    }

    fn check(&self, origin: &str) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidArgument(format!("{origin}: {m}")));
        if !(1..=MAX_ORDER).contains(&self.order) || self.entries.len() != self.order {
            return bad(format!("order {} out of 1..={MAX_ORDER} or not matching its lists", self.order));
        }
        for (j, list) in self.entries.iter().enumerate() {
            let limit = if j + 1 == 8 { u64::MAX } else { (1u64 << (8 * (j + 1))) - 1 };
            if list.windows(2).any(|w| w[0].0 >= w[1].0) {
                return bad(format!("the {}-byte n-grams are not sorted by strictly increasing key", j + 1));
            }
            if list.iter().any(|&(k, c)| k > limit || c == 0) {
                return bad(format!("a {}-byte n-gram has a key wider than its length or a zero count", j + 1));
            }
            if self.min_count > 0 && list.iter().any(|&(_, c)| !keeps_ngram(j + 1, c, self.min_count)) {
                return bad(format!("pruned by min_count {} but holds n-grams counted fewer times", self.min_count));
            }
        }
        Ok(())
    }

    /// The longest n-gram.
    pub fn order(&self) -> usize {
        self.order
    }

    /// The fingerprint of the parameters that made the table.
    pub fn tag(&self) -> u64 {
        self.tag
    }

    /// The `min_count` it was pruned with (0: not pruned).
    pub fn min_count(&self) -> u64 {
        self.min_count
    }

    /// The number of byte positions counted.
    pub fn positions(&self) -> u64 {
        self.positions
    }

    /// The n-grams of `len` bytes, `(packed key, count)` by increasing key.
    pub fn entries(&self, len: usize) -> &[(u64, u64)] {
        &self.entries[len - 1]
    }

    /// The n-gram lists, by length, taken out.
    pub fn into_entries(self) -> Vec<Vec<(u64, u64)>> {
        self.entries
    }

    /// The number of n-grams of every length.
    pub fn len(&self) -> usize {
        self.entries.iter().map(Vec::len).sum()
    }

    /// True when the table holds no n-gram.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A fingerprint of the whole table (parameters and counts), by which the piece counts made
    /// with the model built from it are tagged.
    pub fn fingerprint(&self) -> u64 {
        let mut f = Fingerprint::new(self.order, self.tag, self.min_count, self.positions);
        for list in &self.entries {
            for &(k, c) in list {
                f.entry(k, c);
            }
            f.end_list(list.len() as u64);
        }
        f.finish()
    }

    /// Adds `other`'s counts to these: a sum, so tables merge to the same result in any order
    /// and any tree. Both must be unpruned and made with the same parameters.
    pub fn merge(self, other: NgramTable) -> Result<NgramTable> {
        if self.order != other.order || self.tag != other.tag {
            return Err(Error::InvalidArgument(format!(
                "cannot merge n-gram tables made with different parameters (order {} and {})",
                self.order, other.order
            )));
        }
        if self.min_count != 0 || other.min_count != 0 {
            return Err(Error::InvalidArgument(
                "cannot merge pruned n-gram tables: merge the counts, then prune".into(),
            ));
        }
        let entries =
            self.entries.into_iter().zip(other.entries).map(|(a, b)| merge_sorted(a, b)).collect::<Result<_>>()?;
        let positions = self.positions.checked_add(other.positions).ok_or_else(|| {
            Error::InvalidArgument("the tables' positions sum past 2^64 - 1: they cannot be real counts".into())
        })?;
        Ok(NgramTable { entries, positions, ..self })
    }

    /// The table keeping only the n-grams that [`keeps_ngram`] keeps with `min_count` (at
    /// least 1).
    pub fn pruned(mut self, min_count: u64) -> Result<NgramTable> {
        if self.min_count != 0 {
            return Err(Error::InvalidArgument(format!(
                "the n-gram table is already pruned (min_count {})",
                self.min_count
            )));
        }
        let min_count = min_count.max(1);
        for (j, list) in self.entries.iter_mut().enumerate() {
            list.retain(|&(_, c)| keeps_ngram(j + 1, c, min_count));
        }
        self.min_count = min_count;
        Ok(self)
    }

    /// The table serialised (see the module documentation).
    pub fn to_bytes(&self) -> Vec<u8> {
        let n = self.len();
        let mut out = header(
            Kind::Ngrams,
            self.order,
            self.tag,
            self.min_count,
            self.positions,
            n as u64,
            8 * self.order + 16 * n,
        );
        for list in &self.entries {
            out.extend_from_slice(&(list.len() as u64).to_le_bytes());
        }
        for list in &self.entries {
            for &(k, c) in list {
                out.extend_from_slice(&k.to_le_bytes());
                out.extend_from_slice(&c.to_le_bytes());
            }
        }
        seal(out)
    }

    /// Reads a serialised table, checking it whole; `origin` names it in errors.
    pub fn from_bytes(bytes: &[u8], origin: &str) -> Result<NgramTable> {
        let (mut r, h) = Reader::open(bytes, Kind::Ngrams, origin)?;
        if !(1..=MAX_ORDER).contains(&h.order) {
            return Err(r.error("order out of range"));
        }
        let sizes = (0..h.order).map(|_| r.u64()).collect::<Result<Vec<u64>>>()?;
        if sizes.iter().try_fold(0u64, |a, &b| a.checked_add(b)) != Some(h.entries)
            || h.entries > (r.bytes.len() as u64) / 16
        {
            return Err(r.error("entry counts do not add up"));
        }
        let mut entries = Vec::with_capacity(h.order);
        for n in sizes {
            let mut list = Vec::with_capacity(n as usize);
            for _ in 0..n {
                list.push((r.u64()?, r.u64()?));
            }
            entries.push(list);
        }
        r.end()?;
        let table = NgramTable { order: h.order, tag: h.tag, min_count: h.min_count, positions: h.total, entries };
        table.check(origin)?;
        Ok(table)
    }
}

/// Piece counts: a shard's counts, or their merge, which piece pruning takes. See the module
/// documentation for the format (sorted by piece bytes).
///
/// A table made from one process' counter ([`PieceTable::from_distinct`]) is sorted only when it
/// is serialised or merged: piece pruning, the single-machine path, does not need the order, and
/// sorting millions of pieces is not free.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PieceTable {
    tag: u64,
    entries: Vec<(Vec<u8>, u64)>,
    /// `entries` are by increasing piece bytes.
    sorted: bool,
}

impl PieceTable {
    /// A table of `(piece, count)` entries in any order (pieces given twice are summed), made
    /// with the parameters fingerprinted by `tag`.
    pub fn new(tag: u64, mut entries: Vec<(Vec<u8>, u64)>) -> PieceTable {
        entries.par_sort_unstable_by(|a, b| a.0.cmp(&b.0));
        entries.dedup_by(|b, a| {
            let same = a.0 == b.0;
            if same {
                a.1 += b.1;
            }
            same
        });
        PieceTable { tag, entries, sorted: true }
    }

    /// A table of entries whose pieces are all distinct, in any order (kept until the table is
    /// serialised or merged).
    pub(crate) fn from_distinct(tag: u64, entries: Vec<(Vec<u8>, u64)>) -> PieceTable {
        PieceTable { tag, entries, sorted: false }
    }

    /// The same table, its entries by increasing piece bytes.
    pub fn sorted(mut self) -> PieceTable {
        if !self.sorted {
            self.entries.par_sort_unstable_by(|a, b| a.0.cmp(&b.0));
            self.sorted = true;
        }
        self
    }

    /// The fingerprint of the parameters (and n-gram model) that made the table.
    pub fn tag(&self) -> u64 {
        self.tag
    }

    /// The `(piece, count)` entries, by increasing piece bytes (see [`PieceTable::sorted`]).
    pub fn entries(&self) -> &[(Vec<u8>, u64)] {
        &self.entries
    }

    /// The entries, taken out.
    pub fn into_entries(self) -> Vec<(Vec<u8>, u64)> {
        self.entries
    }

    /// Number of pieces.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the table holds no piece.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds `other`'s counts to these: a sum, in any order and any tree. Both must have the same
    /// tag (the same parameters and n-gram model).
    pub fn merge(self, other: PieceTable) -> Result<PieceTable> {
        if self.tag != other.tag {
            return Err(Error::InvalidArgument(
                "cannot merge piece tables counted with different parameters or n-gram models".into(),
            ));
        }
        let (a, b) = (self.sorted(), other.sorted());
        Ok(PieceTable { tag: a.tag, entries: merge_sorted(a.entries, b.entries)?, sorted: true })
    }

    /// The table serialised (see the module documentation).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut order: Vec<&(Vec<u8>, u64)> = self.entries.iter().collect();
        if !self.sorted {
            order.par_sort_unstable_by(|a, b| a.0.cmp(&b.0));
        }
        let size: usize = self.entries.iter().map(|(p, _)| p.len() + 12).sum();
        let mut out = header(Kind::Pieces, 0, self.tag, 0, 0, self.entries.len() as u64, size);
        for (p, c) in order {
            out.extend_from_slice(&(p.len() as u32).to_le_bytes());
            out.extend_from_slice(p);
            out.extend_from_slice(&c.to_le_bytes());
        }
        seal(out)
    }

    /// Reads a serialised table, checking it whole; `origin` names it in errors.
    pub fn from_bytes(bytes: &[u8], origin: &str) -> Result<PieceTable> {
        let (mut r, h) = Reader::open(bytes, Kind::Pieces, origin)?;
        if h.order != 0 || h.min_count != 0 || h.total != 0 || h.entries > r.bytes.len() as u64 / 12 {
            return Err(r.error("bad header"));
        }
        let mut entries: Vec<(Vec<u8>, u64)> = Vec::with_capacity(h.entries as usize);
        for _ in 0..h.entries {
            let len = r.u32()? as usize;
            let piece = r.take(len)?.to_vec();
            let count = r.u64()?;
            if entries.last().is_some_and(|(last, _)| *last >= piece) {
                return Err(r.error("pieces not strictly increasing"));
            }
            entries.push((piece, count));
        }
        r.end()?;
        Ok(PieceTable { tag: h.tag, entries, sorted: true })
    }
}

/// Merges serialised tables of one kind (all n-gram or all piece counts) into one, serialised;
/// `origin` names them in errors (with their index).
pub fn merge_serialised(tables: &[&[u8]], origin: &str) -> Result<Vec<u8>> {
    let name = |i: usize| format!("{origin} {i}");
    let first = tables.first().ok_or_else(|| Error::InvalidArgument("no count table to merge".into()))?;
    match first.get(10).copied() {
        Some(k) if k == Kind::Ngrams as u8 => {
            let mut all = NgramTable::from_bytes(first, &name(0))?;
            for (i, t) in tables.iter().enumerate().skip(1) {
                all = all.merge(NgramTable::from_bytes(t, &name(i))?)?;
            }
            Ok(all.to_bytes())
        }
        _ => {
            let mut all = PieceTable::from_bytes(first, &name(0))?;
            for (i, t) in tables.iter().enumerate().skip(1) {
                all = all.merge(PieceTable::from_bytes(t, &name(i))?)?;
            }
            Ok(all.to_bytes())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ngrams(tag: u64, positions: u64, lists: &[&[(u64, u64)]]) -> NgramTable {
        NgramTable::new(lists.len(), tag, 0, positions, lists.iter().map(|l| l.to_vec()).collect()).unwrap()
    }

    #[test]
    fn ngram_tables_round_trip_merge_in_any_tree_and_prune() {
        let a = ngrams(7, 5, &[&[(b'a' as u64, 3), (b'b' as u64, 2)], &[(0x6162, 2)]]);
        let b = ngrams(7, 4, &[&[(b'a' as u64, 1), (b'c' as u64, 3)], &[(0x6162, 1), (0x6363, 2)]]);
        let c = ngrams(7, 1, &[&[(0, 1)], &[]]);
        let bytes = a.to_bytes();
        assert_eq!(&bytes[..8], MAGIC);
        assert_eq!(NgramTable::from_bytes(&bytes, "a").unwrap(), a);
        let left = a.clone().merge(b.clone()).unwrap().merge(c.clone()).unwrap();
        let right = c.merge(b.merge(a.clone()).unwrap()).unwrap();
        assert_eq!(left, right);
        assert_eq!(left.positions(), 10);
        assert_eq!(left.entries(1), [(0, 1), (b'a' as u64, 4), (b'b' as u64, 2), (b'c' as u64, 3)]);
        assert_eq!(left.entries(2), [(0x6162, 3), (0x6363, 2)]);
        let pruned = left.clone().pruned(3).unwrap();
        assert_eq!(pruned.entries(1).len(), 4, "single bytes are always kept");
        assert_eq!(pruned.entries(2), [(0x6162, 3)]);
        assert_eq!(pruned.min_count(), 3);
        assert_ne!(pruned.fingerprint(), left.fingerprint());
        // pruned tables do not merge, nor tables of other parameters
        assert!(pruned.clone().merge(left.clone()).is_err());
        assert!(pruned.clone().pruned(2).is_err());
        assert!(left.clone().merge(ngrams(8, 0, &[&[], &[]])).is_err());
        assert!(left.clone().merge(ngrams(7, 0, &[&[]])).is_err());
        let back = NgramTable::from_bytes(&pruned.to_bytes(), "p").unwrap();
        assert_eq!(back, pruned);
        let merged = merge_serialised(&[&a.to_bytes(), &ngrams(7, 0, &[&[], &[]]).to_bytes()], "t").unwrap();
        assert_eq!(NgramTable::from_bytes(&merged, "m").unwrap(), a);
    }

    #[test]
    fn piece_tables_round_trip_and_merge() {
        let a =
            PieceTable::new(1, vec![(b"xy".to_vec(), 2), (b"".to_vec(), 1), (b"xy".to_vec(), 3), (vec![0xff; 40], 1)]);
        assert_eq!(a.entries(), [(b"".to_vec(), 1), (b"xy".to_vec(), 5), (vec![0xff; 40], 1)]);
        let b = PieceTable::new(1, vec![(b"x".to_vec(), 2), (b"xy".to_vec(), 1)]);
        let m = a.clone().merge(b.clone()).unwrap();
        assert_eq!(m, b.clone().merge(a.clone()).unwrap());
        assert_eq!(m.entries()[2], (b"xy".to_vec(), 6));
        assert_eq!(PieceTable::from_bytes(&m.to_bytes(), "m").unwrap(), m);
        assert!(a.merge(PieceTable::new(2, vec![])).is_err());
        let joined = merge_serialised(&[&b.to_bytes(), &PieceTable::new(1, vec![]).to_bytes()], "t").unwrap();
        assert_eq!(PieceTable::from_bytes(&joined, "j").unwrap(), b);
    }

    #[test]
    fn corrupt_or_foreign_bytes_are_named_errors() {
        let good = ngrams(7, 5, &[&[(1, 3), (2, 2)], &[(0x0102, 2)]]).to_bytes();
        let mut flipped = good.clone();
        flipped[HEADER + 20] ^= 1;
        let mut newer = good.clone();
        newer[8] = 2;
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (flipped, "checksum"),
            (good[..good.len() - 3].to_vec(), "checksum"),
            (good[..20].to_vec(), "bad magic or too short"),
            (b"hello, this is not a count table at all, no no no no no".to_vec(), "bad magic"),
            (newer, "version 2"),
            (PieceTable::default().to_bytes(), "kind 2"),
        ];
        for (bytes, want) in cases {
            let err = NgramTable::from_bytes(&bytes, "shard-3.tbl").unwrap_err().to_string();
            assert!(err.starts_with("shard-3.tbl: ") && err.contains(want), "{err}");
        }
        // unsorted, re-sealed so only the order is wrong
        let mut unsorted = good[..good.len() - 8].to_vec();
        let first = HEADER + 16;
        let (x, y) = (unsorted[first..first + 16].to_vec(), unsorted[first + 16..first + 32].to_vec());
        unsorted[first..first + 16].copy_from_slice(&y);
        unsorted[first + 16..first + 32].copy_from_slice(&x);
        let err = NgramTable::from_bytes(&seal(unsorted), "u").unwrap_err().to_string();
        assert!(err.contains("strictly increasing"), "{err}");
        assert!(merge_serialised(&[], "t").is_err());
    }
}
