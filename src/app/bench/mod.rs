//! `windtunnel bench`: training throughput of fixed reference models on the chosen backend,
//! measured the way `analysis/torch_bench.py` measures PyTorch (same shapes, same optimizer,
//! median step time after warmup), so the two can be compared side by side.

pub mod data;
pub mod fit;
pub mod parquet;

use crate::flops;
use crate::model::GptConfig;
use crate::rng::Rng;
use crate::spec::config::{DecayShape, Parametrization, RunConfig, Schedule};
use crate::train::optim::Optim;
use std::time::Instant;

/// (name, width, depth, seq_len, batch): "small" and "medium" match the burn/PyTorch probe
/// in ../shared/examples/burn021-gpt-bench; "tiny" is a quickstart-sized model.
pub const MODELS: &[(&str, usize, usize, usize, usize)] =
    &[("tiny", 32, 2, 64, 16), ("small", 128, 4, 128, 16), ("medium", 256, 6, 128, 16)];

pub fn reference_run(width: usize, depth: usize, seq_len: usize, batch: usize) -> RunConfig {
    RunConfig {
        sweep: "bench".into(),
        seed: 0,
        width,
        depth,
        heads: (width / 32).max(1), // head_dim 32 as in the PyTorch probe
        seq_len,
        vocab: 256,
        parametrization: Parametrization::Sp { init_std: 0.02 },
        lr: 3e-4,
        batch_size: batch,
        tokens: 0,
        steps: 0,
        schedule: Schedule::Wsd { warmup: 0.0, decay: 0.1, decay_shape: DecayShape::Linear },
        weight_decay: 0.1,
        beta1: 0.9,
        beta2: 0.95,
        grad_clip: 1.0,
        micro_batch: None,
        branch: None,
        eval_every: 1,
        eval_tokens: 0,
        domains: vec![],
        mix: Default::default(),
    }
}

/// Median tokens/s of `steps` training steps (after 3 warmup steps) on random tokens.
pub fn measure<B: crate::kernels::TrainBackend>(run: &RunConfig, steps: usize, dev: &B::Device) -> (f64, f64) {
    let cfg = GptConfig::from_run(run);
    let mut model = crate::backend::seeded_module::<B, _>(dev, 0, || cfg.init::<B>(dev));
    let mut opt = Optim::new(run, &model, cfg.scales.hidden_lr_mult);
    let mut rng = Rng::new(1);
    let (b, t) = (run.batch_size, run.seq_len);
    let mut times = Vec::new();
    for i in 0..steps + 3 {
        let ids: Vec<i64> = (0..b * (t + 1)).map(|_| rng.below(256) as i64).collect();
        let t0 = Instant::now();
        let loss = crate::train::loss_on(&model, &cfg, ids, b, dev);
        let (m, _) = opt.step(model, loss, run.lr);
        model = m;
        B::sync(dev).ok();
        if i >= 3 {
            times.push(t0.elapsed().as_secs_f64());
        }
    }
    let tps = (b * t) as f64 / crate::fit::regress::median(&times).unwrap_or(f64::NAN);
    let gflops = tps * flops::flops_per_token(run.width, run.depth, run.seq_len, run.vocab) / 1e9;
    (tps, gflops)
}

/// Runs every reference model (or the named ones) on `backend` ("cpu", or "cuda" in a build
/// with the `cuda` feature and a driver) and renders a table.
pub fn run(names: &[String], steps: usize, backend: &str) -> anyhow::Result<String> {
    if backend == "cuda" {
        if let Some(why) = crate::backend::cuda_problem() {
            anyhow::bail!("bench --backend cuda: {why}");
        }
    } else if backend != "cpu" {
        anyhow::bail!("bench --backend must be cpu or cuda, got {backend:?}");
    }
    let mut out = String::from(
        "| model | width | depth | ctx | batch | params N | tokens/s | GFLOP/s |\n|---|---|---|---|---|---|---|---|\n",
    );
    for &(name, w, d, t, b) in MODELS {
        if !names.is_empty() && !names.iter().any(|n| n == name) {
            continue;
        }
        let run = reference_run(w, d, t, b);
        let (tps, gf) = match backend {
            #[cfg(feature = "cuda")]
            "cuda" => measure::<crate::backend::Cuda>(&run, steps, &Default::default()),
            _ => measure::<crate::backend::Cpu>(&run, steps, &Default::default()),
        };
        let line = format!("| {name} | {w} | {d} | {t} | {b} | {} | {tps:.0} | {gf:.2} |\n", flops::params(w, d, 256));
        eprint!("{line}");
        out += &line;
    }
    Ok(out)
}
