//! `windtunnel status DIR`: where a sweep stands, from its files alone. It reads each run
//! folder's config.json, status.json and DONE (never the metrics, never a lock), so it is
//! safe to run at any time, from any node, while workers write. It must not write anything.

use crate::spec::config::RunConfig;
use crate::store::{self, RunDir, SweepDir};
use crate::UserError;
use anyhow::Result;
use std::collections::BTreeSet;
use std::path::Path;

/// A worker rewrites status.json every 5 s while it trains; a "running" run from another
/// host whose heartbeat is older than this is reported as stale (its worker probably died).
pub const STALE_AFTER_S: u64 = 600;

/// What `status` shows for a run folder: status.json's `store::RunState` as far as it can be
/// believed (a "running" worker that is gone is stale; "done" without DONE did not finish),
/// plus the folders with no status yet and those of runs the sweep file no longer has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisplayState {
    Done,
    Running,
    Stale,
    Stopped,
    Failed,
    Diverged,
    Pending,
    /// A folder no longer in the sweep file (counted apart from the summary's states).
    Orphan,
}

impl DisplayState {
    /// The word of the summary line and the table.
    pub fn as_str(self) -> &'static str {
        match self {
            DisplayState::Done => "done",
            DisplayState::Running => "running",
            DisplayState::Stale => "stale",
            DisplayState::Stopped => "stopped",
            DisplayState::Failed => "failed",
            DisplayState::Diverged => "diverged",
            DisplayState::Pending => "pending",
            DisplayState::Orphan => "orphan",
        }
    }

    /// A state status.json records, taken at its word (whether a "running" worker is alive
    /// and whether "done" has its DONE are `row`'s to judge).
    fn of(state: store::RunState) -> DisplayState {
        match state {
            store::RunState::Running => DisplayState::Running,
            store::RunState::Done => DisplayState::Done,
            store::RunState::Failed => DisplayState::Failed,
            store::RunState::Diverged => DisplayState::Diverged,
            store::RunState::Stopped => DisplayState::Stopped,
        }
    }
}

display_as_word!(DisplayState, as_str);

/// The states of the sweep's own runs, in the order of the summary line.
pub const STATES: [DisplayState; 7] = [
    DisplayState::Done,
    DisplayState::Running,
    DisplayState::Stale,
    DisplayState::Stopped,
    DisplayState::Failed,
    DisplayState::Diverged,
    DisplayState::Pending,
];

#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub id: String,
    pub width: usize,
    pub depth: usize,
    pub lr: f64,
    pub tokens: u64,
    /// One of `STATES`, or `Orphan` for a folder no longer in the sweep file.
    pub state: DisplayState,
    pub step: u64,
    pub steps: u64,
    pub host: String,
    /// Seconds since the last status.json write, if there is one.
    pub heartbeat_age_s: Option<u64>,
    pub final_loss: Option<f64>,
    pub error: Option<String>,
}

/// The state of one run folder. "running" is believed only while the worker looks alive: on
/// this host its pid must exist, elsewhere its heartbeat must be recent.
fn row(rd: &RunDir, cfg: &RunConfig, now: u64, host: &str) -> Row {
    let st = rd.read_status();
    let summary = if rd.is_done() { rd.read_summary() } else { None };
    let age = st.as_ref().map(|s| now.saturating_sub(s.heartbeat));
    let state = if rd.is_done() {
        DisplayState::Done
    } else {
        match &st {
            None => DisplayState::Pending,
            Some(s) if s.state == store::RunState::Running => {
                let alive = if s.host == host { worker_alive(s.pid, &rd.id) } else { age < Some(STALE_AFTER_S) };
                if alive {
                    DisplayState::Running
                } else {
                    DisplayState::Stale
                }
            }
            // "done" is written just before DONE; without DONE the run did not finish.
            Some(s) if s.state == store::RunState::Done => DisplayState::Stale,
            Some(s) => DisplayState::of(s.state),
        }
    };
    Row {
        id: rd.id.clone(),
        width: cfg.width,
        depth: cfg.depth,
        lr: cfg.lr,
        tokens: cfg.tokens,
        step: if rd.is_done() { cfg.steps } else { st.as_ref().map_or(0, |s| s.step) },
        steps: cfg.steps,
        host: st.as_ref().map_or_else(String::new, |s| s.host.clone()),
        heartbeat_age_s: age,
        final_loss: summary.map(|s| s.final_loss),
        error: st.and_then(|s| s.error),
        state,
    }
}

/// Whether `pid` on this host is still a worker of this run (guards against pid reuse).
fn worker_alive(pid: u32, run_id: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmd| String::from_utf8_lossy(&cmd).contains(run_id))
}

