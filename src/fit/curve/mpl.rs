//! The multi-power law (Luo et al. 2025, arXiv 2503.12811) extended across model sizes:
//!
//! L(N, t) = L0(N) + A(N) (S1(t) + S_W)^(-alpha) - B(N) sum_k (eta_{k-1} - eta_k) G(eta_k^(-gamma) S_k(t))
//!            + D(N) exp(-(S1(t) + S_W) / tau(N)) + D2(N) exp(-(S1(t) + S_W) / tau2(N)),
//! G(x) = 1 - (C x + 1)^(-beta), with L0(N) = E + P x^(-p), A(N) = A x^(-a), B(N) = B x^(-b),
//! D(N) = D x^(-d), tau(N) = tau x^(-k), D2(N) = D2 x^(-d2), tau2(N) = tau2 x^(-k2) and
//! x = N / n_ref.
//!
//! At one model size (`Layout::PerSize`) it is exactly the paper's seven-parameter law
//! (L0 = E, no D term). The D term, across sizes only, is the early-time transient: just after
//! warmup a small model's loss still falls faster than any power of the summed learning rate
//! (the paper's curves start thousands of steps later, where it has died out), and it is what
//! the power-law term otherwise bends to fit, at the cost of the rest of the curve. It decays
//! with the summed learning rate, its amplitude and its scale power laws of N (on this
//! project's sweeps larger models shed it a little sooner: k = 0.06 to 0.12).
//!
//! The D2 term, across sizes only and only where the fit finds it pays (`solve.rs` fits the
//! law without it first), is a second, slow saturation: a loss that is a mixture of sources
//! learned at different speeds (the built-in Markov and grammar domains; prose and code) has
//! a part that larger models exhaust within the sweep's horizons, while the rest still
//! follows the power law. One power law in S1 cannot bend for it; the held-out-length error
//! of `curve_law` fell from 0.60%, 0.50% and 0.47% to 0.38%, 0.36% and 0.41% with it
//! (README). It dies out at long horizons, so a long target run's late curve is the power
//! law's.
//!
//! Across sizes the irreducible part, the power-law amplitude and the annealing
//! amplitude scale as power laws of N (as Chinchilla's A/N^alpha does), while the shapes
//! (alpha, C, beta, gamma) are shared: the paper's fits at 25M to 400M vary those little
//! (its repository: beta 0.58-0.60, gamma 0.64-0.66), and sharing them is what lets a
//! sweep's small models predict a larger model's curve. The LR-annealing law of Tissue et
//! al. (2024, arXiv 2408.11029), L = L0 + A S1^(-alpha) - C S2, is the limit of small C x,
//! where G is linear. This file owns the parameter vector and the value and gradient of the
//! fit's objective (Huber on log loss); `solve.rs` owns the search.

use super::prep::Prepared;
use serde::{Deserialize, Serialize};

/// Which parameters are fitted: one model size (no N dependence) or several.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    PerSize,
    AcrossSizes,
}

/// Slots of the unconstrained parameter vector (logs of positive quantities).
pub const NP: usize = 19;
pub const LN_E: usize = 0;
pub const LN_P: usize = 1;
pub const P_EXP: usize = 2;
pub const LN_A: usize = 3;
pub const A_EXP: usize = 4;
pub const LN_ALPHA: usize = 5;
pub const LN_B: usize = 6;
pub const B_EXP: usize = 7;
pub const LN_C: usize = 8;
pub const LN_BETA: usize = 9;
pub const LN_GAMMA: usize = 10;
pub const LN_D: usize = 11;
pub const D_EXP: usize = 12;
pub const LN_TAU: usize = 13;
pub const TAU_EXP: usize = 14;
pub const LN_D2: usize = 15;
pub const D2_EXP: usize = 16;
pub const LN_TAU2: usize = 17;
pub const TAU2_EXP: usize = 18;
/// The slow term's slots: searched only from a start that has the term (`slow_on`).
pub const SLOW: [usize; 4] = [LN_D2, D2_EXP, LN_TAU2, TAU2_EXP];
/// ln D2 of a law without the slow term: below `OFF + 1` the term is exactly zero.
pub const OFF: f64 = -30.0;

