//! `report`: rewrite (and compare) reports from the files of results folders.

use super::Exit;
use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {
    /// Results folders (results/<sweep>); the first is the reference of a comparison.
    #[arg(required = true)]
    pub dirs: Vec<std::path::PathBuf>,
    /// Accelerator named in the GPU-hour estimate.
    #[arg(long, default_value = "H100 SXM (bf16 dense)")]
    pub accelerator: String,
    /// Its peak dense throughput in TFLOP/s at the training precision.
    #[arg(long, default_value_t = 989.0)]
    pub peak_tflops: f64,
    /// Model FLOPs utilisation assumed for the GPU-hour estimate, in (0, 1].
    #[arg(long, default_value_t = 0.4)]
    pub mfu: f64,
}

pub fn run(args: Args) -> Result<Exit> {
    let Args { dirs, accelerator, peak_tflops, mfu } = args;
    let opts = crate::report::ReportOptions { accelerator, peak_tflops, mfu };
    for p in crate::app::report::report_dirs(&dirs, &opts)? {
        println!("report: {}", p.display());
    }
    Ok(Exit::Success)
}
