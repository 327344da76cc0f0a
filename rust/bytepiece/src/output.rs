//! An output file written block by block whose pages are handed to the disk as they are written,
//! so that the `fsync` before it is renamed into place waits for the last blocks only, not for
//! the whole file.

use std::fs::File;
use std::io::{Seek, Write};

/// A file (or a pipe, a device) that blocks of bytes are appended to.
#[derive(Debug)]
pub struct StreamedFile {
    file: File,
    /// Where the next block goes, for a regular file (`None`: not seekable, nothing to hint).
    offset: Option<u64>,
}

impl StreamedFile {
    /// Appends to `file` from its current position.
    pub fn new(mut file: File) -> StreamedFile {
        let offset = file.stream_position().ok();
        StreamedFile { file, offset }
    }

    /// Appends `bytes` and starts writing them back to the disk (Linux; elsewhere a no-op).
    pub fn write_block(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.file.write_all(bytes)?;
        if let Some(offset) = self.offset.as_mut() {
            start_writeback(&self.file, *offset, bytes.len() as u64);
            *offset += bytes.len() as u64;
        }
        Ok(())
    }
}

/// Asks the kernel to start writing `len` bytes at `offset` of `file` to the disk, without
/// waiting: a hint, whose failure (a pipe, an old kernel) changes nothing.
#[cfg(target_os = "linux")]
fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else { return };
    // SAFETY: the descriptor is open for the life of `file`; the call only reads its arguments.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _offset: u64, _len: u64) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_follow_what_was_written_before() {
        let path = std::env::temp_dir().join(format!("bp-output-{}", std::process::id()));
        let mut file = File::create(&path).unwrap();
        file.write_all(b"head|").unwrap();
        let mut out = StreamedFile::new(file);
        for block in [&b"one"[..], b"", b"two"] {
            out.write_block(block).unwrap();
        }
        assert_eq!(out.offset, Some(11));
        drop(out);
        assert_eq!(std::fs::read(&path).unwrap(), b"head|onetwo");
        std::fs::remove_file(&path).unwrap();
    }
}
