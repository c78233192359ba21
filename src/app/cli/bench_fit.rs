//! `bench-fit`: time the Chinchilla approach-3 fit on a CSV.

use super::Exit;
use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {
    /// Epoch AI's svg_extracted_data.csv (../shared/reference-data/chinchilla/).
    pub csv: std::path::PathBuf,
}

pub fn run(args: Args) -> Result<Exit> {
    let Args { csv } = args;
    println!("{}", crate::app::bench::fit::bench_chinchilla(&csv)?);
    Ok(Exit::Success)
}
