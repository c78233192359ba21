//! Import manifests (`windtunnel import MANIFEST.toml`): another trainer's runs described well
//! enough to become an ordinary results folder. Parsed like a sweep file: serde types with
//! spans (`Raw*`), then validated into `Manifest`, every problem a `SpecError` naming the file,
//! line, column and field. The format is documented in docs/import.md; each raw key's doc
//! comment here says the same in brief.

use super::config::Target;
use super::diag::{Ctx, Res, SpecError};
use super::raw::{KeyIndex, S};
use crate::fit::LawName;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::ops::Bound::{Excluded, Unbounded};

/// The whole manifest. Unknown keys are errors in every table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    import: Option<RawImport>,
    columns: Option<RawColumns>,
    params: Option<RawParams>,
    runs: Option<RawRuns>,
    target: Option<RawTarget>,
    fit: Option<RawFit>,
}

/// `[import]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImport {
    /// Required: names the results folder (`results/<name>/`), `[A-Za-z0-9_-]+`.
    name: Option<S<String>>,
    /// Required: a glob or a list of paths (relative to the working directory).
    files: Option<S<toml::Value>>,
    /// `"csv"`, `"parquet"` or `"jsonl"`; default: each file's extension.
    format: Option<S<String>>,
    /// One long table: the column naming each row's run. Default: one file per run, named by
    /// its file stem.
    run_column: Option<S<String>>,
    /// A pattern of the run names with `<field>` captures, e.g. `"<size>-<k>xC"`.
    name_pattern: Option<S<String>>,
}

/// `[columns]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawColumns {
    step: Option<S<String>>,
    tokens: Option<S<String>>,
    /// A number, or a column holding it.
    tokens_per_step: Option<S<toml::Value>>,
    lr: Option<S<String>>,
    /// Required: the primary validation loss (nats/token).
    loss: Option<S<String>>,
    /// The other validation losses: a table name -> column, or a pattern with one `*`.
    losses: Option<S<toml::Value>>,
    /// Task metrics (bits per byte of the correct answer, accuracy): table or pattern.
    task_bpb: Option<S<toml::Value>>,
    task_acc: Option<S<toml::Value>>,
    /// A column with each row's parameter count (instead of `[params]`).
    params: Option<S<String>>,
}

/// `[params]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParams {
    /// One parameter count for every run.
    value: Option<S<f64>>,
    /// A JSON object keyed by a capture of `name_pattern`.
    sizes: Option<S<String>>,
    /// The capture that keys `sizes`; default `"size"`.
    key: Option<S<String>>,
    /// Field of each size entry holding N; default `"n"`.
    n_field: Option<S<String>>,
    /// Field holding training FLOPs per token; default none (then 6N).
    flops_per_token_field: Option<S<String>>,
    /// Fields holding the width and depth, for the report's shapes; default none.
    width_field: Option<S<String>>,
    depth_field: Option<S<String>>,
    /// Literal FLOPs per token for every run (instead of 6N).
    flops_per_token: Option<S<f64>>,
}

/// `[runs]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRuns {
    /// Run-name globs held out of the fit and predicted as checks.
    checks: Option<S<Vec<S<String>>>>,
    /// Run-name globs not imported at all.
    exclude: Option<S<Vec<S<String>>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    flops: Option<S<f64>>,
    params: Option<S<f64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFit {
    laws: Option<S<Vec<S<String>>>>,
    bootstrap: Option<S<i64>>,
    /// Bootstrap resamples of the other validation sets' laws; default 200.
    bootstrap_other: Option<S<i64>>,
}

/// Where the run files are and how they are laid out.
#[derive(Clone, Debug, PartialEq)]
pub enum Files {
    Glob(String),
    List(Vec<String>),
}

/// A file format of the run files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv,
    Parquet,
    Jsonl,
}

impl Format {
    pub const ALL: [Format; 3] = [Format::Csv, Format::Parquet, Format::Jsonl];
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Parquet => "parquet",
            Format::Jsonl => "jsonl",
        }
    }
}

/// How the tokens of an evaluation are known.
#[derive(Clone, Debug, PartialEq)]
pub enum Tokens {
    Column(String),
    PerStep(f64),
    PerStepColumn(String),
}

/// Named columns: an explicit table, or a pattern whose `*` is the name.
#[derive(Clone, Debug, PartialEq)]
pub enum Named {
    Table(BTreeMap<String, String>),
    Pattern(String),
}

