//! `design --continue DIR`: adaptive follow-up of a finished or partly finished sweep. Refit
//! what is done, take the refit's bootstrap laws as the prior, and buy the runs that shrink the
//! expected interval at the target most per FLOP, greedily, until the budget is spent. The
//! proposal is written as a sweep file with the same name, the finished runs and the proposed
//! ones and nothing else, so `windtunnel run FILE --results ROOT` resumes into the same results
//! folder: finished runs are found by their ids and only the proposal trains.
//!
//! The runs a sweep can add are *units* whose run ids do not depend on the rest of the grid:
//! without WSD branches one (shape, tokens per parameter) cell; with branches a whole family of
//! a shape not yet trained (adding a branch to a trained family would change its trunk, and so
//! every id in it). The μP base width is written into the file so that new, smaller or larger
//! widths cannot change the finished runs' configs either; the file is checked before it is
//! written: every finished run must keep its id.
//!
//! Beside the expected spreads it prints a replay of the same simulation on the sweep's own
//! runs (`fit::hindsight`): fitted without the largest sizes, what the simulation expected of
//! them and what they gave. Every continuation measured so far trained wider than simulated.

use super::design::{self, sweep_cost, sweep_points, Objective, DEFAULT_SHAPES, DEFAULT_TPP, SIM_BOOTSTRAP};
use crate::fit::hindsight;
use crate::fit::simulate::{self, Precision, Prior};
use crate::fit::verdict::MIN_TPP;
use crate::runner::{self, plan};
use crate::spec::config::{Parametrization, RunConfig, Sweep};
use crate::store::SweepDir;
use crate::UserError;
use anyhow::{bail, Context, Result};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// `design --continue`'s inputs.
#[derive(Clone, Debug)]
pub struct ContinueArgs {
    pub budget_flops: Option<f64>,
    pub budget_hours: Option<f64>,
    pub jobs: usize,
    /// Overrides the sweep's own `[target]`.
    pub target_flops: Option<f64>,
    /// Shapes and tokens per parameter the proposal may add, besides the sweep's own (empty:
    /// the `design` defaults).
    pub shapes: Vec<(usize, usize)>,
    pub tpp: Vec<f64>,
    pub objective: Objective,
    pub sims: usize,
    /// Where to write the proposal (default: `DIR/continue.toml`).
    pub out: Option<PathBuf>,
    /// Also write the baseline (the same FLOPs spread evenly over the sizes) here, to train and
    /// compare against.
    pub uniform_out: Option<PathBuf>,
}

/// A set of runs the proposal can add as a whole.
#[derive(Clone, Debug)]
struct Unit {
    shape: (usize, usize),
    /// Its values of the grid's data axis (tokens per parameter or tokens).
    values: Vec<f64>,
    flops: f64,
    secs: f64,
    points: Vec<(f64, f64)>,
}

/// The grid's data axis: tokens per parameter (what `design` writes) or absolute token counts
/// (a recipe's fixed budgets, as `realtext.toml`'s WSD families).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DataAxis {
    TokensPerParam,
    Tokens,
}

impl DataAxis {
    fn key(self) -> &'static str {
        match self {
            DataAxis::TokensPerParam => "tokens_per_param",
            DataAxis::Tokens => "tokens",
        }
    }

    /// As the grid writes it: token counts are integers.
    fn value(self, x: f64) -> toml::Value {
        match self {
            DataAxis::TokensPerParam => x.into(),
            DataAxis::Tokens => (x.round() as i64).into(),
        }
    }

    /// What a candidate unit's values are called in the printout.
    fn label(self) -> &'static str {
        match self {
            DataAxis::TokensPerParam => "tokens per parameter",
            DataAxis::Tokens => "tokens",
        }
    }
}

/// The grid's own axes: the (width, depth) shapes and the data axis's values.
#[derive(Debug)]
struct GridAxes {
    shapes: Vec<(usize, usize)>,
    data: DataAxis,
    values: Vec<f64>,
}

fn int_list(g: &toml::Table, key: &str) -> Option<Vec<usize>> {
    g.get(key)?.as_array()?.iter().map(|v| v.as_integer().and_then(|i| usize::try_from(i).ok())).collect()
}

fn num_list(g: &toml::Table, key: &str) -> Option<Vec<f64>> {
    g.get(key)?.as_array()?.iter().map(|v| v.as_float().or_else(|| v.as_integer().map(|i| i as f64))).collect()
}

