//! The results frame: all finished runs' evaluation points as one Polars DataFrame, written as
//! `runs.parquet` (rebuilt from the run folders each time, never appended), and the reader
//! that turns a frame (our Parquet, or anyone's CSV/Parquet) into fit observations, so `fit`
//! reads its own output exactly the way it reads published data.

use super::{RunDir, SweepDir};
use crate::fit::Obs;
use crate::spec::config::RunConfig;
use crate::{flops, UserError};
use anyhow::Result;
use polars::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;

/// One row per (finished run, evaluation point).
pub fn build(runs: &[(RunDir, RunConfig)]) -> Result<DataFrame> {
    let mut s: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut i: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    let mut f: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut b: Vec<bool> = Vec::new();
    let domains: Vec<String> =
        runs.first().map(|(_, c)| c.domains.iter().map(|d| d.name.clone()).collect()).unwrap_or_default();
    // WSD decay branches link to their trunk (the family's longest run): `branch_of` is its run
    // id and `branch_from` the step the branch left it (empty / -1 for other runs).
    let trunks: std::collections::HashMap<&str, String> = runs
        .iter()
        .filter_map(|(_, c)| c.branch.as_ref().filter(|b| b.from.is_none()).map(|b| (b.family.as_str(), c.run_id())))
        .collect();
    for (dir, cfg) in runs {
        let evals = dir.read_evals()?;
        let from = cfg.branch.as_ref().and_then(|b| b.from);
        let trunk = match (&cfg.branch, from) {
            (Some(b), Some(_)) => trunks.get(b.family.as_str()).cloned().unwrap_or_default(),
            _ => String::new(),
        };
        let last_step = evals.iter().map(|e| e.step).max().unwrap_or(0);
        let params = flops::params(cfg.width, cfg.depth, cfg.vocab) as f64;
        let realised = dir.read_summary().map(|s| s.domain_tokens).unwrap_or_default();
        let total = flops::params_total(cfg.width, cfg.depth, cfg.seq_len, cfg.vocab) as f64;
        for e in &evals {
            s.entry("run_id").or_default().push(dir.id.clone());
            s.entry("sweep").or_default().push(cfg.sweep.clone());
            s.entry("parametrization").or_default().push(param_name(cfg).into());
            s.entry("branch_of").or_default().push(trunk.clone());
            i.entry("branch_from").or_default().push(from.map_or(-1, |f| f as i64));
            for (k, v) in [
                ("width", cfg.width),
                ("depth", cfg.depth),
                ("heads", cfg.heads),
                ("seq_len", cfg.seq_len),
                ("batch_size", cfg.batch_size),
            ] {
                i.entry(k).or_default().push(v as i64);
            }
            i.entry("step").or_default().push(e.step as i64);
            i.entry("run_tokens").or_default().push(cfg.tokens as i64);
            let mut put = |k: &str, v: f64| f.entry(k.to_string()).or_default().push(v);
            put("lr", cfg.lr);
            put("params", params);
            put("params_total", total);
            put("tokens", e.tokens as f64);
            put("flops", e.flops);
            put("loss", e.loss);
            put("bpb", e.bpb.unwrap_or(f64::NAN));
            for d in &domains {
                let v = e.domain_loss.iter().find(|(n, _)| n == d).map_or(f64::NAN, |x| x.1);
                put(&format!("loss_{d}"), v);
                let v = e.domain_bpb.iter().find(|(n, _)| n == d).map_or(f64::NAN, |x| x.1);
                put(&format!("bpb_{d}"), v);
                put(&format!("mix_{d}"), cfg.mix.get(d).copied().unwrap_or(0.0));
                // Realised training tokens of the domain over the whole run (NaN if unrecorded).
                let v = realised.iter().find(|(n, _)| n == d).map_or(f64::NAN, |x| x.1 as f64);
                put(&format!("trained_tokens_{d}"), v);
            }
            b.push(e.step == last_step);
        }
    }
    let height = b.len();
    let mut cols: Vec<Column> = Vec::new();
    for (k, v) in s {
        cols.push(Column::new(k.into(), v));
    }
    for (k, v) in i {
        cols.push(Column::new(k.into(), v));
    }
    for (k, v) in f {
        cols.push(Column::new(k.as_str().into(), v));
    }
    cols.push(Column::new("is_final".into(), b));
    Ok(DataFrame::new(height, cols)?)
}

