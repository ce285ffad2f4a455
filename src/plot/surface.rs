//! A 2-D surface as a heat map with sample paths overlaid (the trajectories study's second
//! figure). The surface `F` is evaluated on an `n × n` grid; cells are coloured by
//! `log₁₀(1 + (F − min F)/s)` with `s` the 5 % quantile of `F − min F` over the grid (a
//! non-linear scale that shows both the basins and the walls) through a viridis-like map. The
//! colour bar on the right is ticked at round values of `F − min F` and its label names the
//! transform and `s`. Paths are polylines, solid or dashed, drawn point by point as given (no
//! thinning); a path's start is a circle and its end a square (both with a black edge), and a
//! path is drawn only inside the frame (it stops where it leaves, instead of running along
//! the edge).

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{draw_err, try_ensure_fonts};
use crate::Result;

/// Viridis anchor colours (matplotlib's map at 0, 1/8, …, 1).
const VIRIDIS: [(u8, u8, u8); 9] = [
    (68, 1, 84),
    (71, 44, 122),
    (59, 81, 139),
    (44, 113, 142),
    (33, 144, 141),
    (39, 173, 129),
    (92, 200, 99),
    (170, 220, 50),
    (253, 231, 37),
];

/// Viridis colour at `v ∈ [0, 1]` (clamped).
pub fn viridis(v: f64) -> RGBColor {
    let v = if v.is_finite() {
        v.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let x = v * (VIRIDIS.len() - 1) as f64;
    let i = (x.floor() as usize).min(VIRIDIS.len() - 2);
    let fr = x - i as f64;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    let m = |p: u8, q: u8| (p as f64 * (1.0 - fr) + q as f64 * fr).round() as u8;
    RGBColor(m(a.0, b.0), m(a.1, b.1), m(a.2, b.2))
}

/// A path to overlay.
#[derive(Debug, Clone)]
pub struct SurfacePath {
    /// Points `(x, y)`.
    pub points: Vec<(f64, f64)>,
    /// Colour.
    pub colour: RGBColor,
    /// Dashed line.
    pub dashed: bool,
}

/// A heat-map panel.
pub struct SurfacePanel<'a> {
    /// Caption.
    pub title: &'a str,
    /// Horizontal axis label.
    pub x_label: &'a str,
    /// Vertical axis label.
    pub y_label: &'a str,
    /// `(x_min, x_max)`.
    pub x_range: (f64, f64),
    /// `(y_min, y_max)`.
    pub y_range: (f64, f64),
    /// Grid resolution per axis.
    pub grid: usize,
    /// The surface.
    pub surface: &'a dyn Fn(f64, f64) -> f64,
    /// Paths.
    pub paths: Vec<SurfacePath>,
    /// Legend entries `(text, colour, dashed)`.
    pub legend: Vec<(String, RGBColor, bool)>,
}

