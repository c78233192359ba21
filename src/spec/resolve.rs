//! Turns a `RawFile` into a validated `Sweep`: applies defaults, checks every value of the
//! shared sections ([sweep], [data], [model], [train], [target], [fit]) against what the
//! trainer and fitter can use, asks `grid` for the grid points and builds one `RunConfig` per
//! point. Every rejection is a positioned `SpecError`; nothing invalid reaches a RunConfig.

use super::config::*;
use super::diag::{Ctx, Res};
use super::grid::{self, Amount, Point};
use super::raw::*;
use crate::fit::LawName;
use std::collections::HashMap;
use std::ops::Bound::{self, Excluded, Included, Unbounded};

/// The byte-level tokenizer's vocabulary.
pub const VOCAB: usize = 256;
/// Bounds that keep parameter and token arithmetic far from u64 overflow.
const MAX_SEQ: i64 = 1 << 20;
/// Longest path of a data source or tokenizer (Linux's PATH_MAX): a longer one cannot be
/// opened, and would be echoed whole in that error.
const MAX_PATH: usize = 4096;
/// Longest sweep name: it is a directory name (255 bytes on most filesystems, with room for
/// the `-mixcheck` sibling) and the Slurm job name `wt-<name>-merge` shown in squeue.
const MAX_NAME: usize = 64;
/// AdamW's decoupled weight decay shrinks every weight by a factor 1 - lr * weight_decay per
/// step; with lr <= 1 (the grid's bound), weight_decay <= 1 keeps that factor in [0, 1).
/// A larger value flips or zeroes the weights (1e12 is the decay of the "independent"
/// convention, wd / lr, written where the coupled one is expected, or a typo).
const WEIGHT_DECAY: Bounds = (Included(0.0), Included(1.0));
/// Largest target compute: 1e35 FLOPs is eight orders of magnitude beyond today's largest
/// training runs (~1e27); anything above is a typo, not a plan.
pub const MAX_TARGET_FLOPS: f64 = 1e35;
/// Largest target model: 1e18 parameters, six orders of magnitude beyond today's largest.
pub const MAX_TARGET_PARAMS: f64 = 1e18;

type Bounds = (Bound<f64>, Bound<f64>);
const POS: Bounds = (Excluded(0.0), Unbounded);
const NONNEG: Bounds = (Included(0.0), Unbounded);
const FRAC: Bounds = (Included(0.0), Included(1.0));
const BETA: Bounds = (Included(0.0), Excluded(1.0));

/// Model settings shared by all runs; μP's base width defaults to the grid's smallest width.
struct Model {
    seq_len: usize,
    head_dim: usize,
    mup: Option<(Option<usize>, f64, f64, f64)>,
    sp_init_std: f64,
}

/// [train] settings shared by all runs.
struct Train {
    batch_size: usize,
    schedule: Schedule,
    weight_decay: f64,
    betas: (f64, f64),
    grad_clip: f64,
    micro_batch: Option<usize>,
    wsd_branches: bool,
    eval_every: u64,
    eval_tokens: u64,
}

pub fn resolve(raw: RawFile, ctx: &Ctx) -> Res<Sweep> {
    let (name, seed, backend) = sweep_section(raw.sweep, ctx)?;
    let (domains, data) = data_section(raw.data, ctx)?;
    let model = model_section(raw.model, ctx)?;
    let train = train_section(raw.train, model.seq_len, ctx)?;
    let msg = "missing required table [grid] (width, depth, lr and tokens_per_param or tokens)";
    let raw_grid = raw.grid.ok_or_else(|| ctx.err_key("grid", "grid", msg))?;
    let names: Vec<&str> = domains.iter().map(|d| d.name.as_str()).collect();
    let points = grid::points(raw_grid, &names, train.batch_size, model.seq_len, model.head_dim, ctx)?;
    if let Some(p) = points.iter().find(|p| (train.eval_tokens as usize) < p.seq_len + 1) {
        let msg = format!(
            "train.eval_tokens = {} is below seq_len + 1 = {} of grid point ({}): one validation window must fit",
            train.eval_tokens,
            p.seq_len + 1,
            p.label
        );
        return Err(ctx.err_key("grid", "grid.seq_len", &msg));
    }
    let fit = fit_section(raw.fit, &names, ctx)?;
    // A tokenizer.json's vocabulary is read by `data::prepare::stamp`, which sets it per run.
    let vocab = data.vocab.unwrap_or(VOCAB);
    let base = RunBase { sweep: &name, seed, vocab, domains: &domains, model: &model, train: &train };
    let mut runs = build_runs(&points, &base, ctx)?;
    let smallest = runs
        .iter()
        .map(|r| crate::flops::train_flops(r.width, r.depth, r.seq_len, r.vocab, r.tokens))
        .fold(f64::INFINITY, f64::min);
    let target = target_section(raw.target, smallest, ctx)?;
    if train.wsd_branches {
        branch_families(&mut runs, ctx)?;
    }
    let path = ctx.path.to_string();
    Ok(Sweep { name, path, backend, runs, target, fit, data })
}

