//! `mix-predict`: a data_mixing fit's losses for any mixture.

use super::Exit;
use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {
    /// The sweep's results folder (results/<sweep>), fitted with the data_mixing law.
    pub dir: std::path::PathBuf,
    /// Weights as DOMAIN=WEIGHT pairs (normalised to sum 1; absent domains weigh 0).
    #[arg(required = true, value_name = "DOMAIN=WEIGHT")]
    pub weights: Vec<String>,
    /// Training compute to predict at (default: the fit's target).
    #[arg(long)]
    pub flops: Option<f64>,
}

pub fn run(args: Args) -> Result<Exit> {
    let Args { dir, weights, flops } = args;
    print!("{}", crate::app::fit::mix_predict(&dir, &weights, flops)?);
    Ok(Exit::Success)
}
