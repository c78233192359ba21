//! Hyperparameter scaling (as in DeepSeek LLM): within each compute budget,
//! the runs whose final loss is within `TOLERANCE` of the budget's best are
//! "near-optimal"; a power law through all near-optimal (C, value) pairs gives
//! the optimal learning rate eta_opt = a * C^b and batch size B_opt = c * C^d.

use crate::fit::chinchilla::backtest::final_per_run;
use crate::fit::regress::{budget_flops, budgets, power_law, PowerLaw};
use crate::fit::Obs;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

/// Relative loss margin for "near-optimal" (0.5% above the budget's best).
pub const TOLERANCE: f64 = 0.005;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HyperFit {
    /// "lr" or "batch".
    pub quantity: String,
    /// value = coef * C^exponent.
    pub law: PowerLaw,
    pub n_budgets: usize,
    pub tolerance: f64,
    /// The near-optimal (flops, value) pairs the law was fitted to.
    pub points: Vec<(f64, f64)>,
}

/// Of the final points that have `get`, per compute budget, the runs within `TOLERANCE` of the
/// budget's best loss: (the budget's compute, its best loss, the run's `get`); and how many
/// budgets there are. What both laws of near-optimal settings are fitted to.
fn near_optimal(obs: &[Obs], get: fn(&Obs) -> Option<f64>) -> (Vec<(f64, f64, f64)>, usize) {
    let finals: Vec<Obs> = final_per_run(obs).into_iter().filter(|o| get(o).is_some()).collect();
    let mut near = Vec::new();
    let mut n_budgets = 0;
    for g in budgets(&finals) {
        let c = budget_flops(&g);
        let best = g.iter().map(|o| o.loss).fold(f64::INFINITY, f64::min);
        n_budgets += 1;
        near.extend(g.iter().filter(|o| o.loss <= best * (1.0 + TOLERANCE)).filter_map(get).map(|v| (c, best, v)));
    }
    (near, n_budgets)
}

/// The power law through `points` (x, value) of the law `law`, fitted to runs that set
/// `quantity`; an error when they lie in fewer than 2 budgets or at one x (`xs` names x).
fn fit_power(law: &str, quantity: &str, xs: &str, points: &[(f64, f64)], n_budgets: usize) -> Result<PowerLaw> {
    if n_budgets < 2 {
        bail!("{law} needs runs with {quantity} set in at least 2 compute budgets, found {n_budgets}");
    }
    let x: Vec<f64> = points.iter().map(|p| p.0).collect();
    let v: Vec<f64> = points.iter().map(|p| p.1).collect();
    power_law(&x, &v).ok_or_else(|| anyhow::anyhow!("{law}: near-optimal runs do not span distinct {xs}"))
}

fn fit_quantity(obs: &[Obs], name: &str, get: fn(&Obs) -> Option<f64>) -> Result<HyperFit> {
    let (near, n_budgets) = near_optimal(obs, get);
    let points: Vec<(f64, f64)> = near.iter().map(|&(c, _, v)| (c, v)).collect();
    let law = fit_power(&format!("{name}_vs_compute"), name, "budgets", &points, n_budgets)?;
    Ok(HyperFit { quantity: name.into(), law, n_budgets, tolerance: TOLERANCE, points })
}

/// eta_opt(C) from runs that recorded `lr`.
pub fn fit_lr(obs: &[Obs]) -> Result<HyperFit> {
    fit_quantity(obs, "lr", |o| o.lr)
}

/// MiniCPM's batch-size law: the optimal batch as a power law in the loss reached,
/// B_opt = c * L^d, from each budget's near-optimal runs (value against the budget's best
/// loss). Needs runs at several batch sizes in at least 2 budgets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchVsLoss {
    /// batch = coef * loss^exponent.
    pub law: PowerLaw,
    pub n_budgets: usize,
    pub tolerance: f64,
    /// The near-optimal (best loss of the budget, batch) pairs the law was fitted to.
    pub points: Vec<(f64, f64)>,
}

pub fn fit_batch_vs_loss(obs: &[Obs]) -> Result<BatchVsLoss> {
    let (near, n_budgets) = near_optimal(obs, |o| o.batch);
    let points: Vec<(f64, f64)> = near.iter().map(|&(_, best, b)| (best, b)).collect();
    let law = fit_power("batch_vs_loss", "batch", "losses", &points, n_budgets)?;
    Ok(BatchVsLoss { law, n_budgets, tolerance: TOLERANCE, points })
}

/// B_opt(C) from runs that recorded `batch`.
pub fn fit_batch(obs: &[Obs]) -> Result<HyperFit> {
    fit_quantity(obs, "batch", |o| o.batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sweeps at 4 budgets whose loss is a bowl in ln(lr) around
    /// lr* = 0.3 C^-0.125 (and batch* = 0.29 C^0.33).
    fn sweeps() -> Vec<Obs> {
        let mut v = Vec::new();
        for (i, c) in [1e18f64, 1e19, 1e20, 1e21].iter().enumerate() {
            let lr_star = 0.3 * c.powf(-0.125);
            let b_star = 0.29 * c.powf(0.33);
            for k in -4..=4 {
                let f = 2f64.powf(k as f64 * 0.5);
                let dl = 0.02 * (f.ln()).powi(2);
                v.push(Obs {
                    run: format!("c{i}-k{k}"),
                    params: 1e8,
                    tokens: c / 6e8,
                    flops: *c,
                    loss: 3.0 - 0.1 * i as f64 + dl,
                    lr: Some(lr_star * f),
                    batch: Some(b_star * f),
                    is_final: true,
                });
            }
        }
        v
    }

    #[test]
    fn recovers_lr_and_batch_exponents() {
        let lr = fit_lr(&sweeps()).unwrap();
        assert!((lr.law.exponent + 0.125).abs() < 1e-9, "{lr:?}");
        assert!((lr.law.coef / 0.3 - 1.0).abs() < 1e-6);
        assert_eq!(lr.n_budgets, 4);
        let b = fit_batch(&sweeps()).unwrap();
        assert!((b.law.exponent - 0.33).abs() < 1e-9);
    }

    #[test]
    fn recovers_minicpm_batch_vs_loss() {
        // Four budgets whose best losses are 3.0 .. 2.4; optimal batch 5 * L^-6 (MiniCPM form).
        let mut v = Vec::new();
        for (i, l_best) in [3.0f64, 2.8, 2.6, 2.4].iter().enumerate() {
            let c = 1e18 * 10f64.powi(i as i32);
            for k in -3..=3 {
                let f = 2f64.powf(k as f64 * 0.5);
                v.push(Obs {
                    run: format!("c{i}-k{k}"),
                    params: 1e8,
                    tokens: c / 6e8,
                    flops: c,
                    loss: l_best + 0.5 * (f.ln()).powi(2),
                    lr: None,
                    batch: Some(5.0 * l_best.powf(-6.0) * f),
                    is_final: true,
                });
            }
        }
        let b = fit_batch_vs_loss(&v).unwrap();
        assert!((b.law.exponent + 6.0).abs() < 1e-9, "{b:?}");
        assert!((b.law.coef / 5.0 - 1.0).abs() < 1e-6);
        assert_eq!((b.n_budgets, b.points.len()), (4, 4));
    }

    #[test]
    fn missing_lr_is_an_error() {
        let mut s = sweeps();
        s.iter_mut().for_each(|o| o.lr = None);
        assert!(fit_lr(&s).unwrap_err().to_string().contains("lr"));
    }
}
