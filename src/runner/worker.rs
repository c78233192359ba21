//! The worker: one run end to end in its own process (`windtunnel worker RUN_DIR`). A
//! process per run isolates crashes (a panic or abort loses only that run's work in flight)
//! and lets each job have its own single-threaded backend: two single-threaded processes
//! measured 1.95x one, while two threads in one process gave 1.1x. The worker talks to its pool
//! on stdout, one JSON `Message` per line (progress, then the outcome); anything else it prints
//! there is kept as text for the log, never parsed.

use super::sys;
use crate::spec::config::{Backend, RunConfig};
use crate::store::{self, RunDir};
use crate::train::{self, Outcome};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};

/// One line from a worker to its pool (serde JSON, tagged by `msg`): the progress of training,
/// then how it ended. Typed, so the pool matches on variants instead of string prefixes, and a
/// line that is not a message (a library printing to stdout) cannot be mistaken for one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "msg", rename_all = "snake_case")]
pub enum Message {
    Progress {
        step: u64,
        steps: u64,
        loss: f64,
        tokens_per_s: f64,
    },
    /// Another worker holds the run's lock (`holder` says who); nothing trained.
    Busy {
        holder: String,
    },
    /// Finished by another worker since the pool looked; nothing trained.
    AlreadyDone,
    Done {
        final_loss: f64,
        wall_s: f64,
        tokens_per_s: f64,
    },
    Diverged {
        step: u64,
        why: String,
    },
    /// Stopped by a signal at `step`, checkpointed.
    Stopped {
        step: u64,
    },
    /// The error, on one line.
    Failed {
        error: String,
    },
}

impl Message {
    /// The message of a stdout line, `None` for any other text.
    pub fn parse(line: &str) -> Option<Message> {
        serde_json::from_str(line).ok()
    }
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: i32) {
    STOP.store(true, Ordering::SeqCst);
}

/// SIGTERM / SIGINT / SIGUSR1 ask the run to checkpoint at the end of the current step and
/// exit (Slurm sends a signal before the time limit; see `slurm`).
fn install_stop_handlers() {
    sys::on_signals(&sys::STOP_SIGNALS, on_signal);
}

/// The worker's inputs: hidden arguments of `windtunnel worker`, set by the pool (`spawn`).
/// Typed arguments rather than environment variables, so a misspelt or malformed input is a
/// clap error at start instead of a silently ignored variable.
#[derive(clap::Args, Clone, Debug)]
pub struct WorkerArgs {
    /// The run folder (its config.json says what to train).
    pub dir: std::path::PathBuf,
    /// The backend to train on: the sweep's `backend`.
    #[arg(long, hide = true, value_enum, default_value_t = Backend::Cpu)]
    pub backend: Backend,
    /// The GPU index (`run --devices`) under the cuda backend.
    #[arg(long, hide = true, default_value_t = 0)]
    pub device: usize,
    /// The pool's pid: the worker stops when that process dies (see `sys::die_with_parent`).
    #[arg(long, hide = true)]
    pub parent_pid: Option<u32>,
    /// Micro-batch override after an out-of-memory failure: the same run (same id, same
    /// result up to float summation order) computed in smaller pieces.
    #[arg(long, hide = true, value_parser = clap::value_parser!(u64).range(1..))]
    pub micro_batch: Option<u64>,
}

/// A worker's exit code: the one place the worker and the pool agree on what each means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Trained to the end (or found already done by another worker).
    Done = 0,
    /// An error (its message went to the pool as a `FAILED` line).
    Failed = 1,
    /// The loss diverged: the run is recorded as diverged and excluded from fits.
    Diverged = 3,
    /// A stop signal: the run checkpointed; `run` again resumes it.
    Stopped = 4,
    /// Another worker holds the run folder's lock (it is running elsewhere).
    Busy = 5,
}

impl Exit {
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The exit a process status code means; None for a code no worker returns (a crash).
    pub fn of(code: i32) -> Option<Exit> {
        [Exit::Done, Exit::Failed, Exit::Diverged, Exit::Stopped, Exit::Busy].into_iter().find(|e| e.code() == code)
    }
}

/// Runs the run stored in `args.dir` (its config.json) and prints its outcome; the process
/// exits with the returned `Exit` (`Failed` on an error).
pub fn main(args: &WorkerArgs) -> Result<i32> {
    let res = run_folder(args).map(Exit::code);
    if let Err(e) = &res {
        // The pool hears the error through the pipe: on a full disk worker.log cannot take
        // it.
        say(&Message::Failed { error: format!("{e:#}").replace('\n', " ") });
    }
    res
}

