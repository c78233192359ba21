//! The sweep file exactly as written: serde types mirroring the TOML, every key optional and
//! every leaf value wrapped in `toml::Spanned` so `resolve` can point at it, plus a
//! `KeyIndex` that maps field paths to source positions (for tables, which cannot be
//! `Spanned` when written as dotted keys). This module is also the reference for the format:
//! each key's doc comment states its meaning, default and allowed values.
//!
//! Keys are optional here even when required, because a missing key found by `resolve`
//! gets a message naming the table and the alternatives, while serde's "missing field" would not.

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::ops::Range;
use toml::Spanned;

/// A value with its byte span in the sweep file.
pub type S<T> = Spanned<T>;
/// An inline table of spanned keys and values (`grid.mix` and `grid.exclude` entries).
pub type SpannedMap<V> = S<BTreeMap<S<String>, S<V>>>;

/// The whole sweep file. Unknown keys are errors in every table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFile {
    /// `[sweep]` (required): identity of the sweep.
    pub sweep: Option<RawSweep>,
    /// `[data]` (required): tokenizer and the `[[data.source]]` domains.
    pub data: Option<RawData>,
    /// `[model]`: architecture and parametrization shared by every run.
    pub model: Option<RawModel>,
    /// `[train]`: optimisation and evaluation settings shared by every run.
    pub train: Option<RawTrain>,
    /// `[grid]` (required): the axes whose Cartesian product gives the runs.
    pub grid: Option<RawGrid>,
    /// `[target]` (required): the run the fitted laws extrapolate to.
    pub target: Option<RawTarget>,
    /// `[fit]`: which laws to fit after training.
    pub fit: Option<RawFit>,
}

/// `[sweep]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSweep {
    /// Required. `[A-Za-z0-9_-]+`, not starting with `-`, at most 64 characters; it names the
    /// sweep's output directory and its Slurm jobs.
    pub name: Option<S<String>>,
    /// Base seed of every run; default 0.
    pub seed: Option<S<i64>>,
    /// `"cpu"` (default) or `"cuda"`.
    pub backend: Option<S<String>>,
}

/// `[data]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawData {
    /// `"bytes"` (default: one token per byte, vocabulary 256) or `{ hf = "tokenizer.json" }`
    /// (a Hugging Face tokenizer file; its vocabulary becomes the model's).
    pub tokenizer: Option<S<toml::Value>>,
    /// Model vocabulary for pre-tokenized shards read with `tokenizer = "bytes"`; must exceed
    /// every token id. Default: the tokenizer's vocabulary.
    pub vocab: Option<S<i64>>,
    /// `[[data.source]]`, at least one: the training/evaluation domains, in this order.
    pub source: Option<Vec<RawSource>>,
}

/// One `[[data.source]]` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    /// Required, unique, `[a-z0-9_]+`; the metrics column is `loss_<name>`.
    pub name: Option<S<String>>,
    /// Required: `"builtin:markov"`, `"builtin:pcfg"` (synthetic, offline, known entropy
    /// floor), `"text"` (UTF-8 files, one document each), `"jsonl"` (one JSON object per line),
    /// `"shards"` (llm.c token shards: 256 x int32 header, then uint16/uint32 tokens) or
    /// `"parquet"` (one document per row of a string column, e.g. FineWeb's `text`).
    pub kind: Option<S<String>>,
    /// text/jsonl/shards/parquet (required there): a file, a directory or a glob
    /// (`data/*.jsonl.zst`, `fineweb/data/train-*.parquet`), relative to the working directory.
    /// `.gz` and `.zst` files are decompressed; a directory of a parquet source contributes
    /// its `*.parquet` files only.
    pub path: Option<S<String>>,
    /// jsonl: the string field with each record's text; default `"text"`.
    pub field: Option<S<String>>,
    /// parquet: the string column with each row's text; default `"text"`.
    pub column: Option<S<String>>,
    /// parquet: keep only the rows where a numeric column passes a comparison,
    /// `"<column> <op> <number>"` with op one of `>=`, `>`, `<=`, `<`, `==`, `!=`
    /// (FineWeb-Edu: `"int_score >= 3"`). Rows where the column is null are dropped.
    pub filter: Option<S<String>>,
    /// text/jsonl: `"replace"` (default: invalid UTF-8 becomes U+FFFD), `"skip"` or `"error"`.
    pub invalid_utf8: Option<S<String>>,
    /// File-backed: share of the domain held out for validation, in (0, 0.5]; default 0.02
    /// (at least one 8192-token chunk).
    pub val_fraction: Option<S<f64>>,
    /// shards: UTF-8 bytes per token of the corpus, so losses are also given in bits/byte.
    pub bytes_per_token: Option<S<f64>>,
}

