//! `bench-data`: the data loader's cost on a large token shard.

use super::Exit;
use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {
    /// Shard size in GB.
    #[arg(long, default_value_t = 1.0)]
    pub gb: f64,
    /// A sparse shard of zeros (no disk space, no write time) instead of random tokens.
    #[arg(long)]
    pub sparse: bool,
    /// Training windows to sample.
    #[arg(long, default_value_t = 20000)]
    pub windows: usize,
    /// Folder for the temporary shard (deleted afterwards).
    #[arg(long, default_value = "/tmp")]
    pub dir: std::path::PathBuf,
}

pub fn run(args: Args) -> Result<Exit> {
    let Args { gb, sparse, windows, dir } = args;
    if !(gb > 0.0 && gb <= 8.0) || windows == 0 {
        return Err(crate::UserError("--gb must be in (0, 8] and --windows at least 1".into()).into());
    }
    print!("{}", crate::app::bench::data::run(&dir, gb, sparse, windows)?);
    Ok(Exit::Success)
}
