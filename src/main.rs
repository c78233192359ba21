//! The `windtunnel` command line: argument parsing and dispatch only. Exit codes: 0 success,
//! 2 bad input (sweep file, flags, data files), 4 `run` stopped by a signal before finishing
//! (checkpointed; run again to resume), 1 any other failure.

use anyhow::Result;
use clap::{Parser, Subcommand};
use windtunnel::app::cli::{self, Exit};
use windtunnel::{runner, spec, UserError};

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
    Plan(cli::plan::Args),
    /// Train every run not yet DONE (resuming unfinished ones), then fit and write the report.
    Run(cli::run::Args),
    /// Fit scaling laws to a sweep results folder, or to a CSV/Parquet file with columns
    /// `params`, `tokens` (or `flops`, then D = C/6N) and `loss`.
    Fit(cli::fit::Args),
    /// Rewrite the report (report.md, report.html, plots/*.svg) of a results folder from its
    /// fit.json and runs.parquet. With several folders, also compare them all against the first
    /// (DIR1/compare.md and compare.html: frontiers overlaid, density relative to the first).
    Report(cli::report::Args),
    /// Time the Chinchilla approach-3 fit (4,500-start grid + 1,000 bootstrap refits) on a CSV.
    BenchFit(cli::bench_fit::Args),
    /// Training throughput (tokens/s, GFLOP/s) of fixed reference models on the CPU (or, with
    /// --backend cuda, the GPU) backend
    /// (single-threaded unless RAYON_NUM_THREADS says otherwise). Compare with
    /// analysis/torch_bench.py.
    Bench(cli::bench::Args),
    /// Data loader cost on a large llm.c token shard: header check, vocabulary scan, opening,
    /// window sampling (tokens/s) and resident memory before and after.
    BenchData(cli::bench_data::Args),
    /// Parquet tokenization throughput (MB/s of text, byte and tokenizer.json) and peak resident
    /// memory on a generated FineWeb-Edu-layout file of --mb MB (zstd).
    BenchParquet(windtunnel::app::bench::parquet::Args),
    /// Predict per-domain losses and the objective of any mixture from a data_mixing fit, at
    /// the fit's target compute (or --flops), next to the recommended mixture.
    MixPredict(cli::mix_predict::Args),
    /// Calibrate the fitted law on larger runs: train one to three models at 10x to 30x (or
    /// --factor K x) the sweep's largest compute with the sweep's own recipe (results in
    /// RESULTS/<sweep>-check), record the law's prediction and 95% interval in DIR/check.json
    /// before training, then whether each actual loss lies inside its interval (exit 0 either
    /// way). Resumable: run it again to finish interrupted runs.
    Check(cli::check::Args),
    /// Held-out check of a data_mixing fit: train the recommended, RegMix, uniform and
    /// single-domain mixtures at a larger size than any in the sweep (results in
    /// RESULTS/<sweep>-mixcheck), compare with the law, and add the outcome to DIR's report.
    MixCheck(cli::mix_check::Args),
    /// Collect the finished runs of a sweep into runs.parquet, fit and write the report, without
    /// training anything (the merge step of a cluster sweep).
    Collect(cli::collect::Args),
    /// Where a sweep stands: done / running / stale / stopped / failed / diverged / pending
    /// counts and a per-run table. Reads files only, so it works while the sweep runs on other
    /// nodes. Exits 2 if DIR is not a sweep results folder.
    Status(cli::status::Args),
    /// Write Slurm batch scripts for the sweep (a job array of shards and a merge job that
    /// fits once the array has ended) into OUT, and optionally submit them.
    Slurm(cli::slurm::Args),
    /// μP coordinate check: train a few steps at each width of the sweep's grid (same depth,
    /// learning rate and data) and report, per activation, its RMS and the RMS of its change
    /// against width, with log-log slopes (flat under a correct μP). Writes
    /// RESULTS/<sweep>/coord_check.{md,json,svg}.
    CoordCheck(cli::coord_check::Args),
    /// The loss-curve law's predicted curve (fit.json `laws.loss_curve`) with its 95% band: by
    /// default the target run's under the sweep's schedule scaled to the target's steps, to
    /// watch a large run against while it trains.
    PredictCurve(cli::predict_curve::Args),
    /// Internal: the multi-power-law paper's protocol on its published curves (fit three
    /// schedules, predict six), printed as a table.
    #[command(hide = true)]
    MplProtocol(cli::mpl_protocol::Args),
    /// Internal: the loss-curve law's length backtest: fit on runs at some tokens per
    /// parameter, predict the whole curves of the runs at others. Without --fit and --predict:
    /// every split the sweep allows (each length from the third on, from the two below it).
    #[command(hide = true)]
    CurveHoldout(cli::curve_holdout::Args),
    /// Internal: times the loss-curve law's fit on a synthetic 100-run sweep (every evaluation).
    #[command(hide = true)]
    BenchCurve(cli::bench_curve::Args),
    /// Propose a grid for a budget: search candidate grids (windows of the allowed sizes x
    /// windows of tokens per parameter, WSD decay branches making extra data sizes cheap) for
    /// the one with the narrowest expected interval at the target, by simulation, and write it
    /// as a sweep TOML whose comments give its expected precision and cost. With --continue
    /// DIR: propose the next runs of a finished or partly finished sweep instead (the prior is
    /// its refit; --prior, --from, --warmup and --name do not apply).
    Design(cli::design::Args),
    /// Import another trainer's runs (CSV, Parquet or JSONL, as a manifest describes them,
    /// docs/import.md) into an ordinary results folder: runs.parquet, fit.json, the held-out
    /// runs' calibration and the report.
    Import(windtunnel::app::import::Args),
    /// The loss of a planned run (--params N --tokens D, or --flops C for the compute-optimal
    /// split) on every validation set a results folder has a law for, with 95% intervals
    /// (none from a degenerate fit, with the reason) and the fit's verdict.
    Predict(windtunnel::app::predict::Args),
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
                Exit::BadInput.code()
            } else if let Some(u) = e.downcast_ref::<UserError>() {
                let _ = writeln!(err, "error: {u}");
                Exit::BadInput.code()
            } else {
                let _ = writeln!(err, "error: {e:#}");
                Exit::Failure.code()
            }
        }
    };
    std::process::exit(code);
}

