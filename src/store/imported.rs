//! An imported results folder (`windtunnel import`): runs trained elsewhere, written as the
//! same `runs.parquet` a trained sweep has (one row per evaluation, the frame's columns), plus
//! `import.json`, which says where they came from, which runs were held out as checks
//! (`checks.parquet`, never fitted) and which were excluded and why. `import.json` holds the
//! sweep stand-in (no runs to train) that `fit DIR`, `report DIR` and `predict DIR` read where
//! a trained folder has its sweep.toml.

use crate::spec::config::Sweep;
use anyhow::Result;
use polars::prelude::*;
use serde::{Deserialize, Serialize};

/// One evaluation of an imported run.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    pub step: i64,
    pub tokens: f64,
    /// NaN when the manifest names no learning-rate column.
    pub lr: f64,
    /// The primary validation loss (nats/token).
    pub loss: f64,
    /// The other validation losses, task bits per byte and task accuracies, in the order of
    /// `Names` (NaN where the file has no value).
    pub losses: Vec<f64>,
    pub task_bpb: Vec<f64>,
    pub task_acc: Vec<f64>,
}

/// An imported run: its name (the run id), source file, size and evaluations in step order.
#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    pub name: String,
    pub file: String,
    pub params: f64,
    /// Training FLOPs per token; None: 6N.
    pub flops_per_token: Option<f64>,
    pub width: i64,
    pub depth: i64,
    pub points: Vec<Point>,
}

/// The names of the other validation sets and tasks, shared by every run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Names {
    pub losses: Vec<String>,
    pub task_bpb: Vec<String>,
    pub task_acc: Vec<String>,
}

/// A run that was read but left out, with the reason (file, row and column where it applies).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Excluded {
    pub run: String,
    pub file: String,
    pub reason: String,
}

/// `import.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    /// The manifest's path as given and the blake3 of its bytes.
    pub manifest: String,
    pub manifest_blake3: String,
    /// The primary validation loss: its column in the run files and its short name.
    pub primary_column: String,
    pub primary: String,
    pub names: Names,
    /// Runs in runs.parquet (fitted) and in checks.parquet (held out), by name.
    pub imported: Vec<String>,
    pub checks: Vec<String>,
    /// Runs read and left out for bad data, and runs the manifest's `exclude` skipped.
    pub excluded: Vec<Excluded>,
    pub skipped: Vec<String>,
    pub files: usize,
    /// The stand-in sweep: name, target and fit settings; no runs to train.
    pub sweep: Sweep,
}

/// The runs as a results frame, the columns `store::frame::build` writes (so every reader of
/// runs.parquet reads it), with each other loss as `loss_<set>` and each task as
/// `task_bpb_<task>` and `task_acc_<task>`. There are no `mix_` columns: the runs' data mixture
/// is not known.
pub fn build_frame(runs: &[Run], names: &Names, sweep: &str) -> Result<DataFrame> {
    let rows: usize = runs.iter().map(|r| r.points.len()).sum();
    let mut strs: [Vec<String>; 4] = Default::default();
    let mut ints: [Vec<i64>; 7] = Default::default();
    let fixed = ["lr", "params", "params_total", "tokens", "flops", "loss", "bpb"];
    let mut f: Vec<Vec<f64>> = vec![Vec::with_capacity(rows); fixed.len()];
    let mut extra: Vec<Vec<f64>> =
        vec![Vec::with_capacity(rows); names.losses.len() + names.task_bpb.len() + names.task_acc.len()];
    let mut fin = Vec::with_capacity(rows);
    for r in runs {
        let last = r.points.last().map_or(0, |p| p.step);
        let fpt = r.flops_per_token.unwrap_or(6.0 * r.params);
        let run_tokens = r.points.last().map_or(0.0, |p| p.tokens);
        for p in &r.points {
            for (col, v) in strs.iter_mut().zip([r.name.as_str(), sweep, "imported", ""]) {
                col.push(v.to_string());
            }
            for (col, v) in ints.iter_mut().zip([-1, r.width, r.depth, 0, 0, p.step, run_tokens as i64]) {
                col.push(v);
            }
            for (col, v) in f.iter_mut().zip([p.lr, r.params, r.params, p.tokens, fpt * p.tokens, p.loss, f64::NAN]) {
                col.push(v);
            }
            for (col, v) in extra.iter_mut().zip(p.losses.iter().chain(&p.task_bpb).chain(&p.task_acc)) {
                col.push(*v);
            }
            fin.push(p.step == last);
        }
    }
    let mut cols: Vec<Column> = Vec::new();
    for (k, v) in ["run_id", "sweep", "parametrization", "branch_of"].iter().zip(strs) {
        cols.push(Column::new((*k).into(), v));
    }
    // No `batch_size`: another trainer's batch (in sequences) is not known, and a 0 would be
    // read as a batch.
    let int_names = ["branch_from", "width", "depth", "heads", "seq_len", "step", "run_tokens"];
    for (k, v) in int_names.iter().zip(ints) {
        cols.push(Column::new((*k).into(), v));
    }
    for (k, v) in fixed.iter().zip(f) {
        // No learning rate recorded: no column, so the fit reads "unknown" rather than NaN.
        if *k == "lr" && v.iter().all(|x| x.is_nan()) {
            continue;
        }
        cols.push(Column::new((*k).into(), v));
    }
    let extra_names = names
        .losses
        .iter()
        .map(|n| format!("loss_{n}"))
        .chain(names.task_bpb.iter().map(|n| format!("task_bpb_{n}")))
        .chain(names.task_acc.iter().map(|n| format!("task_acc_{n}")));
    for (k, v) in extra_names.zip(extra) {
        cols.push(Column::new(k.as_str().into(), v));
    }
    cols.push(Column::new("is_final".into(), fin));
    Ok(DataFrame::new(rows, cols)?)
}

/// Writes a frame as Parquet, atomically.
pub fn write_parquet(path: &std::path::Path, df: &mut DataFrame) -> Result<()> {
    let mut bytes = Vec::new();
    ParquetWriter::new(&mut bytes).finish(df)?;
    super::write_atomic(path, &bytes)
}
