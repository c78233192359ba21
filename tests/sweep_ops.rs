//! Operating a sweep overnight, through the real binary: a sweep killed again and
//! again (SIGKILL of everything, SIGKILL of the parent only, SIGUSR1) resumes to results
//! bit-identical to an uninterrupted run; a diverging grid point is recorded, shown and
//! excluded while the sweep goes on; a locked run folder is left to its owner; and, where a
//! Slurm cluster answers, the generated array + merge jobs reproduce a local run exactly.
//! One test file on purpose: each file is a binary that links burn + polars.

use polars::prelude::*;
use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{bin, repo, text, tmp};

/// sweeps/tiny.toml under another name, with `key = value` lines replaced or added per section.
fn sweep_file(dir: &Path, name: &str, edits: &[(&str, &str, &str)]) -> PathBuf {
    let mut t = std::fs::read_to_string(repo().join("sweeps/tiny.toml"))
        .unwrap()
        .replace("name = \"tiny\"", &format!("name = \"{name}\""));
    for (section, key, value) in edits {
        let line = format!("{key} = {value}");
        let existing = t.lines().find(|l| l.trim_start().starts_with(&format!("{key} ="))).map(String::from);
        t = match existing {
            Some(old) => t.replacen(&old, &line, 1),
            None => t.replacen(&format!("[{section}]\n"), &format!("[{section}]\n{line}\n"), 1),
        };
    }
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(&p, t).unwrap();
    p
}

fn run(sweep: &Path, results: &Path, extra: &[&str]) -> Output {
    bin().arg("run").arg(sweep).arg("--results").arg(results).args(extra).output().unwrap()
}

fn status(dir: &Path) -> String {
    let o = bin().arg("status").arg(dir).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    text(&o)
}

/// Every column of a runs.parquet, keyed by (run_id, step): floats as bit patterns, the rest
/// as text, so "equal" means bit-identical.
fn table(path: &Path) -> BTreeMap<(String, i64), BTreeMap<String, String>> {
    let df = windtunnel::store::frame::read_frame(path).unwrap();
    let col_str = |n: &str| -> Vec<String> {
        let c = df.column(n).unwrap();
        match c.dtype() {
            DataType::Float64 => c.f64().unwrap().iter().map(|v| format!("{:016x}", v.unwrap().to_bits())).collect(),
            _ => {
                c.cast(&DataType::String).unwrap().str().unwrap().iter().map(|v| v.unwrap_or("").to_string()).collect()
            }
        }
    };
    let ids = col_str("run_id");
    let steps: Vec<i64> = df.column("step").unwrap().i64().unwrap().iter().map(|v| v.unwrap()).collect();
    let mut out: BTreeMap<(String, i64), BTreeMap<String, String>> = BTreeMap::new();
    for name in df.get_column_names() {
        for (k, v) in col_str(name.as_str()).into_iter().enumerate() {
            out.entry((ids[k].clone(), steps[k])).or_default().insert(name.to_string(), v);
        }
    }
    assert_eq!(out.len(), df.height(), "duplicate (run_id, step) rows in {}", path.display());
    out
}

fn assert_same_results(a: &Path, b: &Path) {
    let (ta, tb) = (table(a), table(b));
    let only = |x: &BTreeMap<_, _>, y: &BTreeMap<_, _>| -> Vec<(String, i64)> {
        x.keys().filter(|k| !y.contains_key(*k)).cloned().collect()
    };
    let (only_a, only_b) = (only(&ta, &tb), only(&tb, &ta));
    assert!(
        only_a.is_empty() && only_b.is_empty(),
        "(run, step) rows only in {}: {only_a:?}; only in {}: {only_b:?}",
        a.display(),
        b.display()
    );
    for (k, ra) in &ta {
        let rb = &tb[k];
        for (col, va) in ra {
            assert_eq!(Some(va), rb.get(col), "run {} step {} column {col} differs", k.0, k.1);
        }
    }
}

/// Pids of live `windtunnel worker` processes whose run folder is under `under`.
fn workers_under(under: &Path) -> Vec<u32> {
    let needle = under.display().to_string();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else { continue };
        let args: Vec<String> = cmd.split(|&b| b == 0).map(|a| String::from_utf8_lossy(a).to_string()).collect();
        if args.get(1).map(String::as_str) == Some("worker") && args.iter().any(|a| a.contains(&needle)) {
            out.push(pid);
        }
    }
    out
}

