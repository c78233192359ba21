//! Every path under `results/<sweep>/` is a method here and nowhere else, and every write is
//! crash-safe: whole files are written to a temp file in the same folder, fsynced and renamed;
//! JSONL records are one `write_all` of one line to a file opened for append, and readers skip
//! a torn last line. A run counts as finished only once its DONE marker exists (llm.c style),
//! so a kill at any moment leaves either a finished run or an unfinished one, never a half one.

pub mod frame;
pub mod imported;
pub mod mix_check;
pub mod place;

pub use place::{Place, Problem};

use anyhow::{Context, Result};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// `results/<sweep>/`.
#[derive(Clone, Debug)]
pub struct SweepDir {
    pub root: PathBuf,
}

impl SweepDir {
    pub fn new(results: &Path, sweep: &str) -> SweepDir {
        SweepDir { root: results.join(sweep) }
    }

    /// An existing sweep results folder named by its own path (`fit DIR`, `report DIR`, ...).
    pub fn at(root: &Path) -> SweepDir {
        SweepDir { root: root.to_path_buf() }
    }
    pub fn runs_dir(&self) -> PathBuf {
        self.root.join("runs")
    }
    pub fn run(&self, id: &str) -> RunDir {
        RunDir { path: self.runs_dir().join(id), id: id.to_string() }
    }
    pub fn sweep_toml(&self) -> PathBuf {
        self.root.join("sweep.toml")
    }
    pub fn runs_parquet(&self) -> PathBuf {
        self.root.join("runs.parquet")
    }
    pub fn fit_json(&self) -> PathBuf {
        self.root.join("fit.json")
    }
    /// An imported folder's record (`store::imported::Record`): where the runs came from.
    pub fn import_json(&self) -> PathBuf {
        self.root.join("import.json")
    }
    /// An imported folder's held-out runs, in runs.parquet's columns (never fitted).
    pub fn checks_parquet(&self) -> PathBuf {
        self.root.join("checks.parquet")
    }
    /// The laws of the other validation sets, by set (`fit::FitReport` each).
    pub fn fit_sets_json(&self) -> PathBuf {
        self.root.join("fit_sets.json")
    }
    /// `windtunnel check`'s calibration ledger.
    pub fn check_json(&self) -> PathBuf {
        self.root.join("check.json")
    }
    /// `windtunnel mix-check`'s outcome (`store::mix_check::MixCheck`).
    pub fn mix_check_json(&self) -> PathBuf {
        self.root.join("mix_check.json")
    }

    pub fn report_md(&self) -> PathBuf {
        self.root.join("report.md")
    }
    pub fn report_html(&self) -> PathBuf {
        self.root.join("report.html")
    }
    pub fn plots_dir(&self) -> PathBuf {
        self.root.join("plots")
    }

    /// Every run folder present (finished or not), sorted by id. Real folders only: a symlink
    /// is no run folder (see `place::Problem::Symlink`); `entries` lists everything.
    pub fn list_runs(&self) -> Result<Vec<RunDir>> {
        let dir = self.runs_dir();
        if !dir.exists() {
            return Ok(Vec::new());
        }
        let mut runs: Vec<RunDir> = fs::read_dir(&dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| {
                let id = e.file_name().to_string_lossy().to_string();
                RunDir { path: e.path(), id }
            })
            .collect();
        runs.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(runs)
    }
}

impl SweepDir {
    /// The names of everything in runs/ (folders, files, links), sorted: what `status` must
    /// account for, whatever it is.
    pub fn entries(&self) -> Result<Vec<String>> {
        let dir = self.runs_dir();
        if !dir.exists() {
            return Ok(Vec::new());
        }
        let mut names: Vec<String> = fs::read_dir(&dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        Ok(names)
    }
}

/// `results/<sweep>/runs/<run_id>/`.
#[derive(Clone, Debug)]
pub struct RunDir {
    pub path: PathBuf,
    pub id: String,
}

/// The run's lifecycle, in `status.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Status {
    pub state: RunState,
    pub attempt: u32,
    pub host: String,
    pub pid: u32,
    /// Unix seconds of the last write.
    pub heartbeat: u64,
    pub step: u64,
    pub error: Option<String>,
}

/// A run's state as its status.json records it (written lowercase: "running", "done", ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    Running,
    Done,
    Failed,
    Diverged,
    /// Stopped by a signal after a checkpoint; `run` again resumes it.
    Stopped,
}

