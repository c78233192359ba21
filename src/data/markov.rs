//! Built-in domain "builtin:markov": an order-1 Markov source over 160 byte values (48..208) whose
//! rows mix a Zipf(1) unigram with a sparse 16-way table (Dirichlet(0.5) weights):
//!   p(x | b) = 0.2 · U(x) + 0.8 · P(x | b).
//! Predicting it needs no attention (the context is the current token), so learning is not
//! gated by the attention plateau; what limits a model is capacity (the 160x160 log-probability
//! table has high rank, and a width-d model's logits have rank <= d) and data (rows are visited
//! with heavy-tailed frequencies, so rare rows are learned last). Both give the smooth,
//! power-law-like curves that scaling laws describe. (Sparse order-2 tables were tried first:
//! small models sit on a plateau until they learn to attend, then drop suddenly; no law fits
//! that.) The tables are fixed by a constant seed, so the entropy rate is a known floor.

use crate::rng::Rng;

const ALPHABET: usize = 160;
const LANGUAGE_SEED: u64 = 0x6d61_726b_6f76_33; // "markov3"
const W_UNI: f64 = 0.2;
const BRANCH: usize = 16;

pub struct Markov {
    /// Cumulative and log probabilities of the next-symbol distribution per current symbol.
    cum: Vec<[f64; ALPHABET]>,
    logp: Vec<[f64; ALPHABET]>,
}

/// A sparse distribution over the alphabet: `k` distinct symbols with Dirichlet(0.5) weights.
fn sparse(rng: &mut Rng, k: usize) -> [f64; ALPHABET] {
    let mut p = [0.0; ALPHABET];
    let mut chosen = 0;
    while chosen < k {
        let s = rng.below(ALPHABET);
        if p[s] == 0.0 {
            p[s] = rng.gamma(0.5).max(1e-9);
            chosen += 1;
        }
    }
    let total: f64 = p.iter().sum();
    p.iter_mut().for_each(|x| *x /= total);
    p
}

impl Markov {
    pub fn new() -> Self {
        let mut rng = Rng::new(LANGUAGE_SEED);
        // Zipf(1) unigram over a random permutation of the symbols.
        let mut order: Vec<usize> = (0..ALPHABET).collect();
        for i in (1..ALPHABET).rev() {
            order.swap(i, rng.below(i + 1));
        }
        let h: f64 = (1..=ALPHABET).map(|r| 1.0 / r as f64).sum();
        let mut uni = [0.0; ALPHABET];
        for (rank, &s) in order.iter().enumerate() {
            uni[s] = 1.0 / ((rank + 1) as f64 * h);
        }
        let mut cum = Vec::with_capacity(ALPHABET);
        let mut logp = Vec::with_capacity(ALPHABET);
        for _b in 0..ALPHABET {
            let row = sparse(&mut rng, BRANCH);
            let (mut c, mut l, mut acc) = ([0.0; ALPHABET], [0.0; ALPHABET], 0.0);
            for x in 0..ALPHABET {
                let p = W_UNI * uni[x] + (1.0 - W_UNI) * row[x];
                acc += p;
                c[x] = acc;
                l[x] = p.ln();
            }
            cum.push(c);
            logp.push(l);
        }
        Markov { cum, logp }
    }

    /// Appends `len` bytes to `out` from a random start; returns the summed -log p of the
    /// emitted symbols (after a short burn-in from a random start) (used to measure the entropy floor).
    pub fn generate(&self, rng: &mut Rng, len: usize, out: &mut Vec<u8>) -> (f64, usize) {
        let mut b = rng.below(ALPHABET);
        // Burn in so windows start from the stationary distribution, not a uniform context.
        for _ in 0..8 {
            b = self.next(rng, b).0;
        }
        let (mut nll, mut counted) = (0.0, 0);
        for _ in 0..len {
            let (s, lp) = self.next(rng, b);
            nll -= lp;
            counted += 1;
            b = s;
            out.push(b'0' + s as u8);
        }
        (nll, counted)
    }

    fn next(&self, rng: &mut Rng, ctx: usize) -> (usize, f64) {
        let u = rng.uniform() * self.cum[ctx][ALPHABET - 1];
        let s = self.cum[ctx].iter().position(|&c| u < c).unwrap_or(ALPHABET - 1);
        (s, self.logp[ctx][s])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The source is what its docs say: order 1 (the empirical order-1 conditional entropy
    /// equals the sampled -log p, and order 2 adds nothing beyond estimation bias), far from
    /// order 0, and the floor the fit compares E against (`data::entropy_floor`) is the
    /// entropy rate actually sampled.
    #[test]
    fn entropy_rate_is_order_one_and_matches_the_published_floor() {
        let m = Markov::new();
        let mut rng = Rng::new(5);
        let mut out = Vec::new();
        let (nll, n) = m.generate(&mut rng, 2_000_000, &mut out);
        let s: Vec<usize> = out.iter().map(|&c| (c - b'0') as usize).collect();
        let h = |k: usize| {
            let mut counts = std::collections::HashMap::<Vec<usize>, [f64; ALPHABET]>::new();
            for w in s.windows(k + 1) {
                counts.entry(w[..k].to_vec()).or_insert([0.0; ALPHABET])[w[k]] += 1.0;
            }
            let total = (s.len() - k) as f64;
            let mut hh = 0.0;
            for row in counts.values() {
                let r: f64 = row.iter().sum();
                for &c in row.iter().filter(|&&c| c > 0.0) {
                    hh -= c / total * (c / r).ln();
                }
            }
            hh
        };
        let (floor, h0, h1, h2) = (nll / n as f64, h(0), h(1), h(2));
        eprintln!("floor {floor:.4} H0 {h0:.4} H1 {h1:.4} H2 {h2:.4}");
        // Plug-in entropy estimates are biased low by about (cells - 1) / (2 n): ~0.006 nats
        // for order 1 here. If the source depended on more than the current symbol, the
        // order-1 estimate would sit above the sampled -log p. (Order 2 has 160^3 cells for
        // 2M samples: its estimate is dominated by that bias, so it is only printed.)
        assert!((h1 - floor).abs() < 0.02, "order-1 entropy {h1} vs sampled -log p {floor}");
        assert!(h2 <= h1 + 1e-9, "conditioning on more cannot raise the entropy: H1 {h1}, H2 {h2}");
        assert!(h0 - h1 > 0.3, "the context must matter: H0 {h0}, H1 {h1}");
        let published = crate::data::entropy_floor(crate::spec::config::Builtin::Markov);
        assert!((published - floor).abs() < 0.01, "data::entropy_floor {published} vs sampled {floor}");
    }
}