fn param_name(cfg: &RunConfig) -> &'static str {
    match cfg.parametrization {
        crate::spec::config::Parametrization::Mup { .. } => "mup",
        crate::spec::config::Parametrization::Sp { .. } => "sp",
    }
}

/// Rebuilds `runs.parquet` from every finished run folder (atomically).
pub fn write_parquet(dir: &SweepDir, runs: &[(RunDir, RunConfig)]) -> Result<DataFrame> {
    let mut df = build(runs)?;
    let mut bytes = Vec::new();
    ParquetWriter::new(&mut bytes).finish(&mut df)?;
    super::write_atomic(&dir.runs_parquet(), &bytes)?;
    Ok(df)
}

/// The columns `to_obs` reads (first of each group present): a file's column of one of these
/// names that cannot be read is an error naming it; any other such column is skipped.
pub const FIT_COLUMNS: [&str; 11] = [
    "params",
    "Model Size",
    "loss",
    "flops",
    "Training FLOP",
    "tokens",
    "lr",
    "batch_size",
    "batch",
    "run_id",
    "is_final",
];

/// Whether this build of polars reads a Parquet column of this type. Without its `dtype-*`
/// features it cannot build dates, times, durations, decimals, structs, lists or 16-bit floats
/// (a decimal even panics), so those are never asked of it.
fn parquet_readable(d: &ArrowDataType) -> bool {
    use ArrowDataType as A;
    matches!(
        d,
        A::Boolean
            | A::Int8
            | A::Int16
            | A::Int32
            | A::Int64
            | A::UInt8
            | A::UInt16
            | A::UInt32
            | A::UInt64
            | A::Float32
            | A::Float64
            | A::Utf8
            | A::LargeUtf8
            | A::Utf8View
    )
}

/// The first two 1-based positions of a name that appears twice among `names`.
fn duplicate(names: &[String]) -> Option<(String, usize, usize)> {
    for (j, n) in names.iter().enumerate() {
        if let Some(i) = names[..j].iter().position(|m| m == n) {
            return Some((n.clone(), i + 1, j + 1));
        }
    }
    None
}

/// A CSV's header fields (its first line; a UTF-8 BOM and quotes around a name are no part
/// of it), to find duplicates before polars renames the second `loss` to `loss_duplicated_0`.
fn csv_header(path: &Path) -> Result<Vec<String>> {
    use std::io::{BufRead, Read};
    let file = std::fs::File::open(path).map_err(|e| UserError(format!("{}: {e}", path.display())))?;
    let mut line = Vec::new();
    std::io::BufReader::new(file).take(1 << 20).read_until(b'\n', &mut line)?;
    let text = String::from_utf8_lossy(&line);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text).trim_end_matches(['\r', '\n']);
    let (mut fields, mut cur, mut quoted) = (Vec::new(), String::new(), false);
    for c in text.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    fields.push(cur);
    Ok(fields.into_iter().map(|f| f.trim().to_string()).collect())
}

