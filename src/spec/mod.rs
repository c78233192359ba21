//! Sweep files: `load`/`parse` read a TOML sweep (format documented key by key in `raw`),
//! validate every value and expand the grid into `config::Sweep`, whose `RunConfig`s are
//! all the rest of the crate sees. Every problem becomes a `SpecError` naming the file,
//! line, column and field, so a typo costs one edit, not a failed training run.
//!
//! Pipeline: `raw` (serde types with spans) -> `resolve` (defaults, checks, run building)
//! with `grid` (axes, zip, exclude, order) -> `config` (the resolved types).

pub mod config;
mod diag;
pub mod files;
#[cfg(test)]
mod fuzz_tests;
mod grid;
pub mod manifest;
mod raw;
mod resolve;

pub use config::{
    BacktestMode, Builtin, DecayShape, DomainConfig, FitSpec, Parametrization, RunConfig, Schedule, SourceKind, Sweep,
    Target, Utf8Policy,
};
pub use diag::SpecError;
pub use grid::{MAX_TOKENS, MAX_TOKENS_PER_PARAM};
pub use resolve::{MAX_TARGET_FLOPS, MAX_TARGET_PARAMS, VOCAB};

use std::path::Path;

/// The largest sweep file read: far beyond any real sweep (a few KB), small enough that a wrong
/// path (a corpus, a disk image) is refused instead of read into memory.
const MAX_SWEEP_BYTES: u64 = 64 << 20;

/// Read, parse and validate a sweep file.
pub fn load(path: &Path) -> Result<Sweep, SpecError> {
    use std::io::Read;
    let shown = path.display().to_string();
    let fail = |what: String| SpecError::unlocated(&shown, &format!("cannot read sweep file: {what}"));
    // Checked before opening: opening a FIFO blocks until a writer comes, /dev/zero never ends.
    let meta = std::fs::metadata(path).map_err(|e| fail(e.to_string()))?;
    if !meta.is_file() {
        return Err(fail("not a regular file".into()));
    }
    let mut bytes = Vec::new();
    let file = std::fs::File::open(path).map_err(|e| fail(e.to_string()))?;
    file.take(MAX_SWEEP_BYTES + 1).read_to_end(&mut bytes).map_err(|e| fail(e.to_string()))?;
    if bytes.len() as u64 > MAX_SWEEP_BYTES {
        return Err(fail(format!("larger than {} MiB", MAX_SWEEP_BYTES >> 20)));
    }
    parse_bytes(&bytes, &shown)
}

/// `parse` for the raw bytes of a file: bytes that are not UTF-8 are an error located at the
/// first bad byte (its line and column, and its byte offset in the message).
pub fn parse_bytes(bytes: &[u8], path_for_messages: &str) -> Result<Sweep, SpecError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => parse(text, path_for_messages),
        Err(e) => {
            let at = e.valid_up_to();
            // The lossy text equals the bytes up to `at`, so positions before it are exact.
            let lossy = String::from_utf8_lossy(bytes);
            let msg = format!("invalid UTF-8 at byte {at}: a sweep file must be UTF-8 text");
            Err(SpecError::at(&lossy, path_for_messages, at..at + 1, "", &msg))
        }
    }
}

