//! Progress lines on stderr for long fits. A fit of a few hundred points takes about a second
//! and prints nothing; one of a million points takes a minute, and a silent minute looks like
//! a hang. So a `Progress` stays quiet for its first `QUIET_S` seconds, then prints at most
//! one line every `EVERY_S` seconds (and a last line when it finishes, if it printed before).
//! It is shared by rayon workers, so it counts with an atomic and prints under a mutex.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// Seconds of silence before the first line.
pub const QUIET_S: f64 = 2.0;
/// Seconds between lines after that.
pub const EVERY_S: f64 = 5.0;

pub struct Progress {
    label: String,
    total: usize,
    done: AtomicUsize,
    start: Instant,
    /// When the last line was printed (None: not yet).
    last: Mutex<Option<Instant>>,
}

impl Progress {
    pub fn new(label: impl Into<String>, total: usize) -> Self {
        Progress {
            label: label.into(),
            total,
            done: AtomicUsize::new(0),
            start: Instant::now(),
            last: Mutex::new(None),
        }
    }

    /// Count `k` more items done; prints a line when one is due.
    pub fn add(&self, k: usize) {
        let done = self.done.fetch_add(k, Ordering::Relaxed) + k;
        let elapsed = self.start.elapsed().as_secs_f64();
        if elapsed < QUIET_S {
            return;
        }
        // try_lock: a worker never waits for another worker's print.
        if let Ok(mut last) = self.last.try_lock() {
            if last.is_none_or(|t| t.elapsed().as_secs_f64() >= EVERY_S) {
                eprintln!("fit: {} {done}/{} ({elapsed:.0} s)", self.label, self.total);
                *last = Some(Instant::now());
            }
        }
    }

    /// A closing line, printed only if the work was long enough to print anything.
    pub fn finish(&self) {
        let printed = self.last.lock().map(|l| l.is_some()).unwrap_or(false);
        if printed {
            let done = self.done.load(Ordering::Relaxed);
            eprintln!("fit: {} {done}/{} done in {:.1} s", self.label, self.total, self.start.elapsed().as_secs_f64());
        }
    }
}

/// Says what a long step is about to do (only for inputs large enough to take seconds).
pub fn note(points: usize, msg: impl FnOnce() -> String) {
    if points > crate::fit::chinchilla::parametric::EXACT_MAX {
        eprintln!("fit: {}", msg());
    }
}
