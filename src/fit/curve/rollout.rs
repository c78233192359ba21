//! The curve law's rollout backtest: the final-point laws' rollout (`chinchilla::rollout`)
//! applied to whole curves. For factors k = 2, 4, ... the law is refitted on the runs at most
//! 1/k of the way along both axes it extrapolates on, compute (C = 6ND, against the largest
//! run's C_max) and each model's own curve (tokens, against the longest run of that model
//! size), and predicts every evaluation of the other runs with its 95% band. The second axis is
//! what fails first: fitted on runs of 0.5M to 2M tokens of real text, the law predicted the
//! 4M-token curves of the same models 2.4% too low on average (more progress than the text
//! gives; its smallest models' by up to 12%) at compute the sweep covers; on the built-in
//! domains, fitted at 5 and 10 tokens per parameter, the 20-token-per-parameter curves' decays
//! were the worst points. Compute alone sees neither.
//!
//! What the rollout measures widens every predicted band (`predict_curve`) at the distance of
//! each point, max(6 N t / C_max, t / T(N)) for a point after t tokens of a model of N, T(N)
//! the longest run of that size (log-interpolated between sizes, the end sizes' beyond; for a
//! point still at peak learning rate, the furthest fitted evaluation at peak of that size), by
//! the envelope the final-point rollout uses: nothing inside the sweep, the measured widening
//! up to the largest k, beyond it that widening grown by ln(distance) / ln(k): an assumption,
//! stated so.

use super::{CurveFit, CurveRun};
use crate::fit::chinchilla::bootstrap::percentile;
use crate::fit::chinchilla::rollout::{FactorStats, Rollout, RolloutPoint};
use serde::{Deserialize, Serialize};

/// Each rollout factor is a fit (the same screen, fewer and shorter L-BFGS runs: `EFFORT`)
/// plus this many bootstrap refits (the fewest `predict_curve` draws a band from): its
/// widening uses the predictions' errors, the refits only its reported coverage.
pub const ROLLOUT_BOOTSTRAP: usize = 10;
/// A rollout fit's search: half the law's starts at 400 iterations, about a quarter of its
/// cost (its objective lands within about 1% of a full search's: the law's own starts end
/// within 0.5% of each other).
pub const EFFORT: super::solve::Effort = super::solve::Effort { starts: 2, max_iters: 400, slow_iters: 1000 };
/// At most this many factors: each costs about half the law's own fit with its refits.
pub const MAX_FACTORS: u32 = 3;
/// A factor's fitted set needs this many runs (and two model sizes, and the law's point count).
pub const MIN_RUNS: usize = 4;

/// A grid rounds a run's tokens up to whole steps: a run "half as long" may be a step longer
/// than half, and must still count at k = 2.
const ROUNDING: f64 = 1.05;

/// fit.json `laws.loss_curve.rollout`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CurveRollout {
    /// Each fitted model size with its longest run's training tokens (increasing size): the
    /// distance along a curve is relative to it.
    pub longest: Vec<(f64, f64)>,
    /// Each fitted size's furthest evaluation at peak learning rate (tokens): a point of a
    /// curve still at peak is compared with how far the law saw that size at peak, not with
    /// its decayed runs (a held-out WSD branch runs at peak where the fitted branches had
    /// already decayed).
    #[serde(default)]
    pub longest_at_peak: Vec<(f64, f64)>,
    /// The factors whose fitted runs had one run length per model size: such a fit sees no
    /// length dependence within a size, and its miss one doubling on can understate the
    /// sweep's own fit's (on real text, fitted on 0.5M- and 1M-token runs: 5.0% measured from
    /// the 0.5M runs alone, 7.1% mean error at 2M). The summary says so.
    #[serde(default)]
    pub one_length: Vec<f64>,
    /// Wall time of the rollout's fits (beside the law's own `fit_seconds`).
    #[serde(default)]
    pub seconds: f64,
    /// c_max, the held-out runs' final points (`points`) and the statistics by factor, which
    /// are over every held-out evaluation (curves, not final points).
    #[serde(flatten)]
    pub rollout: Rollout,
}

impl CurveRollout {
    /// A point's distance from the sweep: after `tokens` tokens of a model of `params`.
    pub fn distance(&self, params: f64, tokens: f64, at_peak: bool) -> f64 {
        let seen = if at_peak && !self.longest_at_peak.is_empty() { &self.longest_at_peak } else { &self.longest };
        (6.0 * params * tokens / self.rollout.c_max).max(tokens / longest_at(seen, params))
    }