/// Each command to its `app::cli::<command>::run`; the worker keeps its own exit codes.
fn dispatch(cmd: Cmd) -> Result<i32> {
    match cmd {
        Cmd::Plan(a) => cli::plan::run(a).map(Exit::code),
        Cmd::Run(a) => cli::run::run(a).map(Exit::code),
        Cmd::Fit(a) => cli::fit::run(a).map(Exit::code),
        Cmd::Report(a) => cli::report::run(a).map(Exit::code),
        Cmd::BenchFit(a) => cli::bench_fit::run(a).map(Exit::code),
        Cmd::Bench(a) => cli::bench::run(a).map(Exit::code),
        Cmd::BenchData(a) => cli::bench_data::run(a).map(Exit::code),
        Cmd::BenchParquet(a) => windtunnel::app::bench::parquet::run(a),
        Cmd::MixPredict(a) => cli::mix_predict::run(a).map(Exit::code),
        Cmd::Check(a) => cli::check::run(a).map(Exit::code),
        Cmd::MixCheck(a) => cli::mix_check::run(a).map(Exit::code),
        Cmd::Collect(a) => cli::collect::run(a).map(Exit::code),
        Cmd::Status(a) => cli::status::run(a).map(Exit::code),
        Cmd::Slurm(a) => cli::slurm::run(a).map(Exit::code),
        Cmd::CoordCheck(a) => cli::coord_check::run(a).map(Exit::code),
        Cmd::PredictCurve(a) => cli::predict_curve::run(a).map(Exit::code),
        Cmd::MplProtocol(a) => cli::mpl_protocol::run(a).map(Exit::code),
        Cmd::CurveHoldout(a) => cli::curve_holdout::run(a).map(Exit::code),
        Cmd::BenchCurve(a) => cli::bench_curve::run(a).map(Exit::code),
        Cmd::Design(a) => cli::design::run(a).map(Exit::code),
        Cmd::Import(a) => windtunnel::app::import::run(a),
        Cmd::Predict(a) => windtunnel::app::predict::run(a),
        Cmd::Worker(args) => runner::worker::main(&args),
    }
}
