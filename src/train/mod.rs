//! The training loop of one run: data → model → AdamW groups, WSD schedule, periodic
//! per-domain validation, checkpoints and the run's files. Generic over the backend; the
//! caller (the runner's worker) picks it. The loop is explicit (nanoGPT style) on purpose:
//! every line that touches the optimizer, the schedule or the disk is visible here.

pub mod checkpoint;
pub mod optim;
pub mod schedule;

use crate::data::Mixture;
use crate::flops;
use crate::kernels::{self, Kernels, TrainBackend};
use crate::model::{Gpt, GptConfig};
use crate::spec::config::RunConfig;
use crate::store::{self, EvalRecord, MetricRecord, RunDir, Status, Summary};
use anyhow::{bail, Result};
use burn::module::AutodiffModule;
use burn::optim::GradientsParams;
use burn::prelude::*;
use std::time::Instant;

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Done(Summary),
    /// Loss became NaN/inf or exploded: (step, reason).
    Diverged(u64, String),
    /// Asked to stop (signal); the checkpoint is on disk and the run can resume.
    Stopped(u64),
}

/// Progress callback: (step, steps, train loss, tokens/s).
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64, f64, f64);

/// Cross-entropy (nats/token) of `model` on rows of seq_len+1 token ids.
pub fn loss_on<B: Kernels>(
    model: &Gpt<B>,
    cfg: &GptConfig,
    ids: Vec<i64>,
    rows: usize,
    dev: &B::Device,
) -> Tensor<B, 1> {
    let t = cfg.seq_len;
    let all = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [rows, t + 1]), dev);
    let x = all.clone().slice([0..rows, 0..t]);
    let y = all.slice([0..rows, 1..t + 1]);
    let logits = model.forward(x, cfg);
    kernels::cross_entropy(logits.reshape([rows * t, cfg.vocab]), y.reshape([rows * t]))
}

/// Validation loss per domain, on the fixed held-out windows, without autodiff.
pub fn evaluate<B: Kernels>(
    model: &Gpt<B>,
    cfg: &GptConfig,
    data: &Mixture,
    eval_tokens: u64,
    dev: &B::Device,
) -> Vec<f64> {
    let chunk = 16usize;
    (0..data.domain_names().len())
        .map(|d| {
            let ids = data.val_windows(d, eval_tokens);
            let rows = ids.len() / (cfg.seq_len + 1);
            let (mut sum, mut n) = (0.0, 0usize);
            for start in (0..rows).step_by(chunk) {
                let r = chunk.min(rows - start);
                let part = ids[start * (cfg.seq_len + 1)..(start + r) * (cfg.seq_len + 1)].to_vec();
                let l: f64 = loss_on(model, cfg, part, r, dev).into_scalar().elem();
                sum += l * r as f64;
                n += r;
            }
            sum / n as f64
        })
        .collect()
}

