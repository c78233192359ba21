//! `curve-holdout` (research, on the tool itself): the loss-curve law's length backtest.

use super::Exit;
use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {
    pub dir: std::path::PathBuf,
    /// Tokens per parameter of the runs fitted, comma separated.
    #[arg(long, value_delimiter = ',', requires = "predict")]
    pub fit: Vec<f64>,
    /// Tokens per parameter of the runs predicted, comma separated.
    #[arg(long, value_delimiter = ',', requires = "fit")]
    pub predict: Vec<f64>,
    /// Leave out each run's evaluations before this fraction of its steps.
    #[arg(long, default_value_t = 0.0)]
    pub skip_frac: f64,
    /// Only the runs of this model size N (a per-size fit).
    #[arg(long)]
    pub params: Option<f64>,
    /// --fit and --predict are training tokens (a grid over tokens, e.g. WSD branches)
    /// instead of tokens per parameter.
    #[arg(long)]
    pub tokens: bool,
    /// Results folders of the same sweep under other seeds (`[sweep] seed`, another
    /// name), comma separated: fit and score each run's mean curve over all the seeds.
    #[arg(long, value_delimiter = ',')]
    pub replicates: Vec<std::path::PathBuf>,
}

pub fn run(args: Args) -> Result<Exit> {
    let Args { dir, fit, predict, skip_frac, params, tokens, replicates } = args;
    use crate::app::curve::LengthAxis;
    if fit.is_empty() && predict.is_empty() {
        // Every split the sweep allows, on the axis its grid is over (or --tokens).
        let runs = crate::app::curve::holdout_runs(&dir, skip_frac, params, &replicates)?;
        let by = if tokens { LengthAxis::Tokens } else { crate::app::curve_splits::grid_axis(&runs) };
        print!("{}", crate::app::curve_splits::table(&runs, by)?);
        return Ok(Exit::Success);
    }
    let by = if tokens { LengthAxis::Tokens } else { LengthAxis::TokensPerParam };
    print!("{}", crate::app::curve::holdout_table(&dir, &fit, &predict, by, skip_frac, params, &replicates)?);
    Ok(Exit::Success)
}
