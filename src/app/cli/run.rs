//! `run`: train every pending run, then collect, fit and report.

use super::Exit;
use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub at: super::SweepAt,
    /// Runs trained at once, each in its own single-threaded process (default: one per core).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Train only shard I of N (0-based), a deterministic cost-balanced slice of the grid.
    /// Defaults to SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT when those are set.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Do not start a run whose estimated time would exceed this many hours since start.
    #[arg(long)]
    pub max_hours: Option<f64>,
    /// Only train; skip collecting, fitting and reporting (e.g. on a shard of a cluster job).
    #[arg(long)]
    pub no_fit: bool,
    /// GPUs to spread runs over (cuda backend), comma separated indices, e.g. 0,1,2,3; each
    /// new run goes to the device with the fewest active runs, so --jobs 8 --devices 0,1
    /// trains four small models per GPU. Default: device 0.
    #[arg(long, value_delimiter = ',', value_name = "I,J,...")]
    pub devices: Vec<usize>,
}

pub fn run(args: Args) -> Result<Exit> {
    let Args { at: super::SweepAt { sweep, results }, jobs, shard, max_hours, no_fit, devices } = args;
    let (sw, data) = crate::app::sweep::load_and_prepare(&sweep)?;
    eprint!("{data}");
    if let Some(w) = crate::runner::plan::curve_evaluations_warning(&sw) {
        eprint!("{w}");
    }
    let jobs = jobs.unwrap_or_else(crate::runner::default_jobs);
    if jobs == 0 {
        return Err(crate::UserError("--jobs must be at least 1".into()).into());
    }
    let shard = crate::runner::plan::shard_from_env(shard.as_deref())?;
    let opts =
        crate::runner::RunOptions { results: results.clone(), jobs, shard, max_hours, worker_exe: None, devices };
    let rep = crate::runner::run(&sw, &opts)?;
    eprintln!(
        "trained {} run(s), {} already done, {} diverged, {} failed, {} not started, {} running elsewhere, in {}",
        rep.trained,
        rep.skipped_done,
        rep.diverged.len(),
        rep.failed.len(),
        rep.not_started,
        rep.elsewhere.len(),
        crate::runner::plan::hms(rep.wall_s)
    );
    if rep.interrupted {
        eprintln!("stopped by a signal; unfinished runs are checkpointed and `run` again resumes them");
        return Ok(Exit::Stopped);
    }
    if no_fit || shard.is_some() {
        return Ok(Exit::failure_if(!rep.failed.is_empty()));
    }
    let dir = crate::store::SweepDir::new(&results, &sw.name);
    crate::runner::exit_on_stop_signal(Exit::Stopped.code());
    let report = match crate::app::fit::collect_fit_report(&sw, &dir) {
        Ok(r) => r,
        // After failed runs, "no finished runs" (or any other fit error) is the
        // failure's consequence, not bad input: exit 1, not 2.
        Err(e) if !rep.failed.is_empty() => {
            eprintln!("error: {e:#}");
            eprintln!("{} run(s) failed (see above)", rep.failed.len());
            return Ok(Exit::Failure);
        }
        Err(e) => return Err(e),
    };
    println!("report: {}", report.display());
    println!("fit:    {}", dir.fit_json().display());
    println!("runs:   {}", dir.runs_parquet().display());
    Ok(Exit::failure_if(!rep.failed.is_empty()))
}
