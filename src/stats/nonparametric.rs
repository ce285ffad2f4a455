//! Distribution-free statistics for a handful of independent cases (e.g. one number per data
//! seed), where a Student-t interval would lean on a normality nobody checked.
//!
//! * **Binomial tails**, exact: `P(X ≥ k)` and `P(X ≤ k)` for `X ~ Bin(n, p)`, summed term by
//!   term in log space (`ln C(n,i) + i ln p + (n−i) ln(1−p)`), so `n` in the thousands is fine.
//! * **Sign test** on paired differences `d_i`: zeros (ties) are dropped, `K = #{d_i > 0}` among
//!   the `n` non-zero ones is `Bin(n, ½)` under the null "positive and negative equally likely";
//!   the one-sided p-value for "mostly positive" is `P(Bin(n, ½) ≥ K)`.
//! * **Order-statistic interval for a median**: with sorted values `x_(1) ≤ … ≤ x_(n)`,
//!   `[x_(j), x_(n−j+1)]` covers the population median with probability
//!   `1 − 2 P(Bin(n, ½) ≤ j − 1)` for any continuous distribution; `j` is the largest index
//!   whose coverage is still `≥ level` (e.g. `n = 10`, 95 %: `j = 2`, coverage 97.9 %). Too few
//!   values to reach the level give infinite ends.
//! * **Clopper–Pearson** interval for a binomial proportion (the exact interval that inverts the
//!   binomial test): `[B⁻¹(α/2; k, n−k+1), B⁻¹(1−α/2; k+1, n−k)]` with Beta quantiles.
//! * **Wilcoxon signed-rank** on paired differences: zeros dropped, `|d_i|` ranked with mid-ranks
//!   for ties, `W⁺ = Σ_{d_i>0} rank_i`. Its exact null distribution (each sign ± with
//!   probability ½, conditional on the ranks, ties included) is computed by dynamic programming
//!   on doubled ranks (integers even with mid-ranks) for `n ≤ 300`; above that the normal
//!   approximation with tie correction.

use serde::{Deserialize, Serialize};
use statrs::distribution::{Beta, ContinuousCDF};
use statrs::function::factorial::ln_binomial;

/// `P(X ≥ k)` for `X ~ Bin(n, p)`, exact (log-space summation of the terms).
pub fn binomial_upper_tail(k: u64, n: u64, p: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > n {
        return 0.0;
    }
    binomial_sum(k..=n, n, p)
}

/// `P(X ≤ k)` for `X ~ Bin(n, p)`, exact.
pub fn binomial_lower_tail(k: u64, n: u64, p: f64) -> f64 {
    if k >= n {
        return 1.0;
    }
    binomial_sum(0..=k, n, p)
}

fn binomial_sum(range: std::ops::RangeInclusive<u64>, n: u64, p: f64) -> f64 {
    if p <= 0.0 {
        return if *range.start() == 0 { 1.0 } else { 0.0 };
    }
    if p >= 1.0 {
        return if *range.end() == n { 1.0 } else { 0.0 };
    }
    let (lp, lq) = (p.ln(), (1.0 - p).ln());
    let terms: Vec<f64> = range
        .map(|i| ln_binomial(n, i) + i as f64 * lp + (n - i) as f64 * lq)
        .collect();
    let top = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let s: f64 = terms.iter().map(|t| (t - top).exp()).sum();
    (top + s.ln()).exp().min(1.0)
}

/// Result of a sign test on paired differences.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SignTest {
    /// Differences `> 0`.
    pub positive: usize,
    /// Differences `< 0`.
    pub negative: usize,
    /// Differences `= 0` (dropped from the test).
    pub ties: usize,
    /// `P(Bin(n, ½) ≥ positive)`, `n = positive + negative`: evidence for "mostly positive".
    pub p_positive: f64,
    /// `P(Bin(n, ½) ≥ negative)`: evidence for "mostly negative".
    pub p_negative: f64,
    /// Two-sided p-value `min(1, 2 min(p_positive, p_negative))`.
    pub p_two_sided: f64,
}

