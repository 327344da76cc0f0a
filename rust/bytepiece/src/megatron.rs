//! The index (`.idx`) of Megatron-LM's indexed dataset, whose `.bin` holds every document's ids
//! one after the other.
//!
//! The index is the magic [`MAGIC`], the version (`u64` 1), the ids' dtype code (`u8`), the
//! number of documents `n` and of document boundaries `n + 1` (`u64` each), then each document's
//! length in ids (`i32`), each document's byte offset in the `.bin` (`i64`) and the boundaries
//! `0..=n` (`i64`), all little-endian.
//!
//! A writer streams the lengths after a placeholder header of [`HEADER_BYTES`] as documents come;
//! [`complete_index`] then reads them back in chunks to append the offsets and the boundaries and
//! writes the header, so memory does not grow with the number of documents.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};

use crate::writeback::start_writeback;

/// The first bytes of an index.
pub const MAGIC: &[u8; 9] = b"MMIDIDX\x00\x00";

/// The bytes of the header before the lengths.
pub const HEADER_BYTES: u64 = MAGIC.len() as u64 + 8 + 1 + 8 + 8;

/// Documents read back and written per step.
const CHUNK_DOCS: usize = 1 << 18;

/// Completes the index in `file`, which holds a placeholder header of [`HEADER_BYTES`] and then
/// the lengths of `docs` documents, each of whose ids take `id_bytes` bytes in the `.bin`:
/// appends their byte offsets and the boundaries, then writes the header with `dtype_code`. The
/// file's position is left at its end.
pub fn complete_index(mut file: &File, docs: u64, id_bytes: u8, dtype_code: u8) -> io::Result<()> {
    let lengths_end = HEADER_BYTES + 4 * docs;
    let mut at = lengths_end;
    let mut lengths = vec![0u8; 4 * CHUNK_DOCS];
    let mut out = Vec::with_capacity(8 * CHUNK_DOCS);
    let mut offset = 0i64;
    let mut read = HEADER_BYTES;
    // the disk writes what is done while the rest is computed: the final sync waits less
    start_writeback(file, 0, lengths_end);
    while read < lengths_end {
        let bytes = &mut lengths[..(lengths_end - read).min(4 * CHUNK_DOCS as u64) as usize];
        file.seek(SeekFrom::Start(read))?;
        file.read_exact(bytes)?;
        read += bytes.len() as u64;
        out.clear();
        for length in bytes.chunks_exact(4) {
            out.extend_from_slice(&offset.to_le_bytes());
            let length = i32::from_le_bytes(length.try_into().expect("chunks of 4"));
            offset += i64::from(length) * i64::from(id_bytes);
        }
        file.seek(SeekFrom::Start(at))?;
        file.write_all(&out)?;
        start_writeback(file, at, out.len() as u64);
        at += out.len() as u64;
    }
    for start in (0..=docs).step_by(CHUNK_DOCS) {
        out.clear();
        for boundary in start..(start + CHUNK_DOCS as u64).min(docs + 1) {
            out.extend_from_slice(&boundary.to_le_bytes());
        }
        file.write_all(&out)?;
        start_writeback(file, at, out.len() as u64);
        at += out.len() as u64;
    }
    let mut header = Vec::with_capacity(HEADER_BYTES as usize);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&1u64.to_le_bytes());
    header.push(dtype_code);
    header.extend_from_slice(&docs.to_le_bytes());
    header.extend_from_slice(&(docs + 1).to_le_bytes());
    file.seek(SeekFrom::Start(0))?;
    file.write_all(&header)?;
    file.seek(SeekFrom::End(0)).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A new empty file, removed when dropped.
    struct Scratch(std::path::PathBuf, File);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let path = std::env::temp_dir().join(format!("bp-megatron-{name}-{}", std::process::id()));
            let file = File::options().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
            Scratch(path, file)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn le_u64(bytes: &[u8]) -> Vec<u64> {
        bytes.chunks_exact(8).map(|b| u64::from_le_bytes(b.try_into().unwrap())).collect()
    }

    #[test]
    fn the_index_holds_lengths_offsets_and_boundaries_across_chunks() {
        let lengths: Vec<i32> = (0..CHUNK_DOCS as i32 * 2 + 3).map(|i| i % 7).collect();
        let scratch = Scratch::new("chunks");
        let mut file = &scratch.1;
        file.write_all(&[0xAA; HEADER_BYTES as usize]).unwrap();
        for l in &lengths {
            file.write_all(&l.to_le_bytes()).unwrap();
        }
        complete_index(file, lengths.len() as u64, 2, 8).unwrap();
        let mut all = Vec::new();
        file.seek(SeekFrom::Start(0)).unwrap();
        file.read_to_end(&mut all).unwrap();
        let n = lengths.len();
        assert_eq!(&all[..9], MAGIC);
        assert_eq!(le_u64(&all[9..17]), [1]);
        assert_eq!(all[17], 8);
        assert_eq!(le_u64(&all[18..34]), [n as u64, n as u64 + 1]);
        let offsets_at = HEADER_BYTES as usize + 4 * n;
        let offsets = le_u64(&all[offsets_at..offsets_at + 8 * n]);
        let want: Vec<u64> =
            lengths.iter().scan(0u64, |at, &l| Some(std::mem::replace(at, *at + 2 * l as u64))).collect();
        assert_eq!(offsets, want);
        assert_eq!(le_u64(&all[offsets_at + 8 * n..]), (0..=n as u64).collect::<Vec<_>>());
    }

    #[test]
    fn no_documents_make_an_index_of_one_boundary() {
        let scratch = Scratch::new("empty");
        let mut file = &scratch.1;
        file.write_all(&[0; HEADER_BYTES as usize]).unwrap();
        complete_index(file, 0, 4, 4).unwrap();
        assert_eq!(file.metadata().unwrap().len(), HEADER_BYTES + 8);
    }
}
