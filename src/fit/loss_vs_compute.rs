//! Loss against compute along the frontier: L(C) = a * C^b + c with a > 0,
//! b < 0, c >= 0, fitted to `envelope::frontier` points by least squares on
//! relative residuals. b is profiled out (for fixed b the model is linear in
//! a and c): a coarse scan over b, then golden-section refinement.

use crate::fit::envelope::frontier;
use crate::fit::Obs;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LossVsCompute {
    pub a: f64,
    pub b: f64,
    pub c: f64,
    pub n_points: usize,
    /// Root mean square of (fit - loss) / loss.
    pub rel_rmse: f64,
}

impl LossVsCompute {
    pub fn eval(&self, flops: f64) -> f64 {
        self.a * flops.powf(self.b) + self.c
    }
}

/// For fixed b: weighted LS for (a, c) with weights 1/L^2, c clamped at 0.
/// Returns (a, c, sum of squared relative residuals). x = (C / C_ref)^b.
fn solve_ac(x: &[f64], l: &[f64]) -> (f64, f64, f64) {
    let (mut s11, mut s1x, mut sxx, mut s1y, mut sxy) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for (xi, li) in x.iter().zip(l) {
        let w = 1.0 / (li * li);
        s11 += w;
        s1x += w * xi;
        sxx += w * xi * xi;
        s1y += w * li;
        sxy += w * xi * li;
    }
    let det = s11 * sxx - s1x * s1x;
    let (mut a, mut c) = ((s11 * sxy - s1x * s1y) / det, (sxx * s1y - s1x * sxy) / det);
    // A negative or NaN floor is clamped: c >= 0 by the law's form.
    if c.is_nan() || c < 0.0 || !det.is_finite() || det <= 0.0 {
        c = 0.0;
        a = sxy / sxx;
    }
    let sse = x.iter().zip(l).map(|(xi, li)| ((a * xi + c - li) / li).powi(2)).sum();
    (a, c, sse)
}

/// Fit L(C) on the frontier of all observations.
pub fn fit(obs: &[Obs]) -> Result<LossVsCompute> {
    let f = frontier(obs);
    // With only final points there may be no multi-run bins; fall back to
    // the lowest loss per distinct compute among final points.
    let pts: Vec<(f64, f64)> = if f.len() >= 3 {
        f.iter().map(|p| (p.flops, p.loss)).collect()
    } else {
        obs.iter().map(|o| (o.flops, o.loss)).collect()
    };
    if pts.len() < 3 {
        bail!("loss_vs_compute needs at least 3 points, got {}", pts.len());
    }
    let c_ref = pts.iter().map(|p| p.0.ln()).sum::<f64>() / pts.len() as f64;
    let lc: Vec<f64> = pts.iter().map(|p| p.0.ln() - c_ref).collect();
    let l: Vec<f64> = pts.iter().map(|p| p.1).collect();
    let sse_at = |b: f64| {
        let x: Vec<f64> = lc.iter().map(|v| (b * v).exp()).collect();
        solve_ac(&x, &l)
    };
    // Coarse scan of b in [-1, -0.001] (log-spaced magnitudes).
    let grid: Vec<f64> = (0..=60).map(|k| -(10f64.powf(-3.0 + 3.0 * k as f64 / 60.0))).collect();
    let (mut k_best, mut best) = (0, f64::INFINITY);
    for (k, b) in grid.iter().enumerate() {
        let s = sse_at(*b).2;
        if s < best {
            best = s;
            k_best = k;
        }
    }
    let (mut lo, mut hi) = (grid[k_best.saturating_sub(1)], grid[(k_best + 1).min(grid.len() - 1)]);
    if lo > hi {
        std::mem::swap(&mut lo, &mut hi);
    }
    let g = (5f64.sqrt() - 1.0) / 2.0;
    for _ in 0..100 {
        let m1 = hi - g * (hi - lo);
        let m2 = lo + g * (hi - lo);
        if sse_at(m1).2 <= sse_at(m2).2 {
            hi = m2;
        } else {
            lo = m1;
        }
    }
    let b = 0.5 * (lo + hi);
    let (a_ref, c, sse) = sse_at(b);
    // Undo the centring: a (C/C_ref)^b = a e^{-b ln C_ref} C^b.
    let a = a_ref * (-b * c_ref).exp();
    if a.is_nan() || a <= 0.0 {
        bail!("loss_vs_compute: loss does not decrease with compute");
    }
    Ok(LossVsCompute { a, b, c, n_points: pts.len(), rel_rmse: (sse / pts.len() as f64).sqrt() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_an_exact_curve() {
        let obs: Vec<Obs> = (0..12)
            .map(|i| {
                let c = 1e17 * 3f64.powi(i);
                Obs {
                    run: format!("r{i}"),
                    params: 1e8,
                    tokens: 1e9,
                    flops: c,
                    loss: 1.7 + 3.0e3 * c.powf(-0.2),
                    lr: None,
                    batch: None,
                    is_final: true,
                }
            })
            .collect();
        let f = fit(&obs).unwrap();
        assert!((f.b + 0.2).abs() < 1e-4, "{f:?}");
        assert!((f.c - 1.7).abs() < 1e-3, "{f:?}");
        assert!((f.eval(1e25) / (1.7 + 3.0e3 * 1e25f64.powf(-0.2)) - 1.0).abs() < 1e-4);
    }

    #[test]
    fn envelope_curves_give_a_decreasing_law() {
        let f = fit(&crate::fit::envelope::tests::curves()).unwrap();
        assert!(f.b < 0.0 && f.rel_rmse < 0.01, "{f:?}");
    }
}