fn read_parquet(path: &Path) -> Result<DataFrame> {
    let shown = path.display();
    let cannot = |e: &dyn std::fmt::Display| UserError(format!("{shown}: cannot read as Parquet: {e}"));
    let mut reader = ParquetReader::new(std::fs::File::open(path)?);
    // The file's own column names, before polars maps them by name (and refuses duplicates
    // without saying where they are).
    let names: Vec<String> =
        reader.get_metadata().map_err(|e| cannot(&e))?.schema().fields().iter().map(|f| f.name().to_string()).collect();
    if let Some((name, i, j)) = duplicate(&names) {
        return Err(UserError(format!(
            "{shown}: columns {i} and {j} are both named `{name}`; which one is meant is ambiguous (rename or drop one)"
        ))
        .into());
    }
    let schema = reader.schema().map_err(|e| cannot(&e))?;
    let mut keep = Vec::new();
    for (name, field) in schema.iter() {
        if parquet_readable(field.dtype()) {
            keep.push(name.to_string());
        } else if FIT_COLUMNS.contains(&name.as_str()) {
            return Err(UserError(format!(
                "{shown}: column `{name}` holds {:?} values, which cannot be read here; expected numbers (float64 or \
                 int64), text or booleans",
                field.dtype()
            ))
            .into());
        }
        // Any other column of such a type is not used: left unread.
    }
    // polars asserts on some input instead of returning an error; a panic on a user's file is
    // still a bad file, not a crash (the column types it is known to panic on are left out above).
    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| reader.with_columns(Some(keep)).finish()));
    match read {
        Ok(df) => df.map_err(|e| cannot(&e).into()),
        Err(p) => {
            let why = p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()));
            Err(cannot(&why.unwrap_or_else(|| "the reader failed".into())).into())
        }
    }
}

/// Reads a CSV or Parquet results file.
pub fn read_frame(path: &Path) -> Result<DataFrame> {
    if !path.exists() {
        return Err(UserError(format!("{}: no such file", path.display())).into());
    }
    let ext = path.extension().map(|e| e.to_string_lossy().to_lowercase()).unwrap_or_default();
    if ext == "parquet" {
        return read_parquet(path);
    }
    if let Some((name, i, j)) = duplicate(&csv_header(path)?) {
        return Err(UserError(format!(
            "{}: line 1: columns {i} and {j} are both named `{name}`; which one is meant is ambiguous (rename or drop one)",
            path.display()
        ))
        .into());
    }
    let df = {
        // Every column is read as text and converted by `to_obs`, cell by cell: polars' type
        // inference looks at the first 100 rows only, and its cast turns a cell that is not a
        // number into a null (so a NaN in the fit) instead of an error naming the row.
        CsvReadOptions::default()
            .with_has_header(true)
            .with_infer_schema_length(Some(0))
            .try_into_reader_with_file_path(Some(path.to_path_buf()))?
            .finish()
    };
    df.map_err(|e| UserError(format!("{}: cannot read as CSV: {e}", path.display())).into())
}

/// Where data row `k` (0-based) of `origin` is, for messages and for the name of a run that
/// has no `run_id`: 1-based, and for a CSV the line too (the header is line 1). The one
/// convention for rows: "row R (line L)".
pub fn row_at(origin: &str, k: usize) -> String {
    if origin.to_lowercase().ends_with(".parquet") {
        format!("row {}", k + 1)
    } else {
        format!("row {} (line {})", k + 1, k + 2)
    }
}

/// A cell's text for a message, cut if long.
fn cell_text(s: &str) -> String {
    match s.char_indices().nth(40) {
        Some((cut, _)) => format!("{:?}…", &s[..cut]),
        None => format!("{s:?}"),
    }
}

/// The first of `names` present, as numbers. Text cells (every cell of a CSV) must parse as
/// numbers; one that does not is an error naming the file, column and row rather than a NaN.
/// An empty cell is an error in a `required` column and NaN in an optional one (lr, batch).
fn col_f64(df: &DataFrame, names: &[&str], origin: &str, required: bool) -> Result<Option<Vec<f64>>> {
    let Some((name, c)) = names.iter().find_map(|n| df.column(n).ok().map(|c| (*n, c))) else {
        return Ok(None);
    };
    let values: Vec<Option<f64>> = match c.dtype() {
        DataType::String => {
            let mut out = Vec::with_capacity(c.len());
            for (k, cell) in c.str()?.iter().enumerate() {
                out.push(match cell.map(str::trim) {
                    None | Some("") => None,
                    Some(t) => Some(t.parse::<f64>().map_err(|_| {
                        UserError(format!(
                            "{origin}: column `{name}`, {}: {} is not a number",
                            row_at(origin, k),
                            cell_text(t)
                        ))
                    })?),
                });
            }
            out
        }
        d if d.is_primitive_numeric() => c.cast(&DataType::Float64)?.f64()?.iter().collect(),
        d => return Err(UserError(format!("{origin}: column `{name}` holds {d} values, expected numbers")).into()),
    };
    if required {
        if let Some(k) = values.iter().position(Option::is_none) {
            let at = row_at(origin, k);
            return Err(UserError(format!("{origin}: column `{name}`, {at}: empty cell, expected a number")).into());
        }
    }
    Ok(Some(values.into_iter().map(|v| v.unwrap_or(f64::NAN)).collect()))
}