    /// The 95th-percentile |relative error| the rollout measured at a point's distance (the
    /// envelope of `abs_err95`): what a predicted band widens by there.
    pub fn err95(&self, params: f64, tokens: f64, at_peak: bool) -> f64 {
        self.rollout.envelope(self.distance(params, tokens, at_peak), |s| s.abs_err95)
    }

    /// The misses by factor in one line (for `curve-holdout` and the report's caption).
    pub fn summary(&self) -> String {
        let by: Vec<String> = self
            .rollout
            .by_factor
            .iter()
            .map(|s| {
                format!(
                    "k = {:.0}: {} runs fitted, {} predicted, mean miss {:.2}%, 95th percentile {:.2}% ({:.0}% of points \
                     inside the refit's own band)",
                    s.k,
                    s.n_fit,
                    s.n,
                    100.0 * s.mean_abs_rel_err,
                    100.0 * s.abs_err95,
                    100.0 * s.coverage
                )
            })
            .collect();
        let mut line = by.join("; ");
        if !self.one_length.is_empty() {
            let ks: Vec<String> = self.one_length.iter().map(|k| format!("{k:.0}")).collect();
            line.push_str(&format!(
                " (at k = {}, the fitted runs have one run length per model size: that fit saw no length \
                 dependence within a size, so its miss may understate a fit on several lengths; the band beyond \
                 the sweep is less certain than it says)",
                ks.join(", ")
            ));
        }
        line
    }
}

fn tokens(r: &CurveRun) -> f64 {
    *r.steps.last().expect("checked non-empty") as f64 * r.tokens_per_step
}

fn compute(r: &CurveRun) -> f64 {
    6.0 * r.params * tokens(r)
}

/// The largest value per model size of (params, value) pairs, sizes increasing.
fn max_per_size(mut by: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    by.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out: Vec<(f64, f64)> = Vec::new();
    for (n, t) in by {
        match out.last_mut() {
            Some(last) if last.0 == n => last.1 = last.1.max(t),
            _ => out.push((n, t)),
        }
    }
    out
}

/// Each size's longest run (tokens), sizes increasing.
fn longest_by_size(runs: &[CurveRun]) -> Vec<(f64, f64)> {
    max_per_size(runs.iter().map(|r| (r.params, tokens(r))).collect())
}

/// Each size's furthest evaluation at its run's peak learning rate (tokens), sizes increasing.
fn furthest_at_peak(runs: &[CurveRun]) -> Vec<(f64, f64)> {
    max_per_size(
        runs.iter()
            .filter_map(|r| {
                let peak = r.lr.iter().cloned().fold(0.0, f64::max);
                let s = r.steps.iter().rev().find(|&&s| super::at_peak(r.lr[s as usize - 1], peak))?;
                Some((r.params, *s as f64 * r.tokens_per_step))
            })
            .collect(),
    )
}

/// The longest run at size `n`: log-log interpolation between the sizes around it, the
/// nearest end size's outside them.
fn longest_at(longest: &[(f64, f64)], n: f64) -> f64 {
    let (first, last) = (longest[0], longest[longest.len() - 1]);
    if n <= first.0 {
        return first.1;
    }
    if n >= last.0 {
        return last.1;
    }
    let i = longest.iter().position(|s| s.0 >= n).expect("n is below the largest size");
    let (a, b) = (longest[i - 1], longest[i]);
    let u = (n / a.0).ln() / (b.0 / a.0).ln();
    (a.1.ln() + u * (b.1 / a.1).ln()).exp()
}

fn distinct(v: impl Iterator<Item = f64>) -> usize {
    let mut v: Vec<f64> = v.collect();
    v.sort_by(f64::total_cmp);
    v.dedup();
    v.len()
}