/// One validation point, a line of `evals.jsonl`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EvalRecord {
    pub step: u64,
    pub tokens: u64,
    pub flops: f64,
    pub lr: f64,
    /// Mixture-weighted validation loss (nats/token) under the run's own mixture.
    pub loss: f64,
    /// Per-domain validation loss, nats/token, in the sweep's domain order.
    pub domain_loss: Vec<(String, f64)>,
    /// Bits per byte of the mixture (total bits over total bytes under the run's mixture), so
    /// runs with different tokenizers compare; absent when a domain's bytes/token is unknown.
    #[serde(default)]
    pub bpb: Option<f64>,
    /// Per-domain bits per byte, for the domains whose bytes/token is known.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domain_bpb: Vec<(String, f64)>,
}

/// One training-log line of `metrics.jsonl`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct MetricRecord {
    pub step: u64,
    pub tokens: u64,
    pub flops: f64,
    pub lr: f64,
    pub loss: f64,
    pub grad_norm: f64,
    pub tokens_per_s: f64,
}

/// Written into DONE: what the run achieved, for quick listing without reading every file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub final_loss: f64,
    pub steps: u64,
    pub tokens: u64,
    pub wall_s: f64,
    pub tokens_per_s: f64,
    /// Seconds from the worker process's start to its first training step (absent in
    /// summaries written before this field existed).
    #[serde(default)]
    pub startup_s: Option<f64>,
    /// Sequences per forward/backward pass when the batch was accumulated over several
    /// (absent: the whole batch at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub micro_batch: Option<usize>,
    /// Training tokens drawn from each domain (the realised mixture), in domain order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domain_tokens: Vec<(String, u64)>,
    /// What a complete run has, as DONE was written: the step of its last evaluation, how many
    /// evaluations evals.jsonl holds and the file's BLAKE3 hash. `run` and `collect` check a DONE
    /// run against them (`RunDir::check_done`), so a truncated, emptied or edited evals.jsonl is
    /// caught instead of fitted. Absent in DONE files written before they existed:
    /// those are checked against `steps` and `final_loss` alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_step: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evals: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evals_blake3: Option<String>,
}

#[cfg(test)]
impl Summary {
    /// A DONE summary with only the counts (tests that fake finished runs).
    pub fn bare(final_loss: f64, steps: u64, tokens: u64, wall_s: f64) -> Summary {
        Summary {
            final_loss,
            steps,
            tokens,
            wall_s,
            tokens_per_s: 1.0,
            startup_s: None,
            micro_batch: None,
            domain_tokens: Vec::new(),
            final_step: None,
            evals: None,
            evals_blake3: None,
        }
    }
}

/// A finished run faked for tests: config.json, an evals.jsonl of four evaluations ending at
/// the run's last step with `final_loss`, and the DONE that describes it (so `check_done` is
/// Good).
#[cfg(test)]
pub fn fake_done(rd: &RunDir, cfg: &crate::spec::config::RunConfig, final_loss: f64) {
    write_json_atomic(&rd.config_json(), cfg).unwrap();
    let evals: Vec<EvalRecord> = (1..=4u64)
        .map(|k| {
            let step = cfg.steps * k / 4;
            let tokens = step * (cfg.batch_size * cfg.seq_len) as u64;
            EvalRecord {
                step,
                tokens,
                flops: tokens as f64 * 1e4,
                lr: cfg.lr,
                loss: final_loss + (4 - k) as f64 * 0.5,
                domain_loss: cfg.domains.iter().map(|d| (d.name.clone(), final_loss + (4 - k) as f64 * 0.5)).collect(),
                bpb: None,
                domain_bpb: Vec::new(),
            }
        })
        .collect();
    let text: String = evals.iter().map(|e| serde_json::to_string(e).unwrap() + "\n").collect();
    write_atomic(&rd.evals_jsonl(), text.as_bytes()).unwrap();
    let mut sum = Summary::bare(final_loss, cfg.steps, cfg.tokens, 1.0);
    sum.final_step = Some(cfg.steps);
    sum.evals = Some(4);
    sum.evals_blake3 = Some(blake3::hash(text.as_bytes()).to_hex().to_string());
    rd.mark_done(&sum).unwrap();
    assert!(matches!(rd.check_done(cfg.steps), DoneCheck::Good(_)), "fake_done: not a good DONE");
}

/// What `RunDir::check_done` found.
#[derive(Clone, Debug, PartialEq)]
pub enum DoneCheck {
    /// No DONE marker: the run is not finished.
    NotDone,
    /// DONE, and evals.jsonl is what DONE says it is.
    Good(Summary),
    /// DONE, but the run's record does not match it (the reason names the file and what is
    /// wrong): it must not be fitted, and `run` trains it again.
    Damaged(String),
}

