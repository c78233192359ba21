//! Scaling-law fitting: turns a list of training observations into the
//! fitted Chinchilla law, a prediction at a target budget, bootstrap
//! intervals, a backtest and any requested auxiliary laws, all in one
//! serialisable `FitReport` (which is fit.json). This module owns the public
//! API (`Obs`, `FitOptions`, `FitReport`, `fit_all`); the work is done in the
//! submodules: `chinchilla/` is the core law, the other modules are the auxiliary laws named
//! for what they fit. Nothing here depends on the rest of the crate but the leaf `rng`.

pub mod calibration;
pub mod chinchilla;
pub mod curve;
pub mod density;
pub mod envelope;
pub mod hindsight;
pub mod hyperparams;
pub mod integrity;
pub mod isoflop;
pub mod kaplan;
pub mod laws;
pub mod loss_vs_compute;
pub mod mixing;
pub mod planned;
pub mod progress;
pub mod regress;
pub mod simulate;
pub mod steps;
pub mod suggest;
pub mod table;
pub mod verdict;

#[cfg(test)]
mod api_tests;

pub use chinchilla::backtest::Backtest;
pub use chinchilla::bootstrap::Interval;
pub use chinchilla::law::{Law, TargetPoint};
pub use chinchilla::rollout::Rollout;
pub use laws::Laws;
pub use steps::LawName;
pub use verdict::Verdict;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One observation: a model of `params` N trained on `tokens` D reached `loss` (nats/token).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Obs {
    pub run: String,
    pub params: f64,
    pub tokens: f64,
    pub flops: f64,
    pub loss: f64,
    pub lr: Option<f64>,
    pub batch: Option<f64>,
    /// The run's last observation; the Chinchilla law uses only these.
    pub is_final: bool,
}

impl Obs {
    /// A run's final point with its compute by the laws' convention C = 6ND (no learning
    /// rate or batch recorded): how synthetic and reference data enter the fits.
    pub fn final_6nd(run: impl Into<String>, params: f64, tokens: f64, loss: f64) -> Obs {
        let flops = crate::flops::chinchilla_flops(params, tokens);
        Obs { run: run.into(), params, tokens, flops, loss, lr: None, batch: None, is_final: true }
    }
}

/// What to fit and report. `Default` gives 1,000 bootstrap resamples, seed
/// 0, the backtest on, no target and no auxiliary laws.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct FitOptions {
    /// Extrapolate to this compute budget (its compute-optimal N and D).
    pub target_flops: Option<f64>,
    /// Or to this model size (with the D that makes it compute-optimal).
    pub target_params: Option<f64>,
    /// Bootstrap resamples; 0 skips the intervals.
    pub bootstrap: usize,
    pub seed: u64,
    pub backtest: bool,
    /// Auxiliary laws ("chinchilla" is implied).
    pub laws: Vec<LawName>,
    /// The data's known entropy floor in nats/token (built-in domains; the caller knows the
    /// data, fit/ does not). The verdict judges E and the target's loss against it.
    pub entropy_floor: Option<f64>,
    /// A sweep of WSD branch families: the verdict's search adds whole families of new sizes
    /// (a run at a trained size would retrain its family). None: single runs.
    pub wsd_families: Option<verdict::Families>,
    /// The data_mixing law's per-domain data, which `Obs` lacks: `None` when the caller has
    /// none (the law, if asked for, is skipped), `Some(Err(why))` when it could not be read.
    /// Data, not a setting: never in a file.
    #[serde(skip)]
    pub mixing: Option<Result<mixing::MixingData, String>>,
    /// Why the runs' whole curves say the final points' law extrapolates badly
    /// (`curve::shape::loss_reason`), which `Obs` cannot show: the verdict's loss is then not
    /// determined. Data, not a setting: never in a file.
    #[serde(skip)]
    pub turning: Option<String>,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            target_flops: None,
            target_params: None,
            bootstrap: 1000,
            seed: 0,
            backtest: true,
            laws: Vec::new(),
            entropy_floor: None,
            wsd_families: None,
            mixing: None,
            turning: None,
        }
    }
}

/// A run left out of the final-point laws, with its step count and the minimum it missed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LeftOut {
    pub run: String,
    pub steps: u64,
    pub min_steps: u64,
}

