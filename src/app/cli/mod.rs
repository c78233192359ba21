//! The command line's commands, one file each: its flags (a clap `Args`, parsed and checked by
//! clap first) and `run(args) -> Result<Exit>`, which validates what clap cannot and hands the
//! work to the workflows of `app/` (ripgrep's shape: parse into typed flags, then act). main.rs
//! only parses and dispatches.

pub mod bench;
pub mod bench_curve;
pub mod bench_data;
pub mod bench_fit;
pub mod check;
pub mod collect;
pub mod coord_check;
pub mod curve_holdout;
pub mod design;
pub mod fit;
pub mod mix_check;
pub mod mix_predict;
pub mod mpl_protocol;
pub mod plan;
pub mod predict_curve;
pub mod report;
pub mod run;
pub mod slurm;
pub mod status;

/// The sweep file and the results root, as the commands that read a sweep file take them.
#[derive(clap::Args)]
pub struct SweepAt {
    /// The sweep TOML file.
    pub sweep: std::path::PathBuf,
    /// Results root: the sweep's folder is RESULTS/<sweep name>/ (for `slurm`, on a filesystem
    /// every node sees).
    #[arg(long, default_value = "results")]
    pub results: std::path::PathBuf,
}

/// The process's exit status, one meaning each (the worker's own codes are in `runner::worker`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    /// Something failed that is not the user's input (a run failed, an I/O error).
    Failure = 1,
    /// Bad input: a sweep file, a flag, a data file (main maps `SpecError` and `UserError` here).
    BadInput = 2,
    /// `run` stopped by a signal before finishing (checkpointed; run again to resume).
    Stopped = 4,
}

impl Exit {
    pub fn code(self) -> i32 {
        self as i32
    }

    /// `Failure` when `failed`, else `Success`.
    pub fn failure_if(failed: bool) -> Exit {
        if failed {
            Exit::Failure
        } else {
            Exit::Success
        }
    }

    /// A status code from a workflow that returns one (0, 1, 2 or 4; anything else fails).
    pub fn from_code(code: i32) -> Exit {
        match code {
            0 => Exit::Success,
            2 => Exit::BadInput,
            4 => Exit::Stopped,
            _ => Exit::Failure,
        }
    }
}
