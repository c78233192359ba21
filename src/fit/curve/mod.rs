//! The loss-curve law: fits whole validation curves under each run's learning-rate schedule,
//! so stable-phase points, decay points and WSD branches all count (a sweep's final points are
//! a few percent of its evaluations), and predicts a run's whole curve under its own schedule,
//! across model sizes. The law is the multi-power law of Luo et al. 2025
//! with size-dependent amplitudes (`mpl.rs`); `prep.rs` turns schedules into the sums it
//! needs; `solve.rs` searches; `protocol.rs` reproduces the paper's published-curve protocol;
//! `shape.rs` warns when the curves turn in a way the form cannot follow.
//! Like the rest of `fit`, nothing here depends on the rest of the crate: a run arrives as its
//! learning rate at every update and its evaluations.

pub mod mpl;
pub mod noise;
pub mod prep;
pub mod protocol;
pub mod rollout;
pub mod shape;
pub mod solve;

#[cfg(test)]
mod tests;

pub use mpl::{CurveLaw, Layout};

use crate::rng::Rng;
use anyhow::{bail, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// One training run's validation curve and schedule.
#[derive(Clone, Debug)]
pub struct CurveRun {
    pub run: String,
    /// Model size N (the same count the Chinchilla law uses).
    pub params: f64,
    /// Training tokens per optimizer step (to report tokens beside steps).
    pub tokens_per_step: f64,
    /// Learning rate of update k, for every update from 0 (warmup included) to at least the
    /// last evaluation.
    pub lr: Vec<f64>,
    /// Evaluations were taken after this many updates (increasing, >= 1).
    pub steps: Vec<u64>,
    /// Validation loss (nats/token) at each of `steps`.
    pub loss: Vec<f64>,
}

/// Mean and largest relative error |pred / actual - 1| over a set of points.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Errors {
    pub mean_rel: f64,
    pub max_rel: f64,
    pub points: usize,
}

impl Errors {
    pub fn of(pred: &[f64], actual: &[f64]) -> Errors {
        let e: Vec<f64> = pred.iter().zip(actual).map(|(p, a)| (p / a - 1.0).abs()).collect();
        let n = e.len();
        Errors {
            mean_rel: if n == 0 { f64::NAN } else { e.iter().sum::<f64>() / n as f64 },
            max_rel: e.iter().cloned().fold(0.0, f64::max),
            points: n,
        }
    }

    /// Pools several sets (mean weighted by points).
    pub fn pool(all: &[Errors]) -> Errors {
        let points: usize = all.iter().map(|e| e.points).sum();
        Errors {
            mean_rel: all.iter().map(|e| e.mean_rel * e.points as f64).sum::<f64>() / points.max(1) as f64,
            max_rel: all.iter().map(|e| e.max_rel).fold(0.0, f64::max),
            points,
        }
    }
}

/// A run's in-sample fit quality.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunError {
    pub run: String,
    pub params: f64,
    pub steps: u64,
    #[serde(flatten)]
    pub errors: Errors,
}

/// The fitted curve law (fit.json's `laws.loss_curve`, with the target's curve beside it).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CurveFit {
    pub law: CurveLaw,
    /// Mean Huber loss (delta 1e-3) of log residuals at the optimum, each run weighted once
    /// (`run_weights`).
    pub objective: f64,
    pub n_runs: usize,
    pub n_points: usize,
    pub n_sizes: usize,
    /// Shape-grid points screened and L-BFGS starts refined from the best of them.
    pub screened: usize,
    pub starts: usize,
    /// Every point the law was fitted to.
    pub in_sample: Errors,
    pub per_run: Vec<RunError>,
    /// Refits on runs resampled with replacement (the 95% band of a predicted curve).
    pub bootstrap: Vec<CurveLaw>,
    pub fit_seconds: f64,
    /// Doubts about the fit: parameters at a degenerate limit the data do not determine.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// RMS of the in-sample log residuals, each run weighted once (`run_residual_rms`): how far
    /// a run's curve sits from the law beyond what the refits' spread knows of. Part of every
    /// predicted band (0 in a fit.json written before the band included it).
    #[serde(default)]
    pub residual_rms: f64,
    /// The rollout backtest over curves (`rollout.rs`): how far predictions at a distance from
    /// the sweep missed, and the widening every predicted band gets at its distance. None
    /// when not run (a refit, a fit.json written before it, too few runs to hold any out).
    #[serde(default)]
    pub rollout: Option<rollout::CurveRollout>,
    /// The fitted curves' own scatter (`noise.rs`): RMS of one evaluation about its neighbours
    /// at peak learning rate, what no law of the schedule predicts (0 when no run has three
    /// such evaluations, or in a fit.json written before it).
    #[serde(default)]
    pub eval_scatter_rms: f64,
}

