//! The rollout backtest (as OLMo's model ladder and the Hitchhiker's guide to scaling laws
//! do): for each factor k = 2, 4, 8, ... that the sweep allows, fit the law on the runs whose
//! compute C = 6ND is below C_max / k and predict the final loss of every larger run, with a
//! 95% prediction interval. The errors and the intervals' coverage, by factor, say how far
//! this sweep's law can be trusted to extrapolate; they are what `FitReport::loss_interval_at`
//! widens its intervals by, so that a prediction 30x past the sweep is not given the
//! confidence of one inside it. Final points only: the law is a law of final points.
//!
//! The 95% prediction interval of a run's final loss (`prediction_interval`) combines the two
//! sources of error a correct law still has: the fit's own uncertainty (its bootstrap refits'
//! predictions) and the run's noise (a residual of the fit, drawn from its quantiles, inflated
//! by sqrt(n / (n - 5)) because in-sample residuals of a five-parameter fit are too small).
//! What remains, the law's *form* missing the data, is what the rollout measures.

use crate::fit::chinchilla::bootstrap::{bootstrap, percentile, Interval};
use crate::fit::chinchilla::law::Law;
use crate::fit::chinchilla::objective::{LogData, Theta};
use crate::fit::chinchilla::parametric::ChinchillaFit;
use crate::fit::chinchilla::validate::{check_chinchilla_points, count_distinct, MIN_POINTS};
use crate::fit::Obs;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

/// Bootstrap refits behind each rollout fit's intervals (each factor is one fit).
pub const ROLLOUT_RESAMPLES: usize = 100;
/// Factors stop here even if the sweep spans more (2^20 ~ 1e6x).
pub const MAX_FACTOR: f64 = 1_048_576.0;
/// At most this many factors are fitted (each is a full fit plus its bootstrap): a sweep
/// spanning more doublings gets k = 2, 2s, 2s^2, ... with s a power of 2.
pub const MAX_FACTORS: u32 = 6;
/// Point rows kept in fit.json (the statistics use every point): a million-run CSV would
/// otherwise write millions of rows.
pub const MAX_POINTS_KEPT: usize = 2000;

/// One prediction of the rollout: run `run`, held out at factor `k`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RolloutPoint {
    pub k: f64,
    pub run: String,
    pub params: f64,
    pub tokens: f64,
    /// C = 6ND of the run.
    pub flops: f64,
    /// Its compute over the largest compute the law was fitted on: the extrapolation distance.
    pub factor: f64,
    pub predicted: f64,
    /// The 95% prediction interval (before any widening).
    pub lo: f64,
    pub hi: f64,
    pub actual: f64,
    /// (predicted - actual) / actual.
    pub rel_err: f64,
    pub inside: bool,
}

/// The rollout's statistics at one factor k.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FactorStats {
    pub k: f64,
    /// Runs predicted (C >= C_max / k) and runs fitted (C < C_max / k).
    pub n: usize,
    pub n_fit: usize,
    pub mean_abs_rel_err: f64,
    pub max_abs_rel_err: f64,
    /// Fraction of the predictions whose actual lies inside the 95% prediction interval.
    pub coverage: f64,
    /// The relative widening (of the predicted loss, added on both sides) that would have
    /// put 95% of these actuals inside their intervals: 0 when the intervals were honest.
    pub widen95: f64,
    /// The 95th percentile of |relative error|: the half-width a band would need with no
    /// width of its own (what the curve law's bands widen by, `curve::rollout`).
    #[serde(default)]
    pub abs_err95: f64,
}

/// What the rollout implies at the target's distance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AtTarget {
    /// Target compute over the largest run's C = 6ND.
    pub factor: f64,
    /// Expected |relative error| of the predicted loss at that factor (see `Rollout::envelope`).
    pub expected_rel_err: f64,
    /// The relative widening applied to the target's loss interval.
    pub widen: f64,
    pub note: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    pub protocol: String,
    /// The largest run's C = 6ND: factors are relative to it.
    pub c_max: f64,
    pub points: Vec<RolloutPoint>,
    /// Predictions not listed in `points` (over `MAX_POINTS_KEPT`), still counted in `by_factor`.
    #[serde(default)]
    pub points_left_out: usize,
    pub by_factor: Vec<FactorStats>,
    pub at_target: Option<AtTarget>,
}