/// Waits until no worker under `under` runs and every run folder's lock is free (a killed
/// process leaves /proc's process list a moment before it releases its files).
fn wait_no_workers(under: &Path, within: Duration, why: &str) {
    let t = Instant::now();
    while !workers_under(under).is_empty() {
        assert!(t.elapsed() < within, "workers still alive {:?} after {why}", workers_under(under));
        std::thread::sleep(Duration::from_millis(50));
    }
    for sweep in std::fs::read_dir(under).unwrap().flatten() {
        for run in std::fs::read_dir(sweep.path().join("runs")).into_iter().flatten().flatten() {
            let lock = run.path().join("lock");
            while lock.exists() && windtunnel::runner::sys::try_lock(&lock, "test").unwrap().is_err() {
                assert!(t.elapsed() < within, "{} still locked after {why}", lock.display());
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

fn signal(pid: i32, sig: &str) {
    let ok = Command::new("kill").args([sig, "--", &pid.to_string()]).status().unwrap().success();
    assert!(ok, "kill {sig} {pid}");
}

fn spawn_run(sweep: &Path, results: &Path, jobs: &str) -> Child {
    bin()
        .arg("run")
        .arg(sweep)
        .arg("--results")
        .arg(results)
        .args(["--jobs", jobs, "--no-fit"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap()
}

/// Waits for `child` with a deadline; None if it did not exit in time.
fn wait_for(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let t = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        if t.elapsed() > within {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The sweep for the resume test: tiny's three widths at 4, 8 and 12 tokens per parameter
/// (about 12,800 steps in all: shorter sweeps finished between kills on a quiet machine)
/// with an eval (= a checkpoint) every 20 steps, so kills land mid-run and resumes start from
/// real checkpoints.
fn resume_sweep(dir: &Path) -> PathBuf {
    sweep_file(
        dir,
        "resume",
        &[("train", "eval_every", "20"), ("grid", "tokens_per_param", "[4, 8, 12]"), ("fit", "bootstrap", "0")],
    )
}

#[test]
fn sigkill_and_signals_at_random_points_resume_bit_identically() {
    let dir = tmp("resume");
    let sweep = resume_sweep(&dir);
    let (clean, killed) = (dir.join("clean"), dir.join("killed"));
    let o = run(&sweep, &clean, &["--jobs", "1"]);
    assert!(o.status.success(), "{}", text(&o));
    let sd = killed.join("resume");

    // SIGUSR1 to the parent alone: it is passed to the workers, which checkpoint; `run` exits 4.
    let mut c = spawn_run(&sweep, &killed, "1");
    std::thread::sleep(Duration::from_millis(1500));
    signal(c.id() as i32, "-USR1");
    let st = wait_for(&mut c, Duration::from_secs(20)).expect("run did not stop on SIGUSR1");
    assert_eq!(st.code(), Some(4), "run should exit 4 after SIGUSR1");
    wait_no_workers(&killed, Duration::from_secs(5), "SIGUSR1");
    let s = status(&sd);
    assert!(s.contains("| stopped |"), "no stopped run after SIGUSR1:\n{s}");

    // SIGKILL at seeded pseudo-random points, alternately of the whole process group and of
    // the parent alone (whose workers must then stop by themselves: parent-death signal).
    let mut rng: u64 = 0x9e3779b97f4a7c15;
    let (mut kills, mut orphan_stops) = (0, 0);
    for round in 0.. {
        assert!(round < 40, "sweep did not complete");
        if status(&sd).contains("done 9,") {
            break;
        }
        let mut c = spawn_run(&sweep, &killed, "1");
        if kills >= 6 {
            let st = wait_for(&mut c, Duration::from_secs(300)).expect("final run hung");
            assert!(st.success(), "final run failed: {st:?}");
            continue;
        }
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let delay = Duration::from_millis(300 + rng % 1500);
        if let Some(st) = wait_for(&mut c, delay) {
            assert!(st.success(), "run failed: {st:?}");
            continue; // finished before the kill
        }
        let whole_group = kills % 2 == 0;
        let stopped_before = status(&sd).matches("| stopped |").count();
        signal(if whole_group { -(c.id() as i32) } else { c.id() as i32 }, "-KILL");
        c.wait().unwrap();
        kills += 1;
        wait_no_workers(&killed, Duration::from_secs(10), "SIGKILL");
        let s = status(&sd);
        assert!(!s.contains("| running |"), "status shows a running run with every process dead:\n{s}");
        if !whole_group {
            orphan_stops += s.matches("| stopped |").count().saturating_sub(stopped_before);
        }
    }
    assert!(kills >= 5, "only {kills} kills landed mid-sweep: make the resume sweep longer");
    assert!(orphan_stops >= 1, "no worker stopped cleanly after its parent was killed");
    let o = run(&sweep, &killed, &["--jobs", "1"]);
    assert!(o.status.success() && text(&o).contains("trained 0 run(s)"), "{}", text(&o));
    assert_same_results(&clean.join("resume/runs.parquet"), &sd.join("runs.parquet"));
    let s = status(&sd);
    assert!(s.contains("done 9,") && s.contains("pending 0"), "{s}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_diverging_run_is_recorded_and_excluded_while_the_sweep_goes_on() {
    let dir = tmp("diverge");
    // lr 1 (the largest the spec allows) on the smallest model only, without weight decay:
    // AdamW's steps of ~1 per weight keep the train loss at 8-17 nats, far above the 5.5 of
    // the untrained model, which the trainer calls diverged.
    let sweep = sweep_file(
        &dir,
        "diverge",
        &[
            ("train", "weight_decay", "0.0"),
            ("grid", "lr", "[1e-2, 1.0]"),
            ("grid", "tokens_per_param", "[1, 2]"),
            (
                "grid",
                "exclude",
                "[{ lr = 1.0, width = 32 }, { lr = 1.0, width = 48 }, { lr = 1.0, tokens_per_param = 1 }]",
            ),
        ],
    );
    let o = run(&sweep, &dir, &["--jobs", "2"]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("DIVERGED") && t.contains("1 diverged"), "{t}");
    let sd = dir.join("diverge");
    let mut diverged = Vec::new();
    for e in std::fs::read_dir(sd.join("runs")).unwrap().flatten() {
        let st: serde_json::Value = match std::fs::read_to_string(e.path().join("status.json")) {
            Ok(s) => serde_json::from_str(&s).unwrap(),
            Err(_) => continue,
        };
        if st["state"] == "diverged" {
            assert!(!e.path().join("DONE").exists());
            assert!(st["step"].as_u64().is_some(), "{st}");
            assert!(st["error"].as_str().is_some_and(|r| r.contains("loss")), "no reason: {st}");
            diverged.push(e.file_name().to_string_lossy().to_string());
        }
    }
    assert_eq!(diverged.len(), 1, "expected exactly the lr=10 run to diverge: {diverged:?}");
    let s = status(&sd);
    assert!(s.contains("diverged 1") && s.contains("done 6,") && s.contains(&diverged[0]), "{s}");
    assert!(sd.join("fit.json").exists());
    let md = std::fs::read_to_string(sd.join("report.md")).unwrap();
    assert!(md.contains(&diverged[0]) && md.contains("diverged"), "report does not mention the diverged run:\n{md}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_locked_run_folder_is_left_to_the_worker_that_holds_it() {
    let dir = tmp("lock");
    let sweep = sweep_file(
        &dir,
        "lock",
        &[("grid", "width", "[16, 32]"), ("grid", "depth", "[1, 1]"), ("grid", "tokens_per_param", "[1]")],
    );
    let sw = windtunnel::spec::load(&sweep).unwrap();
    let runs_dir = dir.join("lock/runs");
    let held = runs_dir.join(sw.runs[0].run_id());
    std::fs::create_dir_all(&held).unwrap();
    let lock = windtunnel::runner::sys::try_lock(&held.join("lock"), "the test").unwrap().unwrap();

    let o = run(&sweep, &dir, &["--jobs", "2", "--no-fit"]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("running elsewhere") && t.contains("1 running elsewhere"), "{t}");
    assert!(!held.join("DONE").exists() && runs_dir.join(sw.runs[1].run_id()).join("DONE").exists());
    let o = bin().arg("worker").arg(&held).output().unwrap();
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    assert!(text(&o).contains("the test"), "{}", text(&o));

    drop(lock);
    let o = run(&sweep, &dir, &["--jobs", "2", "--no-fit"]);
    assert!(o.status.success() && text(&o).contains("trained 1 run(s)"), "{}", text(&o));
    assert!(held.join("DONE").exists());
    let o = bin().arg("status").arg(dir.join("nope")).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "status of a non-sweep folder: {}", text(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

fn slurm_answers() -> bool {
    let ok = |c: &str, a: &[&str]| Command::new(c).args(a).output().is_ok_and(|o| o.status.success());
    ok("sbatch", &["--version"]) && ok("timeout", &["20", "sinfo", "-h"])
}

// Needs a running Slurm, so it is not part of a plain `cargo test` (it shows as ignored there,
// never as a pass). `.ci/run` starts a single-node Slurm and then runs it with `--ignored`.
#[test]
#[ignore = "needs a running Slurm (sbatch, sinfo): .ci/run starts one and runs this with --ignored"]
fn slurm_array_and_merge_reproduce_a_local_run() {
    assert!(slurm_answers(), "no sbatch on PATH or sinfo does not answer: start a Slurm first (../shared/tools/slurm/start-slurm.sh as root)");
    let dir = tmp("slurm");
    let sweep = sweep_file(&dir, "cluster", &[("grid", "tokens_per_param", "[1, 2]")]);
    let (local, cluster) = (dir.join("local"), dir.join("cluster"));
    let o = bin()
        .arg("slurm")
        .arg(&sweep)
        .args(["--results", cluster.to_str().unwrap(), "--shards", "2", "--time", "00:10:00", "--submit"])
        .output()
        .unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let id = |what: &str| -> String {
        let line = t.lines().find(|l| l.starts_with(what)).unwrap_or_else(|| panic!("no `{what}` in {t}"));
        line.rsplit(' ').next().unwrap().to_string()
    };
    let (array, merge) = (id("array job:"), id("merge job:"));
    // The local reference trains while the cluster does, single-threaded workers like the
    // tasks' (--cpus 1).
    let o = run(&sweep, &local, &["--jobs", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    let start = Instant::now();
    loop {
        let q = Command::new("squeue").args(["-h", "-j", &format!("{array},{merge}")]).output().unwrap();
        if String::from_utf8_lossy(&q.stdout).trim().is_empty() {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(300), "Slurm jobs still queued after 5 min");
        std::thread::sleep(Duration::from_millis(500));
    }
    let sd = cluster.join("cluster");
    let logs: String = std::fs::read_dir(sd.join("slurm"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".out"))
        .map(|e| format!("== {}\n{}", e.path().display(), std::fs::read_to_string(e.path()).unwrap_or_default()))
        .collect();
    assert!(sd.join("fit.json").exists() && sd.join("report.md").exists(), "merge job did not fit:\n{logs}");
    assert!(logs.contains("shard 0/2") && logs.contains("shard 1/2"), "{logs}");
    assert_same_results(&local.join("cluster/runs.parquet"), &sd.join("runs.parquet"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn out_of_memory_falls_back_to_gradient_accumulation() {
    // Every run "runs out of memory" above one sequence per pass (a test hook standing in for a
    // GPU allocation failure): the pool halves the micro-batch (4 -> 2 -> 1) and the runs finish
    // with the same batch size, their DONE recording the micro-batch they ran with.
    let dir = tmp("oom");
    let sweep = sweep_file(&dir, "oom", &[("grid", "width", "[16, 32]"), ("grid", "depth", "[1, 1]")]);
    let o = bin()
        .arg("run")
        .arg(&sweep)
        .arg("--results")
        .arg(&dir)
        .args(["--no-fit", "--jobs", "2"])
        .env("WINDTUNNEL_FAKE_OOM_ABOVE", "1")
        .output()
        .unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("ran out of memory at micro-batch 4; retrying from its checkpoint with micro-batch 2"), "{t}");
    assert!(t.contains("ran out of memory at micro-batch 2; retrying from its checkpoint with micro-batch 1"), "{t}");
    let runs: Vec<PathBuf> =
        std::fs::read_dir(dir.join("oom/runs")).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    assert_eq!(runs.len(), 6);
    for r in &runs {
        let done: serde_json::Value = serde_json::from_slice(&std::fs::read(r.join("DONE")).unwrap()).unwrap();
        assert_eq!(done["micro_batch"], 1, "{}", r.display());
    }
    // Even one sequence at a time is too much: a clear failure, not a loop.
    let dir2 = tmp("oom2");
    let o = bin()
        .arg("run")
        .arg(&sweep)
        .arg("--results")
        .arg(&dir2)
        .args(["--no-fit", "--jobs", "2"])
        .env("WINDTUNNEL_FAKE_OOM_ABOVE", "0")
        .output()
        .unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("out of memory even one sequence at a time"), "{t}");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&dir2);
}

/// Final loss, tokens and branch point of every DONE run of a sweep folder, by tokens.
fn finals_by_tokens(sweep_dir: &Path) -> BTreeMap<u64, (f64, u64, Option<u64>)> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(sweep_dir.join("runs")).unwrap() {
        let p = e.unwrap().path();
        let cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(p.join("config.json")).unwrap()).unwrap();
        let done: serde_json::Value = serde_json::from_slice(&std::fs::read(p.join("DONE")).unwrap()).unwrap();
        let from = cfg["branch"]["from"].as_u64();
        out.insert(
            cfg["tokens"].as_u64().unwrap(),
            (done["final_loss"].as_f64().unwrap(), cfg["steps"].as_u64().unwrap(), from),
        );
    }
    out
}

#[test]
fn wsd_decay_branches_match_independent_runs_at_a_fraction_of_the_cost() {
    let dir = tmp("branches");
    let common = [
        ("train", "schedule", "{ kind = \"wsd\", warmup = 0.0, decay = 0.1 }"),
        ("grid", "width", "[32]"),
        ("grid", "depth", "[1]"),
        ("grid", "tokens_per_param", "[2, 4, 8]"),
    ];
    let mut with = common.to_vec();
    with.push(("train", "wsd_branches", "true"));
    let branched = sweep_file(&dir, "branched", &with);
    let independent = sweep_file(&dir, "independent", &common);
    let plan = bin().arg("plan").arg(&branched).arg("--results").arg(&dir).output().unwrap();
    assert!(text(&plan).contains("WSD decay branches: 2 runs"), "{}", text(&plan));
    for s in [&branched, &independent] {
        let o = run(s, &dir, &["--no-fit", "--jobs", "2"]);
        assert!(o.status.success(), "{}", text(&o));
        if s == &branched {
            // Both shorter runs started from the trunk's snapshots, not from scratch.
            assert_eq!(text(&o).matches("branches off its trunk at step").count(), 2, "{}", text(&o));
        }
    }
    let b = finals_by_tokens(&dir.join("branched"));
    let i = finals_by_tokens(&dir.join("independent"));
    assert_eq!(b.len(), 3);
    assert_eq!(b.keys().collect::<Vec<_>>(), i.keys().collect::<Vec<_>>());
    for (tokens, (loss, _, _)) in &b {
        let want = i[tokens].0;
        // Same data, init and schedule: a branch is the independent run, computed in two parts.
        assert!(((loss - want) / want).abs() < 1e-6, "D = {tokens}: branch {loss} vs independent {want}");
    }
    // Each branch trains only its own decay: the family costs at most 1.3x its longest run.
    let max_steps = b.values().map(|v| v.1).max().unwrap();
    let trained: u64 = b.values().map(|(_, steps, from)| steps - from.unwrap_or(0)).sum();
    assert_eq!(b.values().filter(|v| v.2.is_some()).count(), 2);
    assert!(trained as f64 <= 1.3 * max_steps as f64, "{trained} steps for a longest run of {max_steps}");
    // Each branch's curve starts with the trunk's records, so it reads as a whole run.
    for e in std::fs::read_dir(dir.join("branched/runs")).unwrap() {
        let evals = std::fs::read_to_string(e.unwrap().path().join("evals.jsonl")).unwrap();
        assert!(evals.lines().count() >= 3, "{evals}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Ids of the run folders of a sweep folder, sorted.
fn run_ids(sweep_dir: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(sweep_dir.join("runs"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    ids.sort();
    ids
}

/// The distinct run ids of a runs.parquet.
fn parquet_runs(path: &Path) -> std::collections::BTreeSet<String> {
    table(path).keys().map(|(id, _)| id.clone()).collect()
}

#[test]
fn a_damaged_done_run_is_named_excluded_from_the_fit_and_trained_again() {
    // DONE runs whose evals.jsonl was truncated or emptied, or whose DONE was
    // edited, are reported by name, left out of the fit, and trained again (to the same bytes)
    // by the next `run`. Item 7's report half: a report that cannot be written whole is not
    // written at all.
    let dir = tmp("damaged");
    let sweep = sweep_file(&dir, "damaged", &[("fit", "bootstrap", "0")]);
    let o = run(&sweep, &dir, &["--jobs", "2", "--no-fit"]);
    assert!(o.status.success(), "{}", text(&o));
    let sd = dir.join("damaged");
    let ids = run_ids(&sd);
    assert_eq!(ids.len(), 9);
    let (first4, emptied, edited) = (&ids[0], &ids[1], &ids[2]);
    let evals = |id: &str| sd.join("runs").join(id).join("evals.jsonl");
    let before: Vec<Vec<u8>> = [first4, emptied, edited].iter().map(|id| std::fs::read(evals(id)).unwrap()).collect();
    let text4: String =
        String::from_utf8(before[0].clone()).unwrap().lines().take(4).map(|l| format!("{l}\n")).collect();
    std::fs::write(evals(first4), text4).unwrap();
    std::fs::write(evals(emptied), "").unwrap();
    let done = sd.join("runs").join(edited).join("DONE");
    let mut d: serde_json::Value = serde_json::from_slice(&std::fs::read(&done).unwrap()).unwrap();
    d["final_loss"] = serde_json::json!(1.0);
    std::fs::write(&done, serde_json::to_vec_pretty(&d).unwrap()).unwrap();

    let o = bin().arg("collect").arg(&sweep).arg("--results").arg(&dir).output().unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("6 of 9 runs done") && t.contains("3 damaged"), "{t}");
    for id in [first4, emptied, edited] {
        assert!(t.contains(&format!("run {id} is DONE but damaged")), "{id} not named:\n{t}");
    }
    let o = bin().arg("plan").arg(&sweep).arg("--results").arg(&dir).output().unwrap();
    assert!(text(&o).contains("3 of 9 runs pending"), "plan counts damaged runs as done:\n{}", text(&o));
    let fitted = parquet_runs(&sd.join("runs.parquet"));
    assert_eq!(fitted.len(), 6, "{fitted:?}");
    assert!(![first4, emptied, edited].iter().any(|id| fitted.contains(*id)), "a damaged run was fitted");
    let fit = std::fs::read_to_string(sd.join("fit.json")).unwrap();
    let md = std::fs::read_to_string(sd.join("report.md")).unwrap();
    for id in [first4, emptied, edited] {
        assert!(fit.contains(id.as_str()) && md.contains(id.as_str()), "{id} not in fit.json's warnings / report");
    }

    let o = run(&sweep, &dir, &["--jobs", "2", "--no-fit"]);
    let t = text(&o);
    assert!(o.status.success() && t.contains("trained 3 run(s), 6 already done"), "{t}");
    for (k, id) in [first4, emptied, edited].iter().enumerate() {
        assert_eq!(std::fs::read(evals(id)).unwrap(), before[k], "run {id} retrained to other numbers");
        assert!(sd.join("runs").join(id).join("DONE.damaged").exists());
        let log = std::fs::read_to_string(sd.join("runs").join(id).join("worker.log")).unwrap();
        assert!(log.contains("DONE but damaged"), "{log}");
    }
    let o = bin().arg("collect").arg(&sweep).arg("--results").arg(&dir).output().unwrap();
    assert!(o.status.success() && text(&o).contains("9 of 9 runs done, 0 diverged, 0 damaged"), "{}", text(&o));

    // A full disk while writing the report: report.md and report.html stay the old pair.
    let (md_path, html_path) = (sd.join("report.md"), sd.join("report.html"));
    let (md0, html0) = (std::fs::read(&md_path).unwrap(), std::fs::read(&html_path).unwrap());
    let o = bin()
        .arg("report")
        .arg(&sd)
        .args(["--mfu", "0.25"])
        .env("WINDTUNNEL_FAKE_ENOSPC", "report.html")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("No space left on device"), "{}", text(&o));
    assert_eq!(std::fs::read(&md_path).unwrap(), md0, "report.md replaced while report.html could not be");
    assert_eq!(std::fs::read(&html_path).unwrap(), html0);
    let stray: Vec<String> = std::fs::read_dir(&sd)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.contains(".tmp."))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
    let o = bin().arg("report").arg(&sd).args(["--mfu", "0.25"]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_ne!(std::fs::read(&md_path).unwrap(), md0, "--mfu 0.25 should change the report");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_full_disk_fails_the_runs_with_its_error_and_exit_1() {
    // A full disk without a real full disk: the hook makes writes of the named files fail
    // with ENOSPC, and worker.log is /dev/full (every write fails), as on a full results disk.
    let dir = tmp("enospc");
    let sweep = sweep_file(
        &dir,
        "enospc",
        &[("grid", "width", "[16, 32]"), ("grid", "depth", "[1, 1]"), ("grid", "tokens_per_param", "[1]")],
    );
    for (full, recorded) in
        [("worker.log,metrics.jsonl,evals.jsonl,checkpoint", true), ("worker.log,status.json,metrics.jsonl", false)]
    {
        let results = dir.join(if recorded { "a" } else { "b" });
        let o = bin()
            .arg("run")
            .arg(&sweep)
            .arg("--results")
            .arg(&results)
            .args(["--jobs", "2"])
            .env("WINDTUNNEL_FAKE_ENOSPC", full)
            .output()
            .unwrap();
        let t = text(&o);
        assert_eq!(o.status.code(), Some(1), "a full disk is a failure, not bad input:\n{t}");
        assert!(t.contains("the results disk is full") && t.contains("No space left on device"), "{t}");
        assert!(t.contains("2 failed") && !t.contains("retrying"), "{t}");
        let s = status(&results.join("enospc"));
        if recorded {
            assert!(s.contains("failed 2") && s.contains("No space left on device"), "{s}");
        } else {
            // Not even status.json can be written: the pool says so instead.
            assert!(t.contains("could not record it in"), "{t}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn concurrent_runs_each_report_their_own_runs_and_a_signal_stops_the_fit() {
    // Two `run`s of one sweep at once train each run once, and each counts
    // only the runs its own workers trained. Item 8: a signal during `run`'s fit stops it
    // promptly with exit 4.
    let dir = tmp("concurrent");
    let sweep = sweep_file(&dir, "concurrent", &[("fit", "bootstrap", "4000")]);
    let start = |extra: &[&str]| {
        bin()
            .arg("run")
            .arg(&sweep)
            .arg("--results")
            .arg(&dir)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (start(&["--jobs", "1", "--no-fit"]), start(&["--jobs", "1", "--no-fit"]));
    let trained = |c: Child| -> usize {
        let o = c.wait_with_output().unwrap();
        let t = text(&o);
        assert!(o.status.success(), "{t}");
        let line = t.lines().find(|l| l.starts_with("trained ")).unwrap_or_else(|| panic!("{t}"));
        line["trained ".len()..].split(' ').next().unwrap().parse().unwrap()
    };
    let (na, nb) = (trained(a), trained(b));
    assert_eq!(na + nb, 9, "the two runs claim {na} + {nb} trained runs of 9");

    // Everything is trained: this `run` goes straight to its (long: 4,000 bootstrap refits) fit.
    let mut c = start(&["--jobs", "1"]);
    let err = c.stderr.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(err));
    let mut seen = String::new();
    for l in lines.by_ref() {
        let l = l.unwrap();
        seen += &l;
        seen.push('\n');
        if l.starts_with("trained 0 run(s)") {
            break;
        }
    }
    assert!(seen.contains("trained 0 run(s)"), "{seen}");
    let t0 = Instant::now();
    signal(c.id() as i32, "-TERM");
    let st = wait_for(&mut c, Duration::from_secs(10)).expect("`run` ignored SIGTERM during its fit");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert_eq!(st.code(), Some(4), "{seen}{}", rest.join("\n"));
    assert!(t0.elapsed() < Duration::from_secs(3), "took {:?} to stop", t0.elapsed());
    assert!(!dir.join("concurrent/fit.json").exists(), "the fit finished before the signal: make it longer");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 38's second probe, the cases that need no training, through the binary: a symlinked
/// run folder is refused by `run` and named by `status` and `collect` (which does not replace
/// fit.json); `design --continue` on a results folder copied under another name refuses
/// instead of writing a command that retrains everything elsewhere; `plan` refuses runs this
/// machine cannot hold, with the estimate and the limit; `predict-curve --steps 1e9` is
/// refused instead of aborting; `fit` reads a Parquet file with unused decimal, date,
/// timestamp, duration, struct and float16 columns, and names a used decimal column.
#[test]
fn folders_sizes_and_files_the_second_probe_broke_are_named_not_trusted() {
    let dir = tmp("probe2");
    let tiny = repo().join("sweeps/tiny.toml");
    let sw = windtunnel::spec::load(&tiny).unwrap();
    let ids: Vec<String> = sw.runs.iter().map(|r| r.run_id()).collect();
    let sd = dir.join("tiny");
    let runs = sd.join("runs");
    std::fs::create_dir_all(runs.join(&ids[0])).unwrap();
    std::fs::write(runs.join(&ids[0]).join("config.json"), serde_json::to_vec(&sw.runs[0]).unwrap()).unwrap();
    std::fs::copy(&tiny, sd.join("sweep.toml")).unwrap();
    std::os::unix::fs::symlink(runs.join(&ids[0]), runs.join(&ids[1])).unwrap();
    let o = run(&tiny, &dir, &["--jobs", "1"]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains(&ids[1]) && t.contains("a symlink to") && t.contains("nothing trained"), "{t}");
    assert!(!runs.join(&ids[0]).join("DONE").exists() && !runs.join(&ids[0]).join("metrics.jsonl").exists());
    let s = status(&sd);
    assert!(s.contains("9 runs: done 0,") && s.contains("damaged 1 (runs/") && s.contains("a symlink to"), "{s}");
    let o = bin().arg("collect").arg(&tiny).arg("--results").arg(&dir).output().unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains("1 unusable folder(s)") && t.contains("--allow-damaged"), "{t}");
    assert!(!sd.join("fit.json").exists());

    // A results folder copied as rren/foo: its sweep is still `tiny`.
    let foo = dir.join("rren/foo");
    std::fs::create_dir_all(&foo).unwrap();
    std::fs::copy(&tiny, foo.join("sweep.toml")).unwrap();
    let o = bin().args(["design", "--continue"]).arg(&foo).args(["--sims", "2"]).output().unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains("named `foo`") && t.contains("rren/tiny"), "{t}");
    assert!(!foo.join("continue.toml").exists() && !foo.join("fit.json").exists());

    // Runs no machine here holds: refused by `plan` with the estimate and the limit.
    for (name, edits) in [
        ("wide", vec![("grid", "width", "[65536, 32, 48]")]),
        (
            "long",
            vec![
                ("model", "seq_len", "65536"),
                ("train", "batch_size", "1"),
                ("train", "eval_tokens", "65537"),
                ("grid", "tokens_per_param", "[1000, 2000, 4000]"),
                ("target", "flops", "1e16"),
            ],
        ),
        ("evals", vec![("train", "eval_tokens", "1000000000000")]),
    ] {
        let f = sweep_file(&dir, name, &edits);
        let o = bin().arg("plan").arg(&f).arg("--results").arg(&dir).output().unwrap();
        let t = text(&o);
        assert_eq!(o.status.code(), Some(2), "{name}: {t}");
        assert!(t.contains("need more memory than this machine has") && t.contains("iB"), "{name}: {t}");
    }
    let o = bin().arg("plan").arg(&tiny).arg("--results").arg(&dir).output().unwrap();
    assert!(o.status.success() && text(&o).contains("| memory |"), "{}", text(&o));

    let o = bin().arg("predict-curve").arg(&sd).args(["--steps", "1000000000"]).output().unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains("at most 100000000 steps"), "{t}");

    let fixtures = repo().join("tests/fixtures/parquet");
    let out = dir.join("fit.json");
    let o = bin()
        .arg("fit")
        .arg(fixtures.join("unused_types.parquet"))
        .args(["--bootstrap", "0", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = bin().arg("fit").arg(fixtures.join("decimal_loss.parquet")).arg("--out").arg(&out).output().unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains("column `loss` holds Decimal") && !t.contains("panicked"), "{t}");
    let _ = std::fs::remove_dir_all(&dir);
}
