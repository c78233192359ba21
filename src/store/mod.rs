//! Every path under `results/<sweep>/` is a method here and nowhere else, and every write is
//! crash-safe: whole files are written to a temp file in the same folder, fsynced and renamed;
//! JSONL records are one `write_all` of one line to a file opened for append, and readers skip
//! a torn last line. A run counts as finished only once its DONE marker exists (llm.c style),
//! so a kill at any moment leaves either a finished run or an unfinished one, never a half one.

pub mod frame;

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
    /// `windtunnel check`'s calibration ledger.
    pub fn check_json(&self) -> PathBuf {
        self.root.join("check.json")
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

    /// Every run folder present (finished or not), sorted by id.
    pub fn list_runs(&self) -> Result<Vec<RunDir>> {
        let dir = self.runs_dir();
        if !dir.exists() {
            return Ok(Vec::new());
        }
        let mut runs: Vec<RunDir> = fs::read_dir(&dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .map(|e| {
                let id = e.file_name().to_string_lossy().to_string();
                RunDir { path: e.path(), id }
            })
            .collect();
        runs.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(runs)
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
    /// running | done | failed | diverged
    pub state: String,
    pub attempt: u32,
    pub host: String,
    pub pid: u32,
    /// Unix seconds of the last write.
    pub heartbeat: u64,
    pub step: u64,
    pub error: Option<String>,
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

/// Writes `bytes` to `path` atomically: temp file in the same folder, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let res = (|| -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = res {
        let _ = fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("writing {}", path.display()));
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
    f.write_all(&line).with_context(|| format!("appending to {}", path.display()))?;
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
    let mut bytes = Vec::new();
    for r in recs.iter().filter(|r| step_of(r) < step) {
        bytes.extend(serde_json::to_vec(r)?);
        bytes.push(b'\n');
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
}
