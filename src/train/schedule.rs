//! Learning-rate schedules as pure functions of the step: `lr_mult(schedule, step, steps)`
//! returns the multiplier of the peak learning rate. No state, so resume needs only the step.
//!
//! Warmup-stable-decay (Hu et al. 2024, MiniCPM): linear warmup, a long constant phase, then
//! a short decay (10% of the steps by default; they found ~10% enough and 2.5% not).

use crate::spec::config::{DecayShape, Schedule};

/// Exponential decay ends at this fraction of the peak (it never reaches 0).
const EXP_FINAL: f64 = 0.01;

/// Multiplier of the peak LR at `step` (0-based) of a run of `steps` steps.
pub fn lr_mult(schedule: &Schedule, step: u64, steps: u64) -> f64 {
    let steps = steps.max(1) as f64;
    let s = step as f64;
    let warmup = match schedule {
        Schedule::Wsd { warmup, .. } | Schedule::Cosine { warmup, .. } | Schedule::Constant { warmup } => {
            (warmup * steps).round()
        }
    };
    if warmup > 0.0 && s < warmup {
        return (s + 1.0) / warmup;
    }
    match *schedule {
        Schedule::Constant { .. } => 1.0,
        Schedule::Cosine { final_frac, .. } => {
            let p = ((s - warmup) / (steps - warmup).max(1.0)).clamp(0.0, 1.0);
            final_frac + (1.0 - final_frac) * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())
        }
        Schedule::Wsd { decay, decay_shape, .. } => {
            let decay_steps = (decay * steps).round();
            let start = steps - decay_steps;
            if decay_steps <= 0.0 || s < start {
                return 1.0;
            }
            decayed(decay_shape, ((s - start) / decay_steps).clamp(0.0, 1.0))
        }
    }
}

/// The decay curve at progress p ∈ [0, 1) through the decay phase.
fn decayed(shape: DecayShape, p: f64) -> f64 {
    match shape {
        DecayShape::Linear => 1.0 - p,
        DecayShape::Cosine => 0.5 * (1.0 + (std::f64::consts::PI * p).cos()),
        DecayShape::OneMinusSqrt => 1.0 - p.sqrt(),
        DecayShape::Exponential => EXP_FINAL.powf(p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wsd_has_three_phases() {
        let s = Schedule::Wsd { warmup: 0.1, decay: 0.2, decay_shape: DecayShape::Linear };
        assert!((lr_mult(&s, 0, 100) - 0.1).abs() < 1e-12);
        assert_eq!(lr_mult(&s, 9, 100), 1.0);
        assert_eq!(lr_mult(&s, 50, 100), 1.0);
        assert_eq!(lr_mult(&s, 79, 100), 1.0);
        assert_eq!(lr_mult(&s, 80, 100), 1.0);
        assert!((lr_mult(&s, 90, 100) - 0.5).abs() < 1e-12);
        assert!(lr_mult(&s, 99, 100) < 0.06);
        for shape in [DecayShape::Cosine, DecayShape::OneMinusSqrt, DecayShape::Exponential] {
            let s = Schedule::Wsd { warmup: 0.0, decay: 0.5, decay_shape: shape };
            let v: Vec<f64> = (0..100).map(|i| lr_mult(&s, i, 100)).collect();
            assert!(v.windows(2).all(|w| w[1] <= w[0] + 1e-12), "{shape:?} not monotone");
            assert!(v[99] < 0.1);
        }
    }
}
