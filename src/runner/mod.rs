//! The runner: turns a sweep into finished run folders. It writes each run's config, skips
//! runs whose DONE marker exists, runs the rest as worker processes (`--jobs` at a time),
//! retries a crashed run once, records diverged runs and moves on, and shows progress
//! (indicatif bars on a terminal, plain log lines otherwise). It never fits or reports;
//! `app` chains run → collect → fit → report for the CLI.

pub mod plan;
pub mod slurm;
pub mod sys;
pub mod worker;

use crate::spec::config::{RunConfig, Sweep};
use crate::store::{self, RunDir, SweepDir};
use anyhow::{Context, Result};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::{BTreeSet, VecDeque};
use std::io::{BufRead, BufReader, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct RunOptions {
    pub results: PathBuf,
    pub jobs: usize,
    pub shard: Option<(usize, usize)>,
    pub max_hours: Option<f64>,
    /// The windtunnel binary to run workers with (defaults to the current executable).
    pub worker_exe: Option<PathBuf>,
    /// GPU indices to spread runs over (empty: device 0). Ignored by the CPU backend.
    pub devices: Vec<usize>,
}

/// The device for the next run: the one with the fewest active runs (ties: first listed).
fn pick_device(devices: &[usize], active: &[usize]) -> usize {
    let count = |d: usize| active.iter().filter(|&&a| a == d).count();
    devices.iter().copied().min_by_key(|&d| count(d)).unwrap_or(0)
}

#[derive(Clone, Debug, Default)]
pub struct RunReport {
    pub trained: usize,
    pub skipped_done: usize,
    pub diverged: Vec<String>,
    pub failed: Vec<String>,
    pub not_started: usize,
    /// Runs whose folder another worker had locked (trained by another `run`): skipped.
    pub elsewhere: Vec<String>,
    /// A signal (SIGUSR1 from Slurm, SIGTERM, SIGINT) stopped the sweep before it finished.
    pub interrupted: bool,
    pub wall_s: f64,
}

/// The signal that asked this `run` to stop (0: none yet).
static STOP_SIGNAL: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn on_stop_signal(sig: i32) {
    STOP_SIGNAL.store(sig, std::sync::atomic::Ordering::SeqCst);
}

/// Default parallelism: one job per core (each job single-threaded), as measured best. In a
/// Slurm task only its `--cpus-per-task` cores are ours (without CPU binding the process
/// still sees every core of the node).
pub fn default_jobs() -> usize {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    match std::env::var("SLURM_CPUS_PER_TASK").ok().and_then(|v| v.parse::<usize>().ok()) {
        Some(c) if c > 0 => c.min(cores),
        _ => cores,
    }
}

/// Prepares the sweep folder: verbatim sweep copy, config.json of every run, and a note of
/// run folders that no longer belong to the sweep (orphans: the sweep file changed).
pub fn prepare(sweep: &Sweep, dir: &SweepDir) -> Result<Vec<String>> {
    let text = std::fs::read(&sweep.path).with_context(|| format!("reading {}", sweep.path))?;
    store::write_atomic(&dir.sweep_toml(), &text)?;
    let ids: BTreeSet<String> = sweep.runs.iter().map(|r| r.run_id()).collect();
    for r in &sweep.runs {
        let rd = dir.run(&r.run_id());
        if !rd.config_json().exists() {
            store::write_json_atomic(&rd.config_json(), r)?;
        }
    }
    Ok(dir.list_runs()?.into_iter().map(|r| r.id).filter(|id| !ids.contains(id)).collect())
}

/// Refuses a sweep any of whose run folders is something other than that run (see
/// `store::Problem::blocks_training`): training over it would read or write another run's
/// record (a symlink to a finished run is "DONE but damaged" under this run's step count, its
/// worker then finds the other run DONE, and every `run` goes round again), or fail on it.
pub fn refuse_problem_folders(sweep: &Sweep, dir: &SweepDir) -> Result<()> {
    let bad: Vec<String> = sweep
        .runs
        .iter()
        .map(|r| (dir.run(&r.run_id()), r))
        .filter_map(|(rd, r)| rd.problem(r).filter(|p| p.blocks_training()).map(|p| (rd, p)))
        .map(|(rd, p)| format!("  {}: {}", rd.path.display(), p.describe()))
        .collect();
    if bad.is_empty() {
        return Ok(());
    }
    Err(crate::UserError(format!(
        "{} run folder(s) of sweep `{}` are not the runs they are named for; nothing trained:\n{}\n\
         move each aside (or delete it) and run again: the run is then trained into a folder of its own",
        bad.len(),
        sweep.name,
        bad.join("\n")
    ))
    .into())
}

struct Active {
    child: Child,
    run: RunConfig,
    dir: RunDir,
    bar: ProgressBar,
    attempt: u32,
    est_s: f64,
    device: usize,
    micro: Option<usize>,
    /// What the worker has said so far (its stdout messages).
    state: Arc<Mutex<Heard>>,
    /// The thread reading the worker's stdout; joined when the worker exits, so its last line
    /// is in `state` before the outcome is judged.
    reader: Option<std::thread::JoinHandle<()>>,
}

/// Trains every pending run of the sweep (or of this shard).
pub fn run(sweep: &Sweep, opts: &RunOptions) -> Result<RunReport> {
    plan::check_backend(sweep)?;
    let dir = SweepDir::new(&opts.results, &sweep.name);
    refuse_problem_folders(sweep, &dir)?;
    if let Some(w) =
        plan::check_resources(sweep, &plan::rows(sweep, &dir, None), opts.jobs, &plan::Resources::here(&dir))?
    {
        eprint!("{w}");
    }
    if let Some(n) = plan::elsewhere_note(sweep, &dir) {
        eprint!("{n}");
    }
    let orphans = prepare(sweep, &dir)?;
    if !orphans.is_empty() {
        eprintln!(
            "note: {} run folder(s) in {} do not belong to this sweep file any more (it changed); they are kept but ignored: {}",
            orphans.len(),
            dir.runs_dir().display(),
            orphans.join(", ")
        );
    }
    let shard_of = opts.shard.map(|(_, n)| plan::shard_of(&sweep.runs, n));
    let mut report = RunReport::default();
    // (run, attempt, micro-batch override after an out-of-memory failure)
    let mut queue: VecDeque<(RunConfig, u32, Option<usize>)> = VecDeque::new();
    for (k, r) in sweep.runs.iter().enumerate() {
        if let (Some((i, _)), Some(map)) = (opts.shard, &shard_of) {
            if map[k] != i {
                continue;
            }
        }
        match dir.run(&r.run_id()).check_done(r.steps) {
            store::DoneCheck::Good(_) => report.skipped_done += 1,
            store::DoneCheck::NotDone => queue.push_back((r.clone(), 1, None)),
            // Its worker sets the damaged record aside and trains it again.
            store::DoneCheck::Damaged(why) => {
                eprintln!("run {} is DONE but damaged ({why}): training it again", r.run_id());
                queue.push_back((r.clone(), 1, None));
            }
        }
    }
    // Largest first: the long runs start early so the tail of the sweep is short.
    queue.make_contiguous().sort_by(|a, b| plan::estimate_s(&b.0).total_cmp(&plan::estimate_s(&a.0)));
    let total_est: f64 = queue.iter().map(|(r, _, _)| plan::estimate_s(r)).sum();
    let n_pending = queue.len();
    // Progress is a share of the model's estimates; wall-clock figures scale by the pace
    // measured on this machine.
    let pace = plan::measured_pace(&dir);
    let scale = pace.map_or(1.0, |p| p.factor);
    let secs: Vec<f64> = queue.iter().map(|(r, _, _)| plan::estimate_s(r) * scale).collect();
    eprintln!(
        "sweep `{}`: {} runs, {} already done, {} to train{} with --jobs {} (estimated {} {})",
        sweep.name,
        sweep.runs.len(),
        report.skipped_done,
        n_pending,
        opts.shard.map(|(i, n)| format!(" in shard {i}/{n}")).unwrap_or_default(),
        opts.jobs,
        plan::hms(plan::makespan(&secs, opts.jobs)),
        plan::pace_note(pace)
    );
    let tty = std::io::stderr().is_terminal();
    let mp =
        MultiProgress::with_draw_target(if tty { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() });
    let overall = mp.add(ProgressBar::new((total_est * 10.0).max(1.0) as u64));
    overall.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {msg} elapsed {elapsed_precise} ETA {eta}")
            .unwrap()
            .progress_chars("=> "),
    );
    overall.set_prefix("sweep");
    let start = Instant::now();
    let budget_s = opts.max_hours.map(|h| h * 3600.0);
    let exe = match &opts.worker_exe {
        Some(p) => p.clone(),
        None => std::env::current_exe()?,
    };
    let threads = (default_jobs() / opts.jobs.max(1)).max(1);
    let mut active: Vec<Active> = Vec::new();
    let mut finished_est = 0.0;
    let mut last_log = Instant::now();
    let mut done_runs = 0usize;
    // Slurm's `--signal=B:USR1@T` reaches this process only: pass it on so every worker
    // checkpoints and exits, and start nothing new.
    sys::on_signals(&sys::STOP_SIGNALS, on_stop_signal);
    loop {
        let sig = STOP_SIGNAL.load(std::sync::atomic::Ordering::SeqCst);
        if sig != 0 && !report.interrupted {
            report.interrupted = true;
            log(
                &mp,
                tty,
                &format!("signal {sig}: stopping {} worker(s) at their next step (they checkpoint)", active.len()),
            );
            for a in &active {
                sys::send_signal(a.child.id(), sys::SIGTERM);
            }
            report.not_started += queue.len();
            queue.clear();
        }
        let mut deferred = Vec::new();
        while !report.interrupted && active.len() < opts.jobs.max(1) && !queue.is_empty() {
            let (r, attempt, micro) = queue.pop_front().unwrap();
            // A WSD branch waits for its trunk's snapshot while the trunk trains here.
            let trunk_here = |t: &str| {
                active.iter().any(|a| a.dir.id == t) || queue.iter().chain(&deferred).any(|q| q.0.run_id() == t)
            };
            match seed_branch(sweep, &dir, &r, &trunk_here)? {
                Seed::Wait => {
                    deferred.push((r, attempt, micro));
                    continue;
                }
                Seed::Seeded(from) => {
                    log(&mp, tty, &format!("run {} branches off its trunk at step {from}", r.run_id()))
                }
                Seed::Scratch => {}
            }
            let est = plan::estimate_s(&r);
            if let Some(b) = budget_s {
                if start.elapsed().as_secs_f64() + est * scale > b {
                    eprintln!(
                        "--max-hours: not starting run {} (estimated {}), it would not fit the budget",
                        r.run_id(),
                        plan::hms(est * scale)
                    );
                    report.not_started += 1;
                    continue;
                }
            }
            let busy: Vec<usize> = active.iter().map(|a| a.device).collect();
            let device = pick_device(&opts.devices, &busy);
            active.push(spawn(&exe, &dir, r, attempt, est, threads, sweep.backend, device, micro, &mp)?);
        }
        queue.extend(deferred);
        if active.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        let mut k = 0;
        while k < active.len() {
            let a = &mut active[k];
            let Heard { step, steps, loss, tokens_per_s: tps, .. } = a.state.lock().unwrap().clone();
            a.bar.set_length(steps.max(1));
            a.bar.set_position(step);
            a.bar.set_message(format!("loss {loss:.4} {:.0} tok/s", tps));
            if let Some(status) = a.child.try_wait()? {
                let mut a = active.remove(k);
                if let Some(r) = a.reader.take() {
                    let _ = r.join();
                }
                let said = a.state.lock().unwrap().clone();
                a.bar.finish_and_clear();
                mp.remove(&a.bar);
                finished_est += a.est_s;
                let id = a.dir.id.clone();
                let code = status.code().unwrap_or(-1);
                // A worker that found the folder locked (Busy) did not train it, even when the
                // other worker has finished it by now: checked before `is_done`, or two
                // concurrent runs would both count that run.
                let exit = worker::Exit::of(code);
                if a.dir.is_done()
                    && (said.outcome == Some(worker::Message::AlreadyDone) || exit == Some(worker::Exit::Busy))
                {
                    // Another `run` of the sweep trained it while this one waited: not counted
                    // as trained here, so two concurrent runs together report each run once.
                    log(&mp, tty, &format!("run {id} was finished by another worker meanwhile"));
                    report.skipped_done += 1;
                } else if a.dir.is_done() {
                    done_runs += 1;
                    report.trained += 1;
                    let s = a.dir.read_summary();
                    let line = format!(
                        "[{}/{}] run {id} (d{} L{} lr {:.2e}) done: loss {:.4}, {:.1} s, {:.0} tokens/s, startup {:.2} s",
                        done_runs,
                        n_pending,
                        a.run.width,
                        a.run.depth,
                        a.run.lr,
                        s.as_ref().map_or(f64::NAN, |s| s.final_loss),
                        s.as_ref().map_or(0.0, |s| s.wall_s),
                        s.as_ref().map_or(0.0, |s| s.tokens_per_s),
                        s.as_ref().and_then(|s| s.startup_s).unwrap_or(f64::NAN)
                    );
                    log(&mp, tty, &line);
                } else if exit == Some(worker::Exit::Diverged) {
                    let why = a.dir.read_status().and_then(|s| s.error).unwrap_or_default();
                    log(&mp, tty, &format!("run {id} DIVERGED: {why}; the sweep goes on and fits exclude it"));
                    report.diverged.push(id);
                } else if exit == Some(worker::Exit::Busy) {
                    log(&mp, tty, &format!("run {id} is locked by another worker (running elsewhere); skipped"));
                    report.elsewhere.push(id);
                } else if exit == Some(worker::Exit::Stopped) || (report.interrupted && status.code().is_none()) {
                    log(&mp, tty, &format!("run {id} stopped by a signal; checkpoint saved, `run` again resumes it"));
                    report.not_started += 1;
                } else if let Some(err) = disk_full(&a, code, &said) {
                    // Retrying cannot help; the error can be read only here (worker.log is on
                    // the full disk), so the pool says it and records the failure.
                    let mut line = format!("run {id} FAILED: the results disk is full: {err}");
                    if let Err(e) = record_failure(&a.dir, &err) {
                        line += &format!(" (could not record it in {}: {e:#})", a.dir.status_json().display());
                    }
                    log(&mp, tty, &line);
                    report.failed.push(id);
                } else if let Some(cur) = out_of_memory(&a) {
                    if cur > 1 {
                        let next = cur / 2;
                        log(
                            &mp,
                            tty,
                            &format!(
                                "run {id} ran out of memory at micro-batch {cur}; retrying from its checkpoint with \
                                 micro-batch {next} (gradient accumulation, same batch size)"
                            ),
                        );
                        queue.push_front((a.run, a.attempt, Some(next)));
                    } else {
                        log(
                            &mp,
                            tty,
                            &format!(
                                "run {id} FAILED: out of memory even one sequence at a time (see {}); use a smaller \
                                 model or seq_len, or a device with more memory",
                                a.dir.log_file().display()
                            ),
                        );
                        report.failed.push(id);
                    }
                } else if a.attempt < 2 {
                    log(
                        &mp,
                        tty,
                        &format!(
                            "run {id} FAILED (exit {code}{}; see {}), retrying once",
                            failure_text(&said),
                            a.dir.log_file().display()
                        ),
                    );
                    queue.push_back((a.run, a.attempt + 1, a.micro));
                } else {
                    log(
                        &mp,
                        tty,
                        &format!(
                            "run {id} FAILED again (exit {code}{}; see {}); giving up on it",
                            failure_text(&said),
                            a.dir.log_file().display()
                        ),
                    );
                    let _ = record_failure(&a.dir, &format!("exit {code}{}", failure_text(&said)));
                    report.failed.push(id);
                }
            } else {
                k += 1;
            }
        }
        let partial: f64 = active
            .iter()
            .map(|a| {
                let s = a.state.lock().unwrap();
                a.est_s * (s.step as f64 / s.steps.max(1) as f64)
            })
            .sum();
        overall.set_position(((finished_est + partial) * 10.0) as u64);
        overall.set_message(format!("{}/{} runs", done_runs, n_pending));
        if !tty && last_log.elapsed() >= Duration::from_secs(30) {
            let frac = (finished_est + partial) / total_est.max(1e-9);
            let el = start.elapsed().as_secs_f64();
            eprintln!(
                "progress: {}/{} runs done, {:.0}% of estimated work, elapsed {}, ETA {}",
                done_runs,
                n_pending,
                frac * 100.0,
                plan::hms(el),
                plan::hms(el / frac.max(1e-6) - el)
            );
            last_log = Instant::now();
        }
    }
    overall.finish_and_clear();
    report.not_started += queue.len(); // retries queued while stopping
    report.wall_s = start.elapsed().as_secs_f64();
    Ok(report)
}

