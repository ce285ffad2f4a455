//! Running mean and variance of a stream of values.
//!
//! Welford's update, for the `n`-th value `x`:
//!
//! ```text
//! δ = x − mean,   mean ← mean + δ / n,   M2 ← M2 + δ (x − mean_new)
//! ```
//!
//! and Chan, Golub & LeVeque's merge of two summaries `a`, `b` (`n = n_a + n_b`,
//! `δ = mean_b − mean_a`):
//!
//! ```text
//! mean = mean_a + δ n_b / n,   M2 = M2_a + M2_b + δ² n_a n_b / n
//! ```
//!
//! so that `variance = M2 / (n − 1)` (unbiased) and `std_err = sqrt(variance / n)`.
//! Both updates avoid the cancellation of the textbook `Σx² − n mean²` formula, which matters
//! here because per-path weak-error differences are small numbers on top of large means.
//!
//! The merge is a pure function of `(self, other)` in that order, so reducing per-block
//! summaries in block order gives bit-identical results at any thread count.

use serde::{Deserialize, Serialize};

/// Count, mean and sum of squared deviations `M2 = Σ (x_i − mean)²` of a stream of values.
///
/// ```
/// use samsde::stats::Moments;
/// let mut m = Moments::default();
/// for x in [1.0, 2.0, 3.0, 4.0] {
///     m.push(x);
/// }
/// assert_eq!(m.mean, 2.5);
/// assert!((m.variance() - 5.0 / 3.0).abs() < 1e-15);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Moments {
    /// Number of values pushed.
    pub n: u64,
    /// Running mean (0 when `n = 0`; not an estimate of anything then).
    pub mean: f64,
    /// Sum of squared deviations from the running mean.
    pub m2: f64,
}

impl Moments {
    /// Summary of a slice of values, pushed in order.
    pub fn from_slice(xs: &[f64]) -> Self {
        let mut m = Moments::default();
        for &x in xs {
            m.push(x);
        }
        m
    }

    /// Add one value (Welford's update).
    #[inline]
    pub fn push(&mut self, x: f64) {
        self.n += 1;
        let delta = x - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (x - self.mean);
    }

    /// Merge another summary into this one (Chan et al.'s pairwise formula).
    ///
    /// Deterministic: the result depends only on `(self, other)` in that order. Merging an
    /// empty summary on either side returns the other one unchanged (bit for bit).
    pub fn merge(&mut self, other: &Moments) {
        if other.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = *other;
            return;
        }
        let na = self.n as f64;
        let nb = other.n as f64;
        let n = self.n + other.n;
        let nf = n as f64;
        let delta = other.mean - self.mean;
        self.mean += delta * (nb / nf);
        self.m2 += other.m2 + delta * delta * (na * nb / nf);
        self.n = n;
    }

    /// Unbiased sample variance `M2 / (n − 1)`; `NaN` if `n < 2`.
    pub fn variance(&self) -> f64 {
        if self.n < 2 {
            f64::NAN
        } else {
            // M2 ≥ 0 in exact arithmetic and both updates add non-negative terms; the clamp
            // only guards hand-built summaries.
            self.m2.max(0.0) / (self.n - 1) as f64
        }
    }

    /// Sample standard deviation `sqrt(variance)`; `NaN` if `n < 2`.
    pub fn std_dev(&self) -> f64 {
        self.variance().sqrt()
    }

    /// Standard error of the mean `sqrt(variance / n)`; `NaN` if `n < 2`.
    pub fn std_err(&self) -> f64 {
        (self.variance() / self.n as f64).sqrt()
    }
}

impl Extend<f64> for Moments {
    fn extend<I: IntoIterator<Item = f64>>(&mut self, iter: I) {
        for x in iter {
            self.push(x);
        }
    }
}

