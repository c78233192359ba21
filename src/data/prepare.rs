//! Getting file-backed domains ready before any training starts (at `plan` and `run` time):
//! expand each source's path, fingerprint its contents, tokenize text/JSONL/Parquet once into the
//! cache (llm.c shards), check shards' headers and token ids against the vocabulary, and write
//! a manifest that the workers open. Every problem is a `UserError` naming the source's
//! position in the sweep file and the data file's position (line, byte, header field).
//!
//! The cache lives in `$WINDTUNNEL_CACHE`, else `$XDG_CACHE_HOME/windtunnel`, else
//! `~/.cache/windtunnel` (like Hugging Face's), keyed by fingerprint: the same corpus and
//! tokenizer are tokenized once per machine, by whichever sweep needs them first. Content
//! hashes are memoised by (path, size, mtime) so re-fingerprinting a large corpus is free.

use super::files;
use super::parquet;
use super::shard;
use super::tokenizer::Tokenizer;
use crate::spec::config::{DomainConfig, FileSource, SourceKind, Sweep};
use crate::{store, UserError};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Tokens per chunk: the unit of the train/validation split (a chunk is wholly one or the
/// other, and a window never crosses a chunk), so seq_len + 1 must fit in one.
pub const CHUNK: u64 = 8192;
/// Tokens per cache shard (llm.c's size; also far below the header's i32 count limit).
const CACHE_SHARD_TOKENS: usize = 100_000_000;
/// Text is tokenized in pieces of about this many bytes (cut at line ends).
const TEXT_BLOCK: usize = 1 << 20;

/// What a prepared domain is made of; `<cache>/<fingerprint>.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub kind: SourceKind,
    /// The shards holding the tokens, in order (cache shards for text/jsonl, the source's
    /// own files for shards), as absolute paths.
    pub shards: Vec<PathBuf>,
    pub tokens: u64,
    pub max_token: u32,
    /// UTF-8 bytes of text behind the tokens (text/jsonl; separators not counted).
    pub text_bytes: Option<u64>,
    pub documents: u64,
    pub files: usize,
    /// parquet: rows read, before the row filter (`documents` are the rows kept with a text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
}

impl Manifest {
    /// Bytes of text per token, for bits/byte.
    pub fn bytes_per_token(&self, src: &FileSource) -> Option<f64> {
        match self.text_bytes {
            Some(b) if self.tokens > 0 => Some(b as f64 / self.tokens as f64),
            _ => src.bytes_per_token,
        }
    }
}

/// One line of the data summary `plan` and `run` print.
#[derive(Clone, Debug)]
pub struct DomainReport {
    pub name: String,
    pub kind: SourceKind,
    pub files: usize,
    pub tokens: u64,
    pub bytes_per_token: Option<f64>,
    /// "cached", "tokenized in 1.2 s (3.4 M tokens/s)" or "checked".
    pub how: String,
}

pub fn cache_root() -> PathBuf {
    if let Some(p) = std::env::var_os("WINDTUNNEL_CACHE").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::var_os("XDG_CACHE_HOME").filter(|p| !p.is_empty()) {
        return PathBuf::from(p).join("windtunnel");
    }
    match std::env::var_os("HOME").filter(|p| !p.is_empty()) {
        Some(h) => PathBuf::from(h).join(".cache").join("windtunnel"),
        None => PathBuf::from(".windtunnel-cache"),
    }
}