/// `[model]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    /// `"mup"` (default) or `"sp"`.
    pub parametrization: Option<S<String>>,
    /// μP constants; only with `parametrization = "mup"`.
    pub mup: Option<RawMup>,
    /// Init std of every matrix for `"sp"` only; default 0.02.
    pub init_std: Option<S<f64>>,
    /// Context length in tokens; default 128.
    pub seq_len: Option<S<i64>>,
    /// Width of one attention head; default 32. Every grid width must be a multiple.
    pub head_dim: Option<S<i64>>,
}

/// `model.mup = { ... }`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMup {
    /// Width at which μP equals SP; default: the smallest width in the grid.
    pub base_width: Option<S<i64>>,
    /// Embedding output multiplier; default 12.0.
    pub scale_emb: Option<S<f64>>,
    /// Residual branch scale (scale_depth / sqrt(depth)); default 1.4.
    pub scale_depth: Option<S<f64>>,
    /// Base init std; default 0.1.
    pub init_std: Option<S<f64>>,
}

/// `[train]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTrain {
    /// Sequences per optimizer step; default 16. `grid.batch_size`, if given, wins.
    pub batch_size: Option<S<i64>>,
    /// Learning-rate schedule; default `{ kind = "wsd", warmup = 0.05, decay = 0.1 }`.
    pub schedule: Option<RawSchedule>,
    /// AdamW decoupled weight decay, in [0, 1] (each step shrinks weights by lr * weight_decay);
    /// default 0.1.
    pub weight_decay: Option<S<f64>>,
    /// AdamW `[beta1, beta2]`, each in [0, 1); default `[0.9, 0.95]`.
    pub betas: Option<S<Vec<S<f64>>>>,
    /// Global gradient-norm clip, >= 0 (0 disables); default 1.0.
    pub grad_clip: Option<S<f64>>,
    /// Sequences per forward/backward pass, >= 1; a batch larger than this is accumulated
    /// over several passes (for batches that do not fit in memory). Default: the whole batch.
    pub micro_batch: Option<S<i64>>,
    /// WSD decay branches: runs that differ only in tokens share one warmup + stable trunk
    /// (the longest run) and each trains only its own decay from the trunk's snapshot.
    pub wsd_branches: Option<S<bool>>,
    /// Validate every this many steps; 0 (default) means max(1, steps / 8).
    pub eval_every: Option<S<i64>>,
    /// Validation tokens per domain, at least seq_len + 1; default 16384.
    pub eval_tokens: Option<S<i64>>,
}

/// `train.schedule = { ... }`. Fractions are of the run's total steps, each in [0, 1].
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSchedule {
    /// `"wsd"` (default: warmup, decay, decay_shape), `"cosine"` (warmup, final_frac) or
    /// `"constant"` (warmup). Keys of another kind are errors.
    pub kind: Option<S<String>>,
    /// Linear warmup fraction; default 0.05.
    pub warmup: Option<S<f64>>,
    /// wsd: final decay fraction, warmup + decay <= 1; default 0.1.
    pub decay: Option<S<f64>>,
    /// wsd: `"linear"` (default), `"cosine"`, `"one_minus_sqrt"` or `"exponential"`.
    pub decay_shape: Option<S<String>>,
    /// cosine: final lr as a fraction of the peak; default 0.1.
    pub final_frac: Option<S<f64>>,
}

