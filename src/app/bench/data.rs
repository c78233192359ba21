//! `windtunnel bench-data`: what reading a large token shard costs. Writes a shard of the
//! given size (random tokens, or a sparse file of zeros that costs no disk), then measures the
//! header check, the full-file vocabulary scan (read through a buffer), the opening and
//! split, and training-window sampling (tokens/s), with this process's resident
//! memory (anonymous and file-backed, from /proc/self/status) before and after. The trainer
//! consumes 5k to 45k tokens/s per CPU job (`windtunnel bench`), so the loader must be far
//! faster than that and must not grow with the shard.

use crate::data::prepare::Manifest;
use crate::data::shard;
use crate::data::stream::Stream;
use crate::rng::Rng;
use crate::spec::config::{FileSource, SourceKind};
use anyhow::{Context, Result};
use std::io::Write;
use std::path::Path;
use std::time::Instant;

/// Resident memory in kB: (anonymous, file-backed + shared), 0 where /proc is unavailable.
pub fn rss_kb() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |k: &str| {
        s.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("RssAnon:"), field("RssFile:") + field("RssShmem:"))
}

pub fn run(dir: &Path, gb: f64, sparse: bool, windows: usize) -> Result<String> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("bench-{}.bin", std::process::id()));
    let tokens = ((gb * 1e9) as u64 - shard::HEADER_BYTES as u64) / 2;
    let t = Instant::now();
    write_shard(&path, tokens, sparse).with_context(|| format!("writing {}", path.display()))?;
    let write_s = t.elapsed().as_secs_f64();
    let out = measure(&path, tokens, windows);
    let _ = std::fs::remove_file(&path);
    let (lines, _) = out?;
    Ok(format!(
        "shard: {} tokens ({gb} GB, {}), written in {write_s:.1} s\n{lines}",
        tokens,
        if sparse { "sparse" } else { "random tokens" }
    ))
}

fn write_shard(path: &Path, tokens: u64, sparse: bool) -> Result<()> {
    let mut f = std::fs::File::create(path)?;
    f.write_all(&shard::header(2, tokens)?)?;
    if sparse {
        f.set_len(shard::HEADER_BYTES as u64 + 2 * tokens)?;
        return Ok(());
    }
    let mut rng = Rng::new(7);
    let mut w = std::io::BufWriter::with_capacity(4 << 20, f);
    let mut block = vec![0u8; 1 << 20];
    let mut left = 2 * tokens;
    while left > 0 {
        for c in block.chunks_exact_mut(8) {
            // Token ids below 50,257 (GPT-2's vocabulary).
            let v = rng.next_u64();
            for k in 0..4 {
                let t = ((v >> (16 * k)) & 0xffff) % 50257;
                c[2 * k..2 * k + 2].copy_from_slice(&(t as u16).to_le_bytes());
            }
        }
        let n = (block.len() as u64).min(left) as usize;
        w.write_all(&block[..n])?;
        left -= n as u64;
    }
    w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(())
}

/// Returns the report lines and the resident-memory increase (kB, anonymous + file).
pub fn measure(path: &Path, tokens: u64, windows: usize) -> Result<(String, u64)> {
    let (a0, f0) = rss_kb();
    let t = Instant::now();
    let info = shard::read_header(path)?;
    let head_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let max = shard::max_token(&info)?;
    let scan_s = t.elapsed().as_secs_f64();
    let m = Manifest {
        kind: SourceKind::Shards,
        shards: vec![path.to_path_buf()],
        tokens,
        max_token: max,
        text_bytes: None,
        documents: 0,
        files: 1,
        rows: None,
    };
    let src = FileSource {
        path: path.display().to_string(),
        field: None,
        invalid_utf8: crate::spec::config::Utf8Policy::Replace,
        val_fraction: 0.02,
        bytes_per_token: None,
        column: None,
        filter: None,
    };
    let t = Instant::now();
    let len = 129; // seq_len 128 + 1, as the bench's small model
    let stream = Stream::open("bench", &m, &src, len)?;
    let open_s = t.elapsed().as_secs_f64();
    let (a1, f1) = rss_kb();
    let mut out = Vec::with_capacity(len * 16);
    let t = Instant::now();
    let mut check = 0i64;
    for i in 0..windows {
        out.clear();
        let mut rng = Rng::keyed(&[0xbe, i as u64]);
        stream.train_window(&mut rng, &mut out);
        check = check.wrapping_add(out[0]);
    }
    let sample_s = t.elapsed().as_secs_f64();
    let (a2, f2) = rss_kb();
    let (train, val) = stream.sizes();
    let grown = (a2 + f2).saturating_sub(a0 + f0);
    let lines = format!(
        "header check: {:.3} ms; vocabulary scan (buffered read): {:.2} s, {:.2} GB/s, max id {max}\n\
         open + split: {:.1} ms ({train} training, {val} held-out tokens)\n\
         sampling: {windows} windows of {len} tokens in {:.2} s: {:.0} windows/s, {:.2} M tokens/s (checksum {check})\n\
         resident memory: anonymous {a0} -> {a1} -> {a2} kB, file-backed {f0} -> {f1} -> {f2} kB: +{:.1} MB in all\n",
        head_s * 1e3,
        scan_s,
        2.0 * tokens as f64 / scan_s / 1e9,
        open_s * 1e3,
        sample_s,
        windows as f64 / sample_s,
        (windows * len) as f64 / sample_s / 1e6,
        grown as f64 / 1024.0
    );
    Ok((lines, grown))
}
