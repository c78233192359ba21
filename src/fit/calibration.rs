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
    /// The entries are runs trained elsewhere and held out of an import's fit (`windtunnel
    /// import`), not runs planned by `windtunnel check`: predicted from the same fit, but not
    /// planned before they trained.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub held_out: bool,
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
    /// The loss-curve law's prediction of the run's whole curve, when the sweep fits it.
    #[serde(default)]
    pub curve: Option<CurveCheck>,
}

/// The loss-curve law (`laws.loss_curve` of the sweep's fit.json, which never includes check
/// runs) predicting a check run's every evaluation with its 95% band, against what the run
/// reached: the curve law's calibration, as `Entry` is the final-point law's. Computed when
/// the run settles, not recorded before it trains.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CurveCheck {
    pub points: usize,
    /// Mean and largest |predicted / actual - 1| over the evaluations.
    pub mean_rel: f64,
    pub max_rel: f64,
    /// Evaluations whose actual loss lies inside the band.
    pub inside: usize,
    pub final_predicted: f64,
    pub final_lo: f64,
    pub final_hi: f64,
    pub final_actual: f64,
}

impl CurveCheck {
    /// From the predicted points (loss, lo, hi) at the run's evaluations and its actual losses;
    /// None without points.
    pub fn of(pred: &[(f64, f64, f64)], actual: &[f64]) -> Option<CurveCheck> {
        let (last, &y) = (pred.last()?, actual.last()?);
        let e: Vec<f64> = pred.iter().zip(actual).map(|(p, a)| (p.0 / a - 1.0).abs()).collect();
        Some(CurveCheck {
            points: e.len(),
            mean_rel: e.iter().sum::<f64>() / e.len() as f64,
            max_rel: e.iter().cloned().fold(0.0, f64::max),
            inside: pred.iter().zip(actual).filter(|(p, &a)| p.1 <= a && a <= p.2).count(),
            final_predicted: last.0,
            final_lo: last.1,
            final_hi: last.2,
            final_actual: y,
        })
    }

    /// Whether the final loss lies inside its band.
    pub fn final_inside(&self) -> bool {
        self.final_lo <= self.final_actual && self.final_actual <= self.final_hi
    }

    pub fn line(&self) -> String {
        format!(
            "loss-curve law: mean error {:.2}% (worst {:.2}%) over {} evaluations, {} inside the 95% band; final {:.4} \
             [{:.4}, {:.4}] vs {:.4} ({})",
            100.0 * self.mean_rel,
            100.0 * self.max_rel,
            self.points,
            self.inside,
            self.final_predicted,
            self.final_lo,
            self.final_hi,
            self.final_actual,
            if self.final_inside() { "inside" } else { "OUTSIDE" }
        )
    }
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
        let curve = self.curve.as_ref().map_or(String::new(), |c| format!("; {}", c.line()));
        format!(
            "width {} depth {} (N {:.0}, D {:.0}, {:.1} tokens/param, {:.1}x the sweep's largest compute): predicted {:.4} {iv}; {out}{kaplan}{curve}",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_curve_check_scores_every_evaluation_and_the_final_one() {
        // Three evaluations: the first inside its band, the second above it, the final inside.
        let pred = [(2.0, 1.9, 2.1), (1.8, 1.75, 1.85), (1.6, 1.5, 1.7)];
        let actual = [2.02, 1.9, 1.64];
        let c = CurveCheck::of(&pred, &actual).unwrap();
        assert_eq!((c.points, c.inside), (3, 2));
        let want = ((2.0 / 2.02 - 1.0f64).abs() + (1.8 / 1.9 - 1.0f64).abs() + (1.6 / 1.64 - 1.0f64).abs()) / 3.0;
        assert!((c.mean_rel - want).abs() < 1e-12 && (c.max_rel - (1.0 - 1.8 / 1.9)).abs() < 1e-12, "{c:?}");
        assert!(c.final_inside() && c.final_actual == 1.64 && c.final_predicted == 1.6);
        assert!(c.line().contains("2 inside the 95% band") && c.line().ends_with("(inside)"), "{}", c.line());
        let out = CurveCheck::of(&pred, &[2.02, 1.9, 1.8]).unwrap();
        assert!(!out.final_inside() && out.line().ends_with("(OUTSIDE)"));
        assert!(CurveCheck::of(&[], &[]).is_none());
    }
}