/// Reads `[grid]`'s width/depth (zipped or crossed) and its data axis, `tokens_per_param` or
/// `tokens`; other grids (both data axes, zips over other axes) are refused with what is
/// supported.
fn grid_axes(t: &toml::Table, path: &str) -> Result<GridAxes> {
    let unsupported = |why: &str| {
        UserError(format!(
            "{path}: design --continue needs a [grid] over width and depth (zipped or crossed) and one of \
             tokens_per_param or tokens; {why}"
        ))
    };
    let g = t.get("grid").and_then(|v| v.as_table()).ok_or_else(|| unsupported("there is no [grid] table"))?;
    let widths = int_list(g, "width").ok_or_else(|| unsupported("`width` is missing or not a list of integers"))?;
    let depths = int_list(g, "depth").ok_or_else(|| unsupported("`depth` is missing or not a list of integers"))?;
    let (data, values) = match (g.contains_key("tokens_per_param"), g.contains_key("tokens")) {
        (true, true) => return Err(unsupported("this grid has both `tokens_per_param` and `tokens`").into()),
        (false, false) => return Err(unsupported("it has neither `tokens_per_param` nor `tokens`").into()),
        (true, false) => (
            DataAxis::TokensPerParam,
            num_list(g, "tokens_per_param")
                .ok_or_else(|| unsupported("`tokens_per_param` is not a list of numbers"))?,
        ),
        (false, true) => (
            DataAxis::Tokens,
            int_list(g, "tokens")
                .ok_or_else(|| unsupported("`tokens` is not a list of integers"))?
                .into_iter()
                .map(|x| x as f64)
                .collect(),
        ),
    };
    let zips: Vec<Vec<String>> = g
        .get("zip")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|z| z.as_array())
                .map(|z| z.iter().filter_map(|s| s.as_str().map(String::from)).collect())
                .collect()
        })
        .unwrap_or_default();
    let zipped = zips.iter().any(|z| z.len() == 2 && z.contains(&"width".into()) && z.contains(&"depth".into()));
    if zips.iter().any(|z| !(z.len() == 2 && z.contains(&"width".into()) && z.contains(&"depth".into()))) {
        return Err(unsupported("it zips axes other than width with depth").into());
    }
    let shapes = if zipped {
        widths.iter().copied().zip(depths.iter().copied()).collect()
    } else {
        widths.iter().flat_map(|&w| depths.iter().map(move |&d| (w, d))).collect()
    };
    Ok(GridAxes { shapes, data, values })
}

/// The sweep's recipe with `[grid]` set to `shapes` x `values` (of the data axis) minus
/// `exclude`, the μP base width pinned and the target set.
fn grid_text(
    recipe: &toml::Table,
    base_width: Option<usize>,
    data: DataAxis,
    shapes: &[(usize, usize)],
    values: &[f64],
    exclude: &[((usize, usize), f64)],
    target: f64,
) -> Result<String> {
    let mut t = recipe.clone();
    if let Some(bw) = base_width {
        let model = t.entry("model").or_insert_with(|| toml::Value::Table(Default::default()));
        let m = model.as_table_mut().context("[model] is not a table")?;
        let mup = m.entry("mup").or_insert_with(|| toml::Value::Table(Default::default()));
        mup.as_table_mut().context("[model.mup] is not a table")?.insert("base_width".into(), (bw as i64).into());
    }
    let grid = t.entry("grid").or_insert_with(|| toml::Value::Table(Default::default()));
    let g = grid.as_table_mut().context("[grid] is not a table")?;
    g.insert("width".into(), shapes.iter().map(|s| s.0 as i64).collect::<Vec<_>>().into());
    g.insert("depth".into(), shapes.iter().map(|s| s.1 as i64).collect::<Vec<_>>().into());
    g.insert("zip".into(), vec![vec!["width", "depth"]].into());
    g.insert(data.key().into(), values.iter().map(|&x| data.value(x)).collect::<Vec<_>>().into());
    // The recipe's own excludes over these three axes are dropped: `shapes` x `values` minus
    // `exclude` is already the exact set, and an old exclude that matches no point of the new
    // grid would be an error. Excludes that name other axes (a learning-rate list) stay.
    let cell_keys = ["width", "depth", data.key()];
    let mut ex: Vec<toml::Value> = g
        .get("exclude")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter(|e| e.as_table().is_none_or(|t| t.keys().any(|k| !cell_keys.contains(&k.as_str()))))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    for &((w, d), x) in exclude {
        let mut e = toml::Table::new();
        e.insert("width".into(), (w as i64).into());
        e.insert("depth".into(), (d as i64).into());
        e.insert(data.key().into(), data.value(x));
        ex.push(e.into());
    }
    if ex.is_empty() {
        g.remove("exclude");
    } else {
        g.insert("exclude".into(), ex.into());
    }
    let tg = t.entry("target").or_insert_with(|| toml::Value::Table(Default::default()));
    if let Some(tg) = tg.as_table_mut() {
        tg.remove("params");
        tg.insert("flops".into(), target.into());
    }
    Ok(toml::to_string(&t)?)
}

/// A new run on a token-count axis keeps `MIN_TPP` tokens per parameter or more, as `design`'s
/// candidates and the verdict's searched runs do: on realtext, families of new sizes at 0.5M-2M
/// tokens (1.2 to 4 tokens per parameter) narrowed N_opt but moved a larger model's predicted
/// loss 15% away from its actual. (On a tokens-per-parameter axis the candidate values already
/// start there; the sweep's own cells stay as written either way.)
fn too_short(data: DataAxis, shape: (usize, usize), tokens: f64, vocab: usize) -> bool {
    data == DataAxis::Tokens && tokens < MIN_TPP * crate::flops::params(shape.0, shape.1, vocab) as f64
}

/// The data values a unit may take: the grid's own and, on a tokens-per-parameter axis, the
/// `design` defaults (or --tpp); on a token-count axis, 2x and 4x the grid's largest count (a
/// fixed-budget recipe has no per-size ratio to extend, and longer runs are what a larger
/// size's frontier needs), and --tpp is refused.
fn candidate_values(axes: &GridAxes, tpp: &[f64], shown: &str) -> Result<Vec<f64>> {
    let mut values = axes.values.clone();
    match axes.data {
        DataAxis::TokensPerParam => values.extend(if tpp.is_empty() { DEFAULT_TPP.to_vec() } else { tpp.to_vec() }),
        DataAxis::Tokens => {
            if !tpp.is_empty() {
                bail!(UserError(format!(
                    "{shown}: this grid counts data in `tokens`, so --tpp does not apply; the candidates are its own \
                     token counts and 2x and 4x its largest"
                )));
            }
            let top = axes.values.iter().copied().fold(0.0, f64::max);
            values.extend([2.0 * top, 4.0 * top]);
        }
    }
    values.sort_by(f64::total_cmp);
    values.dedup();
    Ok(values)
}

