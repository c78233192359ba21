//! `fit`: fit the laws to a results folder or a CSV/Parquet file and write fit.json.

use super::Exit;
use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {
    /// A results folder (results/<sweep>) or a CSV/Parquet file.
    pub path: std::path::PathBuf,
    /// Where to write fit.json (default: DIR/fit.json, or ./fit.json for a file).
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
    /// Target compute budget in FLOPs (overrides the sweep's [target]).
    #[arg(long)]
    pub target_flops: Option<f64>,
    /// Target parameter count (overrides the sweep's [target]).
    #[arg(long)]
    pub target_params: Option<f64>,
    /// Bootstrap resamples for the 95% intervals (0 disables).
    #[arg(long)]
    pub bootstrap: Option<usize>,
    /// Laws to fit, comma separated (default: the sweep's, or chinchilla).
    #[arg(long, value_delimiter = ',')]
    pub laws: Option<Vec<crate::fit::LawName>>,
    /// Seed of the bootstrap.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// A reference fit.json: also report each run's density (effective-parameter ratio
    /// N_hat/N against the reference law, the Densing Law) under `laws.density`.
    #[arg(long, value_name = "FIT_JSON")]
    pub density_ref: Option<std::path::PathBuf>,
}

pub fn run(args: Args) -> Result<Exit> {
    let Args { path, out, target_flops, target_params, bootstrap, laws, seed, density_ref } = args;
    let (obs, mut opts, default_out, left_out) = if path.is_dir() {
        let sw = crate::app::sweep::sweep_of_dir(&path)?;
        let sd = crate::store::SweepDir::at(&path);
        let df = crate::store::frame::read_frame(&sd.runs_parquet())?;
        let origin = sd.runs_parquet().display().to_string();
        let (obs, left_out) = crate::app::fit::obs_of_frame(&df, &origin, sw.fit.min_steps)?;
        (obs, crate::app::fit::fit_options_of_dir(&sw, &sd, &df), sd.fit_json(), left_out)
    } else {
        let df = crate::store::frame::read_frame(&path)?;
        let opts = crate::fit::FitOptions {
            bootstrap: 1000,
            backtest: true,
            laws: vec![crate::fit::LawName::Chinchilla],
            ..Default::default()
        };
        (
            crate::store::frame::to_obs(&df, &path.display().to_string())?,
            opts,
            std::path::PathBuf::from("fit.json"),
            Vec::new(),
        )
    };
    if target_flops.is_some() || target_params.is_some() {
        opts.target_flops = target_flops;
        opts.target_params = target_params;
    }
    if let Some(b) = bootstrap {
        opts.bootstrap = b;
    }
    if let Some(l) = laws {
        opts.laws = l;
    }
    opts.seed = seed;
    // The input is the user's data: a fit it cannot support is bad input (exit 2).
    let mut rep = crate::app::fit::fit_leaving_out(&obs, left_out, &opts)
        .map_err(|e| crate::UserError(format!("{}: {e:#}", path.display())))?;
    if let Some(r) = density_ref {
        let reference: crate::fit::FitReport =
            crate::store::read_json(&r).map_err(|e| crate::UserError(format!("--density-ref: {e:#}")))?;
        let law = reference.params.ok_or_else(|| {
            crate::UserError(format!("--density-ref: {} has no chinchilla law (it was skipped)", r.display()))
        })?;
        rep.laws.density = Some(crate::fit::density_table(&law, &obs));
    }
    if path.is_dir() {
        crate::app::curve::add_curve_law_dir(&path, &opts.laws, opts.bootstrap, seed, &mut rep)?;
    }
    // A law the data cannot support is skipped with its reason; only when nothing at all
    // could be fitted is the input itself unusable (exit 2).
    if rep.params.is_none() && rep.laws.is_empty() {
        let why: Vec<String> = rep.skipped.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        return Err(crate::UserError(format!("{}: no law could be fitted ({})", path.display(), why.join("; "))).into());
    }
    let out = out.unwrap_or(default_out);
    crate::store::write_json_atomic(&out, &rep)?;
    println!("{}", serde_json::to_string_pretty(&rep)?);
    for (law, why) in &rep.skipped {
        eprintln!("skipped law {law}: {why}");
    }
    eprintln!("fit: {}", out.display());
    Ok(Exit::Success)
}
