//! Progress on stderr, drawn one way for all long work: a line per stage with its label, a bar
//! while the total is known, the amount done (bytes with their rate, or items) and the time
//! left, which stays on screen with the time taken once the stage is over. Nothing is drawn
//! when stderr is not a terminal, unless asked, or when asked not to.
//!
//! [`Progress`] draws the trainer's stages (it is the core's [`Monitor`]); `_core.ProgressBar`
//! ([`PyProgressBar`]) draws one bar of bytes for Python: the command line's `encode` and `stats`.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use bytepiece::monitor::{Monitor, Unit};
use bytepiece::{Error, Result as CoreResult};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pyo3::prelude::*;

/// The bar of one stage, and its style once the stage is over.
struct Stage {
    bar: ProgressBar,
    done: ProgressStyle,
}

impl Stage {
    /// A bar labelled `name` for `total` units of `unit` (when known), drawn on stderr if `show`.
    fn start(name: &str, total: Option<u64>, unit: Unit, show: bool) -> Stage {
        let target = if show { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
        let bar = ProgressBar::with_draw_target(total, target)
            .with_style(bar_style(unit, total.is_some(), false))
            .with_message(name.to_string());
        if show {
            bar.enable_steady_tick(Duration::from_millis(100));
        }
        Stage { bar, done: bar_style(unit, total.is_some(), true) }
    }

    /// Ends the bar (once), which stays on screen with the time the stage took.
    fn finish(&self) {
        if !self.bar.is_finished() {
            self.bar.set_style(self.done.clone());
            self.bar.finish();
        }
    }
}

/// Whether to draw: as `show` says, else when stderr is a terminal.
fn shown(show: Option<bool>) -> bool {
    show.unwrap_or_else(|| std::io::stderr().is_terminal())
}

/// The look of a stage's bar measured in `unit`, with a total if `total`, while it runs or
/// once `done`: `Count Ngrams [###---] 120.50 MB/325.00 MB 38.20 MB/s ETA 5s`.
fn bar_style(unit: Unit, total: bool, done: bool) -> ProgressStyle {
    let spinner = if total || done { "" } else { "{spinner}" };
    let amount = match (unit, total) {
        (Unit::Bytes, true) => "[{wide_bar}] {decimal_bytes}/{decimal_total_bytes} {decimal_bytes_per_sec}",
        (Unit::Bytes, false) => "{decimal_bytes} {decimal_bytes_per_sec}",
        (Unit::Items, true) => "[{wide_bar}] {human_pos}/{human_len}",
        (Unit::Items, false) => "",
    };
    let time = match (done, total) {
        (true, _) => "in {elapsed}",
        (false, true) => "ETA {eta}",
        (false, false) => "{elapsed}",
    };
    let template: Vec<&str> = ["{msg}", spinner, amount, time].into_iter().filter(|s| !s.is_empty()).collect();
    ProgressStyle::with_template(&template.join(" "))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("##-")
}

/// The trainer's progress: one bar per stage, and a stop flag.
pub(crate) struct Progress {
    show: bool,
    stage: Mutex<Option<Stage>>,
    stop: AtomicBool,
}

impl Progress {
    /// Progress drawn as `show` says, else when stderr is a terminal.
    pub(crate) fn new(show: Option<bool>) -> Progress {
        Progress { show: shown(show), stage: Mutex::new(None), stop: AtomicBool::new(false) }
    }

    /// Ends the current stage's bar, which stays on screen with the time the stage took.
    pub(crate) fn finish(&self) {
        if let Some(stage) = self.stage.lock().unwrap_or_else(|p| p.into_inner()).take() {
            stage.finish();
        }
    }

    /// Tells the work to stop at its next check (which then fails with [`Error::Cancelled`]).
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Monitor for Progress {
    fn check(&self) -> CoreResult<()> {
        if self.stop.load(Ordering::Relaxed) {
            Err(Error::Cancelled)
        } else {
            Ok(())
        }
    }

    fn stage(&self, name: &str, total: Option<u64>, unit: Unit) {
        self.finish();
        let stage = Stage::start(name, total, unit, self.show);
        *self.stage.lock().unwrap_or_else(|p| p.into_inner()) = Some(stage);
    }

    fn advance(&self, n: u64) {
        let stage = self.stage.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(Stage { bar, .. }) = stage.as_ref() {
            bar.inc(n);
        }
    }
}

/// A bar of bytes on stderr for Python, as the training's stages draw them:
/// `encode [####----] 12.30 MB/100.00 MB 25.10 MB/s ETA 3s`, or the bytes and their rate when
/// the total is unknown. A context manager that closes it.
#[pyclass(module = "bytepiece_rs._core", name = "ProgressBar", frozen)]
pub struct PyProgressBar {
    stage: Stage,
}

#[pymethods]
impl PyProgressBar {
    /// A bar labelled `label` for `total_bytes` (`None`: unknown), drawn as `show` says, else
    /// when stderr is a terminal.
    #[new]
    #[pyo3(signature = (label, total_bytes=None, show=None))]
    fn new(label: &str, total_bytes: Option<u64>, show: Option<bool>) -> PyProgressBar {
        PyProgressBar { stage: Stage::start(label, total_bytes, Unit::Bytes, shown(show)) }
    }

    /// `n` more bytes are done.
    fn advance(&self, n: u64) {
        self.stage.bar.inc(n);
    }

    /// Ends the bar, which stays on screen with the time taken; nothing once closed.
    fn close(&self) {
        self.stage.finish();
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(&self, _type: &Bound<'_, PyAny>, _value: &Bound<'_, PyAny>, _traceback: &Bound<'_, PyAny>) {
        self.close();
    }
}
