//! The loss interval of a fitted law at any (N, D), for `windtunnel check`'s predictions.
//!
//! PROVISIONAL (issue 13 item 4, written on the `verdicts` branch so `check` compiles): the
//! fit-core branch implements this same method from the bootstrap refits' laws widened by a
//! rollout backtest's measured extrapolation error, and replaces this file at merge. This
//! version uses no bootstrap: the point prediction ± twice the backtest's measured relative
//! error (a 95%-ish half-width for errors of that typical size), widened by one unit per decade
//! of extrapolation beyond the backtest's held-out runs, because the backtest measured the
//! error at its own distance only.

use crate::fit::{FitReport, Interval};

/// Relative error assumed when the fit has no backtest (the Hitchhiker's Guide's typical
/// best achievable ARE is about 4%; half of that as a one-sigma figure).
const NO_BACKTEST_ERROR: f64 = 0.02;

impl FitReport {
    /// A 95% interval for the loss of a model of `n` parameters trained on `d` tokens
    /// (provisional, see the module doc). `None` when the law cannot predict there.
    pub fn loss_interval_at(&self, n: f64, d: f64) -> Option<Interval> {
        if !(n > 0.0 && d > 0.0 && n.is_finite() && d.is_finite()) {
            return None;
        }
        let p = self.predict(n, d);
        if !p.is_finite() {
            return None;
        }
        let (err, c_ref) = match &self.backtest {
            Some(bt) if !bt.points.is_empty() && bt.are.is_finite() => {
                (bt.are.max(1e-3), bt.points.iter().map(|q| 6.0 * q.params * q.tokens).fold(0.0, f64::max))
            }
            _ => (NO_BACKTEST_ERROR, f64::NAN),
        };
        let decades = if c_ref > 0.0 { (6.0 * n * d / c_ref).log10().max(0.0) } else { 1.0 };
        let half = 2.0 * err * (1.0 + decades) * p;
        Some(Interval { lo: p - half, hi: p + half })
    }
}

#[cfg(test)]
mod tests {
    use crate::fit::law::Law;
    use crate::fit::{FitOptions, Obs};

    /// Wider further out, centred on the point prediction, and None for nonsense input.
    #[test]
    fn interval_grows_with_extrapolation() {
        let law = Law { e: 1.7, a: 20.0, b: 40.0, alpha: 0.3, beta: 0.3 };
        let mut obs = Vec::new();
        for n in [1e4, 2e4, 4e4, 8e4, 1.6e5] {
            for tpp in [5.0, 10.0, 20.0] {
                for k in 1..=4 {
                    let d = tpp * n * k as f64 / 4.0;
                    obs.push(Obs {
                        run: format!("{n}-{tpp}"),
                        params: n,
                        tokens: d,
                        flops: 6.0 * n * d,
                        loss: law.predict(n, d) * (1.0 + 0.003 * ((k + n as usize) % 3) as f64),
                        lr: None,
                        batch: None,
                        is_final: k == 4,
                    });
                }
            }
        }
        let opts = FitOptions { bootstrap: 0, ..Default::default() };
        let rep = crate::fit::fit_all(&obs, &opts).unwrap();
        let near = rep.loss_interval_at(1.6e5, 3.2e6).unwrap();
        let far = rep.loss_interval_at(1.6e6, 3.2e7).unwrap();
        let p = rep.predict(1.6e6, 3.2e7);
        assert!(far.lo < p && p < far.hi);
        assert!(far.width() / p > near.width() / rep.predict(1.6e5, 3.2e6));
        assert!(rep.loss_interval_at(0.0, 1e6).is_none() && rep.loss_interval_at(f64::NAN, 1e6).is_none());
    }
}
