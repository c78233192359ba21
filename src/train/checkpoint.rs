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
use std::path::{Path, PathBuf};

type Rec = BinFileRecorder<FullPrecisionSettings>;

fn old_dir(dir: &RunDir) -> PathBuf {
    dir.path.join("checkpoint.old")
}

/// The newest complete checkpoint folder, if any.
fn current(dir: &RunDir) -> Option<PathBuf> {
    [dir.checkpoint_dir(), old_dir(dir)].into_iter().find(|p| p.join("step.json").exists())
}

/// Writes a complete checkpoint folder at `tmp` (step.json last: it marks the folder complete).
fn write<B: AutodiffBackend>(tmp: &Path, model: &Gpt<B>, opt: &Optim<B>, step: u64) -> Result<()> {
    let _ = fs::remove_dir_all(tmp);
    fs::create_dir_all(tmp)?;
    let rec = Rec::new();
    model.clone().save_file(tmp.join("model"), &rec).context("saving model checkpoint")?;
    rec.record(opt.decay.to_record(), tmp.join("adam_decay")).context("saving optimizer")?;
    rec.record(opt.no_decay.to_record(), tmp.join("adam_no_decay")).context("saving optimizer")?;
    store::write_json_atomic(&tmp.join("step.json"), &step)
}

/// The trunk of a WSD branch family keeps the state at each branch point, under
/// `snapshots/<step>/` (written aside, then renamed: a folder there is always complete).
pub fn snapshot_dir(dir: &RunDir, step: u64) -> PathBuf {
    dir.path.join("snapshots").join(step.to_string())
}

pub fn save_snapshot<B: AutodiffBackend>(dir: &RunDir, model: &Gpt<B>, opt: &Optim<B>, step: u64) -> Result<()> {
    let tmp = dir.path.join("snapshots").join(format!("{step}.tmp"));
    write(&tmp, model, opt, step)?;
    let to = snapshot_dir(dir, step);
    let _ = fs::remove_dir_all(&to);
    fs::rename(&tmp, &to)?;
    Ok(())
}

/// Seeds a branch run with its trunk's snapshot as its own checkpoint (copied aside, then
/// renamed in), so the worker resumes from the branch point. False if there is no snapshot.
pub fn seed_from(dir: &RunDir, snapshot: &Path) -> Result<bool> {
    if !snapshot.join("step.json").exists() {
        return Ok(false);
    }
    let tmp = dir.path.join("checkpoint.seed");
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp)?;
    for e in fs::read_dir(snapshot)? {
        let e = e?;
        fs::copy(e.path(), tmp.join(e.file_name()))?;
    }
    fs::rename(&tmp, dir.checkpoint_dir())?;
    Ok(true)
}

pub fn save<B: AutodiffBackend>(dir: &RunDir, model: &Gpt<B>, opt: &Optim<B>, step: u64) -> Result<()> {
    let tmp = dir.path.join("checkpoint.tmp");
    write(&tmp, model, opt, step)?;
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
