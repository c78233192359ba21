//! The [grid] table: validates each axis, the zip groups and the exclude entries, and
//! enumerates the grid points in a fixed, documented order. Axes are ordered width, depth,
//! tokens_per_param | tokens, batch_size, lr, mix, seq_len (outermost first, seq_len varies
//! fastest; it came last so that grids without it kept their order); a
//! zip group advances together at the position of its earliest member. The order is part of
//! the format: it fixes `Sweep.runs` and therefore what "the first run" means everywhere.

use super::diag::{Ctx, Res};
use super::raw::*;
use std::collections::BTreeMap;
use std::ops::Bound::{Excluded, Included, Unbounded};
use std::ops::Range;

/// Training length of a point: a multiple of N, or a token count.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Amount {
    TokensPerParam(f64),
    Tokens(u64),
}

/// One grid point before the shared settings are applied.
#[derive(Clone, Debug)]
pub struct Point {
    pub width: usize,
    pub depth: usize,
    pub amount: Amount,
    pub batch_size: usize,
    pub lr: f64,
    pub mix: BTreeMap<String, f64>,
    pub seq_len: usize,
    /// "width=32, depth=2, ..." for messages.
    pub label: String,
}

/// A validated axis: its values with their spans. Mix values are indices into `mixes`.
struct Axis {
    name: &'static str,
    values: Vec<(f64, Range<usize>)>,
    /// Whether the file gave it (batch_size and mix have defaults).
    given: bool,
}

/// A guard against a typo turning into millions of runs (and an endless expansion).
const MAX_POINTS: usize = 100_000;

/// Exclude entries compare numbers with this relative tolerance (lr values are floats).
const REL_TOL: f64 = 1e-6;

/// The grid points in grid order, after zip and exclude; `batch` and `seq_len` are the
/// defaults of those axes.
pub fn points(
    raw: RawGrid,
    sources: &[&str],
    batch: usize,
    seq_len: usize,
    head_dim: usize,
    ctx: &Ctx,
) -> Res<Vec<Point>> {
    let width = int_axis(&raw.width, "width", 1 << 16, ctx)?;
    for (i, (w, span)) in width.values.iter().enumerate() {
        if !(*w as usize).is_multiple_of(head_dim) {
            let msg = format!("width {w} is not a multiple of model.head_dim = {head_dim}");
            return Err(ctx.err(span.clone(), &format!("grid.width[{i}]"), &msg));
        }
    }
    let depth = int_axis(&raw.depth, "depth", 1 << 12, ctx)?;
    let amount = amount_axis(&raw, ctx)?;
    let batch = match raw.batch_size {
        Some(_) => int_axis(&raw.batch_size, "batch_size", 1 << 20, ctx)?,
        None => Axis { name: "batch_size", values: vec![(batch as f64, 0..0)], given: false },
    };
    let lr = lr_axis(&raw.lr, ctx)?;
    let (mix, mixes) = mix_axis(&raw.mix, sources, ctx)?;
    let seq = match raw.seq_len {
        Some(_) => int_axis(&raw.seq_len, "seq_len", 1 << 20, ctx)?,
        None => Axis { name: "seq_len", values: vec![(seq_len as f64, 0..0)], given: false },
    };
    let axes = [width, depth, amount, batch, lr, mix, seq];
    let units = zip_units(&raw.zip, &axes, ctx)?;
    let excludes = excludes(&raw.exclude, &axes, ctx)?;
    enumerate(&axes, &units, &excludes, &mixes, ctx)
}

fn missing(key: &str, ctx: &Ctx) -> super::diag::SpecError {
    ctx.err_key("grid", &format!("grid.{key}"), &format!("missing required axis `{key}`"))
}

fn nonempty<T>(list: &S<Vec<T>>, key: &str, ctx: &Ctx) -> Res<()> {
    if list.get_ref().is_empty() {
        let msg = "must list at least one value";
        return Err(ctx.err(list.span(), &format!("grid.{key}"), msg));
    }
    Ok(())
}

