//! Curves with bands (like DifferentialEquations.jl's `EnsembleSummary`): one line per series
//! (solid or dashed) with any number of translucent bands between a lower and an upper curve
//! (e.g. a light 5–95 % quantile band under a darker CI band of the mean), on linear or log `x`
//! and `y` axes. Used by the saddle curves, the trajectories figures and the implicit-bias
//! figures (loss against `ρ` and against the step, log–log).
//!
//! Values outside the panel's `y` range (including `±∞`, and `≤ 0` on a log axis) are clipped to
//! the range's edge, so a band whose upper quantile is "escaped" (`+∞`) runs along the top edge;
//! `NaN` breaks a line. On a log `x` axis, points with `x ≤ 0` are skipped. Colours come from [`PALETTE`] by `color` index; the legend lists the
//! entries of [`BandPanel::legend`] (so one colour can stand for a solid/dashed pair).

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;

use super::{draw_err, try_ensure_fonts, PALETTE};
use crate::Result;

/// A translucent band between two curves, in the series' colour.
#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    /// Lower curve, same length as the series' `x`.
    pub lo: Vec<f64>,
    /// Upper curve.
    pub hi: Vec<f64>,
    /// Fill opacity in `[0, 1]` (drawn in the order given, so put the widest band first).
    pub opacity: f64,
}

/// One curve.
#[derive(Debug, Clone, PartialEq)]
pub struct BandSeries {
    /// Index into [`PALETTE`].
    pub color: usize,
    /// Dashed line.
    pub dashed: bool,
    /// Abscissae.
    pub x: Vec<f64>,
    /// The line.
    pub y: Vec<f64>,
    /// Bands under the line (may be empty).
    pub bands: Vec<Band>,
}

/// Where the legend box goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LegendCorner {
    /// Lower right (default).
    #[default]
    LowerRight,
    /// Upper right.
    UpperRight,
}

/// A legend entry: text, colour index (`None` = black), dashed.
#[derive(Debug, Clone, PartialEq)]
pub struct LegendEntry {
    /// Text.
    pub text: String,
    /// Colour index into [`PALETTE`] (`None`: black).
    pub color: Option<usize>,
    /// Dashed sample line.
    pub dashed: bool,
}

/// A panel.
#[derive(Debug, Clone, PartialEq)]
pub struct BandPanel {
    /// Title.
    pub title: String,
    /// `x` axis text.
    pub x_label: String,
    /// `y` axis text.
    pub y_label: String,
    /// `x` range (positive if `log_x`).
    pub x_range: (f64, f64),
    /// Log `x` axis.
    pub log_x: bool,
    /// `y` range (positive if `log_y`).
    pub y_range: (f64, f64),
    /// Log `y` axis.
    pub log_y: bool,
    /// The curves.
    pub series: Vec<BandSeries>,
    /// Horizontal reference lines `(y, text)` (grey, dotted).
    pub hlines: Vec<(f64, String)>,
    /// Legend.
    pub legend: Vec<LegendEntry>,
    /// Legend position.
    pub legend_corner: LegendCorner,
}

/// A linear `y` range covering every finite value of the series' lines and bands, padded by 5 %
/// of the span, plus `head_room` × span on top (room for a legend). `(0, 1)` if nothing is
/// finite.
pub fn auto_y_range(series: &[BandSeries], head_room: f64) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for ser in series {
        let bands = ser.bands.iter().flat_map(|b| b.lo.iter().chain(&b.hi));
        for &v in ser.y.iter().chain(bands) {
            if v.is_finite() {
                lo = lo.min(v);
                hi = hi.max(v);
            }
        }
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let span = (hi - lo).max(1e-9 * (1.0 + hi.abs()));
    (lo - 0.05 * span, hi + (0.05 + head_room) * span)
}

fn clip(v: f64, (a, b): (f64, f64)) -> Option<f64> {
    if v.is_nan() {
        None
    } else {
        Some(v.clamp(a, b))
    }
}

