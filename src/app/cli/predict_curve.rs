//! `predict-curve`: the loss-curve law's predicted curve with its band.

use super::Exit;
use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {
    /// A results folder whose fit.json has the loss_curve law.
    pub dir: std::path::PathBuf,
    /// A `step,lr` CSV with the learning rate of every update from 0 (default: the target's).
    #[arg(long)]
    pub schedule: Option<std::path::PathBuf>,
    /// Model size N (default: the target's).
    #[arg(long)]
    pub params: Option<f64>,
    /// Steps to predict (default: the target's, or the schedule file's length).
    #[arg(long)]
    pub steps: Option<u64>,
    /// Peak learning rate of the target's schedule (default: the sweep's).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Points on the curve.
    #[arg(long, default_value_t = 128)]
    pub points: usize,
    /// Print CSV (step,tokens,lr,loss,lo,hi) instead of a table.
    #[arg(long)]
    pub csv: bool,
}

pub fn run(args: Args) -> Result<Exit> {
    let Args { dir, schedule, params, steps, lr, points, csv } = args;
    let req = crate::app::curve::CurveRequest { params, steps, peak_lr: lr, schedule_csv: schedule, points, csv };
    print!("{}", crate::app::curve::predict_curve(&dir, &req)?);
    Ok(Exit::Success)
}
