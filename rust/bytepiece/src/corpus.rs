//! Sources of training text that the trainer reads twice: a temporary spill of texts that came
//! from Python once, and text files read in blocks, whose texts are their lines or each whole
//! file ([`TextUnit`]).

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::blocks::{ends_newline_run, Blocks, Cut};
use crate::error::{Error, Result};
use crate::monitor::{bytes_of, Monitor};
use crate::runs::Scratch;

/// Texts written once and read back in order, in a temporary file deleted when dropped.
#[derive(Debug)]
pub struct Spill {
    _scratch: Arc<Scratch>,
    path: PathBuf,
    writer: Option<BufWriter<File>>,
    texts: u64,
    bytes: u64,
}

impl Spill {
    /// A new, empty spill file in `scratch`.
    pub fn create(scratch: &Arc<Scratch>) -> Result<Spill> {
        let path = scratch.file("texts")?;
        let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
        Ok(Spill {
            _scratch: scratch.clone(),
            path,
            writer: Some(BufWriter::with_capacity(1 << 20, file)),
            texts: 0,
            bytes: 0,
        })
    }

    /// Appends a text.
    pub fn push(&mut self, text: &str) -> Result<()> {
        let path = &self.path;
        let writer = self.writer.as_mut().ok_or_else(|| Error::InvalidArgument("the spill was already read".into()))?;
        writer
            .write_all(&(text.len() as u64).to_le_bytes())
            .and_then(|()| writer.write_all(text.as_bytes()))
            .map_err(|e| Error::io(path, e))?;
        self.texts += 1;
        self.bytes += text.len() as u64;
        Ok(())
    }

    /// Number of texts written.
    pub fn len(&self) -> u64 {
        self.texts
    }

    /// Bytes of the texts written (their UTF-8, as [`crate::monitor::bytes_of`] counts them).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// True when no text was written.
    pub fn is_empty(&self) -> bool {
        self.texts == 0
    }

    /// Finishes writing and reads the texts back, in batches of at most `batch` texts.
    pub fn read(&mut self, batch: usize) -> Result<SpillReader<'_>> {
        if let Some(mut w) = self.writer.take() {
            w.flush().map_err(|e| Error::io(&self.path, e))?;
        }
        let file = File::open(&self.path).map_err(|e| Error::io(&self.path, e))?;
        Ok(SpillReader { spill: self, reader: BufReader::with_capacity(1 << 20, file), batch: batch.max(1) })
    }
}

impl Drop for Spill {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Reads a [`Spill`] back.
pub struct SpillReader<'a> {
    spill: &'a Spill,
    reader: BufReader<File>,
    batch: usize,
}

impl SpillReader<'_> {
    /// The next batch of texts (empty at the end).
    pub fn next_batch(&mut self) -> Result<Vec<String>> {
        let mut out = Vec::with_capacity(self.batch);
        let path = &self.spill.path;
        while out.len() < self.batch {
            let mut len = [0u8; 8];
            match self.reader.read_exact(&mut len) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(Error::io(path, e)),
            }
            let mut buf = vec![0u8; u64::from_le_bytes(len) as usize];
            self.reader.read_exact(&mut buf).map_err(|e| Error::io(path, e))?;
            out.push(
                String::from_utf8(buf)
                    .map_err(|_| Error::InvalidArgument(format!("{}: corrupt spill file", path.display())))?,
            );
        }
        Ok(out)
    }
}

/// Bytes read from a file per block when training from files.
pub const TRAIN_BLOCK: usize = 4 << 20;

/// What one training text of a text file is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TextUnit {
    /// Each line, without its newline (only `\n` ends a line; a `\r` before it stays): what
    /// `bytepiece encode` takes as a document, and SentencePiece's `spm_train` as a sentence.
    #[default]
    Line,
    /// The whole file, its newlines part of the text (pieces may then span lines).
    File,
}

impl std::str::FromStr for TextUnit {
    type Err = Error;

    /// `"line"` or `"file"`.
    fn from_str(name: &str) -> Result<TextUnit> {
        match name {
            "line" => Ok(TextUnit::Line),
            "file" => Ok(TextUnit::File),
            _ => Err(Error::InvalidArgument(format!("text unit must be \"line\" or \"file\", got {name:?}"))),
        }
    }
}

