//! Files written atomically, for Python: the core's [`AtomicFile`] as `_core.AtomicFile`, which
//! Python writes through a descriptor of its own (buffered on its side) and then commits or
//! aborts. `bytepiece_rs._files` groups several into one commit.

use std::path::PathBuf;

use bytepiece::atomic::AtomicFile;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::to_py;

/// A file written under a temporary name beside its target and renamed into place by
/// `commit_all()`; `abort()` (or losing it) removes the temporary file. A target that is no regular
/// file (a FIFO, a device) is written in place. See the core's `atomic` module.
#[pyclass(module = "bytepiece_rs._core", name = "AtomicFile")]
pub struct PyAtomicFile {
    /// `None` once committed or aborted.
    inner: Option<AtomicFile>,
}

impl PyAtomicFile {
    fn open(&self) -> PyResult<&AtomicFile> {
        self.inner.as_ref().ok_or_else(|| PyValueError::new_err("the file is already committed or aborted"))
    }
}

#[pymethods]
impl PyAtomicFile {
    /// Starts writing `path` (its temporary file is made now: errors name `path`).
    #[new]
    fn new(py: Python<'_>, path: PathBuf) -> PyResult<PyAtomicFile> {
        let inner = py.detach(|| AtomicFile::create(&path)).map_err(to_py)?;
        Ok(PyAtomicFile { inner: Some(inner) })
    }

    /// A new descriptor of the file to write to, which the caller owns and closes; it shares
    /// the file's position. On Unix a file descriptor; on Windows a handle (for
    /// `msvcrt.open_osfhandle`). The temporary file is open to read too.
    fn duplicate(&self) -> PyResult<isize> {
        let copy = self.open()?.file().try_clone().map_err(PyErr::from)?;
        #[cfg(unix)]
        let raw = std::os::fd::IntoRawFd::into_raw_fd(copy) as isize;
        #[cfg(windows)]
        let raw = std::os::windows::io::IntoRawHandle::into_raw_handle(copy) as isize;
        Ok(raw)
    }

    /// Commits `files` together (see the core's `atomic::commit_all`): all are synced, then all
    /// renamed into place; on failure those not renamed yet are removed. Whatever Python
    /// buffers must be flushed first.
    #[staticmethod]
    fn commit_all(py: Python<'_>, files: Vec<PyRefMut<'_, PyAtomicFile>>) -> PyResult<()> {
        let mut taken = Vec::with_capacity(files.len());
        for mut file in files {
            file.open()?;
            taken.extend(file.inner.take());
        }
        py.detach(|| bytepiece::atomic::commit_all(taken)).map_err(to_py)
    }

    /// Removes the temporary files that writes of `path` left when their process was killed
    /// (see the core's `atomic::remove_leftovers`); returns how many.
    #[staticmethod]
    fn remove_leftovers(py: Python<'_>, path: PathBuf) -> usize {
        py.detach(|| bytepiece::atomic::remove_leftovers(&path))
    }

    /// Removes the temporary file, leaving the target as it was; nothing once committed or
    /// aborted.
    fn abort(&mut self) {
        self.inner = None;
    }
}
