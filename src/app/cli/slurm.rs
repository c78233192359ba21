//! `slurm`: batch scripts for a job array and its merge job.

use super::Exit;
use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub at: super::SweepAt,
    /// Array tasks, each training a cost-balanced shard, 1 to 1000 (default: min(runs, 8)).
    #[arg(long)]
    pub shards: Option<usize>,
    /// Slurm partition (default: the cluster's default partition).
    #[arg(long)]
    pub partition: Option<String>,
    /// Time limit per task, HH:MM:SS. Tasks checkpoint shortly before it and are requeued.
    #[arg(long, default_value = "04:00:00")]
    pub time: String,
    /// CPUs per task; each task trains this many runs at once, one per CPU.
    #[arg(long, default_value_t = 1)]
    pub cpus: usize,
    /// Memory per task, in sbatch's syntax (e.g. 8G); default: the partition's default.
    #[arg(long)]
    pub mem: Option<String>,
    /// GPUs per task (--gres=gpu:G).
    #[arg(long)]
    pub gpus: Option<usize>,
    /// Seconds before the time limit at which tasks are told to checkpoint and stop
    /// (default: a tenth of --time, between 30 s and 300 s).
    #[arg(long)]
    pub grace: Option<u64>,
    /// Where to write array.sbatch and merge.sbatch (default: RESULTS/<sweep>/slurm/).
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
    /// Submit both scripts with sbatch (the merge job after the array) and print the job ids.
    #[arg(long)]
    pub submit: bool,
}

pub fn run(args: Args) -> Result<Exit> {
    let Args { at: super::SweepAt { sweep, results }, shards, partition, time, cpus, mem, gpus, grace, out, submit } =
        args;
    let req = crate::app::slurm::Request {
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
    crate::app::slurm::command(&req).map(Exit::from_code)
}
