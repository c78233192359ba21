//! The recommendation at the top of the report: the target run as a configuration someone can
//! launch (shape, learning rate, batch, mixture) with its predicted loss, FLOPs and GPU-hours.

use super::runs::RunCurve;
use crate::fit::{FitReport, Interval, TargetPoint};
use crate::flops;
use crate::spec::config::Sweep;

/// Accelerator assumptions for the GPU-hour estimate (`report --accelerator --peak-tflops --mfu`).
#[derive(Clone, Debug)]
pub struct ReportOptions {
    pub accelerator: String,
    /// Peak dense throughput in TFLOP/s at the training precision.
    pub peak_tflops: f64,
    /// Model FLOPs utilisation, a fraction in (0, 1].
    pub mfu: f64,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions { accelerator: "H100 SXM (bf16 dense)".into(), peak_tflops: 989.0, mfu: 0.40 }
    }
}

/// A transformer shape for the target and the rule that produced it.
#[derive(Clone, Debug)]
pub struct Shape {
    pub width: usize,
    pub depth: usize,
    pub heads: usize,
    pub head_dim: usize,
    /// N of this (rounded) shape.
    pub params: f64,
    pub rule: String,
}

/// The recommended target run.
#[derive(Clone, Debug)]
pub struct Headline {
    pub target: TargetPoint,
    pub n_iv: Option<Interval>,
    pub d_iv: Option<Interval>,
    pub tpp_iv: Option<Interval>,
    pub loss_iv: Option<Interval>,
    pub shape: Option<Shape>,
    pub seq_len: usize,
    pub lr: f64,
    pub lr_source: String,
    pub batch: usize,
    pub batch_source: String,
    pub mix: String,
    /// Training FLOPs of `shape` on D_opt tokens with attention counted (`src/flops.rs`).
    pub flops_full: f64,
    pub gpu_hours: f64,
    pub opts: ReportOptions,
}

/// The run the sweep points at: the lowest-loss run among those of the largest N.
pub(crate) fn best_largest(runs: &[RunCurve]) -> Option<&RunCurve> {
    let n_max = runs.iter().map(|r| r.params).fold(0.0, f64::max);
    runs.iter().filter(|r| r.params == n_max).min_by(|a, b| a.loss.total_cmp(&b.loss))
}

fn distinct(v: impl Iterator<Item = f64>) -> usize {
    let mut x: Vec<f64> = v.collect();
    x.sort_by(f64::total_cmp);
    x.dedup();
    x.len()
}

pub fn recommend(t: &TargetPoint, fit: &FitReport, sweep: &Sweep, runs: &[RunCurve], opts: &ReportOptions) -> Headline {
    let cfg = sweep.runs.first();
    let vocab = cfg.map_or(256, |c| c.vocab);
    let seq_len = cfg.map_or(0, |c| c.seq_len);
    let best = best_largest(runs);
    let shape = best.and_then(|b| target_shape(t.n_opt, b, vocab));
    let mup = cfg.is_some_and(|c| matches!(c.parametrization, crate::spec::config::Parametrization::Mup { .. }));
    let (lr, lr_source) = match (&fit.laws.lr_vs_compute, best) {
        (Some(h), _) => {
            (h.law.eval(t.flops), format!("`lr_vs_compute` law: lr = {:.3e} C^{:.3}", h.law.coef, h.law.exponent))
        }
        (None, Some(b)) if distinct(runs.iter().map(|r| r.lr)) == 1 => {
            (b.lr, format!("the sweep's only lr{}", if mup { " (μP: the optimum transfers across width)" } else { "" }))
        }
        (None, Some(b)) => (b.lr, "best lr of the sweep's largest model (no `lr_vs_compute` law fitted)".into()),
        (None, None) => (f64::NAN, "n/a".into()),
    };
    let (batch, batch_source) = match (&fit.laws.batch_vs_compute, best) {
        (Some(h), _) => (
            h.law.eval(t.flops).round().max(1.0) as usize,
            format!("`batch_vs_compute` law: B = {:.3e} C^{:.3}", h.law.coef, h.law.exponent),
        ),
        (None, Some(b)) => (b.batch_size.max(0) as usize, "the sweep's (no `batch_vs_compute` law fitted)".into()),
        (None, None) => (0, "n/a".into()),
    };
    let mix = best
        .map(|b| b.mix.iter().map(|(k, v)| format!("{k} {v:.2}")).collect::<Vec<_>>().join(", "))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "n/a".into());
    let flops_full = match &shape {
        Some(s) => flops::flops_per_token(s.width, s.depth, seq_len, vocab) * t.d_opt,
        None => t.flops,
    };
    let gpu_hours = flops_full / (opts.peak_tflops * 1e12 * opts.mfu) / 3600.0;
    let iv = |k: &str| fit.intervals.get(k).copied();
    Headline {
        target: *t,
        n_iv: iv("n_opt"),
        d_iv: iv("d_opt"),
        tpp_iv: iv("tokens_per_param"),
        loss_iv: iv("loss"),
        shape,
        seq_len,
        lr,
        lr_source,
        batch,
        batch_source,
        mix,
        flops_full,
        gpu_hours,
        opts: opts.clone(),
    }
}

