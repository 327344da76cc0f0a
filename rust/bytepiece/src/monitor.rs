//! How long work reports progress and learns that it must stop.
//!
//! A stage names itself for a person (`"Count Ngrams"`, `"Prune Pieces: wasted round 2"`), says
//! what its work is measured in ([`Unit`]) and how much there is when that is known, then
//! reports what is done with [`Monitor::advance`]. The counting stages measure bytes of text, so
//! that a bar over files ends at their size; the pruning rounds count the pieces they split.

use crate::error::Result;

/// What the units of a stage's work are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Bytes of text (UTF-8, as given).
    Bytes,
    /// Items of the stage's kind, such as pieces.
    Items,
}

/// Receives progress from the trainer's stages and may stop them.
pub trait Monitor: Sync {
    /// Called between units of work; an error (such as [`crate::Error::Cancelled`]) stops the
    /// work and is returned by it.
    fn check(&self) -> Result<()>;
    /// A new stage starts (and the one before it is over), with `total` units of work if known.
    fn stage(&self, _name: &str, _total: Option<u64>, _unit: Unit) {}
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

/// The work in `texts` for a stage measured in [`Unit::Bytes`].
pub fn bytes_of(texts: &[&str]) -> u64 {
    texts.iter().map(|t| t.len() as u64).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::Mutex;

    use crate::test_support::ln;
    use crate::{Trainer, TrainerConfig};

    /// A stage as reported: its name, total and unit, and the work reported done.
    type Record = (String, Option<u64>, Unit, u64);

    /// Records every stage.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<Record>>);

    impl Monitor for Recorder {
        fn check(&self) -> Result<()> {
            Ok(())
        }
        fn stage(&self, name: &str, total: Option<u64>, unit: Unit) {
            self.0.lock().unwrap().push((name.to_string(), total, unit, 0));
        }
        fn advance(&self, n: u64) {
            self.0.lock().unwrap().last_mut().expect("advance within a stage").3 += n;
        }
    }

    #[test]
    fn every_stage_of_a_training_is_labelled_and_ends_at_its_total() {
        // real text with many pieces: the lines of some of this crate's sources
        let sources = [include_str!("encoder.rs"), include_str!("matcher.rs"), include_str!("vocab.rs")];
        let refs: Vec<&str> = sources.iter().flat_map(|s| s.split_inclusive('\n')).collect();
        // without a memory bound, and with one (the pieces dropped first are then spilled)
        for max_memory_mb in [None, Some(crate::trainer::MIN_MEMORY_MB)] {
            let config =
                TrainerConfig { order: 4, max_vocab_sizes: vec![400, 300], max_memory_mb, ..Default::default() };
            let recorder = Recorder::default();
            Trainer::new(config, &ln, &recorder).unwrap().train(&refs).unwrap();
            check_stages(recorder.0.into_inner().unwrap(), bytes_of(&refs));
        }
    }

    /// The stages of a training on `bytes` of text with sizes 400 and 300.
    fn check_stages(stages: Vec<Record>, bytes: u64) {
        assert_eq!(
            stages[..4].iter().map(|s| (s.0.as_str(), s.1, s.2)).collect::<Vec<_>>(),
            [
                ("Count Ngrams", Some(bytes), Unit::Bytes),
                ("Prune Ngrams", None, Unit::Items),
                ("Count Pieces", Some(bytes), Unit::Bytes),
                ("Prune Pieces: split rare/long", stages[3].1, Unit::Items),
            ]
        );
        for (name, total, _, done) in &stages {
            assert_eq!(*total, total.map(|_| *done), "{name} ends at its total");
        }
        let names: Vec<&str> = stages[4..].iter().map(|s| s.0.as_str()).collect();
        assert_eq!(names[0], "Prune Pieces: wasted round 1");
        let size = names
            .iter()
            .position(|&n| n == "Prune Pieces: size 400")
            .unwrap_or_else(|| panic!("the largest size is cut: {stages:?}"));
        assert!(names[..size].iter().enumerate().all(|(i, n)| *n == format!("Prune Pieces: wasted round {}", i + 1)));
        assert_eq!(names[size + 1], "Prune Pieces: size 400, wasted round 1");
    }
}
