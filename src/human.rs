//! How numbers are written for people (the report, the verdict's reasons, the terminal): never
//! more than about six significant digits, and a value past any physical meaning (a loss bound
//! of 1e203 nats, an interval a million times wide) reads "unbounded" instead of a 200-digit
//! string that pushes a report page sideways. A leaf: it imports nothing of the crate, so the
//! maths in fit/ and the writers in report/ can share it.

/// A loss (nats per token) or a loss bound above this is no number a language model can mean:
/// ln of a one-million-token vocabulary is 13.8.
pub const LOSS_MEANINGLESS: f64 = 1e3;

/// A spread (hi / lo) or a factor above this reads "unbounded".
pub const RATIO_MEANINGLESS: f64 = 1e6;

/// A loss with four decimals; non-finite or past [`LOSS_MEANINGLESS`]: "unbounded" (negative
/// ones keep their sign, so a nonsensical prediction is still visible as one).
pub fn loss(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if !x.is_finite() || x.abs() > LOSS_MEANINGLESS {
        if x < 0.0 {
            "-unbounded".into()
        } else {
            "unbounded".into()
        }
    } else {
        format!("{x:.4}")
    }
}

/// A loss interval `[lo, hi]`, each end by [`loss`].
pub fn loss_interval(lo: f64, hi: f64) -> String {
    format!("[{}, {}]", loss(lo), loss(hi))
}

/// Three significant digits with an SI suffix (k, M, G, T, P, E); scientific with four
/// significant digits past 1e21 or below 1e-3; "unbounded" when not finite.
pub fn si(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if !x.is_finite() {
        return "unbounded".into();
    }
    let a = x.abs();
    if a >= 1e21 {
        return format!("{x:.3e}");
    }
    for (m, s) in [(1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")] {
        if a >= m {
            return format!("{:.3}{s}", x / m);
        }
    }
    if a >= 1e-3 || a == 0.0 {
        format!("{x:.3}")
    } else {
        format!("{x:.3e}")
    }
}

/// A factor or spread as "12x"; past [`RATIO_MEANINGLESS`] (or infinite): "unboundedly".
pub fn ratio(x: f64) -> String {
    if x.is_finite() && x.abs() <= RATIO_MEANINGLESS {
        format!("{x:.0}x")
    } else {
        "unboundedly".into()
    }
}

/// A share as a percentage with `decimals` decimals; past a million percent: "unboundedly
/// many %" is no reading, so it says "over 1e6%".
pub fn percent(share: f64, decimals: usize) -> String {
    let p = 100.0 * share;
    if p.is_finite() && p.abs() <= 1e6 {
        format!("{p:.decimals$}%")
    } else if p.is_nan() {
        "NaN%".into()
    } else {
        "over 1e6%".into()
    }
}

/// General compact format: up to five significant digits between 1e-3 and 1e5, scientific
/// with four outside; non-finite as "unbounded" / "NaN".
pub fn g(x: f64) -> String {
    if x == 0.0 {
        return "0".into();
    }
    if x.is_nan() {
        return "NaN".into();
    }
    if !x.is_finite() {
        return if x > 0.0 { "unbounded".into() } else { "-unbounded".into() };
    }
    let a = x.abs();
    if (1e-3..1e5).contains(&a) {
        format!("{:.4}", x).trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{x:.3e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The real-text headline once printed 2.05e203 in full (204 digits) and a 227407...%
    /// width: every writer here stays within about 12 characters whatever the value.
    #[test]
    fn no_number_is_longer_than_twelve_characters() {
        let values = [0.0, 1e-300, 3.2670, 2.05e203, 6.37e11, -3.0, 1e18, 5e20, 1e21, f64::INFINITY, f64::NAN, -1e300];
        for &x in &values {
            for s in [loss(x), si(x), ratio(x), percent(x, 1), g(x)] {
                assert!(s.chars().count() <= 12, "{x}: `{s}` is {} characters", s.chars().count());
            }
        }
        assert_eq!(loss(2.05e203), "unbounded");
        assert_eq!(loss(3.26704), "3.2670");
        assert_eq!(loss_interval(3.2113, 637019326968.8829), "[3.2113, unbounded]");
        assert_eq!(si(415_280.0), "415.280k");
        assert_eq!(ratio(2274e100), "unboundedly");
        assert_eq!(ratio(10.2), "10x");
        assert_eq!(percent(0.199, 1), "19.9%");
        assert_eq!(g(1.3132), "1.3132");
    }
}
