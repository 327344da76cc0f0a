//! Count tables: the serialisable, mergeable results of the per-shard stages of training.
//!
//! Training splits into maps over shards of the corpus and merges of their results:
//!
//! 1. each shard's byte n-grams are counted into an [`NgramTable`] (unpruned), serialised;
//! 2. the serialised tables are merged ([`merge_serialised`]: a sum, in any order and any tree,
//!    in one streaming pass), the last merge pruning by `min_count` as it goes: the pruned table
//!    is the n-gram model's, broadcast (the model is built from it, decoded with
//!    [`crate::model::NgramModel::from_table`] or read in place with [`NgramTable::view`] and
//!    [`crate::model::NgramModel::from_view`]);
//! 3. each shard is segmented with the model and its pieces counted into a [`PieceTable`];
//! 4. the piece tables are merged ([`for_each_piece`] streams through them) and pruned into
//!    vocabularies ([`crate::prune::prune_sorted`]).
//!
//! The single-machine trainer takes the same path within one process: its n-gram counts become a
//! (pruned) [`NgramTable`] and its piece counts a [`PieceTable`], summed in memory by the same
//! rules.
//!
//! # Binary format, version 2
//!
//! Fixed-width integers are little-endian; `varint` is LEB128 (7 bits a byte, low bits first).
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | magic `BPCOUNT\0` |
//! | 8 | 2 | version, `2` |
//! | 10 | 1 | kind: `1` n-gram counts, `2` piece counts |
//! | 11 | 1 | order: the longest n-gram (1 to 8) for n-gram counts, `0` for piece counts |
//! | 12 | 4 | reserved, `0` |
//! | 16 | 8 | tag: a fingerprint of the parameters that made the table (tables merge only with equal tags) |
//! | 24 | 8 | min_count (1) |
//! | 32 | 8 | total: the number of byte positions counted (n-gram counts), `0` for piece counts |
//! | 40 | 8 | number of entries |
//! | 48 | | n-gram counts (2), or piece counts (3) |
//! | end − 8 | 8 | checksum of every byte before it (see [`checksum`]) |
//!
//! 1. `0` for counts as counted; else the table was pruned: n-grams of 2 bytes or more counted
//!    fewer times were dropped (n-gram counts only).
//! 2. For each length from 1 to `order`, its number of entries and the size in bytes of its list
//!    (two `u64`); then the lists, by length: each entry `(key delta: varint, count: varint)` by
//!    increasing key, the delta from the entry before (the first entry's from 0); the key packs
//!    the n-gram's bytes, first byte most significant.
//! 3. Every entry as `(length: varint, bytes, count: varint)`, by increasing bytes
//!    (lexicographic order).
//!
//! Keys are strictly increasing (each n-gram or piece appears once); n-gram counts are at least 1.
//! Most counts are small and sorted keys close, so an n-gram entry takes about 3 bytes rather
//! than the 16 of two `u64`: tables cross the network and sit in workers' memory at that size.

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::kmerge::{self, merge_sorted, Source};
use crate::ngram_key::{keeps_ngram, MAX_ORDER};

/// The first 8 bytes of a serialised table.
pub const MAGIC: &[u8; 8] = b"BPCOUNT\0";
/// The version of the format written (and the only one read).
pub const VERSION: u16 = 2;
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
#[derive(Debug, Clone)]
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    origin: &'a str,
    /// Where `bytes` starts in the whole table (for errors).
    base: usize,
}

