//! `windtunnel status DIR`: where a sweep stands, from its files alone. It reads each run
//! folder's config.json, status.json and DONE (never the metrics, never a lock), so it is
//! safe to run at any time, from any node, while workers write. It must not write anything.

use crate::spec::config::RunConfig;
use crate::store::{self, RunDir, SweepDir};
use crate::UserError;
use anyhow::Result;
use std::collections::{BTreeMap, BTreeSet};
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
    /// A DONE run whose record does not match DONE, or a folder that is not the run it is
    /// named for (`store::Problem`): `error` says what.
    Damaged,
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
            DisplayState::Damaged => "damaged",
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
pub const STATES: [DisplayState; 8] = [
    DisplayState::Done,
    DisplayState::Running,
    DisplayState::Stale,
    DisplayState::Stopped,
    DisplayState::Failed,
    DisplayState::Diverged,
    DisplayState::Pending,
    DisplayState::Damaged,
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
    // DONE is believed only with the record it describes, as `collect` believes it.
    let damaged = match rd.check_done(cfg.steps) {
        store::DoneCheck::Damaged(why) => Some(why),
        _ => None,
    };
    let state = if damaged.is_some() {
        DisplayState::Damaged
    } else if rd.is_done() {
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
        error: damaged.map(|why| format!("DONE but damaged: {why}")).or(st.and_then(|s| s.error)),
        state,
    }
}