/// The rollout over `runs` (already checked by `fit`); None when no factor leaves a set the
/// law can be fitted to across sizes. `fit_one` fits a subset (with its bootstrap).
pub fn run(runs: &[CurveRun], fit_one: impl Fn(&[CurveRun]) -> Option<CurveFit>) -> Option<CurveRollout> {
    let t0 = std::time::Instant::now();
    let c_max = runs.iter().map(compute).fold(0.0, f64::max);
    let longest = longest_by_size(runs);
    let near = |r: &CurveRun, k: f64| {
        compute(r) * k <= c_max * ROUNDING && tokens(r) * k <= longest_at(&longest, r.params) * ROUNDING
    };
    let below = |k: f64| -> Vec<CurveRun> { runs.iter().filter(|r| near(r, k)).cloned().collect() };
    let fittable = |set: &[CurveRun]| {
        set.len() >= MIN_RUNS
            && distinct(set.iter().map(|r| r.params)) >= 2
            && set.iter().map(|r| r.steps.len()).sum::<usize>() >= 16
    };
    let mut doublings = 0u32;
    while doublings < 20 && fittable(&below(2f64.powi(doublings as i32 + 1))) {
        doublings += 1;
    }
    if doublings == 0 {
        return None;
    }
    let step = 2f64.powi(doublings.div_ceil(MAX_FACTORS).max(1) as i32);
    let mut by_factor = Vec::new();
    let mut one_length = Vec::new();
    let mut finals = Vec::new();
    let mut k = 2.0;
    while k <= 2f64.powi(doublings as i32) {
        let train = below(k);
        // The sets shrink as k grows; one the previous factor already fitted (lengths 4x
        // apart give the same set at k = 2 and 4) adds nothing.
        if by_factor.last().is_some_and(|s: &FactorStats| s.n_fit == train.len()) {
            k *= step;
            continue;
        }
        let Some(f) = fit_one(&train) else { break };
        let c_fit = train.iter().map(compute).fold(0.0, f64::max);
        let l_fit = longest_by_size(&train);
        let (mut errs, mut need, mut inside, mut n_runs) = (Vec::new(), Vec::new(), 0usize, 0usize);
        for r in runs.iter().filter(|r| !near(r, k)) {
            let band = super::predict_curve(&f, r.params, &r.lr, &r.steps, r.tokens_per_step);
            if band.iter().any(|p| !(p.loss.is_finite() && p.lo.is_finite() && p.hi.is_finite())) {
                continue;
            }
            n_runs += 1;
            for (p, &y) in band.iter().zip(&r.loss) {
                errs.push((p.loss - y) / y);
                need.push(((p.lo - y) / p.loss).max((y - p.hi) / p.loss).max(0.0));
                inside += usize::from(p.lo <= y && y <= p.hi);
            }
            let (p, &y) = (band.last().expect("runs have evaluations"), r.loss.last().expect("non-empty"));
            finals.push(RolloutPoint {
                k,
                run: r.run.clone(),
                params: r.params,
                tokens: tokens(r),
                flops: compute(r),
                factor: (compute(r) / c_fit).max(tokens(r) / longest_at(&l_fit, r.params)),
                predicted: p.loss,
                lo: p.lo,
                hi: p.hi,
                actual: y,
                rel_err: (p.loss - y) / y,
                inside: p.lo <= y && y <= p.hi,
            });
        }
        if errs.is_empty() {
            break;
        }
        let mut lengths: Vec<(f64, f64)> = train.iter().map(|r| (r.params, tokens(r))).collect();
        lengths.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
        lengths.dedup();
        if lengths.len() == distinct(train.iter().map(|r| r.params)) {
            one_length.push(k);
        }
        need.sort_by(f64::total_cmp);
        let n = errs.len() as f64;
        by_factor.push(FactorStats {
            k,
            n: n_runs,
            n_fit: train.len(),
            mean_abs_rel_err: errs.iter().map(|e| e.abs()).sum::<f64>() / n,
            max_abs_rel_err: errs.iter().map(|e| e.abs()).fold(0.0, f64::max),
            coverage: inside as f64 / n,
            widen95: percentile(&need, 0.95),
            abs_err95: {
                let mut a: Vec<f64> = errs.iter().map(|e| e.abs()).collect();
                a.sort_by(f64::total_cmp);
                percentile(&a, 0.95)
            },
        });
        k *= step;
    }
    if by_factor.is_empty() {
        return None;
    }
    let rollout = Rollout {
        protocol: format!(
            "for k = {}: fit the curve law on the runs with at most 1/k of both C_max (C = 6ND, C_max = {c_max:.3e}) \
             and the tokens of their model size's longest run, with {ROLLOUT_BOOTSTRAP} bootstrap refits; predict \
             every evaluation of the other runs with its 95% band; error, coverage and widening over those \
             evaluations (the points listed are the held-out runs' final evaluations)",
            by_factor.iter().map(|s| format!("{:.0}", s.k)).collect::<Vec<_>>().join(", ")
        ),
        c_max,
        points_left_out: 0,
        points: finals,
        by_factor,
        at_target: None,
    };
    Some(CurveRollout {
        longest,
        longest_at_peak: furthest_at_peak(runs),
        one_length,
        seconds: t0.elapsed().as_secs_f64(),
        rollout,
    })
}