/// RMS of ln(observed / law) over every point, each run weighted once (as in the fit). A run's
/// curve sits off any smooth law by a level of its own (its model's architecture, its seed and
/// data order: on the development sweep -1.4% to +0.3% by size, the depth-1 model below the law
/// at every length) plus wiggles shared by its evaluations; the bootstrap over runs measures the
/// law's uncertainty, not this, so without it a predicted curve's band held only 58% to 79% of
/// the points of held-out run lengths (`curve-holdout`).
pub fn run_residual_rms(law: &CurveLaw, prepared: &[prep::Prepared], runs: &[CurveRun]) -> f64 {
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for (p, r) in prepared.iter().zip(runs) {
        let pred = law.predict(p);
        let n = pred.len().max(1) as f64;
        let ms: f64 = pred.iter().zip(&r.loss).map(|(q, y)| (y / q).ln().powi(2)).sum::<f64>() / n;
        if ms.is_finite() {
            num += ms;
            den += 1.0;
        }
    }
    (num / den.max(1.0)).sqrt()
}

/// Parameters that ran to a limit of the law's form: the fit is then one of a family of
/// near-equal optima, and the parameter values (not the fitted curves) mean little.
pub fn degenerate(law: &CurveLaw, min_loss: f64) -> Vec<String> {
    let mut w = Vec::new();
    if law.e < 1e-3 * min_loss {
        w.push(format!("E = {:.2e} ran to 0: the irreducible loss is not determined by these curves", law.e));
    }
    if law.beta > 50.0 || law.c < 1e-6 || law.gamma < 1e-3 {
        w.push(format!(
            "the annealing term ran to a limit of its form (C = {:.2e}, beta = {:.2e}, gamma = {:.2e}): its shape is \
             not determined by these curves, so its predictions under other schedules are uncertain",
            law.c, law.beta, law.gamma
        ));
    }
    if law.alpha > 3.0 || law.alpha < 0.02 {
        w.push(format!("alpha = {:.3} is at the edge of plausible values", law.alpha));
    }
    w
}

/// Whether a learning rate is the schedule's peak (up to rounding): the stable phase of WSD.
fn at_peak(lr: f64, peak: f64) -> bool {
    lr >= peak * (1.0 - 1e-9)
}

/// The relative fall of a curve over its decay: 1 - final / (the last value at peak learning
/// rate), from (learning rate, loss) pairs; None without a decay after a point at peak.
fn decay_gain(points: impl Iterator<Item = (f64, f64)>) -> Option<f64> {
    let p: Vec<(f64, f64)> = points.collect();
    let peak = p.iter().map(|q| q.0).fold(0.0, f64::max);
    let stable_end = p.iter().rposition(|q| at_peak(q.0, peak))?;
    let last = p.last()?;
    (stable_end + 1 < p.len() && last.0 < 0.5 * peak).then(|| 1.0 - last.1 / p[stable_end].1)
}

/// The relative fall of a run's loss over its learning-rate decay (1 - final / the last
/// evaluation at peak learning rate), of its actual losses or of a law's prediction of them
/// (`loss`: one per evaluation); None when the run has no evaluation at peak before a decay.
pub fn run_decay_gain(run: &CurveRun, loss: &[f64]) -> Option<f64> {
    decay_gain(run.steps.iter().zip(loss).map(|(&s, &l)| (run.lr[s as usize - 1], l)))
}