/// Groups runs that differ only in tokens into WSD branch families: the longest is the trunk;
/// every member's warmup becomes the trunk's (in steps), and each member leaves the trunk where
/// its own decay starts.
fn branch_families(runs: &mut [RunConfig], ctx: &Ctx) -> Res<()> {
    let key = |r: &RunConfig| {
        let mut k = r.clone();
        (k.tokens, k.steps, k.eval_every) = (0, 0, 0);
        if let Schedule::Wsd { warmup, .. } = &mut k.schedule {
            *warmup = 0.0;
        }
        blake3::hash(&serde_json::to_vec(&k).expect("RunConfig serialises")).to_hex()[..16].to_string()
    };
    let mut families: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, r) in runs.iter().enumerate() {
        families.entry(key(r)).or_default().push(i);
    }
    for (family, members) in families {
        let trunk = *members.iter().max_by_key(|&&i| runs[i].steps).expect("families are not empty");
        let Schedule::Wsd { warmup, decay, decay_shape } = runs[trunk].schedule.clone() else { continue };
        let warmup_steps = (warmup * runs[trunk].steps as f64).round();
        let mut snapshots = Vec::new();
        for &i in &members {
            let r = &mut runs[i];
            let from = r.steps - (decay * r.steps as f64).round() as u64;
            if (from as f64) < warmup_steps {
                let msg = format!(
                    "a run of {} steps decays from step {from}, before the family's warmup ends ({warmup_steps} steps \
                     of its longest run); lower the warmup or drop the shortest token counts",
                    r.steps
                );
                return Err(ctx.err_key("train.wsd_branches", "train.wsd_branches", &msg));
            }
            // The member's warmup fraction that gives the trunk's warmup steps exactly.
            r.schedule =
                Schedule::Wsd { warmup: warmup_steps / r.steps as f64, decay, decay_shape: decay_shape.clone() };
            if i != trunk {
                snapshots.push(from);
            }
            r.branch =
                Some(Branch { family: family.clone(), from: (i != trunk).then_some(from), snapshots: Vec::new() });
        }
        snapshots.sort_unstable();
        snapshots.dedup();
        if let Some(b) = runs[trunk].branch.as_mut() {
            b.snapshots = snapshots;
        }
    }
    Ok(())
}

fn sweep_section(raw: Option<RawSweep>, ctx: &Ctx) -> Res<(String, u64, Backend)> {
    let msg = "missing required table [sweep] with name = \"...\"";
    let s = raw.ok_or_else(|| ctx.err_key("sweep", "sweep", msg))?;
    let msg = "missing required key `name` in [sweep]";
    let name = s.name.ok_or_else(|| ctx.err_key("sweep", "sweep.name", msg))?;
    // The name becomes a directory (results/<name>), a Slurm job name (wt-<name>) and a word
    // in generated scripts and commands: a plain word that cannot read as an option.
    let ok = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    let n = name.get_ref();
    let problem = if n.is_empty() || !n.chars().all(ok) {
        Some("must match [A-Za-z0-9_-]+ (it becomes a directory name and a Slurm job name)".to_string())
    } else if n.starts_with('-') {
        Some("must not start with `-` (a directory or job name that reads as a command-line option)".to_string())
    } else if n.len() > MAX_NAME {
        Some(format!("must have at most {MAX_NAME} characters, got {} (it becomes a directory and job name)", n.len()))
    } else {
        None
    };
    if let Some(msg) = problem {
        return Err(ctx.err(name.span(), "sweep.name", &msg));
    }
    let seed = s.seed.map_or(Ok(0), |v| ctx.int(&v, "sweep.seed", 0, i64::MAX))? as u64;
    let backend = match &s.backend {
        Some(v) => match ctx.choice(v, "sweep.backend", &["cpu", "cuda"])? {
            "cuda" => Backend::Cuda,
            _ => Backend::Cpu,
        },
        None => Backend::Cpu,
    };
    Ok((name.into_inner(), seed, backend))
}

