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
    /// ln(vocabulary size) of the check model's data: the loss of a uniform guess, which any
    /// trained model beats. An interval reaching above it excludes nothing (`no_claim`).
    /// Absent in ledgers written before it was recorded (then only the spread rule applies).
    #[serde(default)]
    pub ln_vocab: Option<f64>,
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

/// Why a 95% interval of a final loss is no claim, if it is not one: its ends are not finite
/// numbers, its upper end lies above ln(vocabulary) (the loss of a uniform guess: an interval
/// reaching it excludes nothing a trained model could reach), or its upper end is more than
/// `verdict::MAX_SPREAD` (10) times its lower end (the verdict's rule for an interval that does
/// not determine its quantity). Such an interval is "no interval": never inside, never outside,
/// never counted in coverage (docs/verdicts.md, "Which intervals count").
pub fn no_claim(iv: &Interval, ln_vocab: Option<f64>) -> Option<String> {
    if !(iv.lo.is_finite() && iv.hi.is_finite() && iv.lo <= iv.hi) {
        return Some(format!("its ends [{}, {}] are not a finite interval", iv.lo, iv.hi));
    }
    if let Some(lv) = ln_vocab.filter(|v| v.is_finite() && *v > 0.0) {
        if iv.hi > lv {
            return Some(format!(
                "its upper end {:.4} is above ln(vocabulary) = {lv:.4}, the loss of a uniform guess",
                iv.hi
            ));
        }
    }
    let spread = crate::fit::verdict::spread(iv);
    if spread > crate::fit::verdict::MAX_SPREAD {
        return Some(format!(
            "its upper end is {} its lower end (more than {}x)",
            if spread.is_finite() { format!("{spread:.1}x") } else { "unboundedly above".into() },
            crate::fit::verdict::MAX_SPREAD
        ));
    }
    None
}

impl Entry {
    /// The interval if it is a claim (`no_claim`), else None.
    pub fn claim(&self) -> Option<Interval> {
        self.interval.filter(|iv| no_claim(iv, self.ln_vocab).is_none())
    }

    /// Why the recorded interval is no claim, if it is not one.
    pub fn no_claim(&self) -> Option<String> {
        self.interval.as_ref().and_then(|iv| no_claim(iv, self.ln_vocab))
    }

    /// Fill in the outcome from the run's final loss. Inside or outside only against an
    /// interval that is a claim: a vacuous one leaves `inside` empty.
    pub fn settle(&mut self, actual: f64) {
        self.actual = Some(actual);
        self.inside = self.claim().map(|iv| iv.contains(actual));
        self.rel_err = Some(actual / self.predicted - 1.0);
    }

    /// Whether the actual loss lies inside a claimed interval; None when unsettled or the
    /// interval is no claim, whatever `inside` a hand-edited or older ledger holds.
    pub fn counted_inside(&self) -> Option<bool> {
        Some(self.claim()?.contains(self.actual?))
    }