enum Seed {
    /// Not a branch, already started, or its trunk is not training here: train as it stands.
    Scratch,
    /// Its checkpoint is now the trunk's snapshot at this step.
    Seeded(u64),
    /// The trunk trains here but has not reached the branch point yet.
    Wait,
}

/// Prepares a WSD branch run: when it has no checkpoint of its own and its trunk's snapshot at
/// its branch point exists, that snapshot becomes its checkpoint and the trunk's records up to
/// that step become the start of its own (they are exactly what it would have computed), so
/// it trains only its decay. Without a snapshot it waits for a trunk training here, or trains
/// from scratch (same numbers, more compute) when the trunk is elsewhere or gone.
fn seed_branch(sweep: &Sweep, dir: &SweepDir, run: &RunConfig, trunk_here: &dyn Fn(&str) -> bool) -> Result<Seed> {
    let Some(b) = &run.branch else { return Ok(Seed::Scratch) };
    let Some(from) = b.from else { return Ok(Seed::Scratch) };
    let rd = dir.run(&run.run_id());
    if rd.checkpoint_dir().exists() || rd.metrics_jsonl().exists() {
        return Ok(Seed::Scratch); // started before: it resumes from its own state
    }
    let Some(trunk) =
        sweep.runs.iter().find(|t| t.branch.as_ref().is_some_and(|tb| tb.family == b.family && tb.from.is_none()))
    else {
        return Ok(Seed::Scratch);
    };
    let td = dir.run(&trunk.run_id());
    let snap = crate::train::checkpoint::snapshot_dir(&td, from);
    if !snap.join("step.json").exists() {
        let gone = td.is_done()
            || td.read_status().is_some_and(|s| matches!(s.state, store::RunState::Diverged | store::RunState::Failed));
        return Ok(if trunk_here(&td.id) && !gone { Seed::Wait } else { Seed::Scratch });
    }
    for (src, dst) in [(td.metrics_jsonl(), rd.metrics_jsonl()), (td.evals_jsonl(), rd.evals_jsonl())] {
        let text = std::fs::read_to_string(&src).unwrap_or_default();
        let keep: String = text
            .lines()
            .filter(|l| {
                serde_json::from_str::<serde_json::Value>(l)
                    .ok()
                    .and_then(|v| v["step"].as_u64())
                    .is_some_and(|s| s <= from)
            })
            .map(|l| format!("{l}\n"))
            .collect();
        store::write_atomic(&dst, keep.as_bytes())?;
    }
    crate::train::checkpoint::seed_from(&rd, &snap)?;
    Ok(Seed::Seeded(from))
}