/// Reads a UTF-8 text file in blocks of about `block` bytes that hold whole texts of `unit`:
/// blocks of lines end after a newline; blocks of a whole file end only where a newline is
/// followed by another character, so that the training chunks of the blocks are exactly those
/// of the whole file (a run of newlines ends a chunk, see [`crate::normalize::split_for_training`]).
pub struct FileBlocks {
    blocks: Blocks,
}

impl FileBlocks {
    /// Opens `path`.
    pub fn open(path: &Path, block: usize, unit: TextUnit) -> Result<FileBlocks> {
        let cut = match unit {
            TextUnit::Line => Cut::AfterNewline,
            TextUnit::File => Cut::BeforeNonNewline,
        };
        Ok(FileBlocks { blocks: Blocks::open(path, block.max(1 << 16), cut)? })
    }

    /// The next block of text, or `None` at the end of the file.
    pub fn next_block(&mut self) -> Result<Option<String>> {
        let offset = self.blocks.offset();
        let Some(block) = self.blocks.next_block()? else { return Ok(None) };
        String::from_utf8(block).map(Some).map_err(|e| {
            Error::InvalidArgument(format!(
                "{}: not valid UTF-8 at byte {}",
                self.blocks.name().display(),
                offset + e.utf8_error().valid_up_to() as u64
            ))
        })
    }
}

/// The texts of a block that [`FileBlocks`] read for `unit`, to be trained on as
/// `Trainer::train` trains a list of texts, shared by the threads.
///
/// For [`TextUnit::Line`], the block's lines without their newline, empty lines left out (they
/// hold no training chunk). For [`TextUnit::File`], parts of about 64 KB of the block cut where
/// a newline is followed by another character, whose training chunks are the block's.
pub fn texts_of(block: &str, unit: TextUnit) -> Vec<&str> {
    match unit {
        TextUnit::Line => block.split_terminator('\n').filter(|line| !line.is_empty()).collect(),
        TextUnit::File => parts_of(block),
    }
}

/// Cuts a block of a whole file into parts of about 64 KB, each ending where a newline is
/// followed by another character (or where the block ends).
fn parts_of(block: &str) -> Vec<&str> {
    const PART: usize = 1 << 16;
    let bytes = block.as_bytes();
    let mut parts = Vec::with_capacity(block.len() / PART + 1);
    let mut start = 0;
    while start < bytes.len() {
        let mut cut = (start + PART).min(bytes.len());
        while cut < bytes.len() && !ends_newline_run(bytes, cut) {
            cut += 1;
        }
        parts.push(&block[start..cut]);
        start = cut;
    }
    parts
}

