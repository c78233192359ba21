//! `bench-curve` (research, on the tool itself): time the loss-curve fit on a synthetic sweep.

use super::Exit;
use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {
    /// Model sizes (five schedules each).
    #[arg(long, default_value_t = 20)]
    pub sizes: usize,
    /// Bootstrap refits after the fit.
    #[arg(long, default_value_t = 0)]
    pub bootstrap: usize,
}

pub fn run(args: Args) -> Result<Exit> {
    let Args { sizes, bootstrap } = args;
    let runs = crate::fit::curve::synthetic_sweep(sizes, 0);
    let points: usize = runs.iter().map(|r| r.steps.len()).sum();
    let f = crate::fit::curve::fit_with_rollout(&runs, bootstrap, 0)?;
    println!(
        "loss_curve: {} runs, {points} evaluations, {} shape points screened, {} L-BFGS starts, \
         {bootstrap} bootstrap refits: {:.2} s on {} threads; in-sample mean error {:.3}%",
        runs.len(),
        f.screened,
        f.starts,
        f.fit_seconds,
        rayon::current_num_threads(),
        100.0 * f.in_sample.mean_rel
    );
    match &f.rollout {
        Some(r) => println!(
            "rollout backtest over curves (k = {}): {:.2} s more",
            r.rollout.by_factor.iter().map(|s| format!("{:.0}", s.k)).collect::<Vec<_>>().join(", "),
            r.seconds
        ),
        None => println!("rollout backtest over curves: none (too few runs to hold any out)"),
    }
    Ok(Exit::Success)
}