impl Rollout {
    /// A statistic of `by_factor` carried to any factor, conservatively: at factor f <= 1
    /// (inside the sweep) 0; up to the largest measured k, the largest value measured at any
    /// k <= f (at least the first k's), so it never shrinks with distance; past the largest
    /// measured k, that value grown in proportion to ln f / ln k_max (errors of a power law's
    /// extrapolation grow about linearly in log distance; nothing measured says they slow).
    pub fn envelope(&self, f: f64, get: impl Fn(&FactorStats) -> f64) -> f64 {
        let Some(last) = self.by_factor.last() else { return 0.0 };
        if !(f > 1.0) {
            return 0.0;
        }
        let upto =
            |x: f64| self.by_factor.iter().filter(|s| s.k <= x).map(&get).fold(get(&self.by_factor[0]), f64::max);
        if f <= last.k {
            upto(f)
        } else {
            upto(last.k) * (f.ln() / last.k.ln())
        }
    }

    /// The relative widening for a prediction at factor f = C / c_max.
    pub fn widen_at(&self, f: f64) -> f64 {
        self.envelope(f, |s| s.widen95)
    }

    /// The expected |relative error| of a prediction at factor f.
    pub fn expected_err_at(&self, f: f64) -> f64 {
        self.envelope(f, |s| s.mean_abs_rel_err)
    }

    /// `at_target` for a target at `flops`.
    pub fn at(&self, flops: f64) -> AtTarget {
        let f = flops / self.c_max;
        let k_max = self.by_factor.last().map_or(1.0, |s| s.k);
        let (e, w) = (self.expected_err_at(f), self.widen_at(f));
        let note = if f <= 1.0 {
            "the target is inside the sweep's compute range: no extrapolation".to_string()
        } else if f <= k_max {
            format!(
                "the rollout measured extrapolation up to {k_max:.0}x; at {f:.0}x it saw a mean error of {:.2}% and \
                 intervals needing {:.2}% more width to cover 95%",
                100.0 * e,
                100.0 * w
            )
        } else {
            format!(
                "the target is {f:.0}x the largest run, the rollout measured only up to {k_max:.0}x: the expected \
                 error {:.2}% and the widening {:.2}% are the measured ones grown by ln({f:.0})/ln({k_max:.0}) \
                 = {:.1}x, an assumption, not a measurement",
                100.0 * e,
                100.0 * w,
                f.ln() / k_max.ln()
            )
        };
        AtTarget { factor: f, expected_rel_err: e, widen: w, note }
    }
}

/// Log residuals ln(actual / predicted) of a fit at the percentiles 0, 1, ..., 100, inflated
/// by sqrt(n / (n - 5)) (at least n - 5 = 1) for the five fitted parameters.
pub fn residual_quantiles(data: &LogData, law: &Law) -> Vec<f64> {
    let n = data.len();
    let mut r: Vec<f64> = (0..n)
        .map(|i| data.log_l[i] - law.predict(data.log_n[i].exp(), data.log_d[i].exp()).ln())
        .filter(|x| x.is_finite())
        .collect();
    if r.is_empty() {
        return Vec::new();
    }
    r.sort_by(f64::total_cmp);
    let inflate = (n as f64 / (n.saturating_sub(5).max(1)) as f64).sqrt();
    (0..=100).map(|q| inflate * percentile(&r, q as f64 / 100.0)).collect()
}

/// The fit's residual noise split in two: a run's own noise and an offset shared by every run
/// of one model size (what makes a few sizes pin the N exponent loosely; the simulator of
/// `plan --precision` draws both).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct NoiseSplit {
    /// Standard deviation of ln(loss) of runs of one size around their size's mean residual.
    pub run: f64,
    /// Standard deviation of the per-size mean residual beyond what `run` explains.
    pub size: f64,
    pub sizes: usize,
}

