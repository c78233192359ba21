//! llm.c token shards: a 256 x int32 little-endian header (magic, version, token count, rest
//! zero) followed by the tokens as uint16 (magic 20240520, version 1: GPT-2 style) or uint32
//! (magic 20240801, version 7: Llama-3 style). The same layout is what modded-nanogpt's
//! FineWeb shards use, and it is also windtunnel's tokenization cache.
//!
//! A shard checks itself on open (magic, version, and file size against the header's count,
//! so a truncated copy is caught before training) and is never loaded whole: each training
//! window is one positioned read (pread) of its own bytes through the page cache, and the one
//! full pass (the largest token id, checked against the vocabulary) reads through a small
//! buffer. Memory-mapping was tried first and measured (`windtunnel bench-data`): a mapping's
//! touched pages count as the process's resident memory and the kernel maps 64 KB around each
//! faulting window, so 20,000 random windows left the whole 1 GB shard resident (+950 MB);
//! with pread the process grows by about 1 MB, at about 1 M windows/s (138 M tokens/s), far
//! above the 5k-45k tokens/s a CPU trainer consumes.

use anyhow::{bail, Context, Result};
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

pub const HEADER_BYTES: usize = 256 * 4;
pub const MAGIC_U16: i32 = 20240520;
pub const MAGIC_U32: i32 = 20240801;

/// What a shard's header says, checked against the file.
#[derive(Clone, Debug, PartialEq)]
pub struct ShardInfo {
    pub path: PathBuf,
    /// Bytes per token: 2 or 4.
    pub width: usize,
    pub tokens: u64,
}

/// Reads and checks the header: the magic and version, and that the body holds exactly the
/// number of tokens the header announces.
pub fn read_header(path: &Path) -> Result<ShardInfo> {
    let mut f = File::open(path).with_context(|| format!("{}: cannot open token shard", path.display()))?;
    let len = f.metadata()?.len();
    if len < HEADER_BYTES as u64 {
        bail!("{}: not an llm.c token shard: {len} bytes, shorter than the {HEADER_BYTES}-byte header", path.display());
    }
    let mut head = [0u8; 12];
    f.read_exact(&mut head)?;
    let word = |i: usize| i32::from_le_bytes(head[4 * i..4 * i + 4].try_into().unwrap());
    let (magic, version, count) = (word(0), word(1), word(2));
    let width = match (magic, version) {
        (MAGIC_U16, 1) => 2,
        (MAGIC_U32, 7) => 4,
        (MAGIC_U16 | MAGIC_U32, v) => {
            bail!(
                "{}: wrong header at byte 4: version {v} (expected 1 for uint16, 7 for uint32 tokens)",
                path.display()
            )
        }
        _ => bail!(
            "{}: wrong header at byte 0: magic {magic} (expected {MAGIC_U16} for uint16 or {MAGIC_U32} for uint32 \
             tokens, the llm.c layout)",
            path.display()
        ),
    };
    if count < 0 {
        bail!("{}: wrong header at byte 8: token count {count} is negative", path.display());
    }
    let body = len - HEADER_BYTES as u64;
    let want = count as u64 * width as u64;
    if body != want {
        let what = if body < want { "truncated" } else { "longer than its header says" };
        bail!(
            "{}: {what}: the header announces {count} tokens ({want} bytes) but the file has {body} bytes after \
             the header",
            path.display()
        );
    }
    Ok(ShardInfo { path: path.to_path_buf(), width, tokens: count as u64 })
}

/// The largest token id in a shard, read through a 1 MB buffer.
pub fn max_token(info: &ShardInfo) -> Result<u32> {
    let mut f = File::open(&info.path)?;
    let mut skip = [0u8; HEADER_BYTES];
    f.read_exact(&mut skip)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut max = 0u32;
    let mut left = info.tokens * info.width as u64;
    while left > 0 {
        let n = (buf.len() as u64).min(left) as usize;
        f.read_exact(&mut buf[..n]).with_context(|| format!("{}: reading tokens", info.path.display()))?;
        let m = if info.width == 2 {
            buf[..n].chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]) as u32).max()
        } else {
            buf[..n].chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).max()
        };
        max = max.max(m.unwrap_or(0));
        left -= n as u64;
    }
    Ok(max)
}