impl SignTest {
    /// Non-tied pairs `n`.
    pub fn n(&self) -> usize {
        self.positive + self.negative
    }
}

/// Sign test of paired differences (see module docs). `NaN` differences are not allowed (the
/// caller decides what an undefined pair means); they are counted as ties here, i.e. dropped.
pub fn sign_test(diffs: &[f64]) -> SignTest {
    let positive = diffs.iter().filter(|d| **d > 0.0).count();
    let negative = diffs.iter().filter(|d| **d < 0.0).count();
    let ties = diffs.len() - positive - negative;
    let n = (positive + negative) as u64;
    let p_positive = binomial_upper_tail(positive as u64, n, 0.5);
    let p_negative = binomial_upper_tail(negative as u64, n, 0.5);
    SignTest {
        positive,
        negative,
        ties,
        p_positive,
        p_negative,
        p_two_sided: (2.0 * p_positive.min(p_negative)).min(1.0),
    }
}

/// A sample median with its order-statistic confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MedianCi {
    /// Sample median (mean of the two middle values for even `n`; `NaN` for `n = 0`).
    pub median: f64,
    /// Lower end `x_(j)` (`−∞` when `n` is too small for the level).
    pub lo: f64,
    /// Upper end `x_(n−j+1)` (`+∞` when `n` is too small).
    pub hi: f64,
    /// Exact coverage `1 − 2 P(Bin(n, ½) ≤ j − 1)` of `[lo, hi]` (`1` for infinite ends).
    pub coverage: f64,
    /// Number of values.
    pub n: usize,
}

/// Median of `values` (any order; `NaN`s must have been removed) with its order-statistic
/// interval at confidence `level` (see module docs).
pub fn median_ci(values: &[f64], level: f64) -> MedianCi {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return MedianCi {
            median: f64::NAN,
            lo: f64::NEG_INFINITY,
            hi: f64::INFINITY,
            coverage: 1.0,
            n,
        };
    }
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    };
    // Largest j (1-based) with 1 − 2 P(B ≤ j − 1) ≥ level, B ~ Bin(n, ½).
    let alpha = 1.0 - level;
    let mut j = 0usize;
    while j < n / 2 {
        let tail = binomial_lower_tail(j as u64, n as u64, 0.5);
        if 2.0 * tail <= alpha {
            j += 1;
        } else {
            break;
        }
    }
    if j == 0 {
        return MedianCi {
            median,
            lo: f64::NEG_INFINITY,
            hi: f64::INFINITY,
            coverage: 1.0,
            n,
        };
    }
    let coverage = 1.0 - 2.0 * binomial_lower_tail(j as u64 - 1, n as u64, 0.5);
    MedianCi {
        median,
        lo: v[j - 1],
        hi: v[n - j],
        coverage,
        n,
    }
}

/// Clopper–Pearson interval for `k` successes in `n` trials at `level` (`[0, 1]` for `n = 0`).
pub fn clopper_pearson(k: usize, n: usize, level: f64) -> [f64; 2] {
    if n == 0 {
        return [0.0, 1.0];
    }
    let a = 0.5 * (1.0 - level);
    let (kf, nf) = (k as f64, n as f64);
    let lo = if k == 0 {
        0.0
    } else {
        Beta::new(kf, nf - kf + 1.0).map_or(0.0, |b| b.inverse_cdf(a))
    };
    let hi = if k == n {
        1.0
    } else {
        Beta::new(kf + 1.0, nf - kf).map_or(1.0, |b| b.inverse_cdf(1.0 - a))
    };
    [lo, hi]
}