/// What the pool has heard from one worker: its latest progress and its outcome message.
#[derive(Clone, Debug, Default)]
struct Heard {
    step: u64,
    steps: u64,
    loss: f64,
    tokens_per_s: f64,
    /// The last message that is not progress: how the worker ended (`Done`, `Failed`, ...).
    outcome: Option<worker::Message>,
}

impl Heard {
    fn hear(&mut self, line: &str) {
        match worker::Message::parse(line) {
            Some(worker::Message::Progress { step, steps, loss, tokens_per_s }) => {
                (self.step, self.steps, self.loss, self.tokens_per_s) = (step, steps, loss, tokens_per_s);
            }
            Some(m) => self.outcome = Some(m),
            // Not a message (a library printing to stdout): nothing to act on.
            None => {}
        }
    }

    /// The worker's own error, if it said one.
    fn error(&self) -> Option<&str> {
        match &self.outcome {
            Some(worker::Message::Failed { error }) => Some(error),
            _ => None,
        }
    }
}

/// The worker's own error (its `FAILED` line), as ": <error>" for a log line.
fn failure_text(said: &Heard) -> String {
    said.error().map_or(String::new(), |e| format!(": {e}"))
}

/// If the worker failed because the results disk is full, the error. The worker says so on
/// its stdout; a worker that could not even say it (it died writing to worker.log) is caught
/// by the pool's own write to worker.log failing the same way.
fn disk_full(a: &Active, code: i32, said: &Heard) -> Option<String> {
    if let Some(e) = said.error() {
        let full = ["No space left on device", "os error 28", "Disk quota exceeded", "os error 122"];
        return full.iter().any(|p| e.contains(p)).then(|| e.to_string());
    }
    let note = format!("windtunnel run: worker exited with code {code} without a word\n");
    let res = store::fake_enospc(&a.dir.log_file()).and_then(|_| {
        use std::io::Write;
        std::fs::OpenOptions::new().append(true).open(a.dir.log_file())?.write_all(note.as_bytes())
    });
    match res {
        Err(e) if matches!(e.raw_os_error(), Some(28) | Some(122)) => {
            Some(format!("the worker exited with code {code}; writing {}: {e}", a.dir.log_file().display()))
        }
        _ => None,
    }
}