/// How far below its starting value a run's best validation loss must get to count as having
/// learned anything: far above float noise, far below what any real run gains in its first
/// evaluation interval.
pub const LEARN_MARGIN: f64 = 0.01;

/// Why a run that trained to its end learned nothing, if it did not: its best validation loss
/// never fell `LEARN_MARGIN` below its starting value (the training loss of its first step,
/// when known) nor below ln V, the loss of predicting every token uniformly. Such a run (e.g.
/// `init_std = 1e30`: every evaluation exactly ln 256) is no point of a scaling law; it is
/// flagged like a diverged one.
pub fn not_learned(evals: &[EvalRecord], start_loss: Option<f64>, vocab: usize) -> Option<String> {
    let uniform = (vocab.max(2) as f64).ln();
    let (bar, what) = match start_loss.filter(|l| l.is_finite() && *l < uniform) {
        Some(s) => (s, format!("its starting loss {s:.4}")),
        None => (uniform, format!("ln V = ln {} = {uniform:.4} (uniform guessing)", vocab.max(2))),
    };
    let best = evals.iter().map(|e| e.loss).fold(f64::INFINITY, f64::min);
    if best < bar - LEARN_MARGIN {
        return None;
    }
    Some(if evals.is_empty() {
        "did not learn: no evaluation recorded".to_string()
    } else {
        format!("did not learn: its best validation loss {best:.4} never fell below {what}")
    })
}

impl RunDir {
    pub fn config_json(&self) -> PathBuf {
        self.path.join("config.json")
    }
    pub fn status_json(&self) -> PathBuf {
        self.path.join("status.json")
    }
    pub fn metrics_jsonl(&self) -> PathBuf {
        self.path.join("metrics.jsonl")
    }
    pub fn evals_jsonl(&self) -> PathBuf {
        self.path.join("evals.jsonl")
    }
    pub fn checkpoint_dir(&self) -> PathBuf {
        self.path.join("checkpoint")
    }
    pub fn done_marker(&self) -> PathBuf {
        self.path.join("DONE")
    }
    pub fn log_file(&self) -> PathBuf {
        self.path.join("worker.log")
    }
    /// Held (flock) by the worker training this run; see `runner::sys::try_lock`.
    pub fn lock_file(&self) -> PathBuf {
        self.path.join("lock")
    }
    pub fn is_done(&self) -> bool {
        self.done_marker().exists()
    }

    /// Whether the run is DONE with an intact record: DONE parses, evals.jsonl parses line by
    /// line (a DONE run has no torn line), its steps increase and end at the run's last step
    /// with DONE's final loss, and its hash and count are those DONE recorded. Reads DONE and
    /// evals.jsonl only.
    pub fn check_done(&self, steps: u64) -> DoneCheck {
        if !self.is_done() {
            return DoneCheck::NotDone;
        }
        match self.verify_done(steps) {
            Ok(s) => DoneCheck::Good(s),
            Err(why) => DoneCheck::Damaged(why),
        }
    }

    fn verify_done(&self, steps: u64) -> std::result::Result<Summary, String> {
        let done = self.done_marker();
        let s: Summary = read_json(&done).map_err(|e| format!("{e:#}"))?;
        let path = self.evals_jsonl();
        let bytes = fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let (evals, hash) = parse_evals(&path, &bytes)?;
        let last = evals.last().ok_or_else(|| format!("{}: no evaluation in it", path.display()))?;
        if let Some(h) = &s.evals_blake3 {
            if *h != hash || s.evals != Some(evals.len()) {
                return Err(format!(
                    "{}: {} evaluation(s) ending at step {}, but DONE records {} ending at step {} (checksum differs)",
                    path.display(),
                    evals.len(),
                    last.step,
                    s.evals.map_or("?".into(), |n| n.to_string()),
                    s.final_step.unwrap_or(s.steps)
                ));
            }
        }
        let end = s.final_step.unwrap_or(s.steps);
        if last.step != steps || end != steps || s.steps != steps {
            return Err(format!(
                "{}: last evaluation at step {}, DONE says step {end}, the run has {steps} steps",
                path.display(),
                last.step
            ));
        }
        if !(s.final_loss.is_finite() && last.loss == s.final_loss) {
            return Err(format!(
                "{}: final loss {} at step {}, but DONE says {}",
                path.display(),
                last.loss,
                last.step,
                s.final_loss
            ));
        }
        Ok(s)
    }

