//! Temporary files of a training: a folder of its own ([`Scratch`]), and runs of `(key, count)`
//! records sorted by key ([`Run`]), written while counting and merged back in key order
//! ([`merge_runs`]), so that counts larger than memory are summed with bounded memory.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use crate::error::{Error, Result};
use crate::kmerge::{self, Source};

/// A folder for the temporary files of one training, made on first use under a parent folder
/// and removed with everything in it when dropped (on success, on error and on cancellation).
#[derive(Debug)]
pub struct Scratch {
    parent: PathBuf,
    dir: OnceLock<PathBuf>,
    next: AtomicU64,
}

impl Scratch {
    /// A scratch folder under `parent` (the system's temporary folder if `None`); nothing is
    /// created until a file is asked for.
    pub fn new(parent: Option<&Path>) -> Scratch {
        Scratch {
            parent: parent.map_or_else(std::env::temp_dir, Path::to_path_buf),
            dir: OnceLock::new(),
            next: AtomicU64::new(0),
        }
    }

    /// The folder the scratch folder is made in.
    pub fn parent(&self) -> &Path {
        &self.parent
    }

    /// A new file name in the scratch folder (made if needed), starting with `what`.
    pub fn file(&self, what: &str) -> Result<PathBuf> {
        let dir = match self.dir.get() {
            Some(dir) => dir,
            None => {
                let made = self.make_dir()?;
                // another thread may have made one first: keep theirs, remove ours
                if let Err(ours) = self.dir.set(made) {
                    let _ = std::fs::remove_dir(ours);
                }
                self.dir.get().unwrap_or_else(|| unreachable!("just set"))
            }
        };
        Ok(dir.join(format!("{what}-{}", self.next.fetch_add(1, Ordering::Relaxed))))
    }

    fn make_dir(&self) -> Result<PathBuf> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        for attempt in 0..100u32 {
            let dir = self.parent.join(format!(
                "bytepiece-{}-{}-{:x}",
                std::process::id(),
                SEQ.fetch_add(1, Ordering::Relaxed),
                nanos.wrapping_add(attempt)
            ));
            match std::fs::create_dir(&dir) {
                Ok(()) => return Ok(dir),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(Error::InvalidArgument(format!(
                        "cannot make a temporary folder in {}: {e}",
                        self.parent.display()
                    )))
                }
            }
        }
        Err(Error::InvalidArgument(format!("cannot make a temporary folder in {}", self.parent.display())))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.get() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A key of a run's records, written in a form that reads back in the same order.
pub trait RunKey: Ord + Clone + Send + Sync {
    /// Writes the key.
    fn write(&self, w: &mut impl Write) -> std::io::Result<()>;
    /// Reads a key, `None` at the end of the run.
    fn read(r: &mut impl Read) -> std::io::Result<Option<Self>>;
}

impl RunKey for u64 {
    fn write(&self, w: &mut impl Write) -> std::io::Result<()> {
        w.write_all(&self.to_le_bytes())
    }

