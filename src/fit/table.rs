//! The published reference tables (Epoch's Chinchilla points, the multi-power-law paper's
//! curves and schedules) read as numbers through polars' CSV reader. Every cell is read as
//! text and parsed here, so a cell that is not a number is an error naming the file, line,
//! column and field (polars' own cast would turn it into a null, i.e. a silent NaN).

use anyhow::{anyhow, Result};
use polars::prelude::*;
use std::path::Path;

/// The columns `want` of the CSV at `path` (header on line 1), one `Vec` per data row in the
/// order of `want`. With `leading`, the header must start with exactly `want` (the paper's
/// files); otherwise columns are found by name anywhere in the header.
pub fn read_numbers(path: &Path, want: &[&str], leading: bool) -> Result<Vec<Vec<f64>>> {
    let shown = path.display();
    let df = CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(Some(0))
        .try_into_reader_with_file_path(Some(path.to_path_buf()))
        .and_then(|r| r.finish())
        .map_err(|e| anyhow!("reading {shown}: {e}"))?;
    let names: Vec<String> = df.get_column_names().iter().map(|n| n.trim().to_string()).collect();
    if leading && (names.len() < want.len() || names[..want.len()] != *want) {
        anyhow::bail!("{shown}:1: header {names:?}, expected it to start with {want:?}");
    }
    let mut cols = Vec::with_capacity(want.len());
    for name in want {
        let at = names.iter().position(|n| n == name).ok_or_else(|| anyhow!("{shown}:1: no column {name:?}"))?;
        let cells = df.columns()[at].str().map_err(|e| anyhow!("{shown}: column {name:?}: {e}"))?.clone();
        let mut v = Vec::with_capacity(cells.len());
        for (k, cell) in cells.iter().enumerate() {
            let s = cell.unwrap_or("").trim();
            v.push(
                s.parse::<f64>().map_err(|_| {
                    anyhow!("{shown}:{}:{}: field {name:?}: expected a number, got {s:?}", k + 2, at + 1)
                })?,
            );
        }
        cols.push(v);
    }
    let rows = df.height();
    if rows == 0 {
        anyhow::bail!("{shown}: no data rows");
    }
    Ok((0..rows).map(|r| cols.iter().map(|c| c[r]).collect()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_by_name_or_leading_and_located_errors() {
        let p = std::env::temp_dir().join(format!("wt-table-{}-t.csv", std::process::id()));
        std::fs::write(&p, "step,lr,loss\n0,0.1,3.5\n1,0.2,3.25\n").unwrap();
        assert_eq!(read_numbers(&p, &["loss", "step"], false).unwrap(), vec![vec![3.5, 0.0], vec![3.25, 1.0]]);
        assert_eq!(read_numbers(&p, &["step", "lr"], true).unwrap().len(), 2);
        let e = read_numbers(&p, &["lr"], true).unwrap_err().to_string();
        assert!(e.contains("-t.csv:1: header"), "{e}");
        let e = read_numbers(&p, &["tokens"], false).unwrap_err().to_string();
        assert!(e.contains("no column \"tokens\""), "{e}");
        std::fs::write(&p, "step,lr,loss\n0,0.1,3.5\n1,x,3.25\n").unwrap();
        let e = read_numbers(&p, &["step", "lr"], true).unwrap_err().to_string();
        assert!(e.contains("-t.csv:3:2: field \"lr\": expected a number, got \"x\""), "{e}");
        std::fs::remove_file(&p).ok();
    }
}