impl Named {
    /// (name, column) of every match among `columns`, sorted by name.
    pub fn resolve(&self, columns: &[String]) -> Vec<(String, String)> {
        match self {
            Named::Table(t) => t.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            Named::Pattern(p) => {
                let (pre, post) = p.split_once('*').expect("validated: one `*`");
                let mut out: Vec<(String, String)> = columns
                    .iter()
                    .filter(|c| c.len() > pre.len() + post.len() && c.starts_with(pre) && c.ends_with(post))
                    .map(|c| (sanitize(&c[pre.len()..c.len() - post.len()]), c.clone()))
                    .collect();
                out.sort();
                out
            }
        }
    }
}

/// A name usable in a column name (`loss_<name>`): lowercase letters, digits and `_`.
pub fn sanitize(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect()
}

/// Each run's parameter count (and optional FLOPs per token, width and depth).
#[derive(Clone, Debug, PartialEq)]
pub enum Params {
    Value(f64),
    Column(String),
    Sizes {
        path: String,
        key: String,
        n_field: String,
        fpt_field: Option<String>,
        width_field: Option<String>,
        depth_field: Option<String>,
    },
}

/// A validated manifest.
#[derive(Clone, Debug, PartialEq)]
pub struct Manifest {
    pub name: String,
    /// The manifest's path as given (labels messages and the report's provenance).
    pub path: String,
    pub files: Files,
    pub format: Option<Format>,
    pub run_column: Option<String>,
    pub name_pattern: Option<String>,
    pub step: Option<String>,
    pub tokens: Tokens,
    pub lr: Option<String>,
    pub loss: String,
    pub losses: Option<Named>,
    pub task_bpb: Option<Named>,
    pub task_acc: Option<Named>,
    pub params: Params,
    pub flops_per_token: Option<f64>,
    pub checks: Vec<String>,
    pub exclude: Vec<String>,
    pub target: Target,
    pub laws: Vec<LawName>,
    pub bootstrap: usize,
    pub bootstrap_other: usize,
}

/// Captures of `pattern` (`<field>` placeholders, the rest literal) in `name`; None when the
/// name does not match. The pattern matches the start of the name (a suffix such as `-rerun`
/// is free); each capture is the shortest non-empty text that lets the rest match, but one that
/// ends the pattern takes the rest of the name.
pub fn captures(pattern: &str, name: &str) -> Option<BTreeMap<String, String>> {
    fn go(p: &str, s: &str, out: &mut BTreeMap<String, String>) -> bool {
        match p.find('<') {
            None => s.starts_with(p),
            Some(i) => {
                let (lit, rest) = (&p[..i], &p[i + 1..]);
                let Some(s) = s.strip_prefix(lit) else { return false };
                let Some(close) = rest.find('>') else { return false };
                let (field, after) = (&rest[..close], &rest[close + 1..]);
                if after.is_empty() {
                    out.insert(field.to_string(), s.to_string());
                    return !s.is_empty();
                }
                for end in 1..=s.len() {
                    if !s.is_char_boundary(end) {
                        continue;
                    }
                    if go(after, &s[end..], out) {
                        out.insert(field.to_string(), s[..end].to_string());
                        return true;
                    }
                }
                false
            }
        }
    }
    let mut out = BTreeMap::new();
    go(pattern, name, &mut out).then_some(out)
}

/// Whether `name` matches the glob `pat` (`*` any text, `?` one character).
pub fn glob_match(pat: &str, name: &str) -> bool {
    glob::Pattern::new(pat).is_ok_and(|p| p.matches(name))
}

/// Parse and validate manifest text; `path` labels errors.
pub fn parse(text: &str, path: &str) -> Result<Manifest, SpecError> {
    let index = KeyIndex::build(text);
    let raw: RawManifest = toml::from_str(text).map_err(|e| SpecError::from_toml(&e, text, path, &index))?;
    let ctx = Ctx { src: text, path, index };
    resolve(raw, &ctx, path)
}

/// Read, parse and validate a manifest file.
pub fn load(path: &std::path::Path) -> Result<Manifest, SpecError> {
    let shown = path.display().to_string();
    let meta =
        std::fs::metadata(path).map_err(|e| SpecError::unlocated(&shown, &format!("cannot read the manifest: {e}")))?;
    if !meta.is_file() || meta.len() > 16 << 20 {
        return Err(SpecError::unlocated(&shown, "cannot read the manifest: not a regular file of at most 16 MiB"));
    }
    let bytes =
        std::fs::read(path).map_err(|e| SpecError::unlocated(&shown, &format!("cannot read the manifest: {e}")))?;
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        let at = e.valid_up_to();
        SpecError::at(
            &String::from_utf8_lossy(&bytes),
            &shown,
            at..at + 1,
            "",
            "invalid UTF-8: a manifest must be UTF-8 text",
        )
    })?;
    parse(text, &shown)
}