/// Whether the parameter vector has the slow term.
pub fn slow_on(t: &[f64; NP]) -> bool {
    t[LN_D2] > OFF + 1.0
}

impl Layout {
    /// The slots this layout fits; the others are fixed (at 0: no size dependence).
    pub fn free(self) -> &'static [usize] {
        match self {
            Layout::PerSize => &[LN_E, LN_A, LN_ALPHA, LN_B, LN_C, LN_BETA, LN_GAMMA],
            Layout::AcrossSizes => &[
                LN_E, LN_P, P_EXP, LN_A, A_EXP, LN_ALPHA, LN_B, B_EXP, LN_C, LN_BETA, LN_GAMMA, LN_D, D_EXP, LN_TAU,
                TAU_EXP,
            ],
        }
    }
}

/// The fitted law as it appears in fit.json.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CurveLaw {
    pub layout: Layout,
    /// Model size the N dependence is measured from (the geometric mean of the fitted sizes).
    pub n_ref: f64,
    #[serde(rename = "E")]
    pub e: f64,
    /// L0(N) = E + P (N/n_ref)^-p (P = 0 per size: L0 = E).
    #[serde(rename = "P")]
    pub p: f64,
    pub p_exp: f64,
    #[serde(rename = "A")]
    pub a: f64,
    pub a_exp: f64,
    pub alpha: f64,
    #[serde(rename = "B")]
    pub b: f64,
    pub b_exp: f64,
    #[serde(rename = "C")]
    pub c: f64,
    pub beta: f64,
    pub gamma: f64,
    /// D(N) = D (N/n_ref)^-d, the early-time amplitude, decaying as exp(-S1 / tau(N)) with
    /// tau(N) = tau (N/n_ref)^-tau_exp (D = 0 per size: no such term).
    #[serde(rename = "D", default)]
    pub d: f64,
    #[serde(default)]
    pub d_exp: f64,
    #[serde(default = "unit")]
    pub tau: f64,
    #[serde(default)]
    pub tau_exp: f64,
    /// D2(N) = D2 (N/n_ref)^-d2_exp, the slow saturation's amplitude, decaying as
    /// exp(-S1 / tau2(N)) with tau2(N) = tau2 (N/n_ref)^-tau2_exp (D2 = 0: no such term; a
    /// fit.json written before the term existed reads so).
    #[serde(rename = "D2", default)]
    pub d2: f64,
    #[serde(default)]
    pub d2_exp: f64,
    #[serde(default = "unit")]
    pub tau2: f64,
    #[serde(default)]
    pub tau2_exp: f64,
}

fn unit() -> f64 {
    1.0
}

impl CurveLaw {
    pub fn from_theta(layout: Layout, n_ref: f64, t: &[f64; NP]) -> CurveLaw {
        let across = layout == Layout::AcrossSizes;
        let slow = across && slow_on(t);
        CurveLaw {
            layout,
            n_ref,
            e: t[LN_E].exp(),
            p: if across { t[LN_P].exp() } else { 0.0 },
            p_exp: if across { t[P_EXP] } else { 0.0 },
            a: t[LN_A].exp(),
            a_exp: if across { t[A_EXP] } else { 0.0 },
            alpha: t[LN_ALPHA].exp(),
            b: t[LN_B].exp(),
            b_exp: if across { t[B_EXP] } else { 0.0 },
            c: t[LN_C].exp(),
            beta: t[LN_BETA].exp(),
            gamma: t[LN_GAMMA].exp(),
            d: if across { t[LN_D].exp() } else { 0.0 },
            d_exp: if across { t[D_EXP] } else { 0.0 },
            tau: if across { t[LN_TAU].exp() } else { 1.0 },
            tau_exp: if across { t[TAU_EXP] } else { 0.0 },
            d2: if slow { t[LN_D2].exp() } else { 0.0 },
            d2_exp: if slow { t[D2_EXP] } else { 0.0 },
            tau2: if slow { t[LN_TAU2].exp() } else { 1.0 },
            tau2_exp: if slow { t[TAU2_EXP] } else { 0.0 },
        }
    }

