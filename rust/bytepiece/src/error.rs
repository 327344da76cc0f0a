//! One error type for the whole core: every failure is a value, never a panic.

use std::path::PathBuf;

/// Everything that can go wrong in the core.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file that was asked for does not exist.
    #[error("{}: no such file", path.display())]
    NotFound {
        /// The missing file.
        path: PathBuf,
    },
    /// A file was asked for and a directory found.
    #[error("{}: is a directory, not a file", path.display())]
    IsADirectory {
        /// The directory.
        path: PathBuf,
    },
    /// A file cannot be written because its directory does not exist.
    #[error("{}: no such directory {}", path.display(), dir.display())]
    NoDirectory {
        /// The file to write.
        path: PathBuf,
        /// Its missing directory.
        dir: PathBuf,
    },
    /// A file cannot be written (made, opened, written, synced or renamed into place): the
    /// message gives the system's reason, `PATH: cannot write (Permission denied)`.
    #[error("{}: cannot write ({})", path.display(), reason(source))]
    CannotWrite {
        /// The file to write, as given (not a temporary file).
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Reading or writing a file failed for another reason.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file being read or written.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A model (from a file or from memory) is not a valid BytePiece model.
    #[error("{origin}: {message}")]
    InvalidModel {
        /// Where the model came from: a file path, or a short description.
        origin: String,
        /// What is wrong with it.
        message: String,
    },
    /// An id that names no piece (ids run from 0 to `vocab_size - 1`).
    #[error("id {id} is not in the vocabulary (ids are 0 to {})", .vocab_size.saturating_sub(1))]
    UnknownId {
        /// The id asked for.
        id: i64,
        /// The vocabulary size.
        vocab_size: usize,
    },
    /// A special token named by a caller is not one of the model's.
    #[error("{argument}: {token:?} is not a special token of this model")]
    UnknownSpecialToken {
        /// The caller's argument that names it (`allowed_special`, `disallowed_special`).
        argument: String,
        /// The text named.
        token: String,
    },
    /// A text to encode holds the text of a special token that is not allowed in it.
    #[error(
        "the text contains the special token {token:?} (at {at}); allow it to encode it as its id, \
         or turn the check off for it to encode it as ordinary text"
    )]
    DisallowedSpecialToken {
        /// The token's text.
        token: String,
        /// Its position in the text (characters of a `str`, bytes of `bytes`).
        at: usize,
    },
    /// The work was stopped by its monitor (for example on Ctrl-C).
    #[error("interrupted")]
    Cancelled,
    /// An argument is out of its domain (an unknown id, a non-finite alpha, ...).
    #[error("{0}")]
    InvalidArgument(String),
}

impl Error {
    /// Builds an [`Error::Io`] (or [`Error::NotFound`], [`Error::IsADirectory`]) for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        let path = path.into();
        match source.kind() {
            std::io::ErrorKind::NotFound => Error::NotFound { path },
            std::io::ErrorKind::IsADirectory => Error::IsADirectory { path },
            _ => Error::Io { path, source },
        }
    }
}

/// The system's description of an I/O error, without the ` (os error N)` Rust adds.
fn reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    match e.raw_os_error() {
        Some(code) => text.strip_suffix(&format!(" (os error {code})")).map_or_else(|| text.clone(), str::to_string),
        None => text,
    }
}

/// The core's result type.
pub type Result<T> = std::result::Result<T, Error>;