/// `[grid]`: runs are the Cartesian product of the axes, outermost first in the order
/// width, depth, tokens_per_param | tokens, batch_size, lr, mix (so mix varies fastest). A
/// zip group advances together and sits at the position of its first member in that order.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGrid {
    /// Required. Model widths (d_model), each > 0 and a multiple of `model.head_dim`.
    pub width: Option<S<Vec<S<i64>>>>,
    /// Required. Numbers of transformer blocks, each > 0.
    pub depth: Option<S<Vec<S<i64>>>>,
    /// Required. Peak learning rates in (0, 1]: a list, or
    /// `{ log_range = [lo, hi], num = n }` for n log-spaced values from lo to hi inclusive.
    pub lr: Option<S<RawLr>>,
    /// Training tokens as a multiple of N (non-embedding params), rounded up to whole
    /// steps. Exactly one of `tokens_per_param` and `tokens` is required.
    pub tokens_per_param: Option<S<Vec<S<f64>>>>,
    /// Training tokens (whole numbers, `1e8` allowed), rounded up to whole steps.
    pub tokens: Option<S<Vec<S<f64>>>>,
    /// Optional axis of sequences per step; default `[train.batch_size]`.
    pub batch_size: Option<S<Vec<S<i64>>>>,
    /// Optional axis of context lengths (tokens per sequence); default `[model.seq_len]`.
    pub seq_len: Option<S<Vec<S<i64>>>>,
    /// Optional axis of mixtures: a list of `{ source = weight }` (weights >= 0, not all 0,
    /// normalised to sum 1, absent sources weigh 0), or sampled mixtures
    /// `{ dirichlet = alpha, count = n, seed = s, corners = true }` (RegMix-style: n draws from
    /// a symmetric Dirichlet, plus, with corners, every single-source mixture and the uniform
    /// one). Default: one uniform mixture.
    pub mix: Option<S<RawMix>>,
    /// Groups of axis names that advance together, e.g. `[["width", "depth"]]`; the axes
    /// of a group must have equal lengths and an axis may be in one group only.
    pub zip: Option<Vec<S<Vec<S<String>>>>>,
    /// Grid points to drop: each entry `{ axis = value, ... }` drops the points matching
    /// all its keys (any axis but mix). An entry that matches nothing is an error.
    pub exclude: Option<Vec<SpannedMap<toml::Value>>>,
}

/// A key that takes a list or a table (`grid.lr`, `grid.mix`). Deserialized by hand rather
/// than `#[serde(untagged)]`, whose only error is "did not match any variant".
#[derive(Debug)]
pub enum ListOr<L, T> {
    List(Vec<L>),
    Table(T),
}

/// What a list-or-table key expects, for the type error.
pub trait Expecting {
    const WHAT: &'static str;
}

/// `grid.lr`: a list of values or a log-spaced range.
pub type RawLr = ListOr<S<f64>, RawLogRange>;

impl Expecting for RawLogRange {
    const WHAT: &'static str = "a list of learning rates or { log_range = [lo, hi], num = n }";
}

/// `grid.lr = { log_range = [lo, hi], num = n }`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLogRange {
    /// Required: `[lo, hi]` with 0 < lo < hi <= 1.
    pub log_range: Option<S<Vec<S<f64>>>>,
    /// Required: number of values, >= 2.
    pub num: Option<S<i64>>,
}

/// `grid.mix`: listed or sampled mixtures.
pub type RawMix = ListOr<SpannedMap<f64>, RawMixSample>;

impl Expecting for RawMixSample {
    const WHAT: &'static str = "a list of mixtures { source = weight } or { dirichlet = alpha, count = n }";
}

/// `grid.mix = { dirichlet = alpha, count = n, ... }`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMixSample {
    /// Required: concentration alpha > 0 of the symmetric Dirichlet (1 = uniform on the simplex).
    pub dirichlet: Option<S<f64>>,
    /// Required: number of sampled mixtures, >= 1.
    pub count: Option<S<i64>>,
    /// Sampling seed; default 0. Same seed, same mixtures.
    pub seed: Option<S<i64>>,
    /// Also every single-source mixture and the uniform one; default false.
    pub corners: Option<S<bool>>,
}

/// `[target]`: exactly one of the two keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    /// Training compute of the target run in FLOPs: at least the smallest run's, at most 1e35.
    pub flops: Option<S<f64>>,
    /// Parameter count N of the target model, in [1, 1e18].
    pub params: Option<S<f64>>,
}

/// `[fit]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFit {
    /// Default `["chinchilla"]`; each one of chinchilla, isoflop, envelope,
    /// loss_vs_compute, lr_vs_compute, batch_vs_compute, batch_vs_loss, chinchilla_varpro; no repeats.
    pub laws: Option<S<Vec<S<String>>>>,
    /// `"largest"` (default: hold out the largest-compute runs) or `"none"`.
    pub backtest: Option<S<String>>,
    /// Bootstrap resamples for confidence intervals, >= 0 (0 disables); default 1000.
    pub bootstrap: Option<S<i64>>,
    /// Runs of fewer optimizer steps are left out of the final-point laws, >= 0; default 100.
    pub min_steps: Option<S<i64>>,
    /// A reference fit.json for the density (Densing Law) table; a non-empty path.
    pub density_ref: Option<S<String>>,
    /// data_mixing law: the objective to minimise, a weighted sum of per-domain validation
    /// losses `{ source = weight }` (weights >= 0, not all 0). Default: every source weight 1.
    pub objective: Option<SpannedMap<f64>>,
}