    pub fn to_theta(&self) -> [f64; NP] {
        let ln = |v: f64| v.max(1e-300).ln();
        let mut t = [0.0; NP];
        t[LN_E] = ln(self.e);
        // An amplitude that underflowed to 0 turns its term off at every size: its exponent,
        // which only a vanishing amplitude left free to drift (p = 641 has been seen), would
        // otherwise bring it back as an overflow at the sizes below n_ref.
        t[LN_P] = if self.p > 0.0 { self.p.ln() } else { -30.0 };
        t[P_EXP] = if self.p > 0.0 { self.p_exp } else { 0.0 };
        t[LN_A] = ln(self.a);
        t[A_EXP] = self.a_exp;
        t[LN_ALPHA] = ln(self.alpha);
        t[LN_B] = ln(self.b);
        t[B_EXP] = self.b_exp;
        t[LN_C] = ln(self.c);
        t[LN_BETA] = ln(self.beta);
        t[LN_GAMMA] = ln(self.gamma);
        t[LN_D] = if self.d > 0.0 { self.d.ln() } else { -30.0 };
        t[D_EXP] = if self.d > 0.0 { self.d_exp } else { 0.0 };
        t[LN_TAU] = ln(self.tau);
        t[TAU_EXP] = self.tau_exp;
        t[LN_D2] = if self.d2 > 0.0 { self.d2.ln() } else { OFF };
        t[D2_EXP] = if self.d2 > 0.0 { self.d2_exp } else { 0.0 };
        t[LN_TAU2] = ln(self.tau2);
        t[TAU2_EXP] = self.tau2_exp;
        t
    }

    /// The predicted loss at every evaluation of a prepared run.
    pub fn predict(&self, run: &Prepared) -> Vec<f64> {
        let (t, mut g) = (self.to_theta(), [0.0; NP]);
        let k = AtSize::new(&t, self.layout, run);
        (0..run.ln_s1.len()).map(|i| point(&t, &k, run, i, &mut g, false)).collect()
    }

    pub fn is_finite(&self) -> bool {
        [
            self.e,
            self.p,
            self.p_exp,
            self.a,
            self.a_exp,
            self.alpha,
            self.b,
            self.b_exp,
            self.c,
            self.beta,
            self.gamma,
            self.d,
            self.d_exp,
            self.tau,
            self.tau_exp,
            self.d2,
            self.d2_exp,
            self.tau2,
            self.tau2_exp,
        ]
        .iter()
        .all(|v| v.is_finite())
    }
}

/// What a run's every evaluation shares: the law's amplitudes at its model size and the
/// shapes and each decay chunk's eta^-gamma, computed once per run rather than per point or
/// pair (the fit evaluates the objective thousands of times).
struct AtSize {
    across: bool,
    e: f64,
    pterm: f64,
    a: f64,
    b: f64,
    alpha: f64,
    c: f64,
    beta: f64,
    gamma: f64,
    inv_tau: f64,
    /// The slow term's ln D2(N) and 1 / tau2(N), if the law has it.
    slow: Option<(f64, f64)>,
    /// Per decay chunk of the run: eta^-gamma.
    eta_g: Vec<f64>,
}