fn base_width(sweep: &Sweep) -> Option<usize> {
    match sweep.runs.first()?.parametrization {
        Parametrization::Mup { base_width, .. } => Some(base_width),
        Parametrization::Sp { .. } => None,
    }
}

/// The sweep file of `cells`: every (shape, data value) of the union of their axes that is
/// not a cell is excluded.
fn cells_text(
    recipe: &toml::Table,
    bw: Option<usize>,
    data: DataAxis,
    cells: &BTreeSet<((usize, usize), u64)>,
    target: f64,
) -> Result<String> {
    let mut shapes: Vec<(usize, usize)> = cells.iter().map(|c| c.0).collect();
    shapes.dedup();
    let mut values: Vec<f64> = cells.iter().map(|c| f64::from_bits(c.1)).collect();
    values.sort_by(f64::total_cmp);
    values.dedup();
    let mut exclude = Vec::new();
    for &s in &shapes {
        for &x in &values {
            if !cells.contains(&(s, x.to_bits())) {
                exclude.push((s, x));
            }
        }
    }
    grid_text(recipe, bw, data, &shapes, &values, &exclude, target)
}

fn parse(text: &str, what: &str) -> Result<Sweep> {
    crate::spec::parse(text, what).map_err(|e| anyhow::anyhow!("{what} does not parse: {e}"))
}

/// Parses a candidate or continuation file of `like` and gives its file-backed domains
/// `like`'s fingerprints: the data are the same, and run ids depend on them (without, no
/// finished run of a sweep over files would keep its id).
fn parse_like(text: &str, what: &str, like: &Sweep) -> Result<Sweep> {
    let mut sw = parse(text, what)?;
    let prints: std::collections::BTreeMap<&str, &Option<String>> = like
        .runs
        .first()
        .map(|r| r.domains.iter().map(|d| (d.name.as_str(), &d.fingerprint)).collect())
        .unwrap_or_default();
    for r in &mut sw.runs {
        for d in &mut r.domains {
            if let Some(&fp) = prints.get(d.name.as_str()) {
                d.fingerprint = fp.clone();
            }
        }
    }
    Ok(sw)
}

/// The objective's spread for a set of points (the linearised approximation `design` screens
/// with: microseconds per call, so every unit can be scored at every greedy step).
fn score(points: &[(f64, f64)], target: f64, prior: &Prior, objective: Objective) -> f64 {
    let (l, n) = simulate::fisher_spreads(points, target, prior);
    let ln = |v: f64| if v.is_finite() { v.ln() } else { 1e6 };
    match objective {
        Objective::Loss => ln(l),
        Objective::NOpt => ln(n),
        Objective::Both => ln(l) + ln(n),
    }
}

/// Greedy choice (`simulate::greedy_by_gain`): the unit with the largest drop of the
/// objective's log spread per FLOP, until nothing affordable helps. `same_shape_once`: with WSD
/// families, one family per shape.
fn greedy(
    base: &[(f64, f64)],
    units: &[Unit],
    budget: (f64, f64),
    target: f64,
    prior: &Prior,
    objective: Objective,
    same_shape_once: bool,
) -> Vec<usize> {
    let costed: Vec<(&[(f64, f64)], f64)> = units.iter().map(|u| (u.points.as_slice(), u.flops)).collect();
    let admissible = |chosen: &[usize], i: usize| {
        let u = &units[i];
        let flops: f64 = chosen.iter().map(|&c| units[c].flops).sum();
        let secs: f64 = chosen.iter().map(|&c| units[c].secs).sum();
        !(same_shape_once && chosen.iter().any(|&c| units[c].shape == u.shape))
            && flops + u.flops <= budget.0
            && secs + u.secs <= budget.1
    };
    simulate::greedy_by_gain(base, &costed, |p| score(p, target, prior, objective), admissible, usize::MAX)
}

/// The baseline a researcher would otherwise buy with the same FLOPs: the grid extended evenly,
/// one unit per size in turn (smallest size first, each size's cheapest remaining unit), until
/// the next one would overspend the proposal's FLOPs.
fn uniform(units: &[Unit], flops_cap: f64, same_shape_once: bool) -> Vec<usize> {
    // Smallest first by the N the law sees (a unit's points carry it, with the sweep's vocab).
    let mut by_n: Vec<(f64, (usize, usize))> =
        units.iter().map(|u| (u.points.first().map_or(0.0, |p| p.0), u.shape)).collect();
    by_n.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut shapes: Vec<(usize, usize)> = by_n.into_iter().map(|x| x.1).collect();
    shapes.dedup();
    let mut chosen: Vec<usize> = Vec::new();
    let mut flops = 0.0;
    loop {
        let before = chosen.len();
        for &s in &shapes {
            if same_shape_once && chosen.iter().any(|&c| units[c].shape == s) {
                continue;
            }
            let next = (0..units.len())
                .filter(|i| units[*i].shape == s && !chosen.contains(i))
                .min_by(|a, b| units[*a].flops.total_cmp(&units[*b].flops));
            if let Some(i) = next {
                if flops + units[i].flops <= flops_cap * 1.0001 {
                    chosen.push(i);
                    flops += units[i].flops;
                }
            }
        }
        if chosen.len() == before {
            return chosen;
        }
    }
}