/// Sets every file-backed domain's fingerprint in every run (built-in domains have none), so
/// run ids change when the data does. Cheap once the content hashes are memoised.
pub fn stamp(sweep: &mut Sweep, cache: &Path) -> Result<()> {
    let Some(first) = sweep.runs.first() else { return Ok(()) };
    if first.domains.iter().all(|d| d.source.is_none()) {
        return Ok(());
    }
    let tok_fp = tokenizer_fingerprint(sweep)?;
    let mut memo = Memo::load(cache);
    let mut prints = BTreeMap::new();
    for (i, d) in first.domains.iter().enumerate() {
        if let Some(src) = &d.source {
            let fp = fingerprint(d, src, &tok_fp, &mut memo).map_err(|e| located(sweep, i, e))?;
            prints.insert(d.name.clone(), fp);
        }
    }
    memo.save(cache);
    for run in &mut sweep.runs {
        for d in &mut run.domains {
            d.fingerprint = prints.get(&d.name).cloned();
        }
    }
    Ok(())
}

fn tokenizer_fingerprint(sweep: &Sweep) -> Result<String> {
    Ok(match &sweep.data.tokenizer {
        crate::spec::config::TokenizerSpec::Bytes => "bytes".into(),
        crate::spec::config::TokenizerSpec::Hf { path } => {
            let bytes =
                crate::spec::files::read_tokenizer_file(Path::new(path)).map_err(|e| UserError(format!("{e:#}")))?;
            format!("hf:{}", &blake3::hash(&bytes).to_hex()[..16])
        }
    })
}

/// The error of source `i`, prefixed with where the source is declared.
fn located(sweep: &Sweep, i: usize, e: anyhow::Error) -> anyhow::Error {
    let at = sweep.data.source_at.get(i).cloned().unwrap_or_else(|| format!("data.source[{i}]"));
    UserError(format!("{at}: {e:#}")).into()
}

/// Stamps fingerprints, then makes sure every file-backed domain has a manifest in the cache
/// (tokenizing text/JSONL, checking shards), and checks each domain against the runs: token
/// ids below the vocabulary, room for a training and a validation chunk, seq_len + 1 <= CHUNK.
pub fn prepare(sweep: &mut Sweep, cache: &Path) -> Result<Vec<DomainReport>> {
    stamp(sweep, cache)?;
    let Some(first) = sweep.runs.first().cloned() else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    let mut tokenizer = None;
    for (i, d) in first.domains.iter().enumerate() {
        let (Some(src), Some(fp)) = (&d.source, &d.fingerprint) else { continue };
        let started = Instant::now();
        let cached = manifest_path(cache, fp).exists();
        let m = if cached {
            open_manifest(cache, fp).map_err(|e| located(sweep, i, e))?
        } else {
            if tokenizer.is_none() && d.kind != SourceKind::Shards {
                tokenizer = Some(Tokenizer::load(&sweep.data.tokenizer).map_err(|e| UserError(format!("{e:#}")))?);
            }
            let m = build(d, src, tokenizer.as_ref(), cache, fp).map_err(|e| located(sweep, i, e))?;
            store::write_json_atomic(&manifest_path(cache, fp), &m)?;
            m
        };
        check(sweep, d, &m).map_err(|e| located(sweep, i, e))?;
        let secs = started.elapsed().as_secs_f64();
        let how = match (cached, d.kind) {
            (true, _) => "cached".to_string(),
            (false, SourceKind::Shards) => format!("checked in {secs:.1} s"),
            _ => format!("tokenized in {secs:.1} s ({:.2} M tokens/s)", m.tokens as f64 / secs.max(1e-9) / 1e6),
        };
        let how = match m.rows {
            Some(rows) => format!("{how}; {} of {rows} rows", m.documents),
            None => how,
        };
        let bpt = m.bytes_per_token(src);
        out.push(DomainReport {
            name: d.name.clone(),
            kind: d.kind,
            files: m.files,
            tokens: m.tokens,
            bytes_per_token: bpt,
            how,
        });
    }
    Ok(out)
}