impl AtSize {
    fn new(t: &[f64; NP], layout: Layout, run: &Prepared) -> AtSize {
        let across = layout == Layout::AcrossSizes;
        let lx = run.ln_x;
        let gamma = t[LN_GAMMA].exp();
        AtSize {
            across,
            e: t[LN_E].exp(),
            pterm: if across { (t[LN_P] - t[P_EXP] * lx).exp() } else { 0.0 },
            a: if across { (t[LN_A] - t[A_EXP] * lx).exp() } else { t[LN_A].exp() },
            b: if across { (t[LN_B] - t[B_EXP] * lx).exp() } else { t[LN_B].exp() },
            alpha: t[LN_ALPHA].exp(),
            c: t[LN_C].exp(),
            beta: t[LN_BETA].exp(),
            gamma,
            inv_tau: (t[TAU_EXP] * lx - t[LN_TAU]).exp(),
            slow: (across && slow_on(t)).then(|| (t[LN_D2] - t[D2_EXP] * lx, (t[TAU2_EXP] * lx - t[LN_TAU2]).exp())),
            eta_g: run.chunk_ln_eta.iter().map(|&l| (-gamma * l).exp()).collect(),
        }
    }
}

/// The prediction at evaluation `i` of `run` and, if `want_grad`, its gradient in `g`
/// (`k`: `AtSize::new(t, layout, run)`).
#[inline]
fn point(t: &[f64; NP], k: &AtSize, run: &Prepared, i: usize, g: &mut [f64; NP], want_grad: bool) -> f64 {
    let lx = run.ln_x;
    let (across, e, pterm, a, b) = (k.across, k.e, k.pterm, k.a, k.b);
    let (alpha, c, beta, gamma, inv_tau) = (k.alpha, k.c, k.beta, k.gamma, k.inv_tau);
    let ln_s = run.ln_s1[i];
    let pw = (-alpha * ln_s).min(700.0).exp();
    // The annealing sum and its derivatives in ln C, ln beta, ln gamma.
    let (mut sg, mut sc, mut sb, mut sgm) = (0.0, 0.0, 0.0, 0.0);
    for q in &run.pairs[run.off[i]..run.off[i + 1]] {
        // Capped so that a wild trial step of the line search overflows nowhere.
        let z = (q.u * k.eta_g[q.chunk]).min(1e304);
        let cz1 = c * z + 1.0;
        let lq = cz1.ln();
        let qb = (-beta * lq).exp();
        sg += q.drop * (1.0 - qb);
        if want_grad {
            // d/dx (1 - (Cx+1)^-beta) = beta C (Cx+1)^(-beta-1).
            let dgdz = beta * c * qb / cz1;
            sc += q.drop * beta * qb / cz1 * z * c;
            sb += q.drop * qb * lq * beta;
            sgm += q.drop * dgdz * (-run.chunk_ln_eta[q.chunk] * z) * gamma;
        }
    }
    // The early-time term; exp(-S1/tau) underflows to 0 harmlessly once S1 >> tau.
    let s1 = ln_s.exp();
    let dterm = if across { (t[LN_D] - t[D_EXP] * lx - s1 * inv_tau).max(-700.0).exp() } else { 0.0 };
    let (slow, inv_tau2) = match k.slow {
        Some((ln_d2, inv_tau2)) => ((ln_d2 - s1 * inv_tau2).max(-700.0).exp(), inv_tau2),
        None => (0.0, 0.0),
    };
    let pred = e + pterm + a * pw - b * sg + dterm + slow;
    if want_grad {
        *g = [0.0; NP];
        g[LN_E] = e;
        g[LN_A] = a * pw;
        g[LN_ALPHA] = -a * pw * ln_s * alpha;
        g[LN_B] = -b * sg;
        g[LN_C] = -b * sc;
        g[LN_BETA] = -b * sb;
        g[LN_GAMMA] = -b * sgm;
        if across {
            g[LN_P] = pterm;
            g[P_EXP] = -lx * pterm;
            g[A_EXP] = -lx * a * pw;
            g[B_EXP] = lx * b * sg;
            g[LN_D] = dterm;
            g[D_EXP] = -lx * dterm;
            g[LN_TAU] = dterm * s1 * inv_tau;
            g[TAU_EXP] = -dterm * s1 * inv_tau * lx;
        }
        if k.slow.is_some() {
            g[LN_D2] = slow;
            g[D2_EXP] = -lx * slow;
            g[LN_TAU2] = slow * s1 * inv_tau2;
            g[TAU2_EXP] = -slow * s1 * inv_tau2 * lx;
        }
    }
    pred
}

