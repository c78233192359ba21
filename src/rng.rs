//! The crate's one random number generator (SplitMix64), a leaf anyone may use. No `rand`:
//! its streams are stable across platforms and releases, which keeps every seeded result
//! reproducible. The data pipeline derives one generator per (seed, step, sequence) from a
//! hash, so any batch can be regenerated from its coordinates (that is what makes resume
//! exact without saving a data cursor); the fits draw bootstrap resamples and synthetic noise
//! from per-item streams (`for_index`).
//!
//! Two draws exist in two variants (`below`/`below_mulshift`, the Gaussian inside `gamma`/
//! `normal`) because seeded data streams and seeded fits are pinned to the variant each used
//! when they were two copies; changing either would change run ids' data or fit results.

/// SplitMix64 (Steele, Lea & Flood 2014): fast, good enough for sampling, and trivially
/// reproducible across platforms.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// The data pipeline's seeding: the seed is whitened first.
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    /// A generator whose state is exactly `state` (the fits' seeding).
    pub fn from_state(state: u64) -> Self {
        Rng(state)
    }

    /// A generator keyed by several coordinates (e.g. seed, step, row).
    pub fn keyed(parts: &[u64]) -> Self {
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for &p in parts {
            h = mix(h ^ p);
        }
        Rng::new(h)
    }

    /// An independent stream for item `index` of a seeded job, so results do
    /// not depend on which thread handles which item. The start state is a
    /// hash of (seed, index): SplitMix64 states that differ by a multiple of
    /// its increment are the same stream shifted, so `seed + index` would
    /// make neighbouring items' draws overlap.
    pub fn for_index(seed: u64, index: u64) -> Self {
        let h = mix(mix(seed ^ 0x5851_f42d_4c95_7f2d) ^ mix(index.wrapping_add(1)));
        Rng::from_state(h)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in [0, n) from a scaled float (the data generators' draw).
    pub fn below(&mut self, n: usize) -> usize {
        (self.uniform() * n as f64) as usize % n.max(1)
    }

    /// Uniform index in 0..n by multiply-shift (the fits' draw; bias is below 2^-32 for the
    /// sizes used here).
    pub fn below_mulshift(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }
    /// Index drawn from unnormalised non-negative weights.
    pub fn weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut u = self.uniform() * total;
        for (i, &w) in weights.iter().enumerate() {
            if u < w {
                return i;
            }
            u -= w;
        }
        weights.iter().rposition(|&w| w > 0.0).unwrap_or(0)
    }

    /// Gamma(shape, 1) by Marsaglia–Tsang (with the shape < 1 boost), for Dirichlet draws.
    pub fn gamma(&mut self, shape: f64) -> f64 {
        if shape < 1.0 {
            let u = self.uniform().max(1e-300);
            return self.gamma(shape + 1.0) * u.powf(1.0 / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal_clamped();
            let v = (1.0 + c * x).powi(3);
            if v <= 0.0 {
                continue;
            }
            let u = self.uniform().max(1e-300);
            if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }

    /// Standard normal (Box–Muller, u1 clamped away from 0), used by `gamma`.
    fn normal_clamped(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// Standard normal (Box-Muller on 1 - u; one of the pair is discarded for simplicity).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// SplitMix64's output function: a bijective 64-bit mixer.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Stable 64-bit hash of a string (FNV-1a), for deriving per-domain seeds from names.
pub fn hash_str(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: Vec<u64> = (0..4).map(|_| Rng::for_index(7, 3).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        // Neighbouring streams must not be shifted copies of each other.
        let mut s3 = Rng::for_index(7, 3);
        let first4 = Rng::for_index(7, 4).next_u64();
        assert!((0..1000).all(|_| s3.next_u64() != first4));
    }

    #[test]
    fn moments_are_sane() {
        let mut r = Rng::from_state(1);
        let n = 100_000;
        let xs: Vec<f64> = (0..n).map(|_| r.normal()).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.02 && (var - 1.0).abs() < 0.02, "{mean} {var}");
        let mut hits = [0usize; 5];
        for _ in 0..50_000 {
            hits[r.below_mulshift(5)] += 1;
        }
        assert!(hits.iter().all(|&h| (h as f64 - 10_000.0).abs() < 400.0), "{hits:?}");
    }
}