/// The results root to write in the continuation's command: `run FILE --results ROOT` trains
/// into ROOT/<sweep name>, so that must be `dir` itself. A results folder copied or renamed
/// (`rren/foo` holding sweep `tiny`) is refused: its command would train every run again into
/// `rren/tiny`, and the continuation cannot be renamed `foo` instead (the sweep's name is part
/// of every run id, so all its finished runs would get new ids).
fn results_root(dir: &Path, name: &str) -> Result<std::path::PathBuf> {
    // `.`, `..` or `x/..` name no folder by themselves: the real path does.
    let real = std::fs::canonicalize(dir).map_err(|e| UserError(format!("{}: {e}", dir.display())))?;
    let named = match dir.file_name() {
        Some(n) if dir.components().next_back().is_some_and(|c| matches!(c, std::path::Component::Normal(_))) => {
            Some(n.to_string_lossy().to_string())
        }
        _ => None,
    };
    let folder =
        named.clone().or_else(|| real.file_name().map(|n| n.to_string_lossy().to_string())).unwrap_or_default();
    if folder != name {
        let parent = real.parent().unwrap_or(Path::new("/"));
        return Err(UserError(format!(
            "{} holds sweep `{name}` (its sweep.toml says so), but the folder is named `{folder}`: a continuation is \
             trained with `windtunnel run FILE --results ROOT`, which writes into ROOT/{name}, so it would train every \
             finished run again into {}. Rename the folder to {} and continue that (the sweep's name is part of every \
             run id, so renaming the sweep instead would retrain everything too)",
            dir.display(),
            parent.join(name).display(),
            parent.join(name).display()
        ))
        .into());
    }
    Ok(match (named, dir.parent()) {
        (Some(_), Some(p)) if !p.as_os_str().is_empty() => p.to_path_buf(),
        (Some(_), _) => std::path::PathBuf::from("."),
        (None, _) => real.parent().map_or_else(|| std::path::PathBuf::from("/"), Path::to_path_buf),
    })
}

