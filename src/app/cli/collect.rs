//! `collect`: runs.parquet, fit and report from finished runs, training nothing.

use super::Exit;
use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {
    /// The sweep TOML file.
    pub sweep: std::path::PathBuf,
    /// Results root (the sweep lives in RESULTS/<sweep name>/).
    #[arg(long, default_value = "results")]
    pub results: std::path::PathBuf,
}

pub fn run(args: Args) -> Result<Exit> {
    let Args { sweep, results } = args;
    let sw = crate::app::sweep::load_sweep(&sweep)?;
    let dir = crate::store::SweepDir::new(&results, &sw.name);
    let f = crate::runner::finished_runs(&sw, &dir);
    let missing = sw.runs.len() - f.done.len() - f.diverged.len() - f.damaged.len();
    eprintln!(
        "{} of {} runs done, {} diverged, {} damaged, {} not finished",
        f.done.len(),
        sw.runs.len(),
        f.diverged.len(),
        f.damaged.len(),
        missing
    );
    for (id, why) in &f.damaged {
        eprintln!("run {id} is DONE but damaged, excluded from the fit (`run` trains it again): {why}");
    }
    let report = crate::app::fit::collect_fit_report(&sw, &dir)?;
    println!("report: {}", report.display());
    println!("fit:    {}", dir.fit_json().display());
    println!("runs:   {}", dir.runs_parquet().display());
    Ok(Exit::Success)
}
