//! Branch-free `exp` (for non-positive arguments) and `ln` written only with
//! arithmetic, comparisons and bit casts, so that the objective's per-point
//! loop auto-vectorises (libm calls are opaque to the vectoriser and were
//! ~90% of the fit's run time). Both are accurate to a few ulp on the ranges
//! the objective uses; tests compare them with `std`.

const LOG2E: f64 = std::f64::consts::LOG2_E;
/// ln 2 split so that k * LN2_HI is exact for |k| < 2^11 (fdlibm's values).
const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
/// 1.5 * 2^52: adding it rounds to an integer held in the low mantissa bits,
/// which stands in for float<->int conversions that AVX2 lacks for 64-bit.
const MAGIC: f64 = 6_755_399_441_055_744.0;

/// e^x for x in [-708, 709] (clamped outside, where callers treat the
/// result as overflow/zero anyway). Range reduction x = k ln2 + r with
/// |r| <= ln2/2, then a degree-13 Taylor polynomial (truncation < 5e-18)
/// evaluated by Estrin's scheme: a depth-4 tree instead of a 13-step Horner
/// chain, which is what bounds throughput here.
#[inline(always)]
pub fn exp_fast(x: f64) -> f64 {
    let x = if x > -708.0 { x } else { -708.0 };
    let x = if x < 709.0 { x } else { 709.0 };
    let kd = x * LOG2E + MAGIC;
    let kf = kd - MAGIC;
    let k = (kd.to_bits() as i64).wrapping_sub(MAGIC.to_bits() as i64);
    let r = (x - kf * LN2_HI) - kf * LN2_LO;
    let r2 = r * r;
    let r4 = r2 * r2;
    let r8 = r4 * r4;
    let p01 = 1.0 + r;
    let p23 = 0.5 + r * (1.0 / 6.0);
    let p45 = 1.0 / 24.0 + r * (1.0 / 120.0);
    let p67 = 1.0 / 720.0 + r * (1.0 / 5_040.0);
    let p89 = 1.0 / 40_320.0 + r * (1.0 / 362_880.0);
    let pab = 1.0 / 3_628_800.0 + r * (1.0 / 39_916_800.0);
    let pcd = 1.0 / 479_001_600.0 + r * (1.0 / 6_227_020_800.0);
    let lo = (p01 + r2 * p23) + r4 * (p45 + r2 * p67);
    let hi = (p89 + r2 * pab) + r4 * pcd;
    let p = lo + r8 * hi;
    let scale = f64::from_bits(((k + 1023) as u64) << 52);
    p * scale
}

/// ln(s) for positive normal s. s = 2^e m with m in [sqrt(1/2), sqrt(2)),
/// ln m = 2 atanh(f), f = (m-1)/(m+1), |f| < 0.172, series to f^21 in
/// Estrin form.
#[inline(always)]
pub fn ln_pos(s: f64) -> f64 {
    let bits = s.to_bits();
    let m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    // Biased exponent as a float via the same MAGIC trick.
    let ef = f64::from_bits((bits >> 52) + MAGIC.to_bits()) - (MAGIC + 1023.0);
    let big = m > std::f64::consts::SQRT_2;
    let m = if big { 0.5 * m } else { m };
    let ef = if big { ef + 1.0 } else { ef };
    let f = (m - 1.0) / (m + 1.0);
    let z = f * f;
    let z2 = z * z;
    let z4 = z2 * z2;
    let z8 = z4 * z4;
    let q01 = 1.0 + z * (1.0 / 3.0);
    let q23 = 1.0 / 5.0 + z * (1.0 / 7.0);
    let q45 = 1.0 / 9.0 + z * (1.0 / 11.0);
    let q67 = 1.0 / 13.0 + z * (1.0 / 15.0);
    let q89 = 1.0 / 17.0 + z * (1.0 / 19.0);
    let q10 = 1.0 / 21.0;
    let q = ((q01 + z2 * q23) + z4 * (q45 + z2 * q67)) + z8 * (q89 + z2 * q10);
    ef * LN2_HI + (ef * LN2_LO + 2.0 * f * q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_std() {
        let mut worst = 0.0f64;
        for i in -200_000..=200_000 {
            let x = 700.0 * (i as f64 / 200_000.0).powi(3);
            let rel = (exp_fast(x) / x.exp() - 1.0).abs();
            worst = worst.max(rel);
        }
        assert!(worst < 1e-15, "worst rel err {worst:e}");
        assert_eq!(exp_fast(0.0), 1.0);
        assert!(exp_fast(-1e6) < 1e-300);
        assert!(exp_fast(1e6) > 1e307);
    }

    #[test]
    fn ln_matches_std() {
        let mut worst = 0.0f64;
        for i in 1..=200_000 {
            let s = 1.0 + 3.0 * i as f64 / 200_000.0;
            worst = worst.max((ln_pos(s) - s.ln()).abs() / s.ln().abs().max(1e-300));
            let t = 1e-5 + i as f64 * 0.37;
            worst = worst.max((ln_pos(t) - t.ln()).abs() / t.ln().abs().max(1e-3));
        }
        assert!(worst < 1e-15, "worst rel err {worst:e}");
        assert_eq!(ln_pos(1.0), 0.0);
    }
}
