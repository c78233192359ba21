//! The run files of an import as a table of cells, whatever their format (CSV, Parquet,
//! JSONL), so the import reads one shape and every bad cell is named by file, row (and line)
//! and column. CSV is read as text (polars' type inference sees only the first rows and turns
//! a cell it cannot parse into a null), numbers are parsed cell by cell here.

use crate::spec::manifest::Format;
use crate::UserError;
use anyhow::Result;
use polars::prelude::*;
use std::collections::HashMap;
use std::path::Path;

#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Null,
    Num(f64),
    Text(String),
}

pub struct Table {
    pub origin: String,
    pub format: Format,
    pub names: Vec<String>,
    cols: HashMap<String, Vec<Cell>>,
    height: usize,
}

/// The format a manifest gives, or the file's extension (a `.gz`/`.zst` suffix is not read).
pub fn format_of(path: &Path, given: Option<Format>) -> Result<Format> {
    if let Some(f) = given {
        return Ok(f);
    }
    let ext = path.extension().map(|e| e.to_string_lossy().to_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "csv" => Ok(Format::Csv),
        "parquet" | "pq" => Ok(Format::Parquet),
        "jsonl" | "ndjson" => Ok(Format::Jsonl),
        _ => Err(UserError(format!(
            "{}: cannot tell the format from the extension `.{ext}`; set `[import] format` (csv, parquet or jsonl)",
            path.display()
        ))
        .into()),
    }
}

impl Table {
    pub fn read(path: &Path, format: Format) -> Result<Table> {
        let origin = path.display().to_string();
        let fail = |e: String| -> anyhow::Error {
            UserError(format!("{origin}: cannot read as {}: {e}", format.as_str())).into()
        };
        if !path.is_file() {
            return Err(UserError(format!("{origin}: no such file")).into());
        }
        let (names, cols, height) = match format {
            Format::Csv => {
                let df = CsvReadOptions::default()
                    .with_has_header(true)
                    .with_infer_schema_length(Some(0))
                    .try_into_reader_with_file_path(Some(path.to_path_buf()))
                    .and_then(|r| r.finish())
                    .map_err(|e| fail(e.to_string()))?;
                of_frame(&df).map_err(|e| fail(e.to_string()))?
            }
            Format::Parquet => {
                let file = std::fs::File::open(path).map_err(|e| fail(e.to_string()))?;
                let df = ParquetReader::new(file).finish().map_err(|e| fail(e.to_string()))?;
                of_frame(&df).map_err(|e| fail(e.to_string()))?
            }
            Format::Jsonl => of_jsonl(path, &origin)?,
        };
        Ok(Table { origin, format, names, cols, height })
    }

    pub fn height(&self) -> usize {
        self.height
    }

    pub fn has(&self, col: &str) -> bool {
        self.cols.contains_key(col)
    }

    /// Where data row `k` (0-based) is: 1-based, with the file's line for CSV and JSONL.
    pub fn at(&self, k: usize) -> String {
        match self.format {
            Format::Csv => format!("row {} (line {})", k + 1, k + 2),
            Format::Jsonl => format!("row {} (line {})", k + 1, k + 1),
            Format::Parquet => format!("row {}", k + 1),
        }
    }

    /// An error naming this file, a column and what is wrong.
    pub fn missing(&self, col: &str, what: &str) -> anyhow::Error {
        let mut shown: Vec<&str> = self.names.iter().map(String::as_str).take(12).collect();
        if self.names.len() > 12 {
            shown.push("...");
        }
        UserError(format!("{}: missing column `{col}` ({what}); columns present: {}", self.origin, shown.join(", ")))
            .into()
    }

    /// Cell (`col`, `k`) as a number: None for an empty cell; text that is not a number is an
    /// error naming the file, row and column. "NaN" and "inf" parse (to be judged by the caller).
    pub fn num(&self, col: &str, k: usize) -> Result<Option<f64>> {
        let c = self.cols.get(col).ok_or_else(|| self.missing(col, "named by the manifest"))?;
        match &c[k] {
            Cell::Null => Ok(None),
            Cell::Num(x) => Ok(Some(*x)),
            Cell::Text(t) if t.trim().is_empty() => Ok(None),
            Cell::Text(t) => t.trim().parse::<f64>().map(Some).map_err(|_| {
                let shown: String = t.chars().take(40).collect();
                UserError(format!("{}: column `{col}`, {}: {shown:?} is not a number", self.origin, self.at(k))).into()
            }),
        }
    }

    /// Cell (`col`, `k`) as text (a run name): numbers are written as they print.
    pub fn text(&self, col: &str, k: usize) -> Result<String> {
        let c = self.cols.get(col).ok_or_else(|| self.missing(col, "the run column"))?;
        Ok(match &c[k] {
            Cell::Null => String::new(),
            Cell::Num(x) => format!("{x}"),
            Cell::Text(t) => t.trim().to_string(),
        })
    }
}

type Cols = (Vec<String>, HashMap<String, Vec<Cell>>, usize);

fn of_frame(df: &DataFrame) -> PolarsResult<Cols> {
    let mut names = Vec::new();
    let mut cols = HashMap::new();
    for c in df.columns() {
        let name = c.name().to_string();
        let cells: Vec<Cell> = if c.dtype().is_primitive_numeric() || c.dtype() == &DataType::Boolean {
            c.cast(&DataType::Float64)?.f64()?.iter().map(|v| v.map_or(Cell::Null, Cell::Num)).collect()
        } else {
            c.cast(&DataType::String)?
                .str()?
                .iter()
                .map(|v| v.map_or(Cell::Null, |s| Cell::Text(s.to_string())))
                .collect()
        };
        names.push(name.clone());
        cols.insert(name, cells);
    }
    Ok((names, cols, df.height()))
}

fn of_jsonl(path: &Path, origin: &str) -> Result<Cols> {
    let text = std::fs::read_to_string(path).map_err(|e| UserError(format!("{origin}: cannot read: {e}")))?;
    let mut names: Vec<String> = Vec::new();
    let mut cols: HashMap<String, Vec<Cell>> = HashMap::new();
    let mut height = 0;
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| UserError(format!("{origin}: line {}: not a JSON object: {e}", i + 1)))?;
        let serde_json::Value::Object(obj) = v else {
            return Err(UserError(format!("{origin}: line {}: expected a JSON object", i + 1)).into());
        };
        for (k, x) in obj {
            let cell = match x {
                serde_json::Value::Null => Cell::Null,
                serde_json::Value::Number(n) => n.as_f64().map_or(Cell::Null, Cell::Num),
                serde_json::Value::Bool(b) => Cell::Num(if b { 1.0 } else { 0.0 }),
                serde_json::Value::String(s) => Cell::Text(s),
                other => Cell::Text(other.to_string()),
            };
            let col = cols.entry(k.clone()).or_insert_with(|| {
                names.push(k.clone());
                vec![Cell::Null; height]
            });
            col.push(cell);
        }
        height += 1;
        for c in cols.values_mut() {
            c.resize(height, Cell::Null);
        }
    }
    Ok((names, cols, height))
}
