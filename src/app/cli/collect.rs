//! `collect`: runs.parquet, fit and report from finished runs, training nothing.

use super::Exit;
use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub at: super::SweepAt,
    /// Fit even when some run folders cannot be used (a file, a symlink, an unreadable or
    /// copied folder; refused by default, since fit.json would be replaced by a fit on
    /// fewer runs); fit.json's warnings name the folders left out.
    #[arg(long)]
    pub allow_damaged: bool,
}

pub fn run(args: Args) -> Result<Exit> {
    let Args { at: super::SweepAt { sweep, results }, allow_damaged } = args;
    let sw = crate::app::sweep::load_sweep(&sweep)?;
    let dir = crate::store::SweepDir::new(&results, &sw.name);
    let f = crate::runner::finished_runs(&sw, &dir);
    eprintln!(
        "{} of {} runs done, {} diverged, {} damaged, {} unusable folder(s), {} not finished",
        f.done.len(),
        sw.runs.len(),
        f.diverged.len(),
        f.damaged.len(),
        f.problems.len(),
        f.unfinished(sw.runs.len())
    );
    for (id, why) in &f.damaged {
        eprintln!("run {id} is DONE but damaged, excluded from the fit (`run` trains it again): {why}");
    }
    let report = crate::app::fit::collect_fit_report_with(&sw, &dir, allow_damaged)?;
    println!("report: {}", report.display());
    println!("fit:    {}", dir.fit_json().display());
    println!("runs:   {}", dir.runs_parquet().display());
    Ok(Exit::Success)
}