/// The fixed header, read.
#[derive(Debug, Clone, Copy)]
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
        let mut r = Reader { bytes: body, at: 16, origin, base: 0 };
        let order = usize::from(bytes[11]);
        let (tag, min_count, total, entries) = (r.u64()?, r.u64()?, r.u64()?, r.u64()?);
        Ok((r, Header { order, tag, min_count, total, entries }))
    }

    fn error(&self, m: &str) -> Error {
        Error::InvalidArgument(format!("{}: corrupt count table ({m} at byte {})", self.origin, self.base + self.at))
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

    /// Reads a LEB128 varint of at most 64 bits, in its shortest form (so that a table has one
    /// serialisation).
    #[inline]
    fn varint(&mut self) -> Result<u64> {
        let mut x = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(&b) = self.bytes.get(self.at) else { return Err(self.error("truncated")) };
            self.at += 1;
            x |= u64::from(b & 0x7F) << shift;
            if b < 0x80 {
                if (shift == 63 && b > 1) || (shift > 0 && b == 0) {
                    break;
                }
                return Ok(x);
            }
        }
        Err(self.error("varint too long or not in its shortest form"))
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
            let mut last = None;
            for &(k, c) in list {
                if let Some(m) = bad_ngram(j + 1, last, k, c) {
                    return bad(m);
                }
                last = Some(k);
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

    /// The n-gram lists of a serialised table, read in place (see [`NgramList`]): its header
    /// and lists are checked as [`NgramTable::from_bytes`] checks them, but its entries only as
    /// they are read.
    pub fn view<'a>(bytes: &'a [u8], origin: &'a str) -> Result<NgramTableView<'a>> {
        let (h, lists) = NgramRecords::open(bytes, origin)?;
        Ok(NgramTableView { header: h, lists: lists.into_iter().map(NgramList).collect() })
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
        ngram_bytes(self.order, self.tag, self.min_count, self.positions, |j, push| {
            self.entries[j].iter().for_each(|&(k, c)| push(k, c));
            Ok(())
        })
        .unwrap_or_else(|_| unreachable!("writing the lists of a table in memory does not fail"))
    }

    /// Reads a serialised table, checking it whole; `origin` names it in errors.
    pub fn from_bytes(bytes: &[u8], origin: &str) -> Result<NgramTable> {
        let (h, lists) = NgramRecords::open(bytes, origin)?;
        let mut entries = Vec::with_capacity(h.order);
        for mut list in lists {
            let mut out = Vec::with_capacity(list.len());
            while let Some(entry) = list.next_record()? {
                out.push(entry);
            }
            entries.push(out);
        }
        // the records checked each entry as they read it
        Ok(NgramTable { order: h.order, tag: h.tag, min_count: h.min_count, positions: h.total, entries })
    }
}

/// Piece counts: a shard's counts, or their merge, which piece pruning takes, by increasing
/// piece bytes. See the module documentation for the format. (One process' counters are merged
/// and serialised without a table: [`crate::prune::PieceCounter::for_each_merged`].)
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PieceTable {
    tag: u64,
    entries: Vec<(Vec<u8>, u64)>,
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
        PieceTable { tag, entries }
    }

    /// The fingerprint of the parameters (and n-gram model) that made the table.
    pub fn tag(&self) -> u64 {
        self.tag
    }

    /// The `(piece, count)` entries, by increasing piece bytes.
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
        Ok(PieceTable { tag: self.tag, entries: merge_sorted(self.entries, other.entries)? })
    }

    /// The table serialised (see the module documentation).
    pub fn to_bytes(&self) -> Vec<u8> {
        let size: usize = self.entries.iter().map(|(p, _)| p.len() + 3).sum();
        piece_bytes(self.tag, size, |push| self.entries.iter().try_for_each(|(p, c)| push(p, *c)))
            .unwrap_or_else(|_| unreachable!("writing a table in memory does not fail"))
    }

    /// Reads a serialised table, checking it whole; `origin` names it in errors.
    pub fn from_bytes(bytes: &[u8], origin: &str) -> Result<PieceTable> {
        let (h, mut records) = PieceRecords::open(bytes, origin)?;
        let mut entries: Vec<(Vec<u8>, u64)> = Vec::with_capacity(h.entries as usize);
        while let Some((piece, count)) = records.next_record()? {
            entries.push((piece.to_vec(), count));
        }
        Ok(PieceTable { tag: h.tag, entries })
    }
}

/// A serialised n-gram table read in place ([`NgramTable::view`]), so that what is built from
/// it (the n-gram model) does not hold its entries a second time.
#[derive(Debug)]
pub struct NgramTableView<'a> {
    header: Header,
    lists: Vec<NgramList<'a>>,
}

