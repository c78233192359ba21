//! The loss of a planned run (`windtunnel predict`, the import's held-out checks): a fitted
//! law's prediction at any (N, D), with a 95% interval only where the fit can stand behind
//! one. From a degenerate fit (an exponent at the edge of its range, E collapsed to 0 or below
//! the data's known floor) no interval is given, with the reason: its bootstrap spread measures
//! the noise of a fit that has lost a term, not the error of the prediction (a real-text fit
//! with beta at its bound printed intervals both check runs fell below, 22% and 30% off).
//! Otherwise the interval is `FitReport::loss_interval_at` (bootstrap and residual noise,
//! widened by the rollout's measured error at the distance, grown past what it measured),
//! widened further to cover the Kaplan form's prediction mirrored about the Chinchilla one:
//! the model-form disagreement no bootstrap of one form shows.

use crate::fit::verdict::EXPONENT_RANGE;
use crate::fit::{FitReport, Interval};
use serde::{Deserialize, Serialize};

/// One planned run's prediction from one fit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub params: f64,
    pub tokens: f64,
    /// C = 6ND and its multiple of the fit's largest run (None without a rollout).
    pub flops: f64,
    pub factor: Option<f64>,
    pub loss: f64,
    /// The 95% interval, None when withheld (`withheld` says why).
    pub interval: Option<Interval>,
    pub withheld: Option<String>,
    /// What the interval is made of: the bootstrap-and-noise interval before any widening,
    /// the rollout's relative widening at this distance and the Kaplan form's prediction.
    pub bootstrap: Option<Interval>,
    pub rollout_widen: Option<f64>,
    pub kaplan: Option<f64>,
}

/// Why the fit is degenerate (empty when it is not): a parameter at its bound or E collapsed.
/// `scale` is the law's lowest predicted loss over the fitted points (E is judged against it,
/// as the verdict does); `floor` the data's known entropy floor, if any.
pub fn degenerate(fit: &FitReport, scale: f64, floor: Option<f64>) -> Vec<String> {
    let Some(p) = fit.params.as_ref() else {
        return vec![format!("no law was fitted ({})", fit.chinchilla_skipped().unwrap_or("chinchilla is absent"))];
    };
    let mut out = Vec::new();
    for (name, v) in [("alpha", p.alpha), ("beta", p.beta)] {
        if !(EXPONENT_RANGE.0 + 1e-6..=EXPONENT_RANGE.1 - 1e-6).contains(&v) {
            out.push(format!(
                "{name} = {v:.3} is at the edge of its range ({} to {}): that term is confounded with E",
                EXPONENT_RANGE.0, EXPONENT_RANGE.1
            ));
        }
    }
    if p.e < 1e-3 * scale.min(1.0) {
        out.push(format!("the irreducible loss E = {:.3e} collapsed towards 0", p.e));
    } else if let Some(fl) = floor.filter(|f| f.is_finite() && *f > 0.0 && p.e < *f) {
        out.push(format!("the irreducible loss E = {:.4} is below the data's known entropy floor {fl:.4}", p.e));
    }
    out
}

/// The prediction at (n, d). `scale`: see `degenerate`. None without a fitted law.
pub fn predict(fit: &FitReport, n: f64, d: f64, scale: f64) -> Option<Prediction> {
    let law = fit.params?;
    let loss = law.predict(n, d);
    let flops = crate::flops::chinchilla_flops(n, d);
    let floor = fit.verdict.as_ref().and_then(|v| v.floor);
    let why = degenerate(fit, scale, floor);
    let factor = fit.rollout.as_ref().map(|r| flops / r.c_max);
    let rollout_widen = fit.rollout.as_ref().map(|r| r.widen_at(flops / r.c_max));
    let kaplan = fit.form_check.as_ref().map(|fc| fc.kaplan.law.predict(n, d)).filter(|k| k.is_finite());
    let bootstrap =
        crate::fit::chinchilla::rollout::prediction_interval(&fit.bootstrap_laws, &fit.residual_quantiles, n, d);
    let (interval, withheld) = if !why.is_empty() {
        (None, Some(format!("the fit is degenerate: {}; its intervals would not hold", why.join("; "))))
    } else {
        match fit.loss_interval_at(n, d) {
            None => (None, Some("no bootstrap refits in fit.json (fit with --bootstrap > 0)".to_string())),
            Some(iv) => {
                let m = kaplan.map_or(0.0, |k| (k - loss).abs());
                (Some(Interval { lo: (iv.lo.min(loss - m)).max(0.0), hi: iv.hi.max(loss + m) }), None)
            }
        }
    };
    Some(Prediction { params: n, tokens: d, flops, factor, loss, interval, withheld, bootstrap, rollout_widen, kaplan })
}

/// The compute-optimal split at compute `c` under the law, with 95% percentile intervals of
/// N_opt and D_opt over the bootstrap refits (None without them).
pub fn split(fit: &FitReport, c: f64) -> Option<(f64, f64, Option<Interval>, Option<Interval>)> {
    let law = fit.params?;
    let n = law.n_opt(c);
    let d = crate::flops::chinchilla_tokens(c, n);
    let mut ns: Vec<f64> =
        fit.bootstrap_laws.iter().map(|l| l.n_opt(c)).filter(|x| x.is_finite() && *x > 0.0).collect();
    if ns.len() < 10 {
        return Some((n, d, None, None));
    }
    ns.sort_by(f64::total_cmp);
    let q = |p: f64| crate::fit::chinchilla::bootstrap::percentile(&ns, p);
    let (lo, hi) = (q(0.025), q(0.975));
    let d_of = |n: f64| crate::flops::chinchilla_tokens(c, n);
    Some((n, d, Some(Interval { lo, hi }), Some(Interval { lo: d_of(hi), hi: d_of(lo) })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fit::Law;

    /// A law with beta at its bound (the real-text fit's shape) gives a prediction and no
    /// interval, and says why; a sound law with bootstrap refits gives one around the prediction.
    #[test]
    fn a_degenerate_fit_gives_no_interval() {
        let law = Law { e: 1.5, a: 400.0, b: 2000.0, alpha: 0.34, beta: 0.28 };
        let jitter = |k: f64| Law { e: 1.5 * (1.0 + 0.01 * k), ..law };
        let mut fit = FitReport {
            params: Some(law),
            bootstrap_laws: (0..50).map(|i| jitter(i as f64 / 25.0 - 1.0)).collect(),
            residual_quantiles: vec![0.0; 101],
            ..Default::default()
        };
        let p = predict(&fit, 1e9, 2e10, 2.0).unwrap();
        let iv = p.interval.expect("a sound fit has an interval");
        assert!(iv.lo < p.loss && p.loss < iv.hi && p.withheld.is_none(), "{p:?}");
        fit.params = Some(Law { beta: 0.1, ..law });
        let p = predict(&fit, 1e9, 2e10, 2.0).unwrap();
        assert!(p.interval.is_none(), "{p:?}");
        assert!(p.withheld.as_deref().unwrap().contains("beta = 0.100 is at the edge of its range"), "{p:?}");
        fit.params = Some(Law { e: 1e-40, ..law });
        let p = predict(&fit, 1e9, 2e10, 2.0).unwrap();
        assert!(p.interval.is_none() && p.withheld.unwrap().contains("collapsed towards 0"));
    }
}
