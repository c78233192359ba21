//! Reading a file-backed domain's raw text: expanding its `path` (a file, a directory or a
//! glob) into a sorted file list, decompressing by extension (`.gz`, `.zst`), applying the
//! invalid-UTF-8 policy, and cutting the text into documents (a text file is one document, a
//! JSONL line one record). Every problem names the file and the line (or byte offset).
//! Nothing here tokenizes or caches; `prepare` does.

use anyhow::{bail, Context, Result};
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// The files behind a source's `path`, sorted so the token stream does not depend on the
/// directory listing order. Hidden files (a leading dot) under a directory are skipped.
///
/// Every file is resolved to its canonical path and listed once, so a symbolic link to a file
/// (or to a directory) that is also reached another way does not double the data, and a copy
/// cannot land in both the training and the validation split. Directories are walked once each
/// by canonical path, so a link back up the tree (`ln -s . d/self`) is not followed into a
/// cycle. Only regular files are accepted: a FIFO, a device (`/dev/zero`) or a socket would
/// hang or never end, so it is an error naming the path, as is a link that does not resolve.
pub fn expand(pattern: &str) -> Result<Vec<PathBuf>> {
    let p = Path::new(pattern);
    let mut found: Vec<(PathBuf, PathBuf)> = Vec::new();
    let mut seen_dirs = HashSet::new();
    // `symlink_metadata` sees a link itself, so a dangling or looping link is reported as
    // such rather than as a missing path.
    if std::fs::symlink_metadata(p).is_ok() {
        match resolve(p)? {
            Entry::File(canon) => found.push((p.to_path_buf(), canon)),
            Entry::Dir(canon) => {
                seen_dirs.insert(canon);
                walk(p, &mut found, &mut seen_dirs, &|name: &str| !name.starts_with('.'), &|_: &Path| true)?;
                if found.is_empty() {
                    bail!("directory `{pattern}` holds no files");
                }
            }
        }
    } else if pattern.contains(['*', '?', '[']) {
        if pattern.contains("**") {
            // glob's `**` follows directory links without remembering where it has been: a
            // self-link makes the walk exponential. Walk the literal prefix once per
            // directory instead and match the whole pattern against what is found.
            let matcher = glob::Pattern::new(pattern).with_context(|| format!("`{pattern}` is not a valid glob"))?;
            let root = literal_prefix(pattern);
            if std::fs::metadata(&root).is_ok_and(|m| m.is_dir()) {
                seen_dirs.insert(std::fs::canonicalize(&root)?);
                let mut opts = glob::MatchOptions::new();
                opts.require_literal_separator = true;
                // A pattern without a leading directory is walked from `.`, whose entries read
                // `./name`; match them as the user wrote the pattern.
                let strip = root == Path::new(".") && !pattern.starts_with("./");
                let wanted = |path: &Path| {
                    let shown = if strip { path.strip_prefix(".").unwrap_or(path) } else { path };
                    matcher.matches_path_with(shown, opts)
                };
                walk(&root, &mut found, &mut seen_dirs, &|_: &str| true, &wanted)?;
            }
        } else {
            // Without `**` a match has as many components as the pattern: the expansion is
            // bounded whatever links it meets.
            let paths = glob::glob(pattern).with_context(|| format!("`{pattern}` is not a valid glob"))?;
            for entry in paths {
                let path = entry.with_context(|| format!("reading a match of `{pattern}`"))?;
                if let Entry::File(canon) = resolve(&path)? {
                    found.push((path, canon));
                }
            }
        }
        if found.is_empty() {
            bail!("no files match `{pattern}` (relative paths are from the working directory)");
        }
    } else {
        bail!("`{pattern}` does not exist (relative paths are from the working directory)");
    }
    found.sort();
    // The first path (in sorted order) of each file is the one read and named in messages.
    let mut files_seen = HashSet::new();
    Ok(found.into_iter().filter(|(_, canon)| files_seen.insert(canon.clone())).map(|(path, _)| path).collect())
}

/// A path with its links resolved: a regular file or a directory, by canonical path.
enum Entry {
    File(PathBuf),
    Dir(PathBuf),
}

fn resolve(path: &Path) -> Result<Entry> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) => {
            bail!("`{}` is a symbolic link that does not lead to a file ({e})", path.display())
        }
        Err(e) => return Err(e).with_context(|| format!("`{}`: cannot read", path.display())),
    };
    let ft = meta.file_type();
    if !ft.is_file() && !ft.is_dir() {
        bail!(
            "`{}` is not a regular file (it is {}); data sources read regular files only",
            path.display(),
            crate::spec::files::kind_of_special(&ft)
        );
    }
    let canon = std::fs::canonicalize(path).with_context(|| format!("`{}`: cannot resolve", path.display()))?;
    Ok(if ft.is_file() { Entry::File(canon) } else { Entry::Dir(canon) })
}