impl<'a> NgramTableView<'a> {
    /// The longest n-gram.
    pub fn order(&self) -> usize {
        self.header.order
    }

    /// The fingerprint of the parameters that made the table.
    pub fn tag(&self) -> u64 {
        self.header.tag
    }

    /// The `min_count` it was pruned with (0: not pruned).
    pub fn min_count(&self) -> u64 {
        self.header.min_count
    }

    /// The number of byte positions counted.
    pub fn positions(&self) -> u64 {
        self.header.total
    }

    /// The n-grams of each length, from 1 byte up.
    pub fn lists(&self) -> &[NgramList<'a>] {
        &self.lists
    }

    /// [`NgramTable::fingerprint`] of the table, in one pass over its entries.
    pub fn fingerprint(&self) -> Result<u64> {
        let mut f = Fingerprint::new(self.order(), self.tag(), self.min_count(), self.positions());
        for list in &self.lists {
            list.for_each(|k, c| f.entry(k, c))?;
            f.end_list(list.len() as u64);
        }
        Ok(f.finish())
    }
}

/// The n-grams of one length of a serialised table, `(packed key, count)` by increasing key,
/// decoded (and checked) each time they are read.
#[derive(Debug, Clone)]
pub struct NgramList<'a>(NgramRecords<'a>);

impl NgramList<'_> {
    /// The number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when the list is empty.
    pub fn is_empty(&self) -> bool {
        self.0.left == 0
    }

    /// Calls `f` with every entry, in order.
    pub fn for_each(&self, mut f: impl FnMut(u64, u64)) -> Result<()> {
        let mut records = self.0.clone();
        while let Some((k, c)) = records.next_record()? {
            f(k, c);
        }
        Ok(())
    }

    /// The entries, in order, one at a time.
    pub fn records(&self) -> impl Iterator<Item = Result<(u64, u64)>> + '_ {
        let mut records = self.0.clone();
        std::iter::from_fn(move || records.next_record().transpose())
    }
}

/// The entries of one length of a serialised n-gram table, read in place and checked as they
/// are read (see [`NgramTable::check`]).
#[derive(Debug, Clone)]
struct NgramRecords<'a> {
    r: Reader<'a>,
    left: u64,
    len: usize,
    last: Option<u64>,
    /// The table's `min_count` (0: not pruned), which every entry must meet.
    min_count: u64,
}

impl<'a> NgramRecords<'a> {
    /// Checks a serialised n-gram table's header, sizes and checksum; gives the header and each
    /// length's entries.
    fn open(bytes: &'a [u8], origin: &'a str) -> Result<(Header, Vec<NgramRecords<'a>>)> {
        let (mut r, h) = Reader::open(bytes, Kind::Ngrams, origin)?;
        if !(1..=MAX_ORDER).contains(&h.order) {
            return Err(r.error("order out of range"));
        }
        let sizes = (0..h.order).map(|_| Ok((r.u64()?, r.u64()?))).collect::<Result<Vec<(u64, u64)>>>()?;
        if sizes.iter().try_fold(0u64, |a, &(n, _)| a.checked_add(n)) != Some(h.entries)
            || sizes.iter().any(|&(n, size)| n > size / 2)
        {
            return Err(r.error("entry counts do not add up"));
        }
        let mut lists = Vec::with_capacity(h.order);
        for (j, &(n, size)) in sizes.iter().enumerate() {
            let at = r.at;
            let bytes = r.take(usize::try_from(size).map_err(|_| r.error("list too long"))?)?;
            let r = Reader { bytes, at: 0, origin, base: at };
            lists.push(NgramRecords { r, left: n, len: j + 1, last: None, min_count: h.min_count });
        }
        r.end()?;
        Ok((h, lists))
    }

    /// The number of entries left.
    fn len(&self) -> usize {
        self.left as usize
    }
}