fn log_ticks(a: f64, b: f64) -> Vec<f64> {
    let (ka, kb) = (a.log10().ceil() as i32, b.log10().floor() as i32);
    let step = ((kb - ka) / 8 + 1).max(1);
    (ka..=kb)
        .step_by(step as usize)
        .map(|k| 10f64.powi(k))
        .collect()
}

fn fmt_tick(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 1e4 || v.abs() < 1e-2 {
        let e = v.abs().log10().round() as i32;
        if (v.abs() - 10f64.powi(e)).abs() < 1e-9 * v.abs() {
            format!("1e{e}")
        } else {
            format!("{v:.0e}")
        }
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// Draws one panel.
pub fn draw_bands<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, p: &BandPanel) -> Result<()> {
    try_ensure_fonts()?;
    let (w, h) = area.dim_in_pixel();
    // Text scales with the panel but not below 3/4 of the design size (legibility in grids).
    let s = (w as f64 / 700.0).min(h as f64 / 480.0).clamp(0.75, 4.0);
    let sz = |v: f64| (v * s).round().max(1.0);
    let font = |v: f64| ("sans-serif", sz(v)).into_font();
    let yr = p.y_range;
    let y_ok = yr.1 > yr.0 && (!p.log_y || yr.0 > 0.0);
    let x_ok = p.x_range.1 > p.x_range.0 && (!p.log_x || p.x_range.0 > 0.0);
    let x_ok = x_ok && p.x_range.0.is_finite() && p.x_range.1.is_finite();
    if !y_ok || !x_ok {
        return Err(crate::Error::Plot(format!(
            "band panel {:?}: bad ranges x {:?}, y {:?}",
            p.title, p.x_range, yr
        )));
    }
    // On a linear axis a tick at "zero" can come out as ±1e-17 (the tick positions are sums of
    // steps): snap values far below the axis span to 0.
    let snap = |v: f64, (a, b): (f64, f64), log: bool| {
        if !log && v.abs() < 1e-9 * a.abs().max(b.abs()) {
            0.0
        } else {
            v
        }
    };
    let fmt_x = |v: &f64| fmt_tick(snap(*v, p.x_range, p.log_x));
    let fmt_y = |v: &f64| fmt_tick(snap(*v, yr, p.log_y));
    let mut builder = ChartBuilder::on(area);
    builder
        .margin(sz(10.0) as i32)
        .caption(&p.title, font(20.0))
        .x_label_area_size(sz(50.0) as u32)
        .y_label_area_size(sz(72.0) as u32);
    // A point at fraction `u` of the x axis (geometric on a log axis): where texts go.
    let x_at = |u: f64| {
        let (a, b) = p.x_range;
        if p.log_x {
            a * (b / a).powf(u)
        } else {
            a + u * (b - a)
        }
    };
    let x_in = |x: f64| !p.log_x || x > 0.0;
    // Both axis kinds share the drawing code through a closure over the chart.
    macro_rules! body {
        ($chart:ident, $to_y:expr) => {{
            $chart
                .configure_mesh()
                .x_desc(p.x_label.as_str())
                .y_desc(p.y_label.as_str())
                .axis_desc_style(font(17.0))
                .label_style(font(15.0))
                .x_label_formatter(&fmt_x)
                .y_label_formatter(&fmt_y)
                .bold_line_style(RGBColor(215, 215, 215).stroke_width(1))
                .light_line_style(TRANSPARENT)
                .draw()
                .map_err(draw_err)?;
            for (y, text) in &p.hlines {
                if *y >= yr.0 && *y <= yr.1 {
                    let style = RGBColor(90, 90, 90).stroke_width(sz(1.5) as u32);
                    $chart
                        .draw_series(DashedLineSeries::new(
                            vec![(x_at(0.0), $to_y(*y)), (x_at(1.0), $to_y(*y))],
                            sz(3.0),
                            sz(4.0),
                            style,
                        ))
                        .map_err(draw_err)?;
                    // Text just above the line, so the line does not strike it through.
                    $chart
                        .draw_series(std::iter::once(
                            EmptyElement::at((x_at(0.01), $to_y(*y)))
                                + Text::new(
                                    text.clone(),
                                    (0, -(sz(17.0) as i32)),
                                    font(14.0).color(&RGBColor(60, 60, 60)),
                                ),
                        ))
                        .map_err(draw_err)?;
                }
            }
            for ser in &p.series {
                let color = PALETTE[ser.color % PALETTE.len()];
                for band in &ser.bands {
                    let mut poly: Vec<(f64, f64)> = Vec::new();
                    let mut back: Vec<(f64, f64)> = Vec::new();
                    for i in (0..ser.x.len()).filter(|&i| x_in(ser.x[i])) {
                        if let (Some(a), Some(b)) = (clip(band.lo[i], yr), clip(band.hi[i], yr)) {
                            poly.push((ser.x[i], $to_y(b)));
                            back.push((ser.x[i], $to_y(a)));
                        }
                    }
                    back.reverse();
                    poly.extend(back);
                    if poly.len() >= 3 {
                        $chart
                            .draw_series(std::iter::once(Polygon::new(
                                poly,
                                color.mix(band.opacity).filled(),
                            )))
                            .map_err(draw_err)?;
                    }
                }
            }
            for ser in &p.series {
                let color = PALETTE[ser.color % PALETTE.len()];
                let style = color.stroke_width(sz(2.4) as u32);
                let pts: Vec<Option<(f64, f64)>> = ser
                    .x
                    .iter()
                    .zip(&ser.y)
                    .map(|(&x, &y)| {
                        if x_in(x) {
                            clip(y, yr).map(|y| (x, $to_y(y)))
                        } else {
                            None
                        }
                    })
                    .collect();
                for run in pts.split(|q| q.is_none()) {
                    let run: Vec<(f64, f64)> = run.iter().flatten().copied().collect();
                    if run.len() < 2 {
                        continue;
                    }
                    if ser.dashed {
                        $chart
                            .draw_series(DashedLineSeries::new(run, sz(8.0), sz(5.0), style))
                            .map_err(draw_err)?;
                    } else {
                        $chart
                            .draw_series(LineSeries::new(run, style))
                            .map_err(draw_err)?;
                    }
                }
            }
            for e in &p.legend {
                let color = e.color.map_or(BLACK, |c| PALETTE[c % PALETTE.len()]);
                let style = color.stroke_width(sz(2.4) as u32);
                let len = sz(26.0) as i32;
                let (d, g) = (sz(7.0), sz(4.0));
                let dashed = e.dashed;
                $chart
                    .draw_series(std::iter::empty::<PathElement<(f64, f64)>>())
                    .map_err(draw_err)?
                    .label(e.text.as_str())
                    .legend(move |(x, y)| {
                        if dashed {
                            DashedPathElement::new(vec![(x, y), (x + len, y)], d, g, style)
                                .into_dyn()
                        } else {
                            PathElement::new(vec![(x, y), (x + len, y)], style).into_dyn()
                        }
                    });
            }
            if !p.legend.is_empty() {
                $chart
                    .configure_series_labels()
                    .position(match p.legend_corner {
                        LegendCorner::LowerRight => SeriesLabelPosition::LowerRight,
                        LegendCorner::UpperRight => SeriesLabelPosition::UpperRight,
                    })
                    .margin(sz(6.0) as i32)
                    .legend_area_size(sz(34.0) as i32)
                    .label_font(font(13.0))
                    .background_style(WHITE.mix(0.88).filled())
                    .border_style(RGBColor(120, 120, 120).stroke_width(1))
                    .draw()
                    .map_err(draw_err)?;
            }
        }};
    }
    let (x0, x1) = p.x_range;
    let (y0, y1) = yr;
    match (p.log_x, p.log_y) {
        (false, false) => {
            let mut chart = builder
                .build_cartesian_2d(x0..x1, y0..y1)
                .map_err(draw_err)?;
            body!(chart, |y: f64| y);
        }
        (false, true) => {
            let mut chart = builder
                .build_cartesian_2d(
                    x0..x1,
                    (y0..y1).log_scale().with_key_points(log_ticks(y0, y1)),
                )
                .map_err(draw_err)?;
            body!(chart, |y: f64| y);
        }
        (true, false) => {
            let mut chart = builder
                .build_cartesian_2d(
                    (x0..x1).log_scale().with_key_points(log_ticks(x0, x1)),
                    y0..y1,
                )
                .map_err(draw_err)?;
            body!(chart, |y: f64| y);
        }
        (true, true) => {
            let mut chart = builder
                .build_cartesian_2d(
                    (x0..x1).log_scale().with_key_points(log_ticks(x0, x1)),
                    (y0..y1).log_scale().with_key_points(log_ticks(y0, y1)),
                )
                .map_err(draw_err)?;
            body!(chart, |y: f64| y);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::render_svg_string;

    fn panel(log_y: bool) -> BandPanel {
        let x: Vec<f64> = (0..20).map(|i| i as f64).collect();
        let y: Vec<f64> = x.iter().map(|v| 0.01 * (0.3 * v).exp()).collect();
        let lo = y.iter().map(|v| v * 0.5).collect();
        let mut hi: Vec<f64> = y.iter().map(|v| v * 2.0).collect();
        hi[19] = f64::INFINITY;
        BandPanel {
            title: "distance".into(),
            x_label: "t".into(),
            y_label: "‖x‖".into(),
            x_range: (0.0, 19.0),
            log_x: false,
            y_range: (1e-3, 10.0),
            log_y,
            series: vec![
                BandSeries {
                    color: 0,
                    dashed: false,
                    x: x.clone(),
                    y: y.clone(),
                    bands: vec![Band {
                        lo,
                        hi,
                        opacity: 0.18,
                    }],
                },
                BandSeries {
                    color: 1,
                    dashed: true,
                    x,
                    y: y.iter()
                        .map(|v| if *v > 1.0 { f64::NAN } else { *v })
                        .collect(),
                    bands: vec![],
                },
            ],
            hlines: vec![(1.0, "R".into())],
            legend: vec![
                LegendEntry {
                    text: "case A".into(),
                    color: Some(0),
                    dashed: false,
                },
                LegendEntry {
                    text: "SDE".into(),
                    color: None,
                    dashed: true,
                },
            ],
            legend_corner: LegendCorner::LowerRight,
        }
    }

    #[test]
    fn auto_range_covers_lines_and_bands_with_head_room() {
        let p = panel(false);
        let (lo, hi) = auto_y_range(&p.series, 0.3);
        // Band lower edge min is 0.005 (y = 0.01 at x = 0, halved); +∞ and NaN are skipped.
        let max_y = p.series[0].bands[0].hi[18];
        assert!(lo < 0.005 && lo > 0.005 - 0.1 * max_y, "{lo}");
        assert!(hi > max_y * 1.3 && hi < max_y * 1.4, "{hi} vs {max_y}");
        assert_eq!(auto_y_range(&[], 0.3), (0.0, 1.0));
    }

    #[test]
    fn svg_smoke_log_and_linear() {
        for log in [true, false] {
            let svg = render_svg_string((700, 480), |a| draw_bands(a, &panel(log))).unwrap();
            assert!(svg.contains("case A") && svg.contains("distance"));
        }
    }

    #[test]
    fn svg_smoke_log_x_skips_non_positive_x() {
        for log_y in [true, false] {
            let mut p = panel(log_y);
            p.log_x = true;
            p.x_range = (0.5, 19.0);
            let svg = render_svg_string((700, 480), |a| draw_bands(a, &p)).unwrap();
            assert!(svg.contains("case A"));
            p.x_range = (0.0, 19.0);
            assert!(render_svg_string((700, 480), |a| draw_bands(a, &p)).is_err());
        }
    }

    #[test]
    fn bad_range_is_an_error() {
        let mut p = panel(true);
        p.y_range = (0.0, 1.0);
        assert!(render_svg_string((700, 480), |a| draw_bands(a, &p)).is_err());
    }
}