fn run_folder(args: &WorkerArgs) -> Result<Exit> {
    let dir = args.dir.as_path();
    install_stop_handlers();
    let id = dir.file_name().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
    let run_dir = RunDir { path: dir.to_path_buf(), id };
    // A worker must not outlive its `run` (it would train on unsupervised, and a restarted
    // `run` would start a second worker on the same folder): SIGTERM on parent death makes it
    // checkpoint and exit like any stop request.
    let parent = args.parent_pid;
    if parent.is_some() && !sys::die_with_parent(sys::SIGTERM, parent) {
        STOP.store(true, Ordering::SeqCst);
    }
    let mut cfg: RunConfig = store::read_json(&run_dir.config_json()).context("reading the run's config.json")?;
    // Whether the folder is the run its name says is the pool's to check (`runner::
    // refuse_problem_folders`, which knows the sweep's config): a parsed config's id can
    // differ from the one it was written under by a float's last bit (see `store::place`).
    // The pool's override wins over the sweep's `micro_batch` (an execution detail: it is
    // not part of the run id, so changing it here retrains nothing).
    if let Some(m) = args.micro_batch {
        cfg.micro_batch = Some(m as usize);
    }
    // One worker per run folder, across processes and (with flock over NFSv4) machines.
    let holder = format!("{} pid {}", store::hostname(), std::process::id());
    let wait = std::time::Duration::from_secs(2);
    let _lock = match sys::lock_within(&run_dir.lock_file(), &holder, wait).context("locking the run folder")? {
        Ok(l) => l,
        Err(who) => {
            train::log_line(&format!(
                "run {}: another worker holds {} ({who}); not starting a second one",
                run_dir.id,
                run_dir.lock_file().display()
            ));
            say(&Message::Busy { holder: who.to_string() });
            return Ok(Exit::Busy);
        }
    };
    match run_dir.check_done(cfg.steps) {
        store::DoneCheck::NotDone => {}
        store::DoneCheck::Good(_) => {
            // Finished by another worker since the pool looked: not trained here.
            say(&Message::AlreadyDone);
            return Ok(Exit::Done);
        }
        store::DoneCheck::Damaged(why) => set_aside_damaged(&run_dir, &why)?,
    }
    let stop = || STOP.load(Ordering::SeqCst);
    let mut last = std::time::Instant::now() - std::time::Duration::from_secs(10);
    let mut progress = |step: u64, steps: u64, loss: f64, tps: f64| {
        if last.elapsed().as_millis() >= 250 || step == steps {
            say(&Message::Progress { step, steps, loss, tokens_per_s: tps });
            last = std::time::Instant::now();
        }
    };
    let result = match args.backend {
        Backend::Cpu => train::train::<crate::backend::Cpu>(&cfg, &run_dir, &Default::default(), &stop, &mut progress),
        #[cfg(feature = "cuda")]
        Backend::Cuda => {
            // `run --devices` places each worker on one GPU (`--device`).
            let dev = burn::backend::cuda::CudaDevice { index: args.device };
            train::train::<crate::backend::Cuda>(&cfg, &run_dir, &dev, &stop, &mut progress)
        }
        #[cfg(not(feature = "cuda"))]
        Backend::Cuda => anyhow::bail!("backend `cuda` is not available in this build"),
    };
    match result {
        Ok(Outcome::Done(s)) => {
            say(&Message::Done { final_loss: s.final_loss, wall_s: s.wall_s, tokens_per_s: s.tokens_per_s });
            Ok(Exit::Done)
        }
        Ok(Outcome::Diverged(step, why)) => {
            say(&Message::Diverged { step, why: why.to_string() });
            Ok(Exit::Diverged)
        }
        Ok(Outcome::Stopped(step)) => {
            if let Some(mut st) = run_dir.read_status() {
                st.state = store::RunState::Stopped;
                st.step = step;
                st.heartbeat = store::now_unix();
                let _ = run_dir.write_status(&st);
            }
            say(&Message::Stopped { step });
            Ok(Exit::Stopped)
        }
        Err(e) => {
            let mut st = run_dir.read_status().unwrap_or(store::Status {
                state: store::RunState::Failed,
                attempt: 1,
                host: store::hostname(),
                pid: std::process::id(),
                heartbeat: 0,
                step: 0,
                error: None,
            });
            st.state = store::RunState::Failed;
            st.error = Some(format!("{e:#}"));
            st.heartbeat = store::now_unix();
            let _ = run_dir.write_status(&st);
            Err(e)
        }
    }
}

/// A DONE run whose record does not match its DONE (see `RunDir::check_done`) is trained again
/// from scratch: DONE, evals.jsonl and metrics.jsonl are kept beside it as `*.damaged` for
/// inspection, and its checkpoints (whose logs are gone) are dropped. Called under the run
/// folder's lock.
fn set_aside_damaged(run_dir: &RunDir, why: &str) -> Result<()> {
    train::log_line(&format!("run {}: DONE but damaged: {why}; training it again from scratch", run_dir.id));
    for p in [run_dir.done_marker(), run_dir.evals_jsonl(), run_dir.metrics_jsonl()] {
        if p.exists() {
            let mut aside = p.clone().into_os_string();
            aside.push(".damaged");
            std::fs::rename(&p, &aside).with_context(|| format!("moving {} aside", p.display()))?;
        }
    }
    train::checkpoint::remove(run_dir);
    Ok(())
}

/// One line to the pool. Never panics: after the parent died, stdout is a broken pipe and
/// `println!` would abort the checkpoint the worker is about to write.
fn say(msg: &Message) {
    use std::io::Write;
    // Serialising a plain enum of numbers and strings cannot fail.
    let line = serde_json::to_string(msg).unwrap_or_default();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|_| out.flush());
}