/// Marks a run failed in its status.json (the worker could not, e.g. on a full disk), so
/// `status` shows it failed and not pending or running.
fn record_failure(dir: &RunDir, error: &str) -> Result<()> {
    let mut st = dir.read_status().unwrap_or(store::Status {
        state: store::RunState::Failed,
        attempt: 1,
        host: store::hostname(),
        pid: 0,
        heartbeat: 0,
        step: 0,
        error: None,
    });
    if st.state == store::RunState::Failed && st.error.is_some() {
        return Ok(());
    }
    st.state = store::RunState::Failed;
    st.error = Some(error.to_string());
    st.heartbeat = store::now_unix();
    let Err(e) = dir.write_status(&st) else { return Ok(()) };
    // On a full disk the atomic write (a new temp file) cannot get a block, but an existing
    // status.json can be overwritten in place: a few hundred bytes within its own block, then
    // shortened, so no new block is needed. A crash midway leaves a torn file, which reads as
    // no status (pending): no worse than not writing it.
    let path = dir.status_json();
    let in_place = || -> std::io::Result<()> {
        use std::io::Write;
        let mut bytes = serde_json::to_vec(&st)?;
        bytes.push(b'\n');
        store::fake_enospc(&path)?;
        let mut f = std::fs::OpenOptions::new().write(true).open(&path)?;
        f.write_all(&bytes)?;
        f.set_len(bytes.len() as u64)?;
        f.sync_all()
    };
    if path.exists() && in_place().is_ok() {
        return Ok(());
    }
    Err(e)
}