fn check(sweep: &Sweep, d: &DomainConfig, m: &Manifest) -> Result<()> {
    let vocab = sweep.runs.iter().map(|r| r.vocab).min().unwrap_or(256);
    if m.max_token as usize >= vocab {
        let hint = if d.kind == SourceKind::Shards {
            format!("set [data] vocab = {} (or more), or use the tokenizer that made the shards", m.max_token + 1)
        } else {
            "the tokenizer produced an id beyond its own vocabulary".into()
        };
        anyhow::bail!("token id {} is outside the model's vocabulary of {vocab}: {hint}", m.max_token);
    }
    let max_seq = sweep.runs.iter().map(|r| r.seq_len).max().unwrap_or(1) as u64;
    if max_seq + 1 > CHUNK {
        anyhow::bail!("seq_len {max_seq} + 1 exceeds the {CHUNK}-token chunk that file-backed domains are split into");
    }
    let full: u64 = split_sizes(m)?.iter().map(|&t| t / CHUNK).sum();
    if full < 2 {
        anyhow::bail!(
            "only {} tokens in {} file(s); a file-backed domain needs at least two {CHUNK}-token chunks in one file \
             (one is held out for validation)",
            m.tokens,
            m.files
        );
    }
    Ok(())
}

/// Tokens per shard of a manifest (from the shards' headers, which are checked on the way).
fn split_sizes(m: &Manifest) -> Result<Vec<u64>> {
    m.shards.iter().map(|p| shard::read_header(p).map(|i| i.tokens)).collect()
}

pub fn manifest_path(cache: &Path, fingerprint: &str) -> PathBuf {
    cache.join(format!("{fingerprint}.json"))
}

/// A prepared domain's manifest, its shards' headers checked against it.
pub fn open_manifest(cache: &Path, fingerprint: &str) -> Result<Manifest> {
    let p = manifest_path(cache, fingerprint);
    let m: Manifest = store::read_json(&p).with_context(|| {
        format!(
            "data cache entry {} is missing or unreadable (run `windtunnel plan` on the sweep to prepare it)",
            p.display()
        )
    })?;
    let total: u64 = split_sizes(&m)?.iter().sum();
    if total != m.tokens {
        anyhow::bail!(
            "{}: its shards hold {total} tokens, the manifest says {}; the data changed",
            p.display(),
            m.tokens
        );
    }
    Ok(m)
}

/// The files behind a domain's `path`, as both the fingerprint and the tokenizer see them.
fn source_files(d: &DomainConfig, src: &FileSource) -> Result<Vec<PathBuf>> {
    if d.kind == SourceKind::Parquet {
        parquet::files(&src.path)
    } else {
        files::expand(&src.path)
    }
}

fn fingerprint(d: &DomainConfig, src: &FileSource, tok_fp: &str, memo: &mut Memo) -> Result<String> {
    let files = source_files(d, src)?;
    let mut h = blake3::Hasher::new();
    // d.kind serialises as its sweep-file word, the string this hash was first taken over.
    let spec = serde_json::to_vec(&(&d.kind, src, if d.kind == SourceKind::Shards { "" } else { tok_fp }))?;
    h.update(&spec);
    for f in &files {
        h.update(memo.hash(f)?.as_bytes());
    }
    Ok(h.finalize().to_hex()[..16].to_string())
}

