//! `fit`: collect finished runs into `runs.parquet` and fit the laws into `fit.json`; the
//! data-mixing law's inputs and `mix-predict`. Each step reads the previous step's files only.

use crate::fit::{self, FitOptions, FitReport};
use crate::spec::config::{BacktestMode, RunConfig, Sweep};
use crate::store::{self, frame, RunDir, SweepDir};
use crate::{report, runner, UserError};
use anyhow::{Context, Result};
use polars::prelude::DataFrame;
use std::path::{Path, PathBuf};

pub fn fit_options(sweep: &Sweep) -> FitOptions {
    FitOptions {
        target_flops: sweep.target.flops,
        target_params: sweep.target.params,
        bootstrap: sweep.fit.bootstrap,
        seed: sweep.runs.first().map_or(0, |r| r.seed),
        backtest: sweep.fit.backtest == BacktestMode::Largest,
        laws: sweep.fit.laws.iter().copied().filter(|&l| l != fit::LawName::Chinchilla).collect(),
        // The mixture's entropy-floor estimate (built-in domains, one mix): the verdict never
        // presents a prediction below it as a result.
        entropy_floor: report::facts::entropy_floors(sweep).1,
        wsd_families: wsd_families(sweep),
        mixing: None,
        turning: None,
    }
}

/// What a new WSD family of a sweep of branches may hold (the verdict's search and `design
/// --continue` add whole families of new sizes): the recipe's warmup and decay fractions, which
/// a trunk keeps (its members' warmups are rescaled to the trunk's steps, so another member's
/// would allow almost no span), and the sweep's data values. None without branches.
pub(crate) fn wsd_families(sweep: &Sweep) -> Option<fit::verdict::Families> {
    use crate::spec::config::Schedule;
    let trunk = sweep.runs.iter().find(|r| r.branch.as_ref().is_some_and(|b| b.from.is_none()))?;
    let Schedule::Wsd { warmup, decay, .. } = trunk.schedule else { return None };
    // The resolved runs do not say which axis the grid used: a grid over `tokens` gives every
    // size the same few counts, one over `tokens_per_param` the same few ratios (both to within
    // the rounding to whole steps).
    let tokens = distinct(sweep.runs.iter().map(|r| r.tokens as f64).collect());
    let ratios = distinct(
        sweep.runs.iter().map(|r| r.tokens as f64 / crate::flops::params(r.width, r.depth, r.vocab) as f64).collect(),
    );
    let per_param = ratios.len() < tokens.len();
    Some(fit::verdict::Families {
        span: if warmup > 0.0 { (1.0 - decay) / warmup } else { f64::INFINITY },
        decay,
        values: if per_param { ratios } else { tokens },
        per_param,
    })
}

/// Sorted values, those within 2% of the previous kept one dropped.
fn distinct(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    let mut out: Vec<f64> = Vec::new();
    for x in v {
        if out.last().is_none_or(|&l| x > l * 1.02) {
            out.push(x);
        }
    }
    out
}

/// `fit_options` with the data_mixing law's per-domain data from the sweep's results frame.
pub fn fit_options_with_frame(sweep: &Sweep, df: &DataFrame) -> FitOptions {
    FitOptions { mixing: Some(mixing_data(sweep, df).map_err(|e| format!("{e:#}"))), ..fit_options(sweep) }
}

/// `fit_options_with_frame` with what the finished runs' whole curves say (`turning`): the
/// options of a refit of a sweep's results folder.
pub fn fit_options_of_dir(sweep: &Sweep, dir: &SweepDir, df: &DataFrame) -> FitOptions {
    fit_options_of_runs(sweep, &runner::finished(sweep, dir).0, df)
}

/// `fit_options_of_dir` for finished runs already listed.
fn fit_options_of_runs(sweep: &Sweep, done: &[(RunDir, RunConfig)], df: &DataFrame) -> FitOptions {
    FitOptions { turning: super::curve::turning(done), ..fit_options_with_frame(sweep, df) }
}

/// A results frame's observations without the runs that trained fewer than `min_steps`
/// optimizer steps (every row of them, so no law sees their transient), and those runs.
/// A frame without `run_id`, `step` or `is_final` columns (a user's CSV) keeps every row.
pub fn obs_of_frame(df: &DataFrame, origin: &str, min_steps: u64) -> Result<(Vec<fit::Obs>, Vec<fit::LeftOut>)> {
    let obs = frame::to_obs(df, origin)?;
    let short = short_runs(df, min_steps)?;
    let obs = obs.into_iter().filter(|o| !short.iter().any(|s| s.run == o.run)).collect();
    Ok((obs, short))
}