/// If the worker died of an out-of-memory error (its log's tail says so: a CUDA allocation
/// failure, or the test hook's simulated one), the micro-batch it was running with.
fn out_of_memory(a: &Active) -> Option<usize> {
    let text = std::fs::read(a.dir.log_file()).ok()?;
    let tail = String::from_utf8_lossy(&text[text.len().saturating_sub(65536)..]).to_lowercase();
    let oom = ["out of memory", "outofmemory", "out_of_memory"].iter().any(|p| tail.contains(p));
    oom.then(|| a.micro.or(a.run.micro_batch).unwrap_or(a.run.batch_size).min(a.run.batch_size))
}

fn log(mp: &MultiProgress, tty: bool, line: &str) {
    if tty {
        let _ = mp.println(line);
    } else {
        eprintln!("{line}");
    }
}

#[allow(clippy::too_many_arguments)]
fn spawn(
    exe: &Path,
    dir: &SweepDir,
    run: RunConfig,
    attempt: u32,
    est_s: f64,
    threads: usize,
    backend: crate::spec::config::Backend,
    device: usize,
    micro: Option<usize>,
    mp: &MultiProgress,
) -> Result<Active> {
    let rd = dir.run(&run.run_id());
    let log_file = match store::fake_enospc(&rd.log_file()) {
        Ok(()) => std::fs::OpenOptions::new().create(true).append(true).open(rd.log_file())?,
        // The test hook's full disk: every write to worker.log fails with ENOSPC, as it does
        // on a real one.
        Err(_) => std::fs::OpenOptions::new().write(true).open("/dev/full")?,
    };
    let mut cmd = Command::new(exe);
    cmd.arg("worker")
        .arg(&rd.path)
        .args(["--backend", backend.name()])
        .args(["--device", &device.to_string()])
        .args(["--parent-pid", &std::process::id().to_string()]);
    if let Some(m) = micro {
        cmd.args(["--micro-batch", &m.to_string()]);
    }
    let mut child = cmd
        .env("RAYON_NUM_THREADS", threads.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log_file))
        .spawn()
        .with_context(|| format!("starting worker {}", exe.display()))?;
    let state = Arc::new(Mutex::new(Heard { steps: run.steps, loss: f64::NAN, ..Default::default() }));
    let out = child.stdout.take().unwrap();
    let st = state.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            st.lock().unwrap().hear(&line);
        }
    });
    let bar = mp.add(ProgressBar::new(run.steps));
    bar.set_style(
        ProgressStyle::with_template("  {prefix} [{bar:20}] {pos}/{len} {msg}").unwrap().progress_chars("=> "),
    );
    bar.set_prefix(format!("{} d{} L{}", &rd.id[..8], run.width, run.depth));
    Ok(Active { child, run, dir: rd, bar, attempt, est_s, device, micro, state, reader: Some(reader) })
}