fn int_axis(raw: &Option<S<Vec<S<i64>>>>, key: &'static str, max: i64, ctx: &Ctx) -> Res<Axis> {
    let list = raw.as_ref().ok_or_else(|| missing(key, ctx))?;
    nonempty(list, key, ctx)?;
    let mut values = Vec::new();
    for (i, v) in list.get_ref().iter().enumerate() {
        let x = ctx.int(v, &format!("grid.{key}[{i}]"), 1, max)?;
        values.push((x as f64, v.span()));
    }
    Ok(Axis { name: key, values, given: true })
}

fn float_axis(list: &S<Vec<S<f64>>>, key: &'static str, max: f64, ctx: &Ctx) -> Res<Axis> {
    nonempty(list, key, ctx)?;
    let mut values = Vec::new();
    for (i, v) in list.get_ref().iter().enumerate() {
        let x = ctx.float(v, &format!("grid.{key}[{i}]"), (Excluded(0.0), Included(max)))?;
        if key == "tokens" && x.fract() != 0.0 {
            let msg = format!("must be a whole number of tokens, got {x}");
            return Err(ctx.err(v.span(), &format!("grid.tokens[{i}]"), &msg));
        }
        values.push((x, v.span()));
    }
    Ok(Axis { name: key, values, given: true })
}

/// The most tokens per parameter a run may have (500x Chinchilla's 20).
pub const MAX_TOKENS_PER_PARAM: f64 = 1e4;
/// The most training tokens a run may have (a thousand times a large run's today).
pub const MAX_TOKENS: f64 = 1e15;

/// Exactly one of tokens_per_param and tokens.
fn amount_axis(raw: &RawGrid, ctx: &Ctx) -> Res<Axis> {
    match (&raw.tokens_per_param, &raw.tokens) {
        (Some(tpp), None) => float_axis(tpp, "tokens_per_param", MAX_TOKENS_PER_PARAM, ctx),
        (None, Some(tokens)) => float_axis(tokens, "tokens", MAX_TOKENS, ctx),
        (Some(a), Some(b)) => {
            let (span, key) =
                if a.span().start > b.span().start { (a.span(), "tokens_per_param") } else { (b.span(), "tokens") };
            let msg = "give exactly one of grid.tokens_per_param and grid.tokens, not both";
            Err(ctx.err(span, &format!("grid.{key}"), msg))
        }
        (None, None) => {
            let msg = "missing training length: give tokens_per_param = [...] or tokens = [...]";
            Err(ctx.err_key("grid", "grid.tokens_per_param", msg))
        }
    }
}

/// A list of learning rates, or `{ log_range = [lo, hi], num = n }`.
fn lr_axis(raw: &Option<S<RawLr>>, ctx: &Ctx) -> Res<Axis> {
    let lr = raw.as_ref().ok_or_else(|| missing("lr", ctx))?;
    let range = match lr.get_ref() {
        ListOr::List(list) => {
            let list = S::new(lr.span(), list.clone());
            return float_axis(&list, "lr", 1.0, ctx);
        }
        ListOr::Table(r) => r,
    };
    let need = |k: &str| ctx.err(lr.span(), &format!("grid.lr.{k}"), &format!("missing `{k}`"));
    let bounds = range.log_range.as_ref().ok_or_else(|| need("log_range"))?;
    let num = range.num.as_ref().ok_or_else(|| need("num"))?;
    let num = ctx.int(num, "grid.lr.num", 2, 10_000)? as usize;
    let [lo, hi] = bounds.get_ref().as_slice() else {
        let msg = format!("expected [lo, hi], got {} values", bounds.get_ref().len());
        return Err(ctx.err(bounds.span(), "grid.lr.log_range", &msg));
    };
    let lo_v = ctx.float(lo, "grid.lr.log_range[0]", (Excluded(0.0), Excluded(1.0)))?;
    let hi_v = ctx.float(hi, "grid.lr.log_range[1]", (Excluded(lo_v), Included(1.0)))?;
    let step = (hi_v / lo_v).ln() / (num - 1) as f64;
    let values = (0..num).map(|i| ((lo_v.ln() + step * i as f64).exp(), lr.span()));
    Ok(Axis { name: "lr", values: values.collect(), given: true })
}

