//! The Chinchilla approach-3 objective: the summed Huber loss of log-space
//! residuals of the log-sum-exp law, with its analytic gradient. It owns the
//! log-transformed, weighted data set (`LogData`) that every optimiser in
//! `crate::fit` evaluates, so the grid search and the bootstrap minimise exactly
//! the same function.

use crate::fit::chinchilla::fastmath::{exp_fast, ln_pos};

/// Hoffmann et al.'s Huber threshold on log-loss residuals.
pub const HUBER_DELTA: f64 = 1e-3;

/// Parameter vector layout `[a, b, e, alpha, beta]` with A = e^a, B = e^b,
/// E = e^e (the order Epoch's notebook uses, which keeps the grid comparable).
pub type Theta = [f64; 5];

/// Observations in the log domain. `w` holds per-point multiplicities: 1 for a
/// plain fit, the resample counts for a bootstrap refit (zero-count points are
/// dropped, so a resample costs less than the full set).
#[derive(Clone, Debug)]
pub struct LogData {
    pub log_n: Vec<f64>,
    pub log_d: Vec<f64>,
    pub log_l: Vec<f64>,
    pub w: Vec<f64>,
    pub delta: f64,
}

impl LogData {
    /// Build from raw (N, D, L) triples; callers validate positivity first.
    pub fn new(n: &[f64], d: &[f64], l: &[f64]) -> Self {
        LogData {
            log_n: n.iter().map(|v| v.ln()).collect(),
            log_d: d.iter().map(|v| v.ln()).collect(),
            log_l: l.iter().map(|v| v.ln()).collect(),
            w: vec![1.0; n.len()],
            delta: HUBER_DELTA,
        }
    }

    pub fn len(&self) -> usize {
        self.log_n.len()
    }

    pub fn is_empty(&self) -> bool {
        self.log_n.is_empty()
    }

    /// Sum of the weights: the number of points the objective sums over (a
    /// bootstrap resample's counts sum to the number of points it was drawn from).
    pub fn total_weight(&self) -> f64 {
        self.w.iter().sum()
    }

    /// A copy weighted by `counts` (same length as the data); zero counts are
    /// removed rather than multiplied by zero.
    pub fn reweighted(&self, counts: &[u32]) -> Self {
        let keep: Vec<usize> = (0..self.len()).filter(|&i| counts[i] > 0).collect();
        LogData {
            log_n: keep.iter().map(|&i| self.log_n[i]).collect(),
            log_d: keep.iter().map(|&i| self.log_d[i]).collect(),
            log_l: keep.iter().map(|&i| self.log_l[i]).collect(),
            w: keep.iter().map(|&i| self.w[i] * counts[i] as f64).collect(),
            delta: self.delta,
        }
    }

    /// A copy with every weight multiplied by `f` (a bag-of-little-bootstraps subset stands
    /// for all the points: b points weighted n / b each).
    pub fn scaled(&self, f: f64) -> Self {
        LogData { w: self.w.iter().map(|w| w * f).collect(), ..self.clone() }
    }

    /// A subset of the points by index (weights carried over).
    pub fn subset(&self, idx: &[usize]) -> Self {
        LogData {
            log_n: idx.iter().map(|&i| self.log_n[i]).collect(),
            log_d: idx.iter().map(|&i| self.log_d[i]).collect(),
            log_l: idx.iter().map(|&i| self.log_l[i]).collect(),
            w: idx.iter().map(|&i| self.w[i]).collect(),
            delta: self.delta,
        }
    }

    /// Objective value only.
    pub fn value(&self, p: &Theta) -> f64 {
        let mut g = [0.0; 5];
        self.value_grad(p, &mut g)
    }

