//! How many Monte Carlo paths a weak-error slope needs to be conclusive, predicted from a pilot
//! run and the exact weak errors.
//!
//! A pilot with `n₀` paths gives, per learning rate `η_i`, the simultaneous half-width
//! (noise floor) `h_i` and the standard error `se_i`; both scale as `√(n₀/n)` with `n` paths.
//! With the exact errors `e_i` standing in for the estimates (what `n → ∞` converges to), the
//! smallest `n` on the grid `n₀ · 2^{k/4}` (rounded up to two significant digits) is returned
//! such that
//!
//! * every point clears its floor with margin: `h_i √(n₀/n) ≤ e_i / 2` (the CI of the error then
//!   excludes 0 unless the estimate is more than a half-width low), and
//! * the slope CI of [`super::loglog_slope`] on `(η_i, e_i)` with standard errors
//!   `se_i √(n₀/n)` lies inside the pass band.
//!
//! `None` when no `n` will do: the band cannot contain the slope CI even without Monte Carlo
//! noise (the η grid is pre-asymptotic, or the expected order is wrong), or the search range
//! (`n ≤ 2²⁰ n₀`) is exhausted. The prediction ignores discretisation bias of Euler–Maruyama
//! (the resolution diagnostic), which more paths do not remove.

use super::loglog_slope;

/// One learning rate of the pilot.
#[derive(Debug, Clone, Copy)]
pub struct PilotPoint {
    /// Learning rate.
    pub eta: f64,
    /// Exact weak error.
    pub exact: f64,
    /// Pilot noise floor (largest simultaneous half-width).
    pub floor: f64,
    /// Pilot standard error of the error estimate.
    pub std_err: f64,
}

/// `n` rounded up to two significant digits (53 818 → 54 000): the prediction is not more
/// precise than that.
fn round_up_2(n: usize) -> usize {
    let mut unit = 1;
    while n / unit >= 100 {
        unit *= 10;
    }
    n.div_ceil(unit) * unit
}

/// The smallest path count (see the module docs), rounded up to two significant digits, or
/// `None`.
pub fn paths_for_conclusive_slope(
    points: &[PilotPoint],
    pilot_paths: usize,
    band: [f64; 2],
    level: f64,
) -> Option<usize> {
    if points.len() < 2
        || points
            .iter()
            .any(|p| !(p.exact > 0.0 && p.floor.is_finite()))
    {
        return None;
    }
    let etas: Vec<f64> = points.iter().map(|p| p.eta).collect();
    let exact: Vec<f64> = points.iter().map(|p| p.exact).collect();
    // Without noise the regression term alone must already fit (with ≥ 3 points it is defined).
    if points.len() > 2 {
        let noiseless = loglog_slope(&etas, &exact, None, level).ok()?;
        if noiseless.ci[0] < band[0] || noiseless.ci[1] > band[1] {
            return None;
        }
    }
    let n0 = pilot_paths as f64;
    for k in -40..=80 {
        let n = (n0 * 2f64.powf(k as f64 / 4.0)).ceil().max(2.0);
        let scale = (n0 / n).sqrt();
        if points.iter().any(|p| p.floor * scale > 0.5 * p.exact) {
            continue;
        }
        let se: Vec<f64> = points.iter().map(|p| p.std_err * scale).collect();
        let fit = loglog_slope(&etas, &exact, Some(&se), level).ok()?;
        if fit.ci[0] >= band[0] && fit.ci[1] <= band[1] {
            return Some(round_up_2(n as usize));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exact power law `e = η`, pilot floors 4× the error at 1000 paths: the floor criterion
    /// needs `(4/0.5)² = 64×` the paths; the slope criterion (tiny se) is then met too.
    #[test]
    fn floor_criterion_sets_the_count() {
        let pts: Vec<PilotPoint> = [0.1, 0.05, 0.025]
            .iter()
            .map(|&eta| PilotPoint {
                eta,
                exact: eta,
                floor: 4.0 * eta,
                std_err: 0.01 * eta,
            })
            .collect();
        let n = paths_for_conclusive_slope(&pts, 1000, [0.7, 1.3], 0.95).unwrap();
        // Grid n₀·2^{k/4}: 64 = 2^6 exactly (k = 24).
        assert_eq!(n, 64_000);
        assert_eq!(round_up_2(53_818), 54_000);
        assert_eq!(round_up_2(45), 45);
        assert_eq!(round_up_2(101), 110);
    }

    /// A curved exact error (`η + 30η²` on a coarse grid) whose regression CI misses the band
    /// cannot be made conclusive by paths.
    #[test]
    fn pre_asymptotic_grid_is_hopeless() {
        let pts: Vec<PilotPoint> = [0.2, 0.1, 0.05, 0.0125]
            .iter()
            .map(|&eta| PilotPoint {
                eta,
                exact: eta + 30.0 * eta * eta,
                floor: 0.001,
                std_err: 0.0001,
            })
            .collect();
        assert_eq!(
            paths_for_conclusive_slope(&pts, 1000, [0.7, 1.3], 0.95),
            None
        );
    }
}