impl Source for NgramRecords<'_> {
    type Key = u64;

    #[inline]
    fn next_record(&mut self) -> Result<Option<(u64, u64)>> {
        if self.left == 0 {
            self.r.end()?;
            return Ok(None);
        }
        self.left -= 1;
        let delta = self.r.varint()?;
        let count = self.r.varint()?;
        let key = match self.last {
            None => delta,
            Some(last) if delta > 0 => last.checked_add(delta).ok_or_else(|| self.r.error("key past 64 bits"))?,
            Some(_) => 0,
        };
        if let Some(m) = bad_ngram(self.len, self.last, key, count) {
            return Err(self.r.error(&m));
        }
        if self.min_count > 0 && !keeps_ngram(self.len, count, self.min_count) {
            return Err(self
                .r
                .error(&format!("pruned by min_count {} but holds n-grams counted fewer times", self.min_count)));
        }
        self.last = Some(key);
        Ok(Some((key, count)))
    }
}

/// The little-endian `u64` at `at` of `bytes`.
#[inline]
fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or_default())
}

/// Appends `x` as a LEB128 varint.
#[inline]
fn put_varint(out: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        out.push(x as u8 | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

/// Appends a piece table's entry.
#[inline]
fn put_piece(out: &mut Vec<u8>, piece: &[u8], count: u64) {
    put_varint(out, piece.len() as u64);
    out.extend_from_slice(piece);
    put_varint(out, count);
}

/// Writes the entries of one length of an n-gram table (see [`put_varint`]).
struct NgramWriter {
    last: u64,
    entries: u64,
}

impl NgramWriter {
    fn new() -> NgramWriter {
        NgramWriter { last: 0, entries: 0 }
    }

    /// Appends an entry whose key is larger than the last one's.
    #[inline]
    fn push(&mut self, out: &mut Vec<u8>, key: u64, count: u64) {
        put_varint(out, key - self.last);
        put_varint(out, count);
        self.last = key;
        self.entries += 1;
    }
}

/// What is wrong with an n-gram of `len` bytes, `(key, count)`, after one of key `last`, if
/// anything: keys strictly increase, fit in `len` bytes, and counts are at least 1.
#[inline]
fn bad_ngram(len: usize, last: Option<u64>, key: u64, count: u64) -> Option<String> {
    if last.is_some_and(|l| l >= key) {
        return Some(format!("the {len}-byte n-grams are not sorted by strictly increasing key"));
    }
    let limit = if len == 8 { u64::MAX } else { (1u64 << (8 * len)) - 1 };
    (key > limit || count == 0).then(|| format!("a {len}-byte n-gram has a key wider than its length or a zero count"))
}

/// Calls `f(piece, total count)` for every piece of serialised piece tables (made with the same
/// parameters and n-gram model), by increasing bytes: a merge that streams through them once,
/// checking them as [`PieceTable::from_bytes`] does; `origin` names them in errors (with their
/// index).
pub fn for_each_piece(tables: &[&[u8]], origin: &str, f: impl FnMut(&[u8], u64) -> Result<()>) -> Result<()> {
    let names: Vec<String> = (0..tables.len()).map(|i| format!("{origin} {i}")).collect();
    let opened = tables.iter().zip(&names).map(|(t, n)| PieceRecords::open(t, n)).collect::<Result<Vec<_>>>()?;
    if opened.iter().any(|(h, _)| h.tag != opened[0].0.tag) {
        return Err(Error::InvalidArgument(
            "cannot merge piece tables counted with different parameters or n-gram models".into(),
        ));
    }
    kmerge::merge(opened.into_iter().map(|(_, records)| records).collect(), f)
}

/// The entries of a serialised piece table, read in place and checked as they are read.
struct PieceRecords<'a> {
    r: Reader<'a>,
    left: u64,
    last: Option<&'a [u8]>,
}

impl<'a> PieceRecords<'a> {
    /// Checks a serialised piece table's header and checksum; gives the header and the entries.
    fn open(bytes: &'a [u8], origin: &'a str) -> Result<(Header, PieceRecords<'a>)> {
        let (r, h) = Reader::open(bytes, Kind::Pieces, origin)?;
        if h.order != 0 || h.min_count != 0 || h.total != 0 || h.entries > r.bytes.len() as u64 / 2 {
            return Err(r.error("bad header"));
        }
        Ok((h, PieceRecords { r, left: h.entries, last: None }))
    }
}

impl<'a> Source for PieceRecords<'a> {
    type Key = &'a [u8];

    fn next_record(&mut self) -> Result<Option<(&'a [u8], u64)>> {
        if self.left == 0 {
            self.r.end()?;
            return Ok(None);
        }
        self.left -= 1;
        let len = self.r.varint()?;
        let piece = self.r.take(usize::try_from(len).map_err(|_| self.r.error("piece too long"))?)?;
        let count = self.r.varint()?;
        if self.last.is_some_and(|last| last >= piece) {
            return Err(self.r.error("pieces not strictly increasing"));
        }
        self.last = Some(piece);
        Ok(Some((piece, count)))
    }
}

/// The serialised n-gram table of `order` lengths, made with the parameters `tag`, pruned by
/// `min_count` (0: not) and counting `positions`: `list(j, push)` calls `push(key, count)` for
/// the n-grams of `j + 1` bytes, by increasing key. The lengths are written in parallel on the
/// current rayon pool.
pub(crate) fn ngram_bytes(
    order: usize,
    tag: u64,
    min_count: u64,
    positions: u64,
    list: impl Fn(usize, &mut dyn FnMut(u64, u64)) -> Result<()> + Sync,
) -> Result<Vec<u8>> {
    let lists = (0..order)
        .into_par_iter()
        .map(|j| {
            let (mut out, mut w) = (Vec::new(), NgramWriter::new());
            list(j, &mut |k, c| w.push(&mut out, k, c))?;
            Ok((w.entries, out))
        })
        .collect::<Result<Vec<(u64, Vec<u8>)>>>()?;
    let total = lists.iter().map(|(n, _)| n).sum();
    let size: usize = lists.iter().map(|(_, l)| 16 + l.len()).sum();
    let mut out = header(Kind::Ngrams, order, tag, min_count, positions, total, size);
    for (n, list) in &lists {
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&(list.len() as u64).to_le_bytes());
    }
    for (_, list) in lists {
        out.extend_from_slice(&list);
    }
    Ok(seal(out))
}