/// Draws a heat map with overlaid paths and a colour bar.
pub fn draw_surface_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    p: &SurfacePanel,
) -> Result<()> {
    try_ensure_fonts()?;
    let (w, _) = area.dim_in_pixel();
    let s = (w as f64 / 500.0).clamp(0.5, 3.0);
    let font = |v: f64| super::font(v * s);
    let n = p.grid.max(2);
    let (x0, x1) = p.x_range;
    let (y0, y1) = p.y_range;
    let dx = (x1 - x0) / n as f64;
    let dy = (y1 - y0) / n as f64;
    let mut vals = Vec::with_capacity(n * n);
    for i in 0..n {
        for j in 0..n {
            vals.push((p.surface)(
                x0 + (i as f64 + 0.5) * dx,
                y0 + (j as f64 + 0.5) * dy,
            ));
        }
    }
    let fmin = vals
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(f64::INFINITY, f64::min);
    let mut rel: Vec<f64> = vals
        .iter()
        .filter(|v| v.is_finite())
        .map(|v| v - fmin)
        .collect();
    rel.sort_by(|a, b| a.total_cmp(b));
    let scale = rel
        .get(rel.len() / 20)
        .copied()
        .filter(|v| *v > 0.0)
        .unwrap_or(1.0);
    let tr = |v: f64| (1.0 + (v - fmin).max(0.0) / scale).log10();
    let vmax = rel.last().map(|&v| tr(v + fmin)).unwrap_or(1.0).max(1e-12);

    let (main, bar) = area.split_horizontally(w - (95.0 * s) as u32);
    let mut chart = ChartBuilder::on(&main)
        .caption(p.title, font(15.0))
        .margin((6.0 * s) as u32)
        .x_label_area_size((34.0 * s) as u32)
        .y_label_area_size((44.0 * s) as u32)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(draw_err)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc(p.x_label)
        .y_desc(p.y_label)
        .label_style(font(11.0))
        .axis_desc_style(font(12.0))
        .draw()
        .map_err(draw_err)?;
    chart
        .draw_series((0..n).flat_map(|i| {
            let vals = &vals;
            (0..n).map(move |j| {
                let v = vals[i * n + j];
                let c = viridis(tr(v) / vmax);
                Rectangle::new(
                    [
                        (x0 + i as f64 * dx, y0 + j as f64 * dy),
                        (x0 + (i + 1) as f64 * dx, y0 + (j + 1) as f64 * dy),
                    ],
                    c.filled(),
                )
            })
        }))
        .map_err(draw_err)?;
    let inside = |&(x, y): &(f64, f64)| x >= x0 && x <= x1 && y >= y0 && y <= y1;
    let edge = BLACK.stroke_width(1);
    let r = (3.5 * s).round().max(2.0) as i32;
    for path in &p.paths {
        // Thin lines: the paths are drawn at every step and overlap a lot.
        let style = path.colour.stroke_width((0.8 * s).round().max(1.0) as u32);
        // Runs of consecutive points inside the frame (a non-finite point also ends a run).
        let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for q in &path.points {
            if q.0.is_finite() && q.1.is_finite() && inside(q) {
                runs.last_mut().unwrap().push(*q);
            } else if !runs.last().unwrap().is_empty() {
                runs.push(Vec::new());
            }
        }
        for run in runs.iter().filter(|r| r.len() >= 2) {
            if path.dashed {
                chart
                    .draw_series(DashedLineSeries::new(
                        run.clone(),
                        (6.0 * s) as u32,
                        (4.0 * s) as u32,
                        style,
                    ))
                    .map_err(draw_err)?;
            } else {
                // Segment by segment: a thick polyline with sharp turns makes the bitmap
                // backend draw long miter spikes.
                chart
                    .draw_series(
                        run.windows(2)
                            .map(|w| PathElement::new(vec![w[0], w[1]], style)),
                    )
                    .map_err(draw_err)?;
            }
        }
    }
    // Start (circle) and end (square) markers on top of every path.
    for path in &p.paths {
        let first = path.points.first().filter(|q| inside(q));
        let last = path
            .points
            .last()
            .filter(|q| q.0.is_finite() && q.1.is_finite() && inside(q));
        if let Some(&q) = first {
            chart
                .draw_series(std::iter::once(
                    EmptyElement::at(q)
                        + Circle::new((0, 0), r, path.colour.filled())
                        + Circle::new((0, 0), r, edge),
                ))
                .map_err(draw_err)?;
        }
        if let Some(&q) = last {
            chart
                .draw_series(std::iter::once(
                    EmptyElement::at(q)
                        + Rectangle::new([(-r, -r), (r, r)], path.colour.filled())
                        + Rectangle::new([(-r, -r), (r, r)], edge),
                ))
                .map_err(draw_err)?;
        }
    }
    for (text, colour, dashed) in &p.legend {
        let style = colour.stroke_width((2.0 * s) as u32);
        let dashed = *dashed;
        chart
            .draw_series(std::iter::once(PathElement::new(
                Vec::<(f64, f64)>::new(),
                style,
            )))
            .map_err(draw_err)?
            .label(text.clone())
            .legend(move |(x, y)| {
                if dashed {
                    PathElement::new(vec![(x, y), (x + 7, y)], style)
                } else {
                    PathElement::new(vec![(x, y), (x + 20, y)], style)
                }
            });
    }
    if !p.legend.is_empty() {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .label_font(font(11.0))
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(draw_err)?;
    }

    // Colour bar: F − min F on the transformed scale, ticked at round values of F − min F.
    let inv = |t: f64| (10f64.powf(t) - 1.0) * scale;
    let vtop = inv(vmax);
    let mut ticks = vec![0.0];
    for k in -6..=12 {
        for m in [1.0, 2.0, 5.0] {
            let v = m * 10f64.powi(k);
            let t = (1.0 + v / scale).log10();
            // At least 1/12 of the bar between labels.
            if v <= vtop && t - ticks.last().copied().unwrap_or(0.0) >= vmax / 12.0 {
                ticks.push(t);
            }
        }
    }
    let mut cb = ChartBuilder::on(&bar)
        .margin_top((30.0 * s) as u32)
        .margin_bottom((40.0 * s) as u32)
        .margin_left((8.0 * s) as u32)
        .margin_right((4.0 * s) as u32)
        // Tick labels on the right of the bar, anchored at the axis and growing away from it
        // (right-aligned labels on the left were clipped with the bundled font's metrics).
        .right_y_label_area_size((60.0 * s) as u32)
        .build_cartesian_2d(0f64..1f64, 0f64..vmax)
        .map_err(draw_err)?;
    // The bar first, then the axis and labels on top of it.
    let steps = 60;
    cb.draw_series((0..steps).map(|k| {
        let a = vmax * k as f64 / steps as f64;
        let b = vmax * (k + 1) as f64 / steps as f64;
        Rectangle::new([(0.0, a), (1.0, b)], viridis(a / vmax).filled())
    }))
    .map_err(draw_err)?;
    let desc = format!("F − min F (colour: log₁₀(1 + (F − min F)/{}))", sig2(scale));
    cb.configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_labels(0)
        .y_desc(desc)
        .axis_desc_style(font(11.0))
        .draw()
        .map_err(draw_err)?;
    // Ticks at the round values, drawn by hand (plotters' mesh ticks are evenly spaced in t).
    let (bx, by) = bar.get_base_pixel();
    let style = TextStyle::from(font(10.0)).pos(Pos::new(HPos::Left, VPos::Center));
    for t in ticks {
        let (px, py) = cb.backend_coord(&(1.0, t));
        let (px, py) = (px - bx, py - by);
        let len = (4.0 * s).round() as i32;
        bar.draw(&PathElement::new(vec![(px, py), (px + len, py)], BLACK))
            .map_err(draw_err)?;
        bar.draw(&Text::new(
            tick_text(inv(t)),
            (px + len + 3, py),
            style.clone(),
        ))
        .map_err(draw_err)?;
    }
    Ok(())
}