/// The leading components of a glob without any pattern character (`.` when the first has one).
fn literal_prefix(pattern: &str) -> PathBuf {
    let mut root = PathBuf::new();
    for c in Path::new(pattern).components() {
        if c.as_os_str().to_string_lossy().contains(['*', '?', '[']) {
            break;
        }
        root.push(c);
    }
    if root.as_os_str().is_empty() {
        root.push(".");
    }
    root
}

/// Adds every regular file under `dir` that `wanted` accepts as (path, canonical path),
/// entering only entries whose name `enter` accepts. A directory already walked (reached again
/// through a link) is skipped: its files are listed already, and skipping it is what keeps a
/// link cycle from being followed. A path that is not a file or a directory is an error only
/// if `wanted` (a glob's `**` walk also passes things the glob does not match).
fn walk(
    dir: &Path,
    out: &mut Vec<(PathBuf, PathBuf)>,
    seen: &mut HashSet<PathBuf>,
    enter: &dyn Fn(&str) -> bool,
    wanted: &dyn Fn(&Path) -> bool,
) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("listing {}", dir.display()))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        if !enter(&e.file_name().to_string_lossy()) {
            continue;
        }
        let path = e.path();
        match resolve(&path) {
            Ok(Entry::File(canon)) if wanted(&path) => out.push((path, canon)),
            Ok(Entry::File(_)) => {}
            Ok(Entry::Dir(canon)) => {
                if seen.insert(canon) {
                    walk(&path, out, seen, enter, wanted)?;
                }
            }
            Err(e) if wanted(&path) => return Err(e),
            Err(_) => {}
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

/// What to do with bytes that are not UTF-8: the sweep's parsed choice.
pub use crate::spec::config::Utf8Policy;

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
    // A line is read at most this much at a time, so a file without line ends (a minified dump,
    // a binary file) is cut into bounded pieces too instead of being read whole.
    let step = (4 * block).max(4096) as u64;
    loop {
        let n = r
            .by_ref()
            .take(step)
            .read_until(b'\n', &mut buf)
            .with_context(|| format!("{}: read error", path.display()))?;
        if n == 0 || buf.len() >= block {
            // A piece cut inside a multi-byte character leaves that character's first bytes
            // to the next piece (at the end of the file they are what they are: invalid).
            let cut = buf.len() - if n == 0 { 0 } else { incomplete_char_tail(&buf) };
            if cut > 0 {
                let s = decode(&buf[..cut], policy, &path.display().to_string(), offset)?;
                doc(&s, first)?;
                first = false;
                offset += cut as u64;
                buf.drain(..cut);
            }
            if n == 0 {
                return Ok(());
            }
        }
    }
}

/// Bytes at the end of `buf` that start a UTF-8 character without finishing it (0 to 3).
fn incomplete_char_tail(buf: &[u8]) -> usize {
    let tail = buf.len().min(3);
    for back in 1..=tail {
        let b = buf[buf.len() - back];
        if b & 0xC0 == 0x80 {
            continue; // a continuation byte: the lead is further back
        }
        let want = match b {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => 1,
        };
        return if want > back { back } else { 0 };
    }
    0
}

/// Longest JSONL line read: a record is held whole to be parsed, and real documents (a book
/// is a few MB) are far below this; a file without line ends is not JSONL.
const MAX_JSONL_LINE: usize = 64 << 20;

/// Calls `doc` with the `field` string of every JSONL record. Blank lines are skipped; a line
/// that is not a JSON object, lacks the field, or holds something other than a string there is
/// an error naming the file and line.
pub fn jsonl_docs(path: &Path, field: &str, policy: Utf8Policy, doc: &mut dyn FnMut(&str) -> Result<()>) -> Result<()> {
    jsonl_docs_bounded(path, field, policy, MAX_JSONL_LINE, doc)
}