/// A plain statement when the law's predicted decay for a curve (the target's) lowers the loss
/// several times more than any fitted run's decay did: the annealing term then runs far past
/// its data (on real text, fitted on decays that took at most 18% off, it predicted the 1,688x
/// target's decay to take 80% off the loss).
pub fn decay_extrapolation_warning(runs: &[CurveRun], curve: &[CurvePoint]) -> Option<String> {
    let seen = runs
        .iter()
        .filter_map(|r| run_decay_gain(r, &r.loss))
        .fold(None, |m: Option<f64>, g| Some(m.map_or(g, |m| m.max(g))))?;
    let predicted = decay_gain(curve.iter().map(|p| (p.lr, p.loss)))?;
    (seen > 0.0 && predicted > 2.0 * seen).then(|| {
        format!(
            "the law predicts the target's learning-rate decay to lower its loss by {:.0}%, while no fitted run's \
             decay lowered it by more than {:.0}%: the annealing term is extrapolated far past its data, and the \
             target curve's end is not a result",
            100.0 * predicted,
            100.0 * seen
        )
    })
}

/// One point of a predicted curve with its 95% band.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    pub step: u64,
    pub tokens: f64,
    pub lr: f64,
    pub loss: f64,
    pub lo: f64,
    pub hi: f64,
}

/// Bad curves are errors that name the run and the point.
pub fn check_runs(runs: &[CurveRun]) -> Result<()> {
    if runs.is_empty() {
        bail!("loss_curve: no runs to fit");
    }
    for r in runs {
        if !(r.params.is_finite() && r.params > 0.0) {
            bail!("loss_curve: run {}: params must be > 0, got {}", r.run, r.params);
        }
        if r.steps.len() != r.loss.len() || r.steps.is_empty() {
            bail!("loss_curve: run {}: {} steps but {} losses", r.run, r.steps.len(), r.loss.len());
        }
        for (i, (&s, &l)) in r.steps.iter().zip(&r.loss).enumerate() {
            if s == 0 || s as usize > r.lr.len() {
                bail!(
                    "loss_curve: run {}: evaluation {i} at step {s}, outside its schedule of {} steps",
                    r.run,
                    r.lr.len()
                );
            }
            if i > 0 && s <= r.steps[i - 1] {
                bail!("loss_curve: run {}: evaluation steps not increasing at evaluation {i} (step {s})", r.run);
            }
            if !(l.is_finite() && l > 0.0) {
                bail!("loss_curve: run {}: loss {l} at step {s} is not a positive number", r.run);
            }
        }
        if let Some(k) = r.lr.iter().position(|v| !(v.is_finite() && *v >= 0.0)) {
            bail!("loss_curve: run {}: learning rate {} at update {k} is not a number >= 0", r.run, r.lr[k]);
        }
    }
    let points: usize = runs.iter().map(|r| r.steps.len()).sum();
    if points < 16 {
        bail!("loss_curve: {points} evaluations in all; the law has up to 15 parameters");
    }
    Ok(())
}

/// Each run's weight in the fit: 1 / (its evaluations), so that every run counts once
/// whatever its length. A run's points are not independent draws: beside each evaluation's
/// own noise (about 0.25% on the development sweep), a run's whole curve sits a little off
/// any smooth law (its seed, its data order: 0.5% to 1%), so twenty more evaluations of one
/// long run add little information and should not outweigh the short runs' few; weighting
/// points equally let the longest runs set the law.
pub fn run_weights(runs: &[CurveRun]) -> Vec<f64> {
    let mean = runs.iter().map(|r| r.steps.len() as f64).sum::<f64>() / runs.len() as f64;
    runs.iter().map(|r| mean / r.steps.len().max(1) as f64).collect()
}

fn n_ref(runs: &[CurveRun]) -> f64 {
    (runs.iter().map(|r| r.params.ln()).sum::<f64>() / runs.len() as f64).exp()
}

fn distinct_sizes(runs: &[CurveRun]) -> usize {
    let mut n: Vec<f64> = runs.iter().map(|r| r.params).collect();
    n.sort_by(f64::total_cmp);
    n.dedup();
    n.len()
}

/// Fits the law to every evaluation of `runs` (one size: the paper's seven parameters; several:
/// the size-dependent form), then refits it on `bootstrap` resamples of the runs.
pub fn fit(runs: &[CurveRun], bootstrap: usize, seed: u64) -> Result<CurveFit> {
    fit_with(runs, bootstrap, seed, solve::FULL)
}

