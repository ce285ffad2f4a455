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
//!   `se_i √(n₀/n)` lies inside the pass band (one-sided claims pass `band[1] = ∞`), and
//! * the resolution diagnostic clears its bar even for an estimate one floor low: with `r_i` its
//!   pilot value and `r̄_i` the upper end of its CI, `r_i + (r̄_i − r_i)√(n₀/n) ≤
//!   ratio · (e_i − h_i√(n₀/n))` — its noise shrinks with `n`, its bias (Euler–Maruyama
//!   discretisation) does not.
//!
//! An explanation instead of a number when no `n` will do: the band cannot contain the slope CI
//! even without Monte Carlo noise (the η grid is pre-asymptotic, or the expected order is
//! wrong), the SDE's discretisation bias alone fails the resolution bar (raise the sub-steps),
//! or the search range (`n ≤ 2²⁰ n₀`) is exhausted.

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
    /// Pilot resolution diagnostic (0 for exact transitions).
    pub resolution: f64,
    /// Upper end of its CI.
    pub resolution_hi: f64,
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
/// why there is none. `ratio` is the verdict's resolution ratio.
pub fn paths_for_conclusive_slope(
    points: &[PilotPoint],
    pilot_paths: usize,
    band: [f64; 2],
    level: f64,
    ratio: f64,
) -> Result<usize, String> {
    if points.len() < 2
        || points
            .iter()
            .any(|p| !(p.exact > 0.0 && p.floor.is_finite()))
    {
        return Err("needs ≥ 2 learning rates with positive exact errors and finite floors".into());
    }
    let etas: Vec<f64> = points.iter().map(|p| p.eta).collect();
    let exact: Vec<f64> = points.iter().map(|p| p.exact).collect();
    // Without noise the regression term alone must already fit (with ≥ 3 points it is defined).
    if points.len() > 2 {
        let noiseless = loglog_slope(&etas, &exact, None, level).map_err(|e| e.to_string())?;
        if noiseless.ci[0] < band[0] || noiseless.ci[1] > band[1] {
            return Err(format!(
                "unreachable: the exact slope's CI [{:.2}, {:.2}] is not inside the band (pre-asymptotic η grid)",
                noiseless.ci[0], noiseless.ci[1]
            ));
        }
    }
    if let Some(p) = points.iter().find(|p| p.resolution > ratio * p.exact) {
        return Err(format!(
            "unreachable: the SDE's discretisation alone (resolution {:.2e} at η = {}) exceeds {ratio} × the error; raise integration.substeps",
            p.resolution, p.eta
        ));
    }
    let n0 = pilot_paths as f64;
    for k in -40..=80 {
        let n = (n0 * 2f64.powf(k as f64 / 4.0)).ceil().max(2.0);
        let scale = (n0 / n).sqrt();
        if points.iter().any(|p| p.floor * scale > 0.5 * p.exact) {
            continue;
        }
        let resolved = points.iter().all(|p| {
            p.resolution + (p.resolution_hi - p.resolution) * scale
                <= ratio * (p.exact - p.floor * scale)
        });
        if !resolved {
            continue;
        }
        let se: Vec<f64> = points.iter().map(|p| p.std_err * scale).collect();
        let fit = loglog_slope(&etas, &exact, Some(&se), level).map_err(|e| e.to_string())?;
        if fit.ci[0] >= band[0] && fit.ci[1] <= band[1] {
            return Ok(round_up_2(n as usize));
        }
    }
    Err(format!(
        "unreachable within {} paths (the resolution bar or the slope band is not met)",
        round_up_2((n0 * 2f64.powi(20)) as usize)
    ))
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
                resolution: 0.0,
                resolution_hi: 0.0,
            })
            .collect();
        let n = paths_for_conclusive_slope(&pts, 1000, [0.7, 1.3], 0.95, 0.2).unwrap();
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
                resolution: 0.0,
                resolution_hi: 0.0,
            })
            .collect();
        let e = paths_for_conclusive_slope(&pts, 1000, [0.7, 1.3], 0.95, 0.2).unwrap_err();
        assert!(e.contains("pre-asymptotic"), "{e}");
    }

    /// A resolution diagnostic whose bias alone exceeds the bar cannot be fixed by paths; one
    /// whose noise does can (here its CI end must come down to ≤ 0.2·(η − floor)).
    #[test]
    fn resolution_bias_is_not_fixed_by_paths() {
        let pts = |bias: f64| -> Vec<PilotPoint> {
            [0.1, 0.05, 0.025]
                .iter()
                .map(|&eta| PilotPoint {
                    eta,
                    exact: eta,
                    floor: 0.2 * eta,
                    std_err: 0.05 * eta,
                    resolution: bias * eta,
                    resolution_hi: (bias + 0.3) * eta,
                })
                .collect()
        };
        let e = paths_for_conclusive_slope(&pts(0.25), 1000, [0.7, 1.3], 0.95, 0.2).unwrap_err();
        assert!(e.contains("substeps"), "{e}");
        // bias 0.1: need 0.1 + 0.3 s ≤ 0.2 (1 − 0.2 s) → s ≤ 0.1/0.34, n ≥ 11.6 n₀.
        let n = paths_for_conclusive_slope(&pts(0.1), 1000, [0.7, 1.3], 0.95, 0.2).unwrap();
        assert!((11_600..=16_000).contains(&n), "{n}");
    }
}
