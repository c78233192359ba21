//! How noisy a run's evaluations are by themselves, apart from any law: the scatter of each
//! evaluation about its neighbours. A law predicts a run's expected curve; the evaluations
//! wander about it (at a high learning rate the model's state itself jitters from one
//! evaluation to the next: on `realtext` about 0.8% per point, four times the evaluation
//! tokens do not reduce it on `curve_law`), so a held-out curve's mean error cannot fall much
//! below this scatter whatever the law. `curve-holdout` prints it beside the law's error.

use super::CurveRun;

/// The per-point scatter of a set of runs' evaluations.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scatter {
    /// RMS of one evaluation's log loss about the run's smooth curve.
    pub rms: f64,
    /// Triples of consecutive evaluations it was measured on.
    pub triples: usize,
}

impl Scatter {
    /// The mean |error| a law that knew every run's expected curve exactly would still make
    /// against points with this scatter (Gaussian: sqrt(2 / pi) of the RMS). A lower bound:
    /// second differences do not see the slow drift of a whole curve (its seed, its data order).
    pub fn floor(&self) -> f64 {
        self.rms * (2.0 / std::f64::consts::PI).sqrt()
    }
}

/// Scatter from second differences of ln loss: for consecutive evaluations at steps
/// s0 < s1 < s2, r = ln y1 - (w0 ln y0 + w2 ln y2) with the weights of linear interpolation in
/// steps, whose variance is sigma^2 (1 + w0^2 + w2^2) for independent noise of RMS sigma. Only
/// triples at the schedule's peak learning rate past the first fifth of the run's steps count:
/// there the smooth curve is nearly straight over three evaluations (early on and in a decay it
/// bends, and the bend would pass for noise). None without such a triple.
pub fn scatter(runs: &[&CurveRun]) -> Option<Scatter> {
    let (mut sum, mut n) = (0.0f64, 0usize);
    for r in runs {
        // Evaluations outside the schedule (a malformed run) are not measured.
        let Some(&last) = r.steps.last().filter(|&&s| s as usize <= r.lr.len()) else { continue };
        if r.steps[0] == 0 || r.loss.len() != r.steps.len() {
            continue;
        }
        let peak = r.lr[..last as usize].iter().cloned().fold(0.0, f64::max);
        let at_peak = |s: u64| r.lr[s as usize - 1] >= peak * (1.0 - 1e-9);
        for i in 1..r.steps.len().saturating_sub(1) {
            let (s0, s1, s2) = (r.steps[i - 1], r.steps[i], r.steps[i + 1]);
            // Steps out of order (a malformed run) are no triple.
            if !(s0 < s1 && s1 < s2)
                || (s0 as f64) < 0.2 * r.lr.len() as f64
                || !(at_peak(s0) && at_peak(s1) && at_peak(s2))
            {
                continue;
            }
            let w2 = (s1 - s0) as f64 / (s2 - s0) as f64;
            let w0 = 1.0 - w2;
            let d = r.loss[i].ln() - (w0 * r.loss[i - 1].ln() + w2 * r.loss[i + 1].ln());
            if d.is_finite() {
                sum += d * d / (1.0 + w0 * w0 + w2 * w2);
                n += 1;
            }
        }
    }
    (n > 0).then(|| Scatter { rms: (sum / n as f64).sqrt(), triples: n })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scatter_recovers_known_noise_and_ignores_the_curve_itself() {
        // 0.3% noise on curves of a known law under five schedules (decays included).
        let runs = super::super::synthetic_sweep(4, 7);
        let refs: Vec<&CurveRun> = runs.iter().collect();
        let s = scatter(&refs).expect("stable triples");
        assert!(s.triples > 200, "{s:?}");
        assert!((s.rms / 3e-3 - 1.0).abs() < 0.12, "known 0.3% noise, estimated {:.3}%", 100.0 * s.rms);
        assert!((s.floor() / s.rms - 0.798).abs() < 1e-3);
        // The same curves without noise: what remains is the curves' own bend (0.02% here), under a
        // sixth of the noise.
        let law = super::super::known_law(1e6);
        let clean: Vec<CurveRun> = runs
            .iter()
            .map(|r| CurveRun { loss: super::super::predict(&law, r.params, &r.lr, &r.steps), ..r.clone() })
            .collect();
        let refs: Vec<&CurveRun> = clean.iter().collect();
        let s = scatter(&refs).expect("stable triples");
        assert!(s.rms < 5e-4, "a smooth curve passes for {:.4}% noise", 100.0 * s.rms);
        // No triple at peak learning rate past the first fifth: nothing measured.
        let short = CurveRun { steps: vec![10, 20], loss: vec![3.0, 2.9], ..runs[0].clone() };
        assert_eq!(scatter(&[&short]), None);
        // Evaluations past the schedule's end are left out, not a panic.
        let past = CurveRun { steps: vec![900, 950, 1000, 5000], loss: vec![3.0, 2.9, 2.8, 2.7], ..runs[0].clone() };
        assert_eq!(scatter(&[&past]), None);
        // Steps out of order: no triple, not an overflow.
        let disordered =
            CurveRun { steps: vec![900, 800, 950, 700], loss: vec![3.0, 2.9, 2.8, 2.7], ..runs[0].clone() };
        assert_eq!(scatter(&[&disordered]), None);
    }
}