/// `is_final` as booleans: a boolean column, or text / integers spelling true/false/1/0 (an
/// empty cell is false, as a null is). Anything else names the file, row and value.
fn col_is_final(c: &Column, origin: &str) -> Result<Vec<bool>> {
    let bad = |k: usize, what: String| -> anyhow::Error {
        let at = row_at(origin, k);
        UserError(format!("{origin}: column `is_final`, {at}: {what} is not a boolean (true/false or 1/0)")).into()
    };
    match c.dtype() {
        DataType::Boolean => Ok(c.bool()?.iter().map(|v| v.unwrap_or(false)).collect()),
        DataType::String => c
            .str()?
            .iter()
            .enumerate()
            .map(|(k, v)| match v.map(|t| t.trim().to_ascii_lowercase()).as_deref() {
                None | Some("") | Some("false") | Some("0") => Ok(false),
                Some("true") | Some("1") => Ok(true),
                Some(_) => Err(bad(k, cell_text(v.unwrap_or("")))),
            })
            .collect(),
        d if d.is_integer() => c
            .cast(&DataType::Int64)?
            .i64()?
            .iter()
            .enumerate()
            .map(|(k, v)| match v {
                None | Some(0) => Ok(false),
                Some(1) => Ok(true),
                Some(x) => Err(bad(k, x.to_string())),
            })
            .collect(),
        d => Err(UserError(format!("{origin}: column `is_final` holds {d} values, expected booleans")).into()),
    }
}

