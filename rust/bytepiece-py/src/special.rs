//! `allowed_special` and `disallowed_special` as Python gives them (`"all"` or a collection of
//! token texts), turned into the core's [`SpecialPolicy`], and the core's special-token errors
//! worded for Python.

use std::borrow::Cow;

use bytepiece::special::{Selection, SpecialPolicy};
use bytepiece::{Error, Vocab};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

/// The token texts an argument names: `None` for `"all"`.
fn names(obj: &Bound<'_, PyAny>, argument: &str) -> PyResult<Option<Vec<String>>> {
    let wrong = || {
        let shown = obj.repr().map(|r| r.to_string()).unwrap_or_default();
        PyTypeError::new_err(format!(r#"{argument} must be "all" or a collection of token texts, got {shown}"#))
    };
    if let Ok(s) = obj.cast::<PyString>() {
        return if s.to_cow()? == "all" { Ok(None) } else { Err(wrong()) };
    }
    if obj.is_instance_of::<PyBytes>() {
        return Err(wrong());
    }
    let mut out = Vec::new();
    for item in obj.try_iter().map_err(|_| wrong())? {
        out.push(item?.extract::<String>().map_err(|_| wrong())?);
    }
    Ok(Some(out))
}

/// The texts of `names` as `&str`.
fn refs(names: &Option<Vec<String>>) -> Option<Vec<&str>> {
    names.as_ref().map(|n| n.iter().map(String::as_str).collect())
}

/// The selection of `names` (`None`: all).
fn selection<'a>(names: &'a Option<Vec<&'a str>>) -> Selection<'a> {
    names.as_ref().map_or(Selection::All, |n| Selection::Named(n))
}

/// The policies most calls use, made once per model.
pub(crate) struct Policies {
    /// tiktoken's default: no token allowed, every one disallowed.
    strict: SpecialPolicy,
    /// `allowed_special="all"`.
    all_allowed: SpecialPolicy,
}

impl Policies {
    /// The common policies for the special tokens of `vocab`.
    pub(crate) fn new(vocab: &Vocab) -> Policies {
        let make = |allowed| SpecialPolicy::new(vocab, allowed, Selection::All).unwrap_or_else(|_| unreachable!());
        Policies { strict: make(Selection::Named(&[])), all_allowed: make(Selection::All) }
    }

    /// The policy of the arguments `allowed_special` (default: none) and `disallowed_special`
    /// (default: `"all"`).
    pub(crate) fn of<'a>(
        &'a self,
        vocab: &Vocab,
        allowed: Option<&Bound<'_, PyAny>>,
        disallowed: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Cow<'a, SpecialPolicy>> {
        let allowed = allowed.map(|a| names(a, "allowed_special")).transpose()?.unwrap_or(Some(Vec::new()));
        let disallowed = disallowed.map(|d| names(d, "disallowed_special")).transpose()?.unwrap_or(None);
        match (&allowed, &disallowed) {
            (Some(a), None) if a.is_empty() => return Ok(Cow::Borrowed(&self.strict)),
            (None, None) => return Ok(Cow::Borrowed(&self.all_allowed)),
            _ => {}
        }
        let allowed = refs(&allowed);
        let disallowed = refs(&disallowed);
        let policy = SpecialPolicy::new(vocab, selection(&allowed), selection(&disallowed)).map_err(crate::to_py)?;
        Ok(Cow::Owned(policy))
    }
}

/// The Python error for a special-token error of the core, worded with Python's names and
/// reprs; `None` for other errors.
pub(crate) fn error(err: &Error) -> Option<PyErr> {
    let repr = |text: &str| Python::attach(|py| PyString::new(py, text).repr().map(|r| r.to_string()));
    match err {
        Error::UnknownSpecialToken { argument, token } => {
            let token = repr(token).ok()?;
            Some(PyValueError::new_err(format!("{argument}: {token} is not a special token of this model")))
        }
        Error::DisallowedSpecialToken { token, at } => {
            let token = repr(token).ok()?;
            Some(PyValueError::new_err(format!(
                "the text contains the special token {token} (at {at}); pass allowed_special={{{token}}} (or 'all') \
                 to encode it as its id, or disallowed_special=() to encode it as ordinary text"
            )))
        }
        _ => None,
    }
}