/// Builds the manifest of one domain (tokenizing into cache shards for text/jsonl/parquet).
/// Public for `bench-parquet`, which times exactly this.
pub fn build(d: &DomainConfig, src: &FileSource, tok: Option<&Tokenizer>, cache: &Path, fp: &str) -> Result<Manifest> {
    let files = source_files(d, src)?;
    if d.kind == SourceKind::Shards {
        let mut shards = Vec::new();
        let (mut tokens, mut max) = (0u64, 0u32);
        for f in &files {
            let info = shard::read_header(f)?;
            max = max.max(shard::max_token(&info)?);
            tokens += info.tokens;
            shards.push(std::fs::canonicalize(f)?);
        }
        if tokens == 0 {
            anyhow::bail!("the {} shard(s) of `{}` hold no tokens", files.len(), src.path);
        }
        return Ok(Manifest {
            kind: d.kind,
            shards,
            tokens,
            max_token: max,
            text_bytes: None,
            documents: 0,
            files: files.len(),
            rows: None,
        });
    }
    let tok = tok.expect("text sources get a tokenizer");
    std::fs::create_dir_all(cache).with_context(|| format!("creating the data cache {}", cache.display()))?;
    let policy = src.invalid_utf8;
    let mut w = CacheWriter::new(cache, fp, tok.vocab() > 65536);
    // Pieces are tokenized in parallel batches of about BATCH_BYTES (rayon; prepare runs before
    // any worker starts, so every core is free) and written in order.
    let mut batch = Batch::default();
    // parquet: rows read and rows kept, for the message when nothing is left.
    let (mut rows, mut kept, mut empty_files) = (0u64, 0u64, Vec::new());
    for f in &files {
        let mut add = |text: &str, new_doc: bool| -> Result<()> {
            batch.pieces.push((text.to_string(), new_doc));
            batch.size += text.len();
            if batch.size >= BATCH_BYTES {
                batch.flush(tok, &mut w)?;
            }
            Ok(())
        };
        if d.kind == SourceKind::Jsonl {
            let field = src.field.as_deref().unwrap_or("text");
            files::jsonl_docs(f, field, policy, &mut |s| add(s, true))?;
        } else if d.kind == SourceKind::Parquet {
            let column = src.column.as_deref().unwrap_or("text");
            let c = parquet::docs(f, column, src.filter.as_ref(), &mut |s| add(s, true))?;
            if c.rows == 0 {
                empty_files.push(f.display().to_string());
            }
            (rows, kept) = (rows + c.rows, kept + c.kept);
        } else {
            files::text_docs(f, policy, TEXT_BLOCK, &mut add)?;
        }
    }
    batch.flush(tok, &mut w)?;
    let (bytes, docs) = (batch.bytes, batch.docs);
    let (shards, tokens, max) = w.finish()?;
    if tokens == 0 {
        if d.kind == SourceKind::Parquet {
            if rows == 0 {
                anyhow::bail!(
                    "no rows in the {} Parquet file(s) of `{}` ({})",
                    files.len(),
                    src.path,
                    empty_files.join(", ")
                );
            }
            if let (Some(f), 0) = (&src.filter, kept) {
                anyhow::bail!("the filter `{f}` keeps none of the {rows} rows of `{}`", src.path);
            }
        }
        anyhow::bail!("no text in the {} file(s) of `{}` (empty source)", files.len(), src.path);
    }
    Ok(Manifest {
        kind: d.kind,
        shards,
        tokens,
        max_token: max,
        text_bytes: Some(bytes),
        documents: docs,
        files: files.len(),
        rows: (d.kind == SourceKind::Parquet).then_some(rows),
    })
}

/// Text tokenized per parallel batch.
const BATCH_BYTES: usize = 16 << 20;

#[derive(Default)]
struct Batch {
    /// (text, starts a new document)
    pieces: Vec<(String, bool)>,
    size: usize,
    bytes: u64,
    docs: u64,
}

impl Batch {
    fn flush(&mut self, tok: &Tokenizer, w: &mut CacheWriter) -> Result<()> {
        use rayon::prelude::*;
        let encoded: Vec<Result<Vec<u32>>> = self
            .pieces
            .par_iter()
            .map(|(text, _)| {
                let mut out = Vec::with_capacity(text.len() / 3);
                tok.encode(text, &mut out).map(|_| out)
            })
            .collect();
        for ((text, new_doc), toks) in self.pieces.iter().zip(encoded) {
            if *new_doc {
                if self.docs > 0 {
                    if let Some(e) = tok.eos() {
                        w.push(&[e])?;
                    }
                }
                self.docs += 1;
            }
            self.bytes += text.len() as u64;
            w.push(&toks?)?;
        }
        self.pieces.clear();
        self.size = 0;
        Ok(())
    }
}