/// Turns a frame into fit observations. Needs `params`, `loss`, and `tokens` or `flops`
/// (then D = C / 6N, as Epoch AI did for Chinchilla). Optional: `run_id`, `step`/`is_final`
/// (otherwise every row is its own finished run), `lr`, `batch_size`. The Chinchilla table's
/// own headers (`Model Size`, `Training FLOP`) are accepted as aliases.
pub fn to_obs(df: &DataFrame, origin: &str) -> Result<Vec<Obs>> {
    let have: Vec<String> = df.get_column_names().iter().map(|s| s.to_string()).collect();
    let missing =
        |what: &str| UserError(format!("{origin}: missing column {what} (columns present: {})", have.join(", ")));
    let params = col_f64(df, &["params", "Model Size"], origin, true)?.ok_or_else(|| missing("`params`"))?;
    let loss = col_f64(df, &["loss"], origin, true)?.ok_or_else(|| missing("`loss`"))?;
    let flops_c = col_f64(df, &["flops", "Training FLOP"], origin, true)?;
    let derived_tokens = !have.iter().any(|h| h == "tokens");
    let tokens = match col_f64(df, &["tokens"], origin, true)? {
        Some(t) => t,
        None => {
            let c = flops_c.clone().ok_or_else(|| missing("`tokens` or `flops`"))?;
            c.iter().zip(&params).map(|(c, n)| crate::flops::chinchilla_tokens(*c, *n)).collect()
        }
    };
    let derived_flops = flops_c.is_none();
    let flops_v = flops_c
        .unwrap_or_else(|| params.iter().zip(&tokens).map(|(n, d)| crate::flops::chinchilla_flops(*n, *d)).collect());
    // A value computed from two others (C = 6ND, or D = C/6N) that overflows or vanishes is
    // named by the columns it came from: "flops = inf" names a column the file does not have.
    for k in 0..df.height() {
        let (n, d, c) = (params[k], tokens[k], flops_v[k]);
        let inputs_ok = n.is_finite() && n > 0.0;
        if derived_flops && inputs_ok && d.is_finite() && d > 0.0 && !(c.is_finite() && c > 0.0) {
            return Err(UserError(format!(
                "{origin}: {}: params = {n:e} and tokens = {d:e} give C = 6ND = {c:e} FLOPs (the file has no `flops` \
                 column): out of range, a typo?",
                row_at(origin, k)
            ))
            .into());
        }
        if derived_tokens && inputs_ok && c.is_finite() && c > 0.0 && !(d.is_finite() && d > 0.0) {
            return Err(UserError(format!(
                "{origin}: {}: flops = {c:e} and params = {n:e} give D = C/6N = {d:e} tokens (the file has no `tokens` \
                 column): out of range, a typo?",
                row_at(origin, k)
            ))
            .into());
        }
    }
    let lr = col_f64(df, &["lr"], origin, false)?;
    let batch = col_f64(df, &["batch_size", "batch"], origin, false)?;
    let run: Vec<String> = match df.column("run_id") {
        Ok(c) => c.cast(&DataType::String)?.str()?.iter().map(|v| v.unwrap_or("").to_string()).collect(),
        Err(_) => (0..df.height()).map(|k| row_at(origin, k)).collect(),
    };
    let is_final: Vec<bool> = match df.column("is_final") {
        Ok(c) => col_is_final(c, origin)?,
        Err(_) => vec![true; df.height()],
    };
    Ok((0..df.height())
        .map(|k| Obs {
            run: run[k].clone(),
            params: params[k],
            tokens: tokens[k],
            flops: flops_v[k],
            loss: loss[k],
            lr: lr.as_ref().map(|v| v[k]),
            batch: batch.as_ref().map(|v| v[k]),
            is_final: is_final[k],
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs_of(name: &str, csv: &str) -> Result<Vec<Obs>> {
        let d = std::env::temp_dir().join(format!("wt-frame-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join(name);
        std::fs::write(&p, csv).unwrap();
        to_obs(&read_frame(&p)?, &p.display().to_string())
    }

    /// Text where a number or a boolean belongs is an error naming the file,
    /// the column, the row and the value (not polars' "invalid series dtype", not a NaN).
    #[test]
    fn csv_cells_of_the_wrong_type_are_located() {
        let e = format!("{:#}", obs_of("s.csv", "params,tokens,loss,is_final\n1e6,2e7,3.1,yes\n").unwrap_err());
        assert!(e.contains("s.csv: column `is_final`, row 1 (line 2): \"yes\" is not a boolean"), "{e}");
        let csv = "params,tokens,loss\n1e6,2e7,3.1\n2e6,4e7,abc\n";
        let e = format!("{:#}", obs_of("n.csv", csv).unwrap_err());
        assert!(e.contains("n.csv: column `loss`, row 2 (line 3): \"abc\" is not a number"), "{e}");
        // Past polars' 100-row inference window too.
        let mut csv = String::from("params,tokens,loss\n");
        for i in 0..150 {
            csv += &format!("1e6,2e7,{}\n", if i == 120 { "3.1x".to_string() } else { format!("3.{i}") });
        }
        let e = format!("{:#}", obs_of("late.csv", &csv).unwrap_err());
        assert!(e.contains("column `loss`, row 121 (line 122): \"3.1x\" is not a number"), "{e}");
        let e = format!("{:#}", obs_of("e.csv", "params,tokens,loss\n1e6,,3.1\n").unwrap_err());
        assert!(e.contains("e.csv: column `tokens`, row 1 (line 2): empty cell"), "{e}");
        let long = "z".repeat(100_000);
        let e = format!("{:#}", obs_of("l.csv", &format!("params,tokens,loss\n{long},1,2\n")).unwrap_err());
        assert!(e.len() < 400, "{} bytes", e.len());
    }

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/parquet").join(name)
    }

    /// Column types this polars build cannot read (decimal128 panicked inside polars; date,
    /// timestamp, duration, struct and float16 failed with "cannot create series from Date32",
    /// naming no column) are left unread when unused; a used one is an error naming it.
    /// Fixtures: tests/fixtures/parquet/make.py.
    #[test]
    fn parquet_columns_of_unreadable_types_are_skipped_unless_used() {
        let p = fixture("unused_types.parquet");
        let df = read_frame(&p).unwrap();
        let obs = to_obs(&df, &p.display().to_string()).unwrap();
        assert_eq!(obs.len(), 9);
        assert!((obs[0].loss - (1.7 + 400.0 / 1e6f64.powf(0.34) + 410.0 / 2e7f64.powf(0.28))).abs() < 1e-12);
        // No run_id: each row is its own run, named by its row as errors name rows.
        assert_eq!((obs[0].run.as_str(), obs[8].run.as_str()), ("row 1", "row 9"));
        let e = format!("{:#}", read_frame(&fixture("decimal_loss.parquet")).unwrap_err());
        assert!(e.contains("decimal_loss.parquet: column `loss` holds Decimal(10, 4) values"), "{e}");
    }

    #[test]
    fn a_column_named_twice_is_an_error_naming_both() {
        let e = format!("{:#}", read_frame(&fixture("duplicate_loss.parquet")).unwrap_err());
        assert!(e.contains("columns 3 and 4 are both named `loss`"), "{e}");
        let e =
            format!("{:#}", obs_of("dup.csv", "\u{feff}params,loss,tokens,\"loss\"\n1e6,3.1,2e7,3.2\n").unwrap_err());
        assert!(e.contains("dup.csv: line 1: columns 2 and 4 are both named `loss`"), "{e}");
        // A BOM before the header is no part of the first name.
        let obs = obs_of("bom.csv", "\u{feff}params,tokens,loss\n1e6,2e7,3.1\n").unwrap();
        assert_eq!(obs[0].params, 1e6);
    }

    #[test]
    fn a_derived_value_out_of_range_names_the_columns_it_came_from_and_rows_read_alike() {
        let csv = "params,tokens,loss\n1e6,2e7,3.1\n1e300,2e9,3.0\n";
        let e = format!("{:#}", obs_of("big.csv", csv).unwrap_err());
        assert!(e.contains("big.csv: row 2 (line 3): params = 1e300 and tokens = 2e9 give C = 6ND = inf"), "{e}");
        let csv = "params,flops,loss\n1e6,1e18,3.1\n1e-300,1e300,3.0\n";
        let e = format!("{:#}", obs_of("tiny.csv", csv).unwrap_err());
        assert!(e.contains("row 2 (line 3): flops = 1e300 and params = 1e-300 give D = C/6N = inf"), "{e}");
        // The same row is called the same in a cell error and in the fit's own check.
        let e = format!("{:#}", obs_of("cell.csv", "params,tokens,loss\n1e6,2e7,3.1\n1e6,2e7,x\n").unwrap_err());
        assert!(e.contains("row 2 (line 3)"), "{e}");
        let obs = obs_of("neg.csv", "params,tokens,loss\n1e6,2e7,3.1\n1e6,2e7,-1\n").unwrap();
        let e = crate::fit::chinchilla::validate::check_obs(&obs).unwrap_err().to_string();
        assert!(e.contains("run \"row 2 (line 3)\": loss = -1"), "{e}");
    }

    #[test]
    fn csv_booleans_and_numbers_as_text_are_read() {
        let csv = "run_id,params,tokens,loss,is_final,lr\na,1e6,2e7,3.5,false,\na,1e6,4e7, 3.25 ,TRUE,0.01\nb,2e6,4e7,3.0,1,0.01\n";
        let obs = obs_of("ok.csv", csv).unwrap();
        let finals: Vec<bool> = obs.iter().map(|o| o.is_final).collect();
        assert_eq!(finals, [false, true, true]);
        assert_eq!((obs[1].loss, obs[1].tokens, obs[2].params), (3.25, 4e7, 2e6));
        assert!(obs[0].lr.unwrap().is_nan() && obs[1].lr == Some(0.01));
    }
}