/// The result of `fit_all`; serialised as fit.json. `Default` is the empty report (no law).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct FitReport {
    /// Always "chinchilla" (the parametric law L = E + A/N^alpha + B/D^beta).
    pub law: String,
    /// The fitted law; `None` when the data could not support it (the reason is in
    /// `skipped["chinchilla"]`, and every field below that describes it is empty or 0).
    #[serde(default)]
    pub params: Option<Law>,
    /// Summed Huber (delta = 1e-3) loss of log-loss residuals at the optimum (0 when skipped).
    pub objective: f64,
    /// Final points the law was fitted to.
    pub n_points: usize,
    /// Distinct model sizes among them.
    pub n_sizes: usize,
    /// Grid starts and how many ended at a stationary point.
    pub starts: usize,
    pub converged_starts: usize,
    /// The extrapolation target, if one was asked for.
    pub target: Option<TargetPoint>,
    /// 95% bootstrap percentile intervals, by quantity (E, A, B, alpha, beta,
    /// n_exponent and, with a target, n_opt, d_opt, tokens_per_param, loss).
    pub intervals: BTreeMap<String, Interval>,
    /// Resamples requested and resamples whose refit converged.
    pub bootstrap_resamples: usize,
    pub bootstrap_ok: usize,
    pub backtest: Option<Backtest>,
    pub warnings: Vec<String>,
    /// Auxiliary laws, a field per name (see `steps::LAW_NAMES`).
    #[serde(default)]
    pub laws: Laws,
    /// The compute-optimal frontier L_opt(C) on a log grid from the smallest run's compute to
    /// past the target, with its 95% bootstrap band (empty without bootstrap).
    #[serde(default)]
    pub frontier: Vec<FrontierPoint>,
    /// Laws that could not be fitted, by name, with the reason (e.g. "chinchilla": "needs at
    /// least 5 final points, got 4"). A law that cannot be fitted never stops the others.
    #[serde(default)]
    pub skipped: BTreeMap<String, String>,
    /// Runs the caller left out of the final-point laws because they trained too few steps
    /// (`[fit] min_steps`): their final loss is still the initial transient.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<LeftOut>,
    /// The rollout backtest: error and interval coverage against extrapolation factor (see
    /// `rollout`); what `loss_interval_at` widens by.
    #[serde(default)]
    pub rollout: Option<Rollout>,
    /// The converged bootstrap refits' laws, for intervals of any prediction (`loss_interval_at`).
    #[serde(default)]
    pub bootstrap_laws: Vec<Law>,
    /// The fit's log residuals ln(actual / predicted) at the percentiles 0..=100, inflated for
    /// the five fitted parameters (`rollout::residual_quantiles`): a run's own noise.
    #[serde(default)]
    pub residual_quantiles: Vec<f64>,
    /// The residual noise split into a run's own and a per-size offset
    /// (`rollout::noise_split`); what `plan --precision --prior fit.json` simulates.
    #[serde(default)]
    pub noise_split: Option<chinchilla::rollout::NoiseSplit>,
    /// The Kaplan form fitted to the same final points and how far it lands from this law at
    /// the target and on the rollout split: model-form uncertainty, which no bootstrap of one
    /// form shows.
    #[serde(default)]
    pub form_check: Option<kaplan::FormCheck>,
    /// Whether the sweep determines the target's N/D split and loss, why not, and which runs
    /// would (`verdict.rs`). Absent in fit.json files written before it existed.
    #[serde(default)]
    pub verdict: Option<Verdict>,
}

/// One point of the frontier: L(N_opt(C), D_opt(C)) under the fit and the 2.5% / 97.5%
/// percentiles of the same quantity under the bootstrap refits.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct FrontierPoint {
    pub flops: f64,
    pub loss: f64,
    pub lo: f64,
    pub hi: f64,
}

impl FitReport {
    /// Predicted loss of a model of `n` parameters trained on `d` tokens (`None` when the
    /// chinchilla law was skipped).
    pub fn predict(&self, n: f64, d: f64) -> Option<f64> {
        self.params.map(|p| p.predict(n, d))
    }

    /// A 95% interval for the final loss of a model of `n` parameters trained on `d` tokens:
    /// the bootstrap refits' predictions combined with the fit's residual noise
    /// (`rollout::prediction_interval`), widened on both sides by the relative error the
    /// rollout backtest measured at the matching extrapolation factor C / C_max (C = 6nd),
    /// grown past the largest factor it measured (`Rollout::widen_at`). `None` without a
    /// fitted law or bootstrap refits. Without a rollout (too few runs, or backtests off)
    /// nothing is widened, and fit.json's warnings say the intervals are not calibrated.
    pub fn loss_interval_at(&self, n: f64, d: f64) -> Option<Interval> {
        let law = self.params?;
        let iv = chinchilla::rollout::prediction_interval(&self.bootstrap_laws, &self.residual_quantiles, n, d)?;
        let widen = self.rollout.as_ref().map_or(0.0, |r| r.widen_at(crate::flops::chinchilla_flops(n, d) / r.c_max));
        let m = widen * law.predict(n, d);
        // A cross-entropy is never negative: a widening larger than the low end (real text's
        // target, 1,688x past its sweep, is widened by 55%) stops at 0 instead of printing a
        // negative loss.
        Some(Interval { lo: (iv.lo - m).max(0.0), hi: iv.hi + m })
    }

