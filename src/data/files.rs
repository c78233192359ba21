//! Reading a file-backed domain's raw text: expanding its `path` (a file, a directory or a
//! glob) into a sorted file list, decompressing by extension (`.gz`, `.zst`), applying the
//! invalid-UTF-8 policy, and cutting the text into documents (a text file is one document, a
//! JSONL line one record). Every problem names the file and the line (or byte offset).
//! Nothing here tokenizes or caches; `prepare` does.

use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// The files behind a source's `path`, sorted so the token stream does not depend on the
/// directory listing order. Hidden files (a leading dot) under a directory are skipped.
pub fn expand(pattern: &str) -> Result<Vec<PathBuf>> {
    let p = Path::new(pattern);
    let mut files = Vec::new();
    if p.is_file() {
        files.push(p.to_path_buf());
    } else if p.is_dir() {
        walk(p, &mut files)?;
        if files.is_empty() {
            bail!("directory `{pattern}` holds no files");
        }
    } else if pattern.contains(['*', '?', '[']) {
        let paths = glob::glob(pattern).with_context(|| format!("`{pattern}` is not a valid glob"))?;
        for entry in paths {
            let path = entry.with_context(|| format!("reading a match of `{pattern}`"))?;
            if path.is_file() {
                files.push(path);
            }
        }
        if files.is_empty() {
            bail!("no files match `{pattern}` (relative paths are from the working directory)");
        }
    } else {
        bail!("`{pattern}` does not exist (relative paths are from the working directory)");
    }
    files.sort();
    Ok(files)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = e.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// A buffered reader of the file's contents, decompressed when the name ends in .gz or .zst.
pub fn open(path: &Path) -> Result<Box<dyn BufRead>> {
    let f = std::fs::File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let name = path.to_string_lossy();
    let inner: Box<dyn Read> = if name.ends_with(".gz") {
        Box::new(flate2::read::MultiGzDecoder::new(f))
    } else if name.ends_with(".zst") || name.ends_with(".zstd") {
        Box::new(zstd::stream::read::Decoder::new(f).with_context(|| format!("{}: not zstd", path.display()))?)
    } else {
        Box::new(f)
    };
    Ok(Box::new(BufReader::with_capacity(1 << 20, inner)))
}

/// What to do with bytes that are not UTF-8.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Utf8Policy {
    /// Each invalid sequence becomes U+FFFD (like Python's errors="replace").
    Replace,
    /// Invalid sequences are dropped.
    Skip,
    /// The file is rejected, naming the byte offset.
    Error,
}

impl Utf8Policy {
    pub fn parse(s: &str) -> Utf8Policy {
        match s {
            "skip" => Utf8Policy::Skip,
            "error" => Utf8Policy::Error,
            _ => Utf8Policy::Replace,
        }
    }
}

/// `bytes` as text under `policy`; `at` says where they come from (for the error) and
/// `offset` is their position in the (decompressed) file.
pub fn decode(bytes: &[u8], policy: Utf8Policy, at: &str, offset: u64) -> Result<String> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(s.to_string()),
        Err(e) => match policy {
            Utf8Policy::Replace => Ok(String::from_utf8_lossy(bytes).into_owned()),
            Utf8Policy::Skip => Ok(String::from_utf8_lossy(bytes).replace('\u{FFFD}', "")),
            Utf8Policy::Error => bail!(
                "{at}: invalid UTF-8 at byte {} (set invalid_utf8 = \"replace\" or \"skip\" to accept it)",
                offset + e.valid_up_to() as u64
            ),
        },
    }
}

/// Calls `doc` with every document of a text file, in pieces of about `block` bytes cut at line
/// ends (so a multi-GB file never sits in memory whole); `first` is true on a document's first
/// piece.
pub fn text_docs(
    path: &Path,
    policy: Utf8Policy,
    block: usize,
    doc: &mut dyn FnMut(&str, bool) -> Result<()>,
) -> Result<()> {
    let mut r = open(path)?;
    let (mut buf, mut offset, mut first) = (Vec::with_capacity(block + 4096), 0u64, true);
    loop {
        let n = r.read_until(b'\n', &mut buf).with_context(|| format!("{}: read error", path.display()))?;
        if n == 0 || buf.len() >= block {
            if !buf.is_empty() {
                let s = decode(&buf, policy, &path.display().to_string(), offset)?;
                doc(&s, first)?;
                first = false;
                offset += buf.len() as u64;
                buf.clear();
            }
            if n == 0 {
                return Ok(());
            }
        }
    }
}

