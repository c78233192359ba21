//! The resolved, validated run configuration: the only thing the trainer, runner and store
//! ever see of a sweep file. A `RunConfig` cannot be invalid: `spec::resolve` checks every
//! value before building one. Its canonical JSON is hashed into the run id, so changing any
//! field here changes every run id (that is intended: a different config is a different run).

use crate::fit::LawName;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How weights are initialised and scaled with width.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Parametrization {
    /// MiniCPM's μP recipe with width multiplier m = width / base_width.
    Mup { base_width: usize, scale_emb: f64, scale_depth: f64, init_std: f64 },
    /// Standard parametrization: every matrix N(0, init_std), no multipliers.
    Sp { init_std: f64 },
}

/// Shape of the learning-rate decay at the end of a warmup-stable-decay schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecayShape {
    Linear,
    Cosine,
    OneMinusSqrt,
    Exponential,
}

/// Learning-rate schedule. Fractions are of the run's total steps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Schedule {
    Wsd { warmup: f64, decay: f64, decay_shape: DecayShape },
    Cosine { warmup: f64, final_frac: f64 },
    Constant { warmup: f64 },
}

/// A run of a WSD branch family. All members share warmup (in steps) and the constant phase,
/// so each run's first `from` steps are exactly its family's longest run (the trunk): a member
/// starts from the trunk's snapshot at `from` and trains only its own decay.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Branch {
    /// Hash of what the members share (the config without tokens, steps and warmup).
    pub family: String,
    /// The step at which this run leaves the trunk (its decay starts); None for the trunk.
    pub from: Option<u64>,
    /// Trunk only: the steps at which it keeps a snapshot for its branches.
    pub snapshots: Vec<u64>,
}

/// One data domain: a name (used in column names `loss_<name>` and mixture keys) and its source.
/// The two optional fields are absent for built-in domains, so their run ids predate them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DomainConfig {
    pub name: String,
    /// "builtin:markov", "builtin:pcfg", "text", "jsonl", "shards" or "parquet" (serialised as
    /// that text).
    pub kind: SourceKind,
    /// Files of a text/jsonl/shards/parquet domain, as written in the sweep file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<FileSource>,
    /// blake3 of everything the domain's tokens depend on (file contents, options, tokenizer),
    /// filled in by `data::prepare::stamp` before run ids are taken: changed data is a new run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

/// A generated (built-in) data source: offline, with a known entropy floor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Builtin {
    Markov,
    Pcfg,
}

/// What a domain's data is: a built-in generator or files of one format. Serialised as the
/// sweep file's word (`"builtin:markov"`, `"jsonl"`, ...), so run ids and data-cache
/// fingerprints are those of the string it replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum SourceKind {
    Builtin(Builtin),
    /// UTF-8 files, one document each.
    Text,
    /// One JSON object per line, the text in a string field.
    Jsonl,
    /// llm.c token shards.
    Shards,
    /// Parquet files (FineWeb's layout), the text in a string column.
    Parquet,
}

impl SourceKind {
    /// Every kind, in the order the sweep file's error messages list them.
    pub const ALL: [SourceKind; 6] = [
        SourceKind::Builtin(Builtin::Markov),
        SourceKind::Builtin(Builtin::Pcfg),
        SourceKind::Text,
        SourceKind::Jsonl,
        SourceKind::Shards,
        SourceKind::Parquet,
    ];

    /// The word the sweep file uses.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Builtin(Builtin::Markov) => "builtin:markov",
            SourceKind::Builtin(Builtin::Pcfg) => "builtin:pcfg",
            SourceKind::Text => "text",
            SourceKind::Jsonl => "jsonl",
            SourceKind::Shards => "shards",
            SourceKind::Parquet => "parquet",
        }
    }

    /// The kind the sweep file's word names, if any.
    pub fn parse(s: &str) -> Option<SourceKind> {
        SourceKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The generator of a built-in kind; None for file-backed ones.
    pub fn builtin(self) -> Option<Builtin> {
        match self {
            SourceKind::Builtin(b) => Some(b),
            _ => None,
        }
    }
}