/// Huber threshold on log-loss residuals: residuals below it are fitted by least squares,
/// larger ones (a noisy evaluation, a spike) only linearly, as in Chinchilla's approach 3.
pub const HUBER_DELTA: f64 = 1e-3;

fn huber(r: f64) -> (f64, f64) {
    if r.abs() <= HUBER_DELTA {
        (0.5 * r * r, r)
    } else {
        (HUBER_DELTA * (r.abs() - 0.5 * HUBER_DELTA), HUBER_DELTA * r.signum())
    }
}

/// ln(pred / y) and its derivative in pred, continued linearly below pred = y/100 so that a
/// trial step of the line search that drives a prediction to zero or below gets a large,
/// finite, smooth penalty instead of aborting the search.
fn log_residual(pred: f64, y: f64) -> (f64, f64) {
    let floor = 0.01 * y;
    if pred >= floor {
        ((pred / y).ln(), 1.0 / pred)
    } else {
        ((floor / y).ln() + (pred - floor) / floor, 1.0 / floor)
    }
}

/// The fitted data: prepared runs and their observed losses (the per-run weights, `run_weights`
/// or bootstrap counts of them, come with each evaluation).
pub struct Data<'a> {
    pub runs: &'a [Prepared],
    pub loss: &'a [Vec<f64>],
    pub layout: Layout,
}