fn short_runs(df: &DataFrame, min_steps: u64) -> Result<Vec<fit::LeftOut>> {
    let (Ok(id), Ok(step), Ok(fin)) = (df.column("run_id"), df.column("step"), df.column("is_final")) else {
        return Ok(Vec::new());
    };
    let id = id.cast(&polars::prelude::DataType::String)?;
    let step = step.cast(&polars::prelude::DataType::Float64)?;
    let mut out: Vec<fit::LeftOut> = id
        .str()?
        .iter()
        .zip(step.f64()?.iter())
        .zip(fin.bool()?.iter())
        .filter_map(|((r, s), f)| match (r, s, f) {
            (Some(r), Some(s), Some(true)) if s < min_steps as f64 => {
                Some(fit::LeftOut { run: r.to_string(), steps: s as u64, min_steps })
            }
            _ => None,
        })
        .collect();
    out.sort_by(|a, b| a.run.cmp(&b.run));
    out.dedup_by(|a, b| a.run == b.run);
    Ok(out)
}

/// `fit_all` on observations from which `left_out` runs were removed: the report names them,
/// and when leaving them out is what starved the Chinchilla law, its skip reason says so (a
/// grid of only short runs must not read as a grid of too few runs).
pub fn fit_leaving_out(obs: &[fit::Obs], left_out: Vec<fit::LeftOut>, opts: &FitOptions) -> Result<FitReport> {
    let mut report = fit::fit_all(obs, opts)?;
    if let (Some(first), Some(why)) = (left_out.first(), report.skipped.get_mut("chinchilla")) {
        why.push_str(&format!(
            " ({} run(s) of fewer than {} optimizer steps were left out: `[fit] min_steps`, 0 keeps every run)",
            left_out.len(),
            first.min_steps
        ));
    }
    report.left_out = left_out;
    Ok(report)
}

/// runs.parquet → fit.json → report.md for a sweep folder. Returns the report path.
pub fn collect_fit_report(sweep: &Sweep, dir: &SweepDir) -> Result<PathBuf> {
    collect_fit_report_with(sweep, dir, false)
}

/// `collect_fit_report`, which by default refuses a sweep with run folders that are not the
/// runs they are named for (`store::Problem`: a file, a symlink, an unreadable or copied
/// folder): such a folder may hold a finished run that simply cannot be read now, and a fit
/// without it would replace fit.json with a fit on fewer runs. `allow_problems` (`collect
/// --allow-damaged`) fits the usable runs anyway, and fit.json's warnings name each folder
/// left out. A DONE run whose record is damaged is another matter: its record is known to be
/// bad, `run` trains it again, and it is excluded with a warning either way.
pub fn collect_fit_report_with(sweep: &Sweep, dir: &SweepDir, allow_problems: bool) -> Result<PathBuf> {
    let runner::Finished { done, diverged, damaged, problems } = runner::finished_runs(sweep, dir);
    let named: Vec<String> =
        problems.iter().map(|(id, p)| format!("{}: {}", dir.run(id).path.display(), p.describe())).collect();
    if !named.is_empty() && !allow_problems {
        return Err(UserError(format!(
            "{} of {} run folders of sweep `{}` cannot be used:\n  {}\nnot fitting: a fit without them would replace \
             {} with a fit on fewer runs. Repair or remove them (then `run` trains what is missing), or fit the {} \
             usable finished run(s) anyway with `windtunnel collect --allow-damaged` (fit.json then names the folders \
             left out)",
            named.len(),
            sweep.runs.len(),
            sweep.name,
            named.join("\n  "),
            dir.fit_json().display(),
            done.len()
        ))
        .into());
    }
    for n in &named {
        eprintln!("warning: run folder {n}; left out of the fit (--allow-damaged)");
    }
    if done.is_empty() {
        return Err(UserError(format!("no finished runs in {}", dir.runs_dir().display())).into());
    }
    let df = frame::write_parquet(dir, &done)?;
    let (obs, left_out) = obs_of_frame(&df, &dir.runs_parquet().display().to_string(), sweep.fit.min_steps)?;
    let mut report =
        fit_leaving_out(&obs, left_out, &fit_options_of_runs(sweep, &done, &df)).context("fitting the scaling law")?;
    for (id, why) in &damaged {
        report
            .warnings
            .push(format!("run {id} is DONE but damaged ({why}); excluded from the fit, `run` trains it again"));
    }
    for n in &named {
        report.warnings.push(format!(
            "run folder {n}; left out of the fit (collect --allow-damaged): {} of {} runs fitted",
            done.len(),
            sweep.runs.len()
        ));
    }
    if let Some(r) = &sweep.fit.density_ref {
        // A missing reference must not cost the night's fit: it becomes a warning.
        match store::read_json::<FitReport>(Path::new(r)) {
            Ok(FitReport { params: Some(law), .. }) => {
                report.laws.density = Some(fit::density_table(&law, &obs));
            }
            Ok(_) => report.warnings.push(format!("fit.density_ref: no density table: {r} has no chinchilla law")),
            Err(e) => report.warnings.push(format!("fit.density_ref: no density table: {e:#}")),
        }
    }
    super::curve::add_curve_law(sweep, &done, &mut report);
    store::write_json_atomic(&dir.fit_json(), &report)?;
    // A law the runs cannot support is skipped, not fatal: say so where `run` and `collect`
    // print, since the exit status is 0.
    for (law, why) in &report.skipped {
        eprintln!("skipped law {law}: {why}");
    }
    report::write_report(dir, sweep, &report, &df, &diverged, &report::ReportOptions::default())?;
    Ok(dir.report_md())
}