    pub fn read_status(&self) -> Option<Status> {
        read_json(&self.status_json()).ok()
    }
    pub fn write_status(&self, s: &Status) -> Result<()> {
        write_json_atomic(&self.status_json(), s)
    }
    pub fn read_summary(&self) -> Option<Summary> {
        read_json(&self.done_marker()).ok()
    }
    pub fn read_evals(&self) -> Result<Vec<EvalRecord>> {
        read_jsonl(&self.evals_jsonl())
    }
    /// Marks the run finished. Everything else of the run must already be on disk.
    pub fn mark_done(&self, s: &Summary) -> Result<()> {
        write_json_atomic(&self.done_marker(), s)
    }
}

/// The records of a DONE run's evals.jsonl (every line must parse: a finished run has no torn
/// line) and the BLAKE3 hash of its bytes.
pub fn parse_evals(path: &Path, bytes: &[u8]) -> std::result::Result<(Vec<EvalRecord>, String), String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("{}: not UTF-8: {e}", path.display()))?;
    let mut evals: Vec<EvalRecord> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let e: EvalRecord =
            serde_json::from_str(line).map_err(|e| format!("{}:{}: corrupt record: {e}", path.display(), i + 1))?;
        if evals.last().is_some_and(|p| p.step >= e.step) {
            return Err(format!("{}:{}: step {} does not follow the previous record's", path.display(), i + 1, e.step));
        }
        evals.push(e);
    }
    Ok((evals, blake3::hash(bytes).to_hex().to_string()))
}

/// Test hook standing in for a full disk without needing one (or root to mount one):
/// `WINDTUNNEL_FAKE_ENOSPC=name1,name2` makes every write to a file whose name starts with one
/// of the names fail with ENOSPC, exactly as the kernel reports it.
pub fn fake_enospc(path: &Path) -> std::io::Result<()> {
    let Ok(names) = std::env::var("WINDTUNNEL_FAKE_ENOSPC") else { return Ok(()) };
    let file = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    if names.split(',').any(|n| !n.is_empty() && file.starts_with(n)) {
        const ENOSPC: i32 = 28;
        return Err(std::io::Error::from_raw_os_error(ENOSPC));
    }
    Ok(())
}

/// Whether an error chain is a full disk (ENOSPC, or the quota's EDQUOT).
pub fn is_disk_full(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().and_then(|io| io.raw_os_error()).is_some_and(|n| n == 28 || n == 122)
    }) || format!("{e:#}").contains("No space left on device")
}

/// Writes `bytes` to `path` atomically: temp file in the same folder, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_all(&[(path, bytes)])
}

/// Writes several files so that either all of them are replaced or none is: each goes to a
/// temp file in its folder and is fsynced, and only once every one is on disk are they renamed
/// into place. A full disk while writing the second leaves the first untouched, so a pair
/// such as report.md and report.html never disagree.
pub fn write_atomic_all(files: &[(&Path, &[u8])]) -> Result<()> {
    let mut staged: Vec<(PathBuf, &Path)> = Vec::new();
    let clean = |staged: &[(PathBuf, &Path)]| {
        for (tmp, _) in staged {
            let _ = fs::remove_file(tmp);
        }
    };
    for (path, bytes) in files {
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if let Err(e) = fs::create_dir_all(dir) {
            clean(&staged);
            return Err(e).with_context(|| format!("creating {}", dir.display()));
        }
        let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
        let res = (|| -> std::io::Result<()> {
            fake_enospc(path)?;
            let mut f = File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()
        })();
        staged.push((tmp, path));
        if let Err(e) = res {
            clean(&staged);
            return Err(e).with_context(|| format!("writing {}", path.display()));
        }
    }
    for (k, (tmp, path)) in staged.iter().enumerate() {
        if let Err(e) = fs::rename(tmp, path) {
            // Not expected once the bytes are on disk; the files renamed so far are removed
            // rather than left beside older companions.
            clean(&staged[k..]);
            for (_, done) in &staged[..k] {
                let _ = fs::remove_file(done);
            }
            return Err(e).with_context(|| format!("writing {}", path.display()));
        }
    }
    Ok(())
}

pub fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value)?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}

pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Appends one record as one line with a single `write_all` (so a crash tears at most the
/// last line, which readers skip).
pub fn append_jsonl<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut line = serde_json::to_vec(value)?;
    line.push(b'\n');
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    fake_enospc(path).and_then(|_| f.write_all(&line)).with_context(|| format!("appending to {}", path.display()))?;
    Ok(())
}

