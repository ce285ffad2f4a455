//! Time-series panels with bands (DESIGN.md item 8, like an `EnsembleSummary`): for each
//! series, a light band between two quantiles (e.g. 5 % and 95 %), a darker band for the
//! confidence interval of the mean, and the mean as a line (solid or dashed). Non-finite values
//! break lines and bands.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{draw_err, try_ensure_fonts};
use crate::Result;

/// One series of a band panel.
#[derive(Debug, Clone)]
pub struct BandSeries {
    /// Legend text (empty: no legend entry).
    pub label: String,
    /// Colour.
    pub colour: RGBColor,
    /// Dashed mean line.
    pub dashed: bool,
    /// Mean per time.
    pub mean: Vec<f64>,
    /// CI of the mean.
    pub ci: (Vec<f64>, Vec<f64>),
    /// Quantile band.
    pub quantiles: (Vec<f64>, Vec<f64>),
}

/// A panel: times on the horizontal axis, one or more series.
#[derive(Debug, Clone)]
pub struct BandPanel<'a> {
    /// Caption.
    pub title: &'a str,
    /// Horizontal axis label.
    pub x_label: &'a str,
    /// Vertical axis label.
    pub y_label: &'a str,
    /// Times.
    pub times: &'a [f64],
    /// Series.
    pub series: Vec<BandSeries>,
    /// Draw the legend.
    pub legend: bool,
}

fn finite_runs(times: &[f64], a: &[f64], b: &[f64]) -> Vec<Vec<(f64, f64, f64)>> {
    let mut runs = vec![Vec::new()];
    for ((&t, &lo), &hi) in times.iter().zip(a).zip(b) {
        if lo.is_finite() && hi.is_finite() {
            runs.last_mut().unwrap().push((t, lo, hi));
        } else if !runs.last().unwrap().is_empty() {
            runs.push(Vec::new());
        }
    }
    runs.retain(|r| r.len() > 1);
    runs
}

/// Draws one band panel on `area`.
pub fn draw_band_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &BandPanel,
) -> Result<()> {
    try_ensure_fonts()?;
    let (w, _) = area.dim_in_pixel();
    let s = (w as f64 / 450.0).clamp(0.5, 3.0);
    let font = |v: f64| ("sans-serif", (v * s).round()).into_font();
    let t0 = panel.times.first().copied().unwrap_or(0.0);
    let t1 = panel.times.last().copied().unwrap_or(1.0).max(t0 + 1e-12);
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for ser in &panel.series {
        for v in ser
            .quantiles
            .0
            .iter()
            .chain(&ser.quantiles.1)
            .chain(&ser.mean)
        {
            if v.is_finite() {
                lo = lo.min(*v);
                hi = hi.max(*v);
            }
        }
    }
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    let pad = 0.05 * (hi - lo).max(1e-9 * (1.0 + hi.abs()));
    let top_room = if panel.legend { 0.3 * (hi - lo) } else { 0.0 };
    let mut chart = ChartBuilder::on(area)
        .caption(panel.title, font(14.0))
        .margin((6.0 * s) as u32)
        .margin_right((16.0 * s) as u32)
        .x_label_area_size((32.0 * s) as u32)
        .y_label_area_size((50.0 * s) as u32)
        .build_cartesian_2d(t0..t1, (lo - pad)..(hi + pad + top_room))
        .map_err(draw_err)?;
    chart
        .configure_mesh()
        .x_desc(panel.x_label)
        .y_desc(panel.y_label)
        .x_labels(6)
        .y_labels(6)
        .label_style(font(11.0))
        .axis_desc_style(font(12.0))
        .light_line_style(WHITE)
        .draw()
        .map_err(draw_err)?;
    for ser in &panel.series {
        let c = ser.colour;
        for (band, alpha) in [(&ser.quantiles, 0.15), (&ser.ci, 0.45)] {
            for run in finite_runs(panel.times, &band.0, &band.1) {
                let mut poly: Vec<(f64, f64)> = run.iter().map(|&(t, l, _)| (t, l)).collect();
                poly.extend(run.iter().rev().map(|&(t, _, h)| (t, h)));
                chart
                    .draw_series(std::iter::once(Polygon::new(poly, c.mix(alpha).filled())))
                    .map_err(draw_err)?;
            }
        }
        let runs = finite_runs(panel.times, &ser.mean, &ser.mean);
        let style = c.stroke_width((2.0 * s).round().max(1.0) as u32);
        let mut labelled = false;
        for run in runs {
            let pts: Vec<(f64, f64)> = run.iter().map(|&(t, m, _)| (t, m)).collect();
            let anno = if ser.dashed {
                chart
                    .draw_series(DashedLineSeries::new(
                        pts,
                        (7.0 * s) as u32,
                        (4.0 * s) as u32,
                        style,
                    ))
                    .map_err(draw_err)?
            } else {
                chart
                    .draw_series(LineSeries::new(pts, style))
                    .map_err(draw_err)?
            };
            if !labelled && !ser.label.is_empty() {
                labelled = true;
                let dashed = ser.dashed;
                anno.label(ser.label.clone()).legend(move |(x, y)| {
                    if dashed {
                        PathElement::new(vec![(x, y), (x + 7, y)], style)
                    } else {
                        PathElement::new(vec![(x, y), (x + 20, y)], style)
                    }
                });
            }
        }
    }
    if panel.legend {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .label_font(font(11.0))
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(draw_err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::PALETTE;

    #[test]
    fn band_panel_renders_to_svg() {
        let times = [0.0, 1.0, 2.0, 3.0];
        let ser = |dashed| BandSeries {
            label: if dashed {
                "SDE".into()
            } else {
                "discrete".into()
            },
            colour: PALETTE[dashed as usize],
            dashed,
            mean: vec![1.0, 0.5, f64::NAN, 0.2],
            ci: (vec![0.9, 0.4, 0.2, 0.1], vec![1.1, 0.6, 0.4, 0.3]),
            quantiles: (vec![0.5, 0.1, 0.0, 0.0], vec![1.5, 0.9, 0.8, 0.7]),
        };
        let p = BandPanel {
            title: "f(x)",
            x_label: "t",
            y_label: "f",
            times: &times,
            series: vec![ser(false), ser(true)],
            legend: true,
        };
        let svg = crate::plot::render_svg_string((450, 300), |a| draw_band_panel(a, &p)).unwrap();
        assert!(svg.contains("discrete") && svg.contains("SDE") && svg.contains("<polygon"));
    }
}