fn missing(ctx: &Ctx, table: &str, key: &str, what: &str) -> SpecError {
    ctx.err_key(table, &format!("{table}.{key}"), &format!("missing `{key}` in [{table}]: {what}"))
}

fn non_empty(ctx: &Ctx, v: &S<String>, field: &str) -> Res<String> {
    if v.get_ref().trim().is_empty() {
        return Err(ctx.err(v.span(), field, "must not be empty"));
    }
    Ok(v.get_ref().clone())
}

fn named(ctx: &Ctx, v: &S<toml::Value>, field: &str) -> Res<Named> {
    match v.get_ref() {
        toml::Value::String(p) => {
            if p.matches('*').count() != 1 {
                return Err(ctx.err(
                    v.span(),
                    field,
                    &format!("a pattern must hold exactly one `*` (the name), got {p:?}"),
                ));
            }
            Ok(Named::Pattern(p.clone()))
        }
        toml::Value::Table(t) => {
            let mut out = BTreeMap::new();
            for (k, c) in t {
                let Some(c) = c.as_str() else {
                    return Err(ctx.err(v.span(), &format!("{field}.{k}"), "expected a column name (a string)"));
                };
                if sanitize(k) != *k {
                    return Err(ctx.err(
                        v.span(),
                        &format!("{field}.{k}"),
                        "names are lowercase letters, digits and `_`",
                    ));
                }
                out.insert(k.clone(), c.to_string());
            }
            Ok(Named::Table(out))
        }
        _ => {
            Err(ctx.err(v.span(), field, "expected a pattern with one `*` (\"eval/*/loss\") or a table name = column"))
        }
    }
}

fn globs(ctx: &Ctx, v: &Option<S<Vec<S<String>>>>, field: &str) -> Res<Vec<String>> {
    let mut out = Vec::new();
    for (i, g) in v.iter().flat_map(|l| l.get_ref().iter()).enumerate() {
        if glob::Pattern::new(g.get_ref()).is_err() {
            return Err(ctx.err(g.span(), &format!("{field}[{i}]"), "not a valid glob"));
        }
        out.push(g.get_ref().clone());
    }
    Ok(out)
}