impl<'de, L: Deserialize<'de>, T: Deserialize<'de> + Expecting> Deserialize<'de> for ListOr<L, T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ListOrVisitor(std::marker::PhantomData))
    }
}

struct ListOrVisitor<L, T>(std::marker::PhantomData<(L, T)>);

impl<'de, L: Deserialize<'de>, T: Deserialize<'de> + Expecting> Visitor<'de> for ListOrVisitor<L, T> {
    type Value = ListOr<L, T>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(T::WHAT)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let access = de::value::SeqAccessDeserializer::new(seq);
        Ok(ListOr::List(Deserialize::deserialize(access)?))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let access = de::value::MapAccessDeserializer::new(map);
        Ok(ListOr::Table(Deserialize::deserialize(access)?))
    }
}

/// Source positions of every key and array element, by field path (`grid.lr[2]`,
/// `data.source[1].kind`). Built from the same text, schema-free, so it also locates
/// tables (for "missing key" errors) and the field behind a toml type error.
#[derive(Debug, Default)]
pub struct KeyIndex {
    /// (path, span, is_element): a key's span is the key itself, an element's its value.
    entries: Vec<(String, Range<usize>, bool)>,
}

impl KeyIndex {
    /// Index `src`; empty when `src` is not valid TOML (the caller reports that error).
    pub fn build(src: &str) -> KeyIndex {
        let mut index = KeyIndex::default();
        if let Ok(tree) = toml::from_str::<Tree>(src) {
            index.add("", &tree);
        }
        index
    }

    fn add(&mut self, prefix: &str, tree: &Tree) {
        match tree {
            Tree::Table(items) => {
                for (key, child) in items {
                    let path = join(prefix, key.get_ref());
                    self.entries.push((path.clone(), key.span(), false));
                    self.add(&path, child);
                }
            }
            Tree::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    let path = format!("{prefix}[{i}]");
                    self.entries.push((path.clone(), child.span(), true));
                    self.add(&path, child.get_ref());
                }
            }
            Tree::Leaf => {}
        }
    }

    /// Span of the first occurrence of a key or element (a table's header key).
    pub fn span_of(&self, path: &str) -> Option<Range<usize>> {
        self.entries.iter().find(|e| e.0 == path).map(|e| e.1.clone())
    }

    /// The field an offset belongs to: the innermost array element containing it, or the
    /// nearest key before it (a value follows its key), whichever starts later.
    pub fn path_at(&self, offset: usize) -> Option<&str> {
        self.entries
            .iter()
            .filter(|(_, s, elem)| s.start <= offset && (!elem || offset < s.end.max(s.start + 1)))
            .max_by_key(|(p, s, _)| (s.start, p.len()))
            .map(|(p, _, _)| p.as_str())
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Schema-free shape of a TOML document, keeping key and element spans.
enum Tree {
    Table(Vec<(S<String>, Tree)>),
    Array(Vec<S<Tree>>),
    Leaf,
}

impl<'de> Deserialize<'de> for Tree {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TreeVisitor)
    }
}

struct TreeVisitor;

impl<'de> Visitor<'de> for TreeVisitor {
    type Value = Tree;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any TOML value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tree, A::Error> {
        let mut items = Vec::new();
        while let Some(key) = map.next_key::<S<String>>()? {
            items.push((key, map.next_value::<Tree>()?));
        }
        Ok(Tree::Table(items))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tree, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<S<Tree>>()? {
            items.push(item);
        }
        Ok(Tree::Array(items))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Tree, E> {
        Ok(Tree::Leaf)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Tree, E> {
        Ok(Tree::Leaf)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Tree, E> {
        Ok(Tree::Leaf)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Tree, E> {
        Ok(Tree::Leaf)
    }
    fn visit_str<E>(self, _: &str) -> Result<Tree, E> {
        Ok(Tree::Leaf)
    }
}