/// `fit` with a given search effort (the rollout's refits search less: `rollout::EFFORT`).
pub fn fit_with(runs: &[CurveRun], bootstrap: usize, seed: u64, effort: solve::Effort) -> Result<CurveFit> {
    let t0 = std::time::Instant::now();
    check_runs(runs)?;
    let n_sizes = distinct_sizes(runs);
    let layout = if n_sizes == 1 { Layout::PerSize } else { Layout::AcrossSizes };
    let nr = n_ref(runs);
    let prepared: Vec<prep::Prepared> =
        runs.par_iter().map(|r| prep::prepare(&r.lr, &r.steps, (r.params / nr).ln())).collect();
    let loss: Vec<Vec<f64>> = runs.iter().map(|r| r.loss.clone()).collect();
    let data = mpl::Data { runs: &prepared, loss: &loss, layout };
    let weights = run_weights(runs);
    let Some((theta, objective, screened, starts)) = solve::fit(&data, &weights, effort) else {
        bail!("loss_curve: no start reached a finite optimum");
    };
    let law = CurveLaw::from_theta(layout, nr, &theta);
    let per_run: Vec<RunError> = runs
        .iter()
        .zip(&prepared)
        .map(|(r, p)| RunError {
            run: r.run.clone(),
            params: r.params,
            steps: *r.steps.last().expect("checked non-empty"),
            errors: Errors::of(&law.predict(p), &r.loss),
        })
        .collect();
    let in_sample = Errors::pool(&per_run.iter().map(|e| e.errors).collect::<Vec<_>>());
    let boot: Vec<CurveLaw> = (0..bootstrap)
        .into_par_iter()
        .filter_map(|b| {
            let mut rng = Rng::for_index(seed, b as u64);
            let mut w = vec![0.0; runs.len()];
            for _ in 0..runs.len() {
                let j = rng.below_mulshift(runs.len());
                w[j] += weights[j];
            }
            // From the optimum, a resample's optimum is near: 100 iterations (with 150, the
            // held-out coverage of the development sweeps was the same to within 2 points per
            // split; 100 keep a 100-run sweep's fit, refits and rollout under 10 s on 2 cores).
            let (t, f, _) = solve::minimize(&data, &w, &theta, 100);
            let l = CurveLaw::from_theta(layout, nr, &t);
            (f.is_finite() && l.is_finite()).then_some(l)
        })
        .collect();
    Ok(CurveFit {
        law,
        objective,
        n_runs: runs.len(),
        n_points: runs.iter().map(|r| r.steps.len()).sum(),
        n_sizes,
        screened,
        starts,
        in_sample,
        per_run,
        bootstrap: boot,
        fit_seconds: t0.elapsed().as_secs_f64(),
        residual_rms: run_residual_rms(&law, &prepared, runs),
        eval_scatter_rms: noise::scatter(&runs.iter().collect::<Vec<_>>()).map_or(0.0, |s| s.rms),
        warnings: {
            let mut w =
                degenerate(&law, runs.iter().flat_map(|r| r.loss.iter().copied()).fold(f64::INFINITY, f64::min));
            w.extend(shape::warning(runs));
            w
        },
        rollout: None,
    })
}

/// `fit`, then the rollout backtest over curves (each of its factors is a lighter fit of a
/// subset, `rollout::EFFORT` with `rollout::ROLLOUT_BOOTSTRAP` refits), whose measured misses
/// widen every band this fit predicts at a distance from the sweep. What `run`, `collect` and
/// `curve-holdout` use.
pub fn fit_with_rollout(runs: &[CurveRun], bootstrap: usize, seed: u64) -> Result<CurveFit> {
    let mut f = fit(runs, bootstrap, seed)?;
    f.rollout = rollout::run(runs, |sub| {
        fit_with(sub, rollout::ROLLOUT_BOOTSTRAP, seed ^ sub.len() as u64, rollout::EFFORT).ok()
    });
    Ok(f)
}

/// The law's loss for a model of `params` trained with learning rate `lr[k]` at update k,
/// after each of `steps` updates.
pub fn predict(law: &CurveLaw, params: f64, lr: &[f64], steps: &[u64]) -> Vec<f64> {
    law.predict(&prep::prepare(lr, steps, (params / law.n_ref).ln()))
}