display_as_word!(SourceKind, as_str);

impl From<SourceKind> for String {
    fn from(k: SourceKind) -> String {
        k.as_str().to_string()
    }
}

impl TryFrom<String> for SourceKind {
    type Error = String;
    fn try_from(s: String) -> Result<SourceKind, String> {
        SourceKind::parse(&s).ok_or_else(|| {
            let all: Vec<String> = SourceKind::ALL.iter().map(|k| format!("\"{k}\"")).collect();
            format!("unknown data source kind \"{s}\"; expected one of {}", all.join(", "))
        })
    }
}

/// Where a file-backed domain's tokens come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileSource {
    /// A file, a directory (every non-hidden file below it, sorted) or a glob; relative paths
    /// are relative to the working directory (like every path windtunnel is given).
    pub path: String,
    /// jsonl: the string field holding each record's text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// text/jsonl: what invalid UTF-8 becomes.
    pub invalid_utf8: Utf8Policy,
    /// Share of the domain's 8192-token chunks held out for validation (at least one chunk).
    pub val_fraction: f64,
    /// shards: UTF-8 bytes per token of the corpus, for bits/byte (unknown otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_per_token: Option<f64>,
    /// parquet: the string column holding each row's text. (Optional and skipped when absent,
    /// like `filter`, so the fingerprints of the other kinds are those they had before.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// parquet: only rows whose numeric column passes this comparison are read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<RowFilter>,
}

/// A parquet source's row filter, `"<column> <op> <number>"` in the sweep file (FineWeb-Edu's
/// `"int_score >= 3"`). Rows whose column is null fail every comparison.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RowFilter {
    pub column: String,
    pub op: CmpOp,
    /// Compared as f64: exact for integer columns below 2^53.
    pub value: f64,
}

/// The comparison of a `RowFilter`, serialised as its symbol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CmpOp {
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "==")]
    Eq,
    #[serde(rename = "!=")]
    Ne,
}

impl CmpOp {
    /// Two-character symbols first, so `>=` is not read as `>` followed by `=3`.
    pub const ALL: [CmpOp; 6] = [CmpOp::Ge, CmpOp::Le, CmpOp::Eq, CmpOp::Ne, CmpOp::Gt, CmpOp::Lt];

    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Ge => ">=",
            CmpOp::Gt => ">",
            CmpOp::Le => "<=",
            CmpOp::Lt => "<",
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
        }
    }
}

display_as_word!(CmpOp, as_str);

impl RowFilter {
    /// Parses `"<column> <op> <number>"`; the error says what was expected (the caller locates it).
    pub fn parse(s: &str) -> Result<RowFilter, String> {
        let expected = "expected \"<column> <op> <number>\" with <op> one of >=, >, <=, <, ==, != \
                        (e.g. \"int_score >= 3\")";
        let found = CmpOp::ALL.iter().filter_map(|&op| s.find(op.as_str()).map(|at| (at, op))).min_by_key(|f| f.0);
        let Some((at, op)) = found else { return Err(format!("{expected}, got \"{s}\" (no comparison)")) };
        let column = s[..at].trim();
        let rest = s[at + op.as_str().len()..].trim();
        if column.is_empty() {
            return Err(format!("{expected}, got \"{s}\" (no column before `{op}`)"));
        }
        if column.contains(['<', '>', '=', '!']) || rest.contains(['<', '>', '=', '!']) {
            return Err(format!("{expected}, got \"{s}\" (one comparison only)"));
        }
        let value: f64 = match rest.parse() {
            Ok(v) if f64::is_finite(v) => v,
            _ => return Err(format!("{expected}, got \"{s}\" (`{rest}` is not a finite number)")),
        };
        Ok(RowFilter { column: column.to_string(), op, value })
    }

