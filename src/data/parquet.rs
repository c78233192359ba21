//! Reading a parquet domain's text: one document per row of a string column (FineWeb's
//! `text`), optionally only the rows where a numeric column passes a comparison (FineWeb-Edu's
//! `int_score >= 3`). Any compression the usual writers use (zstd, snappy, gzip, lz4, brotli)
//! is decoded by polars' parquet reader.
//!
//! Memory is bounded by one row group, not the file: the footer is read first, then for each
//! row group only the byte ranges of the one or two columns needed are read (pread, not a
//! memory map, so the resident set does not grow with the file as it would with polars'
//! `ParquetReader`, which maps the whole file) and decoded. Only those columns' types are ever
//! converted, so a file with columns polars cannot represent in this build (decimals, say)
//! is read as long as the text and filter columns are ordinary. Every problem names the file,
//! and where it applies the column and the row group.

use crate::spec::config::RowFilter;
use anyhow::{bail, Context, Result};
use polars::io::parquet::read::_internal::to_deserializer;
use polars::io::parquet::read::FileMetadata;
use polars::prelude::{ArrowDataType, ArrowField, DataType, ParquetReader, SerReader, Series};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The files of a parquet source: `files::expand`, except that a directory contributes only
/// its `*.parquet` files (a downloaded dataset folder also holds a README and JSON metadata).
pub fn files(pattern: &str) -> Result<Vec<PathBuf>> {
    let all = super::files::expand(pattern)?;
    if !std::fs::metadata(pattern).is_ok_and(|m| m.is_dir()) {
        return Ok(all);
    }
    let found: Vec<PathBuf> =
        all.into_iter().filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("parquet"))).collect();
    if found.is_empty() {
        bail!("directory `{pattern}` holds no .parquet files");
    }
    Ok(found)
}

/// What reading one file saw.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Counts {
    pub rows: u64,
    /// Rows passed to `doc`: the filter kept them and their text is not null.
    pub kept: u64,
}

/// Calls `doc` with the `column` text of every row of `path` that `filter` keeps, row group
/// by row group. Null texts are skipped (there is no document); an empty string is an empty
/// document, as in JSONL.
pub fn docs(
    path: &Path,
    column: &str,
    filter: Option<&RowFilter>,
    doc: &mut dyn FnMut(&str) -> Result<()>,
) -> Result<Counts> {
    let at = path.display();
    let file = File::open(path).with_context(|| format!("{at}: cannot open"))?;
    let len = file.metadata().with_context(|| format!("{at}: cannot read"))?.len();
    if len == 0 {
        bail!("{at}: empty file (0 bytes), not Parquet");
    }
    let mut reader = ParquetReader::new(file.try_clone()?);
    let meta = reader.get_metadata().map_err(|e| anyhow::anyhow!("{at}: not a Parquet file ({e})"))?.clone();
    let schema = reader.schema().map_err(|e| anyhow::anyhow!("{at}: unreadable Parquet schema ({e})"))?;
    let names = || schema.iter_names().map(|n| n.as_str()).collect::<Vec<_>>().join(", ");
    let field = |name: &str, what: &str| -> Result<ArrowField> {
        match schema.get(name) {
            Some(f) => Ok(f.clone()),
            None => bail!("{at}: {what} column `{name}` not found; the columns are {}", names()),
        }
    };
    let text = field(column, "text")?;
    if !matches!(text.dtype(), ArrowDataType::Utf8View | ArrowDataType::Utf8 | ArrowDataType::LargeUtf8) {
        bail!(
            "{at}: column `{column}` holds {}, expected strings (set `column` to the text column)",
            describe(text.dtype())
        );
    }
    let filt = match filter {
        Some(f) => {
            let fld = field(&f.column, "filter")?;
            if !is_numeric(fld.dtype()) {
                bail!(
                    "{at}: filter column `{}` holds {}, expected numbers (integers or floats)",
                    f.column,
                    describe(fld.dtype())
                );
            }
            Some((f, fld))
        }
        None => None,
    };
    let mut counts = Counts::default();
    for g in 0..meta.row_groups.len() {
        let where_ = |name: &str| format!("{at}: row group {g}, column `{name}`");
        let texts = read_column(&file, len, &meta, g, &text).with_context(|| where_(column))?;
        let texts = texts.str().with_context(|| where_(column))?;
        let keep: Option<Vec<bool>> = match &filt {
            Some((f, fld)) => {
                let s = read_column(&file, len, &meta, g, fld).with_context(|| where_(&f.column))?;
                let s = s.cast(&DataType::Float64).with_context(|| where_(&f.column))?;
                Some(s.f64().with_context(|| where_(&f.column))?.iter().map(|v| f.keeps(v)).collect())
            }
            None => None,
        };
        if keep.as_ref().is_some_and(|k| k.len() != texts.len()) {
            bail!("{}: the filter column has a different number of rows", where_(column));
        }
        for (i, t) in texts.iter().enumerate() {
            counts.rows += 1;
            if keep.as_ref().is_some_and(|k| !k[i]) {
                continue;
            }
            if let Some(t) = t {
                counts.kept += 1;
                doc(t)?;
            }
        }
    }
    Ok(counts)
}