/// Mixtures normalised to sum 1 over all sources (absent ones 0); default uniform.
fn mix_axis(raw: &Option<S<RawMix>>, sources: &[&str], ctx: &Ctx) -> Res<(Axis, Vec<BTreeMap<String, f64>>)> {
    let Some(raw) = raw else {
        let axis = Axis { name: "mix", values: vec![(0.0, 0..0)], given: false };
        return Ok((axis, vec![uniform(sources)]));
    };
    let list = match raw.get_ref() {
        ListOr::List(list) => list,
        ListOr::Table(s) => {
            let mixes = sampled_mixes(s, sources, ctx)?;
            let values = (0..mixes.len()).map(|i| (i as f64, raw.span())).collect();
            return Ok((Axis { name: "mix", values, given: true }, mixes));
        }
    };
    if list.is_empty() {
        return Err(ctx.err_key("grid.mix", "grid.mix", "must list at least one mixture"));
    }
    let mut mixes = Vec::new();
    for (i, entry) in list.iter().enumerate() {
        mixes.push(mixture(entry, &format!("grid.mix[{i}]"), sources, ctx)?);
    }
    let values = list.iter().enumerate().map(|(i, e)| (i as f64, e.span())).collect();
    Ok((Axis { name: "mix", values, given: true }, mixes))
}

fn uniform(sources: &[&str]) -> BTreeMap<String, f64> {
    sources.iter().map(|s| (s.to_string(), 1.0 / sources.len() as f64)).collect()
}

/// `{ dirichlet = alpha, count = n, seed, corners }`: n draws from a symmetric Dirichlet, a pure
/// function of the seed (weights rounded to 4 decimals so run ids do not hang on the last bit),
/// optionally after the corners (each single source, then uniform).
fn sampled_mixes(s: &RawMixSample, sources: &[&str], ctx: &Ctx) -> Res<Vec<BTreeMap<String, f64>>> {
    let missing = |k: &str| ctx.err_key("grid.mix", &format!("grid.mix.{k}"), &format!("missing `{k}`"));
    let alpha = ctx.float(
        s.dirichlet.as_ref().ok_or_else(|| missing("dirichlet"))?,
        "grid.mix.dirichlet",
        (Excluded(0.0), Included(1e3)),
    )?;
    let count = ctx.int(s.count.as_ref().ok_or_else(|| missing("count"))?, "grid.mix.count", 1, 10_000)? as usize;
    let seed = s.seed.as_ref().map_or(Ok(0), |v| ctx.int(v, "grid.mix.seed", 0, i64::MAX))? as u64;
    let mut mixes = Vec::new();
    let corners = s.corners.as_ref().is_some_and(|c| *c.get_ref());
    if corners {
        for src in sources {
            mixes.push(sources.iter().map(|t| (t.to_string(), if t == src { 1.0 } else { 0.0 })).collect());
        }
        mixes.push(uniform(sources));
    }
    let mut rng = crate::rng::Rng::keyed(&[seed, 0x6d_6978]);
    let wanted = count + if corners { sources.len() + 1 } else { 0 };
    let mut tries = 0;
    while mixes.len() < wanted {
        tries += 1;
        if tries > 100 * wanted {
            let msg = format!("cannot draw {count} distinct mixtures over {} source(s)", sources.len());
            return Err(ctx.err_key("grid.mix", "grid.mix.count", &msg));
        }
        let g: Vec<f64> = sources.iter().map(|_| rng.gamma(alpha).max(1e-12)).collect();
        let total: f64 = g.iter().sum();
        let mut w: Vec<f64> = g.iter().map(|x| (x / total * 1e4).round() / 1e4).collect();
        let t: f64 = w.iter().sum();
        if t <= 0.0 {
            continue;
        }
        w.iter_mut().for_each(|x| *x /= t);
        let m: BTreeMap<String, f64> = sources.iter().map(|s| s.to_string()).zip(w).collect();
        // A repeated draw (possible after rounding with a tiny alpha) would be a duplicate run.
        if !mixes.contains(&m) {
            mixes.push(m);
        }
    }
    Ok(mixes)
}

