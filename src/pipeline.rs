//! The glue the CLI runs after training: collect finished runs into `runs.parquet`, fit the
//! laws into `fit.json`, write the report. Each step reads the previous step's files only.

use crate::fit::{self, FitOptions};
use crate::spec::{self, config::Sweep};
use crate::store::{self, frame, SweepDir};
use crate::{report, runner, UserError};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

pub fn fit_options(sweep: &Sweep) -> FitOptions {
    FitOptions {
        target_flops: sweep.target.flops,
        target_params: sweep.target.params,
        bootstrap: sweep.fit.bootstrap,
        seed: sweep.runs.first().map_or(0, |r| r.seed),
        backtest: sweep.fit.backtest != "none",
        laws: sweep.fit.laws.iter().filter(|l| l.as_str() != "chinchilla").cloned().collect(),
    }
}

/// runs.parquet → fit.json → report.md for a sweep folder. Returns the report path.
pub fn collect_fit_report(sweep: &Sweep, dir: &SweepDir) -> Result<PathBuf> {
    let (done, diverged) = runner::finished(sweep, dir);
    if done.is_empty() {
        return Err(UserError(format!("no finished runs in {}", dir.runs_dir().display())).into());
    }
    let df = frame::write_parquet(dir, &done)?;
    let obs = frame::to_obs(&df, &dir.runs_parquet().display().to_string())?;
    let report = fit::fit_all(&obs, &fit_options(sweep)).context("fitting the scaling law")?;
    store::write_json_atomic(&dir.fit_json(), &report)?;
    let fit_value = serde_json::to_value(&report)?;
    report::write_markdown(dir, sweep, &fit_value, &df, &diverged)?;
    Ok(dir.report_md())
}

/// Loads the sweep copy inside a results folder (written by `run`).
pub fn sweep_of_dir(dir: &Path) -> Result<Sweep> {
    let p = dir.join("sweep.toml");
    if !p.exists() {
        return Err(UserError(format!(
            "{}: not a sweep results folder (no sweep.toml; run `windtunnel run SWEEP` first)",
            dir.display()
        ))
        .into());
    }
    Ok(spec::load(&p)?)
}

/// `report DIR`: rewrite the report from the folder's fit.json and runs.parquet.
pub fn report_dir(dir: &Path) -> Result<PathBuf> {
    let sweep = sweep_of_dir(dir)?;
    let sd = SweepDir { root: dir.to_path_buf() };
    let fit_path = sd.fit_json();
    if !fit_path.exists() {
        return Err(UserError(format!(
            "{}: no fit.json yet (run `windtunnel fit {}` first)",
            dir.display(),
            dir.display()
        ))
        .into());
    }
    let fit: serde_json::Value = store::read_json(&fit_path)?;
    let df = frame::read_frame(&sd.runs_parquet())?;
    let (_, diverged) = runner::finished(&sweep, &sd);
    report::write_markdown(&sd, &sweep, &fit, &df, &diverged)?;
    Ok(sd.report_md())
}
