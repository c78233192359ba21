//! `windtunnel import MANIFEST.toml`: another trainer's runs (a published ladder, a W&B
//! export) turned into an ordinary results folder, `results/<name>/`: runs.parquet with every
//! evaluation, fit.json, the other validation sets' laws (fit_sets.json), the held-out runs
//! predicted and scored in check.json (the report's Calibration section), and the report.
//! Runs with bad data (NaN loss, a repeated step, tokens that do not increase) are named and
//! left out, never fitted; a file the manifest does not describe (a missing column, a cell
//! that is not a number) is an error naming the file, row and column.

use super::import_table::{format_of, Table};
use crate::fit::{self, FitReport};
use crate::spec::config::{Backend, BacktestMode, FitSpec, Sweep};
use crate::spec::manifest::{self, Files, Manifest, Params, Tokens};
use crate::store::imported::{self, Excluded, Names, Point, Record, Run};
use crate::store::{self, SweepDir};
use crate::{report, UserError};
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The import manifest (see docs/import.md).
    pub manifest: PathBuf,
    /// Results root (the import writes RESULTS/<name>/).
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
}

pub fn run(args: Args) -> Result<i32> {
    let out = import(&args.manifest, &args.results)?;
    print!("{}", out.summary);
    Ok(0)
}

/// What an import wrote and a summary for the terminal.
pub struct Imported {
    pub dir: SweepDir,
    pub record: Record,
    pub fit: FitReport,
    pub summary: String,
}

/// Sizes JSON: per size key, its fields.
type Sizes = BTreeMap<String, serde_json::Value>;

fn files_of(m: &Manifest) -> Result<Vec<PathBuf>> {
    match &m.files {
        Files::List(l) => Ok(l.iter().map(PathBuf::from).collect()),
        Files::Glob(g) => {
            let mut out: Vec<PathBuf> = glob::glob(g)
                .map_err(|e| UserError(format!("{}: import.files: bad glob {g:?}: {e}", m.path)))?
                .filter_map(|p| p.ok())
                .filter(|p| p.is_file())
                .collect();
            out.sort();
            if out.is_empty() {
                return Err(UserError(format!("{}: import.files: no file matches {g:?}", m.path)).into());
            }
            Ok(out)
        }
    }
}

/// A file's run name: its name without the format's extension.
fn stem(p: &Path) -> String {
    let name = p.file_name().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
    for ext in [".csv", ".parquet", ".pq", ".jsonl", ".ndjson"] {
        if let Some(s) = name.strip_suffix(ext) {
            return s.to_string();
        }
    }
    name
}

/// The size entry's field as a number.
fn size_field(sizes: &Sizes, path: &str, key: &str, field: &str) -> Result<f64> {
    let entry = sizes.get(key).ok_or_else(|| {
        let keys: Vec<&str> = sizes.keys().map(String::as_str).collect();
        UserError(format!("{path}: no size {key:?} (sizes present: {})", keys.join(", ")))
    })?;
    entry
        .get(field)
        .and_then(|v| v.as_f64())
        .filter(|x| x.is_finite() && *x > 0.0)
        .ok_or_else(|| UserError(format!("{path}: size {key:?} has no field `{field}` holding a number > 0")).into())
}