fn data_section(raw: Option<RawData>, ctx: &Ctx) -> Res<(Vec<DomainConfig>, DataSpec)> {
    let msg = "missing required [[data.source]] tables (name = \"...\", kind = \"builtin:...\")";
    let d = raw.ok_or_else(|| ctx.err_key("data", "data", msg))?;
    let tokenizer = match &d.tokenizer {
        None => TokenizerSpec::Bytes,
        Some(t) => tokenizer(t, ctx)?,
    };
    let vocab = match &d.vocab {
        None => None,
        Some(v) => Some(ctx.int(v, "data.vocab", 2, 1 << 24)? as usize),
    };
    if let (Some(v), TokenizerSpec::Hf { .. }) = (&d.vocab, &tokenizer) {
        let msg = "a tokenizer.json fixes the vocabulary; `vocab` applies to tokenizer = \"bytes\" with shards";
        return Err(ctx.err(v.span(), "data.vocab", msg));
    }
    // The vocabulary sizes the model (and so N and the token counts), so the tokenizer file is
    // read here, and a file that does not parse is an error at the `tokenizer` key.
    let vocab = match (&tokenizer, &d.tokenizer) {
        (TokenizerSpec::Hf { path }, Some(t)) => match super::files::hf_vocab(std::path::Path::new(path)) {
            Ok(v) => Some(v),
            Err(e) => return Err(ctx.err(t.span(), "data.tokenizer", &format!("{e:#}"))),
        },
        _ => vocab,
    };
    let sources = d.source.unwrap_or_default();
    if sources.is_empty() {
        return Err(ctx.err_key("data", "data.source", msg));
    }
    let mut out: Vec<DomainConfig> = Vec::new();
    let mut source_at = Vec::new();
    for (i, s) in sources.into_iter().enumerate() {
        let at = format!("data.source[{i}]");
        let missing = |k: &str| ctx.err_key(&at, &format!("{at}.{k}"), &format!("missing `{k}`"));
        let name = s.name.as_ref().ok_or_else(|| missing("name"))?;
        let kind = s.kind.as_ref().ok_or_else(|| missing("kind"))?;
        let field = format!("{at}.name");
        let n = name.get_ref();
        let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
        if n.is_empty() || !n.chars().all(ok) {
            return Err(ctx.err(name.span(), &field, "must match [a-z0-9_]+"));
        }
        if out.iter().any(|o| &o.name == n) {
            let msg = format!("duplicate source name \"{n}\"");
            return Err(ctx.err(name.span(), &field, &msg));
        }
        let kind_s = ctx.pick(kind, &format!("{at}.kind"), &SourceKind::ALL, SourceKind::as_str)?;
        let e = ctx.err(name.span(), &field, "");
        source_at.push(format!("{}:{}:{} ({at}, source \"{n}\")", e.path, e.line, e.col));
        let source = file_source(&s, kind_s, &at, &tokenizer, ctx)?;
        out.push(DomainConfig { name: n.clone(), kind: kind_s, source, fingerprint: None });
    }
    Ok((out, DataSpec { tokenizer, vocab, source_at }))
}

/// `data.tokenizer`: "bytes" or { hf = "path" }.
fn tokenizer(t: &S<toml::Value>, ctx: &Ctx) -> Res<TokenizerSpec> {
    let expected = "expected \"bytes\" or { hf = \"path/to/tokenizer.json\" }";
    match t.get_ref() {
        toml::Value::String(s) if s == "bytes" => Ok(TokenizerSpec::Bytes),
        toml::Value::Table(tab) if tab.len() == 1 => match tab.get("hf") {
            Some(toml::Value::String(p)) if p.len() > MAX_PATH => {
                let msg = format!("a path has at most {MAX_PATH} bytes (PATH_MAX), got {}", p.len());
                Err(ctx.err(t.span(), "data.tokenizer", &msg))
            }
            Some(toml::Value::String(p)) if !p.trim().is_empty() => Ok(TokenizerSpec::Hf { path: p.clone() }),
            _ => Err(ctx.err(t.span(), "data.tokenizer", expected)),
        },
        other => Err(ctx.err(t.span(), "data.tokenizer", &format!("{expected}, got {other}"))),
    }
}