/// The serialised piece table made with the parameters `tag`: `each(push)` calls `push(piece,
/// count)` for every piece, by increasing bytes. `capacity` is a guess of its size.
pub(crate) fn piece_bytes(
    tag: u64,
    capacity: usize,
    each: impl FnOnce(&mut dyn FnMut(&[u8], u64) -> Result<()>) -> Result<()>,
) -> Result<Vec<u8>> {
    let mut out = header(Kind::Pieces, 0, tag, 0, 0, 0, capacity);
    let mut n = 0u64;
    each(&mut |p, c| {
        put_piece(&mut out, p, c);
        n += 1;
        Ok(())
    })?;
    out[40..48].copy_from_slice(&n.to_le_bytes());
    Ok(seal(out))
}

/// The tag of a serialised n-gram table (`None` if the bytes are not one; not checked further).
pub fn ngram_tag_of(bytes: &[u8]) -> Option<u64> {
    (bytes.len() >= HEADER && &bytes[..8] == MAGIC && bytes[10] == Kind::Ngrams as u8).then(|| u64_at(bytes, 16))
}

/// Merges serialised tables of one kind (all n-gram or all piece counts) into one, serialised,
/// in one streaming pass over their entries; `origin` names them in errors (with their index).
///
/// With `min_count` above 0 (n-gram counts only), the merged table is also pruned, as
/// [`NgramTable::pruned`] would: the n-gram model's table of the merged shards in one pass.
pub fn merge_serialised(tables: &[&[u8]], min_count: u64, origin: &str) -> Result<Vec<u8>> {
    let names: Vec<String> = (0..tables.len()).map(|i| format!("{origin} {i}")).collect();
    let first = tables.first().ok_or_else(|| Error::InvalidArgument("no count table to merge".into()))?;
    if first.get(10).copied() == Some(Kind::Ngrams as u8) {
        return merge_ngrams(tables, &names, min_count);
    }
    if min_count > 0 {
        // only n-gram counts are pruned: a table that is no piece table either says what it is
        PieceRecords::open(first, &names[0])?;
        return Err(Error::InvalidArgument(format!("{}: piece counts are not pruned by min_count", names[0])));
    }
    let capacity = tables.iter().map(|t| t.len()).max().unwrap_or(0);
    // (the tag of a table too short to hold one is never written: reading it fails)
    let tag = if first.len() >= HEADER { u64_at(first, 16) } else { 0 };
    piece_bytes(tag, capacity, |push| for_each_piece(tables, origin, push))
}

