//! Built-in domain "builtin:markov": a sparse order-2 Markov source over 64 printable bytes.
//! Each of the 4,096 two-symbol contexts allows 8 next symbols with Dirichlet(0.5) weights.
//! The table is fixed by a constant seed (the "language" never changes between sweeps), so
//! its entropy rate is a known floor for the loss; a model must memorise ~4k contexts, which
//! gives small models a long, smooth scaling curve.

use super::rng::Rng;

const ALPHABET: usize = 64;
const BRANCH: usize = 8;
const LANGUAGE_SEED: u64 = 0x6d61_726b_6f76; // "markov"

pub struct Markov {
    /// next[ctx] = (symbols, cumulative probabilities, log probabilities), ctx = a*64+b.
    next: Vec<([u8; BRANCH], [f64; BRANCH], [f64; BRANCH])>,
}

impl Markov {
    pub fn new() -> Self {
        let mut rng = Rng::new(LANGUAGE_SEED);
        let next = (0..ALPHABET * ALPHABET)
            .map(|_| {
                let mut syms = [0u8; BRANCH];
                let mut k = 0;
                while k < BRANCH {
                    let s = rng.below(ALPHABET) as u8;
                    if !syms[..k].contains(&s) {
                        syms[k] = s;
                        k += 1;
                    }
                }
                let g: Vec<f64> = (0..BRANCH).map(|_| rng.gamma(0.5).max(1e-12)).collect();
                let total: f64 = g.iter().sum();
                let mut cum = [0.0; BRANCH];
                let mut logp = [0.0; BRANCH];
                let mut acc = 0.0;
                for i in 0..BRANCH {
                    acc += g[i] / total;
                    cum[i] = acc;
                    logp[i] = (g[i] / total).ln();
                }
                (syms, cum, logp)
            })
            .collect();
        Markov { next }
    }

    /// Appends `len` bytes to `out` from a random start; returns the summed -log p of the
    /// emitted symbols after the two free start symbols (used to measure the entropy floor).
    pub fn generate(&self, rng: &mut Rng, len: usize, out: &mut Vec<u8>) -> (f64, usize) {
        let (mut a, mut b) = (rng.below(ALPHABET), rng.below(ALPHABET));
        let (mut nll, mut counted) = (0.0, 0);
        for i in 0..len {
            let sym = if i < 2 {
                [a, b][i]
            } else {
                let (syms, cum, logp) = &self.next[a * ALPHABET + b];
                let u = rng.uniform();
                let j = cum.iter().position(|&c| u < c).unwrap_or(BRANCH - 1);
                nll -= logp[j];
                counted += 1;
                let s = syms[j] as usize;
                a = b;
                b = s;
                s
            };
            out.push(b' ' + sym as u8);
        }
        (nll, counted)
    }
}