    fn read(r: &mut impl Read) -> std::io::Result<Option<u64>> {
        let mut buf = [0u8; 8];
        match r.read_exact(&mut buf) {
            Ok(()) => Ok(Some(u64::from_le_bytes(buf))),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl RunKey for Vec<u8> {
    fn write(&self, w: &mut impl Write) -> std::io::Result<()> {
        w.write_all(&(self.len() as u32).to_le_bytes())?;
        w.write_all(self)
    }

    fn read(r: &mut impl Read) -> std::io::Result<Option<Vec<u8>>> {
        let mut len = [0u8; 4];
        match r.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        let mut buf = vec![0u8; u32::from_le_bytes(len) as usize];
        r.read_exact(&mut buf)?;
        Ok(Some(buf))
    }
}

/// Writes a run record by record; [`RunWriter::finish`] gives the [`Run`].
pub struct RunWriter<K> {
    scratch: Arc<Scratch>,
    path: PathBuf,
    w: BufWriter<File>,
    len: u64,
    key: PhantomData<K>,
}

impl<K: RunKey> RunWriter<K> {
    /// A new run in `scratch` (kept while the run is), its file named after `what`.
    pub fn create(scratch: &Arc<Scratch>, what: &str) -> Result<RunWriter<K>> {
        let path = scratch.file(what)?;
        let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
        Ok(RunWriter {
            scratch: scratch.clone(),
            path,
            w: BufWriter::with_capacity(1 << 18, file),
            len: 0,
            key: PhantomData,
        })
    }

    /// Appends a record; keys must come in increasing order (the caller's duty).
    #[inline]
    pub fn push(&mut self, key: &K, count: u64) -> Result<()> {
        self.len += 1;
        key.write(&mut self.w)
            .and_then(|()| self.w.write_all(&count.to_le_bytes()))
            .map_err(|e| Error::io(&self.path, e))
    }

    /// The records written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Flushes the file and gives the run.
    pub fn finish(mut self) -> Result<Run<K>> {
        self.w.flush().map_err(|e| Error::io(&self.path, e))?;
        let path = std::mem::take(&mut self.path);
        Ok(Run { _scratch: self.scratch.clone(), path, len: self.len, key: PhantomData })
    }
}

impl<K> Drop for RunWriter<K> {
    fn drop(&mut self) {
        // an unfinished run (an error or a cancellation on the way) is removed
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Records `(key, count)` by increasing key in a temporary file, removed when dropped.
#[derive(Debug)]
pub struct Run<K> {
    /// Its folder, removed when the last run in it and the trainer are gone.
    _scratch: Arc<Scratch>,
    path: PathBuf,
    len: u64,
    key: PhantomData<K>,
}

impl<K: RunKey> Run<K> {
    /// Number of records.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when the run holds no record.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Reads the records in order.
    pub fn reader(&self) -> Result<RunReader<'_, K>> {
        let file = File::open(&self.path).map_err(|e| Error::io(&self.path, e))?;
        Ok(RunReader { run: self, r: BufReader::with_capacity(1 << 16, file) })
    }

    /// Calls `f` with every record, in order.
    pub fn for_each(&self, mut f: impl FnMut(K, u64) -> Result<()>) -> Result<()> {
        let mut r = self.reader()?;
        while let Some((k, c)) = r.next_record()? {
            f(k, c)?;
        }
        Ok(())
    }
}

impl<K> Drop for Run<K> {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Reads a [`Run`] back.
pub struct RunReader<'a, K> {
    run: &'a Run<K>,
    r: BufReader<File>,
}

impl<K: RunKey> Source for RunReader<'_, K> {
    type Key = K;

    fn next_record(&mut self) -> Result<Option<(K, u64)>> {
        let path = &self.run.path;
        let Some(key) = K::read(&mut self.r).map_err(|e| Error::io(path, e))? else {
            return Ok(None);
        };
        let mut count = [0u8; 8];
        self.r.read_exact(&mut count).map_err(|e| Error::io(path, e))?;
        Ok(Some((key, u64::from_le_bytes(count))))
    }
}

/// The most runs read at once: more are merged in groups into longer runs first, so that a
/// merge holds a bounded number of files open and of read buffers.
const FAN_IN: usize = 64;

/// Merges runs sorted by key, calling `f(key, total count)` once per key, in key order.
pub fn merge_runs<K: RunKey>(runs: &[Run<K>], f: impl FnMut(K, u64) -> Result<()>) -> Result<()> {
    if runs.len() <= FAN_IN {
        return merge_few(runs, f);
    }
    let merged = runs
        .chunks(FAN_IN)
        .map(|group| {
            let mut w = RunWriter::create(&group[0]._scratch, "merged")?;
            merge_few(group, |k, c| w.push(&k, c))?;
            w.finish()
        })
        .collect::<Result<Vec<_>>>()?;
    merge_runs(&merged, f)
}

/// [`merge_runs`] of at most [`FAN_IN`] runs.
fn merge_few<K: RunKey>(runs: &[Run<K>], f: impl FnMut(K, u64) -> Result<()>) -> Result<()> {
    kmerge::merge(runs.iter().map(Run::reader).collect::<Result<Vec<_>>>()?, f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_merge_by_key_and_leave_no_file() {
        let scratch = Arc::new(Scratch::new(None));
        let write = |entries: &[(&[u8], u64)]| {
            let mut w = RunWriter::<Vec<u8>>::create(&scratch, "t").unwrap();
            for (k, c) in entries {
                w.push(&k.to_vec(), *c).unwrap();
            }
            w.finish().unwrap()
        };
        let a = write(&[(b"", 1), (b"a", 2), (b"ab", 3)]);
        let b = write(&[(b"a", 5), (b"b", 1)]);
        let empty = write(&[]);
        let mut got = vec![];
        merge_runs(&[a, empty, b], |k, c| {
            got.push((k, c));
            Ok(())
        })
        .unwrap();
        assert_eq!(got, [(b"".to_vec(), 1), (b"a".to_vec(), 7), (b"ab".to_vec(), 3), (b"b".to_vec(), 1)]);
        let dir = scratch.dir.get().unwrap().clone();
        assert!(dir.starts_with(std::env::temp_dir()) && dir.is_dir());
        // an unfinished run is removed at once, the folder with the scratch
        let mut w = RunWriter::<u64>::create(&scratch, "u").unwrap();
        w.push(&1, u64::MAX).unwrap();
        drop(w);
        let w2 = RunWriter::<u64>::create(&scratch, "v").unwrap();
        let mut x = w2;
        x.push(&1, u64::MAX).unwrap();
        let y = {
            let mut y = RunWriter::<u64>::create(&scratch, "w").unwrap();
            y.push(&1, 1).unwrap();
            y.finish().unwrap()
        };
        let x = x.finish().unwrap();
        assert!(merge_runs(&[x, y], |_, _| Ok(())).is_err(), "a sum past u64::MAX is an error");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        // the folder goes with the last of the scratch and its runs
        let kept = {
            let mut k = RunWriter::<u64>::create(&scratch, "k").unwrap();
            k.push(&1, 1).unwrap();
            k.finish().unwrap()
        };
        drop(scratch);
        assert!(dir.is_dir());
        drop(kept);
        assert!(!dir.exists());
    }

    #[test]
    fn more_runs_than_the_fan_in_merge_in_rounds() {
        let scratch = Arc::new(Scratch::new(None));
        let runs: Vec<Run<u64>> = (0..FAN_IN as u64 * 2 + 5)
            .map(|i| {
                let mut w = RunWriter::create(&scratch, "r").unwrap();
                for k in [i % 7, 100 + i, 1000] {
                    w.push(&k, 1).unwrap();
                }
                w.finish().unwrap()
            })
            .collect();
        let mut got = std::collections::BTreeMap::new();
        let mut last = None;
        merge_runs(&runs, |k, c| {
            assert!(last < Some(k), "in key order");
            last = Some(k);
            got.insert(k, c);
            Ok(())
        })
        .unwrap();
        let n = runs.len() as u64;
        assert_eq!(got[&1000], n);
        assert_eq!(got.values().sum::<u64>(), 3 * n);
        assert_eq!(got.len() as u64, 7 + n + 1);
        drop(runs);
        assert_eq!(std::fs::read_dir(scratch.dir.get().unwrap()).unwrap().count(), 0, "the rounds' runs are removed");
    }

    #[test]
    fn a_missing_parent_folder_is_a_clear_error() {
        let scratch = Scratch::new(Some(Path::new("/nonexistent/folder")));
        let err = scratch.file("x").unwrap_err().to_string();
        assert!(err.contains("cannot make a temporary folder in /nonexistent/folder"), "{err}");
    }
}
