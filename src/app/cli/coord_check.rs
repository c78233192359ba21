//! `coord-check`: μP's coordinate check.

use super::Exit;
use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {
    /// The sweep TOML file (its widths, and its first run's depth, lr, batch and data).
    pub sweep: std::path::PathBuf,
    /// Results root.
    #[arg(long, default_value = "results")]
    pub results: std::path::PathBuf,
    /// Optimizer steps per width.
    #[arg(long, default_value_t = 10)]
    pub steps: u64,
    /// Learning rate (default: the sweep's first run's).
    #[arg(long)]
    pub lr: Option<f64>,
}

pub fn run(args: Args) -> Result<Exit> {
    let Args { sweep, results, steps, lr } = args;
    let (sw, _) = crate::app::sweep::load_and_prepare(&sweep)?;
    if lr.is_some_and(|v| !(v > 0.0 && v.is_finite())) {
        return Err(crate::UserError("--lr must be a positive number".into()).into());
    }
    let cc = crate::app::coord_check::run(&sw, steps, lr)
        .map_err(|e| crate::UserError(format!("{}: {e:#}", sweep.display())))?;
    let dir = crate::store::SweepDir::new(&results, &sw.name);
    std::fs::create_dir_all(&dir.root)?;
    let md = cc.markdown();
    crate::store::write_atomic(&dir.root.join("coord_check.md"), md.as_bytes())?;
    crate::store::write_json_atomic(&dir.root.join("coord_check.json"), &cc)?;
    crate::store::write_atomic(&dir.root.join("coord_check.svg"), cc.svg()?.as_bytes())?;
    print!("{md}");
    eprintln!("coord-check: {}", dir.root.join("coord_check.md").display());
    Ok(Exit::Success)
}
