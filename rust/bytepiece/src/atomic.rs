//! Files written atomically: a reader sees the old file or the whole new one, never a part,
//! and a write that fails or is abandoned leaves the old file and no litter.
//!
//! An [`AtomicFile`] is written under a hidden temporary name in its target's folder
//! (`.NAME.PID-N.tmp`, so that the rename stays within one file system), synced to disk and
//! renamed over the target by [`AtomicFile::commit`]; dropped uncommitted, its temporary file is
//! removed. New files get the permissions `0o666` less the umask, as any file a program makes.
//!
//! A symlink is followed: the file it names is replaced, through a temporary file beside that
//! file, and the link stays. A FIFO, a device or another existing file that is not a regular
//! one (`/dev/stdout`) is written to as it is, streaming, and never replaced.
//!
//! Failures name the target as given, never the temporary file: [`Error::IsADirectory`],
//! [`Error::NoDirectory`] when its folder is missing, [`Error::CannotWrite`] for the rest.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// A file being written to replace `target` atomically (or, for a target that is no regular
/// file, written in place).
#[derive(Debug)]
pub struct AtomicFile {
    // declared first, so dropped first: the file is closed before its temporary file goes
    file: File,
    /// The path as given, for messages.
    target: PathBuf,
    /// `None` when the target is written in place.
    temporary: Option<Temporary>,
}

impl AtomicFile {
    /// Starts writing `path`: makes its temporary file (opened to read and write, empty), or
    /// opens a target that is no regular file to write to it in place.
    pub fn create(path: impl AsRef<Path>) -> Result<AtomicFile> {
        let target = path.as_ref();
        if target.is_dir() {
            return Err(Error::IsADirectory { path: target.to_path_buf() });
        }
        if fs::metadata(target).is_ok_and(|m| !m.is_file()) {
            let file = OpenOptions::new().write(true).open(target).map_err(cannot_write(target))?;
            return Ok(AtomicFile { file, target: target.to_path_buf(), temporary: None });
        }
        let destination = resolved(target);
        let dir = match destination.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let name = destination
            .file_name()
            .ok_or_else(|| Error::InvalidArgument(format!("{}: not a file path", target.display())))?;
        if !dir.is_dir() {
            let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
            return Err(Error::NoDirectory { path: target.to_path_buf(), dir });
        }
        let mut stem = OsString::from(".");
        stem.push(name);
        let (file, path) = create_new_beside(dir, &stem).map_err(cannot_write(target))?;
        let temporary = Temporary { path, destination, renamed: false };
        Ok(AtomicFile { file, target: target.to_path_buf(), temporary: Some(temporary) })
    }

    /// The file to write to (a temporary file, or the target itself when written in place).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Syncs the file, closes it and renames it over the target. On failure the temporary file
    /// is removed and the target is untouched.
    pub fn commit(self) -> Result<()> {
        commit_all(vec![self])
    }

    /// Syncs what was written to disk (nothing to do for a target written in place).
    fn sync(&self) -> Result<()> {
        if self.temporary.is_some() {
            self.file.sync_all().map_err(cannot_write(&self.target))?;
        }
        Ok(())
    }