/// `points` evaluation steps spread evenly over a run of `total` updates, ending at `total`.
pub fn even_steps(total: u64, points: usize) -> Vec<u64> {
    let mut s: Vec<u64> =
        (1..=points as u64).map(|i| (total as f64 * i as f64 / points as f64).round().max(1.0) as u64).collect();
    s.dedup();
    s
}

/// A predicted curve with its 95% band: the percentiles of the bootstrap refits' curves (those
/// that stay positive; the law's uncertainty) combined in quadrature, in log space, with 1.96
/// times the fit's `residual_rms` (how far a run sits from the law: a run's own level and
/// wiggles), as the final-point laws' prediction intervals combine refits and run noise.
/// Without refits the band is the residual part alone (narrower: it ignores the law's
/// uncertainty). With a rollout (`fit_with_rollout`) each side then widens (in log space, as
/// the final-point intervals widen by the rollout's margin) by the 95th-percentile miss the
/// rollout measured at the point's distance from the sweep (`rollout.rs`): the law's form
/// failing, which neither refits nor residuals see. The miss itself, not its excess over the
/// rollout fits' own bands: those fits have fewer runs and so wider bands than the full fit,
/// and held misses the full fit's narrower band would not (on real text, the excess left 31%
/// of a held-out length's points inside; the miss, 69%).
pub fn predict_curve(fit: &CurveFit, params: f64, lr: &[f64], steps: &[u64], tokens_per_step: f64) -> Vec<CurvePoint> {
    let p = prep::prepare(lr, steps, (params / fit.law.n_ref).ln());
    let mid = fit.law.predict(&p);
    // A refit whose curve goes non-positive somewhere is a degenerate optimum (an annealing
    // amplitude B that exploded where the data leave it unconstrained), not a plausible curve.
    let boot: Vec<Vec<f64>> =
        fit.bootstrap.iter().map(|l| l.predict(&p)).filter(|c| c.iter().all(|v| v.is_finite() && *v > 0.0)).collect();
    let rms = if fit.residual_rms > 0.0 {
        fit.residual_rms
    } else {
        // A fit.json from before `residual_rms`: the mean relative errors are its best proxy.
        (fit.per_run.iter().map(|e| e.errors.mean_rel.powi(2)).sum::<f64>() / fit.per_run.len().max(1) as f64).sqrt()
    };
    let noise = 1.96 * rms;
    let last = steps.last().map_or(0, |&s| s as usize);
    let peak = lr[..last].iter().cloned().fold(0.0, f64::max);
    steps
        .iter()
        .enumerate()
        .map(|(i, &s)| {
            let (down, up) = if boot.len() >= 10 {
                let mut v: Vec<f64> = boot.iter().map(|b| b[i]).filter(|x| x.is_finite()).collect();
                v.sort_by(f64::total_cmp);
                let lo = crate::fit::chinchilla::bootstrap::percentile(&v, 0.025);
                let hi = crate::fit::chinchilla::bootstrap::percentile(&v, 0.975);
                // Log half-widths of the refits' band on each side (0 where it excludes the mid).
                ((mid[i] / lo).ln().max(0.0), (hi / mid[i]).ln().max(0.0))
            } else {
                (0.0, 0.0)
            };
            let tokens = s as f64 * tokens_per_step;
            // How far predictions at this point's distance from the sweep missed in the rollout
            // (0 inside the sweep).
            let stable = at_peak(lr[s as usize - 1], peak);
            let form = fit.rollout.as_ref().map_or(0.0, |r| r.err95(params, tokens, stable)).ln_1p();
            let lo = mid[i] * (-(down.hypot(noise) + form)).exp();
            let hi = mid[i] * (up.hypot(noise) + form).exp();
            CurvePoint { step: s, tokens, lr: lr[s as usize - 1], loss: mid[i], lo, hi }
        })
        .collect()
}

/// A fitted run's curve beside the law's (for the report's figure).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FittedRun {
    pub run: String,
    pub params: f64,
    pub tokens: Vec<f64>,
    pub observed: Vec<f64>,
    pub predicted: Vec<f64>,
}