/// Result of a Wilcoxon signed-rank test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Wilcoxon {
    /// Non-zero differences.
    pub n: usize,
    /// `W⁺`, the rank sum of the positive differences (mid-ranks for ties).
    pub w_plus: f64,
    /// `P(W⁺ ≥ observed)` under the null: evidence for "mostly positive".
    pub p_positive: f64,
    /// `P(W⁺ ≤ observed)`: evidence for "mostly negative".
    pub p_negative: f64,
    /// `min(1, 2 min(p_positive, p_negative))`.
    pub p_two_sided: f64,
    /// `true`: exact null distribution; `false`: normal approximation (`n > 300`).
    pub exact: bool,
}

/// Largest `n` for the exact null distribution (the table has `n(n+1) + 1` entries).
const WILCOXON_EXACT_MAX: usize = 300;

/// Wilcoxon signed-rank test of paired differences (see module docs; zeros and `NaN` dropped).
pub fn wilcoxon_signed_rank(diffs: &[f64]) -> Wilcoxon {
    let mut d: Vec<f64> = diffs
        .iter()
        .copied()
        .filter(|x| *x != 0.0 && !x.is_nan())
        .collect();
    d.sort_by(|a, b| a.abs().total_cmp(&b.abs()));
    let n = d.len();
    // Doubled mid-ranks: a tie group occupying ranks i+1..=j gets (i+1+j) (an integer).
    let mut rank2 = vec![0u64; n];
    let mut i = 0;
    while i < n {
        let mut j = i + 1;
        while j < n && d[j].abs() == d[i].abs() {
            j += 1;
        }
        for r in &mut rank2[i..j] {
            *r = (i + 1 + j) as u64;
        }
        i = j;
    }
    let w2: u64 = d
        .iter()
        .zip(&rank2)
        .filter(|(x, _)| **x > 0.0)
        .map(|(_, r)| *r)
        .sum();
    let w_plus = w2 as f64 / 2.0;
    if n == 0 {
        return Wilcoxon {
            n,
            w_plus,
            p_positive: 1.0,
            p_negative: 1.0,
            p_two_sided: 1.0,
            exact: true,
        };
    }
    let (p_positive, p_negative, exact) = if n <= WILCOXON_EXACT_MAX {
        // counts[s] = number of sign patterns with doubled rank sum s, scaled by 2^-k after k
        // ranks so the table holds probabilities (no overflow).
        let total: u64 = rank2.iter().sum();
        let mut prob = vec![0.0f64; total as usize + 1];
        prob[0] = 1.0;
        let mut reach = 0usize;
        for &r in &rank2 {
            let r = r as usize;
            for s in (0..=reach).rev() {
                let p = prob[s] * 0.5;
                prob[s] = p;
                prob[s + r] += p;
            }
            reach += r;
        }
        let w = w2 as usize;
        let ge: f64 = prob[w..].iter().sum();
        let le: f64 = prob[..=w].iter().sum();
        (ge.min(1.0), le.min(1.0), true)
    } else {
        let nf = n as f64;
        let mean = nf * (nf + 1.0) / 4.0;
        // Variance with tie correction: Σ rank² / 4 (ranks are the mid-ranks).
        let var: f64 = rank2.iter().map(|r| (*r as f64 / 2.0).powi(2)).sum::<f64>() / 4.0;
        let sd = var.sqrt();
        let normal = statrs::distribution::Normal::standard();
        // Continuity correction of ½.
        let zp = (w_plus - mean - 0.5) / sd;
        let zn = (w_plus - mean + 0.5) / sd;
        (1.0 - normal.cdf(zp), normal.cdf(zn), false)
    };
    Wilcoxon {
        n,
        w_plus,
        p_positive,
        p_negative,
        p_two_sided: (2.0 * p_positive.min(p_negative)).min(1.0),
        exact,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binomial_tails_match_exact_fractions() {
        // Bin(10, ½): P(X ≥ 9) = (10 + 1)/1024, P(X ≥ 8) = 56/1024, P(X ≤ 1) = 11/1024.
        assert!((binomial_upper_tail(9, 10, 0.5) - 11.0 / 1024.0).abs() < 1e-15);
        assert!((binomial_upper_tail(8, 10, 0.5) - 56.0 / 1024.0).abs() < 1e-15);
        assert!((binomial_lower_tail(1, 10, 0.5) - 11.0 / 1024.0).abs() < 1e-15);
        // Bin(20, ½): P(X ≥ 15) = 21700/2^20.
        assert!((binomial_upper_tail(15, 20, 0.5) - 21700.0 / 1048576.0).abs() < 1e-15);
        // Bin(5, 0.3): P(X ≥ 4) = 5·0.3⁴·0.7 + 0.3⁵ = 0.03078.
        assert!((binomial_upper_tail(4, 5, 0.3) - 0.03078).abs() < 1e-14);
        assert_eq!(binomial_upper_tail(0, 7, 0.2), 1.0);
        assert_eq!(binomial_upper_tail(8, 7, 0.2), 0.0);
        assert_eq!(binomial_lower_tail(7, 7, 0.2), 1.0);
        // Large n stays finite and sums to one with the complementary tail.
        let (a, b) = (
            binomial_upper_tail(520, 1000, 0.5),
            binomial_lower_tail(519, 1000, 0.5),
        );
        assert!((a + b - 1.0).abs() < 1e-12, "{a} + {b}");
    }

    #[test]
    fn sign_test_counts_and_drops_ties() {
        let d = [1.0, 2.0, -0.5, 0.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0];
        let t = sign_test(&d);
        assert_eq!((t.positive, t.negative, t.ties, t.n()), (9, 1, 1, 10));
        assert!((t.p_positive - 11.0 / 1024.0).abs() < 1e-15);
        assert!((t.p_negative - 1023.0 / 1024.0).abs() < 1e-15);
        assert!((t.p_two_sided - 22.0 / 1024.0).abs() < 1e-15);
        // 8 of 10 is not significant at 5 % one-sided (p = 56/1024 = 0.0547).
        let t = sign_test(&[1., 1., 1., 1., 1., 1., 1., 1., -1., -1.]);
        assert!(t.p_positive > 0.05 && t.p_positive < 0.055);
    }

    #[test]
    fn median_interval_uses_the_right_order_statistics() {
        let v: Vec<f64> = (1..=10).rev().map(f64::from).collect();
        let m = median_ci(&v, 0.95);
        assert_eq!((m.median, m.lo, m.hi, m.n), (5.5, 2.0, 9.0, 10));
        assert!((m.coverage - (1.0 - 22.0 / 1024.0)).abs() < 1e-15);
        // n = 20: P(B ≤ 5) = 21700/2^20 = 0.0207 ≤ 0.025 < P(B ≤ 6) → j = 6.
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        let m = median_ci(&v, 0.95);
        assert_eq!((m.lo, m.hi), (6.0, 15.0));
        assert!(m.coverage >= 0.95);
        // n = 5: the widest interval [x_(1), x_(5)] covers only 1 − 2/32 = 93.75 % < 95 %.
        let m = median_ci(&[3.0, 1.0, 2.0, 5.0, 4.0], 0.95);
        assert_eq!(m.median, 3.0);
        assert!(m.lo.is_infinite() && m.hi.is_infinite());
        let m = median_ci(&[3.0, 1.0, 2.0, 5.0, 4.0], 0.9);
        assert_eq!((m.lo, m.hi), (1.0, 5.0));
        assert!(median_ci(&[], 0.95).median.is_nan());
    }

    #[test]
    fn median_interval_covers_at_its_stated_rate() {
        // Coverage of the n = 10 interval (97.85 %) checked over 20 000 exponential samples:
        // the Monte Carlo standard error is √(0.9785·0.0215/20000) ≈ 0.001, so ±0.005 is 5 sd.
        use rand::SeedableRng;
        use rand_distr::{Distribution, Exp};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let e = Exp::new(1.0).unwrap();
        let true_median = std::f64::consts::LN_2;
        let mut hit = 0;
        let trials = 20_000;
        let mut cov = 0.0;
        for _ in 0..trials {
            let v: Vec<f64> = (0..10).map(|_| e.sample(&mut rng)).collect();
            let m = median_ci(&v, 0.95);
            cov = m.coverage;
            hit += (m.lo <= true_median && true_median <= m.hi) as usize;
        }
        let rate = hit as f64 / trials as f64;
        assert!((rate - cov).abs() < 0.005, "{rate} vs {cov}");
    }

    #[test]
    fn clopper_pearson_known_values() {
        // 9 of 10 at 95 %: [0.5550, 0.9975] (standard tables).
        let [lo, hi] = clopper_pearson(9, 10, 0.95);
        assert!(
            (lo - 0.554_983).abs() < 1e-5 && (hi - 0.997_471).abs() < 1e-5,
            "{lo} {hi}"
        );
        assert_eq!(clopper_pearson(0, 4, 0.95)[0], 0.0);
        assert_eq!(clopper_pearson(4, 4, 0.95)[1], 1.0);
        // 0 of n: upper end 1 − (α/2)^{1/n}.
        let hi = clopper_pearson(0, 10, 0.95)[1];
        assert!((hi - (1.0 - 0.025f64.powf(0.1))).abs() < 1e-9);
    }

    #[test]
    fn wilcoxon_exact_small_cases() {
        // n = 5 all positive: W⁺ = 15, P(W⁺ ≥ 15) = 1/32.
        let w = wilcoxon_signed_rank(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(w.w_plus, 15.0);
        assert!((w.p_positive - 1.0 / 32.0).abs() < 1e-15 && w.exact);
        assert!((w.p_negative - 1.0).abs() < 1e-15);
        // n = 4, d = (1, −2, 3, 4): W⁺ = 1 + 3 + 4 = 8. Of the 16 subsets of the ranks
        // {1, 2, 3, 4}, three have sum ≥ 8 ({1,3,4}, {2,3,4}, {1,2,3,4}) → 3/16.
        let w = wilcoxon_signed_rank(&[1.0, -2.0, 3.0, 4.0]);
        assert_eq!(w.w_plus, 8.0);
        assert!(
            (w.p_positive - 3.0 / 16.0).abs() < 1e-15,
            "{}",
            w.p_positive
        );
        // Ties: |d| = (1, 1, 2) → mid-ranks 1.5, 1.5, 3. d = (1, −1, 2): W⁺ = 4.5.
        // Patterns (signs of 1.5, 1.5, 3): sums 0, 1.5, 1.5, 3, 3, 4.5, 4.5, 6 → P(≥ 4.5) = 3/8.
        let w = wilcoxon_signed_rank(&[1.0, -1.0, 2.0, 0.0]);
        assert_eq!((w.n, w.w_plus), (3, 4.5));
        assert!((w.p_positive - 3.0 / 8.0).abs() < 1e-15);
    }

    #[test]
    fn wilcoxon_normal_approximation_agrees_with_exact_near_the_limit() {
        // The same data evaluated exactly (n = 300) and by the normal approximation (n = 301,
        // one extra tiny positive difference) give nearly the same p-value.
        let d: Vec<f64> = (1..=300)
            .map(|i| if i % 3 == 0 { -(i as f64) } else { i as f64 })
            .collect();
        let exact = wilcoxon_signed_rank(&d);
        let mut d2 = d.clone();
        d2.push(0.001);
        let approx = wilcoxon_signed_rank(&d2);
        assert!(exact.exact && !approx.exact);
        assert!(
            (exact.p_positive - approx.p_positive).abs() < 0.01,
            "{} vs {}",
            exact.p_positive,
            approx.p_positive
        );
    }
}