/// Reads a JSONL file, skipping a torn (unterminated or unparsable) last line. A bad line in
/// the middle is corruption and an error.
pub fn read_jsonl<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let last = i + 1 >= lines.len() || lines[i + 1..].iter().all(|l| l.trim().is_empty());
        match serde_json::from_str(line) {
            Ok(v) => out.push(v),
            Err(_) if last => break,
            Err(e) => anyhow::bail!("{}:{}: corrupt record: {e}", path.display(), i + 1),
        }
    }
    Ok(out)
}

/// Truncates a JSONL file to the records whose step is below `step` (used on resume, so the
/// log of the continued run does not repeat steps done after the last checkpoint).
pub fn truncate_jsonl_after<T>(path: &Path, step: u64, step_of: impl Fn(&T) -> u64) -> Result<()>
where
    T: Serialize + DeserializeOwned,
{
    if !path.exists() {
        return Ok(());
    }
    let recs: Vec<T> = read_jsonl(path)?;
    // The kept records' own lines, byte for byte: re-serialising them would pass every float
    // through serde_json's parser, which is not exact to the last bit, and a resumed run's
    // evals.jsonl would differ in text from an uninterrupted run's. read_jsonl's records are the
    // file's non-empty lines in order (a torn last one dropped), so they pair with them.
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut bytes = Vec::new();
    for (r, line) in recs.iter().zip(text.split('\n').filter(|l| !l.trim().is_empty())) {
        if step_of(r) < step {
            bytes.extend_from_slice(line.as_bytes());
            bytes.push(b'\n');
        }
    }
    write_atomic(path, &bytes)
}

pub fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