/// The predicted curve of the target run under its own schedule.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TargetCurve {
    pub params: f64,
    pub steps: u64,
    pub tokens_per_step: f64,
    pub peak_lr: f64,
    /// The schedule, as the caller describes it (the sweep's, scaled to `steps`).
    pub schedule: serde_json::Value,
    pub curve: Vec<CurvePoint>,
    /// `decay_extrapolation_warning` fired: the curve's decay runs far past the sweep's, and
    /// its end is marked as not a result.
    #[serde(default)]
    pub decay_extrapolated: bool,
}

/// fit.json's `laws.loss_curve`: the fit, every fitted run's curve and the target's.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CurveLawReport {
    #[serde(flatten)]
    pub fit: CurveFit,
    pub runs: Vec<FittedRun>,
    pub target: Option<TargetCurve>,
}

impl CurveLawReport {
    /// The fit and each run's fitted curve.
    pub fn new(fit: CurveFit, runs: &[CurveRun]) -> CurveLawReport {
        let fitted = runs
            .iter()
            .map(|r| FittedRun {
                run: r.run.clone(),
                params: r.params,
                tokens: r.steps.iter().map(|&s| s as f64 * r.tokens_per_step).collect(),
                observed: r.loss.clone(),
                predicted: predict(&fit.law, r.params, &r.lr, &r.steps),
            })
            .collect();
        CurveLawReport { fit, runs: fitted, target: None }
    }
}

/// The law the synthetic sweeps are drawn from (plausible magnitudes for small models),
/// with model sizes measured against `n_ref`.
pub fn known_law(n_ref: f64) -> CurveLaw {
    CurveLaw {
        layout: Layout::AcrossSizes,
        n_ref,
        e: 1.8,
        p: 0.5,
        p_exp: 0.4,
        a: 1.0,
        a_exp: 0.3,
        alpha: 0.5,
        b: 40.0,
        b_exp: 0.2,
        c: 2.0,
        beta: 0.6,
        gamma: 0.6,
        d: 0.5,
        d_exp: 0.3,
        tau: 0.4,
        tau_exp: 0.1,
        d2: 0.0,
        d2_exp: 0.0,
        tau2: 1.0,
        tau2_exp: 0.0,
    }
}

/// A synthetic sweep for the timing benchmark: `sizes` model sizes x five schedules (constant,
/// cosine, WSD, two-stage step, exponential decay) of 1,000 to 3,000 steps, 50 evaluations
/// each, from a known law with 0.3% noise.
pub fn synthetic_sweep(sizes: usize, seed: u64) -> Vec<CurveRun> {
    let law = known_law(1e6);
    let mut rng = Rng::from_state(seed);
    let mut out = Vec::new();
    for i in 0..sizes {
        let n = 1e5 * 100f64.powf(i as f64 / sizes.max(2) as f64);
        for (k, kind) in ["constant", "cosine", "wsd", "step", "exp"].iter().enumerate() {
            let steps = 1000 + 500 * k;
            let warm = steps / 20;
            let lr: Vec<f64> = (0..steps)
                .map(|s| {
                    let p = s as f64 / steps as f64;
                    1e-2 * if s < warm {
                        (s + 1) as f64 / warm as f64
                    } else {
                        match *kind {
                            "constant" => 1.0,
                            "cosine" => 0.1 + 0.45 * (1.0 + (std::f64::consts::PI * p).cos()),
                            "wsd" => (1.0 - (p - 0.8).max(0.0) / 0.2 * 0.99).min(1.0),
                            "step" => {
                                if p < 0.5 {
                                    1.0
                                } else {
                                    0.3
                                }
                            }
                            _ => 0.01f64.powf((p - 0.7).max(0.0) / 0.3),
                        }
                    }
                })
                .collect();
            let evals = even_steps(steps as u64, 50);
            let loss = predict(&law, n, &lr, &evals).iter().map(|l| l * (1.0 + 3e-3 * rng.normal())).collect();
            out.push(CurveRun {
                run: format!("{kind}-{i}"),
                params: n,
                tokens_per_step: 1024.0,
                lr,
                steps: evals,
                loss,
            });
        }
    }
    out
}