/// The 1,024-byte header of a shard of `tokens` ids, `width` bytes each (2 or 4); the only
/// writer of the layout that `read_header` checks.
pub fn header(width: usize, tokens: u64) -> Result<[u8; HEADER_BYTES]> {
    let (magic, version) = if width == 4 { (MAGIC_U32, 7) } else { (MAGIC_U16, 1) };
    let count = i32::try_from(tokens).context("more than 2^31 - 1 tokens in one shard")?;
    let mut h = [0u8; HEADER_BYTES];
    for (i, v) in [magic, version, count].into_iter().enumerate() {
        h[4 * i..4 * i + 4].copy_from_slice(&v.to_le_bytes());
    }
    Ok(h)
}

/// A checked shard, open for positioned reads.
pub struct Reader {
    file: File,
    pub info: ShardInfo,
}

impl Reader {
    pub fn open(path: &Path) -> Result<Reader> {
        let info = read_header(path)?;
        let file = File::open(path).with_context(|| format!("{}: cannot open token shard", path.display()))?;
        Ok(Reader { file, info })
    }

    pub fn len(&self) -> u64 {
        self.info.tokens
    }

    pub fn is_empty(&self) -> bool {
        self.info.tokens == 0
    }

    /// Appends tokens [start, start + len) to `out` as i64 ids. The shard was checked on open
    /// and windows lie inside it, so a failing read means the file changed under the run.
    pub fn window(&self, start: u64, len: usize, out: &mut Vec<i64>) {
        let w = self.info.width;
        let mut bytes = [0u8; 4096];
        let mut heap;
        let buf: &mut [u8] = if len * w <= bytes.len() {
            &mut bytes[..len * w]
        } else {
            heap = vec![0u8; len * w];
            &mut heap
        };
        let at = HEADER_BYTES as u64 + start * w as u64;
        if let Err(e) = self.file.read_exact_at(buf, at) {
            panic!("{}: token shard changed or vanished during training: {e}", self.info.path.display());
        }
        if w == 2 {
            out.extend(buf.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]) as i64));
        } else {
            out.extend(buf.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A shard of `tokens` (uint16 when every id fits, else uint32).
    fn write(path: &Path, tokens: &[u32]) -> Result<()> {
        let wide = tokens.iter().any(|&t| t > u16::MAX as u32);
        let mut f = File::create(path)?;
        f.write_all(&header(if wide { 4 } else { 2 }, tokens.len() as u64)?)?;
        for &t in tokens {
            if wide {
                f.write_all(&t.to_le_bytes())?;
            } else {
                f.write_all(&(t as u16).to_le_bytes())?;
            }
        }
        Ok(())
    }

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("wt-shard-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d.join("s.bin")
    }

    #[test]
    fn roundtrip_u16_and_u32() {
        for (name, toks) in [("u16", vec![1u32, 2, 65535, 7]), ("u32", vec![1u32, 70000, 3])] {
            let p = tmp(name);
            write(&p, &toks).unwrap();
            let m = Reader::open(&p).unwrap();
            assert_eq!(m.info.width, if name == "u16" { 2 } else { 4 });
            let mut out = Vec::new();
            m.window(1, toks.len() - 1, &mut out);
            assert_eq!(out, toks[1..].iter().map(|&t| t as i64).collect::<Vec<_>>());
            assert_eq!(max_token(&m.info).unwrap(), *toks.iter().max().unwrap());
        }
    }

    #[test]
    fn bad_headers_and_truncation_are_named() {
        let p = tmp("bad");
        write(&p, &[1, 2, 3, 4]).unwrap();
        let good = std::fs::read(&p).unwrap();
        let mut magic = good.clone();
        magic[0] = 0;
        std::fs::write(&p, &magic).unwrap();
        let e = format!("{:#}", read_header(&p).unwrap_err());
        assert!(e.contains("wrong header at byte 0") && e.contains("s.bin"), "{e}");
        std::fs::write(&p, &good[..good.len() - 3]).unwrap();
        let e = format!("{:#}", read_header(&p).unwrap_err());
        assert!(e.contains("truncated") && e.contains("4 tokens"), "{e}");
        std::fs::write(&p, &good[..100]).unwrap();
        let e = format!("{:#}", read_header(&p).unwrap_err());
        assert!(e.contains("shorter than the 1024-byte header"), "{e}");
    }
}