    /// Why the chinchilla law was not fitted, if it was not.
    pub fn chinchilla_skipped(&self) -> Option<&str> {
        self.skipped.get("chinchilla").map(|s| s.as_str())
    }
}

/// Fit the Chinchilla law (final points only), bootstrap it, backtest it and
/// fit the requested auxiliary laws. Errors on bad input; doubts about the
/// fit go to `FitReport::warnings`.
pub fn fit_all(obs: &[Obs], opts: &FitOptions) -> anyhow::Result<FitReport> {
    let mut rep = steps::run(obs, opts)?;
    let points: Vec<(f64, f64)> = obs.iter().filter(|o| o.is_final).map(|o| (o.params, o.tokens)).collect();
    let v = suggest::judge(&rep, &points, opts.entropy_floor, opts.wsd_families.as_ref());
    rep.verdict = Some(match &opts.turning {
        Some(why) => suggest::with_loss_reason(v, &rep, &points, opts.wsd_families.as_ref(), why.clone()),
        None => v,
    });
    Ok(rep)
}

/// Of the items that share a size (N, D), the one with the lowest loss (ties: the smaller id),
/// in input order. A learning-rate (or batch, or mixture) sweep trains each size several times;
/// the laws and comparisons describe well-tuned models, so they read only each size's best.
/// Sizes are grouped by their exact bits in a hash map (a million points compared pairwise
/// never finished); an item with a NaN size or loss equals nothing, so it is always kept.
pub fn best_per_size<'a, T>(
    items: &'a [T],
    size: impl Fn(&T) -> (f64, f64),
    loss: impl Fn(&T) -> f64,
    id: impl Fn(&T) -> &str,
) -> Vec<&'a T> {
    let key = |o: &T| {
        let (n, d) = size(o);
        // +0.0 and -0.0 are equal sizes with different bits.
        let bits = |x: f64| if x == 0.0 { 0u64 } else { x.to_bits() };
        (!(n.is_nan() || d.is_nan() || loss(o).is_nan())).then(|| (bits(n), bits(d)))
    };
    let mut best: std::collections::HashMap<(u64, u64), usize> = std::collections::HashMap::new();
    for (i, o) in items.iter().enumerate() {
        if let Some(k) = key(o) {
            let e = best.entry(k).or_insert(i);
            let b = &items[*e];
            if loss(o) < loss(b) || (loss(o) == loss(b) && id(o) < id(b)) {
                *e = i;
            }
        }
    }
    // Kept: every item whose (loss, id) equals its group's least (duplicates included).
    items
        .iter()
        .filter(|o| {
            key(o).is_none_or(|k| {
                let b = &items[best[&k]];
                loss(b) == loss(o) && id(b) == id(o)
            })
        })
        .collect()
}

/// Density of every run's final point against a reference law (the Densing Law's effective
/// parameter ratio), as the `density` entry of `FitReport::laws`: per point N, D, loss, N_hat
/// and rho = N_hat / N, plus the median rho. Points the reference cannot reach (loss below its
/// infinite-N limit at that D) are listed with a reason instead of a number.
pub fn density_table(reference: &Law, obs: &[Obs]) -> density::DensityTable {
    let mut points = Vec::new();
    let mut rhos = Vec::new();
    for o in obs.iter().filter(|o| o.is_final) {
        points.push(match density::density(reference, o.params, o.tokens, o.loss) {
            Ok(d) => {
                rhos.push(d.density);
                density::DensityRow::Placed { run: o.run.clone(), density: d }
            }
            Err(e) => density::DensityRow::Unreachable {
                run: o.run.clone(),
                params: o.params,
                tokens: o.tokens,
                loss: o.loss,
                error: e.to_string(),
            },
        });
    }
    let median_density = regress::median(&rhos).unwrap_or(f64::NAN);
    density::DensityTable { reference: *reference, median_density, n_points: rhos.len(), points }
}