/// Reads one run's rows of a table into evaluations, or the reason the run is left out.
/// Structural problems (a missing column, a cell that is not a number) are errors.
fn read_run(
    m: &Manifest,
    t: &Table,
    rows: &[usize],
    names: &Names,
    cols: &[(Vec<Option<String>>, usize)],
) -> Result<std::result::Result<Vec<Point>, String>> {
    for c in [Some(&m.loss), m.step.as_ref()].into_iter().flatten() {
        if !t.has(c) {
            return Err(t.missing(c, "named by the manifest"));
        }
    }
    match &m.tokens {
        Tokens::Column(c) | Tokens::PerStepColumn(c) if !t.has(c) => {
            return Err(t.missing(c, "named by the manifest as the tokens"))
        }
        _ => {}
    }
    if let Some(c) = m.lr.as_ref().filter(|c| !t.has(c)) {
        return Err(t.missing(c, "named by the manifest as the learning rate"));
    }
    let mut pts: Vec<(Point, usize)> = Vec::new();
    for (i, &k) in rows.iter().enumerate() {
        // A row without the primary loss is not an evaluation (a W&B history logs training
        // steps too); a NaN written there is one, and leaves the run out below.
        let Some(loss) = t.num(&m.loss, k)? else { continue };
        let step = match &m.step {
            Some(c) => t.num(c, k)?.ok_or_else(|| {
                UserError(format!("{}: column `{c}`, {}: empty cell, expected the step", t.origin, t.at(k)))
            })?,
            None => i as f64,
        };
        let tokens = match &m.tokens {
            Tokens::Column(c) => t.num(c, k)?,
            Tokens::PerStep(x) => Some(step * x),
            Tokens::PerStepColumn(c) => t.num(c, k)?.map(|x| x * step),
        };
        let tokens = tokens
            .ok_or_else(|| UserError(format!("{}: {}: empty tokens cell, expected a number", t.origin, t.at(k))))?;
        let lr = match &m.lr {
            Some(c) => t.num(c, k)?.unwrap_or(f64::NAN),
            None => f64::NAN,
        };
        let mut vals: Vec<Vec<f64>> = Vec::new();
        for (cs, _) in cols {
            let mut v = Vec::with_capacity(cs.len());
            for c in cs {
                v.push(match c {
                    Some(c) if t.has(c) => t.num(c, k)?.unwrap_or(f64::NAN),
                    _ => f64::NAN,
                });
            }
            vals.push(v);
        }
        let [losses, task_bpb, task_acc]: [Vec<f64>; 3] = vals.try_into().expect("three groups");
        pts.push((Point { step: step as i64, tokens, lr, loss, losses, task_bpb, task_acc }, k));
    }
    let _ = names;
    if pts.is_empty() {
        return Ok(Err(format!("no evaluations (no row has a value in `{}`)", m.loss)));
    }
    pts.sort_by_key(|(p, _)| p.step);
    for w in pts.windows(2) {
        let ((a, ka), (b, kb)) = (&w[0], &w[1]);
        if a.step == b.step {
            return Ok(Err(format!("step {} appears twice ({} and {})", a.step, t.at(*ka), t.at(*kb))));
        }
        if !(b.tokens > a.tokens) {
            let c = match &m.tokens {
                Tokens::Column(c) => format!("column `{c}`"),
                _ => "tokens".to_string(),
            };
            return Ok(Err(format!(
                "tokens go backwards at step {} ({}, {c}): {} after {} at step {}",
                b.step,
                t.at(*kb),
                b.tokens,
                a.tokens,
                a.step
            )));
        }
    }
    for (p, k) in &pts {
        if !p.loss.is_finite() {
            return Ok(Err(format!("{} loss at step {} ({}, column `{}`)", p.loss, p.step, t.at(*k), m.loss)));
        }
        if !(p.tokens.is_finite() && p.tokens > 0.0) {
            return Ok(Err(format!("tokens {} at step {} ({}): expected a number > 0", p.tokens, p.step, t.at(*k))));
        }
    }
    Ok(Ok(pts.into_iter().map(|(p, _)| p).collect()))
}

/// The short name of the primary loss: its `losses` name if a pattern gives it one.
fn primary_name(m: &Manifest, all: &[(String, String)]) -> String {
    all.iter().find(|(_, c)| *c == m.loss).map_or("loss".to_string(), |(n, _)| n.clone())
}

