//! Reading a stream of text in blocks that end at a newline, so that no line (or no training
//! chunk) straddles two blocks and each block can be handled on its own thread.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Where a block may end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Right after any newline: blocks hold whole lines (documents of a text or `.jsonl` file).
    AfterNewline,
    /// Between a newline and a byte that is not one: a run of newlines stays with the line
    /// before it, as the training's line split (`.*\n+|.+`) keeps it.
    BeforeNonNewline,
}

/// Consecutive blocks of about `block` bytes of a stream, each ending where [`Cut`] allows (a
/// longer line makes a longer block; the stream's last block ends where the stream does).
pub struct Blocks {
    name: PathBuf,
    source: Box<dyn Read + Send>,
    carry: Vec<u8>,
    /// Bytes of `carry` already searched for a cut (none was there).
    searched: usize,
    block: usize,
    cut: Cut,
    offset: u64,
    done: bool,
}

impl Blocks {
    /// Blocks of `source`, named `name` in errors.
    pub fn new(name: impl Into<PathBuf>, source: Box<dyn Read + Send>, block: usize, cut: Cut) -> Blocks {
        Blocks {
            name: name.into(),
            source,
            carry: Vec::new(),
            searched: 0,
            block: block.max(1),
            cut,
            offset: 0,
            done: false,
        }
    }

    /// Blocks of the file at `path`.
    pub fn open(path: &Path, block: usize, cut: Cut) -> Result<Blocks> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        if file.metadata().map(|m| m.is_dir()).unwrap_or(false) {
            return Err(Error::InvalidArgument(format!("{}: is a directory, not a text file", path.display())));
        }
        Ok(Blocks::new(path, Box::new(file), block, cut))
    }

    /// The name of the stream, as errors give it.
    pub fn name(&self) -> &Path {
        &self.name
    }

    /// The position in the stream of the next block's first byte.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next block, or `None` at the end of the stream.
    pub fn next_block(&mut self) -> Result<Option<Vec<u8>>> {
        let mut cut = None;
        while !self.done {
            if self.carry.len() >= self.block {
                cut = self.cut_point();
                if cut.is_some() {
                    break;
                }
            }
            // up to `block` more bytes, read into spare room (no zeroing first)
            self.carry.reserve(self.block);
            let n = (&mut self.source)
                .take(self.block as u64)
                .read_to_end(&mut self.carry)
                .map_err(|e| Error::io(&self.name, e))?;
            self.done = n == 0;
        }
        if self.carry.is_empty() {
            return Ok(None);
        }
        let cut = cut.unwrap_or(self.carry.len());
        let rest = self.carry.split_off(cut);
        self.searched = 0;
        self.offset += cut as u64;
        Ok(Some(std::mem::replace(&mut self.carry, rest)))
    }

    /// The last place in `carry` where a block may end, searching only bytes not searched
    /// before (a line longer than many blocks is scanned once, not once per read).
    fn cut_point(&mut self) -> Option<usize> {
        let from = self.searched.saturating_sub(1);
        let bytes = &self.carry;
        let found = match self.cut {
            Cut::AfterNewline => bytes[from..].iter().rposition(|&b| b == b'\n').map(|i| from + i + 1),
            Cut::BeforeNonNewline => (from.max(1)..bytes.len()).rev().find(|&i| ends_newline_run(bytes, i)),
        };
        self.searched = bytes.len();
        found
    }
}

/// Whether `bytes[i]` follows a run of newlines without being one: where the training's line
/// split (`.*\n+|.+`) may start a new chunk. `i` must be at least 1.
pub(crate) fn ends_newline_run(bytes: &[u8], i: usize) -> bool {
    bytes[i - 1] == b'\n' && bytes[i] != b'\n'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_blocks(text: &[u8], block: usize, cut: Cut) -> Vec<Vec<u8>> {
        let mut blocks = Blocks::new("t", Box::new(std::io::Cursor::new(text.to_vec())), block, cut);
        std::iter::from_fn(|| blocks.next_block().unwrap()).collect()
    }

    #[test]
    fn blocks_end_after_a_newline_and_join_back_to_the_stream() {
        let text = b"one\ntwo\n\n\nthree\nfour".repeat(50);
        for block in [1, 3, 7, 64, 10_000] {
            let blocks = all_blocks(&text, block, Cut::AfterNewline);
            assert_eq!(blocks.concat(), text, "block {block}");
            for b in &blocks[..blocks.len() - 1] {
                assert_eq!(b.last(), Some(&b'\n'), "block {block}");
            }
        }
    }

    #[test]
    fn training_blocks_keep_newline_runs_with_their_line() {
        let text = b"a\n\n\nb\nc\n\n".repeat(30);
        for block in [1, 2, 5, 100] {
            let blocks = all_blocks(&text, block, Cut::BeforeNonNewline);
            assert_eq!(blocks.concat(), text);
            for pair in blocks.windows(2) {
                assert_eq!(pair[0].last(), Some(&b'\n'));
                assert_ne!(pair[1][0], b'\n', "a newline run was cut at block {block}");
            }
        }
    }

    #[test]
    fn a_line_longer_than_many_blocks_is_one_block() {
        let mut text = vec![b'x'; 100_000];
        text.extend_from_slice(b"\nend");
        let blocks = all_blocks(&text, 16, Cut::AfterNewline);
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].len(), 100_001);
        assert_eq!(blocks[1], b"end");
    }

    #[test]
    fn offsets_count_the_bytes_handed_out() {
        let text = b"12\n45\n78\n".to_vec();
        let mut blocks = Blocks::new("t", Box::new(std::io::Cursor::new(text)), 2, Cut::AfterNewline);
        let mut starts = vec![];
        while blocks.next_block().unwrap().is_some() {
            starts.push(blocks.offset());
        }
        assert_eq!(starts, [3, 6, 9]);
        assert!(all_blocks(b"", 4, Cut::AfterNewline).is_empty());
    }
}
