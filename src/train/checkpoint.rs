//! Checkpoints: model and both optimizers (burn's full-precision binary records) plus the
//! step. The data sampler and the schedule are pure functions of the step, so this is all
//! the state a run has; resuming from it continues bit-identically on the CPU backend.
//!
//! Written to `checkpoint.tmp/`, then swapped in by renames, so a kill during a save leaves
//! the previous checkpoint (or `checkpoint.old/` during the swap) intact.

use super::optim::Optim;
use crate::model::Gpt;
use crate::store::{self, RunDir};
use anyhow::{Context, Result};
use burn::module::Module;
use burn::optim::Optimizer;
use burn::record::{BinFileRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::backend::AutodiffBackend;
use std::fs;
use std::path::PathBuf;

type Rec = BinFileRecorder<FullPrecisionSettings>;

fn old_dir(dir: &RunDir) -> PathBuf {
    dir.path.join("checkpoint.old")
}

/// The newest complete checkpoint folder, if any.
fn current(dir: &RunDir) -> Option<PathBuf> {
    [dir.checkpoint_dir(), old_dir(dir)].into_iter().find(|p| p.join("step.json").exists())
}

pub fn save<B: AutodiffBackend>(dir: &RunDir, model: &Gpt<B>, opt: &Optim<B>, step: u64) -> Result<()> {
    let tmp = dir.path.join("checkpoint.tmp");
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp)?;
    let rec = Rec::new();
    model.clone().save_file(tmp.join("model"), &rec).context("saving model checkpoint")?;
    rec.record(opt.decay.to_record(), tmp.join("adam_decay")).context("saving optimizer")?;
    rec.record(opt.no_decay.to_record(), tmp.join("adam_no_decay")).context("saving optimizer")?;
    // step.json last: its presence marks the folder complete.
    store::write_json_atomic(&tmp.join("step.json"), &step)?;
    let cur = dir.checkpoint_dir();
    let old = old_dir(dir);
    let _ = fs::remove_dir_all(&old);
    if cur.exists() {
        fs::rename(&cur, &old)?;
    }
    fs::rename(&tmp, &cur)?;
    let _ = fs::remove_dir_all(&old);
    Ok(())
}

pub fn load_model<B: AutodiffBackend>(dir: &RunDir, model: Gpt<B>, dev: &B::Device) -> Result<Option<(Gpt<B>, u64)>> {
    let Some(ck) = current(dir) else { return Ok(None) };
    let step: u64 = store::read_json(&ck.join("step.json"))?;
    let model = model
        .load_file(ck.join("model"), &Rec::new(), dev)
        .with_context(|| format!("loading checkpoint {}", ck.display()))?;
    Ok(Some((model, step)))
}

pub fn load_optim<B: AutodiffBackend>(dir: &RunDir, opt: &mut Optim<B>, dev: &B::Device) -> Result<()> {
    let ck = current(dir).context("checkpoint vanished")?;
    let rec = Rec::new();
    let d = rec.load(ck.join("adam_decay"), dev).context("loading optimizer state")?;
    let n = rec.load(ck.join("adam_no_decay"), dev).context("loading optimizer state")?;
    opt.decay = opt.decay.clone().load_record(d);
    opt.no_decay = opt.no_decay.clone().load_record(n);
    Ok(())
}

/// Drops the checkpoint once the run is DONE (it is large and no longer needed).
pub fn remove(dir: &RunDir) {
    let _ = fs::remove_dir_all(dir.checkpoint_dir());
    let _ = fs::remove_dir_all(old_dir(dir));
}
