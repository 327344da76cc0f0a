//! Early writeback of a file written from start to end: a thread of its own asks the kernel to
//! start writing each stretch to the disk once it is written, so that the `fsync` before the file
//! is renamed into place waits for the last stretch only, not for the whole file, and the writing
//! thread never waits for the disk.

use std::fs::File;
use std::io::Seek;
use std::sync::mpsc::{channel, Sender};
use std::thread::JoinHandle;

/// Bytes written between two requests to the kernel.
const STRETCH_BYTES: u64 = 8 << 20;

/// Follows the writes to a file, handing every [`STRETCH_BYTES`] written to the disk. Dropping
/// it waits for its thread (never for the disk).
#[derive(Debug)]
pub struct Writeback {
    /// Where the next write goes.
    offset: u64,
    /// Where the stretch not handed over yet starts.
    pending: u64,
    /// `None` when there is nothing to hand over (no regular file, or not Linux).
    thread: Option<Handler>,
}

/// The thread that hands stretches to the kernel, and the channel of `(offset, length)` to it.
#[derive(Debug)]
struct Handler {
    stretches: Sender<(u64, u64)>,
    thread: JoinHandle<()>,
}

impl Writeback {
    /// Follows writes to `file` from its current position on. A file that is no regular file (a
    /// pipe, a device), or one that cannot be duplicated, is followed by doing nothing.
    pub fn new(mut file: &File) -> Writeback {
        let offset = file.stream_position().unwrap_or(0);
        let regular = file.metadata().is_ok_and(|m| m.is_file());
        let thread = match (regular, file.try_clone()) {
            (true, Ok(file)) if cfg!(target_os = "linux") => {
                let (stretches, requests) = channel::<(u64, u64)>();
                let thread = std::thread::Builder::new()
                    .name("bytepiece-writeback".into())
                    .spawn(move || requests.iter().for_each(|(start, len)| start_writeback(&file, start, len)))
                    .ok();
                thread.map(|thread| Handler { stretches, thread })
            }
            _ => None,
        };
        Writeback { offset, pending: offset, thread }
    }

    /// Notes that `len` more bytes were written.
    pub fn written(&mut self, len: usize) {
        self.offset += len as u64;
        if self.offset - self.pending >= STRETCH_BYTES {
            if let Some(handler) = &self.thread {
                let _ = handler.stretches.send((self.pending, self.offset - self.pending));
            }
            self.pending = self.offset;
        }
    }
}

impl Drop for Writeback {
    fn drop(&mut self) {
        if let Some(Handler { stretches, thread }) = self.thread.take() {
            drop(stretches);
            let _ = thread.join();
        }
    }
}

/// Asks the kernel to start writing `len` bytes at `offset` of `file` to the disk, without
/// waiting for it: a hint, whose failure changes nothing.
#[cfg(target_os = "linux")]
pub(crate) fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else { return };
    // SAFETY: the descriptor is open for the life of `file`; the call only reads its arguments.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn start_writeback(_file: &File, _offset: u64, _len: u64) {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn stretches_follow_the_writes_and_the_file_is_what_was_written() {
        let path = std::env::temp_dir().join(format!("bp-writeback-{}", std::process::id()));
        let mut file = File::create(&path).unwrap();
        file.write_all(b"head").unwrap();
        let mut writeback = Writeback::new(&file);
        assert_eq!(writeback.thread.is_some(), cfg!(target_os = "linux"));
        let block = vec![7u8; 3 << 20];
        for _ in 0..6 {
            file.write_all(&block).unwrap();
            writeback.written(block.len());
        }
        // two stretches of 9 MiB were handed over, nothing is left for the sync
        assert_eq!((writeback.offset, writeback.pending), (4 + (18 << 20), 4 + (18 << 20)));
        drop(writeback);
        file.sync_all().unwrap();
        let written = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(written.len(), 4 + (18 << 20));
        assert!(written.starts_with(b"head") && written[4..].iter().all(|&b| b == 7));
    }

    #[test]
    fn a_file_that_is_no_regular_file_gets_no_thread() {
        let dir = File::open(std::env::temp_dir()).unwrap();
        let mut writeback = Writeback::new(&dir);
        writeback.written(STRETCH_BYTES as usize);
        assert!(writeback.thread.is_none() && writeback.pending == STRETCH_BYTES);
    }
}