impl Data<'_> {
    /// Summed weighted Huber loss of ln(pred) - ln(observed), mean per point (so tolerances do
    /// not depend on the sweep's size), and its gradient. Infinite only where a prediction overflows.
    pub fn value_grad(&self, t: &[f64; NP], w: &[f64], grad: &mut [f64; NP]) -> f64 {
        self.eval(t, w, Some(grad))
    }

    /// The same value without the gradient (the screening pass).
    pub fn value(&self, t: &[f64; NP], w: &[f64]) -> f64 {
        self.eval(t, w, None)
    }

    fn eval(&self, t: &[f64; NP], w: &[f64], mut grad: Option<&mut [f64; NP]>) -> f64 {
        let mut f = 0.0;
        let mut total_w = 0.0;
        if let Some(gr) = grad.as_deref_mut() {
            *gr = [0.0; NP];
        }
        let mut g = [0.0; NP];
        for (j, run) in self.runs.iter().enumerate() {
            if w[j] == 0.0 {
                continue;
            }
            let k = AtSize::new(t, self.layout, run);
            for (i, &y) in self.loss[j].iter().enumerate() {
                let pred = point(t, &k, run, i, &mut g, grad.is_some());
                if !pred.is_finite() {
                    return f64::INFINITY;
                }
                let (r, dr) = log_residual(pred, y);
                let (h, dh) = huber(r);
                f += w[j] * h;
                total_w += w[j];
                if let Some(gr) = grad.as_deref_mut() {
                    let s = w[j] * dh * dr;
                    for k in 0..NP {
                        gr[k] += s * g[k];
                    }
                }
            }
        }
        let n = total_w.max(1.0);
        if let Some(gr) = grad {
            for v in gr.iter_mut() {
                *v /= n;
            }
        }
        f / n
    }

    /// The same objective for given predictions (one vector per run), as `value` would find it.
    pub fn objective_of(&self, pred: &[Vec<f64>], w: &[f64]) -> f64 {
        let (mut f, mut total_w) = (0.0, 0.0);
        for (j, run) in pred.iter().enumerate() {
            if w[j] == 0.0 {
                continue;
            }
            for (&p, &y) in run.iter().zip(&self.loss[j]) {
                if !p.is_finite() {
                    return f64::INFINITY;
                }
                f += w[j] * huber(log_residual(p, y).0).0;
                total_w += w[j];
            }
        }
        f / total_w.max(1.0)
    }

    /// Per point: the four features the law is linear in besides D, given the nonlinear
    /// parameters of `t` (E's 1, P's x^-p, A's x^-a S1^-alpha, B's -x^-b LD), for the screening
    /// solve (D's, x^-d exp(-S1/tau), is `early_feature`).
    pub fn features(&self, t: &[f64; NP]) -> Vec<Vec<[f64; 4]>> {
        let mut unit = *t;
        for k in [LN_E, LN_P, LN_A, LN_B, LN_D] {
            unit[k] = 0.0;
        }
        let mut g = [0.0; NP];
        self.runs
            .iter()
            .map(|run| {
                let k = AtSize::new(&unit, self.layout, run);
                (0..run.ln_s1.len())
                    .map(|i| {
                        point(&unit, &k, run, i, &mut g, true);
                        // With unit amplitudes the gradient slots are the features themselves.
                        let p = if self.layout == Layout::AcrossSizes { g[LN_P] } else { 0.0 };
                        [1.0, p, g[LN_A], g[LN_B]]
                    })
                    .collect()
            })
            .collect()
    }

    /// Per point: D's feature x^-d exp(-S1/tau) (zero per size, where the law has no D term).
    pub fn early_feature(&self, d_exp: f64, tau: f64) -> Vec<Vec<f64>> {
        let across = self.layout == Layout::AcrossSizes;
        self.runs
            .iter()
            .map(|run| {
                run.ln_s1
                    .iter()
                    .map(|&ls| if across { (-d_exp * run.ln_x - ls.exp() / tau).max(-700.0).exp() } else { 0.0 })
                    .collect()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::prep::prepare;
    use super::*;

    /// A fit.json written before the slow term existed reads as a law without it, and the
    /// law's parameter vector has the term off.
    #[test]
    fn a_law_without_the_slow_term_reads_with_it_off() {
        let json = r#"{"layout":"across_sizes","n_ref":1e5,"E":1.8,"P":0.5,"p_exp":0.4,"A":1.0,"a_exp":0.3,
            "alpha":0.5,"B":40.0,"b_exp":0.2,"C":2.0,"beta":0.6,"gamma":0.6,"D":0.5,"d_exp":0.3,"tau":0.4,"tau_exp":0.1}"#;
        let law: CurveLaw = serde_json::from_str(json).expect("reads");
        assert_eq!((law.d2, law.tau2), (0.0, 1.0));
        let t = law.to_theta();
        assert!(!slow_on(&t));
        assert_eq!(CurveLaw::from_theta(Layout::AcrossSizes, 1e5, &t), law);
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let lr: Vec<f64> = (0..400)
            .map(|k| {
                if k < 20 {
                    (k + 1) as f64 / 20.0
                } else if k < 300 {
                    1.0
                } else {
                    0.2
                }
            })
            .collect();
        let steps: Vec<u64> = (1..=20).map(|i| i * 20).collect();
        let runs = vec![prepare(&lr, &steps, 0.7), prepare(&lr, &steps, -0.4)];
        let loss: Vec<Vec<f64>> =
            runs.iter().map(|r| (0..r.ln_s1.len()).map(|i| 3.0 - 0.01 * i as f64).collect()).collect();
        let data = Data { runs: &runs, loss: &loss, layout: Layout::AcrossSizes };
        let t = [0.8, -1.0, 0.3, -0.5, 0.2, -0.7, 0.1, 0.4, 0.5, -0.5, -0.6, 0.3, 0.5, 4.0, 0.3, -1.5, 0.4, 2.0, 0.8];
        let w = [1.0, 2.0];
        let mut g = [0.0; NP];
        let f = data.value_grad(&t, &w, &mut g);
        assert!((f - data.value(&t, &w)).abs() < 1e-15);
        for k in 0..NP {
            let h = 1e-6;
            let (mut up, mut dn) = (t, t);
            up[k] += h;
            dn[k] -= h;
            let fd = (data.value(&up, &w) - data.value(&dn, &w)) / (2.0 * h);
            assert!((fd - g[k]).abs() < 1e-6 * (1.0 + fd.abs()), "slot {k}: {} vs {fd}", g[k]);
        }
    }
}
