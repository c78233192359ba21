//! A file-backed domain as a sampler: its token shards (read window by window, never loaded
//! whole) cut into `CHUNK`-token chunks,
//! a fixed set of full chunks held out for validation (chosen by a keyed hash of the domain
//! name and the chunk's position: the same for every run and sweep, never trained on), and
//! training windows drawn uniformly over every start position in the remaining chunks.
//! Windows never cross a chunk, so no training window overlaps a validation one.

use super::prepare::{Manifest, CHUNK};
use super::shard::Reader;
use crate::rng::{self, Rng};
use crate::spec::config::FileSource;
use anyhow::Result;

pub struct Stream {
    shards: Vec<Reader>,
    /// (shard, first token, length) of each training chunk.
    train: Vec<(usize, u64, u64)>,
    /// The same for validation chunks (all full), in file order.
    val: Vec<(usize, u64, u64)>,
    pub bytes_per_token: Option<f64>,
    /// Training window length (seq_len + 1) and the running total of window starts per
    /// training chunk, for a binary search per draw.
    len: usize,
    cum_starts: Vec<u64>,
}

impl Stream {
    pub fn open(name: &str, m: &Manifest, src: &FileSource, len: usize) -> Result<Stream> {
        let shards = m.shards.iter().map(|p| Reader::open(p)).collect::<Result<Vec<_>>>()?;
        let key = rng::hash_str(name);
        let (mut train, mut val) = (Vec::new(), Vec::new());
        for (s, sh) in shards.iter().enumerate() {
            let mut start = 0;
            while start < sh.len() {
                let len = CHUNK.min(sh.len() - start);
                let u = Rng::keyed(&[0x76_616c_6368, key, s as u64, start / CHUNK]).uniform();
                if len == CHUNK && u < src.val_fraction {
                    val.push((s, start, len));
                } else {
                    train.push((s, start, len));
                }
                start += len;
            }
        }
        if val.is_empty() {
            // A small corpus may draw no chunk: hold out its last full one.
            if let Some(i) = train.iter().rposition(|c| c.2 == CHUNK) {
                val.push(train.remove(i));
            }
        }
        let mut cum_starts = Vec::with_capacity(train.len());
        let mut acc = 0u64;
        for c in &train {
            acc += (c.2 + 1).saturating_sub(len as u64);
            cum_starts.push(acc);
        }
        if acc == 0 {
            anyhow::bail!("domain {name}: no training chunk holds a window of {len} tokens");
        }
        Ok(Stream { shards, train, val, bytes_per_token: m.bytes_per_token(src), len, cum_starts })
    }

    /// Tokens available for training and held out.
    pub fn sizes(&self) -> (u64, u64) {
        (self.train.iter().map(|c| c.2).sum(), self.val.iter().map(|c| c.2).sum())
    }

    /// Appends one training window (seq_len + 1 tokens) at a position drawn from `rng`.
    pub fn train_window(&self, rng: &mut Rng, out: &mut Vec<i64>) {
        let total = *self.cum_starts.last().expect("open checked");
        let r = ((rng.uniform() * total as f64) as u64).min(total - 1);
        let i = self.cum_starts.partition_point(|&c| c <= r);
        let before = if i == 0 { 0 } else { self.cum_starts[i - 1] };
        let c = self.train[i];
        self.shards[c.0].window(c.1 + (r - before), self.len, out)
    }

    /// Up to `rows` consecutive non-overlapping validation windows of `len` tokens (fewer when
    /// the held-out chunks are smaller; at least one, as `prepare` checked).
    pub fn val_windows(&self, rows: usize, len: usize) -> Vec<i64> {
        let mut out = Vec::with_capacity(rows * len);
        let mut got = 0;
        'outer: for c in &self.val {
            let mut off = 0;
            while off + len as u64 <= c.2 {
                if got == rows {
                    break 'outer;
                }
                self.shards[c.0].window(c.1 + off, len, &mut out);
                off += len as u64;
                got += 1;
            }
        }
        out
    }
}