/// `v` with two significant digits (`0.052`, `1.3`, `240`).
fn sig2(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let digits = (1 - v.abs().log10().floor() as i32).max(0) as usize;
    format!("{v:.digits$}")
}

/// A round tick value without float noise: `0`, `0.05`, `2`, `500`, `1e4`.
fn tick_text(v: f64) -> String {
    if v.abs() < 1e-12 {
        return "0".into();
    }
    if v.abs() >= 1e4 || v.abs() < 1e-3 {
        return format!("{v:.0e}");
    }
    let s = format!("{v:.4}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viridis_endpoints() {
        assert_eq!(viridis(0.0), RGBColor(68, 1, 84));
        assert_eq!(viridis(1.0), RGBColor(253, 231, 37));
        assert_eq!(viridis(f64::NAN), RGBColor(68, 1, 84));
    }

    #[test]
    fn tick_and_scale_texts() {
        assert_eq!(tick_text(0.0), "0");
        assert_eq!(tick_text(0.05000000001), "0.05");
        assert_eq!(tick_text(2.0), "2");
        assert_eq!(tick_text(20000.0), "2e4");
        assert_eq!(sig2(0.05234), "0.052");
        assert_eq!(sig2(1.34), "1.3");
        assert_eq!(sig2(240.0), "240");
    }

    #[test]
    fn surface_panel_renders_to_svg() {
        let f = |x: f64, y: f64| x * x + 10.0 * y * y;
        let p = SurfacePanel {
            title: "quadratic",
            x_label: "x₀",
            y_label: "x₁",
            x_range: (-1.0, 1.0),
            y_range: (-1.0, 1.0),
            grid: 20,
            surface: &f,
            paths: vec![SurfacePath {
                points: vec![(0.5, 0.5), (0.2, 0.1), (5.0, 0.0)],
                colour: WHITE,
                dashed: true,
            }],
            legend: vec![("discrete".into(), WHITE, false)],
        };
        let svg =
            crate::plot::render_svg_string((500, 400), |a| draw_surface_panel(a, &p)).unwrap();
        assert!(svg.contains("quadratic") && svg.contains("discrete") && svg.contains("F − min F"));
        // The colour bar names the non-linear transform.
        assert!(svg.contains("log₁₀(1 + (F − min F)/"), "colour bar label");
    }
}