/// Method of moments on the log residuals grouped by model size: the pooled within-size
/// variance (its n - k degrees of freedom), and the variance of the k size means less their
/// share of it, over k - 2 degrees of freedom (the law's A and alpha follow the size means, so
/// in-sample means are too close to the law). `None` with fewer than 3 sizes or no size with
/// two runs.
pub fn noise_split(data: &LogData, law: &Law) -> Option<NoiseSplit> {
    let mut groups: std::collections::BTreeMap<u64, Vec<f64>> = Default::default();
    for i in 0..data.len() {
        let r = data.log_l[i] - law.predict(data.log_n[i].exp(), data.log_d[i].exp()).ln();
        if r.is_finite() {
            groups.entry(data.log_n[i].to_bits()).or_default().push(r);
        }
    }
    let k = groups.len();
    let n: usize = groups.values().map(|g| g.len()).sum();
    if k < 3 || n <= k {
        return None;
    }
    let means: Vec<(f64, usize)> = groups.values().map(|g| (g.iter().sum::<f64>() / g.len() as f64, g.len())).collect();
    let ssw: f64 = groups.values().zip(&means).map(|(g, (m, _))| g.iter().map(|r| (r - m).powi(2)).sum::<f64>()).sum();
    let sw2 = ssw / (n - k) as f64;
    let between = means.iter().map(|(m, _)| m * m).sum::<f64>() / (k - 2).max(1) as f64;
    let share = means.iter().map(|(_, c)| sw2 / *c as f64).sum::<f64>() / k as f64;
    Some(NoiseSplit { run: sw2.sqrt(), size: (between - share).max(0.0).sqrt(), sizes: k })
}

/// The 95% prediction interval of the final loss at (n, d): percentiles of each bootstrap
/// law's prediction times e^r, r a residual quantile (law b paired with quantile (37 b + 11)
/// mod m, a fixed spread-out pairing, so the result is a pure function of its inputs).
pub fn prediction_interval(laws: &[Law], resid_q: &[f64], n: f64, d: f64) -> Option<Interval> {
    let m = resid_q.len();
    let mut v: Vec<f64> = laws
        .iter()
        .enumerate()
        // A runaway refit (`Law::is_runaway`) in a fit.json written before refits were checked
        // for it is skipped here too; the pairing with residuals stays that of its index.
        .filter(|(_, l)| !l.is_runaway())
        .map(|(b, l)| l.predict(n, d) * if m == 0 { 1.0 } else { resid_q[(37 * b + 11) % m].exp() })
        .filter(|x| x.is_finite())
        .collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(Interval { lo: percentile(&v, 0.025), hi: percentile(&v, 0.975) })
}

fn c6(o: &Obs) -> f64 {
    crate::flops::chinchilla_flops(o.params, o.tokens)
}