#[cfg(test)]
mod tests {
    /// The worker's lines are typed messages: progress updates the counters, the last other
    /// message is the outcome, and a stray line on stdout (a library printing) changes nothing,
    /// even one that looks like the old string verbs.
    #[test]
    fn the_pool_hears_typed_messages_and_ignores_other_text() {
        use super::worker::Message;
        let said = |m: &Message| serde_json::to_string(m).unwrap();
        let mut h = super::Heard::default();
        h.hear(&said(&Message::Progress { step: 3, steps: 10, loss: 2.5, tokens_per_s: 900.0 }));
        assert_eq!((h.step, h.steps, h.loss, h.tokens_per_s), (3, 10, 2.5, 900.0));
        h.hear("FAILED not a message");
        h.hear("ALREADY_DONE");
        assert_eq!(h.outcome, None);
        assert_eq!(super::failure_text(&h), "");
        let fail = Message::Failed { error: "No space left on device (os error 28)".into() };
        h.hear(&said(&fail));
        assert_eq!(h.error(), Some("No space left on device (os error 28)"));
        assert_eq!(super::failure_text(&h), ": No space left on device (os error 28)");
        for m in [Message::AlreadyDone, Message::Stopped { step: 7 }, Message::Busy { holder: "pid 1".into() }] {
            assert_eq!(Message::parse(&said(&m)), Some(m));
        }
    }

