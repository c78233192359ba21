//! Loading a sweep: the TOML file (with its data prepared) or the copy inside a results
//! folder, and a results folder's files (sweep, fit.json, runs.parquet) for the later steps.

use crate::fit::FitReport;
use crate::spec::{self, config::Sweep};
use crate::store::{self, frame, SweepDir};
use crate::{data, UserError};
use anyhow::Result;
use polars::prelude::DataFrame;
use std::path::Path;

/// Reads a sweep file and stamps its file-backed domains' fingerprints (run ids depend on the
/// data's contents), without tokenizing anything.
pub fn load_sweep(path: &Path) -> Result<Sweep> {
    let mut sw = spec::load(path)?;
    data::prepare::stamp(&mut sw, &data::prepare::cache_root())?;
    Ok(sw)
}

/// Reads a sweep file and gets its data ready for training (tokenized into the cache, shards
/// checked): every data problem surfaces here, before any run starts. Returns the sweep and a
/// printable summary of the data (empty for built-in domains only).
pub fn load_and_prepare(path: &Path) -> Result<(Sweep, String)> {
    let mut sw = spec::load(path)?;
    let reports = data::prepare::prepare(&mut sw, &data::prepare::cache_root())?;
    Ok((sw.clone(), data_summary(&sw, &reports)))
}

/// The data lines of `plan` and `run`: each file-backed domain's size and how it was prepared,
/// and a warning when a run would draw more tokens of a domain than it has (windows repeat).
pub fn data_summary(sw: &Sweep, reports: &[data::prepare::DomainReport]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for r in reports {
        let bpt = r
            .bytes_per_token
            .map_or("bytes/token unknown (no bits/byte)".to_string(), |b| format!("{b:.2} bytes/token"));
        let _ = writeln!(
            out,
            "data {}: {} from {} file(s), {} tokens, {bpt}, {}",
            r.name, r.kind, r.files, r.tokens, r.how
        );
        let most = sw
            .runs
            .iter()
            .map(|run| run.mix.get(&r.name).copied().unwrap_or(0.0) * run.tokens as f64)
            .fold(0.0, f64::max);
        let epochs = most / r.tokens.max(1) as f64;
        if epochs > 1.0 {
            let _ = writeln!(
                out,
                "warning: a run draws {most:.0} tokens of {} ({epochs:.1}x its size): windows repeat, while scaling laws assume fresh data",
                r.name
            );
        }
    }
    out
}

/// Loads the sweep copy inside a results folder (written by `run`).
pub fn sweep_of_dir(dir: &Path) -> Result<Sweep> {
    let p = SweepDir::at(dir).sweep_toml();
    let imported = SweepDir::at(dir).import_json();
    if !p.exists() && imported.exists() {
        // An imported folder (`windtunnel import`): its record holds the stand-in sweep.
        let r: store::imported::Record = store::read_json(&imported)?;
        return Ok(r.sweep);
    }
    if !p.exists() {
        return Err(UserError(format!(
            "{}: not a sweep results folder (no sweep.toml; run `windtunnel run SWEEP` first)",
            dir.display()
        ))
        .into());
    }
    load_sweep(&p)
}

/// A results folder's sweep, fit.json and results frame.
pub fn load_dir(dir: &Path) -> Result<(Sweep, SweepDir, FitReport, DataFrame)> {
    let sweep = sweep_of_dir(dir)?;
    let sd = SweepDir::at(dir);
    let fit_path = sd.fit_json();
    if !fit_path.exists() {
        return Err(UserError(format!(
            "{}: no fit.json yet (run `windtunnel fit {}` first)",
            dir.display(),
            dir.display()
        ))
        .into());
    }
    let fit: FitReport = store::read_json(&fit_path)?;
    let df = frame::read_frame(&sd.runs_parquet())?;
    check_fit_json(&fit, &sweep, &df, &fit_path)?;
    Ok((sweep, sd, fit, df))
}

/// fit.json as read back is the user's file: before its numbers are printed as results they
/// are checked against each other, the sweep and the runs (`fit::integrity`); a problem is bad
/// input (exit 2) naming the file and the field.
pub fn check_fit_json(fit: &FitReport, sweep: &Sweep, df: &DataFrame, path: &Path) -> Result<()> {
    let runs = crate::report::runs::run_curves(df)?;
    let left: std::collections::BTreeSet<&str> = fit.left_out.iter().map(|l| l.run.as_str()).collect();
    let points: Vec<(f64, f64)> =
        runs.iter().filter(|r| !left.contains(r.run_id.as_str())).map(|r| (r.params, r.tokens)).collect();
    let target = sweep.target.flops.is_some() || sweep.target.params.is_some();
    crate::fit::integrity::check(fit, &crate::fit::integrity::Expect { target, points: &points })
        .map_err(|e| UserError(format!("{}: {e}", path.display())).into())
}
