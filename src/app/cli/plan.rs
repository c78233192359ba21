//! `plan`: the dry run (every run's N, D, FLOPs and time; `--precision` simulates the fit).

use super::Exit;
use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub at: super::SweepAt,
    /// Parallel jobs the time estimate assumes (default: one per core).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Also predict the answer's precision before training: simulate the sweep's fit many
    /// times (true laws from the prior, measured run noise) and print the expected 95%
    /// interval spreads at the target (loss, N_opt, D_opt, tokens per parameter), how often
    /// the verdict would say "not determined", and what the grid leaves undetermined.
    #[arg(long)]
    pub precision: bool,
    /// Prior for --precision: a fit.json whose bootstrap laws and residual noise are used
    /// (default: a built-in table from the quickstart's own fit).
    #[arg(long)]
    pub prior: Option<std::path::PathBuf>,
    /// Simulated sweeps for --precision (each one fit; about 0.1-0.7 s of one core each).
    #[arg(long, default_value_t = 40)]
    pub sims: usize,
}

pub fn run(args: Args) -> Result<Exit> {
    let Args { at: super::SweepAt { sweep, results }, jobs, precision, prior, sims } = args;
    let (sw, data) = crate::app::sweep::load_and_prepare(&sweep)?;
    print!("{data}");
    crate::runner::plan::check_backend(&sw)?;
    let dir = crate::store::SweepDir::new(&results, &sw.name);
    let pace = crate::runner::plan::measured_pace(&dir);
    let rows = crate::runner::plan::rows(&sw, &dir, pace);
    let jobs_n = jobs.unwrap_or_else(crate::runner::default_jobs);
    print!("{}", crate::runner::plan::render(&sw, &rows, jobs_n, pace));
    eprint!("{}", crate::runner::plan::elsewhere_note(&sw, &dir).unwrap_or_default());
    let res = crate::runner::plan::Resources::here(&dir);
    eprint!("{}", crate::runner::plan::check_resources(&sw, &rows, jobs_n, &res)?.unwrap_or_default());
    if precision {
        let prior = crate::app::design::load_prior(prior.as_deref())?;
        print!("{}", crate::app::design::plan_precision(&sw, &prior, sims)?);
    }
    Ok(Exit::Success)
}