/// Streams tokens into numbered llm.c cache shards `<fp>.<k>.bin`, fixing each header up when
/// the shard is complete; files are written aside and renamed, so a killed tokenization
/// leaves no shard a reader would accept.
struct CacheWriter {
    dir: PathBuf,
    fp: String,
    wide: bool,
    cur: Option<(std::io::BufWriter<std::fs::File>, PathBuf, usize)>,
    done: Vec<PathBuf>,
    total: u64,
    max: u32,
}

impl CacheWriter {
    fn new(dir: &Path, fp: &str, wide: bool) -> Self {
        CacheWriter { dir: dir.to_path_buf(), fp: fp.into(), wide, cur: None, done: Vec::new(), total: 0, max: 0 }
    }

    fn push(&mut self, toks: &[u32]) -> Result<()> {
        for &t in toks {
            if self.cur.as_ref().is_some_and(|c| c.2 >= CACHE_SHARD_TOKENS) {
                self.close()?;
            }
            if self.cur.is_none() {
                let tmp = self.dir.join(format!("{}.{}.bin.tmp{}", self.fp, self.done.len(), std::process::id()));
                let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp)?);
                f.write_all(&[0u8; shard::HEADER_BYTES])?;
                self.cur = Some((f, tmp, 0));
            }
            let c = self.cur.as_mut().unwrap();
            if self.wide {
                c.0.write_all(&t.to_le_bytes())?;
            } else {
                c.0.write_all(&(t as u16).to_le_bytes())?;
            }
            c.2 += 1;
            self.max = self.max.max(t);
            self.total += 1;
        }
        Ok(())
    }

    fn close(&mut self) -> Result<()> {
        let Some((w, tmp, n)) = self.cur.take() else { return Ok(()) };
        let mut f = w.into_inner().map_err(|e| e.into_error())?;
        f.seek(SeekFrom::Start(0))?;
        f.write_all(&shard::header(if self.wide { 4 } else { 2 }, n as u64)?)?;
        f.sync_all()?;
        let path = self.dir.join(format!("{}.{}.bin", self.fp, self.done.len()));
        std::fs::rename(&tmp, &path)?;
        self.done.push(path);
        Ok(())
    }

    fn finish(mut self) -> Result<(Vec<PathBuf>, u64, u32)> {
        self.close()?;
        let done = self.done.iter().map(std::fs::canonicalize).collect::<std::io::Result<_>>()?;
        Ok((done, self.total, self.max))
    }
}

/// blake3 content hashes of data files, memoised by (absolute path, size, mtime).
struct Memo {
    path: PathBuf,
    map: BTreeMap<String, String>,
    dirty: bool,
}

impl Memo {
    fn load(cache: &Path) -> Memo {
        let path = cache.join("file-hashes.json");
        let map = store::read_json(&path).unwrap_or_default();
        Memo { path, map, dirty: false }
    }

    fn hash(&mut self, f: &Path) -> Result<String> {
        let meta = std::fs::metadata(f).with_context(|| format!("{}: cannot read", f.display()))?;
        let mtime = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
        let abs = std::fs::canonicalize(f)?;
        let key = format!("{}|{}|{}", abs.display(), meta.len(), mtime.map_or(0, |d| d.as_nanos()));
        if let Some(h) = self.map.get(&key) {
            return Ok(h.clone());
        }
        let mut file = std::fs::File::open(f).with_context(|| format!("{}: cannot open", f.display()))?;
        let mut h = blake3::Hasher::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf).with_context(|| format!("{}: read error", f.display()))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        let hex = h.finalize().to_hex()[..32].to_string();
        self.map.insert(key, hex.clone());
        self.dirty = true;
        Ok(hex)
    }

    /// Best effort: a lost memo only costs a re-hash.
    fn save(&self, cache: &Path) {
        if self.dirty && std::fs::create_dir_all(cache).is_ok() {
            let _ = store::write_json_atomic(&self.path, &self.map);
        }
    }
}