pub(super) fn mixture(entry: &SpannedMap<f64>, field: &str, sources: &[&str], ctx: &Ctx) -> Res<BTreeMap<String, f64>> {
    let mut mix: BTreeMap<String, f64> = sources.iter().map(|s| (s.to_string(), 0.0)).collect();
    for (key, w) in entry.get_ref() {
        let at = format!("{field}.{}", key.get_ref());
        let Some(slot) = mix.get_mut(key.get_ref().as_str()) else {
            let msg = format!("\"{}\" is not a data source; sources: {}", key.get_ref(), sources.join(", "));
            return Err(ctx.err(key.span(), &at, &msg));
        };
        *slot = ctx.float(w, &at, (Included(0.0), Unbounded))?;
    }
    let total: f64 = mix.values().sum();
    if total <= 0.0 {
        return Err(ctx.err(entry.span(), field, "mixture weights are all zero"));
    }
    mix.values_mut().for_each(|w| *w /= total);
    Ok(mix)
}

/// Groups of axis indices that advance together, in grid order; singletons for the rest.
fn zip_units(raw: &Option<Vec<S<Vec<S<String>>>>>, axes: &[Axis], ctx: &Ctx) -> Res<Vec<Vec<usize>>> {
    let mut group_of: Vec<Option<usize>> = vec![None; axes.len()];
    for (g, group) in raw.iter().flatten().enumerate() {
        let mut first: Option<usize> = None;
        for (k, name) in group.get_ref().iter().enumerate() {
            let field = format!("grid.zip[{g}][{k}]");
            let found = axes.iter().position(|a| a.given && a.name == name.get_ref());
            let Some(a) = found else {
                let msg = format!("\"{}\" is not an axis of this grid", name.get_ref());
                return Err(ctx.err(name.span(), &field, &msg));
            };
            if group_of[a].is_some() {
                let msg = format!("axis \"{}\" is already zipped", axes[a].name);
                return Err(ctx.err(name.span(), &field, &msg));
            }
            if let Some(f) = first.filter(|&f| axes[f].values.len() != axes[a].values.len()) {
                let (n1, l1) = (axes[f].name, axes[f].values.len());
                let (n2, l2) = (axes[a].name, axes[a].values.len());
                let msg = format!("zipped axes `{n1}` ({l1} values) and `{n2}` ({l2} values) must have equal lengths");
                return Err(ctx.err(name.span(), &field, &msg));
            }
            first = first.or(Some(a));
            group_of[a] = Some(g);
        }
    }
    let mut units: Vec<Vec<usize>> = Vec::new();
    for a in 0..axes.len() {
        match group_of[a] {
            None => units.push(vec![a]),
            Some(g) if !units.iter().any(|u| group_of[u[0]] == Some(g)) => {
                units.push((a..axes.len()).filter(|&b| group_of[b] == Some(g)).collect())
            }
            Some(_) => {}
        }
    }
    Ok(units)
}

/// One exclude entry: (axis index, value) pairs, its span and field.
type Exclude = (Vec<(usize, f64)>, Range<usize>, String);

