//! Dot-and-whisker panels: a value with its confidence interval per category and series
//! (e.g. the flat fraction of each algorithm, discrete beside SDE), optionally with a
//! horizontal reference mark per category (e.g. a formula). Used by the flatness figure.
//!
//! Series are offset horizontally within a category so their whiskers never overlap; a value
//! or interval end that is not finite is skipped, except an infinite upper end, which is drawn to
//! the top of the axis with no end tick. Optional log scale for positive data.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{draw_err, try_ensure_fonts, PALETTE};
use crate::Result;

/// One series of a panel: a value and CI per category (`NaN` value: nothing drawn).
#[derive(Debug, Clone)]
pub struct DotSeries {
    /// Legend text.
    pub label: String,
    /// `(value, lo, hi)` per category.
    pub values: Vec<(f64, f64, f64)>,
}

/// A panel.
#[derive(Debug, Clone)]
pub struct DotPanel<'a> {
    /// Caption above the panel.
    pub title: &'a str,
    /// Vertical axis label.
    pub y_label: &'a str,
    /// Category names along the horizontal axis.
    pub categories: Vec<String>,
    /// Series.
    pub series: Vec<DotSeries>,
    /// Reference value per category (`NaN`: none), drawn as a black bar, with its legend text.
    pub reference: Option<(String, Vec<f64>)>,
    /// Logarithmic vertical axis.
    pub log_y: bool,
    /// Values are probabilities: the linear axis never extends beyond `[0, 1]`
    /// (the legend then sits over the data area; it has a translucent background).
    pub unit_interval: bool,
}

/// Ticks of a log axis on `[a, b]`: 1, 2, 5 × 10ᵏ when the axis spans at most three decades,
/// decades otherwise.
fn log_ticks(a: f64, b: f64) -> Vec<f64> {
    let (ka, kb) = (a.log10().floor() as i32, b.log10().ceil() as i32);
    let mults: &[f64] = if kb - ka <= 3 {
        &[1.0, 2.0, 5.0]
    } else {
        &[1.0]
    };
    let mut out = Vec::new();
    for k in ka..=kb {
        for m in mults {
            let v = m * 10f64.powi(k);
            if v >= a && v <= b {
                out.push(v);
            }
        }
    }
    out
}

