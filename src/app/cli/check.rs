//! `check`: train larger models and record whether the law's intervals held.

use super::Exit;
use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {
    /// The sweep's results folder (results/<sweep>) with its fit.json.
    pub dir: std::path::PathBuf,
    /// Width of a single check model (with --depth; a multiple of the sweep's head width).
    #[arg(long)]
    pub width: Option<usize>,
    /// Depth of that model.
    #[arg(long)]
    pub depth: Option<usize>,
    /// Tokens per parameter of that model (default 20).
    #[arg(long)]
    pub tokens_per_param: Option<f64>,
    /// Compute of the (smallest) check model as a multiple of the sweep's largest run
    /// (default: 30 for one model, 10 to 30 for two or three).
    #[arg(long)]
    pub factor: Option<f64>,
    /// How many models, 1 to 3, spread geometrically from K to 3K (default K = 10).
    #[arg(long, default_value_t = 1)]
    pub count: usize,
    /// Runs trained at once (default: one per core).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Print the plan (shapes, compute, predictions) and train nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(args: Args) -> Result<Exit> {
    let Args { dir, width, depth, tokens_per_param, factor, count, jobs, dry_run } = args;
    let opts = crate::app::check::Options {
        width,
        depth,
        tokens_per_param,
        factor,
        count,
        jobs: jobs.unwrap_or_else(crate::runner::default_jobs),
        dry_run,
    };
    if dry_run {
        let (sweep, _, planned, c_max) = crate::app::check::plan(&dir, &opts)?;
        let (secs, total, note) = crate::app::check::estimate(&dir, &sweep.name, &planned, opts.jobs)?;
        println!("check plan (sweep's largest run: C = 6ND = {c_max:.3e} FLOPs; nothing trained):");
        for (p, s) in planned.iter().zip(&secs) {
            let t = if *s > 0.0 { format!("about {} on one job", crate::runner::plan::hms(*s)) } else { "done".into() };
            println!("  {}  N by {}; {t}", p.entry.line(), p.entry.rule);
        }
        if total > 0.0 {
            println!("training takes about {} with --jobs {} ({note})", crate::runner::plan::hms(total), opts.jobs);
        } else {
            println!("nothing to train: every check model is DONE (`check` settles the ledger)");
        }
        return Ok(Exit::Success);
    }
    print!("{}", crate::app::check::run(&dir, &opts)?.summary());
    println!("ledger: {}", crate::store::SweepDir::at(&dir).check_json().display());
    println!("report: {}", crate::store::SweepDir::at(&dir).report_md().display());
    Ok(Exit::Success)
}
