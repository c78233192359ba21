//! `report`: rewrite a results folder's report, and compare several folders.

use super::sweep::load_dir;
use crate::{report, runner, UserError};
use anyhow::Result;
use std::path::{Path, PathBuf};

/// `report DIR`: rewrite the report (report.md, report.html, plots/) from the folder's files.
pub fn report_dir(dir: &Path, opts: &report::ReportOptions) -> Result<report::Written> {
    let (sweep, sd, fit, df) = load_dir(dir)?;
    let (_, diverged) = runner::finished(&sweep, &sd);
    report::write_report(&sd, &sweep, &fit, &df, &diverged, opts)
}

/// `report DIR1 [DIR2 ...]`: the first folder's report and, with more than one, a comparison of
/// all of them against the first (DIR1/compare.md and compare.html). Returns the files written.
pub fn report_dirs(dirs: &[PathBuf], opts: &report::ReportOptions) -> Result<Vec<PathBuf>> {
    if !(opts.mfu > 0.0 && opts.mfu <= 1.0) {
        return Err(UserError(format!("--mfu {} must be in (0, 1]", opts.mfu)).into());
    }
    if !(opts.peak_tflops.is_finite() && opts.peak_tflops > 0.0) {
        return Err(UserError(format!("--peak-tflops {} must be > 0", opts.peak_tflops)).into());
    }
    let Some(first) = dirs.first() else {
        return Err(UserError("report: give at least one results folder".into()).into());
    };
    let w = report_dir(first, opts)?;
    let mut out = vec![w.md, w.html];
    if dirs.len() > 1 {
        let mut all = Vec::new();
        for d in dirs {
            let (sweep, dir, fit, df) = load_dir(d)?;
            let runs = report::runs::run_curves(&df)?;
            all.push(report::compare::Loaded { dir, sweep, fit, runs });
        }
        let c = report::compare::write_compare(&all)?;
        out.extend([c.md, c.html]);
    }
    Ok(out)
}