impl FromIterator<f64> for Moments {
    fn from_iter<I: IntoIterator<Item = f64>>(iter: I) -> Self {
        let mut m = Moments::default();
        m.extend(iter);
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use rand_distr::StandardNormal;

    /// Relative closeness; `scale` keeps the comparison meaningful near zero.
    fn close(a: f64, b: f64, rel: f64, scale: f64) -> bool {
        (a - b).abs() <= rel * a.abs().max(b.abs()).max(scale)
    }

    #[test]
    fn known_values() {
        let m = Moments::from_slice(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        assert_eq!(m.n, 8);
        assert_eq!(m.mean, 5.0);
        // Σ(x − 5)² = 32, so variance = 32/7; exact in binary up to one rounding.
        assert!((m.m2 - 32.0).abs() < 1e-12);
        assert!((m.variance() - 32.0 / 7.0).abs() < 1e-12);
        assert!((m.std_err() - (32.0 / 7.0 / 8.0_f64).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn degenerate_counts_give_nan() {
        let empty = Moments::default();
        assert!(empty.variance().is_nan() && empty.std_err().is_nan());
        let one = Moments::from_slice(&[3.0]);
        assert_eq!(one.mean, 3.0);
        assert!(one.variance().is_nan() && one.std_dev().is_nan() && one.std_err().is_nan());
        let two = Moments::from_slice(&[1.0, 1.0]);
        assert_eq!(two.variance(), 0.0);
    }

    /// Merging blocks at random split points equals pushing sequentially. The tolerance 1e-12
    /// (relative) is a few hundred ulps: both orders round differently at each step, and the
    /// data (mean 10, sd 1, up to 2000 values) keep the condition number near 100.
    #[test]
    fn merge_equals_sequential_push_for_random_splits() {
        let mut rng = ChaCha8Rng::seed_from_u64(20240611);
        for trial in 0..200 {
            let len: usize = rng.random_range(0..2000);
            let data: Vec<f64> = (0..len)
                .map(|_| 10.0 + rng.sample::<f64, _>(StandardNormal))
                .collect();
            let seq = Moments::from_slice(&data);

            let blocks: usize = rng.random_range(1..12);
            let mut cuts: Vec<usize> = (0..blocks - 1).map(|_| rng.random_range(0..=len)).collect();
            cuts.push(0);
            cuts.push(len);
            cuts.sort_unstable();
            let mut merged = Moments::default();
            for w in cuts.windows(2) {
                merged.merge(&Moments::from_slice(&data[w[0]..w[1]]));
            }
            assert_eq!(merged.n, seq.n, "trial {trial}");
            assert!(
                close(merged.mean, seq.mean, 1e-12, 1.0),
                "trial {trial}: mean {} vs {}",
                merged.mean,
                seq.mean
            );
            assert!(
                close(merged.m2, seq.m2, 1e-12, 1e-12),
                "trial {trial}: m2 {} vs {}",
                merged.m2,
                seq.m2
            );
        }
    }

    #[test]
    fn merge_with_empty_is_identity_and_order_is_deterministic() {
        let a = Moments::from_slice(&[1.0, 2.5, -3.0]);
        let mut x = a;
        x.merge(&Moments::default());
        assert_eq!(x, a);
        let mut y = Moments::default();
        y.merge(&a);
        assert_eq!(y, a);

        let b = Moments::from_slice(&[0.1, 0.7, 0.2, 9.0]);
        let mut ab1 = a;
        ab1.merge(&b);
        let mut ab2 = a;
        ab2.merge(&b);
        assert_eq!(ab1, ab2, "same inputs, same order, same bits");
        let mut ba = b;
        ba.merge(&a);
        // Commutative up to rounding (not necessarily bitwise): same count, close moments.
        assert_eq!(ab1.n, ba.n);
        assert!(close(ab1.mean, ba.mean, 1e-14, 1.0));
        assert!(close(ab1.m2, ba.m2, 1e-14, 1.0));
    }

    #[test]
    fn welford_is_stable_on_large_offset() {
        // The naive Σx² − n·mean² loses every digit here; Welford keeps the variance of 1e-2
        // to ~1e-6 relative (values near 1e8 carry ~1e-8 absolute rounding each).
        let data: Vec<f64> = (0..1000)
            .map(|i| 1e8 + 0.1 * ((i % 2) as f64 * 2.0 - 1.0))
            .collect();
        let m = Moments::from_slice(&data);
        let expected = 0.01 * 1000.0 / 999.0;
        assert!(
            (m.variance() - expected).abs() < 1e-6 * expected,
            "{}",
            m.variance()
        );
    }

    #[test]
    fn serde_round_trip() {
        let m = Moments::from_slice(&[1.0, 2.0, 4.0]);
        let s = serde_json::to_string(&m).unwrap();
        let back: Moments = serde_json::from_str(&s).unwrap();
        assert_eq!(back, m);
    }
}
