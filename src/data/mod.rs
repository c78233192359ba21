//! Data: built-in synthetic sources, file-backed domains (text, JSONL, Parquet, token shards; see
//! `prepare`, which tokenizes and checks them before training), the deterministic mixture
//! sampler and the fixed per-domain validation windows. Nothing here touches the model.
//!
//! Every training sequence is a pure function of (sweep seed, step, row): the sampler picks
//! the row's domain from the mixture weights, then a window of that domain: a freshly
//! generated one for a built-in source (so data never repeats, as the scaling laws assume), or
//! one at a random position of the domain's training chunks for a file-backed one (windows
//! drawn with replacement; `plan` warns when a run would see a domain more than once).
//! Validation windows come from a separate key (built-in) or from held-out chunks (files)
//! and are never trained on; resuming at step s needs no saved cursor.

pub mod files;
pub mod markov;
pub mod parquet;
pub mod pcfg;
pub mod prepare;
pub mod shard;
pub mod stream;
pub mod tokenizer;

use crate::rng::{self, Rng};
use crate::spec::config::{Builtin, RunConfig};
use anyhow::{bail, Context, Result};
use std::path::Path;

/// Byte-level tokenizer: token id = byte value, so nats/token and bits/byte differ only by ln 2.
pub const VOCAB: usize = 256;

/// One generating process.
pub enum Source {
    Markov(markov::Markov),
    Pcfg(pcfg::Pcfg),
}

impl Source {
    pub fn new(b: Builtin) -> Source {
        match b {
            Builtin::Markov => Source::Markov(markov::Markov::new()),
            Builtin::Pcfg => Source::Pcfg(pcfg::Pcfg::new()),
        }
    }

    /// Appends `len` bytes; returns (-log p of the generated symbols, symbols it covers).
    pub fn generate(&self, rng: &mut Rng, len: usize, out: &mut Vec<u8>) -> (f64, usize) {
        match self {
            Source::Markov(m) => m.generate(rng, len, out),
            Source::Pcfg(p) => p.generate(rng, len, out),
        }
    }
}

/// The generator's entropy rate in nats per byte, measured on a fixed long sample: the mean
/// -log p of what the generator emitted (exact for the Markov source, an upper bound for the
/// grammar). No model can beat it on average, so it is the floor under the fitted E.
pub fn entropy_floor(b: Builtin) -> f64 {
    let src = Source::new(b);
    let mut rng = Rng::new(0xf100);
    let (mut nll, mut n) = (0.0, 0usize);
    let mut buf = Vec::new();
    for _ in 0..200 {
        buf.clear();
        let (a, b) = src.generate(&mut rng, 2048, &mut buf);
        nll += a;
        n += b;
    }
    nll / n as f64
}

/// A domain as the sampler sees it.
enum Domain {
    Builtin(Source),
    Files(stream::Stream),
}

/// The mixture sampler of one run.
pub struct Mixture {
    names: Vec<String>,
    sources: Vec<Domain>,
    weights: Vec<f64>,
    seed: u64,
    seq_len: usize,
}

impl Mixture {
    /// The run's domains, file-backed ones opened from the data cache (`prepare::cache_root`).
    pub fn new(cfg: &RunConfig) -> Result<Mixture> {
        Mixture::with_cache(cfg, &prepare::cache_root())
    }

    pub fn with_cache(cfg: &RunConfig, cache: &Path) -> Result<Mixture> {
        let mut names = Vec::new();
        let mut sources = Vec::new();
        let mut weights = Vec::new();
        for d in &cfg.domains {
            names.push(d.name.clone());
            let dom = match (&d.source, &d.fingerprint) {
                (None, _) => match d.kind.builtin() {
                    Some(b) => Domain::Builtin(Source::new(b)),
                    None => bail!("domain {}: a {} source without its files", d.name, d.kind),
                },
                (Some(src), Some(fp)) => {
                    let m = prepare::open_manifest(cache, fp).with_context(|| format!("domain {}", d.name))?;
                    Domain::Files(stream::Stream::open(&d.name, &m, src, cfg.seq_len + 1)?)
                }
                (Some(_), None) => bail!("domain {}: its data was not prepared (no fingerprint)", d.name),
            };
            sources.push(dom);
            weights.push(cfg.mix.get(&d.name).copied().unwrap_or(0.0));
        }
        if weights.iter().sum::<f64>() <= 0.0 {
            bail!("mixture weights are all zero");
        }
        Ok(Mixture { names, sources, weights, seed: cfg.seed, seq_len: cfg.seq_len })
    }

