//! Chinchilla approach 1 (the training-curve envelope): over all observations
//! of all runs, find the lowest loss reached at each compute value (log-spaced
//! bins), note which model size and token count achieved it, and fit
//! N_opt ~ C^a and D_opt ~ C^b by log-log OLS. Also exposes the frontier
//! itself, which `loss_vs_compute.rs` fits L(C) to.

use crate::fit::chinchilla::validate::count_distinct;
use crate::fit::regress::{power_law, PowerLaw};
use crate::fit::Obs;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

/// Bins per decade of compute used to trace the frontier.
pub const BINS_PER_DECADE: f64 = 8.0;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FrontierPoint {
    pub flops: f64,
    pub loss: f64,
    pub run: String,
    pub params: f64,
    pub tokens: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnvelopeFit {
    pub frontier: Vec<FrontierPoint>,
    pub n_opt: PowerLaw,
    pub d_opt: PowerLaw,
    pub warnings: Vec<String>,
}

/// Lowest-loss observation in each log-compute bin that at least two runs
/// reach (a bin only one run reaches says nothing about which size is best).
pub fn frontier(obs: &[Obs]) -> Vec<FrontierPoint> {
    if obs.is_empty() {
        return Vec::new();
    }
    let lo = obs.iter().map(|o| o.flops.log10()).fold(f64::MAX, f64::min);
    let mut bins: std::collections::BTreeMap<i64, Vec<&Obs>> = Default::default();
    for o in obs {
        let k = ((o.flops.log10() - lo) * BINS_PER_DECADE).floor() as i64;
        bins.entry(k).or_default().push(o);
    }
    bins.into_values()
        .filter(|b| {
            let mut runs: Vec<&str> = b.iter().map(|o| o.run.as_str()).collect();
            runs.sort_unstable();
            runs.dedup();
            runs.len() >= 2
        })
        .map(|b| {
            let best = b.iter().min_by(|x, y| x.loss.total_cmp(&y.loss)).expect("non-empty bin");
            FrontierPoint {
                flops: best.flops,
                loss: best.loss,
                run: best.run.clone(),
                params: best.params,
                tokens: best.tokens,
            }
        })
        .collect()
}

/// Fit approach 1 on every observation.
pub fn fit(obs: &[Obs]) -> Result<EnvelopeFit> {
    let f = frontier(obs);
    if f.len() < 3 || count_distinct(f.iter().map(|p| p.params)) < 2 {
        bail!(
            "envelope needs a frontier of 3+ compute bins held by 2+ model sizes (got {} bins); \
             log intermediate checkpoints or add sizes",
            f.len()
        );
    }
    let cs: Vec<f64> = f.iter().map(|p| p.flops).collect();
    let ns: Vec<f64> = f.iter().map(|p| p.params).collect();
    let ds: Vec<f64> = f.iter().map(|p| p.tokens).collect();
    let (Some(n_opt), Some(d_opt)) = (power_law(&cs, &ns), power_law(&cs, &ds)) else {
        bail!("envelope: frontier does not span distinct compute values");
    };
    let mut warnings = Vec::new();
    let max_n = obs.iter().map(|o| o.params).fold(0.0, f64::max);
    let min_n = obs.iter().map(|o| o.params).fold(f64::MAX, f64::min);
    if f.last().map(|p| p.params >= max_n * (1.0 - 1e-6)) == Some(true) {
        warnings.push(
            "the largest model holds the frontier at the top compute: N_opt there is censored by the sizes tried"
                .into(),
        );
    }
    if f.first().map(|p| p.params <= min_n * (1.0 + 1e-6)) == Some(true) {
        warnings.push(
            "the smallest model holds the frontier at the lowest compute: N_opt there is censored by the sizes tried"
                .into(),
        );
    }
    Ok(EnvelopeFit { frontier: f, n_opt, d_opt, warnings })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::fit::chinchilla::law::Law;

    pub(crate) fn law() -> Law {
        Law { e: 1.8, a: 480.0, b: 2100.0, alpha: 0.35, beta: 0.37 }
    }

    /// Training curves of 14 sizes, all spanning the same compute range in
    /// which the optimal size lies well inside the sizes tried.
    pub(crate) fn curves() -> Vec<Obs> {
        let (c_lo, c_hi): (f64, f64) = (1e18, 1e21);
        let mut v = Vec::new();
        for i in 0..14 {
            let n = 2e7 * 1.5f64.powi(i);
            for k in 0..=60 {
                let c = c_lo * (c_hi / c_lo).powf(k as f64 / 60.0);
                let d = crate::flops::chinchilla_tokens(c, n);
                v.push(Obs {
                    run: format!("n{i}"),
                    params: n,
                    tokens: d,
                    flops: c,
                    loss: law().predict(n, d),
                    lr: None,
                    batch: None,
                    is_final: k == 60,
                });
            }
        }
        v
    }

    #[test]
    fn envelope_tracks_the_optimal_allocation() {
        let f = fit(&curves()).unwrap();
        let a = law().n_exponent();
        assert!((f.n_opt.exponent - a).abs() < 0.05, "{} vs {a}", f.n_opt.exponent);
        assert!((f.d_opt.exponent - (1.0 - a)).abs() < 0.05);
        // N_opt at mid-range within a size step (1.5x) of the analytic value.
        let c = 1e20;
        let ratio = f.n_opt.eval(c) / law().n_opt(c);
        assert!((1.0 / 1.5..1.5).contains(&ratio), "{ratio}");
    }

    #[test]
    fn final_points_only_is_an_error() {
        let finals: Vec<Obs> = curves().into_iter().filter(|o| o.is_final).collect();
        assert!(fit(&finals).is_err());
    }
}