    /// Closes the file and renames it over the target (once synced).
    fn rename(self) -> Result<()> {
        let AtomicFile { file, target, temporary } = self;
        // closed before the rename, which Windows needs
        drop(file);
        match temporary {
            Some(temporary) => temporary.rename().map_err(cannot_write(&target)),
            None => Ok(()),
        }
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Commits several files together: every one is synced to disk before any is renamed, so that
/// after a crash either none of the targets was replaced or each one that was is complete. On
/// failure, the files not renamed yet are removed.
pub fn commit_all(files: Vec<AtomicFile>) -> Result<()> {
    for file in &files {
        file.sync()?;
    }
    files.into_iter().try_for_each(AtomicFile::rename)
}

/// Writes `data` to `path` as an [`AtomicFile`]: readers see the old file or the whole new one.
pub fn write_atomic(path: impl AsRef<Path>, data: &[u8]) -> Result<()> {
    let path = path.as_ref();
    let mut file = AtomicFile::create(path)?;
    file.write_all(data).map_err(cannot_write(path))?;
    file.commit()
}

/// A temporary file to be renamed to `destination`; removed when dropped unless it was.
#[derive(Debug)]
struct Temporary {
    path: PathBuf,
    destination: PathBuf,
    renamed: bool,
}

impl Temporary {
    fn rename(mut self) -> io::Result<()> {
        fs::rename(&self.path, &self.destination)?;
        self.renamed = true;
        Ok(())
    }
}

impl Drop for Temporary {
    fn drop(&mut self) {
        if !self.renamed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Removes the temporary files that writes of `target` left behind when their process was
/// killed before it could remove them (`.NAME.*.tmp` beside the file `target` names), and
/// returns how many. Only for a target that no other process is writing.
pub fn remove_leftovers(target: impl AsRef<Path>) -> usize {
    let destination = resolved(target.as_ref());
    let (Some(dir), Some(name)) = (destination.parent(), destination.file_name()) else { return 0 };
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let mut prefix = OsString::from(".");
    prefix.push(name);
    prefix.push(".");
    let (prefix, Ok(entries)) = (prefix.as_encoded_bytes().to_vec(), fs::read_dir(dir)) else { return 0 };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            let name = e.file_name();
            let name = name.as_encoded_bytes();
            name.starts_with(&prefix) && name.ends_with(b".tmp") && name.len() > prefix.len() + 4
        })
        .filter(|e| fs::remove_file(e.path()).is_ok())
        .count()
}

/// How many names [`create_new_beside`] tries before it gives up.
const ATTEMPTS: usize = 100;

/// The `N` of the next temporary file's name.
static NEXT: AtomicU64 = AtomicU64::new(0);

/// A new file `STEM.PID-N.tmp` in `dir`, made there by this call (never an existing file: one
/// left by another process that had this process id is skipped), opened to read and write.
fn create_new_beside(dir: &Path, stem: &OsString) -> io::Result<(File, PathBuf)> {
    let mut last = None;
    for _ in 0..ATTEMPTS {
        let mut name = stem.clone();
        name.push(format!(".{}-{}.tmp", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)));
        let path = dir.join(name);
        match OpenOptions::new().read(true).write(true).create_new(true).open(&path) {
            Ok(file) => return Ok((file, path)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::from(io::ErrorKind::AlreadyExists)))
}

/// `path` with its symlinks followed to the file they name (which need not exist yet), so that
/// replacing it keeps the links.
fn resolved(path: &Path) -> PathBuf {
    let mut p = path.to_path_buf();
    // as many links as Linux follows
    for _ in 0..40 {
        match fs::read_link(&p) {
            Ok(target) => p = p.parent().unwrap_or(Path::new(".")).join(target),
            Err(_) => break,
        }
    }
    p
}

/// Makes an I/O failure an [`Error::CannotWrite`] naming `path`.
fn cannot_write(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::CannotWrite { path: path.to_path_buf(), source }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh empty folder for one test.
    fn folder(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("bp-atomic-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// The names in `dir`, sorted.
    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    #[test]
    fn commit_replaces_the_target() {
        let dir = folder("commit");
        let path = dir.join("m.model");
        write_atomic(&path, b"one").unwrap();
        let mut file = AtomicFile::create(&path).unwrap();
        file.write_all(b"two").unwrap();
        let during = names(&dir);
        assert_eq!(during.len(), 2);
        assert!(during[0].starts_with(".m.model.") && during[0].ends_with(".tmp"), "{during:?}");
        assert_eq!(fs::read(&path).unwrap(), b"one", "the old file until the commit");
        file.commit().unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(names(&dir), ["m.model"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_dropped_uncommitted_leaves_the_old_one_and_no_temporary_file() {
        let dir = folder("drop");
        let path = dir.join("out");
        write_atomic(&path, b"old").unwrap();
        let mut file = AtomicFile::create(&path).unwrap();
        file.write_all(b"partial").unwrap();
        drop(file);
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(names(&dir), ["out"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_existing_file_of_a_temporary_name_is_skipped_not_clobbered() {
        let dir = folder("clobber");
        let path = dir.join("out");
        // the next names of this process, already taken (as by another process of this id)
        let start = NEXT.load(Ordering::Relaxed);
        let taken: Vec<PathBuf> =
            (start..start + 20).map(|n| dir.join(format!(".out.{}-{n}.tmp", std::process::id()))).collect();
        for p in &taken {
            fs::write(p, b"theirs").unwrap();
        }
        write_atomic(&path, b"ours").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"ours");
        assert!(taken.iter().all(|p| fs::read(p).unwrap() == b"theirs"));
        assert_eq!(names(&dir).len(), taken.len() + 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_stays_and_the_file_it_names_is_replaced() {
        let dir = folder("link");
        let link = dir.join("link");
        std::os::unix::fs::symlink("target", &link).unwrap();
        // a dangling link gets the file it names made
        write_atomic(&link, b"through").unwrap();
        assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(fs::read(dir.join("target")).unwrap(), b"through");
        write_atomic(&link, b"again").unwrap();
        assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(fs::read(dir.join("target")).unwrap(), b"again");
        assert_eq!(names(&dir), ["link", "target"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_written_in_place() {
        use std::io::Read;
        use std::os::unix::fs::FileTypeExt;
        let dir = folder("fifo");
        let fifo = dir.join("fifo");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || {
                let mut got = Vec::new();
                File::open(fifo).unwrap().read_to_end(&mut got).unwrap();
                got
            })
        };
        write_atomic(&fifo, b"streamed").unwrap();
        assert_eq!(reader.join().unwrap(), b"streamed");
        assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
        assert_eq!(names(&dir), ["fifo"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn new_files_get_the_permissions_of_any_new_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = folder("mode");
        write_atomic(dir.join("atomic"), b"x").unwrap();
        fs::write(dir.join("plain"), b"x").unwrap();
        let mode = |name: &str| fs::metadata(dir.join(name)).unwrap().permissions().mode();
        assert_eq!(mode("atomic"), mode("plain"));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_directory_or_a_missing_folder_is_named() {
        let dir = folder("errors");
        assert!(matches!(AtomicFile::create(&dir), Err(Error::IsADirectory { path }) if path == dir));
        let missing = dir.join("no/such/dir/m.model");
        let err = write_atomic(&missing, b"x").unwrap_err().to_string();
        assert_eq!(err, format!("{}: no such directory {}", missing.display(), dir.join("no/such/dir").display()));
        assert!(names(&dir).is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_failure_to_write_gives_the_systems_reason() {
        let e = cannot_write(Path::new("out"))(io::Error::from_raw_os_error(13));
        assert_eq!(e.to_string(), "out: cannot write (Permission denied)");
    }

    #[test]
    fn leftovers_of_killed_writes_are_removed_and_nothing_else() {
        let dir = folder("leftovers");
        let target = dir.join("out.bin");
        let left = AtomicFile::create(&target).unwrap();
        std::mem::forget(left); // as a killed process leaves it
        fs::write(dir.join(".out.bin.other"), b"x").unwrap();
        fs::write(dir.join(".out.binary.1-2.tmp"), b"x").unwrap();
        fs::write(dir.join("out.bin"), b"old").unwrap();
        assert_eq!(remove_leftovers(&target), 1);
        assert_eq!(names(&dir), [".out.bin.other", ".out.binary.1-2.tmp", "out.bin"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn files_committed_together_are_all_replaced() {
        let dir = folder("together");
        let (a, b) = (dir.join("a.bin"), dir.join("a.idx"));
        write_atomic(&a, b"old a").unwrap();
        let mut files = vec![AtomicFile::create(&a).unwrap(), AtomicFile::create(&b).unwrap()];
        files[0].write_all(b"new a").unwrap();
        files[1].write_all(b"new b").unwrap();
        commit_all(files).unwrap();
        assert_eq!((fs::read(&a).unwrap(), fs::read(&b).unwrap()), (b"new a".to_vec(), b"new b".to_vec()));
        assert_eq!(names(&dir), ["a.bin", "a.idx"]);
        fs::remove_dir_all(&dir).unwrap();
    }
}
