//! `fit_all`'s steps in order: validate input, fit the Chinchilla law to the
//! runs' final points from the full grid, place the target, bootstrap,
//! backtest, fit the requested auxiliary laws, and collect warnings.

use crate::fit::chinchilla::backtest::{self, final_per_run};
use crate::fit::chinchilla::bootstrap::bootstrap;
use crate::fit::chinchilla::law::{Law, TargetSpec};
use crate::fit::chinchilla::objective::{LogData, Theta};
use crate::fit::chinchilla::parametric::{fit_grid, hoffmann_grid, EXACT_MAX, SCREEN_POINTS};
use crate::fit::chinchilla::rollout::{self, residual_quantiles, ROLLOUT_RESAMPLES};
use crate::fit::chinchilla::validate::{
    check_chinchilla_points, check_obs, count_distinct, design_warnings, fit_warnings,
};
use crate::fit::laws::{Laws, VarproLaw};
use crate::fit::{
    chinchilla::varpro, envelope, hyperparams, isoflop, loss_vs_compute, mixing, FitOptions, FitReport, Obs,
};
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A law `FitOptions::laws` (and a sweep's `[fit] laws`) can name. "chinchilla" is always
/// fitted (it is the report's main law), so naming it is accepted and changes nothing.
/// Serialised, displayed and parsed as its name (`as_str`), the text it replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum LawName {
    Chinchilla,
    ChinchillaVarpro,
    Isoflop,
    Envelope,
    LossVsCompute,
    LrVsCompute,
    BatchVsCompute,
    BatchVsLoss,
    /// Needs per-domain losses, which `Obs` lacks: the caller passes them in
    /// `FitOptions::mixing` (the app layer reads them from a sweep's results frame).
    DataMixing,
    /// Needs every evaluation with its run's learning-rate schedule (`fit::curve`), so it is
    /// fitted by the app layer (`app::curve`) from the run folders.
    LossCurve,
}

impl LawName {
    /// Every law, in the order error messages list them.
    pub const ALL: [LawName; 10] = [
        LawName::Chinchilla,
        LawName::ChinchillaVarpro,
        LawName::Isoflop,
        LawName::Envelope,
        LawName::LossVsCompute,
        LawName::LrVsCompute,
        LawName::BatchVsCompute,
        LawName::BatchVsLoss,
        LawName::DataMixing,
        LawName::LossCurve,
    ];

    /// The law's name in a sweep file, on the command line and as fit.json's key.
    pub const fn as_str(self) -> &'static str {
        match self {
            LawName::Chinchilla => "chinchilla",
            LawName::ChinchillaVarpro => "chinchilla_varpro",
            LawName::Isoflop => "isoflop",
            LawName::Envelope => "envelope",
            LawName::LossVsCompute => "loss_vs_compute",
            LawName::LrVsCompute => "lr_vs_compute",
            LawName::BatchVsCompute => "batch_vs_compute",
            LawName::BatchVsLoss => "batch_vs_loss",
            LawName::DataMixing => "data_mixing",
            LawName::LossCurve => "loss_curve",
        }
    }
}

/// The names of `LawName::ALL`, in its order.
pub const LAW_NAMES: [&str; 10] = {
    let mut names = [""; 10];
    let mut i = 0;
    while i < names.len() {
        names[i] = LawName::ALL[i].as_str();
        i += 1;
    }
    names
};

display_as_word!(LawName, as_str);

impl std::str::FromStr for LawName {
    type Err = String;
    fn from_str(s: &str) -> Result<LawName, String> {
        LawName::ALL
            .into_iter()
            .find(|l| l.as_str() == s)
            .ok_or_else(|| format!("unknown law {s:?}; valid laws are: {}", LAW_NAMES.join(", ")))
    }
}

impl TryFrom<String> for LawName {
    type Error = String;
    fn try_from(s: String) -> Result<LawName, String> {
        s.parse()
    }
}

impl From<LawName> for String {
    fn from(l: LawName) -> String {
        l.as_str().to_string()
    }
}