/// The file settings of a text/jsonl/shards source (None for built-in ones); keys that do not
/// apply to the kind are errors rather than silently ignored.
fn file_source(s: &RawSource, kind: SourceKind, at: &str, tok: &TokenizerSpec, ctx: &Ctx) -> Res<Option<FileSource>> {
    let reject = |v: Option<std::ops::Range<usize>>, key: &str, why: &str| match v {
        Some(span) => Err(ctx.err(span, &format!("{at}.{key}"), &format!("`{key}` {why}"))),
        None => Ok(()),
    };
    if kind.builtin().is_some() {
        for (key, span) in [
            ("path", s.path.as_ref().map(|v| v.span())),
            ("field", s.field.as_ref().map(|v| v.span())),
            ("column", s.column.as_ref().map(|v| v.span())),
            ("filter", s.filter.as_ref().map(|v| v.span())),
            ("invalid_utf8", s.invalid_utf8.as_ref().map(|v| v.span())),
            ("val_fraction", s.val_fraction.as_ref().map(|v| v.span())),
            ("bytes_per_token", s.bytes_per_token.as_ref().map(|v| v.span())),
        ] {
            reject(span, key, &format!("does not apply to kind = \"{kind}\" (a generated source)"))?;
        }
        if matches!(tok, TokenizerSpec::Hf { .. }) {
            let msg = "built-in sources generate bytes and need tokenizer = \"bytes\"";
            return Err(ctx.err(s.kind.as_ref().unwrap().span(), &format!("{at}.kind"), msg));
        }
        return Ok(None);
    }
    let path = s.path.as_ref().ok_or_else(|| {
        let msg = format!("missing `path` (a file, directory or glob) for kind = \"{kind}\"");
        ctx.err_key(at, &format!("{at}.path"), &msg)
    })?;
    if path.get_ref().trim().is_empty() {
        return Err(ctx.err(path.span(), &format!("{at}.path"), "expected a file, directory or glob, got \"\""));
    }
    if path.get_ref().len() > MAX_PATH {
        let msg = format!("a path has at most {MAX_PATH} bytes (PATH_MAX), got {}", path.get_ref().len());
        return Err(ctx.err(path.span(), &format!("{at}.path"), &msg));
    }
    if kind != SourceKind::Jsonl {
        let why = if kind == SourceKind::Parquet {
            "applies to kind = \"jsonl\" only (a parquet source names its `column`)"
        } else {
            "applies to kind = \"jsonl\" only"
        };
        reject(s.field.as_ref().map(|v| v.span()), "field", why)?;
    }
    if kind != SourceKind::Parquet {
        reject(s.column.as_ref().map(|v| v.span()), "column", "applies to kind = \"parquet\" only")?;
        reject(s.filter.as_ref().map(|v| v.span()), "filter", "applies to kind = \"parquet\" only")?;
    }
    if kind == SourceKind::Shards {
        reject(
            s.invalid_utf8.as_ref().map(|v| v.span()),
            "invalid_utf8",
            "applies to text and jsonl (shards are tokens)",
        )?;
    } else if kind == SourceKind::Parquet {
        // Parquet string columns are UTF-8 by the format, and the reader checks it.
        let why = "applies to text and jsonl (a Parquet string column is UTF-8 by the format)";
        reject(s.invalid_utf8.as_ref().map(|v| v.span()), "invalid_utf8", why)?;
        let why = "applies to kind = \"shards\" only (text is measured in bytes as it is tokenized)";
        reject(s.bytes_per_token.as_ref().map(|v| v.span()), "bytes_per_token", why)?;
    } else {
        let why = "applies to kind = \"shards\" only (text is measured in bytes as it is tokenized)";
        reject(s.bytes_per_token.as_ref().map(|v| v.span()), "bytes_per_token", why)?;
    }
    let field = match &s.field {
        Some(f) if f.get_ref().is_empty() => {
            return Err(ctx.err(f.span(), &format!("{at}.field"), "expected a field name, got \"\""))
        }
        Some(f) => Some(f.get_ref().clone()),
        None => (kind == SourceKind::Jsonl).then(|| "text".to_string()),
    };
    let invalid_utf8 = match &s.invalid_utf8 {
        Some(v) => ctx.pick(v, &format!("{at}.invalid_utf8"), &Utf8Policy::ALL, Utf8Policy::as_str)?,
        None => Utf8Policy::Replace,
    };
    let val_fraction =
        opt_float(&s.val_fraction, &format!("{at}.val_fraction"), 0.02, (Excluded(0.0), Included(0.5)), ctx)?;
    let bytes_per_token = match &s.bytes_per_token {
        Some(v) => Some(ctx.float(v, &format!("{at}.bytes_per_token"), POS)?),
        None => None,
    };
    let column = match &s.column {
        Some(c) if c.get_ref().trim().is_empty() => {
            return Err(ctx.err(c.span(), &format!("{at}.column"), "expected a column name, got \"\""))
        }
        Some(c) => Some(c.get_ref().clone()),
        None => (kind == SourceKind::Parquet).then(|| "text".to_string()),
    };
    let filter = match &s.filter {
        Some(f) => Some(RowFilter::parse(f.get_ref()).map_err(|e| ctx.err(f.span(), &format!("{at}.filter"), &e))?),
        None => None,
    };
    Ok(Some(FileSource {
        path: path.get_ref().clone(),
        field,
        invalid_utf8,
        val_fraction,
        bytes_per_token,
        column,
        filter,
    }))
}