/// The shape rule: keep the width/depth ratio of the sweep's largest model, solve
/// N = params(width, depth) for depth, round it, re-solve width at that depth and round it to a
/// multiple of the sweep's head_dim; heads = width / head_dim.
pub fn target_shape(n: f64, reference: &RunCurve, vocab: usize) -> Option<Shape> {
    if !(n.is_finite() && n > 0.0) || reference.depth < 1 || reference.heads < 1 || reference.width < 1 {
        return None;
    }
    let head_dim = (reference.width / reference.heads).max(1) as usize;
    let ratio = reference.width as f64 / reference.depth as f64;
    let v = vocab as f64;
    let (mut lo, mut hi) = (1e-6f64, 1e7f64);
    for _ in 0..200 {
        let mid = (lo * hi).sqrt();
        if crate::flops::params_real(ratio * mid, mid, v) < n {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let depth = (lo.round() as usize).max(1);
    // 12 L w^2 + (4 L + 2 + vocab) w - N = 0.
    let (a, b) = (12.0 * depth as f64, 4.0 * depth as f64 + 2.0 + v);
    let w = (-b + (b * b + 4.0 * a * n).sqrt()) / (2.0 * a);
    let width = (((w / head_dim as f64).round() as usize).max(1)) * head_dim;
    let floor_note = if (flops::params(head_dim, 1, vocab) as f64) > n {
        " (the target N is below the smallest shape this rule can express)"
    } else {
        ""
    };
    Some(Shape {
        width,
        depth,
        heads: width / head_dim,
        head_dim,
        params: flops::params(width, depth, vocab) as f64,
        rule: format!(
            "keep width/depth = {:.1} of the sweep's largest model (width {}, depth {}), solve N_opt = params(width, depth) \
             (`src/flops.rs`) for depth, round it, re-solve width at that depth and round it to a multiple of \
             head_dim {head_dim}; heads = width / {head_dim}{floor_note}",
            ratio, reference.width, reference.depth
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference() -> RunCurve {
        RunCurve {
            run_id: "r".into(),
            width: 80,
            depth: 2,
            heads: 5,
            seq_len: 64,
            lr: 1e-2,
            batch_size: 16,
            params: flops::params(80, 2, 256) as f64,
            tokens: 1e6,
            loss: 2.0,
            flops: 1e12,
            mix: Default::default(),
            domain_loss: Default::default(),
            points: Vec::new(),
            branch_of: String::new(),
        }
    }

    #[test]
    fn shape_rule_keeps_aspect_ratio_and_hits_n() {
        let r = reference();
        let s = target_shape(r.params, &r, 256).unwrap();
        assert_eq!((s.width, s.depth, s.heads, s.head_dim), (80, 2, 5, 16));
        let big = target_shape(5e7, &r, 256).unwrap();
        assert_eq!(big.width % 16, 0);
        assert!((big.params / 5e7 - 1.0).abs() < 0.1, "{big:?}");
        let ratio = big.width as f64 / big.depth as f64;
        assert!(ratio > 25.0 && ratio < 60.0, "{big:?}");
        assert!(target_shape(f64::NAN, &r, 256).is_none());
        assert_eq!(target_shape(1.0, &r, 256).unwrap().depth, 1);
    }
}