/// The final (mixture, compute, per-domain losses) of every run of a results frame.
pub fn mix_observations(df: &DataFrame, domains: &[String]) -> Result<Vec<fit::mixing::MixObs>> {
    let fin = df.filter(df.column("is_final")?.bool()?)?;
    let f64s = |name: &str| -> Result<Vec<f64>> {
        let c = fin.column(name).with_context(|| format!("runs.parquet has no column {name}"))?;
        Ok(c.cast(&polars::prelude::DataType::Float64)?.f64()?.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
    };
    let flops = f64s("flops")?;
    let mixes: Vec<Vec<f64>> = domains.iter().map(|d| f64s(&format!("mix_{d}"))).collect::<Result<_>>()?;
    let losses: Vec<Vec<f64>> = domains.iter().map(|d| f64s(&format!("loss_{d}"))).collect::<Result<_>>()?;
    Ok((0..flops.len())
        .map(|r| fit::mixing::MixObs {
            mix: mixes.iter().map(|m| m[r]).collect(),
            flops: flops[r],
            losses: losses.iter().map(|l| l[r]).collect(),
        })
        .collect())
}

/// The data mixing law's inputs (fit::mixing) from a results frame: the runs' final per-domain
/// losses and mixtures, and the sweep's objective weights (equal when it names none).
pub fn mixing_data(sweep: &Sweep, df: &DataFrame) -> Result<fit::mixing::MixingData> {
    let first = sweep.runs.first().context("the sweep has no runs")?;
    let domains: Vec<String> = first.domains.iter().map(|d| d.name.clone()).collect();
    let obs = mix_observations(df, &domains)?;
    let weights: Vec<f64> = match &sweep.fit.objective {
        Some(o) => domains.iter().map(|d| o.get(d).copied().unwrap_or(0.0)).collect(),
        None => vec![1.0; domains.len()],
    };
    Ok(fit::mixing::MixingData { domains, obs, weights })
}

/// The data_mixing law of a results folder's fit.json, or a user error saying what is missing.
pub fn mixing_of_dir(dir: &Path) -> Result<fit::mixing::MixingFit> {
    let fit: FitReport = store::read_json(&SweepDir::at(dir).fit_json())
        .map_err(|e| UserError(format!("{}: no fit.json ({e:#}); run the sweep first", dir.display())))?;
    let none =
        || UserError(format!("{}: fit.json has no data_mixing law; add \"data_mixing\" to [fit] laws", dir.display()));
    Ok(fit.laws.data_mixing.ok_or_else(none)?)
}

/// `mix-predict`: a data_mixing fit's predicted per-domain losses and objective for the given
/// `domain=weight` pairs, at `flops` or the fit's target, beside the recommended mixture's.
pub fn mix_predict(dir: &Path, pairs: &[String], flops: Option<f64>) -> Result<String> {
    use std::fmt::Write;
    let m = mixing_of_dir(dir)?;
    let mut mix = vec![0.0; m.domains.len()];
    for p in pairs {
        let bad =
            || UserError(format!("`{p}`: expected DOMAIN=WEIGHT with WEIGHT >= 0; domains: {}", m.domains.join(", ")));
        let (name, w) = p.split_once('=').ok_or_else(bad)?;
        let j = m.domains.iter().position(|d| d == name.trim()).ok_or_else(bad)?;
        let w: f64 = w.trim().parse().map_err(|_| bad())?;
        if !(w >= 0.0 && w.is_finite()) {
            return Err(bad().into());
        }
        mix[j] = w;
    }
    let total: f64 = mix.iter().sum();
    if total <= 0.0 {
        return Err(UserError("mixture weights are all zero".into()).into());
    }
    mix.iter_mut().for_each(|w| *w /= total);
    let c = flops.unwrap_or(m.target_flops);
    if !(c > 0.0 && c.is_finite()) {
        return Err(UserError(format!("--flops {c} must be > 0")).into());
    }
    let mut out = format!("at C = {c:.3e} FLOPs (objective weights {:?}):\n", m.objective_weights);
    for (label, r) in [("this mixture", &mix), ("recommended", &m.recommended.mix)] {
        let losses: Vec<String> =
            m.laws.iter().zip(&m.domains).map(|(l, d)| format!("{d} {:.4}", l.eval(r, c, m.c_ref))).collect();
        let obj = fit::mixing::objective(&m.laws, &m.objective_weights, r, c, m.c_ref);
        let weights: Vec<String> = m.domains.iter().zip(r.iter()).map(|(d, w)| format!("{d} {w:.3}")).collect();
        let _ =
            writeln!(out, "  {label:<13} [{}]: losses {}; objective {obj:.4}", weights.join(", "), losses.join(", "));
    }
    let outside: Vec<String> = mix
        .iter()
        .zip(&m.search)
        .zip(&m.domains)
        .filter(|((w, i), _)| **w > 0.0 && (**w < i.lo - 1e-9 || **w > i.hi + 1e-9))
        .map(|((w, i), d)| format!("{d} {w:.3} (tried {:.3} to {:.3})", i.lo, i.hi))
        .collect();
    if !outside.is_empty() {
        let _ = writeln!(out, "warning: outside the weights the sweep tried, an extrapolation: {}", outside.join(", "));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec;
    use polars::prelude::*;

    /// A mixing sweep of 6 mixtures x 4 sizes has only 4 distinct (N, D), too
    /// few for the chinchilla law. It is skipped with its reason; the data_mixing law is still
    /// fitted by `fit_all` from the results frame's per-domain data, fit.json is written and read back by mix-check's reader,
    /// and the report says which law was skipped.
    /// What a sweep of WSD branches lets a new family hold: the recipe's span (a family that
    /// long parses, one 20% longer is rejected at `wsd_branches`), its decay and its data axis
    /// (tokens per parameter here, token counts for realtext); a sweep without branches has
    /// none.
    #[test]
    fn a_branch_sweep_gives_the_search_its_families_span_and_axis() {
        let text = std::fs::read_to_string("sweeps/wsd_branches.toml").unwrap();
        let sweep = crate::spec::parse(&text, "wsd_branches.toml").unwrap();
        let f = wsd_families(&sweep).expect("a branch sweep has families");
        // warmup 0.05 (of the trunk, to whole steps), decay 0.1.
        assert!((f.span / (0.9 / 0.05) - 1.0).abs() < 0.02 && f.decay == 0.1, "{f:?}");
        assert!(f.per_param && f.values.len() == 4 && (f.values[0] / 5.0 - 1.0).abs() < 0.02, "{f:?}");
        let with_tpp = |tpp: f64| {
            text.replace("tokens_per_param = [5, 10, 20, 40]", &format!("tokens_per_param = [5, 10, 20, 40, {tpp}]"))
        };
        assert!(crate::spec::parse(&with_tpp((5.0 * f.span * 0.97).floor()), "at-span").is_ok());
        let e = crate::spec::parse(&with_tpp((5.0 * f.span * 1.2).ceil()), "past").unwrap_err().to_string();
        assert!(e.contains("wsd_branches") && e.contains("warmup"), "{e}");
        let r = crate::spec::parse(include_str!("../../sweeps/realtext.toml"), "realtext.toml").unwrap();
        let f = wsd_families(&r).unwrap();
        assert!(!f.per_param && f.values.len() == 6 && f.values[0] > 5e5 && f.values[0] < 5.1e5, "{f:?}");
        let q = crate::spec::load(std::path::Path::new("sweeps/quickstart.toml")).unwrap();
        assert_eq!(wsd_families(&q), None);
    }

    #[test]
    fn a_mixing_sweep_of_four_sizes_skips_chinchilla_and_still_fits_data_mixing() {
        let sweep = spec::load(Path::new("sweeps/data_mix.toml")).unwrap();
        let mut cols: [Vec<f64>; 8] = Default::default();
        let mut ids = Vec::new();
        for (i, n) in [2e4f64, 4e4, 8e4, 1.6e5].into_iter().enumerate() {
            for (j, w) in [1.0f64, 0.75, 0.5, 0.35, 0.2, 0.0].into_iter().enumerate() {
                let d = 10.0 * n;
                let c = crate::flops::chinchilla_flops(n, d);
                let lm = 1.0 + 2.0 * (c / 1e10f64).powf(-0.1) + 0.5 * (-3.0 * w).exp();
                let lg = 0.6 + 1.5 * (c / 1e10f64).powf(-0.12) + 0.4 * (-3.0 * (1.0 - w)).exp();
                ids.push(format!("m{j}-s{i}"));
                for (col, v) in cols.iter_mut().zip([n, d, c, w * lm + (1.0 - w) * lg, w, 1.0 - w, lm, lg]) {
                    col.push(v);
                }
            }
        }
        let names = ["params", "tokens", "flops", "loss", "mix_markov", "mix_grammar", "loss_markov", "loss_grammar"];
        let mut columns: Vec<Column> =
            vec![Column::new("run_id".into(), ids.clone()), Column::new("is_final".into(), vec![true; ids.len()])];
        columns.extend(names.iter().zip(cols).map(|(k, v)| Column::new((*k).into(), v)));
        let df = DataFrame::new(ids.len(), columns).unwrap();
        let obs = frame::to_obs(&df, "synthetic").unwrap();

        let rep = fit::fit_all(&obs, &fit_options_with_frame(&sweep, &df)).unwrap();
        let why = rep.chinchilla_skipped().expect("chinchilla skipped").to_string();
        assert!(why.contains("at least 5"), "{why}");
        assert!(rep.laws.data_mixing.is_some(), "{:?} {:?}", rep.skipped, rep.warnings);

        let root = std::env::temp_dir().join(format!("wt-skip-mix-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let dir = SweepDir::at(&root);
        store::write_json_atomic(&dir.fit_json(), &rep).unwrap();
        // mix-check and mix-predict read the law through this.
        let m = mixing_of_dir(&root).unwrap();
        assert_eq!(m.domains, vec!["markov".to_string(), "grammar".to_string()]);
        let w = report::write_report(&dir, &sweep, &rep, &df, &[], &report::ReportOptions::default()).unwrap();
        let md = std::fs::read_to_string(&w.md).unwrap();
        assert!(md.contains("Laws not fitted") && md.contains(&why), "{md}");
        let _ = std::fs::remove_dir_all(&root);
    }
    /// Every row of a run whose final step is under `min_steps` leaves the observations (its
    /// mid-run WSD points too), and the run is named with its step count; a frame without a
    /// `step` column (a user's CSV) keeps every row.
    #[test]
    fn runs_under_min_steps_leave_the_final_point_laws() {
        let ids = ["a", "a", "b", "b", "c"];
        let df = DataFrame::new(
            5,
            vec![
                Column::new("run_id".into(), ids.to_vec()),
                Column::new("step".into(), vec![40i64, 80, 100, 400, 99]),
                Column::new("is_final".into(), vec![false, true, false, true, true]),
                Column::new("params".into(), vec![1e4f64; 5]),
                Column::new("tokens".into(), vec![4e4f64, 8e4, 1e5, 4e5, 9.9e4]),
                Column::new("loss".into(), vec![3.0f64, 2.9, 2.9, 2.5, 2.8]),
            ],
        )
        .unwrap();
        let (obs, left) = obs_of_frame(&df, "t", 100).unwrap();
        let kept: Vec<&str> = obs.iter().map(|o| o.run.as_str()).collect();
        assert_eq!(kept, vec!["b", "b"]);
        let named: Vec<(&str, u64)> = left.iter().map(|l| (l.run.as_str(), l.steps)).collect();
        assert_eq!(named, vec![("a", 80), ("c", 99)]);
        assert!(left.iter().all(|l| l.min_steps == 100));
        let (all, none) = obs_of_frame(&df, "t", 0).unwrap();
        assert_eq!((all.len(), none.len()), (5, 0));
        let csv = df.drop("step").unwrap();
        let (all, none) = obs_of_frame(&csv, "t", 100).unwrap();
        assert_eq!((all.len(), none.len()), (5, 0));
        // Leaving runs out can starve the law: its skip reason then names min_steps.
        let opts = FitOptions { bootstrap: 0, backtest: false, ..Default::default() };
        let rep = fit_leaving_out(&obs, left.clone(), &opts).unwrap();
        let why = rep.chinchilla_skipped().expect("2 points cannot fit the law");
        assert!(why.contains("2 run(s) of fewer than 100 optimizer steps") && why.contains("min_steps"), "{why}");
        assert_eq!(rep.left_out, left);
    }
}