/// [`merge_serialised`] of n-gram tables.
fn merge_ngrams(tables: &[&[u8]], names: &[String], min_count: u64) -> Result<Vec<u8>> {
    let opened = tables.iter().zip(names).map(|(t, n)| NgramRecords::open(t, n)).collect::<Result<Vec<_>>>()?;
    let (order, tag) = (opened[0].0.order, opened[0].0.tag);
    if let Some(i) = opened.iter().position(|(h, _)| h.order != order || h.tag != tag) {
        return Err(Error::InvalidArgument(format!(
            "{}: made with other parameters than {} (order {} and {}, or isolate_digits): they cannot be merged",
            names[i], names[0], opened[i].0.order, order
        )));
    }
    if let Some(i) = opened.iter().position(|(h, _)| h.min_count != 0) {
        return Err(Error::InvalidArgument(format!(
            "{}: already pruned (min_count {}): merge the counts as counted, then prune",
            names[i], opened[i].0.min_count
        )));
    }
    let positions = opened.iter().try_fold(0u64, |a, (h, _)| a.checked_add(h.total)).ok_or_else(|| {
        Error::InvalidArgument("the tables' positions sum past 2^64 - 1: they cannot be real counts".into())
    })?;
    // the lists of each length, from every table
    let mut by_length: Vec<Vec<NgramRecords>> = (0..order).map(|_| Vec::with_capacity(tables.len())).collect();
    for (_, lists) in opened {
        by_length.iter_mut().zip(lists).for_each(|(all, list)| all.push(list));
    }
    ngram_bytes(order, tag, min_count, positions, |j, push| {
        kmerge::merge(by_length[j].clone(), |k, c| {
            if min_count == 0 || keeps_ngram(j + 1, c, min_count) {
                push(k, c);
            }
            Ok(())
        })
    })
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
        let merged = merge_serialised(&[&a.to_bytes(), &ngrams(7, 0, &[&[], &[]]).to_bytes()], 0, "t").unwrap();
        assert_eq!(NgramTable::from_bytes(&merged, "m").unwrap(), a);
    }

    #[test]
    fn a_merge_prunes_as_it_merges_and_refuses_what_does_not_merge() {
        let a = ngrams(7, 5, &[&[(b'a' as u64, 3), (b'b' as u64, 2)], &[(0x6162, 2), (0x6263, 1)]]);
        let b = ngrams(7, 4, &[&[(b'a' as u64, 1), (b'c' as u64, 3)], &[(0x6162, 1), (0x6363, 1)]]);
        let (ab, bb) = (a.to_bytes(), b.to_bytes());
        let pruned = merge_serialised(&[&ab, &bb], 2, "t").unwrap();
        assert_eq!(pruned, a.clone().merge(b.clone()).unwrap().pruned(2).unwrap().to_bytes());
        assert_eq!(NgramTable::from_bytes(&pruned, "p").unwrap().entries(2), [(0x6162, 3)]);
        let err = merge_serialised(&[&ab, &pruned], 0, "t").unwrap_err().to_string();
        assert!(err.contains("pruned"), "{err}");
        let pieces = PieceTable::new(7, vec![(b"ab".to_vec(), 1)]).to_bytes();
        assert!(merge_serialised(&[&pieces], 2, "t").unwrap_err().to_string().contains("not pruned"));
        assert!(merge_serialised(&[&ab, &pieces], 0, "t").unwrap_err().to_string().contains("kind"));
        let other = ngrams(8, 0, &[&[], &[]]).to_bytes();
        assert!(merge_serialised(&[&ab, &other], 0, "t").unwrap_err().to_string().contains("parameters"));
        assert!(merge_serialised(&[b"hello"], 2, "t").unwrap_err().to_string().contains("bad magic"));
        // a table whose header says pruned but holds what that drops is refused, read in place too
        let forged = ngram_bytes(2, 7, 5, 10, |j, push| {
            if j == 1 {
                push(0x6162, 1);
            }
            Ok(())
        })
        .unwrap();
        assert!(NgramTable::from_bytes(&forged, "f").unwrap_err().to_string().contains("pruned by min_count 5"));
        let err = NgramTable::view(&forged, "f").and_then(|v| v.fingerprint()).unwrap_err().to_string();
        assert!(err.contains("pruned by min_count 5"), "{err}");
        // so are positions past 2^64 once the missing bytes count one each
        let full = ngram_bytes(1, 7, 5, u64::MAX, |_, push| {
            push(b'a' as u64, 7);
            Ok(())
        })
        .unwrap();
        let view = NgramTable::view(&full, "p").unwrap();
        let err = crate::model::NgramModel::from_view(&view, None, &crate::test_support::ln).unwrap_err().to_string();
        assert!(err.contains("2^64"), "{err}");
        // large keys and counts take more bytes, and come back
        let wide = ngrams(1, 1, &[&[(0, u64::MAX), (0xFF, 1 << 40)]]);
        assert_eq!(NgramTable::from_bytes(&wide.to_bytes(), "w").unwrap(), wide);
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
        let joined = merge_serialised(&[&b.to_bytes(), &PieceTable::new(1, vec![]).to_bytes()], 0, "t").unwrap();
        assert_eq!(PieceTable::from_bytes(&joined, "j").unwrap(), b);
    }

    #[test]
    fn corrupt_or_foreign_bytes_are_named_errors() {
        let good = ngrams(7, 5, &[&[(1, 3), (2, 2)], &[(0x0102, 2)]]).to_bytes();
        let mut flipped = good.clone();
        flipped[HEADER + 20] ^= 1;
        let mut newer = good.clone();
        newer[8] = 3;
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (flipped, "checksum"),
            (good[..good.len() - 3].to_vec(), "checksum"),
            (good[..20].to_vec(), "bad magic or too short"),
            (b"hello, this is not a count table at all, no no no no no".to_vec(), "bad magic"),
            (newer, "version 3"),
            (PieceTable::default().to_bytes(), "kind 2"),
        ];
        for (bytes, want) in cases {
            let err = NgramTable::from_bytes(&bytes, "shard-3.tbl").unwrap_err().to_string();
            assert!(err.starts_with("shard-3.tbl: ") && err.contains(want), "{err}");
        }
        // re-sealed, so that only the entries are wrong: the lists start after the header and
        // two (entries, size) pairs; the single bytes are (delta 1, count 3), (delta 1, count 2)
        let lists = HEADER + 32;
        assert_eq!(good[lists..lists + 4], [1, 3, 1, 2]);
        let resealed = |at: usize, bytes: &[u8]| {
            let mut t = good[..good.len() - 8].to_vec();
            t[at..at + bytes.len()].copy_from_slice(bytes);
            seal(t)
        };
        let cases = [
            (resealed(lists + 2, &[0]), "strictly increasing"),
            (resealed(lists + 1, &[0]), "zero count"),
            (resealed(lists + 1, &[0x83]), "truncated"),
            (resealed(lists, &[0x81, 0x00]), "shortest form"),
            (resealed(HEADER, &[3]), "do not add up"),
        ];
        for (bytes, want) in &cases {
            let err = NgramTable::from_bytes(bytes, "u").unwrap_err().to_string();
            assert!(err.starts_with("u: ") && err.contains(want), "{err}");
            // a streaming merge checks every entry as it goes
            let err = merge_serialised(&[&good, bytes], 0, "m").unwrap_err().to_string();
            assert!(err.starts_with("m 1: ") && err.contains(want), "{err}");
        }
        assert!(merge_serialised(&[], 0, "t").is_err());
    }
}