pub fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_else(|_| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torn_last_line_is_skipped_but_middle_corruption_is_an_error() {
        let dir = std::env::temp_dir().join(format!("wt-store-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("m.jsonl");
        fs::write(&p, "{\"a\":1}\n{\"a\":2}\n{\"a\":").unwrap();
        let v: Vec<serde_json::Value> = read_jsonl(&p).unwrap();
        assert_eq!(v.len(), 2);
        fs::write(&p, "{\"a\":1}\n{\"a\n{\"a\":3}\n").unwrap();
        assert!(read_jsonl::<serde_json::Value>(&p).is_err());
        write_atomic(&p, b"x").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"x");
        fs::remove_dir_all(&dir).unwrap();
    }

    fn eval(step: u64, loss: f64) -> EvalRecord {
        EvalRecord {
            step,
            tokens: step * 128,
            flops: step as f64 * 1e6,
            lr: 1e-2,
            loss,
            domain_loss: vec![("markov".into(), loss)],
            bpb: None,
            domain_bpb: Vec::new(),
        }
    }

    #[test]
    fn a_done_run_whose_evals_were_truncated_emptied_or_edited_is_damaged() {
        let root = std::env::temp_dir().join(format!("wt-done-check-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let rd = SweepDir::new(&root, "s").run("r");
        fs::create_dir_all(&rd.path).unwrap();
        assert_eq!(rd.check_done(40), DoneCheck::NotDone);
        let evals: Vec<EvalRecord> = (1..=5).map(|k| eval(8 * k, 5.0 - k as f64 * 0.3)).collect();
        let text: String = evals.iter().map(|e| serde_json::to_string(e).unwrap() + "\n").collect();
        fs::write(rd.evals_jsonl(), &text).unwrap();
        let (parsed, hash) = parse_evals(&rd.evals_jsonl(), text.as_bytes()).unwrap();
        let sum = Summary {
            final_loss: parsed[4].loss,
            steps: 40,
            tokens: 40 * 128,
            wall_s: 1.0,
            tokens_per_s: 1.0,
            startup_s: None,
            micro_batch: None,
            domain_tokens: Vec::new(),
            final_step: Some(40),
            evals: Some(5),
            evals_blake3: Some(hash),
        };
        rd.mark_done(&sum).unwrap();
        assert!(matches!(rd.check_done(40), DoneCheck::Good(_)));
        let damaged = |steps: u64| match rd.check_done(steps) {
            DoneCheck::Damaged(why) => why,
            other => panic!("expected damaged, got {other:?}"),
        };
        // Another step count than the run's: DONE belongs to a different run length.
        assert!(damaged(48).contains("the run has 48 steps"));
        // The first four lines kept (the pre-decay point would become the final one).
        let four: String = text.lines().take(4).map(|l| format!("{l}\n")).collect();
        fs::write(rd.evals_jsonl(), &four).unwrap();
        let why = damaged(40);
        assert!(why.contains("evals.jsonl") && why.contains("4 evaluation(s) ending at step 32"), "{why}");
        // The last four kept: the final point is right but the record is not what DONE says.
        let last4: String = text.lines().skip(1).map(|l| format!("{l}\n")).collect();
        fs::write(rd.evals_jsonl(), &last4).unwrap();
        assert!(damaged(40).contains("checksum differs"));
        fs::write(rd.evals_jsonl(), "").unwrap();
        assert!(damaged(40).contains("no evaluation"));
        fs::remove_file(rd.evals_jsonl()).unwrap();
        assert!(damaged(40).contains("evals.jsonl"));
        // A torn line is no part of a finished run.
        fs::write(rd.evals_jsonl(), format!("{}{{\"step\":", text)).unwrap();
        assert!(damaged(40).contains("corrupt record"));
        // DONE edited while evals.jsonl is intact.
        fs::write(rd.evals_jsonl(), &text).unwrap();
        rd.mark_done(&Summary { final_loss: 2.0, ..sum.clone() }).unwrap();
        assert!(damaged(40).contains("DONE says 2"));
        // A DONE from before the record existed: checked against the run's end and final loss.
        let legacy = Summary { final_step: None, evals: None, evals_blake3: None, ..sum.clone() };
        rd.mark_done(&legacy).unwrap();
        assert!(matches!(rd.check_done(40), DoneCheck::Good(_)));
        fs::write(rd.evals_jsonl(), &four).unwrap();
        assert!(damaged(40).contains("last evaluation at step 32"));
        fs::write(rd.done_marker(), "{").unwrap();
        assert!(damaged(40).contains("DONE"));
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_run_stuck_at_its_start_or_at_ln_v_did_not_learn() {
        let lnv = 256f64.ln();
        let stuck: Vec<EvalRecord> = (1..=4).map(|k| eval(k, lnv)).collect();
        assert!(not_learned(&stuck, Some(lnv), 256).unwrap().contains("ln V = ln 256"));
        assert!(not_learned(&stuck, None, 256).is_some());
        assert!(not_learned(&[], None, 256).unwrap().contains("no evaluation"));
        // From a huge start (a bad init) down to, but not below, uniform guessing: nothing learned.
        let fell: Vec<EvalRecord> = [40.0, 9.0, 6.0].iter().enumerate().map(|(k, &l)| eval(k as u64, l)).collect();
        assert!(not_learned(&fell, Some(80.0), 256).is_some());
        // Starting below ln V, it must get below its own start.
        let flat: Vec<EvalRecord> = [5.2, 5.195].iter().enumerate().map(|(k, &l)| eval(k as u64, l)).collect();
        assert!(not_learned(&flat, Some(5.2), 256).unwrap().contains("starting loss 5.2000"));
        let learned: Vec<EvalRecord> = [5.0, 3.0, 2.4].iter().enumerate().map(|(k, &l)| eval(k as u64, l)).collect();
        assert_eq!(not_learned(&learned, Some(5.6), 256), None);
        let nan = vec![eval(1, f64::NAN)];
        assert!(not_learned(&nan, None, 256).is_some());
    }

    #[test]
    fn a_pair_of_files_is_replaced_together_or_not_at_all() {
        let dir = std::env::temp_dir().join(format!("wt-pair-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let (md, html) = (dir.join("report.md"), dir.join("report.html"));
        write_atomic_all(&[(&md, b"md 1"), (&html, b"html 1")]).unwrap();
        // The second cannot be written (its folder is a file): the first keeps its old bytes.
        let blocked = dir.join("blocker");
        fs::write(&blocked, "not a folder").unwrap();
        let err = write_atomic_all(&[(&md, b"md 2"), (&blocked.join("report.html"), b"html 2")]).unwrap_err();
        assert!(format!("{err:#}").contains("blocker"), "{err:#}");
        assert_eq!(fs::read(&md).unwrap(), b"md 1");
        let left: Vec<String> =
            fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
        assert!(left.iter().all(|n| !n.contains(".tmp.")), "temp files left: {left:?}");
        write_atomic_all(&[(&md, b"md 3"), (&html, b"html 3")]).unwrap();
        assert_eq!((fs::read(&md).unwrap(), fs::read(&html).unwrap()), (b"md 3".to_vec(), b"html 3".to_vec()));
        fs::remove_dir_all(&dir).unwrap();
    }
}
