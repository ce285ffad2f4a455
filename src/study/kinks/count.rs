//! Counting the kinks of a fitted piecewise-linear function.
//!
//! Input: the breakpoints `(x_j, Δ_j)` of `f_θ` (location `−b_j/w_j`, slope change `a_j|w_j|`).
//! 1. keep those strictly inside the data range `(x_min, x_max)`;
//! 2. sort them and merge chains whose consecutive gaps are `< merge_distance` (single linkage);
//!    a merged group sits at the mean of its locations and changes the slope by `Σ Δ_j` (the
//!    function's actual slope change across the group);
//! 3. a group is a **kink** when `|Σ Δ_j| > min_relative_slope_change · max_groups |Σ Δ|`.
//!
//! Units whose contributions cancel inside a group therefore do not count, and tiny slope
//! changes (units that training switched off by shrinking `a_j`) do not either.

use serde::Serialize;

use super::config::KinkRule;
use crate::landscape::Breakpoint;

/// A merged group of breakpoints.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Kink {
    /// Mean location of the group.
    pub x: f64,
    /// Total slope change across the group.
    pub slope_change: f64,
    /// Number of units in the group.
    pub units: usize,
    /// Counted as a kink (above the relative threshold).
    pub counted: bool,
}

/// The groups (counted or not) inside the data range, sorted by location.
pub fn merge(bps: &[Breakpoint], range: (f64, f64), rule: &KinkRule) -> Vec<Kink> {
    let mut inside: Vec<Breakpoint> = bps
        .iter()
        .filter(|b| b.x > range.0 && b.x < range.1)
        .copied()
        .collect();
    inside.sort_by(|a, b| a.x.total_cmp(&b.x));
    let mut groups: Vec<(f64, f64, usize)> = Vec::new(); // (sum of x, sum of Δ, units)
    let mut last = f64::NEG_INFINITY;
    for b in &inside {
        match groups.last_mut() {
            Some(g) if b.x - last < rule.merge_distance => {
                g.0 += b.x;
                g.1 += b.slope_change;
                g.2 += 1;
            }
            _ => groups.push((b.x, b.slope_change, 1)),
        }
        last = b.x;
    }
    let largest = groups.iter().map(|g| g.1.abs()).fold(0.0, f64::max);
    let threshold = rule.min_relative_slope_change * largest;
    groups
        .into_iter()
        .map(|(sx, sd, u)| Kink {
            x: sx / u as f64,
            slope_change: sd,
            units: u,
            counted: sd.abs() > threshold && largest > 0.0,
        })
        .collect()
}

/// Number of counted kinks.
pub fn count(groups: &[Kink]) -> usize {
    groups.iter().filter(|k| k.counted).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bp(x: f64, s: f64) -> Breakpoint {
        Breakpoint { x, slope_change: s }
    }

    const RULE: KinkRule = KinkRule {
        merge_distance: 0.01,
        min_relative_slope_change: 0.01,
    };

    #[test]
    fn outside_range_merged_and_small_ones_do_not_count() {
        let bps = [
            bp(-2.0, 5.0),    // outside
            bp(0.100, 1.0),   // ┐ one group (gap 0.005),
            bp(0.105, 2.0),   // ┘ slope change 3
            bp(0.5, -4.0),    // alone
            bp(0.7, 0.03),    // 0.03 < 1 % of 4: not counted
            bp(0.9, 1.0),     // ┐ cancel each other:
            bp(0.9005, -1.0), // ┘ not a kink
            bp(1.0, 2.0),     // exactly at the range end: outside
        ];
        let g = merge(&bps, (-1.0, 1.0), &RULE);
        assert_eq!(g.len(), 4);
        assert!((g[0].x - 0.1025).abs() < 1e-15 && g[0].slope_change == 3.0 && g[0].units == 2);
        assert_eq!(
            g.iter().map(|k| k.counted).collect::<Vec<_>>(),
            [true, true, false, false]
        );
        assert_eq!(count(&g), 2);
    }

    #[test]
    fn single_linkage_chains() {
        // 0, 0.008, 0.016: each gap < 0.01 although the ends are 0.016 apart → one group.
        let g = merge(
            &[bp(0.0, 1.0), bp(0.008, 1.0), bp(0.016, 1.0)],
            (-1.0, 1.0),
            &RULE,
        );
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].units, 3);
        // No breakpoints, or all cancelling: zero kinks, no division by zero.
        assert_eq!(count(&merge(&[], (-1.0, 1.0), &RULE)), 0);
        let g = merge(&[bp(0.0, 1.0), bp(0.001, -1.0)], (-1.0, 1.0), &RULE);
        assert_eq!(count(&g), 0);
    }
}
