//! Chinchilla approach 2 (IsoFLOP profiles): group the runs' final points by
//! compute budget, fit a parabola of loss against ln N within each budget,
//! take its vertex as that budget's N_opt (D_opt = C / 6 N_opt), and fit
//! N_opt ~ C^a and D_opt ~ C^b by log-log OLS across budgets. Budgets whose
//! samples sit lopsidedly around the vertex, or miss it, are flagged: that is
//! the known source of bias in this method.

use crate::fit::chinchilla::backtest::final_per_run;
use crate::fit::chinchilla::validate::count_distinct;
use crate::fit::regress::{budget_flops, budgets, power_law, quadratic, PowerLaw};
use crate::fit::Obs;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    pub flops: f64,
    pub n_runs: usize,
    pub n_opt: f64,
    pub d_opt: f64,
    /// Parabola value at the vertex.
    pub loss_opt: f64,
    /// Smallest and largest N sampled in this budget.
    pub n_min: f64,
    pub n_max: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IsoflopFit {
    pub budgets: Vec<Budget>,
    /// N_opt = coef * C^exponent.
    pub n_opt: PowerLaw,
    /// D_opt = coef * C^exponent.
    pub d_opt: PowerLaw,
    pub warnings: Vec<String>,
}

/// Fit approach 2 on the runs' final points.
pub fn fit(obs: &[Obs]) -> Result<IsoflopFit> {
    let finals = final_per_run(obs);
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    for g in budgets(&finals) {
        let c = budget_flops(&g);
        if count_distinct(g.iter().map(|o| o.params)) < 3 {
            continue;
        }
        let u: Vec<f64> = g.iter().map(|o| o.params.ln()).collect();
        let l: Vec<f64> = g.iter().map(|o| o.loss).collect();
        let Some([c0, c1, c2]) = quadratic(&u, &l) else {
            continue;
        };
        if c2 <= 0.0 {
            warnings.push(format!("budget {c:.3e}: loss vs ln N is not convex; skipped"));
            continue;
        }
        let v = -c1 / (2.0 * c2);
        let (lo, hi) = u.iter().fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
        if v < lo || v > hi {
            warnings.push(format!(
                "budget {c:.3e}: vertex N = {:.3e} is outside the sampled range [{:.3e}, {:.3e}]",
                v.exp(),
                lo.exp(),
                hi.exp()
            ));
        } else if ((v - lo) - (hi - v)).abs() > 0.5 * (hi - lo) {
            // The vertex sits in the outer quarter of the sampled log-range.
            warnings.push(format!(
                "budget {c:.3e}: sampled N range is asymmetric about the vertex N = {:.3e} (parabola bias likely)",
                v.exp()
            ));
        }
        let n_opt = v.exp();
        out.push(Budget {
            flops: c,
            n_runs: g.len(),
            n_opt,
            d_opt: crate::flops::chinchilla_tokens(c, n_opt),
            loss_opt: c0 + c1 * v + c2 * v * v,
            n_min: lo.exp(),
            n_max: hi.exp(),
        });
    }
    if out.len() < 2 {
        bail!("isoflop needs at least 2 compute budgets with 3+ model sizes each, found {}", out.len());
    }
    let cs: Vec<f64> = out.iter().map(|b| b.flops).collect();
    let ns: Vec<f64> = out.iter().map(|b| b.n_opt).collect();
    let ds: Vec<f64> = out.iter().map(|b| b.d_opt).collect();
    let (Some(n_opt), Some(d_opt)) = (power_law(&cs, &ns), power_law(&cs, &ds)) else {
        bail!("isoflop: budgets do not span distinct compute values");
    };
    Ok(IsoflopFit { budgets: out, n_opt, d_opt, warnings })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fit::chinchilla::law::Law;

    fn law() -> Law {
        Law { e: 1.8, a: 480.0, b: 2100.0, alpha: 0.35, beta: 0.37 }
    }

    /// IsoFLOP runs at `budgets`, N spread `factors` around the true optimum.
    fn runs(factors: &[f64]) -> Vec<Obs> {
        let mut v = Vec::new();
        for (i, c) in [1e18f64, 1e19, 1e20, 1e21].iter().enumerate() {
            let n0 = law().n_opt(*c);
            for (j, f) in factors.iter().enumerate() {
                let n = n0 * f;
                let d = crate::flops::chinchilla_tokens(*c, n);
                v.push(Obs {
                    run: format!("c{i}-n{j}"),
                    params: n,
                    tokens: d,
                    flops: *c,
                    loss: law().predict(n, d),
                    lr: None,
                    batch: None,
                    is_final: true,
                });
            }
        }
        v
    }

    #[test]
    fn recovers_exponents_from_symmetric_profiles() {
        let f = fit(&runs(&[0.25, 0.4, 0.63, 1.0, 1.6, 2.5, 4.0])).unwrap();
        let a = law().n_exponent();
        assert_eq!(f.budgets.len(), 4);
        assert!((f.n_opt.exponent - a).abs() < 0.01, "{} vs {a}", f.n_opt.exponent);
        assert!((f.d_opt.exponent - (1.0 - a)).abs() < 0.01);
        assert!(f.warnings.is_empty(), "{:?}", f.warnings);
    }

    #[test]
    fn flags_lopsided_and_missed_vertices() {
        let lop = fit(&runs(&[0.8, 1.0, 1.6, 2.5, 4.0, 6.3, 10.0])).unwrap();
        assert!(lop.warnings.iter().any(|w| w.contains("asymmetric")), "{:?}", lop.warnings);
        let miss = fit(&runs(&[2.0, 3.0, 4.5, 7.0])).unwrap();
        assert!(miss.warnings.iter().any(|w| w.contains("outside")), "{:?}", miss.warnings);
    }

    #[test]
    fn too_few_budgets_is_an_error() {
        let one: Vec<Obs> = runs(&[0.5, 1.0, 2.0]).into_iter().take(3).collect();
        assert!(fit(&one).is_err());
    }
}