/// Reads every run the manifest names: (fitted, checks, excluded, skipped, names, primary).
#[allow(clippy::type_complexity)]
pub fn read_runs(m: &Manifest) -> Result<(Vec<Run>, Vec<Run>, Vec<Excluded>, Vec<String>, Names, String, usize)> {
    let files = files_of(m)?;
    let sizes: Option<(String, Sizes)> = match &m.params {
        Params::Sizes { path, .. } => {
            let text = std::fs::read_to_string(path).map_err(|e| UserError(format!("{path}: cannot read: {e}")))?;
            let s: Sizes = serde_json::from_str(&text)
                .map_err(|e| UserError(format!("{path}: expected a JSON object of sizes: {e}")))?;
            Some((path.clone(), s))
        }
        _ => None,
    };
    let mut names: Option<Names> = None;
    let mut primary = String::from("loss");
    let (mut fitted, mut checks, mut excluded, mut skipped) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for f in &files {
        let t = Table::read(f, format_of(f, m.format)?)?;
        // Which runs this table holds, each with its rows.
        let groups: Vec<(String, Vec<usize>)> = match &m.run_column {
            None => vec![(stem(f), (0..t.height()).collect())],
            Some(c) => {
                if !t.has(c) {
                    return Err(t.missing(c, "the run column"));
                }
                let mut g: Vec<(String, Vec<usize>)> = Vec::new();
                for k in 0..t.height() {
                    let name = t.text(c, k)?;
                    match g.iter_mut().find(|(n, _)| *n == name) {
                        Some((_, rows)) => rows.push(k),
                        None => g.push((name, vec![k])),
                    }
                }
                g
            }
        };
        // The other sets and tasks are named from the first file; later files without one of
        // those columns give NaN there.
        let n = names.get_or_insert_with(|| {
            let all = |x: &Option<manifest::Named>| x.as_ref().map_or(Vec::new(), |x| x.resolve(&t.names));
            let losses = all(&m.losses);
            primary = primary_name(m, &losses);
            Names {
                losses: losses.iter().filter(|(_, c)| *c != m.loss).map(|(n, _)| n.clone()).collect(),
                task_bpb: all(&m.task_bpb).into_iter().map(|(n, _)| n).collect(),
                task_acc: all(&m.task_acc).into_iter().map(|(n, _)| n).collect(),
            }
        });
        let col_of = |x: &Option<manifest::Named>, want: &[String]| -> Vec<Option<String>> {
            let got = x.as_ref().map_or(Vec::new(), |x| x.resolve(&t.names));
            want.iter().map(|w| got.iter().find(|(n, _)| n == w).map(|(_, c)| c.clone())).collect()
        };
        let cols = vec![
            (col_of(&m.losses, &n.losses), 0),
            (col_of(&m.task_bpb, &n.task_bpb), 1),
            (col_of(&m.task_acc, &n.task_acc), 2),
        ];
        for (name, rows) in groups {
            if m.exclude.iter().any(|g| manifest::glob_match(g, &name)) {
                skipped.push(name);
                continue;
            }
            let caps = match &m.name_pattern {
                Some(p) => Some(manifest::captures(p, &name).ok_or_else(|| {
                    UserError(format!("{}: run `{name}` does not match import.name_pattern {p:?}", t.origin))
                })?),
                None => None,
            };
            let (params, mut fpt, mut width, mut depth) = match &m.params {
                Params::Value(v) => (*v, None, 0, 0),
                Params::Column(c) => {
                    let v = rows.first().map(|&k| t.num(c, k)).transpose()?.flatten();
                    let v = v.filter(|x| x.is_finite() && *x > 0.0).ok_or_else(|| {
                        UserError(format!("{}: column `{c}`: run `{name}` has no parameter count > 0", t.origin))
                    })?;
                    (v, None, 0, 0)
                }
                Params::Sizes { key, n_field, fpt_field, width_field, depth_field, .. } => {
                    let (path, s) = sizes.as_ref().expect("read above");
                    let k = &caps.as_ref().expect("validated: the pattern holds the key")[key];
                    let get = |f: &Option<String>| f.as_ref().map(|f| size_field(s, path, k, f)).transpose();
                    (
                        size_field(s, path, k, n_field)?,
                        get(fpt_field)?,
                        get(width_field)?.unwrap_or(0.0) as i64,
                        get(depth_field)?.unwrap_or(0.0) as i64,
                    )
                }
            };
            if fpt.is_none() {
                fpt = m.flops_per_token;
            }
            (width, depth) = (width.max(0), depth.max(0));
            let file = t.origin.clone();
            match read_run(m, &t, &rows, n, &cols)? {
                Err(reason) => excluded.push(Excluded { run: name, file, reason }),
                Ok(points) => {
                    let r = Run { name: name.clone(), file, params, flops_per_token: fpt, width, depth, points };
                    if fitted.iter().chain(&checks).any(|o: &Run| o.name == r.name) {
                        return Err(UserError(format!("{}: run `{name}` appears in two files", r.file)).into());
                    }
                    if m.checks.iter().any(|g| manifest::glob_match(g, &name)) {
                        checks.push(r);
                    } else {
                        fitted.push(r);
                    }
                }
            }
        }
    }
    Ok((fitted, checks, excluded, skipped, names.unwrap_or_default(), primary, files.len()))
}