/// `design --continue DIR`: refit, choose, write; returns the printout.
pub fn design_continue(dir: &Path, args: &ContinueArgs) -> Result<String> {
    let t0 = std::time::Instant::now();
    let sdir = SweepDir::at(dir);
    let sweep_path = sdir.sweep_toml();
    let text = std::fs::read_to_string(&sweep_path).map_err(|e| {
        UserError(format!(
            "{}: {e} (design --continue reads the results folder of a sweep: results/NAME)",
            sweep_path.display()
        ))
    })?;
    let shown = sweep_path.display().to_string();
    // With its file-backed domains' fingerprints: run ids depend on the data's contents.
    let sweep = super::sweep::load_sweep(&sweep_path)?;
    let results = results_root(dir, &sweep.name)?;
    let recipe: toml::Table = text.parse().map_err(|e| UserError(format!("{shown}: {e}")))?;
    let axes = grid_axes(&recipe, &shown)?;
    // Refit on what is finished now (writes runs.parquet, fit.json and the report, as `collect`).
    super::fit::collect_fit_report(&sweep, &sdir)?;
    let fit: crate::fit::FitReport = crate::store::read_json(&sdir.fit_json())?;
    let prior = Prior::from_fit(&fit, &sdir.fit_json().display().to_string())
        .map_err(|e| UserError(format!("{e}: design --continue needs a fitted law; train more of the sweep first")))?;
    let target = args
        .target_flops
        .or(sweep.target.flops)
        .or(fit.target.as_ref().map(|t| t.flops))
        .ok_or_else(|| UserError(format!("{shown} has no [target]; give --target-flops")))?;
    let done_runs: Vec<RunConfig> = runner::finished_runs(&sweep, &sdir).done.into_iter().map(|(_, r)| r).collect();
    let done_ids: BTreeSet<String> = done_runs.iter().map(|r| r.run_id()).collect();
    let done_sweep = Sweep { runs: done_runs.clone(), ..sweep.clone() };
    let done_points = sweep_points(&done_sweep);
    let bw = base_width(&sweep);
    let r0 = sweep.runs.first().context("the sweep has no runs")?;
    let branches = sweep.runs.iter().any(|r| r.branch.is_some());

    // Which cells of the sweep's own grid exist and which are finished: a cell's ids come from
    // parsing it alone, which for independent runs are the ids it has in any grid.
    let own_cells: Vec<((usize, usize), f64)> =
        axes.shapes.iter().flat_map(|&s| axes.values.iter().map(move |&x| (s, x))).collect();
    let all_ids: BTreeSet<String> = sweep.runs.iter().map(|r| r.run_id()).collect();
    let mut kept: BTreeSet<((usize, usize), u64)> = BTreeSet::new();
    let mut units: Vec<Unit> = Vec::new();
    let mut shapes = axes.shapes.clone();
    let extra = if args.shapes.is_empty() { DEFAULT_SHAPES.to_vec() } else { args.shapes.clone() };
    let min_w = axes.shapes.iter().map(|s| s.0).min().unwrap_or(0);
    shapes.extend(extra.into_iter().filter(|s| s.0 >= min_w));
    shapes.sort_by_key(|&(w, d)| crate::flops::params(w, d, r0.vocab));
    shapes.dedup();
    let values = candidate_values(&axes, &args.tpp, &shown)?;
    let unit_of = |shape: (usize, usize), xs: &[f64]| -> Option<(Unit, Vec<String>)> {
        let set: BTreeSet<_> = xs.iter().map(|x| (shape, x.to_bits())).collect();
        let sw = parse_like(&cells_text(&recipe, bw, axes.data, &set, target).ok()?, "candidate", &sweep).ok()?;
        let (flops, secs) = sweep_cost(&sw, args.jobs);
        let ids = sw.runs.iter().map(|r| r.run_id()).collect();
        Some((Unit { shape, values: xs.to_vec(), flops, secs, points: sweep_points(&sw) }, ids))
    };
    let too_short = |s: (usize, usize), tokens: f64| too_short(axes.data, s, tokens, r0.vocab);
    if !branches {
        for &s in &shapes {
            for &x in &values {
                let Some((u, ids)) = unit_of(s, &[x]) else { continue };
                let in_sweep = own_cells.contains(&(s, x)) && ids.iter().all(|i| all_ids.contains(i));
                if in_sweep && ids.iter().any(|i| done_ids.contains(i)) {
                    kept.insert((s, x.to_bits()));
                } else if in_sweep || !too_short(s, x) {
                    units.push(u);
                }
            }
        }
    } else {
        // Families: the sweep's own shapes stay as written (kept when any member is finished,
        // or offered whole when none is); new shapes are offered as windows of 3+ values.
        let max_ratio = super::fit::wsd_families(&sweep).map_or(f64::INFINITY, |f| f.span);
        for &s in &shapes {
            if axes.shapes.contains(&s) {
                // The family as the sweep wrote it: the values whose run (same shape, same
                // tokens) is in the sweep (its excludes may have dropped some).
                let own: Vec<f64> = axes
                    .values
                    .iter()
                    .copied()
                    .filter(|&x| {
                        unit_of(s, &[x]).is_some_and(|(u, _)| {
                            let tokens = u.points.first().map_or(-1.0, |p| p.1);
                            sweep.runs.iter().any(|r| (r.width, r.depth) == s && r.tokens as f64 == tokens)
                        })
                    })
                    .collect();
                if done_runs.iter().any(|r| (r.width, r.depth) == s) {
                    kept.extend(own.iter().map(|x| (s, x.to_bits())));
                } else if let Some((u, _)) = unit_of(s, &own) {
                    units.push(u);
                }
            } else {
                for w in design::windows(&values, |w| w[w.len() - 1] / w[0] <= max_ratio * 0.999 && !too_short(s, w[0]))
                {
                    if let Some((u, _)) = unit_of(s, &w) {
                        units.push(u);
                    }
                }
            }
        }
    }
    let (own_flops, own_secs) = sweep_cost(&sweep, args.jobs);
    // Without a budget: half of what the whole sweep as written costs.
    let budget = (
        args.budget_flops.unwrap_or(if args.budget_hours.is_some() { f64::INFINITY } else { own_flops / 2.0 }),
        args.budget_hours.map_or(f64::INFINITY, |h| h * 3600.0),
    );
    let picked = greedy(&done_points, &units, budget, target, &prior, args.objective, branches);
    if picked.is_empty() {
        bail!(UserError(format!(
            "no run within the budget ({:.3e} FLOPs) narrows the expected interval: raise the budget or allow other \
             shapes (--widths/--depths) or, on a tokens-per-parameter grid, other values (--tpp)",
            budget.0
        )));
    }
    let spent: f64 = picked.iter().map(|&i| units[i].flops).sum();
    let even = uniform(&units, spent, branches);
    let write = |chosen: &[usize], what: &str| -> Result<(Sweep, String)> {
        let mut cells = kept.clone();
        for &i in chosen {
            cells.extend(units[i].values.iter().map(|x| (units[i].shape, x.to_bits())));
        }
        let body = cells_text(&recipe, bw, axes.data, &cells, target)?;
        let sw = parse_like(&body, what, &sweep)?;
        let ids: BTreeSet<String> = sw.runs.iter().map(|r| r.run_id()).collect();
        let lost: Vec<&String> = done_ids.difference(&ids).collect();
        if !lost.is_empty() {
            bail!("the {what} would change the ids of {} finished run(s) (e.g. {}); not written", lost.len(), lost[0]);
        }
        Ok((sw, body))
    };
    let out = args.out.clone().unwrap_or_else(|| dir.join("continue.toml"));
    let (prop_sweep, prop_body) = write(&picked, "proposal")?;
    let (even_sweep, even_body) = write(&even, "uniform extension")?;
    let new_of = |sw: &Sweep| -> Vec<RunConfig> {
        sw.runs.iter().filter(|r| !done_ids.contains(&r.run_id())).cloned().collect()
    };
    let cost_of = |runs: Vec<RunConfig>| sweep_cost(&Sweep { runs, ..sweep.clone() }, args.jobs);
    let (pf, ps) = cost_of(new_of(&prop_sweep));
    let (ef, es) = cost_of(new_of(&even_sweep));
    let sims = args.sims.max(1);
    let sim = |points: &[(f64, f64)]| simulate::simulate(points, target, &prior, sims, SIM_BOOTSTRAP, 0, false);
    let now = sim(&done_points);
    let with_prop = sim(&sweep_points(&prop_sweep));
    let with_even = sim(&sweep_points(&even_sweep));
    let header = |what: &str, p: &Precision, n: usize, f: f64, s: f64| {
        format!(
            "# Continuation of `{}` written by `windtunnel design --continue`: {what}.\n\
             # Its finished runs ({}) keep their ids; the {} new run(s) cost {f:.3e} training FLOPs, about {} with --jobs {}.\n\
             # Expected 95% spreads at C = {target:.3e} FLOPs after training them ({} simulated sweeps, prior: the refit's \
             bootstrap laws): N_opt {:.2}x, loss {:.4}x (now: N_opt {:.2}x, loss {:.4}x).\n\
             # Train with: windtunnel run THIS_FILE --results {}\n\n",
            sweep.name,
            done_ids.len(),
            n,
            plan::hms(s),
            args.jobs,
            sims,
            p.spread("n_opt"),
            p.spread("loss"),
            now.spread("n_opt"),
            now.spread("loss"),
            results.display(),
        )
    };
    let n_prop = new_of(&prop_sweep).len();
    let n_even = new_of(&even_sweep).len();
    let what = "the runs that narrow the interval most per FLOP";
    write_file(&out, &(header(what, &with_prop, n_prop, pf, ps) + &prop_body))?;
    if let Some(u) = &args.uniform_out {
        let what = "a uniform extension with the proposal's FLOPs (the baseline)";
        write_file(u, &(header(what, &with_even, n_even, ef, es) + &even_body))?;
    }
    let mut s = format!(
        "design --continue: {} of {} runs of `{}` finished; refit: {}\n\
         {} candidate unit(s) ({}), budget {:.3e} FLOPs{}; chosen greedily by the linearised drop of the {} spread per FLOP\n\n",
        done_ids.len(),
        sweep.runs.len(),
        sweep.name,
        sdir.fit_json().display(),
        units.len(),
        if branches {
            "WSD families of new shapes, unstarted families".to_string()
        } else {
            format!("one (shape, {}) run each", axes.data.label())
        },
        budget.0,
        args.budget_hours.map_or(String::new(), |h| format!(" and {h} h")),
        match args.objective {
            Objective::Loss => "loss",
            Objective::NOpt => "N_opt",
            Objective::Both => "loss and N_opt",
        },
    );
    s += "| proposed run | N | tokens | FLOPs |\n|---|---|---|---|\n";
    for r in new_of(&prop_sweep) {
        s += &format!(
            "| {}x{} ({}) | {} | {} | {:.3e} |\n",
            r.width,
            r.depth,
            r.run_id(),
            crate::flops::params(r.width, r.depth, r.vocab),
            r.tokens,
            crate::flops::train_flops(r.width, r.depth, r.seq_len, r.vocab, r.tokens) * plan::trained_share(&r)
        );
    }
    // The median spread and, beside it, the 80th percentile: one trained sweep is one draw,
    // and every continuation measured so far trained wider than its simulated median.
    let nopt = |p: &Precision| format!("{:.2}x ({:.2}x)", p.spread("n_opt"), p.spread80("n_opt"));
    s += &format!(
        "\nexpected 95% spreads at the target ({sims} simulated sweeps each, prior: the refit's bootstrap laws and \
         its residual noise; for comparing the options; N_opt: the median, in brackets the 80th percentile):\n\n\
         | | new runs | FLOPs | est. wall | N_opt spread | loss spread |\n|---|---|---|---|---|---|\n\
         | finished runs only | 0 | 0 | 0s | {} | {:.4}x |\n\
         | + proposal | {} | {pf:.3e} | {} | {} | {:.4}x |\n\
         | + uniform extension (same FLOPs, sizes in turn) | {} | {ef:.3e} | {} | {} | {:.4}x |\n\n",
        nopt(&now),
        now.spread("loss"),
        new_of(&prop_sweep).len(),
        plan::hms(ps),
        nopt(&with_prop),
        with_prop.spread("loss"),
        new_of(&even_sweep).len(),
        plan::hms(es),
        nopt(&with_even),
        with_even.spread("loss"),
    );
    s += &hindsight_text(&sweep, &sdir, &fit, target, sims);
    let ids = |sw: &Sweep| sw.runs.iter().map(|r| r.run_id()).collect::<BTreeSet<String>>();
    if ids(&prop_sweep) == ids(&even_sweep) {
        // Few candidates (a sweep of WSD families, a small grid): both choose the same runs, and
        // training both arms would compare a proposal with itself.
        s += "The uniform extension is the same runs as the proposal: there are too few candidates here for the two \
              to differ.\n\n";
    }
    s += &format!("wrote {}", out.display());
    if let Some(u) = &args.uniform_out {
        s += &format!(" and {} (the uniform extension)", u.display());
    }
    s += &format!(
        "; train with `windtunnel run {} --results {}` ({:.1} s; the whole sweep as written costs {own_flops:.3e} FLOPs, {})\n",
        out.display(),
        results.display(),
        t0.elapsed().as_secs_f64(),
        plan::hms(own_secs)
    );
    Ok(s)
}