/// Draws one panel on `area`.
pub fn draw_dot_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &DotPanel,
) -> Result<()> {
    try_ensure_fonts()?;
    let nc = panel.categories.len().max(1);
    let ns = panel.series.len().max(1);
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    let mut consider = |v: f64| {
        if v.is_finite() && (!panel.log_y || v > 0.0) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    };
    for s in &panel.series {
        for &(v, l, h) in &s.values {
            consider(v);
            consider(l);
            consider(h);
        }
    }
    if let Some((_, r)) = &panel.reference {
        for &v in r {
            consider(v);
        }
    }
    if !lo.is_finite() {
        (lo, hi) = if panel.log_y { (0.1, 10.0) } else { (0.0, 1.0) };
    }
    let (w, _) = area.dim_in_pixel();
    let s = (w as f64 / 700.0).clamp(0.5, 3.0);
    let font = |v: f64| super::font(v * s);
    let x_range = -0.5..(nc as f64 - 0.5);
    let x_fmt = |v: &f64| {
        let i = v.round();
        if (v - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < panel.categories.len() {
            panel.categories[i as usize].clone()
        } else {
            String::new()
        }
    };
    let offset = |k: usize| (k as f64 - (ns as f64 - 1.0) / 2.0) * (0.6 / ns as f64);
    let colour = |k: usize| PALETTE[k % PALETTE.len()];
    macro_rules! body {
        ($chart:expr, $map:expr, $top:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(nc)
                .x_label_formatter(&x_fmt)
                .y_desc(panel.y_label)
                .label_style(font(15.0))
                .axis_desc_style(font(16.0))
                .draw()
                .map_err(draw_err)?;
            let map = $map;
            // An unbounded upper end (e.g. too few events for a finite interval) is drawn to
            // the top of the axis, without the end tick.
            let map_hi = |v: f64| {
                if v == f64::INFINITY {
                    Some($top)
                } else {
                    map(v)
                }
            };
            for (k, ser) in panel.series.iter().enumerate() {
                let c = colour(k);
                let mut first = true;
                for (i, &(v, l, h)) in ser.values.iter().enumerate() {
                    let x = i as f64 + offset(k);
                    if let (Some(l), Some(hh)) = (map(l), map_hi(h)) {
                        chart
                            .draw_series(std::iter::once(PathElement::new(
                                vec![(x, l), (x, hh)],
                                c.stroke_width((2.0 * s) as u32),
                            )))
                            .map_err(draw_err)?;
                        let ends = if h.is_finite() { vec![l, hh] } else { vec![l] };
                        for e in ends {
                            chart
                                .draw_series(std::iter::once(PathElement::new(
                                    vec![(x - 0.04, e), (x + 0.04, e)],
                                    c.stroke_width((2.0 * s) as u32),
                                )))
                                .map_err(draw_err)?;
                        }
                    }
                    if let Some(v) = map(v) {
                        let anno = chart
                            .draw_series(std::iter::once(Circle::new(
                                (x, v),
                                (5.0 * s) as u32,
                                c.filled(),
                            )))
                            .map_err(draw_err)?;
                        if first {
                            first = false;
                            anno.label(ser.label.clone()).legend(move |(x, y)| {
                                Circle::new((x + 10, y), (5.0 * s) as u32, c.filled())
                            });
                        }
                    }
                }
            }
            if let Some((label, r)) = &panel.reference {
                let mut first = true;
                for (i, &v) in r.iter().enumerate() {
                    if let Some(v) = map(v) {
                        let anno = chart
                            .draw_series(std::iter::once(PathElement::new(
                                vec![(i as f64 - 0.4, v), (i as f64 + 0.4, v)],
                                BLACK.stroke_width((2.0 * s) as u32),
                            )))
                            .map_err(draw_err)?;
                        if first {
                            first = false;
                            anno.label(label.clone()).legend(|(x, y)| {
                                PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(2))
                            });
                        }
                    }
                }
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.4))
                .label_font(font(14.0))
                .position(SeriesLabelPosition::UpperRight)
                .draw()
                .map_err(draw_err)?;
        }};
    }
    let top = (10.0 * s) as u32;
    if panel.log_y {
        // Head room above the data for the legend (upper right), as on the linear axis.
        let (l, h) = (lo / 1.6, hi * 1.6 * (hi / lo).powf(0.3).max(1.5));
        let chart = ChartBuilder::on(area)
            .caption(panel.title, font(18.0))
            .margin(top)
            .x_label_area_size((40.0 * s) as u32)
            .y_label_area_size((75.0 * s) as u32)
            .build_cartesian_2d(x_range, (l..h).log_scale().with_key_points(log_ticks(l, h)))
            .map_err(draw_err)?;
        body!(chart, |v: f64| (v.is_finite() && v > 0.0).then_some(v), h)
    } else {
        let pad = 0.08 * (hi - lo).max(1e-12);
        // Leave room at the top for the legend.
        let (mut l, mut h) = (lo - pad, hi + pad + 0.35 * (hi - lo).max(1e-12));
        if panel.unit_interval {
            l = l.max(0.0);
            h = h.min(1.0 + pad.min(0.02));
        }
        let chart = ChartBuilder::on(area)
            .caption(panel.title, font(18.0))
            .margin(top)
            .x_label_area_size((40.0 * s) as u32)
            .y_label_area_size((75.0 * s) as u32)
            .build_cartesian_2d(x_range, l..h)
            .map_err(draw_err)?;
        body!(chart, |v: f64| v.is_finite().then_some(v), h)
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_to_svg_with_labels() {
        let p = DotPanel {
            title: "flat fraction",
            y_label: "P(flat)",
            categories: vec!["sgd".into(), "usam".into()],
            series: vec![
                DotSeries {
                    label: "discrete".into(),
                    values: vec![(0.5, 0.45, 0.55), (0.7, 0.65, 0.75)],
                },
                DotSeries {
                    label: "SDE".into(),
                    values: vec![(0.52, 0.47, 0.57), (f64::NAN, f64::NAN, f64::NAN)],
                },
            ],
            reference: Some(("formula".into(), vec![0.5, f64::NAN])),
            log_y: false,
            unit_interval: true,
        };
        let svg = crate::plot::render_svg_string((700, 450), |a| draw_dot_panel(a, &p)).unwrap();
        assert!(svg.contains("usam") && svg.contains("discrete") && svg.contains("formula"));
        let mut q = p.clone();
        q.log_y = true;
        q.series[0].values[0].2 = f64::INFINITY;
        crate::plot::render_svg_string((700, 450), |a| draw_dot_panel(a, &q)).unwrap();
    }

    /// An unbounded upper end (too few events for a finite interval) still gets its whisker, up
    /// to the top of the axis, with a tick at the lower end only: 2 more line elements than the
    /// same point with no interval at all, 1 fewer than a finite interval.
    #[test]
    fn unbounded_upper_end_is_drawn_to_the_top() {
        let panel = |v: (f64, f64, f64)| DotPanel {
            title: "exit time",
            y_label: "time",
            categories: vec!["sgd".into(), "usam".into(), "sam".into()],
            series: vec![DotSeries {
                label: "discrete".into(),
                // The third point fixes the axis range (and so the grid lines) in every case.
                values: vec![(10.0, 8.0, 12.0), v, (30.0, 0.0, 50.0)],
            }],
            reference: None,
            log_y: false,
            unit_interval: false,
        };
        let lines = |v| {
            let p = panel(v);
            crate::plot::render_svg_string((700, 450), |a| draw_dot_panel(a, &p))
                .unwrap()
                .matches("<polyline")
                .count()
        };
        let none = lines((20.0, f64::NAN, f64::NAN));
        let unbounded = lines((20.0, 15.0, f64::INFINITY));
        let finite = lines((20.0, 15.0, 25.0));
        assert_eq!(unbounded, none + 2);
        assert_eq!(finite, none + 3);
    }
}
