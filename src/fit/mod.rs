//! Scaling-law fitting: turns a list of training observations into the
//! fitted Chinchilla law, a prediction at a target budget, bootstrap
//! intervals, a backtest and any requested auxiliary laws, all in one
//! serialisable `FitReport` (which is fit.json). This module owns the public
//! API (`Obs`, `FitOptions`, `FitReport`, `fit_all`); the work is done in the
//! submodules, and nothing here depends on the rest of the crate.

pub mod backtest;
pub mod bench;
pub mod bootstrap;
pub mod curve;
pub mod data;
pub mod density;
pub mod envelope;
pub mod fastmath;
pub mod hyper;
pub mod isoflop;
pub mod law;
pub mod lossvc;
pub mod mixing;
pub mod objective;
pub mod parametric;
pub mod pipeline;
pub mod regress;
pub mod rng;
pub mod validate;
pub mod varpro;

#[cfg(test)]
mod api_tests;
#[cfg(test)]
mod recovery;

pub use backtest::Backtest;
pub use bench::bench_chinchilla;
pub use bootstrap::Interval;
pub use law::{Law, TargetPoint};

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
    /// Auxiliary laws: any of `pipeline::LAW_NAMES` ("chinchilla" is implied).
    pub laws: Vec<String>,
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
        }
    }
}

/// The result of `fit_all`; serialised as fit.json.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FitReport {
    /// Always "chinchilla" (the parametric law L = E + A/N^alpha + B/D^beta).
    pub law: String,
    pub params: Law,
    /// Summed Huber (delta = 1e-3) loss of log-loss residuals at the optimum.
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
    /// Auxiliary laws by name (see `pipeline::LAW_NAMES`).
    pub laws: BTreeMap<String, serde_json::Value>,
    /// The compute-optimal frontier L_opt(C) on a log grid from the smallest run's compute to
    /// past the target, with its 95% bootstrap band (empty without bootstrap).
    #[serde(default)]
    pub frontier: Vec<FrontierPoint>,
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
    /// Predicted loss of a model of `n` parameters trained on `d` tokens.
    pub fn predict(&self, n: f64, d: f64) -> f64 {
        self.params.predict(n, d)
    }
}

/// Fit the Chinchilla law (final points only), bootstrap it, backtest it and
/// fit the requested auxiliary laws. Errors on bad input; doubts about the
/// fit go to `FitReport::warnings`.
pub fn fit_all(obs: &[Obs], opts: &FitOptions) -> anyhow::Result<FitReport> {
    pipeline::run(obs, opts)
}

/// Of the items that share a size (N, D), the one with the lowest loss (ties: the smaller id),
/// in input order. A learning-rate (or batch, or mixture) sweep trains each size several times;
/// the laws and comparisons describe well-tuned models, so they read only each size's best.
pub fn best_per_size<'a, T>(
    items: &'a [T],
    size: impl Fn(&T) -> (f64, f64),
    loss: impl Fn(&T) -> f64,
    id: impl Fn(&T) -> &str,
) -> Vec<&'a T> {
    items
        .iter()
        .filter(|o| {
            !items.iter().any(|p| size(p) == size(o) && (loss(p) < loss(o) || (loss(p) == loss(o) && id(p) < id(o))))
        })
        .collect()
}

/// Density of every run's final point against a reference law (the Densing Law's effective
/// parameter ratio), as the `density` entry of `FitReport::laws`: per point N, D, loss, N_hat
/// and rho = N_hat / N, plus the median rho. Points the reference cannot reach (loss below its
/// infinite-N limit at that D) are listed with a reason instead of a number.
pub fn density_table(reference: &Law, obs: &[Obs]) -> serde_json::Value {
    let mut rows = Vec::new();
    let mut rhos = Vec::new();
    for o in obs.iter().filter(|o| o.is_final) {
        match density::density(reference, o.params, o.tokens, o.loss) {
            Ok(d) => {
                rhos.push(d.density);
                rows.push(serde_json::json!({"run": o.run, "params": d.params, "tokens": d.tokens, "loss": d.loss, "n_effective": d.n_effective, "density": d.density}));
            }
            Err(e) => rows.push(serde_json::json!({"run": o.run, "params": o.params, "tokens": o.tokens, "loss": o.loss, "error": e.to_string()})),
        }
    }
    rhos.sort_by(|a, b| a.total_cmp(b));
    let median = if rhos.is_empty() { f64::NAN } else { rhos[rhos.len() / 2] };
    serde_json::json!({"reference": reference, "median_density": median, "n_points": rhos.len(), "points": rows})
}