/// The row of a folder that is not the run it is named for: the sweep's config of that run
/// where there is one (the folder's own cannot be believed), and what is wrong.
fn problem_row(id: &str, cfg: Option<&RunConfig>, problem: &store::Problem) -> Row {
    Row {
        id: id.to_string(),
        width: cfg.map_or(0, |c| c.width),
        depth: cfg.map_or(0, |c| c.depth),
        lr: cfg.map_or(0.0, |c| c.lr),
        tokens: cfg.map_or(0, |c| c.tokens),
        state: DisplayState::Damaged,
        step: 0,
        steps: cfg.map_or(0, |c| c.steps),
        host: String::new(),
        heartbeat_age_s: None,
        final_loss: None,
        error: Some(format!("runs/{id}: {}", problem.describe())),
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
    // Every run of the sweep file gets a row (pending when it has no folder yet), and so does
    // everything else in runs/: folders of runs an edited sweep file no longer has (listed
    // apart), and anything that is not the run it is named for (damaged, with the problem),
    // so the counts add up to the sweep's runs and nothing disappears from them.
    let current: Option<BTreeMap<String, RunConfig>> =
        super::sweep::load_sweep(&sd.sweep_toml()).ok().map(|s| s.runs.into_iter().map(|r| (r.run_id(), r)).collect());
    let mut ids: BTreeSet<String> = sd.entries()?.into_iter().collect();
    ids.extend(current.iter().flat_map(|c| c.keys().cloned()));
    let (now, host) = (store::now_unix(), store::hostname());
    let mut out = Vec::new();
    for id in ids {
        let rd = sd.run(&id);
        let planned = current.as_ref().and_then(|c| c.get(&id));
        let mut r = match planned.map_or_else(|| rd.place(), |c| rd.place_of(c)) {
            store::Place::Own(cfg) => row(&rd, &cfg, now, &host),
            store::Place::Absent => match planned {
                Some(cfg) => row(&rd, cfg, now, &host),
                None => continue,
            },
            store::Place::Problem(p) => problem_row(&id, planned, &p),
        };
        if current.as_ref().is_some_and(|c| !c.contains_key(&id)) {
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
    let mut counts: Vec<String> = STATES.iter().map(|&s| format!("{s} {}", count(rows, s))).collect();
    // The damaged ones are named on the summary line itself: a count alone would hide them.
    let damaged: Vec<String> = rows
        .iter()
        .filter(|r| r.state == DisplayState::Damaged)
        .map(|r| r.error.clone().unwrap_or_else(|| format!("runs/{}", r.id)))
        .collect();
    if !damaged.is_empty() {
        let shown: Vec<&str> = damaged.iter().take(3).map(String::as_str).collect();
        let more = if damaged.len() > 3 { format!("; {} more in the table", damaged.len() - 3) } else { String::new() };
        if let Some(last) = counts.last_mut() {
            *last += &format!(" ({}{more})", shown.join("; "));
        }
    }
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
                store::fake_done(&rd, run, 2.5);
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
        assert!(
            text.contains("done 1, running 1, stale 2, stopped 1, failed 0, diverged 1, pending 3, damaged 0"),
            "{text}"
        );
        assert!(text.contains("loss became NaN") && text.contains("2.5000") && text.contains("orphan"), "{text}");
        std::fs::remove_dir_all(&root).unwrap();
    }

    /// The tiny sweep's 9 runs: 5 finished, and in place of the other 4 a symlink to a
    /// finished run, a dangling symlink, a plain file and an empty folder. `status` counts all
    /// 9 and names each problem; `collect` refuses to fit without them (fit.json is not
    /// replaced), and with --allow-damaged fits the 5 and names the 4 in fit.json; `run`
    /// refuses to train over the folders that hold something that is not their run.
    #[test]
    fn no_run_folder_is_lost_silently() {
        let root = std::env::temp_dir().join(format!("wt-status-lost-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let tiny = Path::new(env!("CARGO_MANIFEST_DIR")).join("sweeps/tiny.toml");
        let mut sweep = crate::spec::load(&tiny).unwrap();
        sweep.fit.bootstrap = 0;
        let sd = SweepDir::new(&root, &sweep.name);
        std::fs::create_dir_all(sd.runs_dir()).unwrap();
        std::fs::copy(&tiny, sd.sweep_toml()).unwrap();
        let ids: Vec<String> = sweep.runs.iter().map(|r| r.run_id()).collect();
        for r in &sweep.runs[..5] {
            // A loss that falls with N and D, so the five fit.
            let (n, d) = (crate::flops::params(r.width, r.depth, r.vocab) as f64, r.tokens as f64);
            store::fake_done(&sd.run(&r.run_id()), r, 1.7 + 400.0 / n.powf(0.34) + 410.0 / d.powf(0.28));
        }
        let runs = sd.runs_dir();
        std::os::unix::fs::symlink(runs.join(&ids[0]), runs.join(&ids[5])).unwrap();
        std::os::unix::fs::symlink(runs.join("gone"), runs.join(&ids[6])).unwrap();
        std::fs::write(runs.join(&ids[7]), "not a folder").unwrap();
        std::fs::create_dir_all(runs.join(&ids[8])).unwrap();

        let rows = rows(&sd.root).unwrap();
        assert_eq!(rows.len(), 9, "{rows:?}");
        let text = render(&sd.root, &rows);
        assert!(text.contains("9 runs: done 5,") && text.contains("pending 0, damaged 4 ("), "{text}");
        for (id, what) in [(5, "a symlink to"), (6, "dangling symlink"), (7, "a file"), (8, "empty folder")] {
            let r = rows.iter().find(|r| r.id == ids[id]).unwrap();
            assert_eq!(r.state, DisplayState::Damaged, "{r:?}");
            assert!(r.error.as_deref().unwrap_or("").contains(what), "{r:?}");
        }
        // The symlink is not a second copy of the run it points to.
        assert_eq!(rows.iter().filter(|r| r.final_loss.is_some()).count(), 5);

        let f = crate::runner::finished_runs(&sweep, &sd);
        assert_eq!((f.done.len(), f.problems.len(), f.unfinished(9)), (5, 4, 0));
        let e = crate::app::fit::collect_fit_report(&sweep, &sd).unwrap_err();
        let msg = format!("{e:#}");
        assert!(e.downcast_ref::<UserError>().is_some() && msg.contains("4 of 9 run folders"), "{msg}");
        assert!(msg.contains(&ids[5]) && msg.contains("--allow-damaged"), "{msg}");
        assert!(!sd.fit_json().exists(), "fit.json written by a refused collect");
        let e = crate::runner::refuse_problem_folders(&sweep, &sd).unwrap_err();
        let msg = format!("{e:#}");
        // The empty folder holds nothing: `run` writes its config and trains it.
        assert!(msg.contains("3 run folder(s)") && msg.contains(&ids[5]) && !msg.contains(&ids[8]), "{msg}");

        crate::app::fit::collect_fit_report_with(&sweep, &sd, true).unwrap();
        let fit: crate::fit::FitReport = store::read_json(&sd.fit_json()).unwrap();
        let left: Vec<&String> = fit.warnings.iter().filter(|w| w.contains("left out of the fit")).collect();
        assert_eq!(left.len(), 4, "{:?}", fit.warnings);
        assert!(left.iter().all(|w| w.contains("5 of 9 runs fitted")), "{left:?}");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