/// Decodes one (flat) column of one row group from its own byte ranges in the file.
fn read_column(file: &File, file_len: u64, meta: &FileMetadata, g: usize, field: &ArrowField) -> Result<Series> {
    let Some(chunks) = meta.row_groups[g].columns_under_root_iter(field.name.as_str()) else {
        bail!("the row group has no data for this column");
    };
    let mut parts = Vec::new();
    for chunk in chunks {
        let r = chunk.byte_range();
        // A corrupt footer must not make us allocate or read past the file.
        if r.start > r.end || r.end > file_len {
            bail!("its data lies at bytes {}..{}, outside the {file_len}-byte file (truncated?)", r.start, r.end);
        }
        let mut buf = vec![0u8; (r.end - r.start) as usize];
        file.read_exact_at(&mut buf, r.start).context("read error")?;
        parts.push((chunk, buf.into()));
    }
    // polars' decoders trust the page headers; a corrupt page must still end as this file's
    // error, not take the process down.
    let decoded =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| to_deserializer(parts, field.clone(), None)));
    let (arrays, _) = match decoded {
        Ok(r) => r.context("cannot decode")?,
        Err(_) => bail!("cannot decode (corrupt data: the decoder failed)"),
    };
    Ok(Series::try_from((field.name.clone(), arrays))?)
}

fn is_numeric(t: &ArrowDataType) -> bool {
    use ArrowDataType as D;
    matches!(
        t,
        D::Int8
            | D::Int16
            | D::Int32
            | D::Int64
            | D::UInt8
            | D::UInt16
            | D::UInt32
            | D::UInt64
            | D::Float32
            | D::Float64
    )
}

/// A column type in words.
fn describe(t: &ArrowDataType) -> String {
    use ArrowDataType as D;
    match t {
        D::Boolean => "booleans".into(),
        D::Utf8View | D::Utf8 | D::LargeUtf8 => "strings".into(),
        D::BinaryView | D::Binary | D::LargeBinary | D::FixedSizeBinary(_) => "binary data (not UTF-8 strings)".into(),
        D::Null => "only nulls".into(),
        t if is_numeric(t) => format!("numbers ({t:?})"),
        D::Timestamp(..) | D::Date32 | D::Date64 => "dates or times".into(),
        D::Decimal(..) | D::Decimal32(..) | D::Decimal64(..) | D::Decimal256(..) => "decimals".into(),
        D::List(_) | D::LargeList(_) | D::FixedSizeList(..) => "lists".into(),
        D::Struct(_) => "structs".into(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::prelude::{Column, DataFrame, ParquetCompression, ParquetWriter};

    #[test]
    fn filters_parse_into_typed_comparisons() {
        let f = RowFilter::parse("int_score >= 3").unwrap();
        assert_eq!((f.column.as_str(), f.op, f.value), ("int_score", crate::spec::config::CmpOp::Ge, 3.0));
        assert_eq!(f.to_string(), "int_score >= 3");
        assert!(f.keeps(Some(3.0)) && !f.keeps(Some(2.99)) && !f.keeps(None));
        let f = RowFilter::parse(" language_score<0.5 ").unwrap();
        assert_eq!((f.column.as_str(), f.op.as_str(), f.value), ("language_score", "<", 0.5));
        assert!(RowFilter::parse("a != -1e3").unwrap().keeps(Some(0.0)));
        for (bad, why) in [
            ("int_score", "no comparison"),
            ("int_score = 3", "no comparison"),
            (">= 3", "no column"),
            ("a >= b >= 3", "one comparison only"),
            ("int_score >= three", "`three` is not a finite number"),
            ("int_score >= nan", "not a finite number"),
        ] {
            let e = RowFilter::parse(bad).unwrap_err();
            assert!(e.contains(why) && e.contains("e.g. \"int_score >= 3\""), "{bad}: {e}");
        }
    }

    /// Several row groups, null texts and null filter values, gzip: the rows come back in
    /// order, filtered, with nulls skipped, and the file really is gzip-compressed.
    #[test]
    fn rows_stream_by_row_group_with_filter_and_nulls() {
        let d = std::env::temp_dir().join(format!("wt-parquet-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("t.parquet");
        let text: Vec<Option<String>> = (0..10).map(|i| if i == 4 { None } else { Some(format!("doc {i}")) }).collect();
        let score: Vec<Option<i32>> = (0..10).map(|i| if i == 7 { None } else { Some(i % 3) }).collect();
        let mut df =
            DataFrame::new(10, vec![Column::new("body".into(), &text), Column::new("s".into(), &score)]).unwrap();
        ParquetWriter::new(File::create(&p).unwrap())
            .with_compression(ParquetCompression::Gzip(None))
            .with_row_group_size(Some(3))
            .finish(&mut df)
            .unwrap();
        let mut meta = ParquetReader::new(File::open(&p).unwrap());
        let meta = meta.get_metadata().unwrap();
        // polars evens the groups out (10 rows at "3 per group" are 4 + 3 + 3): several, anyway.
        assert!(meta.row_groups.len() >= 3, "{} row groups", meta.row_groups.len());
        let codec = format!("{:?}", meta.row_groups[0].parquet_columns()[0].compression());
        assert!(codec.contains("Gzip"), "{codec}");
        let mut seen = Vec::new();
        let f = RowFilter::parse("s >= 1").unwrap();
        let c = docs(&p, "body", Some(&f), &mut |t| Ok(seen.push(t.to_string()))).unwrap();
        // s = i % 3 >= 1 for i = 1, 2, 4, 5, 7, 8; 4 has no text, 7 no score.
        assert_eq!(seen, ["doc 1", "doc 2", "doc 5", "doc 8"]);
        assert_eq!(c, Counts { rows: 10, kept: 4 });
        seen.clear();
        let c = docs(&p, "body", None, &mut |t| Ok(seen.push(t.to_string()))).unwrap();
        assert_eq!((c.kept, seen.len(), seen[9 - 1].as_str()), (9, 9, "doc 9"));
    }
}