    /// One line for the terminal: predicted, interval, actual and whether it lies inside.
    pub fn line(&self) -> String {
        let iv = match (self.interval, self.no_claim()) {
            (None, _) => "no interval".to_string(),
            (Some(i), None) => format!("95% {}", crate::human::loss_interval(i.lo, i.hi)),
            (Some(i), Some(why)) => {
                format!("no interval (95% {} is no claim: {why})", crate::human::loss_interval(i.lo, i.hi))
            }
        };
        let out = match (self.actual, self.counted_inside()) {
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

/// What the check runs' folder holds for an entry's run (the caller looks; fit/ reads no files).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RunState {
    /// No run folder of that id.
    Missing,
    /// A folder, not finished.
    NotDone,
    /// Finished, with its final evaluation's loss.
    Done(f64),
}

impl Ledger {
    /// check.json as read back is the user's file: an entry is kept only if its run folder
    /// exists (`state`), its `predicted` is what its own `law` gives at its N and D, and an
    /// outcome it records is the run's own final loss (taken from the run when they differ).
    /// The others are removed, each with a warning naming the entry and what is wrong: a
    /// phantom run id made the report say "2 of 2 inside", a hand-edited `predicted: 99` was
    /// taken as recorded.
    pub fn validate(&mut self, state: impl Fn(&str) -> RunState) -> Vec<String> {
        let mut warnings = Vec::new();
        self.entries.retain_mut(|e| {
            let again = e.law.predict(e.params, e.tokens);
            let why = match state(&e.run_id) {
                // Recorded before training: a run not started yet has no folder.
                RunState::Missing if e.actual.is_some() => {
                    Some(format!("it records an actual loss, but its run folder {} does not exist", e.run_id))
                }
                _ if !(e.predicted.is_finite() && (again / e.predicted - 1.0).abs() <= 1e-9) => Some(format!(
                    "its `predicted` {} is not what its own law gives at N = {:.4e}, D = {:.4e} ({again:.6})",
                    e.predicted, e.params, e.tokens
                )),
                RunState::NotDone if e.actual.is_some() => {
                    Some("it records an actual loss, but its run has not finished".to_string())
                }
                RunState::Done(loss) => {
                    if e.actual.is_some_and(|a| a != loss) {
                        warnings.push(format!(
                            "check.json: entry {}: `actual` {} is not its run's final loss {loss}; the run's is used",
                            e.run_id,
                            e.actual.unwrap_or(f64::NAN)
                        ));
                    }
                    if e.actual != Some(loss) {
                        let curve = e.curve.take();
                        e.settle(loss);
                        e.curve = curve;
                    }
                    None
                }
                _ => None,
            };
            if let Some(w) = &why {
                warnings.push(format!("check.json: entry {} is left out: {w}", e.run_id));
            }
            why.is_none()
        });
        warnings
    }

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

    /// (settled entries whose interval is a claim, of which inside it). Re-derived from each
    /// entry's interval and actual loss, not read from its `inside`: an interval that is no
    /// claim (`no_claim`) counts neither way, whatever the ledger says.
    pub fn coverage(&self) -> (usize, usize) {
        let counted: Vec<bool> = self.entries.iter().filter_map(|e| e.counted_inside()).collect();
        (counted.len(), counted.iter().filter(|&&x| x).count())
    }

    /// Settled entries whose interval is no claim (or who have none): not in `coverage`.
    pub fn uncounted(&self) -> usize {
        self.entries.iter().filter(|e| e.actual.is_some() && e.counted_inside().is_none()).count()
    }
}

/// A check entry for tests (here and in `app::check`): N 1e5 on 2e6 tokens, predicted 3.2670
/// by a fixed law, interval [lo, hi], not settled.
#[cfg(test)]
pub(crate) fn test_entry(lo: f64, hi: f64, ln_vocab: Option<f64>) -> Entry {
    Entry {
        run_id: "r".into(),
        width: 32,
        depth: 1,
        heads: 2,
        params: 1e5,
        tokens: 2e6,
        tokens_per_param: 20.0,
        flops: 1.2e12,
        factor: 2.0,
        rule: "x".into(),
        predicted: 3.2670,
        interval: Some(Interval { lo, hi }),
        ln_vocab,
        law: Law { e: 1.0, a: 100.0, b: 100.0, alpha: 0.3, beta: 0.3 },
        kaplan: None,
        actual: None,
        inside: None,
        rel_err: None,
        curve: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(lo: f64, hi: f64, ln_vocab: Option<f64>) -> Entry {
        test_entry(lo, hi, ln_vocab)
    }

    /// A tampered check.json: a phantom run id, an edited `predicted` and an edited `actual`.
    #[test]
    fn a_tampered_ledger_is_validated_against_its_runs_and_its_own_law() {
        let ln256 = Some(256f64.ln());
        let good = |id: &str| {
            let mut e = entry(3.0, 3.5, ln256);
            e.run_id = id.into();
            e.predicted = e.law.predict(e.params, e.tokens);
            e.settle(3.2);
            e
        };
        let phantom = good("phantom");
        let mut edited = good("edited");
        edited.predicted = 99.0;
        let mut actual = good("actual");
        actual.settle(3.45);
        let mut l = Ledger { entries: vec![good("real"), phantom, edited, actual], ..Default::default() };
        let w = l.validate(|id| match id {
            "phantom" => RunState::Missing,
            "actual" => RunState::Done(3.7),
            _ => RunState::Done(3.2),
        });
        let ids: Vec<&str> = l.entries.iter().map(|e| e.run_id.as_str()).collect();
        assert_eq!(ids, ["real", "actual"], "{w:?}");
        assert!(w.iter().any(|x| x.contains(
            "entry phantom is left out: it records an actual loss, but its run folder phantom does not exist"
        )));
        assert!(w.iter().any(|x| x.contains("entry edited is left out: its `predicted` 99 is not what its own law")));
        assert!(w.iter().any(|x| x.contains("entry actual: `actual` 3.45 is not its run's final loss 3.7")));
        // The run's own loss (3.7) lies outside [3.0, 3.5]: coverage is 1 of 2, not 2 of 2.
        assert_eq!(l.coverage(), (2, 1));
    }

    /// The tiny sweep's recorded check: 95% [3.2113, 637019326968.8829], actual 3.2702, counted
    /// INSIDE. Against ln 256 = 5.55 (and the 10x spread rule without it) it is no claim.
    #[test]
    fn a_vacuous_interval_is_never_counted_inside() {
        let ln256 = 256f64.ln();
        for lv in [Some(ln256), None] {
            let mut e = entry(3.2113, 637019326968.8829, lv);
            e.settle(3.2702);
            assert_eq!((e.inside, e.counted_inside()), (None, None), "{lv:?}");
            assert!(e.line().contains("no interval (95% [3.2113,") && !e.line().contains("INSIDE"), "{}", e.line());
        }
        // Only above ln V: an upper end of 6.0 spreads less than 10x but excludes nothing.
        let mut e = entry(3.2113, 6.0, Some(ln256));
        e.settle(3.2702);
        assert!(e.no_claim().unwrap().contains("ln(vocabulary)") && e.inside.is_none());
        // A ledger written before the rule (inside: true recorded) is re-derived, not trusted.
        let mut old = entry(3.2113, 637019326968.8829, None);
        (old.actual, old.inside) = (Some(3.2702), Some(true));
        let mut good = entry(3.0, 3.5, Some(ln256));
        good.settle(3.2702);
        assert_eq!(good.inside, Some(true));
        let l = Ledger { entries: vec![old, good], ..Default::default() };
        assert_eq!((l.coverage(), l.uncounted()), ((1, 1), 1));
        assert!(no_claim(&Interval { lo: f64::NAN, hi: 3.0 }, None).is_some());
    }

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