    /// Whether a row whose filter column holds `v` (None: null) is kept.
    pub fn keeps(&self, v: Option<f64>) -> bool {
        let Some(v) = v else { return false };
        match self.op {
            CmpOp::Ge => v >= self.value,
            CmpOp::Gt => v > self.value,
            CmpOp::Le => v <= self.value,
            CmpOp::Lt => v < self.value,
            CmpOp::Eq => v == self.value,
            CmpOp::Ne => v != self.value,
        }
    }
}

impl std::fmt::Display for RowFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "{} {} {}", self.column, self.op, self.value)
    }
}

/// The tokenizer of a sweep's file-backed domains.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TokenizerSpec {
    /// One token per byte, vocabulary 256.
    #[default]
    Bytes,
    /// A Hugging Face tokenizer.json (path as written, relative to the working directory).
    Hf { path: String },
}

/// The sweep-wide data settings that are not per run (their effect on runs is stamped into
/// each RunConfig: vocab and domain fingerprints).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct DataSpec {
    pub tokenizer: TokenizerSpec,
    /// `[data] vocab`: the model's vocabulary when the tokenizer does not fix it (shards).
    pub vocab: Option<usize>,
    /// `file:line:col` of each `[[data.source]]`, for data errors found after parsing.
    pub source_at: Vec<String>,
}

/// Everything needed to train one run, fully resolved (no defaults left to apply).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    pub sweep: String,
    pub seed: u64,
    // model
    pub width: usize,
    pub depth: usize,
    pub heads: usize,
    pub seq_len: usize,
    pub vocab: usize,
    pub parametrization: Parametrization,
    // optimisation
    pub lr: f64,
    /// Sequences per optimizer step.
    pub batch_size: usize,
    /// Training tokens (= steps * batch_size * seq_len, rounded to whole steps).
    pub tokens: u64,
    pub steps: u64,
    pub schedule: Schedule,
    pub weight_decay: f64,
    pub beta1: f64,
    pub beta2: f64,
    /// Global-norm gradient clip; 0 disables it.
    pub grad_clip: f64,
    /// Sequences per forward/backward pass when smaller than `batch_size` (gradient
    /// accumulation); absent means the whole batch at once. Omitted from the JSON (and so from
    /// the run id) when absent, so configs from before this field keep their ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub micro_batch: Option<usize>,
    /// WSD decay branches (`[train] wsd_branches = true`): this run's place in its family of
    /// runs that differ only in tokens. Absent otherwise (and then absent from the run id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<Branch>,
    // evaluation
    /// Validate every this many steps (and always at the last step).
    pub eval_every: u64,
    /// Validation tokens per domain.
    pub eval_tokens: u64,
    // data
    pub domains: Vec<DomainConfig>,
    /// Mixture weights over `domains` by name, normalised to sum to 1.
    pub mix: BTreeMap<String, f64>,
}

/// What the fit extrapolates to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct Target {
    pub flops: Option<f64>,
    pub params: Option<f64>,
}

/// Which fits to run after training.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FitSpec {
    pub laws: Vec<LawName>,
    /// "largest" (hold out the largest-compute run(s)) or "none".
    pub backtest: BacktestMode,
    pub bootstrap: usize,
    /// Runs of fewer optimizer steps than this are left out of the final-point laws (their
    /// final loss is still the initial transient: see `DEFAULT_MIN_STEPS`); their
    /// curves still count in the loss-curve law, which models that transient.
    #[serde(default = "default_min_steps")]
    pub min_steps: u64,
    /// A reference fit.json (path as written, relative to the working directory): each run's
    /// density (effective-parameter ratio) against that law lands in fit.json's `laws.density`.
    #[serde(default)]
    pub density_ref: Option<String>,
    /// data_mixing: weights of the per-domain validation losses in the objective the
    /// recommended mixture minimises (normalised to sum 1; default equal).
    #[serde(default)]
    pub objective: Option<BTreeMap<String, f64>>,
}

