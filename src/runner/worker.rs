//! The worker: one run end to end in its own process (`windtunnel worker RUN_DIR`). A
//! process per run isolates crashes (a panic or abort loses only that run's work in flight)
//! and lets each job have its own single-threaded backend: two single-threaded processes
//! measured 1.95x one, while two threads in one process gave 1.1x. Progress goes to stdout
//! as `PROGRESS step steps loss tokens_per_s` lines that the pool parses.

use super::sys;
use crate::spec::config::RunConfig;
use crate::store::{self, RunDir};
use crate::train::{self, Outcome};
use anyhow::{Context, Result};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: i32) {
    STOP.store(true, Ordering::SeqCst);
}

/// SIGTERM / SIGINT / SIGUSR1 ask the run to checkpoint at the end of the current step and
/// exit (Slurm sends a signal before the time limit; see `slurm`).
fn install_stop_handlers() {
    sys::on_signals(&sys::STOP_SIGNALS, on_signal);
}

/// Runs the run stored in `dir` (its config.json) and prints its outcome. Exit code of the
/// process: 0 done, 3 diverged, 4 stopped by a signal, 5 another worker holds the run folder's
/// lock (it is running elsewhere), 1 error.
pub fn main(dir: &Path) -> Result<i32> {
    let res = run_folder(dir);
    if let Err(e) = &res {
        // The pool hears the error through the pipe: on a full disk worker.log cannot take
        // it (issue 15).
        say(&format!("FAILED {}", format!("{e:#}").replace('\n', " ")));
    }
    res
}

fn run_folder(dir: &Path) -> Result<i32> {
    install_stop_handlers();
    let id = dir.file_name().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
    let run_dir = RunDir { path: dir.to_path_buf(), id };
    // A worker must not outlive its `run` (it would train on unsupervised, and a restarted
    // `run` would start a second worker on the same folder): SIGTERM on parent death makes it
    // checkpoint and exit like any stop request (issue 5).
    let parent = std::env::var("WINDTUNNEL_PARENT_PID").ok().and_then(|p| p.parse().ok());
    if parent.is_some() && !sys::die_with_parent(sys::SIGTERM, parent) {
        STOP.store(true, Ordering::SeqCst);
    }
    let cfg: RunConfig = store::read_json(&run_dir.config_json()).context("reading the run's config.json")?;
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
            say(&format!("BUSY {who}"));
            return Ok(EXIT_BUSY);
        }
    };
    match run_dir.check_done(cfg.steps) {
        store::DoneCheck::NotDone => {}
        store::DoneCheck::Good(_) => {
            // Finished by another worker since the pool looked: not trained here (issue 15).
            say("ALREADY_DONE");
            return Ok(0);
        }
        store::DoneCheck::Damaged(why) => set_aside_damaged(&run_dir, &why)?,
    }
    let stop = || STOP.load(Ordering::SeqCst);
    let mut last = std::time::Instant::now() - std::time::Duration::from_secs(10);
    let mut progress = |step: u64, steps: u64, loss: f64, tps: f64| {
        if last.elapsed().as_millis() >= 250 || step == steps {
            say(&format!("PROGRESS {step} {steps} {loss:.5} {tps:.1}"));
            last = std::time::Instant::now();
        }
    };
    let result = match cfg_backend(&cfg) {
        "cpu" => train::train::<crate::backend::Cpu>(&cfg, &run_dir, &Default::default(), &stop, &mut progress),
        #[cfg(feature = "cuda")]
        "cuda" => {
            // `run --devices` places each worker on one GPU (index in WINDTUNNEL_DEVICE).
            let index = std::env::var("WINDTUNNEL_DEVICE").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
            let dev = burn::backend::cuda::CudaDevice { index };
            train::train::<crate::backend::Cuda>(&cfg, &run_dir, &dev, &stop, &mut progress)
        }
        other => anyhow::bail!("backend `{other}` is not available in this build"),
    };
    match result {
        Ok(Outcome::Done(s)) => {
            say(&format!("DONE {:.6} {:.1} {:.1}", s.final_loss, s.wall_s, s.tokens_per_s));
            Ok(0)
        }
        Ok(Outcome::Diverged(step, why)) => {
            say(&format!("DIVERGED {step} {why}"));
            Ok(3)
        }
        Ok(Outcome::Stopped(step)) => {
            if let Some(mut st) = run_dir.read_status() {
                st.state = "stopped".into();
                st.step = step;
                st.heartbeat = store::now_unix();
                let _ = run_dir.write_status(&st);
            }
            say(&format!("STOPPED {step}"));
            Ok(4)
        }
        Err(e) => {
            let mut st = run_dir.read_status().unwrap_or(store::Status {
                state: "failed".into(),
                attempt: 1,
                host: store::hostname(),
                pid: std::process::id(),
                heartbeat: 0,
                step: 0,
                error: None,
            });
            st.state = "failed".into();
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

/// Exit code of a worker that found its run folder locked by another worker.
pub const EXIT_BUSY: i32 = 5;

/// One line to the pool. Never panics: after the parent died, stdout is a broken pipe and
/// `println!` would abort the checkpoint the worker is about to write.
fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|_| out.flush());
}

/// The backend a run trains on: the WINDTUNNEL_BACKEND override (set by the pool from the
/// sweep's `backend`), else the CPU.
fn cfg_backend(_cfg: &RunConfig) -> &'static str {
    match std::env::var("WINDTUNNEL_BACKEND").as_deref() {
        Ok("cuda") => "cuda",
        _ => "cpu",
    }
}
