//! How long work reports progress and learns that it must stop.

use crate::error::Result;

/// Receives progress from the trainer's stages and may stop them.
pub trait Monitor: Sync {
    /// Called between units of work; an error (such as [`crate::Error::Cancelled`]) stops the
    /// work and is returned by it.
    fn check(&self) -> Result<()>;
    /// A new stage starts, with `total` units of work if known.
    fn stage(&self, _name: &str, _total: Option<u64>) {}
    /// `n` more units of the current stage are done.
    fn advance(&self, _n: u64) {}
}

/// A monitor that reports nothing and never stops the work.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Monitor for Silent {
    fn check(&self) -> Result<()> {
        Ok(())
    }
}