fn model_section(raw: Option<RawModel>, ctx: &Ctx) -> Res<Model> {
    let m = raw.unwrap_or_default();
    let seq_len = opt_int(&m.seq_len, "model.seq_len", 128, 1, MAX_SEQ, ctx)? as usize;
    let head_dim = opt_int(&m.head_dim, "model.head_dim", 32, 1, MAX_SEQ, ctx)? as usize;
    let kind = match &m.parametrization {
        Some(v) => ctx.choice(v, "model.parametrization", &["mup", "sp"])?,
        None => "mup",
    };
    let sp_init_std = opt_float(&m.init_std, "model.init_std", 0.02, POS, ctx)?;
    if kind == "sp" {
        if m.mup.is_some() {
            let msg = "`mup` applies only to parametrization = \"mup\"";
            return Err(ctx.err_key("model.mup", "model.mup", msg));
        }
        return Ok(Model { seq_len, head_dim, mup: None, sp_init_std });
    }
    if let Some(v) = &m.init_std {
        let msg = "`init_std` applies to parametrization = \"sp\"; for μP set mup.init_std";
        return Err(ctx.err(v.span(), "model.init_std", msg));
    }
    let mup = mup_table(m.mup, ctx)?;
    Ok(Model { seq_len, head_dim, mup: Some(mup), sp_init_std })
}

fn mup_table(raw: Option<RawMup>, ctx: &Ctx) -> Res<(Option<usize>, f64, f64, f64)> {
    let Some(m) = raw else {
        return Ok((None, 12.0, 1.4, 0.1));
    };
    let base = match &m.base_width {
        Some(v) => Some(ctx.int(v, "model.mup.base_width", 1, MAX_SEQ)? as usize),
        None => None,
    };
    Ok((
        base,
        opt_float(&m.scale_emb, "model.mup.scale_emb", 12.0, POS, ctx)?,
        opt_float(&m.scale_depth, "model.mup.scale_depth", 1.4, POS, ctx)?,
        opt_float(&m.init_std, "model.mup.init_std", 0.1, POS, ctx)?,
    ))
}

