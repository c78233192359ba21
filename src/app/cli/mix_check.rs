//! `mix-check`: held-out mixtures at a larger size.

use super::Exit;
use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {
    /// The sweep's results folder (results/<sweep>), fitted with the data_mixing law.
    pub dir: std::path::PathBuf,
    /// Width of the check runs (default: twice the width of the sweep's largest run).
    #[arg(long)]
    pub width: Option<usize>,
    /// Depth of the check runs (default: that of the sweep's largest run).
    #[arg(long)]
    pub depth: Option<usize>,
    /// Runs trained at once (default: one per core).
    #[arg(long)]
    pub jobs: Option<usize>,
}

pub fn run(args: Args) -> Result<Exit> {
    let Args { dir, width, depth, jobs } = args;
    let opts = crate::app::mix_check::Options { width, depth, jobs: jobs.unwrap_or_else(crate::runner::default_jobs) };
    let c = crate::app::mix_check::run(&dir, &opts)?;
    for r in &c.rows {
        println!("{:>2}. {:<40} predicted {:.4}  actual {:.4}", r.rank, r.label, r.predicted, r.actual);
    }
    println!("{}", c.verdict);
    println!("report: {}", crate::store::SweepDir::at(&dir).report_md().display());
    Ok(Exit::Success)
}