    /// Objective and gradient in one pass: the softmax weights of the three
    /// LSE terms are shared by both. Dispatches to an AVX2 build of the same
    /// kernel when the CPU has it (identical arithmetic, wider vectors).
    pub fn value_grad(&self, p: &Theta, g: &mut Theta) -> f64 {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2, checked just above.
                return unsafe { self.value_grad_avx2(p, g) };
            }
        }
        self.kernel(p, g)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn value_grad_avx2(&self, p: &Theta, g: &mut Theta) -> f64 {
        self.kernel(p, g)
    }

    /// Points are processed in blocks: an element-wise pass with no
    /// loop-carried dependency (vectorisable) fills stack buffers, then plain
    /// sums reduce them in a fixed order (so results do not depend on the
    /// vector width).
    #[inline(always)]
    fn kernel(&self, p: &Theta, g: &mut Theta) -> f64 {
        const BLK: usize = 64;
        let [a, b, e, al, be] = *p;
        // E = e^e is the same for every point, so it is taken out of the loop;
        // the other two LSE terms are exponentiated unshifted (see the loop).
        let big_e = exp_fast(e);
        let delta = self.delta;
        let n = self.log_n.len();
        let mut f = 0.0;
        let mut acc = [0.0f64; 5];
        let mut start = 0;
        while start < n {
            let len = BLK.min(n - start);
            let xs = &self.log_n[start..start + len];
            let ys = &self.log_d[start..start + len];
            let ls = &self.log_l[start..start + len];
            let ws = &self.w[start..start + len];
            let mut buf = [[0.0f64; BLK]; 4];
            for j in 0..len {
                let (x, y) = (xs[j], ys[j]);
                let t1 = a - al * x;
                let t2 = b - be * y;
                // No max-shift: exp_fast clamps at e^709, and for a max term
                // above 700 the LSE is that term to double precision, so the
                // value stays finite and consistent with the gradient even on
                // wild line-search trial points (argmin aborts on non-finite).
                let e1 = exp_fast(t1);
                let e2 = exp_fast(t2);
                let s = e1 + e2 + big_e;
                let t12 = if t1 > t2 { t1 } else { t2 };
                let tmax = if t12 > e { t12 } else { e };
                let pred = if tmax < 700.0 { ln_pos(s) } else { tmax };
                let r = pred - ls[j];
                let ar = r.abs();
                let inside = ar <= delta;
                let h = if inside { 0.5 * r * r } else { delta * (ar - 0.5 * delta) };
                let dh = if inside { r } else { delta.copysign(r) };
                let w = ws[j];
                let c = w * dh / s;
                buf[0][j] = w * h;
                buf[1][j] = c;
                buf[2][j] = c * e1;
                buf[3][j] = c * e2;
            }
            for j in 0..len {
                f += buf[0][j];
                acc[0] += buf[2][j];
                acc[1] += buf[3][j];
                acc[2] += buf[1][j];
                acc[3] -= buf[2][j] * xs[j];
                acc[4] -= buf[3][j] * ys[j];
            }
            start += len;
        }
        acc[2] *= big_e;
        *g = acc;
        f
    }

    /// Largest absolute gradient component, used as a convergence measure.
    pub fn grad_inf_norm(&self, p: &Theta) -> f64 {
        let mut g = [0.0; 5];
        self.value_grad(p, &mut g);
        g.iter().fold(0.0f64, |m, v| m.max(v.abs()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy() -> LogData {
        let n: [f64; 6] = [1e7, 3e7, 1e8, 3e8, 1e9, 1e8];
        let d: [f64; 6] = [1e9, 3e9, 1e10, 2e9, 5e10, 4e8];
        let l: Vec<f64> = n
            .iter()
            .zip(d.iter())
            .enumerate()
            .map(|(i, (n, d))| 1.7 + 400.0 / n.powf(0.34) + 410.0 / d.powf(0.28) + 0.01 * (i as f64 - 2.5))
            .collect();
        LogData::new(&n, &d, &l)
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let data = toy();
        // Points on both sides of the Huber kink are exercised by these two.
        for p in [[6.0, 6.0, 0.5, 0.34, 0.28], [5.0, 7.0, 0.2, 0.3, 0.4]] {
            let mut g = [0.0; 5];
            data.value_grad(&p, &mut g);
            for k in 0..5 {
                let h = 1e-7;
                let mut pp = p;
                let mut pm = p;
                pp[k] += h;
                pm[k] -= h;
                let fd = (data.value(&pp) - data.value(&pm)) / (2.0 * h);
                assert!((fd - g[k]).abs() <= 1e-6 * (1.0 + g[k].abs()), "k={k} fd={fd} g={}", g[k]);
            }
        }
    }

    #[test]
    fn reweighting_equals_duplication() {
        let data = toy();
        let counts = [2u32, 0, 1, 3, 0, 1];
        let rw = data.reweighted(&counts);
        let dup_idx: Vec<usize> =
            counts.iter().enumerate().flat_map(|(i, &c)| std::iter::repeat_n(i, c as usize)).collect();
        let dup = data.subset(&dup_idx);
        let p = [6.0, 6.0, 0.5, 0.34, 0.28];
        assert!((rw.value(&p) - dup.value(&p)).abs() < 1e-15);
        assert_eq!(rw.len(), 4);
    }
}
