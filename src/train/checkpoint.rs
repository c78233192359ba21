//! Checkpoints: model and both optimizers (burn's full-precision binary records) plus a
//! manifest, `step.json`. The data sampler and the schedule are pure functions of the step, so
//! this is all the state a run has; resuming from it continues bit-identically on the CPU
//! backend.
//!
//! Written to `checkpoint.tmp/`, then swapped in by renames; the one it replaces is kept as
//! `checkpoint.prev/`, so a kill during a save leaves a complete checkpoint, and a checkpoint
//! found bad on resume leaves an older good one to fall back to.
//!
//! The manifest is trusted no more than the files: it holds the step, the BLAKE3
//! hash of every state file (all written together from one step, so model and optimizer agree)
//! and a hash sealing its own fields, as llm.c's headers carry a magic and a version. On resume
//! a checkpoint whose seal, files or step (it must lie inside the run) do not check out is
//! moved aside to `checkpoint.bad/` and the run restarts from the newest good one, or from
//! scratch, saying so in the run's log.

use super::optim::Optim;
use crate::model::Gpt;
use crate::store::{self, RunDir};
use anyhow::{Context, Result};
use burn::module::Module;
use burn::optim::Optimizer;
use burn::record::{BinFileRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

type Rec = BinFileRecorder<FullPrecisionSettings>;

/// `step.json` of a checkpoint folder.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
struct Manifest {
    step: u64,
    /// Training loss of the run's first step: the starting value a run must fall below to count
    /// as having learned (`store::not_learned`); kept here because a resumed run never sees it.
    first_loss: Option<f64>,
    /// BLAKE3 of each state file of the folder, by file name.
    files: BTreeMap<String, String>,
    /// BLAKE3 of the fields above, so an edited step is caught even with intact files.
    seal: String,
}

fn seal(step: u64, first_loss: Option<f64>, files: &BTreeMap<String, String>) -> String {
    let bytes = serde_json::to_vec(&(step, first_loss.map(f64::to_bits), files)).expect("serialisable");
    blake3::hash(&bytes).to_hex().to_string()
}

/// The state files of a checkpoint folder (everything but the manifest and temp files) and their
/// hashes.
fn hash_files(dir: &Path) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for e in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let e = e?;
        let name = e.file_name().to_string_lossy().to_string();
        if name == "step.json" || name.starts_with('.') || !e.file_type()?.is_file() {
            continue;
        }
        let bytes = fs::read(e.path()).with_context(|| format!("reading {}", e.path().display()))?;
        out.insert(name, blake3::hash(&bytes).to_hex().to_string());
    }
    Ok(out)
}

/// A checkpoint that checked out: where it is, its step and the run's first-step loss.
#[derive(Clone, Debug, PartialEq)]
pub struct Found {
    pub path: PathBuf,
    pub step: u64,
    pub first_loss: Option<f64>,
}

/// Checks one checkpoint folder of a run of `steps` steps.
fn verify(dir: &Path, steps: u64) -> std::result::Result<Found, String> {
    let text = fs::read_to_string(dir.join("step.json")).map_err(|e| format!("step.json: {e}"))?;
    let (step, first_loss) = match serde_json::from_str::<Manifest>(&text) {
        Ok(m) => {
            if seal(m.step, m.first_loss, &m.files) != m.seal {
                return Err(format!("step.json (step {}) does not match its seal: it was altered", m.step));
            }
            let files = hash_files(dir).map_err(|e| format!("{e:#}"))?;
            if files != m.files {
                let bad: Vec<&str> = m
                    .files
                    .keys()
                    .chain(files.keys())
                    .filter(|k| m.files.get(*k) != files.get(*k))
                    .map(String::as_str)
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                return Err(format!("state files missing, extra or altered: {}", bad.join(", ")));
            }
            (m.step, m.first_loss)
        }
        // A bare step number: the format before manifests. Nothing to check but the range.
        Err(_) => match serde_json::from_str::<u64>(&text) {
            Ok(step) => (step, None),
            Err(e) => return Err(format!("step.json is unreadable: {e}")),
        },
    };
    if step == 0 || step >= steps {
        return Err(format!("step {step} is outside the run (1 to {})", steps.saturating_sub(1)));
    }
    Ok(Found { path: dir.to_path_buf(), step, first_loss })
}

fn prev_dir(dir: &RunDir) -> PathBuf {
    dir.path.join("checkpoint.prev")
}

/// `checkpoint.old/`: where versions before `checkpoint.prev/` parked the previous checkpoint
/// during a save; still read so a run interrupted then resumes.
fn old_dir(dir: &RunDir) -> PathBuf {
    dir.path.join("checkpoint.old")
}

