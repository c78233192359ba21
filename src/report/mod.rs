//! The report: what to train and how far to trust it. Reads only files (fit.json, the results
//! frame, the sweep copy), so `windtunnel report DIR` works on any finished sweep folder, also
//! one copied from a cluster. One document (`content`) rendered twice: report.md and a
//! self-contained report.html (inline CSS and SVG, no script, no network), with every plot
//! also written to `plots/<name>.svg`.
//!
//! Layout: `facts` gathers the numbers, `headline` turns the target into a launchable
//! configuration, `figures/` draws the figures, grouped by topic (on `chart`'s plumbing), `content` writes
//! the sections, `doc` renders them, `compare` reads several sweeps against the first.

mod calibration;
pub(crate) mod chart;
pub mod compare;
mod content;
pub mod doc;
pub mod facts;
mod figures;
pub mod headline;
mod rollout;
pub mod runs;
#[cfg(test)]
mod tests;
mod verdict;

pub use headline::ReportOptions;

use crate::fit::FitReport;
use crate::spec::config::Sweep;
use crate::store::{write_atomic, SweepDir};
use anyhow::{Context, Result};
use polars::prelude::DataFrame;
use std::path::PathBuf;

/// Compact general-purpose number format (`human::g`: at most five significant digits).
pub fn g(x: f64) -> String {
    crate::human::g(x)
}

/// An interval as `[lo, hi]`, each end by `f`; "n/a" without one.
pub(crate) fn iv(i: Option<crate::fit::Interval>, f: fn(f64) -> String) -> String {
    i.map_or("n/a".into(), |i| format!("[{}, {}]", f(i.lo), f(i.hi)))
}

/// Tokens per parameter: one decimal, or scientific when absurd (a degenerate fit).
pub(crate) fn tpp(x: f64) -> String {
    if (1.0..1e5).contains(&x.abs()) {
        format!("{x:.1}")
    } else {
        g(x)
    }
}

/// The files a report (or comparison) wrote.
#[derive(Clone, Debug)]
pub struct Written {
    pub md: PathBuf,
    pub html: PathBuf,
    pub plots: Vec<PathBuf>,
}

/// Writes report.md, report.html and plots/*.svg for a sweep folder.
pub fn write_report(
    dir: &SweepDir,
    sweep: &Sweep,
    fit: &FitReport,
    df: &DataFrame,
    excluded: &[String],
    opts: &ReportOptions,
) -> Result<Written> {
    let facts = facts::Facts::gather(dir, sweep, fit, df, excluded, opts)?;
    let figures = figures::all(&facts).context("drawing the report's plots")?;
    let doc = content::build(&facts, figures);
    write_doc(dir, &doc, "report")
}

/// Writes `<stem>.md`, `<stem>.html` and the figures' SVGs (removing those of skipped figures).
pub(crate) fn write_doc(dir: &SweepDir, doc: &doc::Doc, stem: &str) -> Result<Written> {
    let plots_dir = dir.plots_dir();
    std::fs::create_dir_all(&plots_dir).with_context(|| format!("creating {}", plots_dir.display()))?;
    let mut plots = Vec::new();
    for f in doc.figures() {
        let p = plots_dir.join(format!("{}.svg", f.name));
        match &f.svg {
            Some(svg) => {
                write_atomic(&p, svg.as_bytes())?;
                plots.push(p);
            }
            None => {
                let _ = std::fs::remove_file(&p);
            }
        }
    }
    let md = dir.root.join(format!("{stem}.md"));
    let html = dir.root.join(format!("{stem}.html"));
    // Both or neither: a full disk must not leave a new report.md beside an old report.html.
    let (m, h) = (doc.markdown(), doc.html());
    crate::store::write_atomic_all(&[(&md, m.as_bytes()), (&html, h.as_bytes())])?;
    Ok(Written { md, html, plots })
}