/// The rollout on `points` (one final point per run), refitting with `fit`; `resamples`
/// bootstrap refits per factor. An error means not even k = 2 leaves a fittable set.
pub fn run(
    points: &[Obs],
    resamples: usize,
    seed: u64,
    target_flops: Option<f64>,
    fit: impl Fn(&[Obs]) -> Result<ChinchillaFit>,
) -> Result<Rollout> {
    let c_max = points.iter().map(c6).fold(0.0, f64::max);
    let mut all = Vec::new();
    let mut by_factor = Vec::new();
    // How many doublings leave a fittable set, then the step that fits them in MAX_FACTORS.
    // (`check_chinchilla_points`' rule, counted without copying a million points per k.)
    let fittable = |k: f64| {
        let below = || points.iter().filter(move |o| c6(o) < c_max / k);
        below().count() >= MIN_POINTS
            && count_distinct(below().map(|o| o.params)) >= 2
            && count_distinct(below().map(|o| o.tokens)) >= 2
    };
    let mut doublings = 0u32;
    while 2f64.powi(doublings as i32 + 1) <= MAX_FACTOR && fittable(2f64.powi(doublings as i32 + 1)) {
        doublings += 1;
    }
    let step = 2f64.powi(doublings.div_ceil(MAX_FACTORS).max(1) as i32);
    let mut k = 2.0;
    while k <= MAX_FACTOR {
        let cut = c_max / k;
        let train: Vec<Obs> = points.iter().filter(|o| c6(o) < cut).cloned().collect();
        if check_chinchilla_points(&train).is_err() {
            break;
        }
        crate::fit::progress::note(points.len(), || format!("rollout: fit below C_max/{k:.0}, predict the rest"));
        let Ok(f) = fit(&train) else { break };
        let warm: Vec<Theta> = f.multi.optima.iter().map(|s| s.theta).collect();
        let bs = bootstrap(&f.data, &warm, resamples, seed ^ (k as u64), None);
        let rq = residual_quantiles(&f.data, &f.law);
        let train_max = train.iter().map(c6).fold(0.0, f64::max);
        let mut pts = Vec::new();
        for o in points.iter().filter(|o| c6(o) >= cut) {
            let predicted = f.law.predict(o.params, o.tokens);
            let Some(iv) = prediction_interval(&bs.laws, &rq, o.params, o.tokens) else { continue };
            if !(predicted.is_finite() && iv.lo.is_finite() && iv.hi.is_finite()) {
                continue;
            }
            pts.push(RolloutPoint {
                k,
                run: o.run.clone(),
                params: o.params,
                tokens: o.tokens,
                flops: c6(o),
                factor: c6(o) / train_max,
                predicted,
                lo: iv.lo,
                hi: iv.hi,
                actual: o.loss,
                rel_err: (predicted - o.loss) / o.loss,
                inside: iv.contains(o.loss),
            });
        }
        if pts.is_empty() {
            break;
        }
        let n = pts.len() as f64;
        let mut need: Vec<f64> = pts
            .iter()
            .map(|p| ((p.lo - p.actual) / p.predicted).max((p.actual - p.hi) / p.predicted).max(0.0))
            .collect();
        need.sort_by(f64::total_cmp);
        by_factor.push(FactorStats {
            k,
            n: pts.len(),
            n_fit: train.len(),
            mean_abs_rel_err: pts.iter().map(|p| p.rel_err.abs()).sum::<f64>() / n,
            max_abs_rel_err: pts.iter().map(|p| p.rel_err.abs()).fold(0.0, f64::max),
            coverage: pts.iter().filter(|p| p.inside).count() as f64 / n,
            widen95: percentile(&need, 0.95),
            abs_err95: {
                let mut a: Vec<f64> = pts.iter().map(|p| p.rel_err.abs()).collect();
                a.sort_by(f64::total_cmp);
                percentile(&a, 0.95)
            },
        });
        all.extend(pts);
        k *= step;
    }
    if by_factor.is_empty() {
        bail!(
            "rollout needs a fittable set of runs (5 or more, 2 sizes, 2 token counts) below half the largest compute"
        );
    }
    // Keep an evenly spaced selection of rows when there are too many to list.
    let total = all.len();
    let points_kept: Vec<RolloutPoint> = if total > MAX_POINTS_KEPT {
        (0..MAX_POINTS_KEPT).map(|i| all[i * total / MAX_POINTS_KEPT].clone()).collect()
    } else {
        all
    };
    let mut r = Rollout {
        protocol: format!(
            "for k = {}: fit the runs with C = 6ND below C_max / k (C_max = {c_max:.3e}), predict every larger \
             run's final loss with a 95% prediction interval ({resamples} bootstrap refits x the fit's residuals); final \
             points only",
            by_factor.iter().map(|s| format!("{:.0}", s.k)).collect::<Vec<_>>().join(", ")
        ),
        c_max,
        points_left_out: total - points_kept.len(),
        points: points_kept,
        by_factor,
        at_target: None,
    };
    r.at_target = target_flops.map(|c| r.at(c));
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fit::steps::fit_chinchilla;
    use crate::fit::{fit_all, FitOptions};
    use crate::rng::Rng;

    #[test]
    fn noise_split_separates_size_offsets_from_run_noise() {
        let law = Law { e: 1.7, a: 60.0, b: 40.0, alpha: 0.5, beta: 0.35 };
        let pts: Vec<(f64, f64)> = (0..16)
            .flat_map(|i| {
                let n = 1e4 * 1.3f64.powi(i);
                [2.0, 5.0, 10.0, 20.0, 40.0, 80.0].map(|t| (n, n * t))
            })
            .collect();
        let obs = crate::fit::simulate::synthetic_obs(&pts, &law, 0.004, 0.015, &mut Rng::new(3));
        let n: Vec<f64> = obs.iter().map(|o| o.params).collect();
        let d: Vec<f64> = obs.iter().map(|o| o.tokens).collect();
        let l: Vec<f64> = obs.iter().map(|o| o.loss).collect();
        let s = noise_split(&LogData::new(&n, &d, &l), &law).unwrap();
        assert_eq!(s.sizes, 16);
        assert!((s.run / 0.004 - 1.0).abs() < 0.25, "{s:?}");
        assert!((s.size / 0.015 - 1.0).abs() < 0.5, "{s:?}");
        let none = crate::fit::simulate::synthetic_obs(&pts, &law, 0.004, 0.0, &mut Rng::new(3));
        let l: Vec<f64> = none.iter().map(|o| o.loss).collect();
        let s = noise_split(&LogData::new(&n, &d, &l), &law).unwrap();
        assert!(s.size < 0.002, "{s:?}");
    }

    fn law() -> Law {
        Law { e: 1.8, a: 480.0, b: 2100.0, alpha: 0.35, beta: 0.37 }
    }

    /// Known noise: each final loss is the law's times e^(sigma z), z standard normal.
    const SIGMA: f64 = 0.005;

    fn run(rng: &mut Rng, name: String, n: f64, tpp: f64) -> Obs {
        let d = n * tpp;
        let loss = law().predict(n, d) * (SIGMA * rng.normal()).exp();
        Obs {
            run: name,
            params: n,
            tokens: d,
            flops: crate::flops::chinchilla_flops(n, d),
            loss,
            lr: None,
            batch: None,
            is_final: true,
        }
    }

    /// A sweep of 6 sizes (1e6 to 3.2e7, doubling) x 4 token budgets (5 to 40 tokens/param).
    fn sweep(seed: u64) -> Vec<Obs> {
        let mut rng = Rng::from_state(seed);
        let mut v = Vec::new();
        for i in 0..6 {
            for (j, tpp) in [5.0, 10.0, 20.0, 40.0].into_iter().enumerate() {
                v.push(run(&mut rng, format!("r{i}{j}"), 1e6 * 2f64.powi(i), tpp));
            }
        }
        v
    }

    /// The rollout's and backtest's refits start from the full fit's optima and a 243-start
    /// grid instead of all 4,500: on every training set the rollout cuts from a noisy sweep
    /// they reach the full grid's optimum (same objective to 1e-9 relative, same law).
    #[test]
    fn warm_refits_reach_the_full_grids_optimum() {
        use crate::fit::steps::refit_grid;
        assert_eq!(refit_grid().len(), 243);
        for seed in [7, 11] {
            warm_refit_matches(seed);
        }
    }

    fn warm_refit_matches(seed: u64) {
        use crate::fit::steps::refit_chinchilla;
        let pts = sweep(seed);
        let full = fit_chinchilla(&pts).unwrap();
        let warm: Vec<_> = full.multi.optima.iter().map(|s| s.theta).collect();
        let c_max = pts.iter().map(c6).fold(0.0, f64::max);
        let mut k = 2.0;
        loop {
            let train: Vec<Obs> = pts.iter().filter(|o| c6(o) < c_max / k).cloned().collect();
            if check_chinchilla_points(&train).is_err() {
                break;
            }
            let a = fit_chinchilla(&train).unwrap();
            let b = refit_chinchilla(&train, &warm).unwrap();
            let (fa, fb) = (a.multi.best.objective, b.multi.best.objective);
            assert!((fb - fa) / fa.max(1e-300) < 1e-9, "seed {seed}, k = {k}: refit objective {fb} vs full grid {fa}");
            // Far outside a few-point set the optimum is a flat ridge (equal objective, other
            // laws), so the laws are compared on the training set's own largest run.
            let big = train.iter().max_by(|x, y| c6(x).total_cmp(&c6(y))).unwrap();
            let (pa, pb) = (a.law.predict(big.params, big.tokens), b.law.predict(big.params, big.tokens));
            assert!((pb / pa - 1.0).abs() < 1e-4, "seed {seed}, k = {k}: {pb} vs {pa}");
            k *= 2.0;
        }
        assert!(k >= 8.0, "too few factors were compared");
    }

    /// With the law's form right and only known noise, the rollout's 95% prediction intervals
    /// cover near 95% of the held-out runs. "Near": within [0.85, 1.0] over every prediction of
    /// three independent sweeps (several hundred predictions at factors 2x to a few hundred x;
    /// the far ones come from fits of 5 to 10 runs, so their errors reach several percent and
    /// their intervals must be wide to cover), and the error at k = 2 is small (below 2%).
    #[test]
    fn rollout_on_a_known_law_has_honest_coverage() {
        let (mut inside, mut total) = (0usize, 0usize);
        for seed in 1..=3 {
            let r = super::run(&sweep(seed), 100, seed, Some(1e18), fit_chinchilla).unwrap();
            assert!(r.by_factor.len() >= 4, "{:?}", r.by_factor);
            for (a, b) in r.by_factor.iter().zip(r.by_factor.iter().skip(1)) {
                assert!(b.k > a.k);
                assert!(b.n_fit < a.n_fit && b.n > a.n, "larger k fits fewer runs and predicts more");
            }
            assert!(r.by_factor[0].mean_abs_rel_err < 0.02, "{:?}", r.by_factor[0]);
            // Final points only, one row per (k, held-out run), each above its cut.
            for p in &r.points {
                assert!(p.flops >= r.c_max / p.k * (1.0 - 1e-12) && p.factor > 1.0, "{p:?}");
            }
            inside += r.points.iter().filter(|p| p.inside).count();
            total += r.points.len();
            let t = r.at_target.unwrap();
            assert!(t.factor > 1.0 && t.expected_rel_err > 0.0 && !t.note.is_empty());
        }
        let coverage = inside as f64 / total as f64;
        println!("rollout coverage {coverage:.3} over {total} predictions");
        assert!(total >= 150, "{total}");
        assert!((0.85..=1.0).contains(&coverage), "coverage {coverage} over {total} predictions");
    }

    /// `loss_interval_at` on runs 4x to 30x past the sweep (held out, same law and noise): the
    /// widened intervals cover at least 90% of them, are not uselessly wide (mean half-width
    /// under 5% of the loss), and inside the sweep nothing is widened.
    #[test]
    fn widened_intervals_cover_held_out_larger_runs() {
        let pts = sweep(11);
        let opts = FitOptions { bootstrap: 200, seed: 3, ..FitOptions::default() };
        let rep = fit_all(&pts, &opts).unwrap();
        let r = rep.rollout.as_ref().expect("rollout ran");
        let c_max = r.c_max;
        let mut rng = Rng::from_state(99);
        let (mut inside, mut total, mut half) = (0, 0, 0.0);
        for i in 0..40 {
            // Compute 4x..30x C_max, split at 5..40 tokens per parameter.
            let c = c_max * 4.0 * 7.5f64.powf(i as f64 / 39.0);
            let tpp = 5.0 * 8f64.powf(rng.uniform());
            let n = crate::flops::chinchilla_params_at(c, tpp);
            let o = run(&mut rng, format!("big{i}"), n, tpp);
            let iv = rep.loss_interval_at(o.params, o.tokens).unwrap();
            assert!(iv.lo < iv.hi);
            half += 0.5 * iv.width() / o.loss;
            inside += iv.contains(o.loss) as usize;
            total += 1;
        }
        let coverage = inside as f64 / total as f64;
        println!("held-out coverage {coverage:.3}, mean half-width {:.2}%", 100.0 * half / total as f64);
        assert!(coverage >= 0.9, "coverage {coverage}");
        assert!(half / (total as f64) < 0.05, "mean half-width {}", half / total as f64);
        // Inside the sweep the interval is the unwidened prediction interval.
        let small = &pts[0];
        let raw = prediction_interval(&rep.bootstrap_laws, &rep.residual_quantiles, small.params, small.tokens);
        assert_eq!(rep.loss_interval_at(small.params, small.tokens), raw);
        // The target's loss interval is widened like any prediction, the raw one kept.
        let opts = FitOptions { target_flops: Some(c_max * 100.0), ..opts };
        let rep = fit_all(&pts, &opts).unwrap();
        let (t, iv) = (rep.target.unwrap(), rep.intervals["loss"]);
        assert!(rep.intervals.contains_key("loss_bootstrap"));
        assert_eq!(Some(iv), rep.loss_interval_at(t.n_opt, t.d_opt));
        let raw = prediction_interval(&rep.bootstrap_laws, &rep.residual_quantiles, t.n_opt, t.d_opt).unwrap();
        let widen = rep.rollout.as_ref().unwrap().at_target.as_ref().unwrap().widen;
        // Widened by exactly the rollout's margin at the target's factor (0 if its intervals
        // were honest at every factor).
        let m = widen * rep.params.unwrap().predict(t.n_opt, t.d_opt);
        assert!((iv.lo - (raw.lo - m)).abs() < 1e-12 && (iv.hi - (raw.hi + m)).abs() < 1e-12, "{iv:?} {raw:?} {m}");
        // Far enough out the widening passes the low end: the interval stops at a loss of 0.
        // (This sweep's rollout may have needed no widening at all; the clipping is exercised
        // on a copy whose rollout measured 25% at every factor.)
        let mut rep = rep;
        for s in &mut rep.rollout.as_mut().unwrap().by_factor {
            s.widen95 = s.widen95.max(0.25);
        }
        let far = c_max * 1e20;
        let (n, d) =
            (crate::flops::chinchilla_params_at(far, 20.0), 20.0 * crate::flops::chinchilla_params_at(far, 20.0));
        let raw = prediction_interval(&rep.bootstrap_laws, &rep.residual_quantiles, n, d).unwrap();
        let m = rep.rollout.as_ref().unwrap().widen_at(crate::flops::chinchilla_flops(n, d) / c_max)
            * rep.params.unwrap().predict(n, d);
        assert!(raw.lo - m < 0.0, "the widening reaches below 0 this far out: {raw:?} {m}");
        let iv = rep.loss_interval_at(n, d).unwrap();
        assert_eq!((iv.lo, iv.hi), (0.0, raw.hi + m));
    }

    #[test]
    fn the_envelope_never_shrinks_and_grows_past_what_was_measured() {
        let s = |k: f64, w: f64| FactorStats {
            k,
            n: 3,
            n_fit: 9,
            mean_abs_rel_err: w / 2.0,
            max_abs_rel_err: w,
            coverage: 0.9,
            widen95: w,
            abs_err95: w,
        };
        let r = Rollout {
            protocol: String::new(),
            c_max: 1e18,
            points: Vec::new(),
            points_left_out: 0,
            by_factor: vec![s(2.0, 0.01), s(4.0, 0.005), s(8.0, 0.02)],
            at_target: None,
        };
        assert_eq!(r.widen_at(0.5), 0.0);
        assert_eq!(r.widen_at(1.5), 0.01);
        assert_eq!(r.widen_at(5.0), 0.01, "the dip at 4x does not narrow it");
        assert_eq!(r.widen_at(8.0), 0.02);
        assert!((r.widen_at(64.0) - 0.02 * 2.0).abs() < 1e-12, "ln 64 / ln 8 = 2");
        assert!((r.expected_err_at(64.0) - 0.02).abs() < 1e-12);
        let a = r.at(64e18);
        assert!(a.note.contains("not a measurement"), "{}", a.note);
    }
}