fn train_section(raw: Option<RawTrain>, seq_len: usize, ctx: &Ctx) -> Res<Train> {
    let t = raw.unwrap_or_default();
    // One evaluation window needs seq_len inputs plus the next-token target.
    let min_eval = seq_len as i64 + 1;
    let eval_tokens = opt_int(&t.eval_tokens, "train.eval_tokens", 16384, min_eval, i64::MAX, ctx)?;
    if eval_tokens < min_eval {
        let msg = format!("default eval_tokens = 16384 is below seq_len + 1 = {min_eval}; set it");
        return Err(ctx.err_key("model.seq_len", "train.eval_tokens", &msg));
    }
    let sched = schedule(t.schedule, ctx)?;
    Ok(Train {
        batch_size: opt_int(&t.batch_size, "train.batch_size", 16, 1, MAX_SEQ, ctx)? as usize,
        wsd_branches: match &t.wsd_branches {
            Some(b) if *b.get_ref() && !matches!(sched, Schedule::Wsd { .. }) => {
                return Err(ctx.err(b.span(), "train.wsd_branches", "decay branches need schedule kind \"wsd\""));
            }
            Some(b) => *b.get_ref(),
            None => false,
        },
        schedule: sched,
        weight_decay: opt_float(&t.weight_decay, "train.weight_decay", 0.1, WEIGHT_DECAY, ctx)?,
        betas: betas(&t.betas, ctx)?,
        grad_clip: opt_float(&t.grad_clip, "train.grad_clip", 1.0, NONNEG, ctx)?,
        micro_batch: match &t.micro_batch {
            Some(m) => Some(ctx.int(m, "train.micro_batch", 1, MAX_SEQ)? as usize),
            None => None,
        },
        eval_every: opt_int(&t.eval_every, "train.eval_every", 0, 0, i64::MAX, ctx)? as u64,
        eval_tokens: eval_tokens as u64,
    })
}

fn betas(raw: &Option<S<Vec<S<f64>>>>, ctx: &Ctx) -> Res<(f64, f64)> {
    let Some(b) = raw else { return Ok((0.9, 0.95)) };
    if b.get_ref().len() != 2 {
        let msg = format!("expected [beta1, beta2], got {} values", b.get_ref().len());
        return Err(ctx.err(b.span(), "train.betas", &msg));
    }
    let beta1 = ctx.float(&b.get_ref()[0], "train.betas[0]", BETA)?;
    Ok((beta1, ctx.float(&b.get_ref()[1], "train.betas[1]", BETA)?))
}

fn schedule(raw: Option<RawSchedule>, ctx: &Ctx) -> Res<Schedule> {
    let s = raw.unwrap_or_default();
    const KINDS: &[&str] = &["wsd", "cosine", "constant"];
    let kind = match &s.kind {
        Some(k) => ctx.choice(k, "train.schedule.kind", KINDS)?,
        None => "wsd",
    };
    let warmup = opt_float(&s.warmup, "train.schedule.warmup", 0.05, FRAC, ctx)?;
    let foreign = |v: &Option<S<f64>>, key: &str, keys: &str| match v {
        Some(v) => {
            let msg = format!("`{key}` does not apply to kind \"{kind}\" (its keys: {keys})");
            Err(ctx.err(v.span(), &format!("train.schedule.{key}"), &msg))
        }
        None => Ok(()),
    };
    match kind {
        "wsd" => {
            foreign(&s.final_frac, "final_frac", "warmup, decay, decay_shape")?;
            wsd(&s, warmup, ctx)
        }
        "cosine" => {
            foreign(&s.decay, "decay", "warmup, final_frac")?;
            no_shape(&s, kind, ctx)?;
            let field = "train.schedule.final_frac";
            let final_frac = opt_float(&s.final_frac, field, 0.1, FRAC, ctx)?;
            Ok(Schedule::Cosine { warmup, final_frac })
        }
        _ => {
            foreign(&s.decay, "decay", "warmup")?;
            foreign(&s.final_frac, "final_frac", "warmup")?;
            no_shape(&s, kind, ctx)?;
            Ok(Schedule::Constant { warmup })
        }
    }
}

fn no_shape(s: &RawSchedule, kind: &str, ctx: &Ctx) -> Res<()> {
    match &s.decay_shape {
        Some(v) => {
            let msg = format!("`decay_shape` applies only to kind \"wsd\", not \"{kind}\"");
            Err(ctx.err(v.span(), "train.schedule.decay_shape", &msg))
        }
        None => Ok(()),
    }
}