/// Reads UTF-8 text files in blocks of [`TRAIN_BLOCK`] bytes and calls `f` on the texts of
/// `unit` of each block (see [`texts_of`]), in order. The bytes of a block that are in none of
/// its texts (the newlines that end lines) are reported done to `monitor`, which `f` tells of
/// the texts' bytes: a stage measured over the files' sizes ends at their total.
pub fn for_each_file_texts(
    paths: &[PathBuf],
    unit: TextUnit,
    monitor: &dyn Monitor,
    f: &mut dyn FnMut(&[&str]) -> Result<()>,
) -> Result<()> {
    for path in paths {
        let mut blocks = FileBlocks::open(path, TRAIN_BLOCK, unit)?;
        while let Some(block) = blocks.next_block()? {
            let texts = texts_of(&block, unit);
            f(&texts)?;
            monitor.advance(block.len() as u64 - bytes_of(&texts));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::split_for_training;

    #[test]
    fn spill_reads_back_in_batches_and_cleans_up() {
        let mut spill = Spill::create(&Arc::new(Scratch::new(None))).unwrap();
        for t in ["a", "", "中文\n", "last"] {
            spill.push(t).unwrap();
        }
        assert_eq!((spill.len(), spill.bytes()), (4, 1 + 7 + 4));
        let path = spill.path.clone();
        let mut r = spill.read(3).unwrap();
        assert_eq!(r.next_batch().unwrap(), ["a", "", "中文\n"]);
        assert_eq!(r.next_batch().unwrap(), ["last"]);
        assert!(r.next_batch().unwrap().is_empty());
        drop(r);
        drop(spill);
        assert!(!path.exists());
    }

    /// A file of `text` in a new folder of its own (removed by the caller).
    fn temp_file(name: &str, text: &[u8]) -> (PathBuf, PathBuf) {
        let dir = std::env::temp_dir().join(format!("bp-corpus-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.txt");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    /// Every text that [`for_each_file_texts`] hands out for `paths`, and the bytes reported.
    fn file_texts(paths: &[PathBuf], unit: TextUnit) -> (Vec<String>, u64) {
        #[derive(Default)]
        struct Count(std::sync::atomic::AtomicU64);
        impl Monitor for Count {
            fn check(&self) -> Result<()> {
                Ok(())
            }
            fn advance(&self, n: u64) {
                self.0.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let monitor = Count::default();
        let mut texts = vec![];
        for_each_file_texts(paths, unit, &monitor, &mut |batch| {
            monitor.advance(bytes_of(batch));
            texts.extend(batch.iter().map(|t| t.to_string()));
            Ok(())
        })
        .unwrap();
        (texts, monitor.0.into_inner())
    }

    fn chunks_of<'a>(texts: impl IntoIterator<Item = &'a str>) -> Vec<Vec<u8>> {
        texts.into_iter().flat_map(|t| split_for_training(t, false).map(|c| c.to_vec())).collect()
    }

    #[test]
    fn file_blocks_give_the_chunks_of_the_whole_file() {
        let mut text = String::new();
        for i in 0..20_000 {
            text.push_str(&format!("line {i} 中文{}", "\n".repeat(i % 4 * 60)));
        }
        let (dir, path) = temp_file("whole", text.as_bytes());
        let mut blocks = FileBlocks::open(&path, 1, TextUnit::File).unwrap();
        let mut parts = vec![];
        while let Some(block) = blocks.next_block().unwrap() {
            parts.extend(texts_of(&block, TextUnit::File).into_iter().map(String::from));
        }
        assert!(parts.len() > 5);
        assert_eq!(chunks_of(parts.iter().map(String::as_str)), chunks_of([text.as_str()]));
        let (texts, bytes) = file_texts(std::slice::from_ref(&path), TextUnit::File);
        assert!(texts.len() > 5, "a block is cut into parts for the threads");
        assert_eq!(chunks_of(texts.iter().map(String::as_str)), chunks_of([text.as_str()]));
        assert_eq!(bytes, text.len() as u64);
        std::fs::write(&path, b"ok\n\xff").unwrap();
        for unit in [TextUnit::Line, TextUnit::File] {
            let err = FileBlocks::open(&path, 1, unit).unwrap().next_block().unwrap_err().to_string();
            assert!(err.contains("t.txt: not valid UTF-8 at byte 3"), "{err}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn line_texts_are_the_lines_without_their_newline() {
        assert_eq!(texts_of("a\r\n\n\nb\r\nlast", TextUnit::Line), ["a\r", "b\r", "last"]);
        assert_eq!(texts_of("x\n", TextUnit::Line), ["x"]);
        assert!(texts_of("", TextUnit::Line).is_empty());
        assert!(texts_of("\n\n", TextUnit::Line).is_empty());
    }

    #[test]
    fn a_file_of_lines_gives_its_lines_across_blocks() {
        // lines of every length around the blocks' size, one longer than a block, and a last
        // line without a newline
        let mut text = String::new();
        for i in 0..9_000 {
            text.push_str(&format!("{i} 中文 {}\r\n\n", "x".repeat(i % 97)));
        }
        text.push_str(&"y".repeat(5 * TRAIN_BLOCK / 4));
        text.push_str("\nend");
        let copies = 3;
        let (dir, path) = temp_file("lines", text.as_bytes());
        let (texts, bytes) = file_texts(&vec![path; copies], TextUnit::Line);
        let lines: Vec<&str> = text.split('\n').filter(|l| !l.is_empty()).collect();
        assert_eq!(texts, lines.repeat(copies));
        assert_eq!(bytes, (copies * text.len()) as u64);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn text_units_by_name() {
        assert_eq!("line".parse::<TextUnit>().unwrap(), TextUnit::Line);
        assert_eq!("file".parse::<TextUnit>().unwrap(), TextUnit::File);
        assert_eq!(TextUnit::default(), TextUnit::Line);
        let err = "lines".parse::<TextUnit>().unwrap_err().to_string();
        assert!(err.contains("text unit must be \"line\" or \"file\", got \"lines\""), "{err}");
    }
}