fn jsonl_docs_bounded(
    path: &Path,
    field: &str,
    policy: Utf8Policy,
    max_line: usize,
    doc: &mut dyn FnMut(&str) -> Result<()>,
) -> Result<()> {
    let mut r = open(path)?;
    let (mut buf, mut line, mut offset) = (Vec::new(), 0u64, 0u64);
    loop {
        buf.clear();
        let n = r
            .by_ref()
            .take(max_line as u64 + 1)
            .read_until(b'\n', &mut buf)
            .with_context(|| format!("{}: read error", path.display()))?;
        if n == 0 {
            return Ok(());
        }
        line += 1;
        let at = format!("{}:{line}", path.display());
        if n > max_line && buf.last() != Some(&b'\n') {
            bail!("{at}: the line is longer than {max_line} bytes; JSONL holds one record per line");
        }
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

    /// A link to a sibling directory, a link back up the tree and a link
    /// to a file already listed add no file; two self-links do not make the walk exponential
    /// (walked with and without a `**` glob).
    #[cfg(unix)]
    #[test]
    fn symlinked_files_and_directories_are_listed_once() {
        use std::os::unix::fs::symlink;
        let d = dir("links");
        std::fs::create_dir_all(d.join("a/deep")).unwrap();
        std::fs::write(d.join("a/x.txt"), "x").unwrap();
        std::fs::write(d.join("a/deep/y.txt"), "y").unwrap();
        symlink(d.join("a"), d.join("b")).unwrap();
        symlink(".", d.join("self")).unwrap();
        symlink("..", d.join("a/up")).unwrap();
        symlink(".", d.join("a/deep/again")).unwrap();
        symlink("a/x.txt", d.join("z.txt")).unwrap();
        let names = |v: Vec<PathBuf>| -> Vec<String> {
            v.iter().map(|p| p.strip_prefix(&d).unwrap().display().to_string()).collect()
        };
        let walked = expand(&d.display().to_string()).unwrap();
        assert_eq!(names(walked), ["a/deep/y.txt", "a/x.txt"]);
        let globbed = expand(&format!("{}/**/*.txt", d.display())).unwrap();
        assert_eq!(names(globbed), ["a/deep/y.txt", "a/x.txt"]);
        let one_level = expand(&format!("{}/*/*.txt", d.display())).unwrap();
        assert_eq!(names(one_level), ["a/x.txt"]);
        // A link named directly is read through, once.
        assert_eq!(names(expand(&d.join("z.txt").display().to_string()).unwrap()), ["z.txt"]);
    }

    /// A FIFO, a link to /dev/zero, a self-referencing link and a dangling
    /// link are errors naming the path and what it is (not "does not exist"), whether named
    /// directly, found in a directory or matched by a glob; one the glob does not match is ignored.
    #[cfg(unix)]
    #[test]
    fn special_files_are_named_never_read() {
        use std::os::unix::fs::symlink;
        let d = dir("special");
        std::fs::write(d.join("ok.txt"), "x").unwrap();
        let mkfifo = |p: &Path| {
            let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
            // SAFETY: mkfifo reads a NUL-terminated path and touches nothing else.
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        };
        let err = |pattern: String| format!("{:#}", expand(&pattern).unwrap_err());
        let fifo_dir = d.join("fifo");
        std::fs::create_dir_all(&fifo_dir).unwrap();
        std::fs::write(fifo_dir.join("a.txt"), "x").unwrap();
        mkfifo(&fifo_dir.join("pipe.txt"));
        let e = err(fifo_dir.display().to_string());
        assert!(e.contains("pipe.txt` is not a regular file (it is a FIFO"), "{e}");
        let e = err(format!("{}/*.txt", fifo_dir.display()));
        assert!(e.contains("pipe.txt` is not a regular file"), "{e}");
        let e = err(format!("{}/**/*.txt", d.display()));
        assert!(e.contains("pipe.txt` is not a regular file"), "{e}");
        assert_eq!(expand(&format!("{}/**/a.txt", d.display())).unwrap().len(), 1, "unmatched FIFO ignored");

        let zero = d.join("zero");
        std::fs::create_dir_all(&zero).unwrap();
        symlink("/dev/zero", zero.join("z.txt")).unwrap();
        let e = err(zero.display().to_string());
        assert!(e.contains("z.txt` is not a regular file (it is a character device)"), "{e}");
        assert!(err("/dev/zero".into()).contains("`/dev/zero` is not a regular file"));

        for (name, target) in [("loop", "me.txt"), ("dangling", "/nonexistent/x")] {
            let sub = d.join(name);
            std::fs::create_dir_all(&sub).unwrap();
            symlink(target, sub.join("me.txt")).unwrap();
            let e = err(sub.display().to_string());
            assert!(e.contains("me.txt` is a symbolic link that does not lead to a file"), "{name}: {e}");
            let e = err(sub.join("me.txt").display().to_string());
            assert!(e.contains("is a symbolic link that does not lead to a file"), "{name}: {e}");
        }
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

    /// A text file without line ends is read in bounded pieces, cut between characters; an
    /// over-long JSONL line is an error, not a read of the whole file.
    #[test]
    fn lines_without_end_are_read_in_bounded_pieces() {
        let d = dir("noeol");
        let p = d.join("one-line.txt");
        let body = "héllo wörld ✓ ".repeat(2000);
        std::fs::write(&p, &body).unwrap();
        let mut pieces = Vec::new();
        text_docs(&p, Utf8Policy::Error, 64, &mut |s, _| Ok(pieces.push(s.to_string()))).unwrap();
        assert!(pieces.len() > 5, "{} pieces", pieces.len());
        assert!(pieces.iter().all(|s| s.len() <= 4096 + 3), "a piece is unbounded");
        assert_eq!(pieces.concat(), body);
        assert_eq!(incomplete_char_tail("a✓".as_bytes()), 0);
        assert_eq!(incomplete_char_tail(&"a✓".as_bytes()[..3]), 2);
        assert_eq!(incomplete_char_tail(&[b'a', 0xC3]), 1);
        let j = d.join("long.jsonl");
        std::fs::write(&j, format!("{{\"text\": \"ok\"}}\n{{\"text\": \"{}\"}}\n", "x".repeat(500))).unwrap();
        let e = format!("{:#}", jsonl_docs_bounded(&j, "text", Utf8Policy::Error, 100, &mut |_| Ok(())).unwrap_err());
        assert!(e.contains("long.jsonl:2: the line is longer than 100 bytes"), "{e}");
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
