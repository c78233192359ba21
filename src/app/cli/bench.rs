//! `bench`: training throughput of the reference models.

use super::Exit;
use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {
    /// Models to run (tiny, small, medium); all by default.
    pub models: Vec<String>,
    /// Timed steps per model (the median step time is reported).
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// cpu (burn flex, one thread per RAYON_NUM_THREADS) or cuda (needs `--features cuda`).
    #[arg(long, default_value = "cpu")]
    pub backend: String,
}

pub fn run(args: Args) -> Result<Exit> {
    let Args { models, steps, backend } = args;
    let table = crate::app::bench::run(&models, steps, &backend).map_err(|e| crate::UserError(format!("{e:#}")))?;
    println!("{table}");
    Ok(Exit::Success)
}