/// Trains `run` to completion (or divergence, or until `stop()` says so), resuming from its
/// checkpoint if there is one. Writes metrics, evals, checkpoints, status and finally DONE.
pub fn train<B: TrainBackend>(
    run: &RunConfig,
    dir: &RunDir,
    dev: &B::Device,
    stop: &dyn Fn() -> bool,
    progress: Progress,
) -> Result<Outcome> {
    let gcfg = GptConfig::from_run(run);
    let data = Mixture::new(run)?;
    B::seed(dev, run.seed);
    let fresh: Gpt<B> = gcfg.init(dev);
    // Loading restores the saved parameter ids, so the optimizer (whose groups and state are
    // keyed by id) is built after the model is loaded.
    let (mut model, start) = match checkpoint::load_model::<B>(dir, fresh.clone(), dev)? {
        Some((m, step)) => (m, step),
        None => (fresh, 0),
    };
    let mut opt = optim::Optim::new(run, &model, gcfg.scales.hidden_lr_mult);
    if start > 0 {
        checkpoint::load_optim::<B>(dir, &mut opt, dev)?;
    }
    // Logs past the checkpoint belong to work that is about to be redone. The records *at*
    // the checkpoint's step were written before it was saved and are not redone (the loop
    // restarts after them), so they stay (tests/sweep_ops.rs caught their loss).
    store::truncate_jsonl_after::<MetricRecord>(&dir.metrics_jsonl(), start + 1, |r| r.step)?;
    store::truncate_jsonl_after::<EvalRecord>(&dir.evals_jsonl(), start + 1, |r| r.step)?;

    let tokens_per_step = (run.batch_size * run.seq_len) as u64;
    let fpt = flops::flops_per_token(run.width, run.depth, run.seq_len, run.vocab);
    let weights: Vec<f64> = data.weights().to_vec();
    let mut status = Status {
        state: "running".into(),
        attempt: dir.read_status().map_or(1, |s| s.attempt + u32::from(s.state != "running")),
        host: store::hostname(),
        pid: std::process::id(),
        heartbeat: store::now_unix(),
        step: start,
        error: None,
    };
    dir.write_status(&status)?;
    let t0 = Instant::now();
    let startup_s = crate::PROCESS_START.get().map(|p| t0.duration_since(*p).as_secs_f64());
    let mut last_beat = Instant::now();
    let mut first_loss = f64::NAN;
    // Smoothed train loss: a run whose loss *stays* 2 nats above where it started (worse than
    // its untrained self) has diverged even if it never reaches NaN; AdamW's bounded steps
    // and pre-LN keep a too-high LR at loss 8-17 on the tiny models instead of inf (issue 5).
    let mut ema = f64::NAN;
    let mut final_loss = f64::NAN;
    let log_every = (run.steps / 50).max(1);
    // WINDTUNNEL_MICRO_BATCH (set by the runner after an out-of-memory failure) overrides the
    // config: the same run, computed in smaller pieces.
    let micro = std::env::var("WINDTUNNEL_MICRO_BATCH")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&m| m >= 1)
        .or(run.micro_batch)
        .unwrap_or(run.batch_size)
        .min(run.batch_size);
    // Test hook: fail like a GPU out of memory when the micro-batch exceeds this many sequences,
    // so the runner's fallback to gradient accumulation is tested without a GPU.
    if let Some(lim) = std::env::var("WINDTUNNEL_FAKE_OOM_ABOVE").ok().and_then(|v| v.parse::<usize>().ok()) {
        if micro > lim {
            bail!("out of memory (simulated by WINDTUNNEL_FAKE_OOM_ABOVE={lim}) at micro-batch {micro}");
        }
    }
    for step in start..run.steps {
        let lr = run.lr * schedule::lr_mult(&run.schedule, step, run.steps);
        let (ids, _counts) = data.train_batch(step, run.batch_size);
        // The whole batch at once, or micro-batches whose gradients add up to the same mean
        // (each micro-batch's mean loss weighted by its share of the rows).
        let (grads, loss_v) = if micro >= run.batch_size {
            let loss = loss_on(&model, &gcfg, ids, run.batch_size, dev);
            let v: f64 = loss.clone().into_scalar().elem();
            (GradientsParams::from_grads(loss.backward(), &model), v)
        } else {
            let row = run.seq_len + 1;
            let (mut acc, mut v) = (None, 0.0);
            for lo in (0..run.batch_size).step_by(micro) {
                let rows = micro.min(run.batch_size - lo);
                let part = ids[lo * row..(lo + rows) * row].to_vec();
                let share = rows as f64 / run.batch_size as f64;
                let loss = loss_on(&model, &gcfg, part, rows, dev).mul_scalar(share);
                v += loss.clone().into_scalar().elem::<f64>();
                acc = Some(opt.accumulate(acc, GradientsParams::from_grads(loss.backward(), &model)));
            }
            (acc.expect("a batch has at least one row"), v)
        };
        if first_loss.is_nan() {
            first_loss = loss_v;
        }
        ema = if ema.is_nan() { loss_v } else { 0.9 * ema + 0.1 * loss_v };
        if !loss_v.is_finite() || loss_v > 3.0 * first_loss.max(1.0) + 10.0 {
            return diverged(dir, &mut status, step, loss_v, None);
        }
        if ema > first_loss + 2.0 {
            return diverged(dir, &mut status, step, loss_v, Some(ema));
        }
        let (m, grad_norm) = opt.apply(model, grads, lr);
        model = m;
        let done = step + 1;
        let tokens = done * tokens_per_step;
        let elapsed = t0.elapsed().as_secs_f64().max(1e-9);
        let tps = ((done - start) * tokens_per_step) as f64 / elapsed;
        if done % log_every == 0 || done == run.steps {
            let rec = MetricRecord {
                step: done,
                tokens,
                flops: fpt * tokens as f64,
                lr,
                loss: loss_v,
                grad_norm,
                tokens_per_s: tps,
            };
            store::append_jsonl(&dir.metrics_jsonl(), &rec)?;
        }
        progress(done, run.steps, loss_v, tps);
        if done % run.eval_every == 0 || done == run.steps {
            let per = evaluate(&model.valid(), &gcfg, &data, run.eval_tokens, dev);
            let mixed: f64 = per.iter().zip(&weights).map(|(l, w)| l * w).sum::<f64>() / weights.iter().sum::<f64>();
            final_loss = mixed;
            let (domain_bpb, bpb) = bits_per_byte(&data, &per, &weights);
            let rec = EvalRecord {
                step: done,
                tokens,
                flops: fpt * tokens as f64,
                lr,
                loss: mixed,
                domain_loss: data.domain_names().iter().cloned().zip(per).collect(),
                bpb,
                domain_bpb,
            };
            store::append_jsonl(&dir.evals_jsonl(), &rec)?;
            if done < run.steps {
                checkpoint::save::<B>(dir, &model, &opt, done)?;
            }
        }
        if last_beat.elapsed().as_secs() >= 5 || done == run.steps {
            status.heartbeat = store::now_unix();
            status.step = done;
            dir.write_status(&status)?;
            last_beat = Instant::now();
        }
        if run.branch.as_ref().is_some_and(|b| b.snapshots.contains(&done)) {
            checkpoint::save_snapshot::<B>(dir, &model, &opt, done)?;
        }
        if stop() && done < run.steps {
            checkpoint::save::<B>(dir, &model, &opt, done)?;
            return Ok(Outcome::Stopped(done));
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    let summary = Summary {
        final_loss,
        steps: run.steps,
        tokens: run.tokens,
        wall_s: wall,
        tokens_per_s: ((run.steps - start) * tokens_per_step) as f64 / wall.max(1e-9),
        startup_s,
        micro_batch: (micro < run.batch_size).then_some(micro),
        domain_tokens: data
            .domain_names()
            .iter()
            .cloned()
            .zip(data.realised_tokens(run.steps, run.batch_size))
            .collect(),
    };
    status.state = "done".into();
    status.heartbeat = store::now_unix();
    dir.write_status(&status)?;
    dir.mark_done(&summary)?;
    // After DONE: a kill between the two must not leave a run with neither.
    checkpoint::remove(dir);
    Ok(Outcome::Done(summary))
}

/// Per-domain bits/byte (loss / ln 2 / bytes per token) for the domains whose bytes/token is
/// known, and the mixture's (total bits over total bytes), if every weighted domain's is.
fn bits_per_byte(data: &Mixture, per: &[f64], weights: &[f64]) -> (Vec<(String, f64)>, Option<f64>) {
    let ln2 = std::f64::consts::LN_2;
    let mut out = Vec::new();
    let (mut bits, mut bytes, mut known) = (0.0, 0.0, true);
    for (d, (l, w)) in per.iter().zip(weights).enumerate() {
        match data.bytes_per_token(d) {
            Some(b) => {
                out.push((data.domain_names()[d].clone(), l / ln2 / b));
                bits += w * l / ln2;
                bytes += w * b;
            }
            None => known &= *w == 0.0,
        }
    }
    (out, (known && bytes > 0.0).then(|| bits / bytes))
}

fn diverged(dir: &RunDir, status: &mut Status, step: u64, loss: f64, ema: Option<f64>) -> Result<Outcome> {
    let reason = match ema {
        Some(e) => format!("loss stayed above its initial value + 2 nats (smoothed {e:.3}, last {loss:.3})"),
        None if loss.is_finite() => format!("loss exploded to {loss:.3}"),
        None => format!("loss became {loss}"),
    };
    status.state = "diverged".into();
    status.step = step;
    status.error = Some(reason.clone());
    status.heartbeat = store::now_unix();
    dir.write_status(status)?;
    if dir.is_done() {
        bail!("run {} is already DONE", dir.id);
    }
    Ok(Outcome::Diverged(step, reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Trains the tiny sweep's first run for its whole length and returns its losses.
    fn eval_losses(micro_batch: Option<usize>, tag: &str) -> Vec<f64> {
        let sweep = crate::spec::parse(include_str!("../../sweeps/tiny.toml"), "sweeps/tiny.toml").unwrap();
        let mut run = sweep.runs[0].clone();
        run.micro_batch = micro_batch;
        let root = std::env::temp_dir().join(format!("wt-accum-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let dir = crate::store::SweepDir::new(&root, "t").run(&run.run_id());
        std::fs::create_dir_all(&dir.path).unwrap();
        let out = train::<crate::backend::Cpu>(&run, &dir, &Default::default(), &|| false, &mut |_, _, _, _| {});
        assert!(matches!(out, Ok(Outcome::Done(_))), "{out:?}");
        let evals: Vec<EvalRecord> = store::read_jsonl(&dir.evals_jsonl()).unwrap();
        let train: Vec<MetricRecord> = store::read_jsonl(&dir.metrics_jsonl()).unwrap();
        let _ = std::fs::remove_dir_all(&root);
        // Validation losses, then the recorded training-batch losses (the weighted sum of the
        // micro-batches' means must equal the batch mean).
        evals.iter().map(|e| e.loss).chain(train.iter().map(|m| m.loss)).collect()
    }

    #[test]
    fn gradient_accumulation_matches_the_whole_batch() {
        // tiny.toml: batch 4. Micro-batches of 1 (4 passes) and 3 (3 + 1 rows) must train the
        // same model up to float rounding.
        let whole = eval_losses(None, "whole");
        for m in [1, 3] {
            let acc = eval_losses(Some(m), &format!("m{m}"));
            assert_eq!(acc.len(), whole.len());
            for (a, b) in acc.iter().zip(&whole) {
                assert!((a - b).abs() < 1e-3, "micro_batch {m}: {acc:?} vs {whole:?}");
            }
        }
    }
}
