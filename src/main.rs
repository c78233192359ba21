//! The `windtunnel` command line: argument parsing and dispatch only. Exit codes: 0 success,
//! 2 bad input (sweep file, flags, data files), 4 `run` stopped by a signal before finishing
//! (checkpointed; run again to resume), 1 any other failure.

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use windtunnel::app::{self, fit as app_fit, sweep as app_sweep};
use windtunnel::store::{self, frame, SweepDir};
use windtunnel::{fit, runner, spec, UserError};

/// A model wind tunnel: train grids of small transformers, fit scaling laws, and predict the
/// loss and compute-optimal size of a much larger target run, with error bars.
#[derive(Parser)]
#[command(name = "windtunnel", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Dry run: list every run of the sweep with N, D, FLOPs and estimated time. Trains nothing.
    Plan {
        /// The sweep TOML file.
        sweep: PathBuf,
        /// Results root (the sweep writes into RESULTS/<sweep name>/).
        #[arg(long, default_value = "results")]
        results: PathBuf,
        /// Parallel jobs the time estimate assumes (default: one per core).
        #[arg(long)]
        jobs: Option<usize>,
        /// Also predict the answer's precision before training: simulate the sweep's fit many
        /// times (true laws from the prior, measured run noise) and print the expected 95%
        /// interval spreads at the target (loss, N_opt, D_opt, tokens per parameter), how often
        /// the verdict would say "not determined", and what the grid leaves undetermined.
        #[arg(long)]
        precision: bool,
        /// Prior for --precision: a fit.json whose bootstrap laws and residual noise are used
        /// (default: a built-in table from the quickstart's own fit).
        #[arg(long)]
        prior: Option<PathBuf>,
        /// Simulated sweeps for --precision (each one fit; about 0.1-0.7 s of one core each).
        #[arg(long, default_value_t = 40)]
        sims: usize,
    },
    /// Train every run not yet DONE (resuming unfinished ones), then fit and write the report.
    Run {
        /// The sweep TOML file.
        sweep: PathBuf,
        /// Results root (the sweep writes into RESULTS/<sweep name>/).
        #[arg(long, default_value = "results")]
        results: PathBuf,
        /// Runs trained at once, each in its own single-threaded process (default: one per core).
        #[arg(long)]
        jobs: Option<usize>,
        /// Train only shard I of N (0-based), a deterministic cost-balanced slice of the grid.
        /// Defaults to SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT when those are set.
        #[arg(long, value_name = "I/N")]
        shard: Option<String>,
        /// Do not start a run whose estimated time would exceed this many hours since start.
        #[arg(long)]
        max_hours: Option<f64>,
        /// Only train; skip collecting, fitting and reporting (e.g. on a shard of a cluster job).
        #[arg(long)]
        no_fit: bool,
        /// GPUs to spread runs over (cuda backend), comma separated indices, e.g. 0,1,2,3; each
        /// new run goes to the device with the fewest active runs, so --jobs 8 --devices 0,1
        /// trains four small models per GPU. Default: device 0.
        #[arg(long, value_delimiter = ',', value_name = "I,J,...")]
        devices: Vec<usize>,
    },
    /// Fit scaling laws to a sweep results folder, or to a CSV/Parquet file with columns
    /// `params`, `tokens` (or `flops`, then D = C/6N) and `loss`.
    Fit {
        /// A results folder (results/<sweep>) or a CSV/Parquet file.
        path: PathBuf,
        /// Where to write fit.json (default: DIR/fit.json, or ./fit.json for a file).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Target compute budget in FLOPs (overrides the sweep's [target]).
        #[arg(long)]
        target_flops: Option<f64>,
        /// Target parameter count (overrides the sweep's [target]).
        #[arg(long)]
        target_params: Option<f64>,
        /// Bootstrap resamples for the 95% intervals (0 disables).
        #[arg(long)]
        bootstrap: Option<usize>,
        /// Laws to fit, comma separated (default: the sweep's, or chinchilla).
        #[arg(long, value_delimiter = ',')]
        laws: Option<Vec<fit::LawName>>,
        /// Seed of the bootstrap.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// A reference fit.json: also report each run's density (effective-parameter ratio
        /// N_hat/N against the reference law, the Densing Law) under `laws.density`.
        #[arg(long, value_name = "FIT_JSON")]
        density_ref: Option<PathBuf>,
    },
    /// Rewrite the report (report.md, report.html, plots/*.svg) of a results folder from its
    /// fit.json and runs.parquet. With several folders, also compare them all against the first
    /// (DIR1/compare.md and compare.html: frontiers overlaid, density relative to the first).
    Report {
        /// Results folders (results/<sweep>); the first is the reference of a comparison.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Accelerator named in the GPU-hour estimate.
        #[arg(long, default_value = "H100 SXM (bf16 dense)")]
        accelerator: String,
        /// Its peak dense throughput in TFLOP/s at the training precision.
        #[arg(long, default_value_t = 989.0)]
        peak_tflops: f64,
        /// Model FLOPs utilisation assumed for the GPU-hour estimate, in (0, 1].
        #[arg(long, default_value_t = 0.4)]
        mfu: f64,
    },
    /// Time the Chinchilla approach-3 fit (4,500-start grid + 1,000 bootstrap refits) on a CSV.
    BenchFit {
        /// Epoch AI's svg_extracted_data.csv (../shared/reference-data/chinchilla/).
        csv: PathBuf,
    },
    /// Training throughput (tokens/s, GFLOP/s) of fixed reference models on the CPU (or, with
    /// --backend cuda, the GPU) backend
    /// (single-threaded unless RAYON_NUM_THREADS says otherwise). Compare with
    /// analysis/torch_bench.py.
    Bench {
        /// Models to run (tiny, small, medium); all by default.
        models: Vec<String>,
        /// Timed steps per model (the median step time is reported).
        #[arg(long, default_value_t = 20)]
        steps: usize,
        /// cpu (burn flex, one thread per RAYON_NUM_THREADS) or cuda (needs `--features cuda`).
        #[arg(long, default_value = "cpu")]
        backend: String,
    },
    /// Data loader cost on a large llm.c token shard: header check, vocabulary scan, opening,
    /// window sampling (tokens/s) and resident memory before and after.
    BenchData {
        /// Shard size in GB.
        #[arg(long, default_value_t = 1.0)]
        gb: f64,
        /// A sparse shard of zeros (no disk space, no write time) instead of random tokens.
        #[arg(long)]
        sparse: bool,
        /// Training windows to sample.
        #[arg(long, default_value_t = 20000)]
        windows: usize,
        /// Folder for the temporary shard (deleted afterwards).
        #[arg(long, default_value = "/tmp")]
        dir: PathBuf,
    },
    /// Predict per-domain losses and the objective of any mixture from a data_mixing fit, at
    /// the fit's target compute (or --flops), next to the recommended mixture.
    MixPredict {
        /// The sweep's results folder (results/<sweep>), fitted with the data_mixing law.
        dir: PathBuf,
        /// Weights as DOMAIN=WEIGHT pairs (normalised to sum 1; absent domains weigh 0).
        #[arg(required = true, value_name = "DOMAIN=WEIGHT")]
        weights: Vec<String>,
        /// Training compute to predict at (default: the fit's target).
        #[arg(long)]
        flops: Option<f64>,
    },
    /// Calibrate the fitted law on larger runs: train one to three models at 10x to 30x (or
    /// --factor K x) the sweep's largest compute with the sweep's own recipe (results in
    /// RESULTS/<sweep>-check), record the law's prediction and 95% interval in DIR/check.json
    /// before training, then whether each actual loss lies inside its interval (exit 0 either
    /// way). Resumable: run it again to finish interrupted runs.
    Check {
        /// The sweep's results folder (results/<sweep>) with its fit.json.
        dir: PathBuf,
        /// Width of a single check model (with --depth; a multiple of the sweep's head width).
        #[arg(long)]
        width: Option<usize>,
        /// Depth of that model.
        #[arg(long)]
        depth: Option<usize>,
        /// Tokens per parameter of that model (default 20).
        #[arg(long)]
        tokens_per_param: Option<f64>,
        /// Compute of the (smallest) check model as a multiple of the sweep's largest run
        /// (default: 30 for one model, 10 to 30 for two or three).
        #[arg(long)]
        factor: Option<f64>,
        /// How many models, 1 to 3, spread geometrically from K to 3K (default K = 10).
        #[arg(long, default_value_t = 1)]
        count: usize,
        /// Runs trained at once (default: one per core).
        #[arg(long)]
        jobs: Option<usize>,
        /// Print the plan (shapes, compute, predictions) and train nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Held-out check of a data_mixing fit: train the recommended, RegMix, uniform and
    /// single-domain mixtures at a larger size than any in the sweep (results in
    /// RESULTS/<sweep>-mixcheck), compare with the law, and add the outcome to DIR's report.
    MixCheck {
        /// The sweep's results folder (results/<sweep>), fitted with the data_mixing law.
        dir: PathBuf,
        /// Width of the check runs (default: twice the width of the sweep's largest run).
        #[arg(long)]
        width: Option<usize>,
        /// Depth of the check runs (default: that of the sweep's largest run).
        #[arg(long)]
        depth: Option<usize>,
        /// Runs trained at once (default: one per core).
        #[arg(long)]
        jobs: Option<usize>,
    },
    /// Collect the finished runs of a sweep into runs.parquet, fit and write the report, without
    /// training anything (the merge step of a cluster sweep).
    Collect {
        /// The sweep TOML file.
        sweep: PathBuf,
        /// Results root (the sweep lives in RESULTS/<sweep name>/).
        #[arg(long, default_value = "results")]
        results: PathBuf,
        /// Fit even when some run folders cannot be used (a file, a symlink, an unreadable or
        /// copied folder; refused by default, since fit.json would be replaced by a fit on
        /// fewer runs); fit.json's warnings name the folders left out.
        #[arg(long)]
        allow_damaged: bool,
    },
    /// Where a sweep stands: done / running / stale / stopped / failed / diverged / pending
    /// counts and a per-run table. Reads files only, so it works while the sweep runs on other
    /// nodes. Exits 2 if DIR is not a sweep results folder.
    Status {
        /// A results folder (results/<sweep>).
        dir: PathBuf,
    },
    /// Write Slurm batch scripts for the sweep (a job array of shards and a merge job that
    /// fits once the array has ended) into OUT, and optionally submit them.
    Slurm {
        /// The sweep TOML file.
        sweep: PathBuf,
        /// Results root, on a filesystem every node sees (the sweep writes RESULTS/<sweep name>/).
        #[arg(long, default_value = "results")]
        results: PathBuf,
        /// Array tasks, each training a cost-balanced shard, 1 to 1000 (default: min(runs, 8)).
        #[arg(long)]
        shards: Option<usize>,
        /// Slurm partition (default: the cluster's default partition).
        #[arg(long)]
        partition: Option<String>,
        /// Time limit per task, HH:MM:SS. Tasks checkpoint shortly before it and are requeued.
        #[arg(long, default_value = "04:00:00")]
        time: String,
        /// CPUs per task; each task trains this many runs at once, one per CPU.
        #[arg(long, default_value_t = 1)]
        cpus: usize,
        /// Memory per task, in sbatch's syntax (e.g. 8G); default: the partition's default.
        #[arg(long)]
        mem: Option<String>,
        /// GPUs per task (--gres=gpu:G).
        #[arg(long)]
        gpus: Option<usize>,
        /// Seconds before the time limit at which tasks are told to checkpoint and stop
        /// (default: a tenth of --time, between 30 s and 300 s).
        #[arg(long)]
        grace: Option<u64>,
        /// Where to write array.sbatch and merge.sbatch (default: RESULTS/<sweep>/slurm/).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Submit both scripts with sbatch (the merge job after the array) and print the job ids.
        #[arg(long)]
        submit: bool,
    },
    /// μP coordinate check: train a few steps at each width of the sweep's grid (same depth,
    /// learning rate and data) and report, per activation, its RMS and the RMS of its change
    /// against width, with log-log slopes (flat under a correct μP). Writes
    /// RESULTS/<sweep>/coord_check.{md,json,svg}.
    CoordCheck {
        /// The sweep TOML file (its widths, and its first run's depth, lr, batch and data).
        sweep: PathBuf,
        /// Results root.
        #[arg(long, default_value = "results")]
        results: PathBuf,
        /// Optimizer steps per width.
        #[arg(long, default_value_t = 10)]
        steps: u64,
        /// Learning rate (default: the sweep's first run's).
        #[arg(long)]
        lr: Option<f64>,
    },
    /// The loss-curve law's predicted curve (fit.json `laws.loss_curve`) with its 95% band: by
    /// default the target run's under the sweep's schedule scaled to the target's steps, to
    /// watch a large run against while it trains.
    PredictCurve {
        /// A results folder whose fit.json has the loss_curve law.
        dir: PathBuf,
        /// A `step,lr` CSV with the learning rate of every update from 0 (default: the target's).
        #[arg(long)]
        schedule: Option<PathBuf>,
        /// Model size N (default: the target's).
        #[arg(long)]
        params: Option<f64>,
        /// Steps to predict (default: the target's, or the schedule file's length).
        #[arg(long)]
        steps: Option<u64>,
        /// Peak learning rate of the target's schedule (default: the sweep's).
        #[arg(long)]
        lr: Option<f64>,
        /// Points on the curve.
        #[arg(long, default_value_t = 128)]
        points: usize,
        /// Print CSV (step,tokens,lr,loss,lo,hi) instead of a table.
        #[arg(long)]
        csv: bool,
    },
    /// Internal: the multi-power-law paper's protocol on its published curves (fit three
    /// schedules, predict six), printed as a table.
    #[command(hide = true)]
    MplProtocol {
        #[arg(default_value = "../shared/reference-data/mpl")]
        dir: PathBuf,
    },
    /// Internal: the loss-curve law's length backtest: fit on runs at some tokens per
    /// parameter, predict the whole curves of the runs at others. Without --fit and --predict:
    /// every split the sweep allows (each length from the third on, from the two below it).
    #[command(hide = true)]
    CurveHoldout {
        dir: PathBuf,
        /// Tokens per parameter of the runs fitted, comma separated.
        #[arg(long, value_delimiter = ',')]
        fit: Vec<f64>,
        /// Tokens per parameter of the runs predicted, comma separated.
        #[arg(long, value_delimiter = ',')]
        predict: Vec<f64>,
        /// Leave out each run's evaluations before this fraction of its steps.
        #[arg(long, default_value_t = 0.0)]
        skip_frac: f64,
        /// Only the runs of this model size N (a per-size fit).
        #[arg(long)]
        params: Option<f64>,
        /// --fit and --predict are training tokens (a grid over tokens, e.g. WSD branches)
        /// instead of tokens per parameter.
        #[arg(long)]
        tokens: bool,
        /// Results folders of the same sweep under other seeds (`[sweep] seed`, another
        /// name), comma separated: fit and score each run's mean curve over all the seeds.
        #[arg(long, value_delimiter = ',')]
        replicates: Vec<PathBuf>,
    },
    /// Internal: times the loss-curve law's fit on a synthetic 100-run sweep (every evaluation).
    #[command(hide = true)]
    BenchCurve {
        /// Model sizes (five schedules each).
        #[arg(long, default_value_t = 20)]
        sizes: usize,
        /// Bootstrap refits after the fit.
        #[arg(long, default_value_t = 0)]
        bootstrap: usize,
    },
    /// Propose a grid for a budget: search candidate grids (windows of the allowed sizes x
    /// windows of tokens per parameter, WSD decay branches making extra data sizes cheap) for
    /// the one with the narrowest expected interval at the target, by simulation, and write it
    /// as a sweep TOML whose comments give its expected precision and cost. With --continue
    /// DIR: propose the next runs of a finished or partly finished sweep instead (the prior is
    /// its refit; --prior, --from, --warmup and --name do not apply).
    Design {
        /// Budget in training FLOPs (what `plan` counts; WSD branches from their branch point).
        #[arg(long)]
        budget_flops: Option<f64>,
        /// Budget in wall-clock hours with --jobs jobs (`plan`'s time model at its built-in
        /// throughput: a grid is designed before anything is measured).
        #[arg(long)]
        budget_hours: Option<f64>,
        /// Parallel jobs the hours budget assumes (default: one per core).
        #[arg(long)]
        jobs: Option<usize>,
        /// The target compute C = 6ND to predict (required without --continue; with it, the
        /// sweep's own [target] unless given).
        #[arg(long)]
        target_flops: Option<f64>,
        /// Adaptive follow-up of a finished or partly finished sweep: its results folder
        /// (results/NAME). Refits the finished runs, takes the refit's bootstrap laws as the
        /// prior, and proposes the runs (unfinished cells of the grid, new tokens per parameter,
        /// new sizes) that shrink the expected interval most per FLOP, within the budget
        /// (default: half of what the whole sweep costs), as a sweep file with the same name
        /// (default DIR/continue.toml) that `run` resumes into the same folder.
        #[arg(long = "continue", value_name = "DIR")]
        continue_dir: Option<PathBuf>,
        /// With --continue: also write the baseline, the same FLOPs spent on a uniform
        /// extension of the grid (each size in turn), to train and compare.
        #[arg(long)]
        uniform_out: Option<PathBuf>,
        /// Allowed widths, comma separated (multiples of the recipe's head_dim); with --depths
        /// of equal length they pair up, with one depth it applies to all (default: 10 shapes
        /// from 16x1 to 192x3).
        #[arg(long, value_delimiter = ',')]
        widths: Vec<usize>,
        /// Allowed depths, comma separated: one, or one per width.
        #[arg(long, value_delimiter = ',')]
        depths: Vec<usize>,
        /// Allowed tokens-per-parameter values, comma separated (default 2.5,5,...,160). With
        /// --continue on a grid over `tokens`: not allowed (its own counts and 2x and 4x its
        /// largest are the candidates).
        #[arg(long, value_delimiter = ',')]
        tpp: Vec<f64>,
        /// What to narrow: the predicted loss, N_opt, or both.
        #[arg(long, value_enum, default_value = "n-opt")]
        objective: windtunnel::app::design::Objective,
        /// Prior: a fit.json (its bootstrap laws and residual noise); default built in.
        #[arg(long)]
        prior: Option<PathBuf>,
        /// The recipe (data, model, train, fit tables) the grid goes into (default: the
        /// quickstart's); its own grid is simulated as the baseline.
        #[arg(long)]
        from: Option<PathBuf>,
        /// Where to write the designed sweep (default sweeps/designed.toml; with --continue,
        /// DIR/continue.toml).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Simulated sweeps per finalist grid.
        #[arg(long, default_value_t = 24)]
        sims: usize,
        /// Candidates (best by the linearised approximation) screened by a short simulation.
        #[arg(long, default_value_t = 12)]
        screen: usize,
        /// Screened candidates simulated in full (--sims sweeps each).
        #[arg(long, default_value_t = 3)]
        finalists: usize,
        /// Override the recipe's WSD warmup fraction: decay branches of one family can span at
        /// most (1 - decay) / warmup in tokens (16x for the quickstart's 0.05 and 0.2), so a
        /// shorter warmup allows a wider range of tokens per parameter.
        #[arg(long)]
        warmup: Option<f64>,
        /// The fewest training tokens a designed run may have (default: the --from recipe's
        /// shortest run, and no fewer than its `[fit] min_steps` steps; 0 for no minimum). Very short runs sit in another regime than long
        /// ones (on real text, runs of tens of thousands of tokens are still learning byte
        /// statistics), which one law's form does not join.
        #[arg(long)]
        min_tokens: Option<f64>,
        /// The designed sweep's name (its results folder).
        #[arg(long, default_value = "designed")]
        name: String,
    },
    /// Internal: train one run folder (spawned by `run`, one process per run).
    #[command(hide = true)]
    Worker(runner::worker::WorkerArgs),
}