/// The replay of the simulation on the sweep's own runs (`fit::hindsight`): whether, on this
/// data, the simulation's expected spreads have been kept.
fn hindsight_text(sweep: &Sweep, sdir: &SweepDir, fit: &crate::fit::FitReport, target: f64, sims: usize) -> String {
    let replay = || -> Result<Option<hindsight::Hindsight>> {
        let df = crate::store::frame::read_frame(&sdir.runs_parquet())?;
        let (obs, _) = super::fit::obs_of_frame(&df, &sdir.runs_parquet().display().to_string(), sweep.fit.min_steps)?;
        // The sweep's bootstrap and seed, as its fit.json was fitted; no backtests, curve law or
        // entropy floor, which do not touch N_opt's interval (`simulate::exact_options`).
        let own = super::fit::fit_options(sweep);
        let opts = simulate::exact_options(target, own.bootstrap, own.seed);
        let actual = hindsight::n_opt_spread(fit);
        Ok(hindsight::replay(&obs, &opts, actual, sims, SIM_BOOTSTRAP))
    };
    let h = match replay() {
        Ok(Some(h)) => h,
        Ok(None) => {
            return "hindsight: not replayed (it needs four or more finished model sizes and a law fitted without \
                    the largest)\n\n"
                .into()
        }
        Err(e) => return format!("hindsight: not replayed ({e:#})\n\n"),
    };
    let sizes: Vec<String> = h.held_sizes.iter().map(|n| format!("{n:.0}")).collect();
    // An interval that reaches 0 has no finite spread.
    let x = |v: f64| if v.is_finite() { format!("{v:.2}x") } else { "unbounded".to_string() };
    let mut s = format!(
        "hindsight (the same simulation replayed on this sweep's own runs): fitted without its largest size(s) \
         (N = {}: {} of {} runs), N_opt's spread is {}; the simulation expects adding them back to give {} \
         (four in five simulated sweeps under {}); the fit with them gives {}.\n",
        sizes.join(", "),
        h.held_runs,
        h.held_runs + h.base_runs,
        x(h.before),
        x(h.expected),
        x(h.expected80),
        x(h.actual)
    );
    if h.broke_its_promise() {
        s += &format!(
            "WARNING: on this data the simulation was optimistic ({} its median; its sweeps are drawn from the \
             law's own form, which knows run noise but not the form's misses or offsets that three sizes cannot \
             measure): read the expected spreads above as lower bounds and the comparison of the options as a ranking.\n",
            if h.optimism().is_finite() { format!("{:.1}x", h.optimism()) } else { "unbounded against".to_string() }
        );
    }
    s.push('\n');
    s
}