/// The stand-in sweep of an imported folder: its name, target and fit settings, no runs.
pub fn sweep_of(m: &Manifest) -> Sweep {
    Sweep {
        name: m.name.clone(),
        path: m.path.clone(),
        backend: Backend::Cpu,
        runs: Vec::new(),
        target: m.target.clone(),
        fit: FitSpec {
            laws: m.laws.clone(),
            backtest: BacktestMode::Largest,
            bootstrap: m.bootstrap,
            // Another trainer's step counts are not this tool's transient: every run counts.
            min_steps: 0,
            density_ref: None,
            objective: None,
        },
        data: Default::default(),
    }
}

/// The final-point observations of the frame with `loss` replaced by column `col`.
fn obs_with(df: &polars::prelude::DataFrame, col: &str, origin: &str) -> Result<Vec<fit::Obs>> {
    let mut d = df.clone();
    let c = d.column(col)?.clone().with_name("loss".into());
    d.with_column(c)?;
    let obs = store::frame::to_obs(&d, origin)?;
    Ok(obs.into_iter().filter(|o| o.is_final && o.loss.is_finite()).collect())
}

/// Import: read, validate, write the folder, fit, predict the checks, report.
pub fn import(manifest_path: &Path, results: &Path) -> Result<Imported> {
    let m = manifest::load(manifest_path)?;
    let (fitted, checks, excluded, skipped, names, primary, nfiles) = read_runs(&m)?;
    if fitted.is_empty() {
        return Err(UserError(format!(
            "{}: no run left to fit ({} checks, {} excluded, {} skipped by `exclude`)",
            m.path,
            checks.len(),
            excluded.len(),
            skipped.len()
        ))
        .into());
    }
    let sweep = sweep_of(&m);
    let dir = SweepDir::new(results, &m.name);
    std::fs::create_dir_all(&dir.root).with_context(|| format!("creating {}", dir.root.display()))?;
    let mut df = imported::build_frame(&fitted, &names, &m.name)?;
    imported::write_parquet(&dir.runs_parquet(), &mut df)?;
    if checks.is_empty() {
        let _ = std::fs::remove_file(dir.checks_parquet());
    } else {
        imported::write_parquet(&dir.checks_parquet(), &mut imported::build_frame(&checks, &names, &m.name)?)?;
    }
    let bytes = std::fs::read(manifest_path)?;
    let record = Record {
        manifest: m.path.clone(),
        manifest_blake3: blake3::hash(&bytes).to_hex()[..16].to_string(),
        primary_column: m.loss.clone(),
        primary: primary.clone(),
        names: names.clone(),
        imported: fitted.iter().map(|r| r.name.clone()).collect(),
        checks: checks.iter().map(|r| r.name.clone()).collect(),
        excluded: excluded.clone(),
        skipped: skipped.clone(),
        files: nfiles,
        sweep: sweep.clone(),
    };
    store::write_json_atomic(&dir.import_json(), &record)?;
    let origin = dir.runs_parquet().display().to_string();
    let (obs, left_out) = super::fit::obs_of_frame(&df, &origin, 0)?;
    let opts = super::fit::fit_options(&sweep);
    let mut fit =
        super::fit::fit_leaving_out(&obs, left_out, &opts).map_err(|e| UserError(format!("{}: {e:#}", m.path)))?;
    for x in &excluded {
        fit.warnings.push(format!("run {} ({}) was excluded from the import: {}", x.run, x.file, x.reason));
    }
    store::write_json_atomic(&dir.fit_json(), &fit)?;
    // The other validation sets' laws, for `predict` (fewer bootstrap refits: they are not the
    // headline, and each costs a full fit).
    let mut sets: BTreeMap<String, FitReport> = BTreeMap::new();
    let other = fit::FitOptions { bootstrap: m.bootstrap_other, laws: Vec::new(), ..opts.clone() };
    // One set per task of the pool: the fits are independent (the pool also runs each fit's
    // own bootstrap, so a set waits only for free cores).
    use rayon::prelude::*;
    let fitted_sets: Vec<(String, Result<FitReport>)> = names
        .losses
        .par_iter()
        .map(|s| (s.clone(), obs_with(&df, &format!("loss_{s}"), &origin).and_then(|o| fit::fit_all(&o, &other))))
        .collect();
    for (s, r) in fitted_sets {
        match r {
            Ok(r) if r.params.is_some() => {
                sets.insert(s, r);
            }
            Ok(r) => {
                fit.warnings.push(format!("no law for validation set {s}: {}", r.chinchilla_skipped().unwrap_or("?")))
            }
            Err(e) => fit.warnings.push(format!("no law for validation set {s}: {e:#}")),
        }
    }
    store::write_json_atomic(&dir.fit_sets_json(), &sets)?;
    let ledger = check_ledger(&m.name, &fit, &obs, &checks);
    if ledger.entries.is_empty() {
        let _ = std::fs::remove_file(dir.check_json());
    } else {
        store::write_json_atomic(&dir.check_json(), &ledger)?;
    }
    let w = report::write_report(&dir, &sweep, &fit, &df, &[], &report::ReportOptions::default())?;
    let summary = summary(&dir, &record, &fit, &ledger, &w.md);
    Ok(Imported { dir, record, fit, summary })
}