/// What a text/jsonl source's bytes that are not UTF-8 become (`invalid_utf8`), serialised as
/// the sweep file's word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Utf8Policy {
    /// Each invalid sequence becomes U+FFFD (like Python's errors="replace").
    Replace,
    /// Invalid sequences are dropped.
    Skip,
    /// The file is rejected, naming the byte offset.
    Error,
}

impl Utf8Policy {
    pub const ALL: [Utf8Policy; 3] = [Utf8Policy::Replace, Utf8Policy::Skip, Utf8Policy::Error];

    /// The word the sweep file uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Utf8Policy::Replace => "replace",
            Utf8Policy::Skip => "skip",
            Utf8Policy::Error => "error",
        }
    }
}

display_as_word!(Utf8Policy, as_str);

/// `[fit] backtest`: serialised as the sweep file's word, `"largest"` or `"none"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BacktestMode {
    /// Hold out the largest-compute run(s), fit the rest and score the prediction.
    #[serde(rename = "largest")]
    Largest,
    /// No backtest.
    #[serde(rename = "none")]
    Off,
}

impl BacktestMode {
    pub const ALL: [BacktestMode; 2] = [BacktestMode::Largest, BacktestMode::Off];

    /// The word the sweep file uses.
    pub fn as_str(self) -> &'static str {
        match self {
            BacktestMode::Largest => "largest",
            BacktestMode::Off => "none",
        }
    }
}

display_as_word!(BacktestMode, as_str);

/// `[fit] min_steps` when the file gives none. Below about a hundred updates a run's final
/// loss still carries the initial transient (the fall from ln(vocab) paced by warmup and
/// Adam's moment estimates, not by N and D): on the quickstart such runs (18 to 81 steps) pulled
/// the final-point law 2.5% off its nearest held-out runs (rollout at 2x: 0.4% without them).
pub const DEFAULT_MIN_STEPS: u64 = 100;

fn default_min_steps() -> u64 {
    DEFAULT_MIN_STEPS
}

impl Default for FitSpec {
    fn default() -> Self {
        FitSpec {
            laws: vec![LawName::Chinchilla],
            backtest: BacktestMode::Largest,
            bootstrap: 1000,
            min_steps: DEFAULT_MIN_STEPS,
            density_ref: None,
            objective: None,
        }
    }
}

/// The backend a sweep trains on (`backend = "cpu" | "cuda"`; also the worker's `--backend`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Cpu,
    Cuda,
}

impl Backend {
    /// The word the sweep file and the command line use.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Cpu => "cpu",
            Backend::Cuda => "cuda",
        }
    }
}

display_as_word!(Backend, name);

/// A parsed and validated sweep: its runs in grid order, the target and the fits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sweep {
    pub name: String,
    /// Path of the sweep file as given.
    pub path: String,
    pub backend: Backend,
    pub runs: Vec<RunConfig>,
    pub target: Target,
    pub fit: FitSpec,
    /// Tokenizer and data settings (absent in sweeps serialised before it existed).
    #[serde(default)]
    pub data: DataSpec,
}

impl RunConfig {
    /// Run id: the first 16 hex digits of blake3 over the canonical JSON of the config.
    /// Struct fields serialise in declaration order and maps are BTreeMaps, so the JSON is
    /// canonical and the id is stable across machines and across field order in the TOML.
    /// `micro_batch` is left out: gradient accumulation is an execution detail (it changes how
    /// a step is computed to fit in memory, not what the step computes), so setting it must not
    /// retrain every finished run.
    pub fn run_id(&self) -> String {
        let json = if self.micro_batch.is_some() {
            serde_json::to_vec(&RunConfig { micro_batch: None, ..self.clone() })
        } else {
            serde_json::to_vec(self)
        }
        .expect("RunConfig serialises");
        blake3::hash(&json).to_hex()[..16].to_string()
    }
}