    /// UTF-8 bytes per token of domain `d` (1 for the byte-level built-ins), when known.
    pub fn bytes_per_token(&self, d: usize) -> Option<f64> {
        match &self.sources[d] {
            Domain::Builtin(_) => Some(1.0),
            Domain::Files(s) => s.bytes_per_token,
        }
    }

    /// Training tokens drawn from each domain over steps [0, steps) of `batch` rows: the
    /// realised mixture, which differs from the weights by sampling noise.
    pub fn realised_tokens(&self, steps: u64, batch: usize) -> Vec<u64> {
        let mut counts = vec![0u64; self.sources.len()];
        for step in 0..steps {
            for row in 0..batch {
                counts[self.row_rng(step, row).weighted(&self.weights)] += self.seq_len as u64;
            }
        }
        counts
    }

    fn row_rng(&self, step: u64, row: usize) -> Rng {
        Rng::keyed(&[self.seed, 0x7472_6169_6e, step, row as u64])
    }

    pub fn domain_names(&self) -> &[String] {
        &self.names
    }

    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// Tokens of training step `step`: `batch` rows of seq_len+1 ids (inputs and shifted
    /// targets), row-major, plus the number of rows drawn from each domain.
    pub fn train_batch(&self, step: u64, batch: usize) -> (Vec<i64>, Vec<u64>) {
        let mut ids = Vec::with_capacity(batch * (self.seq_len + 1));
        let mut counts = vec![0u64; self.sources.len()];
        let mut buf = Vec::with_capacity(self.seq_len + 1);
        for row in 0..batch {
            let mut rng = self.row_rng(step, row);
            let d = rng.weighted(&self.weights);
            counts[d] += 1;
            let domain_key = rng::hash_str(&self.names[d]);
            let mut gen = Rng::keyed(&[rng.next_u64(), domain_key]);
            match &self.sources[d] {
                Domain::Builtin(src) => {
                    buf.clear();
                    src.generate(&mut gen, self.seq_len + 1, &mut buf);
                    ids.extend(buf.iter().map(|&b| b as i64));
                }
                Domain::Files(s) => s.train_window(&mut gen, &mut ids),
            }
        }
        (ids, counts)
    }

    /// The fixed validation windows of domain `d`: ceil(eval_tokens / seq_len) rows of
    /// seq_len+1 ids. Keyed by the domain's name and kind only (not the sweep seed), so every
    /// run of every sweep is scored on the same held-out text.
    pub fn val_windows(&self, d: usize, eval_tokens: u64) -> Vec<i64> {
        let rows = (eval_tokens as usize).div_ceil(self.seq_len).max(1);
        let src = match &self.sources[d] {
            Domain::Builtin(src) => src,
            Domain::Files(s) => return s.val_windows(rows, self.seq_len + 1),
        };
        let key = rng::hash_str(&self.names[d]);
        let mut ids = Vec::with_capacity(rows * (self.seq_len + 1));
        let mut buf = Vec::with_capacity(self.seq_len + 1);
        for row in 0..rows {
            let mut gen = Rng::keyed(&[0x76_616c, key, row as u64]);
            buf.clear();
            src.generate(&mut gen, self.seq_len + 1, &mut buf);
            ids.extend(buf.iter().map(|&b| b as i64));
        }
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generators_are_deterministic_and_in_range() {
        for kind in [Builtin::Markov, Builtin::Pcfg] {
            let s = Source::new(kind);
            let (mut a, mut b) = (Vec::new(), Vec::new());
            s.generate(&mut Rng::new(3), 500, &mut a);
            s.generate(&mut Rng::new(3), 500, &mut b);
            assert_eq!(a, b);
            assert_eq!(a.len(), 500);
            assert!(a.iter().all(|&c| (32..=208).contains(&c)), "{kind:?}");
        }
    }

    #[test]
    fn entropy_floors_are_sane() {
        let m = entropy_floor(Builtin::Markov);
        let p = entropy_floor(Builtin::Pcfg);
        // Rows mix a Zipf unigram over 160 symbols with a sparse 16-way table: well below
        // ln 160 = 5.08 nats, above ln 16 = 2.77 minus what the sparse weights save.
        assert!(m > 1.5 && m < 4.0, "markov floor {m}");
        assert!(p > 0.1 && p < 2.0, "pcfg floor {p}");
    }
}
