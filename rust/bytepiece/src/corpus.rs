//! Sources of training text that the trainer reads twice: a temporary spill of texts that came
//! from Python once, and text files read in blocks.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::blocks::{Blocks, Cut};
use crate::error::{Error, Result};
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

/// Reads a UTF-8 text file in blocks of about `block` bytes, cut only where a newline is followed
/// by another character: the training chunks of the blocks are then exactly those of the whole
/// file, which is one text.
pub struct FileBlocks {
    blocks: Blocks,
}

impl FileBlocks {
    /// Opens `path`.
    pub fn open(path: &Path, block: usize) -> Result<FileBlocks> {
        Ok(FileBlocks { blocks: Blocks::open(path, block.max(1 << 16), Cut::BeforeNonNewline)? })
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

    #[test]
    fn file_blocks_give_the_chunks_of_the_whole_file() {
        let dir = std::env::temp_dir().join(format!("bp-blocks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.txt");
        let mut text = String::new();
        for i in 0..20_000 {
            text.push_str(&format!("line {i} 中文{}", "\n".repeat(i % 4 * 60)));
        }
        std::fs::write(&path, &text).unwrap();
        let mut blocks = FileBlocks::open(&path, 1).unwrap();
        let mut chunks: Vec<Vec<u8>> = vec![];
        let mut n = 0;
        while let Some(b) = blocks.next_block().unwrap() {
            n += 1;
            chunks.extend(split_for_training(&b, false).map(|c| c.to_vec()));
        }
        assert!(n > 5);
        let whole: Vec<Vec<u8>> = split_for_training(&text, false).map(|c| c.to_vec()).collect();
        assert_eq!(chunks, whole);
        std::fs::write(&path, b"ok\n\xff").unwrap();
        let err = FileBlocks::open(&path, 1).unwrap().next_block().unwrap_err().to_string();
        assert!(err.contains("not valid UTF-8 at byte 3"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