/// Parse and validate sweep text; `path_for_messages` only labels errors and `Sweep.path`.
pub fn parse(text: &str, path_for_messages: &str) -> Result<Sweep, SpecError> {
    let index = raw::KeyIndex::build(text);
    let file: raw::RawFile =
        toml::from_str(text).map_err(|e| SpecError::from_toml(&e, text, path_for_messages, &index))?;
    let ctx = diag::Ctx { src: text, path: path_for_messages, index };
    resolve::resolve(file, &ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid sweep; the bad-input cases below edit one line of it, so line numbers here
    /// are part of the tests.
    const BASE: &str = r#"[sweep]
name = "unit"
seed = 1

[data]
tokenizer = "bytes"
[[data.source]]
name = "markov"
kind = "builtin:markov"
[[data.source]]
name = "grammar"
kind = "builtin:pcfg"

[model]
seq_len = 32
head_dim = 16

[train]
batch_size = 4
schedule = { kind = "wsd", warmup = 0.1, decay = 0.2 }

[grid]
width = [16, 32, 48]
depth = [1, 2, 2]
lr = [1e-2, 3e-3]
tokens_per_param = [2]
mix = [{ markov = 1, grammar = 1 }, { markov = 3, grammar = 1 }]
zip = [["width", "depth"]]
exclude = [{ width = 48, lr = 3e-3 }]

[target]
flops = 1e12

[fit]
laws = ["chinchilla", "isoflop"]
bootstrap = 50
"#;

    /// BASE with its tables and keys reordered and spelled differently (the sources as an
    /// inline array of tables): same runs.
    const REORDERED: &str = r#"
[fit]
bootstrap = 50
laws = ["chinchilla", "isoflop"]
[target]
flops = 1_000_000_000_000.0
[grid]
exclude = [{ lr = 0.003, width = 48 }]
zip = [["depth", "width"]]
mix = [{ grammar = 2, markov = 2 }, { grammar = 0.5, markov = 1.5 }]
tokens_per_param = [2.0]
lr = [0.01, 0.003]
depth = [1, 2, 2]
width = [16, 32, 48]
[train.schedule]
decay = 0.2
warmup = 0.1
[train]
batch_size = 4
[model]
head_dim = 16
seq_len = 32
[data]
source = [{ kind = "builtin:markov", name = "markov" }, { kind = "builtin:pcfg", name = "grammar" }]
[sweep]
seed = 1
name = "unit"
"#;

    fn edit(from: &str, to: &str) -> String {
        assert!(BASE.contains(from), "test edit not found: {from}");
        BASE.replacen(from, to, 1)
    }

    fn ids(sweep: &Sweep) -> Vec<String> {
        sweep.runs.iter().map(|r| r.run_id()).collect()
    }

    #[test]
    fn base_resolves_with_zip_and_exclude_in_grid_order() {
        let s = parse(BASE, "base.toml").unwrap();
        assert_eq!((s.name.as_str(), s.backend.name()), ("unit", "cpu"));
        // 3 zipped (width, depth) x 2 lr x 2 mix = 12, minus width 48 at lr 3e-3 (2 mixes).
        assert_eq!(s.runs.len(), 10);
        let order: Vec<(usize, usize, f64)> = s.runs.iter().map(|r| (r.width, r.depth, r.lr)).collect();
        assert_eq!(order[..4], [(16, 1, 1e-2), (16, 1, 1e-2), (16, 1, 3e-3), (16, 1, 3e-3)]);
        assert_eq!(order[8..], [(48, 2, 1e-2), (48, 2, 1e-2)]);
        assert_eq!((s.runs[0].mix["markov"], s.runs[1].mix["markov"]), (0.5, 0.75));
        assert_eq!(s.target, Target { flops: Some(1e12), params: None });
        assert_eq!(s.fit.bootstrap, 50);
        assert_eq!(s.fit.min_steps, crate::spec::config::DEFAULT_MIN_STEPS, "min_steps defaults");
    }

    #[test]
    fn run_fields_follow_the_resolution_rules() {
        let r = &parse(BASE, "base.toml").unwrap().runs[0];
        let n = crate::flops::params(16, 1, 256);
        let per_step = 4 * 32;
        assert_eq!((r.heads, r.vocab, r.seq_len, r.batch_size), (1, 256, 32, 4));
        assert_eq!(r.steps, (2 * n).div_ceil(per_step));
        assert_eq!(r.tokens, r.steps * per_step);
        assert!(r.tokens >= 2 * n && r.tokens < 2 * n + per_step);
        assert_eq!(r.eval_every, (r.steps / 8).max(1));
        assert_eq!((r.beta1, r.beta2, r.eval_tokens), (0.9, 0.95, 16384));
        let mup = Parametrization::Mup { base_width: 16, scale_emb: 12.0, scale_depth: 1.4, init_std: 0.1 };
        assert_eq!(r.parametrization, mup);
        let shape = DecayShape::Linear;
        assert_eq!(r.schedule, Schedule::Wsd { warmup: 0.1, decay: 0.2, decay_shape: shape });
        assert_eq!(
            r.domains[1],
            DomainConfig {
                name: "grammar".into(),
                kind: SourceKind::Builtin(Builtin::Pcfg),
                source: None,
                fingerprint: None
            }
        );
    }

    #[test]
    fn run_ids_are_stable_under_reordering_and_change_with_lr() {
        let base = parse(BASE, "a.toml").unwrap();
        assert_eq!(ids(&base), ids(&parse(REORDERED, "b.toml").unwrap()));
        let changed = parse(&edit("lr = [1e-2, 3e-3]", "lr = [2e-2, 3e-3]"), "c.toml").unwrap();
        assert_ne!(ids(&base)[0], ids(&changed)[0]);
        assert_eq!(ids(&base)[2], ids(&changed)[2]);
    }

    #[test]
    fn micro_batch_does_not_change_run_ids() {
        // Gradient accumulation is how a step fits in memory, not what it computes: turning it
        // on for a sweep that already ran must find every finished run.
        let base = parse(BASE, "a.toml").unwrap();
        let accum = parse(&edit("[train]", "[train]\nmicro_batch = 1"), "m.toml").unwrap();
        assert!(accum.runs.iter().any(|r| r.micro_batch.is_some()), "the edit must set micro_batch");
        assert_eq!(ids(&base), ids(&accum));
    }

    #[test]
    fn golden_run_id() {
        // Changes only if RunConfig or its serialisation changes: every stored run id would.
        assert_eq!(parse(BASE, "a.toml").unwrap().runs[0].run_id(), "a088298f9bfab31c");
    }

    #[test]
    fn variants_sp_cosine_tokens_log_range_batch_axis() {
        let text = r#"
[sweep]
name = "v"
[data]
source = [{ name = "a", kind = "builtin:markov" }, { name = "b", kind = "builtin:pcfg" }]
[model]
parametrization = "sp"
seq_len = 8
head_dim = 8
[train]
schedule = { kind = "cosine", final_frac = 0.2 }
eval_every = 5
[grid]
width = [8]
depth = [1]
lr = { log_range = [1e-3, 1e-1], num = 3 }
tokens = [1000]
batch_size = [2, 3]
exclude = [{ lr = 0.01, batch_size = 3 }]
[target]
params = 1e7
"#;
        let s = parse(text, "v.toml").unwrap();
        let got: Vec<(usize, f64)> = s.runs.iter().map(|r| (r.batch_size, r.lr)).collect();
        assert_eq!(got.len(), 5);
        assert_eq!((got[0].0, got[3].0, got[4].0), (2, 3, 3));
        assert!((got[1].1 - 1e-2).abs() < 1e-12 && (got[4].1 - 1e-1).abs() < 1e-12);
        let r = &s.runs[3];
        assert_eq!((r.steps, r.tokens, r.eval_every), (42, 1008, 5));
        assert_eq!(r.parametrization, Parametrization::Sp { init_std: 0.02 });
        assert_eq!(r.schedule, Schedule::Cosine { warmup: 0.05, final_frac: 0.2 });
        assert_eq!((r.mix["a"], r.mix["b"]), (0.5, 0.5));
        assert_eq!(s.fit, FitSpec::default());
    }

    #[test]
    fn tiny_sweep_file_is_valid() {
        let s = parse(include_str!("../../sweeps/tiny.toml"), "sweeps/tiny.toml").unwrap();
        assert_eq!(s.runs.len(), 9);
        let widths: Vec<usize> = s.runs.iter().map(|r| r.width).collect();
        assert_eq!(widths, [16, 16, 16, 32, 32, 32, 48, 48, 48]);
        assert_eq!((s.runs[0].heads, s.runs[3].heads, s.runs[8].heads), (1, 2, 3));
    }

    #[test]
    fn missing_file_is_an_unlocated_error() {
        let e = load(Path::new("/nonexistent/sweep.toml")).unwrap_err();
        assert_eq!((e.line, e.col), (0, 0));
        assert!(e.message.contains("cannot read sweep file"), "{e}");
    }

    /// (edit from, edit to, line, col, field, message substring)
    #[rustfmt::skip]
    const BAD: &[(&str, &str, usize, usize, &str, &str)] = &[
        ("seed = 1", "sed = 1", 3, 1, "sweep.sed", "unknown field `sed`"),
        ("seq_len = 32", "seq_len = \"32\"", 15, 11, "model.seq_len", "invalid type: string"),
        ("[1, 2, 2]", "[1, \"2\", 2]", 24, 13, "grid.depth[1]", "invalid type: string"),
        ("[16, 32, 48]", "[16, 0, 48]", 23, 14, "grid.width[1]", "at least 1, got 0"),
        ("[16, 32, 48]", "[16, 32, 40]", 23, 18, "grid.width[2]", "multiple of model.head_dim = 16"),
        ("[1e-2, 3e-3]", "[1e-2, -3e-3]", 25, 13, "grid.lr[1]", "must be in (0, 1], got -0.003"),
        ("[1e-2, 3e-3]", "{ log_range = [1e-3, 1e-1], num = 1 }", 25, 40, "grid.lr.num", "at least 2"),
        ("[1, 2, 2]", "[1, 2]", 28, 18, "grid.zip[0][1]", "`width` (3 values) and `depth` (2 values)"),
        ("markov = 3, grammar", "markov = 3, gramar", 27, 51, "grid.mix[1].gramar", "not a data source"),
        ("markov = 3", "markov = -3", 27, 48, "grid.mix[1].markov", "must be >= 0, got -3"),
        ("markov = 3, grammar = 1", "markov = 0, grammar = 0", 27, 37, "grid.mix[1]", "all zero"),
        ("lr = 3e-3 }", "lr = 1e-3 }", 29, 12, "grid.exclude[0]", "matches no grid point"),
        ("[2]", "[2]\ntokens = [1e5]", 27, 10, "grid.tokens", "exactly one of"),
        ("[target]\nflops = 1e12\n", "", 1, 1, "target", "missing required table [target]"),
        ("flops = 1e12", "flops = 1e12\nparams = 1e7", 33, 10, "target.params", "exactly one"),
        ("decay = 0.2", "decay = 0.95", 20, 50, "train.schedule.decay", "warmup + decay = 1.05"),
        ("\"isoflop\"", "\"isoflops\"", 35, 23, "fit.laws[1]", "unknown value \"isoflops\""),
        ("\"bytes\"", "\"bpe\"", 6, 13, "data.tokenizer", "expected \"bytes\" or { hf ="),
        ("\"bytes\"", "{ hf = \"/nonexistent/tokenizer.json\" }", 6, 13, "data.tokenizer", "cannot read tokenizer file"),
        ("kind = \"builtin:pcfg\"", "kind = \"jsonl\"", 10, 1, "data.source[1].path", "missing `path`"),
        ("kind = \"builtin:pcfg\"", "kind = \"builtin:pcfg\"\npath = \"x\"", 13, 8, "data.source[1].path", "does not apply"),
        ("kind = \"builtin:pcfg\"", "kind = \"text\"\npath = \"x\"\nfield = \"t\"", 14, 9, "data.source[1].field", "jsonl"),
        ("kind = \"builtin:pcfg\"", "kind = \"text\"\npath = \"x\"\nval_fraction = 0.9", 14, 16, "data.source[1].val_fraction", "(0, 0.5]"),
        ("kind = \"builtin:pcfg\"", "kind = \"jsonl\"\npath = \"x\"\ninvalid_utf8 = \"drop\"", 14, 16, "data.source[1].invalid_utf8", "\"replace\""),
        ("kind = \"builtin:pcfg\"", "kind = \"shards\"\npath = \"\"", 13, 8, "data.source[1].path", "got \"\""),
        ("tokenizer = \"bytes\"", "tokenizer = \"bytes\"\nvocab = 1", 7, 9, "data.vocab", "at least 2"),
        ("mix = [{ markov = 1, grammar = 1 }, { markov = 3, grammar = 1 }]", "mix = { dirichlet = 0, count = 3 }", 27, 21, "grid.mix.dirichlet", "(0, 1000]"),
        ("mix = [{ markov = 1, grammar = 1 }, { markov = 3, grammar = 1 }]", "mix = { dirichlet = 1, cnt = 3 }", 27, 24, "grid.mix.cnt", "unknown field"),
        ("bootstrap = 50", "bootstrap = 50\nobjective = { markov = -1 }", 37, 24, "fit.objective.markov", ">= 0"),
        ("\"builtin:pcfg\"", "\"hf:wiki\"", 12, 8, "data.source[1].kind", "\"builtin:markov\""),
        ("name = \"grammar\"", "name = \"markov\"", 11, 8, "data.source[1].name", "duplicate"),
        ("name = \"unit\"\n", "", 1, 2, "sweep.name", "missing required key `name`"),
        ("batch_size = 4", "batch_size = 4\nbetas = [0.9, 1.0]", 20, 15, "train.betas[1]", "in [0, 1)"),
        ("[16, 32, 48]", "[16, 32, 48", 24, 1, "", "invalid array"),
        ("lr = [1e-2, 3e-3]", "lr.num = 3", 25, 4, "grid.lr.num", "write this table inline"),
        ("[fit]", "[fits]", 34, 2, "fits", "unknown field `fits`"),
        ("seed = 1", "backend = \"tpu\"", 3, 11, "sweep.backend", "\"cpu\", \"cuda\""),
        ("head_dim = 16", "head_dim = 16\ninit_std = 0.02", 17, 12, "model.init_std", "mup.init_std"),
        ("\"wsd\"", "\"cosine\"", 20, 53, "train.schedule.decay", "does not apply to kind \"cosine\""),
        ("markov = 3, grammar = 1", "markov = 2, grammar = 2", 22, 2, "grid", "give the same run"),
        ("{ width = 48, lr = 3e-3 }", "{ lr = 1e-2 }, { lr = 3e-3 }", 22, 2, "grid", "every grid point"),
        ("tokens_per_param = [2]", "tokens = [1e5, 2.5]", 26, 16, "grid.tokens[1]", "whole number"),
        ("width = 48, lr", "mix = 1, lr", 29, 14, "grid.exclude[0].mix", "not a numeric axis"),
        ("zip = [[\"width\", \"depth\"]]", "zip = [[\"width\", \"batch_size\"]]", 28, 18, "grid.zip[0][1]", "not an axis"),
        ("bootstrap = 50", "bootstrap = 50\ndensity_ref = \" \"", 37, 15, "fit.density_ref", "reference fit.json"),
        ("bootstrap = 50", "bootstrap = 50\nmin_steps = -1", 37, 13, "fit.min_steps", "at least 0"),
        ("bootstrap = 50", "bootstrap = 50\nmin_steps = 1.5", 37, 13, "fit.min_steps", "integer"),
        ("\"isoflop\"]", "\"batch_vs_loss\", \"chinchilla_varpro\", 3]", 35, 61, "fit.laws[3]", "invalid type: integer"),
        // Names that read as options or hidden files, or too long to be a
        // directory and job name; a target below every run; a weight decay that zeroes weights.
        ("name = \"unit\"", "name = \"-rf\"", 2, 8, "sweep.name", "must not start with `-`"),
        ("name = \"unit\"", "name = \"--help\"", 2, 8, "sweep.name", "must not start with `-`"),
        ("name = \"unit\"", "name = \"a.b\"", 2, 8, "sweep.name", "[A-Za-z0-9_-]"),
        ("name = \"unit\"", "name = \"\"", 2, 8, "sweep.name", "[A-Za-z0-9_-]"),
        ("flops = 1e12", "flops = 3", 32, 9, "target.flops", "below the smallest run"),
        ("flops = 1e12", "flops = 1e40", 32, 9, "target.flops", "at most 1e35"),
        ("flops = 1e12", "params = 0.5", 32, 10, "target.params", "at least 1"),
        ("batch_size = 4", "batch_size = 4\nweight_decay = 1e12", 20, 16, "train.weight_decay", "in [0, 1]"),
    ];

    #[test]
    fn dirichlet_mixtures_are_deterministic_with_corners() {
        let mix = "mix = [{ markov = 1, grammar = 1 }, { markov = 3, grammar = 1 }]";
        let text = edit(mix, "mix = { dirichlet = 0.7, count = 4, seed = 3, corners = true }");
        let a = parse(&text, "m.toml").unwrap();
        let b = parse(&text, "m.toml").unwrap();
        assert_eq!(ids(&a), ids(&b), "same seed, same mixtures");
        let mut mixes: Vec<Vec<f64>> = a.runs.iter().map(|r| r.mix.values().copied().collect()).collect();
        mixes.sort_by(|x, y| x.partial_cmp(y).unwrap());
        mixes.dedup();
        assert_eq!(mixes.len(), 2 + 1 + 4, "two corners, uniform, four draws: {mixes:?}");
        assert!(mixes.contains(&vec![0.0, 1.0]) && mixes.contains(&vec![1.0, 0.0]) && mixes.contains(&vec![0.5, 0.5]));
        assert!(mixes.iter().all(|m| (m.iter().sum::<f64>() - 1.0).abs() < 1e-12));
        let other = parse(&edit(mix, "mix = { dirichlet = 0.7, count = 4, seed = 4 }"), "m.toml").unwrap();
        assert_ne!(ids(&a)[..4], ids(&other)[..4], "another seed draws other mixtures");
    }

    #[test]
    fn seq_len_is_a_grid_axis() {
        let tiny = include_str!("../../sweeps/tiny.toml");
        let s = parse(&tiny.replace("lr = [1e-2]", "lr = [1e-2]\nseq_len = [16, 64]"), "s.toml").unwrap();
        assert_eq!(s.runs.len(), 18);
        let lens: Vec<usize> = s.runs.iter().take(2).map(|r| r.seq_len).collect();
        assert_eq!(lens, [16, 64]);
        for r in &s.runs {
            assert_eq!(r.tokens, r.steps * (r.batch_size * r.seq_len) as u64);
        }
        let e = parse(&tiny.replace("lr = [1e-2]", "lr = [1e-2]\nseq_len = [16, 4096]"), "s.toml").unwrap_err();
        assert_eq!(e.field, "grid.seq_len");
        assert!(e.message.contains("eval_tokens = 2048 is below seq_len + 1 = 4097"), "{e}");
    }

    #[test]
    fn wsd_branches_form_families_that_share_the_trunk() {
        let tiny = include_str!("../../sweeps/tiny.toml");
        let text = tiny.replace("batch_size = 4\n", "batch_size = 4\nwsd_branches = true\n");
        let s = parse(&text, "b.toml").unwrap();
        // 3 widths x 3 token counts: 3 families, each with a trunk (its longest run) and 2 branches.
        for w in [16, 32, 48] {
            let fam: Vec<&RunConfig> = s.runs.iter().filter(|r| r.width == w).collect();
            let trunk = fam.iter().max_by_key(|r| r.steps).unwrap();
            let tb = trunk.branch.as_ref().unwrap();
            assert_eq!(tb.from, None);
            let mut froms: Vec<u64> = fam.iter().filter_map(|r| r.branch.as_ref().unwrap().from).collect();
            froms.sort();
            assert_eq!(tb.snapshots, froms);
            for r in &fam {
                let b = r.branch.as_ref().unwrap();
                assert_eq!(b.family, tb.family);
                // The same warmup in steps as the trunk: the trunk's default 5% of its steps.
                let Schedule::Wsd { warmup, decay, .. } = r.schedule else { panic!() };
                assert_eq!((warmup * r.steps as f64).round(), (0.05 * trunk.steps as f64).round());
                assert_eq!(
                    b.from.unwrap_or(r.steps - (decay * r.steps as f64).round() as u64),
                    r.steps - (decay * r.steps as f64).round() as u64
                );
            }
        }
        let ids: std::collections::BTreeSet<String> =
            s.runs.iter().map(|r| r.branch.as_ref().unwrap().family.clone()).collect();
        assert_eq!(ids.len(), 3);
        // Only WSD has a stable phase to branch from.
        let cosine = text.replace("eval_tokens = 2048", "eval_tokens = 2048\nschedule = { kind = \"cosine\" }");
        let e = parse(&cosine, "c.toml").unwrap_err();
        assert_eq!(e.field, "train.wsd_branches");
        assert!(e.message.contains("need schedule kind \"wsd\""), "{e}");
    }

    #[test]
    fn fit_section_takes_every_law_and_a_density_reference() {
        let s = parse(
            &edit("\"isoflop\"]", "\"batch_vs_loss\", \"chinchilla_varpro\"]\ndensity_ref = \"results/a/fit.json\""),
            "f.toml",
        )
        .unwrap();
        assert_eq!(s.fit.laws, ["chinchilla", "batch_vs_loss", "chinchilla_varpro"]);
        assert_eq!(s.fit.density_ref.as_deref(), Some("results/a/fit.json"));
    }

    #[test]
    fn bad_inputs_point_at_the_offending_value() {
        let mut failures = Vec::new();
        for &(from, to, line, col, field, msg) in BAD {
            let Err(e) = parse(&edit(from, to), "bad.toml") else {
                failures.push(format!("{from:?} -> {to:?}: accepted"));
                continue;
            };
            let got = (e.line, e.col, e.field.as_str());
            if got != (line, col, field) || !e.message.contains(msg) {
                failures.push(format!("{from:?} -> {to:?}: expected {line}:{col} `{field}` ~ {msg:?}, got\n{e}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    }

    /// A name of 65 characters is refused when the sweep is read (so at
    /// `plan`), not when `run` first makes its directory; 64 is accepted.
    #[test]
    fn sweep_names_are_bounded() {
        let e = parse(&edit("name = \"unit\"", &format!("name = \"{}\"", "a".repeat(100_000))), "n.toml").unwrap_err();
        assert_eq!((e.line, e.col, e.field.as_str()), (2, 8, "sweep.name"));
        assert!(e.message.contains("at most 64 characters, got 100000"), "{e}");
        assert!(e.to_string().len() < 2000);
        let e = parse(&edit("name = \"unit\"", &format!("name = \"{}\"", "a".repeat(65))), "n.toml").unwrap_err();
        assert!(e.message.contains("at most 64"), "{e}");
        assert!(parse(&edit("name = \"unit\"", &format!("name = \"{}\"", "a".repeat(64))), "n.toml").is_ok());
        assert!(parse(&edit("name = \"unit\"", "name = \"_x-1\""), "n.toml").is_ok());
    }

    /// Bytes that are not UTF-8 are located at their line and column.
    #[test]
    fn invalid_utf8_is_located() {
        let mut bytes = BASE.as_bytes().to_vec();
        let at = BASE.find("markov\"\nkind").unwrap() + 2;
        bytes[at] = 0xff;
        let e = parse_bytes(&bytes, "u.toml").unwrap_err();
        assert_eq!((e.line, e.col), (8, 11), "{e}");
        assert!(e.message.contains(&format!("invalid UTF-8 at byte {at}")), "{e}");
        let e = parse_bytes(b"\xc3", "u.toml").unwrap_err();
        assert_eq!((e.line, e.col), (1, 1), "{e}");
    }

    /// Toml's own message is empty for these; ours says what is wrong.
    #[test]
    fn truncated_files_and_control_characters_have_messages() {
        let cut = &BASE[..BASE.find("seed = 1").unwrap() + "seed =".len()];
        let e = parse(cut, "t.toml").unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        assert!(!e.message.is_empty(), "{e}");
        let e = parse(&edit("[sweep]", "[sweep] # a bell \u{7} here"), "c.toml").unwrap_err();
        assert_eq!((e.line, e.col), (1, 18), "{e}");
        assert!(e.message.contains("control character U+0007"), "{e}");
    }

    #[test]
    fn display_shows_location_field_and_caret() {
        let e = parse(&edit("[16, 32, 48]", "[16, 0, 48]"), "sweeps/bad.toml").unwrap_err();
        let text = e.to_string();
        assert!(text.starts_with("error: sweeps/bad.toml:23:14: field `grid.width[1]`: "));
        assert!(text.contains("23 | width = [16, 0, 48]\n"), "{text}");
        assert!(text.ends_with("   |              ^"), "{text}");
    }

    /// The parsed choices serialise (and so hash into run ids, data-cache fingerprints and
    /// fit.json) as the words of the sweep file, and read back from them.
    #[test]
    fn parsed_choices_serialise_as_their_words() {
        use crate::fit::LawName;
        for k in SourceKind::ALL {
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.as_str()));
            assert_eq!(serde_json::from_str::<SourceKind>(&json).unwrap(), k);
            assert_eq!(k.to_string(), k.as_str());
        }
        let words: Vec<&str> = SourceKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(words, ["builtin:markov", "builtin:pcfg", "text", "jsonl", "shards", "parquet"]);
        assert!(serde_json::from_str::<SourceKind>("\"hf:wiki\"").is_err());
        for (b, w) in [(BacktestMode::Largest, "\"largest\""), (BacktestMode::Off, "\"none\"")] {
            assert_eq!(serde_json::to_string(&b).unwrap(), w);
            assert_eq!(serde_json::from_str::<BacktestMode>(w).unwrap(), b);
        }
        for (u, w) in
            [(Utf8Policy::Replace, "\"replace\""), (Utf8Policy::Skip, "\"skip\""), (Utf8Policy::Error, "\"error\"")]
        {
            assert_eq!(serde_json::to_string(&u).unwrap(), w);
            assert_eq!(serde_json::from_str::<Utf8Policy>(w).unwrap(), u);
            assert_eq!(format!("\"{u}\""), w);
        }
        for l in LawName::ALL {
            let json = serde_json::to_string(&l).unwrap();
            assert_eq!(json, format!("\"{l}\""));
            assert_eq!(serde_json::from_str::<LawName>(&json).unwrap(), l);
        }
        assert_eq!(crate::fit::steps::LAW_NAMES.map(|n| n.parse::<LawName>().unwrap()), LawName::ALL);
        let spec = FitSpec { laws: vec![LawName::Chinchilla, LawName::LossCurve], ..FitSpec::default() };
        let json = serde_json::to_string(&spec).unwrap();
        assert!(json.starts_with(r#"{"laws":["chinchilla","loss_curve"],"backtest":"largest","#), "{json}");
    }
}
