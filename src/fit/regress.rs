//! Small least-squares helpers shared by the auxiliary laws: straight-line
//! OLS, power laws fitted by OLS in log-log space, a quadratic fit, and the
//! grouping of runs into compute budgets.

use crate::fit::Obs;
use serde::{Deserialize, Serialize};

/// y = coef * x^exponent, fitted by OLS of ln y on ln x.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PowerLaw {
    pub coef: f64,
    pub exponent: f64,
    /// R^2 of the log-log regression.
    pub r2: f64,
    pub n_points: usize,
}

impl PowerLaw {
    pub fn eval(&self, x: f64) -> f64 {
        self.coef * x.powf(self.exponent)
    }
}

/// The median of the finite values (the mean of the middle two for an even count); None when
/// there are none. The crate's one median: fits, the comparison report and the benches use it.
pub fn median(v: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 { v[m] } else { 0.5 * (v[m - 1] + v[m]) })
}

/// OLS line y = a + b x; returns (a, b, r2), or `None` with < 2 distinct x.
pub fn ols(x: &[f64], y: &[f64]) -> Option<(f64, f64, f64)> {
    let n = x.len() as f64;
    if x.len() < 2 {
        return None;
    }
    let mx = x.iter().sum::<f64>() / n;
    let my = y.iter().sum::<f64>() / n;
    let sxx: f64 = x.iter().map(|v| (v - mx).powi(2)).sum();
    let sxy: f64 = x.iter().zip(y).map(|(u, v)| (u - mx) * (v - my)).sum();
    let syy: f64 = y.iter().map(|v| (v - my).powi(2)).sum();
    if sxx <= 1e-300 {
        return None;
    }
    let b = sxy / sxx;
    let a = my - b * mx;
    let r2 = if syy > 0.0 { (sxy * sxy) / (sxx * syy) } else { 1.0 };
    Some((a, b, r2))
}

/// Power law through positive (x, y) pairs; `None` if under-determined.
pub fn power_law(x: &[f64], y: &[f64]) -> Option<PowerLaw> {
    let lx: Vec<f64> = x.iter().map(|v| v.ln()).collect();
    let ly: Vec<f64> = y.iter().map(|v| v.ln()).collect();
    let (a, b, r2) = ols(&lx, &ly)?;
    Some(PowerLaw { coef: a.exp(), exponent: b, r2, n_points: x.len() })
}

/// Least-squares parabola y = c0 + c1 x + c2 x^2 (x centred internally for
/// conditioning); `None` with < 3 points or a singular system.
pub fn quadratic(x: &[f64], y: &[f64]) -> Option<[f64; 3]> {
    if x.len() < 3 {
        return None;
    }
    let m = x.iter().sum::<f64>() / x.len() as f64;
    let mut s = [0.0f64; 5];
    let mut t = [0.0f64; 3];
    for (xi, yi) in x.iter().zip(y) {
        let u = xi - m;
        let mut p = 1.0;
        for k in 0..5 {
            if k < 3 {
                t[k] += p * yi;
            }
            s[k] += p;
            p *= u;
        }
    }
    let a = [[s[0], s[1], s[2]], [s[1], s[2], s[3]], [s[2], s[3], s[4]]];
    let c = solve3(a, t)?;
    // Undo the centring: c0 + c1 (x-m) + c2 (x-m)^2.
    Some([c[0] - c[1] * m + c[2] * m * m, c[1] - 2.0 * c[2] * m, c[2]])
}

/// Solve a 3x3 system by Cramer's rule; `None` if (nearly) singular.
pub fn solve3(a: [[f64; 3]; 3], b: [f64; 3]) -> Option<[f64; 3]> {
    let det = |m: &[[f64; 3]; 3]| {
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    };
    let d = det(&a);
    let scale: f64 = a.iter().flatten().map(|v| v.abs()).fold(0.0, f64::max);
    if !d.is_finite() || d.abs() <= 1e-13 * scale.powi(3) {
        return None;
    }
    let mut out = [0.0; 3];
    for (k, o) in out.iter_mut().enumerate() {
        let mut m = a;
        for r in 0..3 {
            m[r][k] = b[r];
        }
        *o = det(&m) / d;
    }
    Some(out)
}

/// Group observations into compute budgets: sorted by flops, a new budget
/// starts when a point's flops exceed the budget's first by more than 10%.
pub fn budgets(points: &[Obs]) -> Vec<Vec<Obs>> {
    let mut v: Vec<Obs> = points.to_vec();
    v.sort_by(|a, b| a.flops.total_cmp(&b.flops));
    let mut out: Vec<Vec<Obs>> = Vec::new();
    for o in v {
        match out.last_mut() {
            Some(g) if o.flops <= g[0].flops * 1.1 => g.push(o),
            _ => out.push(vec![o]),
        }
    }
    out
}

/// Geometric mean of a budget's flops.
pub fn budget_flops(g: &[Obs]) -> f64 {
    (g.iter().map(|o| o.flops.ln()).sum::<f64>() / g.len() as f64).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_law_and_quadratic_recover_exact_data() {
        let x = [1.0, 10.0, 100.0, 1000.0];
        let y: Vec<f64> = x.iter().map(|v: &f64| 3.0 * v.powf(0.5)).collect();
        let p = power_law(&x, &y).unwrap();
        assert!((p.coef - 3.0).abs() < 1e-9 && (p.exponent - 0.5).abs() < 1e-12);
        let xs = [20.0, 21.0, 22.0, 23.5, 25.0];
        let ys: Vec<f64> = xs.iter().map(|u| 4.0 - 0.3 * u + 0.01 * u * u).collect();
        let c = quadratic(&xs, &ys).unwrap();
        assert!((c[0] - 4.0).abs() < 1e-7 && (c[1] + 0.3).abs() < 1e-8 && (c[2] - 0.01).abs() < 1e-10);
        assert!(quadratic(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]).is_none());
    }
}