/// Calls `doc` with the `field` string of every JSONL record. Blank lines are skipped; a line
/// that is not a JSON object, lacks the field, or holds something other than a string there is
/// an error naming the file and line.
pub fn jsonl_docs(path: &Path, field: &str, policy: Utf8Policy, doc: &mut dyn FnMut(&str) -> Result<()>) -> Result<()> {
    let mut r = open(path)?;
    let (mut buf, mut line, mut offset) = (Vec::new(), 0u64, 0u64);
    loop {
        buf.clear();
        let n = r.read_until(b'\n', &mut buf).with_context(|| format!("{}: read error", path.display()))?;
        if n == 0 {
            return Ok(());
        }
        line += 1;
        let at = format!("{}:{line}", path.display());
        let text = decode(&buf, policy, &at, offset)?;
        offset += n as u64;
        if text.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{at}:{}: not valid JSON: {e}", e.column()))?;
        let Some(obj) = v.as_object() else {
            bail!("{at}: expected a JSON object per line, found {}", kind_of(&v));
        };
        match obj.get(field) {
            Some(serde_json::Value::String(s)) => doc(s)?,
            Some(other) => bail!("{at}: field \"{field}\" is {}, expected a string", kind_of(other)),
            None => {
                let keys: Vec<&str> = obj.keys().map(|k| k.as_str()).take(8).collect();
                bail!("{at}: no field \"{field}\" (the record has: {}; set `field` to choose another)", keys.join(", "))
            }
        }
    }
}

fn kind_of(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("wt-files-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn globs_dirs_and_missing_paths() {
        let d = dir("glob");
        for n in ["b.txt", "a.txt", ".hidden", "c.md"] {
            std::fs::write(d.join(n), "x").unwrap();
        }
        let g = expand(&format!("{}/*.txt", d.display())).unwrap();
        assert_eq!(g.iter().map(|p| p.file_name().unwrap().to_str().unwrap()).collect::<Vec<_>>(), ["a.txt", "b.txt"]);
        assert_eq!(expand(&d.display().to_string()).unwrap().len(), 3);
        let e = format!("{:#}", expand(&format!("{}/*.json", d.display())).unwrap_err());
        assert!(e.contains("no files match"), "{e}");
        let e = format!("{:#}", expand("/nonexistent/x.txt").unwrap_err());
        assert!(e.contains("does not exist"), "{e}");
    }

    #[test]
    fn compressed_jsonl_and_its_errors() {
        let d = dir("jsonl");
        let gz = d.join("a.jsonl.gz");
        let mut e = flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), flate2::Compression::fast());
        e.write_all(b"{\"text\": \"hello\"}\n\n{\"text\": \"world\", \"id\": 2}\n").unwrap();
        e.finish().unwrap();
        let zs = d.join("b.jsonl.zst");
        std::fs::write(&zs, zstd::encode_all(&b"{\"body\": \"zz\"}\n"[..], 3).unwrap()).unwrap();
        let mut got = Vec::new();
        jsonl_docs(&gz, "text", Utf8Policy::Replace, &mut |s| Ok(got.push(s.to_string()))).unwrap();
        jsonl_docs(&zs, "body", Utf8Policy::Replace, &mut |s| Ok(got.push(s.to_string()))).unwrap();
        assert_eq!(got, ["hello", "world", "zz"]);
        let err = |body: &[u8]| {
            let p = d.join("bad.jsonl");
            std::fs::write(&p, body).unwrap();
            format!("{:#}", jsonl_docs(&p, "text", Utf8Policy::Error, &mut |_| Ok(())).unwrap_err())
        };
        let e = err(b"{\"text\": \"a\"}\n{\"title\": \"b\"}\n");
        assert!(e.contains("bad.jsonl:2: no field \"text\"") && e.contains("title"), "{e}");
        let e = err(b"{\"text\": 3}\n");
        assert!(e.contains("bad.jsonl:1: field \"text\" is a number"), "{e}");
        let e = err(b"{\"text\": \"a\"}\n{\"text\": \"a\n");
        assert!(e.contains("bad.jsonl:2:") && e.contains("not valid JSON"), "{e}");
        let e = err(b"{\"text\": \"a\xff\"}\n");
        assert!(e.contains("bad.jsonl:1: invalid UTF-8 at byte 11"), "{e}");
    }

    #[test]
    fn utf8_policies() {
        let bad = b"ab\xffcd";
        assert_eq!(decode(bad, Utf8Policy::Replace, "x", 0).unwrap(), "ab\u{FFFD}cd");
        assert_eq!(decode(bad, Utf8Policy::Skip, "x", 0).unwrap(), "abcd");
        let e = format!("{:#}", decode(bad, Utf8Policy::Error, "f.txt", 100).unwrap_err());
        assert!(e.contains("f.txt: invalid UTF-8 at byte 102"), "{e}");
    }

    #[test]
    fn text_files_stream_in_blocks_cut_at_lines() {
        let d = dir("text");
        let p = d.join("t.txt");
        let body: String = (0..100).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&p, &body).unwrap();
        let (mut pieces, mut firsts) = (Vec::new(), 0);
        text_docs(&p, Utf8Policy::Error, 64, &mut |s, first| {
            firsts += first as usize;
            pieces.push(s.to_string());
            Ok(())
        })
        .unwrap();
        assert!(pieces.len() > 5 && firsts == 1);
        assert!(pieces.iter().all(|s| s.ends_with('\n')));
        assert_eq!(pieces.concat(), body);
    }
}
