//! A small seeded random number generator (SplitMix64) for the bootstrap and
//! the synthetic tests. The crate has no `rand`; this is enough for
//! resampling indices and Gaussian noise, and its streams are stable across
//! platforms and releases, which keeps seeded fits reproducible.

/// SplitMix64 (Steele, Lea & Flood 2014).
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// An independent stream for item `index` of a seeded job, so results do
    /// not depend on which thread handles which item. The start state is a
    /// hash of (seed, index): SplitMix64 states that differ by a multiple of
    /// its increment are the same stream shifted, so `seed + index` would
    /// make neighbouring items' draws overlap.
    pub fn for_index(seed: u64, index: u64) -> Self {
        let h = mix64(mix64(seed ^ 0x5851_f42d_4c95_7f2d) ^ mix64(index.wrapping_add(1)));
        SplitMix64::new(h)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix64(self.state)
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform index in 0..n (multiply-shift; bias is below 2^-32 for the
    /// sizes used here).
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }

    /// Standard normal (Box-Muller; one of the pair is discarded for
    /// simplicity).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.next_f64();
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// SplitMix64's output function: a bijective 64-bit mixer.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: Vec<u64> = (0..4).map(|_| SplitMix64::for_index(7, 3).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        // Neighbouring streams must not be shifted copies of each other.
        let mut s3 = SplitMix64::for_index(7, 3);
        let first4 = SplitMix64::for_index(7, 4).next_u64();
        assert!((0..1000).all(|_| s3.next_u64() != first4));
    }

    #[test]
    fn moments_are_sane() {
        let mut r = SplitMix64::new(1);
        let n = 100_000;
        let xs: Vec<f64> = (0..n).map(|_| r.normal()).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.02 && (var - 1.0).abs() < 0.02, "{mean} {var}");
        let mut hits = [0usize; 5];
        for _ in 0..50_000 {
            hits[r.below(5)] += 1;
        }
        assert!(hits.iter().all(|&h| (h as f64 - 10_000.0).abs() < 400.0), "{hits:?}");
    }
}