impl PartialEq<str> for LawName {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for LawName {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

pub use crate::fit::chinchilla::parametric::ChinchillaFit;

/// Approach 3 on the given points (one per run): the 4,500-start grid (on every point up to
/// `EXACT_MAX` points, screened on a subsample above; see `parametric::fit_grid`).
pub fn fit_chinchilla(points: &[Obs]) -> Result<ChinchillaFit> {
    fit_on_starts(points, &hoffmann_grid())
}

/// The fit from the given starts (screened on a subsample above `EXACT_MAX` points).
fn fit_on_starts(points: &[Obs], starts: &[Theta]) -> Result<ChinchillaFit> {
    check_chinchilla_points(points)?;
    crate::fit::progress::note(points.len(), || {
        format!(
            "chinchilla on {} points: {} grid starts on a {SCREEN_POINTS}-point subsample, best basins polished on all (above {EXACT_MAX} points)",
            points.len(),
            starts.len()
        )
    });
    let n: Vec<f64> = points.iter().map(|o| o.params).collect();
    let d: Vec<f64> = points.iter().map(|o| o.tokens).collect();
    let l: Vec<f64> = points.iter().map(|o| o.loss).collect();
    let data = LogData::new(&n, &d, &l);
    let multi = fit_grid(&data, starts);
    let law = Law::from_theta(&multi.best.theta);
    if !multi.best.objective.is_finite() || !law.is_finite() {
        bail!("chinchilla fit failed: no grid start reached a finite optimum");
    }
    Ok(ChinchillaFit { law, multi, data })
}

/// Approach 3 again on a subset of the points the law was fitted to (the backtest's and the
/// rollout's training sets), from `warm`, the full fit's distinct optima, plus `refit_grid`'s 243
/// starts instead of all 4,500: a subset's optimum lies in or near a basin the full grid already
/// found, and the coarse grid catches one it did not. The full grid on each of the rollout's
/// factors and the backtest was three quarters of `fit`'s time on Epoch's 240 points.
pub fn refit_chinchilla(points: &[Obs], warm: &[Theta]) -> Result<ChinchillaFit> {
    let starts: Vec<Theta> = warm.iter().copied().chain(refit_grid()).collect();
    fit_on_starts(points, &starts)
}

/// Every other value of each axis of Hoffmann's grid (a, b in {0, 10, 20}, e in {-1, 0, 1},
/// alpha, beta in {0, 1, 2}): 243 starts that span the same box.
pub fn refit_grid() -> Vec<Theta> {
    hoffmann_grid()
        .into_iter()
        .filter(|t| {
            let even = |x: f64, step: f64, origin: f64| (((x - origin) / step).round() as i64) % 2 == 0;
            even(t[0], 5.0, 0.0)
                && even(t[1], 5.0, 0.0)
                && even(t[2], 0.5, -1.0)
                && even(t[3], 0.5, 0.0)
                && even(t[4], 0.5, 0.0)
        })
        .collect()
}

fn target_spec(opts: &FitOptions) -> Result<Option<TargetSpec>> {
    let ok = |v: f64| v.is_finite() && v > 0.0;
    match (opts.target_flops, opts.target_params) {
        (Some(_), Some(_)) => bail!("give either target_flops or target_params, not both"),
        (Some(c), None) if ok(c) => Ok(Some(TargetSpec::Flops(c))),
        (None, Some(n)) if ok(n) => Ok(Some(TargetSpec::Params(n))),
        (Some(v), None) | (None, Some(v)) => bail!("target must be finite and > 0, got {v}"),
        (None, None) => Ok(None),
    }
}

/// Fits one auxiliary law into its field of `laws`. `target_flops` is the report's target
/// compute, if it has one (the data_mixing law recommends a mixture there).
fn aux_law(name: LawName, obs: &[Obs], opts: &FitOptions, target_flops: Option<f64>, laws: &mut Laws) -> Result<()> {
    match name {
        LawName::Isoflop => laws.isoflop = Some(isoflop::fit(obs)?),
        LawName::Envelope => laws.envelope = Some(envelope::fit(obs)?),
        LawName::LossVsCompute => laws.loss_vs_compute = Some(loss_vs_compute::fit(obs)?),
        LawName::LrVsCompute => laws.lr_vs_compute = Some(hyperparams::fit_lr(obs)?),
        LawName::BatchVsCompute => laws.batch_vs_compute = Some(hyperparams::fit_batch(obs)?),
        LawName::BatchVsLoss => laws.batch_vs_loss = Some(hyperparams::fit_batch_vs_loss(obs)?),
        LawName::ChinchillaVarpro => {
            // The cross-check of approach 3: for fixed (alpha, beta) the law is linear in
            // (E, A, B), so profile them out and search (alpha, beta) only.
            let points = final_per_run(&obs.iter().filter(|o| o.is_final).cloned().collect::<Vec<_>>());
            check_chinchilla_points(&points)?;
            let n: Vec<f64> = points.iter().map(|o| o.params).collect();
            let d: Vec<f64> = points.iter().map(|o| o.tokens).collect();
            let l: Vec<f64> = points.iter().map(|o| o.loss).collect();
            let v = varpro::fit(&LogData::new(&n, &d, &l));
            laws.chinchilla_varpro =
                Some(VarproLaw { inner_solves: v.inner_solves, objective: v.objective, params: v.law });
        }
        LawName::DataMixing => {
            let data = match &opts.mixing {
                Some(Ok(data)) => data,
                Some(Err(why)) => bail!("{why}"),
                None => bail!("needs every run's per-domain final losses (a sweep folder's runs.parquet)"),
            };
            // Without a target, the recommendation is for the sweep's largest run.
            let target = target_flops
                .or(opts.target_flops)
                .unwrap_or_else(|| data.obs.iter().map(|o| o.flops).fold(0.0, f64::max));
            let boots = opts.bootstrap.min(mixing::MAX_BOOTSTRAP);
            laws.data_mixing = Some(mixing::fit(&data.domains, &data.obs, &data.weights, target, boots, opts.seed)?);
        }
        // The main law (fitted first, by `chinchilla_part`) and the curve law (by the app layer).
        LawName::Chinchilla | LawName::LossCurve => bail!("law {name} is not an auxiliary law"),
    }
    Ok(())
}

/// The body of `fit_all`. Bad input (non-finite numbers, an unknown law, a bad target) is an
/// error; a law the data cannot support (too few runs, one size, ...) is only skipped, with
/// its reason in `FitReport::skipped`, and the other laws are still fitted.
pub fn run(obs: &[Obs], opts: &FitOptions) -> Result<FitReport> {
    check_obs(obs)?;
    let spec = target_spec(opts)?;
    let mut skipped = BTreeMap::new();
    let mut rep = match chinchilla_part(obs, opts, spec) {
        Ok(rep) => rep,
        Err(e) => {
            skipped.insert("chinchilla".to_string(), format!("{e:#}"));
            FitReport {
                law: "chinchilla".into(),
                bootstrap_resamples: opts.bootstrap,
                warnings: vec![format!("law chinchilla not fitted: {e:#}")],
                ..FitReport::default()
            }
        }
    };
    let target_flops = rep.target.as_ref().map(|t| t.flops);
    for &name in opts.laws.iter().filter(|n| !matches!(n, LawName::Chinchilla | LawName::LossCurve)) {
        if let Err(e) = aux_law(name, obs, opts, target_flops, &mut rep.laws) {
            rep.warnings.push(format!("law {name} not fitted: {e:#}"));
            skipped.insert(name.to_string(), format!("{e:#}"));
        }
    }
    rep.skipped = skipped;
    Ok(rep)
}

/// The chinchilla law with everything that hangs on it (target, bootstrap, frontier,
/// backtest); an error means the data cannot support the law.
fn chinchilla_part(obs: &[Obs], opts: &FitOptions, spec: Option<TargetSpec>) -> Result<FitReport> {
    let finals: Vec<Obs> = obs.iter().filter(|o| o.is_final).cloned().collect();
    if finals.is_empty() {
        bail!("no observation is marked is_final; the chinchilla law is fitted to final points");
    }
    // One final point per run (a run flagged twice keeps its longest), and of the runs that
    // share (N, D) but differ in other settings (learning rate, batch, ...) only the best: the
    // law describes well-tuned models, and a learning-rate sweep's bad corners are not part of
    // it. The auxiliary laws (lr_vs_compute, ...) still see every run.
    let all_points = final_per_run(&finals);
    let points: Vec<Obs> =
        crate::fit::best_per_size(&all_points, |o| (o.params, o.tokens), |o| o.loss, |o| o.run.as_str())
            .into_iter()
            .cloned()
            .collect();
    let (obs_law, left_out) = if points.len() < all_points.len() {
        let keep: std::collections::BTreeSet<&str> = points.iter().map(|o| o.run.as_str()).collect();
        (
            obs.iter().filter(|o| keep.contains(o.run.as_str())).cloned().collect::<Vec<_>>(),
            all_points.len() - points.len(),
        )
    } else {
        (obs.to_vec(), 0)
    };
    let fit = fit_chinchilla(&points)?;
    let warm_starts: Vec<Theta> = fit.multi.optima.iter().map(|s| s.theta).collect();
    let min_loss = points.iter().map(|o| o.loss).fold(f64::INFINITY, f64::min);
    let mut warnings = design_warnings(&points);
    if left_out > 0 {
        warnings.push(format!(
            "{left_out} run(s) share their (N, D) with a better run (other learning rate, batch or mixture) and were \
             left out of the chinchilla fit and backtest: the law is fitted to each (N, D)'s best run"
        ));
    }
    warnings.extend(fit_warnings(&fit.multi, &fit.law, min_loss, points.len()));

    let target = spec.map(|s| fit.law.target(s));
    if let Some(t) = &target {
        let max_c = points.iter().map(|o| o.flops).fold(0.0, f64::max);
        if t.flops > 1e3 * max_c {
            warnings.push(format!(
                "target compute {:.3e} is {:.0}x the largest observed run: a long extrapolation",
                t.flops,
                t.flops / max_c
            ));
        }
    }

    let mut intervals = BTreeMap::new();
    let mut bootstrap_ok = 0;
    let mut frontier = Vec::new();
    let mut bootstrap_laws = Vec::new();
    if opts.bootstrap > 0 {
        let warm: Vec<Theta> = fit.multi.optima.iter().map(|s| s.theta).collect();
        let bs = bootstrap(&fit.data, &warm, opts.bootstrap, opts.seed, spec);
        bootstrap_ok = bs.ok;
        intervals = bs.intervals;
        frontier = frontier_band(&fit.law, &bs.laws, &points, target.map(|t| t.flops));
        bootstrap_laws = bs.laws;
        if (bs.ok as f64) < 0.95 * opts.bootstrap as f64 {
            warnings
                .push(format!("only {} of {} bootstrap refits converged; intervals use those", bs.ok, opts.bootstrap));
        }
        for (k, v) in [("alpha", fit.law.alpha), ("beta", fit.law.beta)] {
            if let Some(iv) = intervals.get(k) {
                if iv.width() > v {
                    warnings.push(format!(
                        "{k} is poorly constrained: 95% interval [{:.3}, {:.3}] is wider than the estimate",
                        iv.lo, iv.hi
                    ));
                }
            }
        }
    }

    let backtest = if opts.backtest {
        match backtest::run(&obs_law, |train| refit_chinchilla(train, &warm_starts).map(|f| f.law)) {
            Ok(bt) => Some(bt),
            Err(e) => {
                warnings.push(format!("backtest skipped: {e}"));
                None
            }
        }
    } else {
        None
    };

    let rollout = if opts.backtest {
        // Each factor's intervals need their own refits; a few hundred are enough for a
        // percentile interval, and `bootstrap = 0` still gets some (the rollout is its point).
        let resamples = ROLLOUT_RESAMPLES.min(opts.bootstrap.max(50));
        match rollout::run(&points, resamples, opts.seed, target.map(|t| t.flops), |p| {
            refit_chinchilla(p, &warm_starts)
        }) {
            Ok(r) => Some(r),
            Err(e) => {
                warnings.push(format!("rollout backtest skipped: {e}; intervals are not widened for extrapolation"));
                None
            }
        }
    } else {
        None
    };

    let form_check = {
        let pts: Vec<(f64, f64, f64)> = points.iter().map(|o| (o.params, o.tokens, o.loss)).collect();
        let chin_rollout: Vec<(f64, f64)> =
            rollout.as_ref().map_or(Vec::new(), |r| r.by_factor.iter().map(|f| (f.k, f.mean_abs_rel_err)).collect());
        let law = fit.law;
        crate::fit::kaplan::form_check(
            &pts,
            |n, d| law.predict(n, d),
            target.map(|t| (t.n_opt, t.d_opt)),
            &chin_rollout,
        )
    };

    let mut rep = FitReport {
        law: "chinchilla".into(),
        params: Some(fit.law),
        objective: fit.multi.best.objective,
        n_points: points.len(),
        n_sizes: count_distinct(points.iter().map(|o| o.params)),
        starts: fit.multi.n_starts,
        converged_starts: fit.multi.n_converged,
        target,
        intervals,
        bootstrap_resamples: opts.bootstrap,
        bootstrap_ok,
        backtest,
        warnings,
        laws: Laws::default(),
        frontier,
        skipped: BTreeMap::new(),
        left_out: Vec::new(),
        rollout,
        bootstrap_laws,
        residual_quantiles: residual_quantiles(&fit.data, &fit.law),
        noise_split: rollout::noise_split(&fit.data, &fit.law),
        form_check,
        verdict: None,
    };
    // The target's loss interval is a prediction like any other: the bootstrap percentile
    // (kept as `loss_bootstrap`) plus the run's noise, widened by the rollout's error at the
    // target's factor.
    if let Some(t) = rep.target {
        if let Some(iv) = rep.loss_interval_at(t.n_opt, t.d_opt) {
            if let Some(raw) = rep.intervals.insert("loss".into(), iv) {
                rep.intervals.insert("loss_bootstrap".into(), raw);
            }
        }
        if let Some(r) = &rep.rollout {
            if let Some(a) = &r.at_target {
                if a.factor > r.by_factor.last().map_or(1.0, |s| s.k) {
                    rep.warnings.push(format!("rollout: {}", a.note));
                }
            }
        }
    }
    Ok(rep)
}

/// L_opt(C) and its 95% bootstrap band at 48 log-spaced budgets from half the smallest run's
/// 6ND to twice the larger of the largest run's and the target's.
fn frontier_band(law: &Law, boot: &[Law], points: &[Obs], target: Option<f64>) -> Vec<crate::fit::FrontierPoint> {
    let c6 = |o: &Obs| crate::flops::chinchilla_flops(o.params, o.tokens);
    let lo = points.iter().map(c6).fold(f64::INFINITY, f64::min) / 2.0;
    let hi = points.iter().map(c6).fold(0.0, f64::max).max(target.unwrap_or(0.0)) * 2.0;
    if boot.is_empty() || !(lo > 0.0 && hi > lo && hi.is_finite()) {
        return Vec::new();
    }
    let k = 48;
    (0..k)
        .map(|i| {
            let c = lo * (hi / lo).powf(i as f64 / (k - 1) as f64);
            let mut ls: Vec<f64> =
                boot.iter().map(|b| b.target(TargetSpec::Flops(c)).loss).filter(|x| x.is_finite()).collect();
            ls.sort_by(f64::total_cmp);
            let (lo, hi) = if ls.is_empty() {
                (f64::NAN, f64::NAN)
            } else {
                (
                    crate::fit::chinchilla::bootstrap::percentile(&ls, 0.025),
                    crate::fit::chinchilla::bootstrap::percentile(&ls, 0.975),
                )
            };
            crate::fit::FrontierPoint { flops: c, loss: law.target(TargetSpec::Flops(c)).loss, lo, hi }
        })
        .collect()
}
