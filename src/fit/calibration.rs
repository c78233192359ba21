//! The calibration ledger (`check.json`): what the fitted law predicted for a run larger than
//! any in the sweep, with its 95% interval, next to what that run actually reached. Pure
//! data: `windtunnel check` (src/app/check.rs) fills it, the report reads it. A
//! prediction is recorded before its run trains, so a later refit cannot move it.

use crate::fit::{Interval, Law};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Ledger {
    /// The sweep whose law is checked.
    pub sweep: String,
    /// The check runs' results folder (`<sweep>-check`, beside the sweep's).
    pub runs_dir: String,
    /// Largest 6ND of the sweep's runs: each entry's `factor` is relative to it.
    pub sweep_max_flops: f64,
    pub entries: Vec<Entry>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Entry {
    pub run_id: String,
    pub width: usize,
    pub depth: usize,
    pub heads: usize,
    pub params: f64,
    pub tokens: f64,
    pub tokens_per_param: f64,
    /// C = 6ND and its multiple of the sweep's largest run.
    pub flops: f64,
    pub factor: f64,
    /// How N was chosen ("the law's N_opt" or "20 tokens per parameter").
    pub rule: String,
    pub predicted: f64,
    pub interval: Option<Interval>,
    /// The law the prediction came from (a later refit of the sweep does not change this row).
    pub law: Law,
    /// The Kaplan form's prediction for the same model (`FitReport::form_check`): how much the
    /// answer depends on the law's form.
    #[serde(default)]
    pub kaplan: Option<f64>,
    /// Final validation loss, once the run is done.
    pub actual: Option<f64>,
    pub inside: Option<bool>,
    /// actual / predicted - 1.
    pub rel_err: Option<f64>,
}

impl Entry {
    /// Fill in the outcome from the run's final loss.
    pub fn settle(&mut self, actual: f64) {
        self.actual = Some(actual);
        self.inside = self.interval.map(|iv| iv.contains(actual));
        self.rel_err = Some(actual / self.predicted - 1.0);
    }

    /// One line for the terminal: predicted, interval, actual and whether it lies inside.
    pub fn line(&self) -> String {
        let iv = self.interval.map_or("no interval".into(), |i| format!("95% [{:.4}, {:.4}]", i.lo, i.hi));
        let out = match (self.actual, self.inside) {
            (Some(a), Some(true)) => {
                format!("actual {a:.4} ({:+.2}%): INSIDE the interval", 100.0 * (a / self.predicted - 1.0))
            }
            (Some(a), Some(false)) => {
                format!("actual {a:.4} ({:+.2}%): OUTSIDE the interval", 100.0 * (a / self.predicted - 1.0))
            }
            (Some(a), None) => format!("actual {a:.4}"),
            (None, _) => "not trained yet".into(),
        };
        let kaplan = match (self.kaplan, self.actual) {
            (Some(k), Some(a)) => format!(" (Kaplan form: {k:.4}, {:+.2}%)", 100.0 * (a / k - 1.0)),
            (Some(k), None) => format!(" (Kaplan form: {k:.4})"),
            _ => String::new(),
        };
        format!(
            "width {} depth {} (N {:.0}, D {:.0}, {:.1} tokens/param, {:.1}x the sweep's largest compute): predicted {:.4} {iv}; {out}{kaplan}",
            self.width, self.depth, self.params, self.tokens, self.tokens_per_param, self.factor, self.predicted
        )
    }
}

impl Ledger {
    /// The entry of `e.run_id`, added if new. An existing entry keeps its prediction: it was
    /// made before the run trained, and a refit after seeing the run must not replace it.
    pub fn entry(&mut self, e: Entry) -> &mut Entry {
        match self.entries.iter().position(|x| x.run_id == e.run_id) {
            Some(i) => &mut self.entries[i],
            None => {
                self.entries.push(e);
                self.entries.last_mut().expect("just pushed")
            }
        }
    }

    /// (settled entries, of which inside their interval).
    pub fn coverage(&self) -> (usize, usize) {
        let settled = self.entries.iter().filter(|e| e.inside.is_some()).count();
        (settled, self.entries.iter().filter(|e| e.inside == Some(true)).count())
    }
}