fn excludes(raw: &Option<Vec<SpannedMap<toml::Value>>>, axes: &[Axis], ctx: &Ctx) -> Res<Vec<Exclude>> {
    let mut out = Vec::new();
    for (i, entry) in raw.iter().flatten().enumerate() {
        let field = format!("grid.exclude[{i}]");
        if entry.get_ref().is_empty() {
            return Err(ctx.err(entry.span(), &field, "an empty entry would exclude every point"));
        }
        let mut conds = Vec::new();
        for (key, value) in entry.get_ref() {
            let at = format!("{field}.{}", key.get_ref());
            let found = axes.iter().position(|a| a.given && a.name == key.get_ref() && a.name != "mix");
            let Some(a) = found else {
                let msg = format!("\"{}\" is not a numeric axis of this grid", key.get_ref());
                return Err(ctx.err(key.span(), &at, &msg));
            };
            let x = match value.get_ref() {
                toml::Value::Integer(x) => *x as f64,
                toml::Value::Float(x) => *x,
                other => {
                    let msg = format!("expected a number, got {}", other.type_str());
                    return Err(ctx.err(value.span(), &at, &msg));
                }
            };
            conds.push((a, x));
        }
        out.push((conds, entry.span(), field));
    }
    Ok(out)
}

fn same(a: f64, b: f64) -> bool {
    (a - b).abs() <= REL_TOL * a.abs().max(b.abs())
}

/// Odometer over the units (last unit fastest), dropping excluded points.
fn enumerate(
    axes: &[Axis],
    units: &[Vec<usize>],
    excludes: &[Exclude],
    mixes: &[BTreeMap<String, f64>],
    ctx: &Ctx,
) -> Res<Vec<Point>> {
    let lens: Vec<usize> = units.iter().map(|u| axes[u[0]].values.len()).collect();
    let total = lens.iter().try_fold(1usize, |t, &l| t.checked_mul(l)).unwrap_or(usize::MAX);
    if total > MAX_POINTS {
        let msg = format!("the grid has {total} points; at most {MAX_POINTS} are allowed");
        return Err(ctx.err_key("grid", "grid", &msg));
    }
    let mut used = vec![false; excludes.len()];
    let mut points = Vec::new();
    for mut n in 0..total {
        let mut idx = vec![0; axes.len()];
        for (u, len) in units.iter().zip(&lens).rev() {
            u.iter().for_each(|&a| idx[a] = n % len);
            n /= len;
        }
        let val = |a: usize| axes[a].values[idx[a]].0;
        let mut excluded = false;
        for (e, (conds, _, _)) in excludes.iter().enumerate() {
            if conds.iter().all(|&(a, x)| same(val(a), x)) {
                (used[e], excluded) = (true, true);
            }
        }
        if !excluded {
            points.push(point(axes, &idx, mixes));
        }
    }
    if let Some(e) = used.iter().position(|u| !u) {
        let (_, span, field) = &excludes[e];
        return Err(ctx.err(span.clone(), field, "matches no grid point (check the values)"));
    }
    if points.is_empty() {
        return Err(ctx.err_key("grid", "grid", "every grid point is excluded"));
    }
    Ok(points)
}

fn point(axes: &[Axis], idx: &[usize], mixes: &[BTreeMap<String, f64>]) -> Point {
    let val = |a: usize| axes[a].values[idx[a]].0;
    let amount = match axes[2].name {
        "tokens" => Amount::Tokens(val(2) as u64),
        _ => Amount::TokensPerParam(val(2)),
    };
    let label = (0..axes.len())
        .filter(|&a| axes[a].given)
        .map(|a| match axes[a].name {
            "mix" => format!("mix=grid.mix[{}]", idx[a]),
            name => format!("{name}={}", val(a)),
        })
        .collect::<Vec<_>>()
        .join(", ");
    Point {
        width: val(0) as usize,
        depth: val(1) as usize,
        amount,
        batch_size: val(3) as usize,
        lr: val(4),
        mix: mixes[idx[5]].clone(),
        seq_len: val(6) as usize,
        label,
    }
}