fn write_file(out: &Path, text: &str) -> Result<()> {
    if let Some(d) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    // Whole or not at all: a crash never leaves half a sweep file.
    let tmp = out.with_extension("toml.tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, out).with_context(|| format!("writing {}", out.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quickstart() -> (toml::Table, Sweep) {
        let text = include_str!("../../sweeps/quickstart.toml");
        (text.parse().unwrap(), crate::spec::parse(text, "quickstart.toml").unwrap())
    }

    /// A results folder copied under another name (`rren/foo` holding sweep `tiny`) would get
    /// a command training every run again into `rren/tiny`: refused, naming both.
    #[test]
    fn a_results_folder_under_another_name_is_refused() {
        let root = std::env::temp_dir().join(format!("wt-continue-name-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for d in ["rren/foo", "rren/tiny"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        let e = results_root(&root.join("rren/foo"), "tiny").unwrap_err();
        let msg = e.to_string();
        assert!(e.downcast_ref::<UserError>().is_some(), "{msg}");
        assert!(msg.contains("holds sweep `tiny`") && msg.contains("named `foo`"), "{msg}");
        assert!(msg.contains(&root.join("rren/tiny").display().to_string()), "{msg}");
        assert_eq!(results_root(&root.join("rren/tiny"), "tiny").unwrap(), root.join("rren"));
        // A path ending in `..` names the folder it resolves to.
        let up = root.join("rren/tiny/sub");
        std::fs::create_dir_all(&up).unwrap();
        assert_eq!(results_root(&up.join(".."), "tiny").unwrap(), std::fs::canonicalize(root.join("rren")).unwrap());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn grid_axes_reads_zipped_shapes_and_either_data_axis() {
        let (t, _) = quickstart();
        let a = grid_axes(&t, "q.toml").unwrap();
        assert_eq!(a.shapes, vec![(16, 1), (32, 1), (32, 2), (48, 2), (64, 2), (80, 2), (96, 2)]);
        assert_eq!((a.data, a.values), (DataAxis::TokensPerParam, vec![2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0]));
        let r: toml::Table = include_str!("../../sweeps/realtext.toml").parse().unwrap();
        let a = grid_axes(&r, "r.toml").unwrap();
        assert_eq!(a.shapes, vec![(32, 1), (32, 2), (48, 2), (64, 2), (80, 2), (96, 2)]);
        assert_eq!((a.data, a.values), (DataAxis::Tokens, vec![5e5, 1e6, 2e6, 4e6, 8e6, 16e6]));
        let mut both = t.clone();
        both["grid"].as_table_mut().unwrap().insert("tokens".into(), vec![1000_i64].into());
        let e = grid_axes(&both, "q.toml").unwrap_err().to_string();
        assert!(e.contains("q.toml") && e.contains("both `tokens_per_param` and `tokens`"), "{e}");
    }

    /// On a token-count grid with WSD families (realtext), a continuation file keeps every
    /// finished run's id, whatever cells it drops or adds: the recipe's excludes over width and
    /// tokens are replaced by exact ones, a new shape's family is its own, and the file-backed
    /// domains keep the sweep's fingerprints.
    #[test]
    fn a_tokens_grid_keeps_its_ids_in_a_continuation() {
        let text = include_str!("../../sweeps/realtext.toml");
        let t: toml::Table = text.parse().unwrap();
        let mut sweep = crate::spec::parse(text, "realtext.toml").unwrap();
        // As `stamp` leaves them (run ids depend on the files' contents): a continuation must
        // carry the same fingerprints, or no finished run keeps its id.
        for r in &mut sweep.runs {
            for d in &mut r.domains {
                d.fingerprint = Some(format!("{}-contents", d.name));
            }
        }
        let axes = grid_axes(&t, "realtext.toml").unwrap();
        let mut cells: BTreeSet<((usize, usize), u64)> = BTreeSet::new();
        for r in &sweep.runs {
            cells.insert(((r.width, r.depth), (r.tokens as f64).to_bits()));
        }
        let n_own = cells.len();
        assert_eq!(n_own, sweep.runs.len());
        for x in [1e6, 2e6, 4e6] {
            cells.insert(((128, 3), f64::to_bits(x)));
        }
        let body = cells_text(&t, base_width(&sweep), axes.data, &cells, 1e16).unwrap();
        assert!(body.contains("tokens = [") && !body.contains("tokens_per_param"), "{body}");
        let sw = parse_like(&body, "continuation", &sweep).unwrap();
        assert_eq!(sw.runs.len(), n_own + 3);
        for r in &sweep.runs {
            assert!(sw.runs.iter().any(|o| o.run_id() == r.run_id()), "{} lost its id", r.run_id());
        }
        let new: Vec<&RunConfig> = sw.runs.iter().filter(|r| r.width == 128).collect();
        assert_eq!(new.len(), 3);
        assert!(new.iter().all(|r| r.depth == 3 && r.branch.is_some()));
        // New families may span the recipe's (1 - 0.2) / 0.02 = 40x (the trunk's warmup is
        // rounded to whole steps), whichever run comes first (the first is a short branch, whose
        // rescaled warmup would allow 1.25x: no new family at all).
        assert!(sweep.runs[0].branch.as_ref().is_some_and(|b| b.from.is_some()));
        let span = super::super::fit::wsd_families(&sweep).unwrap().span;
        assert!((span / 40.0 - 1.0).abs() < 0.01, "{span}");
        // A new 128x2 (N 427k) at 0.5M tokens is under 2.5 tokens per parameter, at 2M it is not.
        assert!(too_short(axes.data, (128, 2), 5e5, 256) && !too_short(axes.data, (128, 2), 2e6, 256));
        assert!(!too_short(DataAxis::TokensPerParam, (128, 2), 5e5, 256));
        // Its candidate counts: its own and 2x and 4x the largest; --tpp is refused, by name.
        assert_eq!(candidate_values(&axes, &[], "r.toml").unwrap(), vec![5e5, 1e6, 2e6, 4e6, 8e6, 16e6, 32e6, 64e6]);
        let e = candidate_values(&axes, &[10.0], "r.toml").unwrap_err().to_string();
        assert!(e.contains("r.toml") && e.contains("--tpp does not apply"), "{e}");
    }

    /// A continuation file holds exactly its cells, whatever the recipe excluded (the
    /// quickstart excludes 80x2 at 20 tokens per parameter; a cell may bring it back), and a
    /// cell keeps the run id it has in the original sweep.
    #[test]
    fn cells_text_writes_exactly_the_cells_and_keeps_ids() {
        let (t, sweep) = quickstart();
        let cells: BTreeSet<_> =
            [((16, 1), 5.0_f64), ((80, 2), 20.0), ((48, 2), 10.0)].into_iter().map(|(s, x)| (s, x.to_bits())).collect();
        let sw = parse(&cells_text(&t, base_width(&sweep), DataAxis::TokensPerParam, &cells, 1e15).unwrap(), "cells")
            .unwrap();
        let mut got: Vec<(usize, usize)> = sw.runs.iter().map(|r| (r.width, r.depth)).collect();
        got.sort();
        assert_eq!(got, vec![(16, 1), (48, 2), (80, 2)]);
        for r in sw.runs.iter().filter(|r| r.width != 80) {
            assert!(sweep.runs.iter().any(|o| o.run_id() == r.run_id()), "{} lost its id", r.run_id());
        }
        assert_eq!(sw.target.flops, Some(1e15));
    }

    /// The greedy choice stays within the budget and narrows the linearised spread; the
    /// uniform baseline spends no more than the cap it is given.
    #[test]
    fn greedy_stays_in_budget_and_narrows_the_spread() {
        let (t, sweep) = quickstart();
        let bw = base_width(&sweep);
        let prior = Prior::quickstart();
        let done: Vec<RunConfig> = sweep.runs.iter().filter(|r| r.width <= 32).cloned().collect();
        let base = sweep_points(&Sweep { runs: done, ..sweep.clone() });
        let mut units = Vec::new();
        for s in [(48, 2), (64, 2), (80, 2), (96, 3)] {
            for x in [5.0, 20.0, 80.0] {
                let set: BTreeSet<_> = [(s, f64::to_bits(x))].into_iter().collect();
                let sw = parse(&cells_text(&t, bw, DataAxis::TokensPerParam, &set, 1e15).unwrap(), "unit").unwrap();
                let (flops, secs) = sweep_cost(&sw, 2);
                units.push(Unit { shape: s, values: vec![x], flops, secs, points: sweep_points(&sw) });
            }
        }
        let budget = units.iter().map(|u| u.flops).sum::<f64>() / 4.0;
        let picked = greedy(&base, &units, (budget, f64::INFINITY), 1e15, &prior, Objective::NOpt, false);
        assert!(!picked.is_empty());
        let spent: f64 = picked.iter().map(|&i| units[i].flops).sum();
        assert!(spent <= budget, "{spent:e} > {budget:e}");
        let mut after = base.clone();
        picked.iter().for_each(|&i| after.extend(&units[i].points));
        let (s0, s1) = (score(&base, 1e15, &prior, Objective::NOpt), score(&after, 1e15, &prior, Objective::NOpt));
        assert!(s1 < s0, "{s1} !< {s0}");
        let even = uniform(&units, spent, false);
        assert!(even.iter().map(|&i| units[i].flops).sum::<f64>() <= spent * 1.0001);
    }
}