/// Every run folder of the sweep folder `dir`, in grid order (width, depth, lr, tokens).
pub fn rows(dir: &Path) -> Result<Vec<Row>> {
    let sd = SweepDir::at(dir);
    if !sd.sweep_toml().exists() && !sd.runs_dir().is_dir() {
        return Err(UserError(format!(
            "{}: not a sweep results folder (no sweep.toml and no runs/; it is created by `windtunnel run SWEEP`)",
            dir.display()
        ))
        .into());
    }
    // Folders of runs that an edited sweep file no longer has are listed apart.
    let current: Option<BTreeSet<String>> =
        super::sweep::load_sweep(&sd.sweep_toml()).ok().map(|s| s.runs.iter().map(|r| r.run_id()).collect());
    let (now, host) = (store::now_unix(), store::hostname());
    let mut out = Vec::new();
    for rd in sd.list_runs()? {
        // config.json is written before anything else; a folder without one is not a run yet.
        let Ok(cfg) = store::read_json::<RunConfig>(&rd.config_json()) else { continue };
        let mut r = row(&rd, &cfg, now, &host);
        if current.as_ref().is_some_and(|c| !c.contains(&rd.id)) {
            r.state = DisplayState::Orphan;
        }
        out.push(r);
    }
    out.sort_by(|a, b| {
        (a.width, a.depth)
            .cmp(&(b.width, b.depth))
            .then(a.lr.total_cmp(&b.lr))
            .then((a.tokens, &a.id).cmp(&(b.tokens, &b.id)))
    });
    Ok(out)
}

/// How many runs are in `state`.
pub fn count(rows: &[Row], state: DisplayState) -> usize {
    rows.iter().filter(|r| r.state == state).count()
}

/// The summary line and the per-run table.
pub fn render(dir: &Path, rows: &[Row]) -> String {
    let counts: Vec<String> = STATES.iter().map(|&s| format!("{s} {}", count(rows, s))).collect();
    let orphans = count(rows, DisplayState::Orphan);
    let mut s = format!(
        "{}: {} runs: {}{}\n\n",
        dir.display(),
        rows.len() - orphans,
        counts.join(", "),
        if orphans > 0 {
            format!(" (+{orphans} orphan folder(s) from an earlier version of the sweep)")
        } else {
            String::new()
        }
    );
    s += "| run id | width | depth | lr | state | step/steps | heartbeat | host | loss / error |\n";
    s += "|---|---|---|---|---|---|---|---|---|\n";
    for r in rows {
        let note = match (&r.error, r.final_loss) {
            (Some(e), _) => e.replace('\n', " ").replace('|', "/"),
            (None, Some(l)) => format!("{l:.4}"),
            _ => String::new(),
        };
        s += &format!(
            "| {} | {} | {} | {:.3e} | {} | {}/{} | {} | {} | {} |\n",
            r.id,
            r.width,
            r.depth,
            r.lr,
            r.state,
            r.step,
            r.steps,
            r.heartbeat_age_s.map_or("-".into(), |a| format!("{} ago", crate::runner::plan::hms(a as f64))),
            if r.host.is_empty() { "-" } else { r.host.as_str() },
            note
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Status;

    #[test]
    fn states_come_from_the_files_alone() {
        let root = std::env::temp_dir().join(format!("wt-status-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        assert!(rows(&root).unwrap_err().downcast_ref::<UserError>().is_some());
        let tiny = Path::new(env!("CARGO_MANIFEST_DIR")).join("sweeps/tiny.toml");
        let sweep = crate::spec::load(&tiny).unwrap();
        let sd = SweepDir::at(&root);
        std::fs::create_dir_all(&root).unwrap();
        std::fs::copy(&tiny, sd.sweep_toml()).unwrap();
        let now = store::now_unix();
        let st = |state: store::RunState, host: &str, pid: u32, age: u64, err: Option<&str>| Status {
            state,
            attempt: 1,
            host: host.into(),
            pid,
            heartbeat: now - age,
            step: 7,
            error: err.map(String::from),
        };
        let me = store::hostname();
        use DisplayState as D;
        let cases: Vec<(Option<Status>, bool, DisplayState)> = vec![
            (None, false, D::Pending),
            (Some(st(store::RunState::Done, &me, 1, 9, None)), true, D::Done),
            // our own pid is alive but is not a worker of that run: its worker is gone
            (Some(st(store::RunState::Running, &me, std::process::id(), 1, None)), false, D::Stale),
            (Some(st(store::RunState::Running, "elsewhere", 1, 30, None)), false, D::Running),
            (Some(st(store::RunState::Running, "elsewhere", 1, STALE_AFTER_S + 5, None)), false, D::Stale),
            (Some(st(store::RunState::Diverged, &me, 1, 3, Some("loss became NaN"))), false, D::Diverged),
            (Some(st(store::RunState::Stopped, &me, 1, 3, None)), false, D::Stopped),
        ];
        let mut want = Vec::new();
        for ((status, done, state), run) in cases.iter().zip(&sweep.runs) {
            let rd = sd.run(&run.run_id());
            store::write_json_atomic(&rd.config_json(), run).unwrap();
            if let Some(s) = status {
                rd.write_status(s).unwrap();
            }
            if *done {
                let sum = store::Summary::bare(2.5, run.steps, run.tokens, 1.0);
                rd.mark_done(&sum).unwrap();
            }
            want.push((rd.id.clone(), *state));
        }
        let mut other = sweep.runs[0].clone();
        other.lr = 0.5;
        store::write_json_atomic(&sd.run(&other.run_id()).config_json(), &other).unwrap();
        want.push((other.run_id(), D::Orphan));
        let rows = rows(&root).unwrap();
        for (id, state) in &want {
            let r = rows.iter().find(|r| &r.id == id).unwrap();
            assert_eq!(&r.state, state, "{r:?}");
        }
        let text = render(&root, &rows);
        assert!(text.contains("done 1, running 1, stale 2, stopped 1, failed 0, diverged 1, pending 1"), "{text}");
        assert!(text.contains("loss became NaN") && text.contains("2.5000") && text.contains("orphan"), "{text}");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