fn resolve(raw: RawManifest, ctx: &Ctx, path: &str) -> Res<Manifest> {
    let imp = raw.import.ok_or_else(|| ctx.err(0..0, "import", "missing table [import] (name and files)"))?;
    let name_v = imp.name.ok_or_else(|| missing(ctx, "import", "name", "it names the results folder"))?;
    let name = name_v.get_ref().clone();
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('-')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !ok {
        return Err(ctx.err(name_v.span(), "import.name", "must be 1 to 64 of [A-Za-z0-9_-], not starting with `-`"));
    }
    let files_v = imp.files.ok_or_else(|| missing(ctx, "import", "files", "a glob or a list of run files"))?;
    let files = match files_v.get_ref() {
        toml::Value::String(g) if !g.trim().is_empty() => Files::Glob(g.clone()),
        toml::Value::Array(a) if !a.is_empty() && a.iter().all(|x| x.is_str()) => {
            Files::List(a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
        }
        _ => {
            return Err(ctx.err(
                files_v.span(),
                "import.files",
                "expected a glob (a string) or a non-empty list of paths",
            ))
        }
    };
    let format = match &imp.format {
        Some(f) => Some(ctx.pick(f, "import.format", &Format::ALL, Format::as_str)?),
        None => None,
    };
    let run_column = imp.run_column.as_ref().map(|v| non_empty(ctx, v, "import.run_column")).transpose()?;
    let name_pattern = match &imp.name_pattern {
        Some(p) => {
            let t = p.get_ref();
            if t.matches('<').count() != t.matches('>').count() {
                return Err(ctx.err(p.span(), "import.name_pattern", "unbalanced `<field>` placeholders"));
            }
            Some(t.clone())
        }
        None => None,
    };
    let cols = raw.columns.ok_or_else(|| ctx.err(0..0, "columns", "missing table [columns] (at least `loss`)"))?;
    let loss_v =
        cols.loss.as_ref().ok_or_else(|| missing(ctx, "columns", "loss", "the primary validation loss column"))?;
    let loss = non_empty(ctx, loss_v, "columns.loss")?;
    let step = cols.step.as_ref().map(|v| non_empty(ctx, v, "columns.step")).transpose()?;
    let tokens = match (&cols.tokens, &cols.tokens_per_step) {
        (Some(t), None) => Tokens::Column(non_empty(ctx, t, "columns.tokens")?),
        (None, Some(v)) => {
            if step.is_none() {
                return Err(ctx.err(
                    v.span(),
                    "columns.tokens_per_step",
                    "needs `step` (tokens = step x tokens_per_step)",
                ));
            }
            match v.get_ref() {
                toml::Value::String(c) if !c.is_empty() => Tokens::PerStepColumn(c.clone()),
                toml::Value::Integer(i) if *i > 0 => Tokens::PerStep(*i as f64),
                toml::Value::Float(f) if *f > 0.0 && f.is_finite() => Tokens::PerStep(*f),
                _ => {
                    return Err(ctx.err(v.span(), "columns.tokens_per_step", "expected a number > 0 or a column name"))
                }
            }
        }
        (Some(t), Some(_)) => {
            return Err(ctx.err(t.span(), "columns.tokens", "give either `tokens` or `tokens_per_step`, not both"))
        }
        (None, None) => {
            return Err(missing(ctx, "columns", "tokens", "a tokens column, or `tokens_per_step` with `step`"))
        }
    };
    let lr = cols.lr.as_ref().map(|v| non_empty(ctx, v, "columns.lr")).transpose()?;
    let losses = cols.losses.as_ref().map(|v| named(ctx, v, "columns.losses")).transpose()?;
    let task_bpb = cols.task_bpb.as_ref().map(|v| named(ctx, v, "columns.task_bpb")).transpose()?;
    let task_acc = cols.task_acc.as_ref().map(|v| named(ctx, v, "columns.task_acc")).transpose()?;
    let rp = raw.params.unwrap_or_default();
    let opt = |v: &Option<S<String>>, f: &str| v.as_ref().map(|x| non_empty(ctx, x, f)).transpose();
    let params = match (&cols.params, &rp.value, &rp.sizes) {
        (Some(c), None, None) => Params::Column(non_empty(ctx, c, "columns.params")?),
        (None, Some(v), None) => Params::Value(ctx.float(v, "params.value", (Excluded(0.0), Unbounded))?),
        (None, None, Some(s)) => {
            let key = opt(&rp.key, "params.key")?.unwrap_or_else(|| "size".into());
            let pat = name_pattern.as_deref().unwrap_or("");
            if !pat.contains(&format!("<{key}>")) {
                return Err(ctx.err(
                    s.span(),
                    "params.sizes",
                    &format!("keyed by the capture `<{key}>`, which `import.name_pattern` must hold (e.g. \"<{key}>-<k>xC\")"),
                ));
            }
            Params::Sizes {
                path: non_empty(ctx, s, "params.sizes")?,
                key,
                n_field: opt(&rp.n_field, "params.n_field")?.unwrap_or_else(|| "n".into()),
                fpt_field: opt(&rp.flops_per_token_field, "params.flops_per_token_field")?,
                width_field: opt(&rp.width_field, "params.width_field")?,
                depth_field: opt(&rp.depth_field, "params.depth_field")?,
            }
        }
        (None, None, None) => {
            return Err(ctx.err_key(
                "params",
                "params",
                "each run's parameter count is needed: `[params] value`, `[params] sizes` or `[columns] params`",
            ))
        }
        _ => {
            return Err(ctx.err_key(
                "params",
                "params",
                "give exactly one of `[params] value`, `[params] sizes` and `[columns] params`",
            ))
        }
    };
    let flops_per_token = rp
        .flops_per_token
        .as_ref()
        .map(|v| ctx.float(v, "params.flops_per_token", (Excluded(0.0), Unbounded)))
        .transpose()?;
    let runs = raw.runs.unwrap_or_default();
    let checks = globs(ctx, &runs.checks, "runs.checks")?;
    let exclude = globs(ctx, &runs.exclude, "runs.exclude")?;
    let rt = raw.target.unwrap_or_default();
    let pos = |v: &Option<S<f64>>, f: &str| v.as_ref().map(|x| ctx.float(x, f, (Excluded(0.0), Unbounded))).transpose();
    let target = Target { flops: pos(&rt.flops, "target.flops")?, params: pos(&rt.params, "target.params")? };
    if let (Some(_), Some(_)) = (target.flops, target.params) {
        return Err(ctx.err_key("target", "target", "give either `flops` or `params`, not both"));
    }
    let rf = raw.fit.unwrap_or_default();
    let mut laws = Vec::new();
    for (i, l) in rf.laws.iter().flat_map(|v| v.get_ref().iter()).enumerate() {
        let law = ctx.pick(l, &format!("fit.laws[{i}]"), &LawName::ALL, LawName::as_str)?;
        if matches!(law, LawName::DataMixing | LawName::LossCurve) {
            return Err(ctx.err(
                l.span(),
                &format!("fit.laws[{i}]"),
                "not available for imported runs (it needs the run folders)",
            ));
        }
        if law != LawName::Chinchilla {
            laws.push(law);
        }
    }
    let count = |v: &Option<S<i64>>, f: &str, d: i64| v.as_ref().map_or(Ok(d), |x| ctx.int(x, f, 0, 100_000));
    let bootstrap = count(&rf.bootstrap, "fit.bootstrap", 1000)? as usize;
    let bootstrap_other = count(&rf.bootstrap_other, "fit.bootstrap_other", 200)? as usize;
    Ok(Manifest {
        name,
        path: path.to_string(),
        files,
        format,
        run_column,
        name_pattern,
        step,
        tokens,
        lr,
        loss,
        losses,
        task_bpb,
        task_acc,
        params,
        flops_per_token,
        checks,
        exclude,
        target,
        laws,
        bootstrap,
        bootstrap_other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"[import]
name = "ladder"
files = "runs/*.csv"
name_pattern = "<size>-<k>xC"

[columns]
step = "_step"
tokens = "tokens"
loss = "eval/c4/loss"
losses = "eval/*/loss"

[params]
sizes = "sizes.json"

[runs]
checks = ["3B-*"]
"#;

    #[test]
    fn a_manifest_parses_into_typed_fields() {
        let m = parse(OK, "m.toml").unwrap();
        assert_eq!(m.name, "ladder");
        assert_eq!(m.files, Files::Glob("runs/*.csv".into()));
        assert_eq!(m.tokens, Tokens::Column("tokens".into()));
        assert!(matches!(&m.params, Params::Sizes { key, n_field, .. } if key == "size" && n_field == "n"));
        assert_eq!((m.checks.clone(), m.bootstrap), (vec!["3B-*".to_string()], 1000));
        let cols: Vec<String> = ["eval/c4/loss", "eval/pile/loss", "_step"].iter().map(|s| s.to_string()).collect();
        let got = m.losses.unwrap().resolve(&cols);
        assert_eq!(got, vec![("c4".into(), "eval/c4/loss".into()), ("pile".into(), "eval/pile/loss".into())]);
    }

    #[test]
    fn bad_manifests_are_located() {
        let e = parse(&OK.replace("loss = \"eval/c4/loss\"\n", ""), "m.toml").unwrap_err().to_string();
        assert!(e.starts_with("error: m.toml:6:2: field `columns.loss`: missing `loss` in [columns]"), "{e}");
        let e = parse(&OK.replace("[runs]", "[runs]\nbogus = 1"), "m.toml").unwrap_err().to_string();
        assert!(e.contains("m.toml:16:1: field `runs.bogus`: unknown field `bogus`"), "{e}");
        let e = parse(&OK.replace("\"eval/*/loss\"", "\"eval/loss\""), "m.toml").unwrap_err().to_string();
        assert!(e.contains("m.toml:10:10: field `columns.losses`: a pattern must hold exactly one `*`"), "{e}");
        let e = parse(&OK.replace("<size>-<k>xC", "<n>-<k>xC"), "m.toml").unwrap_err().to_string();
        assert!(e.contains("field `params.sizes`") && e.contains("`<size>`"), "{e}");
        let e = parse(&OK.replace("tokens = \"tokens\"", "tokens = \"tokens\"\ntokens_per_step = 4"), "m.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("field `columns.tokens`: give either"), "{e}");
    }

    #[test]
    fn name_patterns_capture_fields() {
        let c = captures("<size>-<k>xC", "190M-0.5xC").unwrap();
        assert_eq!((c["size"].as_str(), c["k"].as_str()), ("190M", "0.5"));
        let c = captures("<size>-<k>xC", "190M-1xC-rerun").unwrap();
        assert_eq!((c["size"].as_str(), c["k"].as_str()), ("190M", "1"));
        assert_eq!(captures("<size>-<k>xC", "1B-10xC").unwrap()["k"], "10");
        assert!(captures("<size>-<k>xC", "190M").is_none());
        assert_eq!(captures("run-<id>", "run-abc").unwrap()["id"], "abc");
        assert!(glob_match("3B-*", "3B-10xC") && !glob_match("3B-*", "370M-1xC"));
    }
}