    #[test]
    fn runs_go_to_the_least_busy_device() {
        assert_eq!(super::pick_device(&[], &[]), 0);
        assert_eq!(super::pick_device(&[2, 3], &[]), 2);
        assert_eq!(super::pick_device(&[2, 3], &[2]), 3);
        assert_eq!(super::pick_device(&[2, 3], &[2, 3, 3]), 2);
    }
}

/// The runs of a sweep as `collect` sees them.
#[derive(Debug, Default)]
pub struct Finished {
    /// DONE with an intact record, with their configs, in sweep order.
    pub done: Vec<(RunDir, RunConfig)>,
    /// Diverged or learned nothing (the trainer marked them): excluded from the fit.
    pub diverged: Vec<String>,
    /// DONE but damaged (id, what is wrong): excluded from the fit; `run` trains them again.
    pub damaged: Vec<(String, String)>,
    /// Run folders that are not what their name says (a file, a symlink, unreadable, another
    /// run's copy: `store::Problem`): not read at all. `collect` refuses to fit without them
    /// unless told to (see `app::fit::collect_fit_report`).
    pub problems: Vec<(String, store::Problem)>,
}

impl Finished {
    /// The sweep's runs that are none of done, diverged, damaged or a problem folder.
    pub fn unfinished(&self, runs: usize) -> usize {
        runs.saturating_sub(self.done.len() + self.diverged.len() + self.damaged.len() + self.problems.len())
    }
}

