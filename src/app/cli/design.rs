//! `design`: propose a grid for a budget, or the next runs of a sweep (`--continue`).

use super::Exit;
use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {
    /// Budget in training FLOPs (what `plan` counts; WSD branches from their branch point).
    #[arg(long)]
    pub budget_flops: Option<f64>,
    /// Budget in wall-clock hours with --jobs jobs (`plan`'s time model at its built-in
    /// throughput: a grid is designed before anything is measured).
    #[arg(long)]
    pub budget_hours: Option<f64>,
    /// Parallel jobs the hours budget assumes (default: one per core).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// The target compute C = 6ND to predict (required without --continue; with it, the
    /// sweep's own [target] unless given).
    #[arg(long)]
    pub target_flops: Option<f64>,
    /// Adaptive follow-up of a finished or partly finished sweep: its results folder
    /// (results/NAME). Refits the finished runs, takes the refit's bootstrap laws as the
    /// prior, and proposes the runs (unfinished cells of the grid, new tokens per parameter,
    /// new sizes) that shrink the expected interval most per FLOP, within the budget
    /// (default: half of what the whole sweep costs), as a sweep file with the same name
    /// (default DIR/continue.toml) that `run` resumes into the same folder.
    #[arg(long = "continue", value_name = "DIR", conflicts_with_all = ["prior", "from", "warmup", "min_tokens", "name"])]
    pub continue_dir: Option<std::path::PathBuf>,
    /// With --continue: also write the baseline, the same FLOPs spent on a uniform
    /// extension of the grid (each size in turn), to train and compare.
    #[arg(long)]
    pub uniform_out: Option<std::path::PathBuf>,
    /// Allowed widths, comma separated (multiples of the recipe's head_dim); with --depths
    /// of equal length they pair up, with one depth it applies to all (default: 10 shapes
    /// from 16x1 to 192x3).
    #[arg(long, value_delimiter = ',')]
    pub widths: Vec<usize>,
    /// Allowed depths, comma separated: one, or one per width.
    #[arg(long, value_delimiter = ',')]
    pub depths: Vec<usize>,
    /// Allowed tokens-per-parameter values, comma separated (default 2.5,5,...,160). With
    /// --continue on a grid over `tokens`: not allowed (its own counts and 2x and 4x its
    /// largest are the candidates).
    #[arg(long, value_delimiter = ',')]
    pub tpp: Vec<f64>,
    /// What to narrow: the predicted loss, N_opt, or both.
    #[arg(long, value_enum, default_value = "n-opt")]
    pub objective: crate::app::design::Objective,
    /// Prior: a fit.json (its bootstrap laws and residual noise); default built in.
    #[arg(long)]
    pub prior: Option<std::path::PathBuf>,
    /// The recipe (data, model, train, fit tables) the grid goes into (default: the
    /// quickstart's); its own grid is simulated as the baseline.
    #[arg(long)]
    pub from: Option<std::path::PathBuf>,
    /// Where to write the designed sweep (default sweeps/designed.toml; with --continue,
    /// DIR/continue.toml).
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
    /// Simulated sweeps per finalist grid.
    #[arg(long, default_value_t = 24)]
    pub sims: usize,
    /// Candidates (best by the linearised approximation) screened by a short simulation.
    #[arg(long, default_value_t = 12)]
    pub screen: usize,
    /// Screened candidates simulated in full (--sims sweeps each).
    #[arg(long, default_value_t = 3)]
    pub finalists: usize,
    /// Override the recipe's WSD warmup fraction: decay branches of one family can span at
    /// most (1 - decay) / warmup in tokens (16x for the quickstart's 0.05 and 0.2), so a
    /// shorter warmup allows a wider range of tokens per parameter.
    #[arg(long)]
    pub warmup: Option<f64>,
    /// The fewest training tokens a designed run may have (default: the --from recipe's
    /// shortest run, and no fewer than its `[fit] min_steps` steps; 0 for no minimum). Very short runs sit in another regime than long
    /// ones (on real text, runs of tens of thousands of tokens are still learning byte
    /// statistics), which one law's form does not join.
    #[arg(long)]
    pub min_tokens: Option<f64>,
    /// The designed sweep's name (its results folder).
    #[arg(long, default_value = "designed")]
    pub name: String,
}

pub fn run(args: Args) -> Result<Exit> {
    let Args {
        budget_flops,
        budget_hours,
        jobs,
        target_flops,
        continue_dir,
        uniform_out,
        widths,
        depths,
        tpp,
        objective,
        prior,
        from,
        out,
        sims,
        screen,
        finalists,
        name,
        warmup,
        min_tokens,
    } = args;
    let jobs = jobs.unwrap_or_else(crate::runner::default_jobs);
    crate::app::design::check_budgets(budget_flops, budget_hours, target_flops)?;
    if let Some(dir) = continue_dir {
        // --prior, --from, --warmup, --min-tokens and --name conflict with --continue (clap):
        // the prior is the sweep's own refit, the recipe and schedule are the sweep's.
        let shapes = if widths.is_empty() && depths.is_empty() {
            Vec::new()
        } else {
            crate::app::design::shapes_from_flags(&widths, &depths)?
        };
        let args = crate::app::design_continue::ContinueArgs {
            budget_flops,
            budget_hours,
            jobs,
            target_flops,
            shapes,
            tpp,
            objective,
            sims,
            out,
            uniform_out,
        };
        print!("{}", crate::app::design_continue::design_continue(&dir, &args)?);
        return Ok(Exit::Success);
    }
    let Some(target_flops) = target_flops else {
        return Err(crate::UserError("design needs --target-flops (or --continue DIR)".into()).into());
    };
    let shapes = crate::app::design::shapes_from_flags(&widths, &depths)?;
    let args = crate::app::design::DesignArgs {
        budget_flops,
        budget_hours,
        jobs,
        target_flops,
        shapes,
        tpp: if tpp.is_empty() { crate::app::design::DEFAULT_TPP.to_vec() } else { tpp },
        objective,
        sims,
        screen,
        finalists,
        name,
        warmup,
        min_tokens,
    };
    let prior = crate::app::design::load_prior(prior.as_deref())?;
    let out = out.unwrap_or_else(|| std::path::PathBuf::from("sweeps/designed.toml"));
    print!("{}", crate::app::design::design(from.as_deref(), &args, &prior, &out)?);
    Ok(Exit::Success)
}