/// Keeps freed memory in the process. A training step allocates and frees the same few
/// hundred tensors of up to a few MB each; glibc serves those with mmap and returns them on
/// free, so every step page-faults its working set in again (`bench small`: 356k page
/// faults and 15% of the time in the kernel; with these settings 29k and 6%).
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator thresholds; called before any other thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
    }
}

fn main() {
    windtunnel::PROCESS_START.get_or_init(std::time::Instant::now);
    tune_malloc();
    let cli = Cli::parse();
    let code = match dispatch(cli.cmd) {
        Ok(c) => c,
        Err(e) => {
            // Not eprintln!: it panics when stderr cannot be written (a worker's worker.log on
            // a full disk), which would hide the error and the exit code.
            use std::io::Write;
            let mut err = std::io::stderr();
            if let Some(se) = e.downcast_ref::<spec::SpecError>() {
                let _ = writeln!(err, "{se}");
                2
            } else if let Some(u) = e.downcast_ref::<UserError>() {
                let _ = writeln!(err, "error: {u}");
                2
            } else {
                let _ = writeln!(err, "error: {e:#}");
                1
            }
        }
    };
    std::process::exit(code);
}

fn dispatch(cmd: Cmd) -> Result<i32> {
    match cmd {
        Cmd::Plan { sweep, results, jobs, precision, prior, sims } => {
            let (sw, data) = app_sweep::load_and_prepare(&sweep)?;
            print!("{data}");
            runner::plan::check_backend(&sw)?;
            let dir = SweepDir::new(&results, &sw.name);
            let pace = runner::plan::measured_pace(&dir);
            let rows = runner::plan::rows(&sw, &dir, pace);
            let jobs_n = jobs.unwrap_or_else(runner::default_jobs);
            print!("{}", runner::plan::render(&sw, &rows, jobs_n, pace));
            eprint!("{}", runner::plan::elsewhere_note(&sw, &dir).unwrap_or_default());
            let res = runner::plan::Resources::here(&dir);
            eprint!("{}", runner::plan::check_resources(&sw, &rows, jobs_n, &res)?.unwrap_or_default());
            if precision {
                let prior = windtunnel::app::design::load_prior(prior.as_deref())?;
                print!("{}", windtunnel::app::design::plan_precision(&sw, &prior, sims)?);
            }
            Ok(0)
        }
        Cmd::Run { sweep, results, jobs, shard, max_hours, no_fit, devices } => {
            let (sw, data) = app_sweep::load_and_prepare(&sweep)?;
            eprint!("{data}");
            if let Some(w) = runner::plan::curve_evaluations_warning(&sw) {
                eprint!("{w}");
            }
            let jobs = jobs.unwrap_or_else(runner::default_jobs);
            if jobs == 0 {
                return Err(UserError("--jobs must be at least 1".into()).into());
            }
            let shard = runner::plan::shard_from_env(shard.as_deref())?;
            let opts =
                runner::RunOptions { results: results.clone(), jobs, shard, max_hours, worker_exe: None, devices };
            let rep = runner::run(&sw, &opts)?;
            eprintln!(
                "trained {} run(s), {} already done, {} diverged, {} failed, {} not started, {} running elsewhere, in {}",
                rep.trained,
                rep.skipped_done,
                rep.diverged.len(),
                rep.failed.len(),
                rep.not_started,
                rep.elsewhere.len(),
                runner::plan::hms(rep.wall_s)
            );
            if rep.interrupted {
                eprintln!("stopped by a signal; unfinished runs are checkpointed and `run` again resumes them");
                return Ok(4);
            }
            if no_fit || shard.is_some() {
                return Ok(if rep.failed.is_empty() { 0 } else { 1 });
            }
            let dir = SweepDir::new(&results, &sw.name);
            runner::exit_on_stop_signal(4);
            let report = match app_fit::collect_fit_report(&sw, &dir) {
                Ok(r) => r,
                // After failed runs, "no finished runs" (or any other fit error) is the
                // failure's consequence, not bad input: exit 1, not 2.
                Err(e) if !rep.failed.is_empty() => {
                    eprintln!("error: {e:#}");
                    eprintln!("{} run(s) failed (see above)", rep.failed.len());
                    return Ok(1);
                }
                Err(e) => return Err(e),
            };
            println!("report: {}", report.display());
            println!("fit:    {}", dir.fit_json().display());
            println!("runs:   {}", dir.runs_parquet().display());
            Ok(if rep.failed.is_empty() { 0 } else { 1 })
        }
        Cmd::Fit { path, out, target_flops, target_params, bootstrap, laws, seed, density_ref } => {
            let (obs, mut opts, default_out, left_out) = if path.is_dir() {
                let sw = app_sweep::sweep_of_dir(&path)?;
                let sd = SweepDir::at(&path);
                let df = frame::read_frame(&sd.runs_parquet())?;
                let origin = sd.runs_parquet().display().to_string();
                let (obs, left_out) = app_fit::obs_of_frame(&df, &origin, sw.fit.min_steps)?;
                (obs, app_fit::fit_options_of_dir(&sw, &sd, &df), sd.fit_json(), left_out)
            } else {
                let df = frame::read_frame(&path)?;
                let opts = fit::FitOptions {
                    bootstrap: 1000,
                    backtest: true,
                    laws: vec![fit::LawName::Chinchilla],
                    ..Default::default()
                };
                (frame::to_obs(&df, &path.display().to_string())?, opts, PathBuf::from("fit.json"), Vec::new())
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
            let mut rep = app_fit::fit_leaving_out(&obs, left_out, &opts)
                .map_err(|e| UserError(format!("{}: {e:#}", path.display())))?;
            if let Some(r) = density_ref {
                let reference: fit::FitReport =
                    store::read_json(&r).map_err(|e| UserError(format!("--density-ref: {e:#}")))?;
                let law = reference.params.ok_or_else(|| {
                    UserError(format!("--density-ref: {} has no chinchilla law (it was skipped)", r.display()))
                })?;
                rep.laws.density = Some(fit::density_table(&law, &obs));
            }
            if path.is_dir() {
                app::curve::add_curve_law_dir(&path, &opts.laws, opts.bootstrap, seed, &mut rep)?;
            }
            // A law the data cannot support is skipped with its reason; only when nothing at all
            // could be fitted is the input itself unusable (exit 2).
            if rep.params.is_none() && rep.laws.is_empty() {
                let why: Vec<String> = rep.skipped.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                return Err(
                    UserError(format!("{}: no law could be fitted ({})", path.display(), why.join("; "))).into()
                );
            }
            let out = out.unwrap_or(default_out);
            store::write_json_atomic(&out, &rep)?;
            println!("{}", serde_json::to_string_pretty(&rep)?);
            for (law, why) in &rep.skipped {
                eprintln!("skipped law {law}: {why}");
            }
            eprintln!("fit: {}", out.display());
            Ok(0)
        }
        Cmd::Report { dirs, accelerator, peak_tflops, mfu } => {
            let opts = windtunnel::report::ReportOptions { accelerator, peak_tflops, mfu };
            for p in app::report::report_dirs(&dirs, &opts)? {
                println!("report: {}", p.display());
            }
            Ok(0)
        }
        Cmd::BenchFit { csv } => {
            println!("{}", app::bench::fit::bench_chinchilla(&csv)?);
            Ok(0)
        }
        Cmd::Bench { models, steps, backend } => {
            let table = app::bench::run(&models, steps, &backend).map_err(|e| UserError(format!("{e:#}")))?;
            println!("{table}");
            Ok(0)
        }
        Cmd::BenchData { gb, sparse, windows, dir } => {
            if !(gb > 0.0 && gb <= 8.0) || windows == 0 {
                return Err(UserError("--gb must be in (0, 8] and --windows at least 1".into()).into());
            }
            print!("{}", app::bench::data::run(&dir, gb, sparse, windows)?);
            Ok(0)
        }
        Cmd::MixPredict { dir, weights, flops } => {
            print!("{}", app_fit::mix_predict(&dir, &weights, flops)?);
            Ok(0)
        }
        Cmd::Check { dir, width, depth, tokens_per_param, factor, count, jobs, dry_run } => {
            let opts = app::check::Options {
                width,
                depth,
                tokens_per_param,
                factor,
                count,
                jobs: jobs.unwrap_or_else(runner::default_jobs),
                dry_run,
            };
            if dry_run {
                let (sweep, _, planned, c_max) = app::check::plan(&dir, &opts)?;
                let (secs, total, note) = app::check::estimate(&dir, &sweep.name, &planned, opts.jobs)?;
                println!("check plan (sweep's largest run: C = 6ND = {c_max:.3e} FLOPs; nothing trained):");
                for (p, s) in planned.iter().zip(&secs) {
                    let t =
                        if *s > 0.0 { format!("about {} on one job", runner::plan::hms(*s)) } else { "done".into() };
                    println!("  {}  N by {}; {t}", p.entry.line(), p.entry.rule);
                }
                if total > 0.0 {
                    println!("training takes about {} with --jobs {} ({note})", runner::plan::hms(total), opts.jobs);
                } else {
                    println!("nothing to train: every check model is DONE (`check` settles the ledger)");
                }
                return Ok(0);
            }
            let entries = app::check::run(&dir, &opts)?;
            let inside = entries.iter().filter(|e| e.inside == Some(true)).count();
            for e in &entries {
                println!("{}", e.line());
            }
            println!("calibration: {inside} of {} actual losses inside their 95% interval", entries.len());
            println!("ledger: {}", SweepDir::at(&dir).check_json().display());
            println!("report: {}", SweepDir::at(&dir).report_md().display());
            Ok(0)
        }
        Cmd::MixCheck { dir, width, depth, jobs } => {
            let opts = app::mix_check::Options { width, depth, jobs: jobs.unwrap_or_else(runner::default_jobs) };
            let c = app::mix_check::run(&dir, &opts)?;
            for r in &c.rows {
                println!("{:>2}. {:<40} predicted {:.4}  actual {:.4}", r.rank, r.label, r.predicted, r.actual);
            }
            println!("{}", c.verdict);
            println!("report: {}", SweepDir::at(&dir).report_md().display());
            Ok(0)
        }
        Cmd::Collect { sweep, results, allow_damaged } => {
            let sw = app_sweep::load_sweep(&sweep)?;
            let dir = SweepDir::new(&results, &sw.name);
            let f = runner::finished_runs(&sw, &dir);
            eprintln!(
                "{} of {} runs done, {} diverged, {} damaged, {} unusable folder(s), {} not finished",
                f.done.len(),
                sw.runs.len(),
                f.diverged.len(),
                f.damaged.len(),
                f.problems.len(),
                f.unfinished(sw.runs.len())
            );
            for (id, why) in &f.damaged {
                eprintln!("run {id} is DONE but damaged, excluded from the fit (`run` trains it again): {why}");
            }
            let report = app_fit::collect_fit_report_with(&sw, &dir, allow_damaged)?;
            println!("report: {}", report.display());
            println!("fit:    {}", dir.fit_json().display());
            println!("runs:   {}", dir.runs_parquet().display());
            Ok(0)
        }
        Cmd::CoordCheck { sweep, results, steps, lr } => {
            let (sw, _) = app_sweep::load_and_prepare(&sweep)?;
            if lr.is_some_and(|v| !(v > 0.0 && v.is_finite())) {
                return Err(UserError("--lr must be a positive number".into()).into());
            }
            let cc =
                app::coord_check::run(&sw, steps, lr).map_err(|e| UserError(format!("{}: {e:#}", sweep.display())))?;
            let dir = SweepDir::new(&results, &sw.name);
            std::fs::create_dir_all(&dir.root)?;
            let md = cc.markdown();
            store::write_atomic(&dir.root.join("coord_check.md"), md.as_bytes())?;
            store::write_json_atomic(&dir.root.join("coord_check.json"), &cc)?;
            store::write_atomic(&dir.root.join("coord_check.svg"), cc.svg()?.as_bytes())?;
            print!("{md}");
            eprintln!("coord-check: {}", dir.root.join("coord_check.md").display());
            Ok(0)
        }
        Cmd::Status { dir } => {
            let rows = app::status::rows(&dir)?;
            print!("{}", app::status::render(&dir, &rows));
            Ok(0)
        }
        Cmd::Slurm { sweep, results, shards, partition, time, cpus, mem, gpus, grace, out, submit } => {
            let req = app::slurm::Request {
                sweep,
                results,
                shards,
                partition,
                time,
                cpus,
                mem,
                gpus,
                grace_s: grace,
                out,
                submit,
            };
            app::slurm::command(&req)
        }
        Cmd::PredictCurve { dir, schedule, params, steps, lr, points, csv } => {
            let req = app::curve::CurveRequest { params, steps, peak_lr: lr, schedule_csv: schedule, points, csv };
            print!("{}", app::curve::predict_curve(&dir, &req)?);
            Ok(0)
        }
        Cmd::MplProtocol { dir } => {
            print!("{}", app::curve::mpl_protocol(&dir)?);
            Ok(0)
        }
        Cmd::CurveHoldout { dir, fit, predict, skip_frac, params, tokens, replicates } => {
            use app::curve::LengthAxis;
            if fit.is_empty() && predict.is_empty() {
                // Every split the sweep allows, on the axis its grid is over (or --tokens).
                let runs = app::curve::holdout_runs(&dir, skip_frac, params, &replicates)?;
                let by = if tokens { LengthAxis::Tokens } else { app::curve_splits::grid_axis(&runs) };
                print!("{}", app::curve_splits::table(&runs, by)?);
                return Ok(0);
            }
            if fit.is_empty() || predict.is_empty() {
                return Err(
                    UserError("curve-holdout: give both --fit and --predict, or neither (every split)".into()).into()
                );
            }
            let by = if tokens { LengthAxis::Tokens } else { LengthAxis::TokensPerParam };
            print!("{}", app::curve::holdout_table(&dir, &fit, &predict, by, skip_frac, params, &replicates)?);
            Ok(0)
        }
        Cmd::BenchCurve { sizes, bootstrap } => {
            let runs = fit::curve::synthetic_sweep(sizes, 0);
            let points: usize = runs.iter().map(|r| r.steps.len()).sum();
            let f = fit::curve::fit_with_rollout(&runs, bootstrap, 0)?;
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
            Ok(0)
        }
        Cmd::Design {
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
        } => {
            let jobs = jobs.unwrap_or_else(runner::default_jobs);
            if let Some(dir) = continue_dir {
                let unused = [
                    (prior.is_some(), "--prior"),
                    (from.is_some(), "--from"),
                    (warmup.is_some(), "--warmup"),
                    (min_tokens.is_some(), "--min-tokens"),
                ];
                if let Some((_, flag)) = unused.iter().find(|u| u.0) {
                    return Err(windtunnel::UserError(format!(
                        "{flag} does not apply with --continue (the prior is the sweep's own refit, the recipe and \
                         schedule are the sweep's)"
                    ))
                    .into());
                }
                let shapes = if widths.is_empty() && depths.is_empty() {
                    Vec::new()
                } else {
                    windtunnel::app::design::shapes_from_flags(&widths, &depths)?
                };
                let args = windtunnel::app::design_continue::ContinueArgs {
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
                print!("{}", windtunnel::app::design_continue::design_continue(&dir, &args)?);
                return Ok(0);
            }
            let Some(target_flops) = target_flops else {
                return Err(windtunnel::UserError("design needs --target-flops (or --continue DIR)".into()).into());
            };
            let shapes = windtunnel::app::design::shapes_from_flags(&widths, &depths)?;
            let args = windtunnel::app::design::DesignArgs {
                budget_flops,
                budget_hours,
                jobs,
                target_flops,
                shapes,
                tpp: if tpp.is_empty() { windtunnel::app::design::DEFAULT_TPP.to_vec() } else { tpp },
                objective,
                sims,
                screen,
                finalists,
                name,
                warmup,
                min_tokens,
            };
            let prior = windtunnel::app::design::load_prior(prior.as_deref())?;
            let out = out.unwrap_or_else(|| PathBuf::from("sweeps/designed.toml"));
            print!("{}", windtunnel::app::design::design(from.as_deref(), &args, &prior, &out)?);
            Ok(0)
        }
        Cmd::Worker(args) => runner::worker::main(&args),
    }
}