fn wsd(s: &RawSchedule, warmup: f64, ctx: &Ctx) -> Res<Schedule> {
    let decay = opt_float(&s.decay, "train.schedule.decay", 0.1, FRAC, ctx)?;
    if warmup + decay > 1.0 + 1e-12 {
        // Point at whichever of the two the user wrote, the decay preferably.
        let (v, key) = match (&s.decay, &s.warmup) {
            (Some(d), _) => (d, "decay"),
            (None, Some(w)) => (w, "warmup"),
            (None, None) => unreachable!("defaults sum to 0.15"),
        };
        let msg = format!("warmup + decay = {} exceeds 1 (fractions of the run)", warmup + decay);
        return Err(ctx.err(v.span(), &format!("train.schedule.{key}"), &msg));
    }
    const SHAPES: &[&str] = &["linear", "cosine", "one_minus_sqrt", "exponential"];
    let decay_shape = match &s.decay_shape {
        Some(v) => match ctx.choice(v, "train.schedule.decay_shape", SHAPES)? {
            "linear" => DecayShape::Linear,
            "cosine" => DecayShape::Cosine,
            "one_minus_sqrt" => DecayShape::OneMinusSqrt,
            _ => DecayShape::Exponential,
        },
        None => DecayShape::Linear,
    };
    Ok(Schedule::Wsd { warmup, decay, decay_shape })
}

/// `[target]`, checked against the runs: the target is what the fitted laws extrapolate to, so
/// a compute below the smallest run's (`smallest`, in FLOPs) is not a prediction the sweep can
/// support (`flops = 3` would ask for a model of less than one parameter).
fn target_section(raw: Option<RawTarget>, smallest: f64, ctx: &Ctx) -> Res<Target> {
    let msg = "missing required table [target]: give exactly one of flops = ... or params = ...";
    let t = raw.ok_or_else(|| ctx.err_key("target", "target", msg))?;
    match (&t.flops, &t.params) {
        (None, None) => Err(ctx.err_key("target", "target", msg)),
        (Some(f), Some(p)) => {
            // Point at the second of the two as written.
            let (v, key) = if f.span().start > p.span().start { (f, "flops") } else { (p, "params") };
            let msg = "give exactly one of target.flops and target.params, not both";
            Err(ctx.err(v.span(), &format!("target.{key}"), msg))
        }
        (Some(f), None) => {
            let flops = ctx.float(f, "target.flops", POS)?;
            if flops > MAX_TARGET_FLOPS {
                let msg = format!("must be at most 1e35 (far beyond any training run), got {}", num(flops));
                return Err(ctx.err(f.span(), "target.flops", &msg));
            }
            if flops < smallest {
                let msg = format!(
                    "{} FLOPs is below the smallest run of the grid ({smallest:.3e} FLOPs): the target is the \
                     larger run the laws predict",
                    num(flops)
                );
                return Err(ctx.err(f.span(), "target.flops", &msg));
            }
            Ok(Target { flops: Some(flops), params: None })
        }
        (None, Some(p)) => {
            let params = ctx.float(p, "target.params", POS)?;
            if !(1.0..=MAX_TARGET_PARAMS).contains(&params) {
                let msg = format!("must be at least 1 and at most 1e18 parameters, got {}", num(params));
                return Err(ctx.err(p.span(), "target.params", &msg));
            }
            Ok(Target { flops: None, params: Some(params) })
        }
    }
}

fn fit_section(raw: Option<RawFit>, sources: &[&str], ctx: &Ctx) -> Res<FitSpec> {
    let Some(f) = raw else {
        return Ok(FitSpec::default());
    };
    let mut spec = FitSpec::default();
    if let Some(laws) = &f.laws {
        spec.laws.clear();
        for (i, law) in laws.get_ref().iter().enumerate() {
            let field = format!("fit.laws[{i}]");
            // The fit engine owns the list of laws; the sweep file accepts exactly those.
            let name = ctx.pick(law, &field, &LawName::ALL, LawName::as_str)?;
            if spec.laws.contains(&name) {
                return Err(ctx.err(law.span(), &field, &format!("\"{name}\" is listed twice")));
            }
            spec.laws.push(name);
        }
    }
    if let Some(b) = &f.backtest {
        spec.backtest = ctx.pick(b, "fit.backtest", &BacktestMode::ALL, BacktestMode::as_str)?;
    }
    spec.bootstrap = opt_int(&f.bootstrap, "fit.bootstrap", 1000, 0, 1 << 24, ctx)? as usize;
    spec.min_steps =
        opt_int(&f.min_steps, "fit.min_steps", super::config::DEFAULT_MIN_STEPS as i64, 0, 1 << 40, ctx)? as u64;
    if let Some(p) = &f.density_ref {
        if p.get_ref().trim().is_empty() {
            return Err(ctx.err(p.span(), "fit.density_ref", "expected a path to a reference fit.json, got \"\""));
        }
        spec.density_ref = Some(p.get_ref().clone());
    }
    if let Some(obj) = &f.objective {
        spec.objective = Some(grid::mixture(obj, "fit.objective", sources, ctx)?);
    }
    Ok(spec)
}

