//! Statistics of the saddle study: the Wilson score interval of a fraction, type-7 quantiles, the
//! ½-crossing of a fraction interpolated linearly in `log ρ` (and from it the per-row phase
//! boundaries with `Δ = log₁₀(ρ_sim/ρ_pred)`), and the escape-time distribution with censoring at
//! `T` (quantile `q` = order statistic `⌈nq⌉`, interval from the ranks `nq ± z√(nq(1−q))`).

use super::observer::PathRecord;
use super::{CellReport, EscapeReport, RowBoundary};
use crate::stats::ci::z_quantile;

/// Wilson score interval for `k` successes in `n` trials at `level`.
///
/// `p̂ = k/n`, `z` the two-sided normal quantile:
/// `(p̂ + z²/2n ± z √(p̂(1−p̂)/n + z²/4n²)) / (1 + z²/n)`. `n = 0` gives `[0, 1]`.
pub fn wilson(k: usize, n: usize, level: f64) -> [f64; 2] {
    if n == 0 {
        return [0.0, 1.0];
    }
    let z = z_quantile(level);
    let (nf, p) = (n as f64, k as f64 / n as f64);
    let z2 = z * z;
    let centre = p + z2 / (2.0 * nf);
    let half = z * (p * (1.0 - p) / nf + z2 / (4.0 * nf * nf)).sqrt();
    let den = 1.0 + z2 / nf;
    // The ends are exactly 0 (k = 0) and 1 (k = n); the formula gives them up to rounding.
    [
        if k == 0 {
            0.0
        } else {
            ((centre - half) / den).max(0.0)
        },
        if k == n {
            1.0
        } else {
            ((centre + half) / den).min(1.0)
        },
    ]
}

/// Quantile (linear interpolation between order statistics, "type 7") of sorted values.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let h = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    if lo == hi || sorted[lo] == sorted[hi] {
        return sorted[lo];
    }
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// Smallest `x` at which `ys` (over increasing `xs`), interpolated linearly in `ln x`, reaches
/// `level`; `None` if it starts at or above it (crossing below the grid) or never reaches it.
pub fn crossing(xs: &[f64], ys: &[f64], level: f64) -> Option<f64> {
    if ys.first().is_none_or(|&y| y >= level) {
        return None;
    }
    for i in 0..xs.len() - 1 {
        if ys[i] < level && ys[i + 1] >= level {
            let t = (level - ys[i]) / (ys[i + 1] - ys[i]);
            let (a, b) = (xs[i].ln(), xs[i + 1].ln());
            return Some((a + t * (b - a)).exp());
        }
    }
    None
}

/// Per-row boundaries from cells laid out row-major.
pub(super) fn boundaries<F: Fn(f64, &[CellReport]) -> Option<f64>>(
    rhos: &[f64],
    ys: &[f64],
    cells: &[CellReport],
    predict: F,
) -> Vec<RowBoundary> {
    ys.iter()
        .enumerate()
        .map(|(i, &y)| {
            let row = &cells[i * rhos.len()..(i + 1) * rhos.len()];
            let frac: Vec<f64> = row.iter().map(|q| q.fraction).collect();
            let lo: Vec<f64> = row.iter().map(|q| q.ci[0]).collect();
            let hi: Vec<f64> = row.iter().map(|q| q.ci[1]).collect();
            let rho_sim = crossing(rhos, &frac, 0.5);
            let rho_pred = predict(y, row);
            RowBoundary {
                y,
                rho_pred,
                rho_sim,
                // The upper Wilson curve crosses first (smaller ρ), the lower one last.
                rho_sim_ci: [crossing(rhos, &hi, 0.5), crossing(rhos, &lo, 0.5)],
                deviation_dex: match (rho_sim, rho_pred) {
                    (Some(s), Some(p)) => Some((s / p).log10()),
                    _ => None,
                },
            }
        })
        .collect()
}

pub(super) fn escape_report(recs: &[PathRecord], level: f64) -> EscapeReport {
    let n = recs.len();
    let mut times: Vec<f64> = recs.iter().filter_map(|q| q.escape_time).collect();
    times.sort_by(f64::total_cmp);
    let escaped = times.len();
    let diverged = recs.iter().filter(|q| q.diverged).count();
    let z = z_quantile(level);
    // Quantile q of the escape time with censored paths as +∞: order statistic ⌈nq⌉; its
    // interval uses the ranks nq ± z√(nq(1−q)) (normal approximation to the binomial).
    let order = |rank: f64| -> Option<f64> {
        let i = rank.ceil().max(1.0) as usize;
        if i > n {
            None
        } else if i <= escaped {
            Some(times[i - 1])
        } else {
            None
        }
    };
    let quantiles = [0.1, 0.5, 0.9]
        .iter()
        .map(|&q| {
            let nf = n as f64;
            let half = z * (nf * q * (1.0 - q)).sqrt();
            [
                Some(q),
                order(nf * q),
                order((nf * q - half).max(1.0)),
                order(nf * q + half),
            ]
        })
        .collect();
    EscapeReport {
        paths: n,
        escaped,
        censored: n - escaped,
        diverged,
        fraction_escaped: escaped as f64 / n.max(1) as f64,
        fraction_ci: wilson(escaped, n, level),
        quantiles,
        times,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_known_values() {
        // 95 % Wilson for 0/10: [0, 0.2775]; 5/10: [0.2366, 0.7634].
        let a = wilson(0, 10, 0.95);
        assert!(a[0] == 0.0 && (a[1] - 0.2775).abs() < 1e-3, "{a:?}");
        let b = wilson(5, 10, 0.95);
        assert!(
            (b[0] - 0.2366).abs() < 1e-3 && (b[1] - 0.7634).abs() < 1e-3,
            "{b:?}"
        );
    }

    #[test]
    fn crossing_interpolates_in_log() {
        let xs = [1.0, 10.0, 100.0];
        let c = crossing(&xs, &[0.0, 0.25, 0.75], 0.5).unwrap();
        assert!((c.log10() - 1.5).abs() < 1e-12);
        assert!(crossing(&xs, &[0.6, 0.7, 0.8], 0.5).is_none());
        assert!(crossing(&xs, &[0.0, 0.1, 0.2], 0.5).is_none());
    }

    #[test]
    fn quantiles() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile_sorted(&v, 0.5), 2.5);
        assert_eq!(quantile_sorted(&[1.0, f64::INFINITY], 1.0), f64::INFINITY);
    }
}