/// Every run of the sweep that is finished, diverged or damaged (runs of other sweep versions
/// are ignored). A DONE run counts as done only if its record matches its DONE.
pub fn finished_runs(sweep: &Sweep, dir: &SweepDir) -> Finished {
    let mut f = Finished::default();
    for r in &sweep.runs {
        let rd = dir.run(&r.run_id());
        if let Some(p) = rd.problem(r) {
            f.problems.push((rd.id.clone(), p));
            continue;
        }
        match rd.check_done(r.steps) {
            store::DoneCheck::Good(_) => f.done.push((rd, r.clone())),
            store::DoneCheck::Damaged(why) => f.damaged.push((rd.id.clone(), why)),
            store::DoneCheck::NotDone => {
                if rd.read_status().is_some_and(|s| s.state == store::RunState::Diverged) {
                    f.diverged.push(rd.id.clone());
                }
            }
        }
    }
    f
}

/// Every finished run of the sweep with its config, in sweep order (runs of other sweep
/// versions, and damaged runs, are left out), and the ids of runs that diverged.
pub fn finished(sweep: &Sweep, dir: &SweepDir) -> (Vec<(RunDir, RunConfig)>, Vec<String>) {
    let f = finished_runs(sweep, dir);
    (f.done, f.diverged)
}

/// For the fit and report that follow training in `run`: from now on a stop signal (SIGINT,
/// SIGTERM, SIGUSR1; their handlers set by `run`) ends the process within a tenth of a second
/// with `code`, as it does during training. Nothing is lost: the runs are on disk,
/// fit.json and the report are replaced atomically (an interrupted fit leaves the previous
/// ones), and `collect` redoes the fit.
pub fn exit_on_stop_signal(code: i32) {
    sys::on_signals(&sys::STOP_SIGNALS, on_stop_signal);
    std::thread::spawn(move || loop {
        let sig = STOP_SIGNAL.load(std::sync::atomic::Ordering::SeqCst);
        if sig != 0 {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "signal {sig} during the fit: stopping; the finished runs are kept, `windtunnel collect` fits them"
            );
            std::process::exit(code);
        }
        std::thread::sleep(Duration::from_millis(50));
    });
}