/// A number as a person would write it: plain when moderate, else in scientific notation.
fn num(x: f64) -> String {
    if x == 0.0 || (1e-3..1e6).contains(&x.abs()) {
        format!("{x}")
    } else {
        format!("{x:e}")
    }
}

fn opt_int(v: &Option<S<i64>>, field: &str, dflt: i64, min: i64, max: i64, ctx: &Ctx) -> Res<i64> {
    v.as_ref().map_or(Ok(dflt), |v| ctx.int(v, field, min, max))
}

fn opt_float(v: &Option<S<f64>>, field: &str, default: f64, range: Bounds, ctx: &Ctx) -> Res<f64> {
    v.as_ref().map_or(Ok(default), |v| ctx.float(v, field, range))
}

/// The settings every run shares, borrowed while the runs are built.
struct RunBase<'a> {
    sweep: &'a str,
    seed: u64,
    vocab: usize,
    domains: &'a [DomainConfig],
    model: &'a Model,
    train: &'a Train,
}

/// One RunConfig per grid point; two points giving the same run is an error (a repeated
/// axis value or tokens that round to the same step count are almost surely mistakes).
fn build_runs(points: &[Point], base: &RunBase, ctx: &Ctx) -> Res<Vec<RunConfig>> {
    let min_width = points.iter().map(|p| p.width).min().unwrap_or(1);
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut runs = Vec::with_capacity(points.len());
    for (i, p) in points.iter().enumerate() {
        let run = run_config(p, base, min_width);
        if let Some(&j) = seen.get(&run.run_id()) {
            let (a, b) = (&points[j].label, &p.label);
            let msg = format!("grid points ({a}) and ({b}) give the same run; remove one");
            return Err(ctx.err_key("grid", "grid", &msg));
        }
        seen.insert(run.run_id(), i);
        runs.push(run);
    }
    Ok(runs)
}

fn run_config(p: &Point, base: &RunBase, min_width: usize) -> RunConfig {
    let (m, t) = (base.model, base.train);
    let n = crate::flops::params(p.width, p.depth, base.vocab);
    let per_step = (p.batch_size * p.seq_len) as u64;
    let wanted = match p.amount {
        Amount::TokensPerParam(r) => r * n as f64,
        Amount::Tokens(x) => x as f64,
    };
    let steps = ((wanted / per_step as f64).ceil() as u64).max(1);
    let eval_every = if t.eval_every == 0 { (steps / 8).max(1) } else { t.eval_every };
    let parametrization = match m.mup {
        Some((base_width, scale_emb, scale_depth, init_std)) => {
            let base_width = base_width.unwrap_or(min_width);
            Parametrization::Mup { base_width, scale_emb, scale_depth, init_std }
        }
        None => Parametrization::Sp { init_std: m.sp_init_std },
    };
    RunConfig {
        sweep: base.sweep.to_string(),
        seed: base.seed,
        width: p.width,
        depth: p.depth,
        heads: p.width / m.head_dim,
        seq_len: p.seq_len,
        vocab: base.vocab,
        parametrization,
        lr: p.lr,
        batch_size: p.batch_size,
        tokens: steps * per_step,
        steps,
        schedule: t.schedule.clone(),
        weight_decay: t.weight_decay,
        beta1: t.betas.0,
        beta2: t.betas.1,
        grad_clip: t.grad_clip,
        // A micro-batch as large as the batch is no accumulation: same run, same id.
        micro_batch: t.micro_batch.filter(|&m| m < p.batch_size),
        branch: None,
        eval_every,
        eval_tokens: t.eval_tokens,
        domains: base.domains.to_vec(),
        mix: p.mix.clone(),
    }
}