/// The held-out runs predicted by the fit of the others, as `windtunnel check` records its
/// runs (width and depth where the sizes give them).
fn check_ledger(name: &str, fit: &FitReport, obs: &[fit::Obs], checks: &[Run]) -> fit::calibration::Ledger {
    let c_max = obs
        .iter()
        .filter(|o| o.is_final)
        .map(|o| crate::flops::chinchilla_flops(o.params, o.tokens))
        .fold(0.0, f64::max);
    let scale = scale_of(fit, obs);
    let mut l = fit::calibration::Ledger {
        sweep: name.to_string(),
        runs_dir: "checks.parquet (held out by the manifest's `runs.checks`)".to_string(),
        sweep_max_flops: c_max,
        entries: Vec::new(),
        held_out: true,
    };
    let Some(law) = fit.params else { return l };
    for r in checks {
        let Some(last) = r.points.last() else { continue };
        let (n, d) = (r.params, last.tokens);
        let Some(p) = fit::planned::predict(fit, n, d, scale) else { continue };
        let mut e = fit::calibration::Entry {
            run_id: r.name.clone(),
            width: r.width as usize,
            depth: r.depth as usize,
            heads: 0,
            params: n,
            tokens: d,
            tokens_per_param: d / n,
            flops: p.flops,
            factor: p.flops / c_max,
            rule: "held out by the manifest".to_string(),
            predicted: p.loss,
            interval: p.interval,
            law,
            kaplan: p.kaplan,
            actual: None,
            inside: None,
            rel_err: None,
            curve: None,
            // The manifest names no vocabulary; the interval's spread rule still applies.
            ln_vocab: None,
        };
        e.settle(last.loss);
        l.entries.push(e);
    }
    l
}

/// The law's lowest predicted loss over the fitted final points (what E is judged against).
pub fn scale_of(fit: &FitReport, obs: &[fit::Obs]) -> f64 {
    let Some(law) = fit.params else { return f64::NAN };
    obs.iter().filter(|o| o.is_final).map(|o| law.predict(o.params, o.tokens)).fold(f64::INFINITY, f64::min)
}

fn summary(dir: &SweepDir, r: &Record, fit: &FitReport, l: &fit::calibration::Ledger, md: &Path) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "imported {} run(s) from {} file(s) into {}; {} held out as checks, {} excluded, {} skipped by `exclude`",
        r.imported.len(),
        r.files,
        dir.root.display(),
        r.checks.len(),
        r.excluded.len(),
        r.skipped.len()
    );
    for x in &r.excluded {
        let _ = writeln!(s, "excluded {} ({}): {}", x.run, x.file, x.reason);
    }
    match fit.params {
        Some(p) => {
            let _ = writeln!(
                s,
                "{} law: L = {:.4} + {:.4e}/N^{:.4} + {:.4e}/D^{:.4} ({} final points)",
                r.primary, p.e, p.a, p.alpha, p.b, p.beta, fit.n_points
            );
        }
        None => {
            let _ = writeln!(s, "no {} law: {}", r.primary, fit.chinchilla_skipped().unwrap_or("?"));
        }
    }
    for e in &l.entries {
        let _ = writeln!(s, "check {}: {}", e.run_id, e.line());
    }
    let _ = writeln!(s, "report: {}", md.display());
    s
}