/// The newest good checkpoint of a run of `steps` steps, if any, and a line for the run's log
/// per checkpoint that was found bad and moved aside to `checkpoint.bad/`.
pub fn find(dir: &RunDir, steps: u64) -> (Option<Found>, Vec<String>) {
    let mut notes = Vec::new();
    let mut best: Option<Found> = None;
    for p in [dir.checkpoint_dir(), prev_dir(dir), old_dir(dir)] {
        if !p.join("step.json").exists() {
            continue;
        }
        match verify(&p, steps) {
            Ok(f) => {
                if best.as_ref().is_none_or(|b| f.step > b.step) {
                    best = Some(f);
                }
            }
            Err(why) => {
                let bad = dir.path.join("checkpoint.bad");
                let _ = fs::remove_dir_all(&bad);
                let moved = fs::rename(&p, &bad).map_or_else(
                    |e| format!("could not move it aside ({e}); removing it"),
                    |_| format!("moved to {}", bad.display()),
                );
                if p.exists() {
                    let _ = fs::remove_dir_all(&p);
                }
                notes.push(format!("checkpoint {} discarded: {why}; {moved}", p.display()));
            }
        }
    }
    if !notes.is_empty() {
        notes.push(match &best {
            Some(f) => format!("resuming from the previous good checkpoint {} (step {})", f.path.display(), f.step),
            None => "no good checkpoint left: training from scratch".to_string(),
        });
    }
    (best, notes)
}

/// The trunk of a WSD branch family keeps the state at each branch point, under
/// `snapshots/<step>/` (written aside, then renamed: a folder there is always complete).
pub fn snapshot_dir(dir: &RunDir, step: u64) -> PathBuf {
    dir.path.join("snapshots").join(step.to_string())
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

/// Where `save` puts a run's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// The run's checkpoint, the one before it kept as `prev` (a crash mid-write loses nothing).
    Checkpoint,
    /// A WSD trunk's snapshot at the step (`snapshot_dir`), for its branches to start from.
    Snapshot,
}

/// Saves the model and optimizer state at `step` into `slot`: a complete folder is written
/// aside (step.json last: it marks the folder complete), then renamed into place.
pub fn save<B: AutodiffBackend>(
    dir: &RunDir,
    model: &Gpt<B>,
    opt: &Optim<B>,
    step: u64,
    first_loss: Option<f64>,
    slot: Slot,
) -> Result<()> {
    let tmp = match slot {
        Slot::Checkpoint => dir.path.join("checkpoint.tmp"),
        Slot::Snapshot => dir.path.join("snapshots").join(format!("{step}.tmp")),
    };
    let tmp = tmp.as_path();
    let _ = fs::remove_dir_all(tmp);
    store::fake_enospc(tmp).with_context(|| format!("writing {}", tmp.display()))?;
    fs::create_dir_all(tmp)?;
    let rec = Rec::new();
    model.clone().save_file(tmp.join("model"), &rec).context("saving model checkpoint")?;
    rec.record(opt.decay.to_record(), tmp.join("adam_decay")).context("saving optimizer")?;
    rec.record(opt.no_decay.to_record(), tmp.join("adam_no_decay")).context("saving optimizer")?;
    let files = hash_files(tmp)?;
    let seal = seal(step, first_loss, &files);
    store::write_json_atomic(&tmp.join("step.json"), &Manifest { step, first_loss, files, seal })?;
    match slot {
        Slot::Checkpoint => {
            let cur = dir.checkpoint_dir();
            let prev = prev_dir(dir);
            let _ = fs::remove_dir_all(&prev);
            if cur.exists() {
                fs::rename(&cur, &prev)?;
            }
            fs::rename(tmp, &cur)?;
            let _ = fs::remove_dir_all(old_dir(dir));
        }
        Slot::Snapshot => {
            let to = snapshot_dir(dir, step);
            let _ = fs::remove_dir_all(&to);
            fs::rename(tmp, &to)?;
        }
    }
    Ok(())
}

pub fn load_model<B: AutodiffBackend>(found: &Found, model: Gpt<B>, dev: &B::Device) -> Result<Gpt<B>> {
    model
        .load_file(found.path.join("model"), &Rec::new(), dev)
        .with_context(|| format!("loading checkpoint {}", found.path.display()))
}

pub fn load_optim<B: AutodiffBackend>(found: &Found, opt: &mut Optim<B>, dev: &B::Device) -> Result<()> {
    let rec = Rec::new();
    let d = rec.load(found.path.join("adam_decay"), dev).context("loading optimizer state")?;
    let n = rec.load(found.path.join("adam_no_decay"), dev).context("loading optimizer state")?;
    opt.decay = opt.decay.clone().load_record(d);
    opt.no_decay = opt.no_decay.clone().load_record(n);
    Ok(())
}

/// Drops the checkpoint once the run is DONE (it is large and no longer needed).
pub fn remove(dir: &RunDir) {
    for p in [dir.checkpoint_dir(), prev_dir(dir), old_dir(dir), dir.path.join("checkpoint.bad")] {
        let _ = fs::remove_dir_all(p);
    }
}
