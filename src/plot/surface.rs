//! A 2-D surface as a heat map with sample paths overlaid (the trajectories study's second
//! figure). The surface `F` is evaluated on an `n × n` grid; cells are coloured by
//! `log₁₀(1 + (F − min F)/s)` with `s` the 5 % quantile of `F − min F` over the grid (a scale
//! that shows both the basins and the walls) through a viridis-like map, and a colour bar on
//! the right gives the values of `F − min F`. Paths are polylines; each path may be solid or
//! dashed and has its start marked by a small circle.

use plotters::coord::Shift;
use plotters::prelude::*;

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
    let font = |v: f64| ("sans-serif", (v * s).round()).into_font();
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
    for path in &p.paths {
        let style = path.colour.stroke_width((1.5 * s).round().max(1.0) as u32);
        let pts: Vec<(f64, f64)> = path
            .points
            .iter()
            .copied()
            .filter(|q| q.0.is_finite() && q.1.is_finite())
            .map(|(x, y)| (x.clamp(x0, x1), y.clamp(y0, y1)))
            .collect();
        if pts.is_empty() {
            continue;
        }
        if path.dashed {
            chart
                .draw_series(DashedLineSeries::new(
                    pts.clone(),
                    (6.0 * s) as u32,
                    (4.0 * s) as u32,
                    style,
                ))
                .map_err(draw_err)?;
        } else {
            // Segment by segment: a thick polyline with sharp turns makes the bitmap backend
            // draw long miter spikes.
            chart
                .draw_series(
                    pts.windows(2)
                        .map(|w| PathElement::new(vec![w[0], w[1]], style)),
                )
                .map_err(draw_err)?;
        }
        if inside(&pts[0]) {
            chart
                .draw_series(std::iter::once(Circle::new(
                    pts[0],
                    (3.0 * s) as u32,
                    path.colour.filled(),
                )))
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

    // Colour bar: F − min F on the transformed scale, labelled in original units.
    let mut cb = ChartBuilder::on(&bar)
        .margin_top((30.0 * s) as u32)
        .margin_bottom((40.0 * s) as u32)
        .margin_left((8.0 * s) as u32)
        .margin_right((12.0 * s) as u32)
        // Tick labels on the right of the bar, anchored at the axis and growing away from it
        // (right-aligned labels on the left were clipped with the bundled font's metrics).
        .right_y_label_area_size((52.0 * s) as u32)
        .build_cartesian_2d(0.0..1.0, 0.0..vmax)
        .map_err(draw_err)?;
    let inv = |t: f64| (10f64.powf(t) - 1.0) * scale;
    // The bar first, then the axis and labels on top of it.
    let steps = 60;
    cb.draw_series((0..steps).map(|k| {
        let a = vmax * k as f64 / steps as f64;
        let b = vmax * (k + 1) as f64 / steps as f64;
        Rectangle::new([(0.0, a), (1.0, b)], viridis(a / vmax).filled())
    }))
    .map_err(draw_err)?;
    cb.configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_labels(6)
        .y_label_formatter(&|t: &f64| {
            let v = inv(*t);
            if v == 0.0 {
                "0".into()
            } else if v.abs() >= 100.0 || v.abs() < 0.01 {
                format!("{v:.0e}")
            } else {
                format!("{v:.2}")
            }
        })
        .y_desc("F − min F")
        .label_style(font(10.0))
        .axis_desc_style(font(11.0))
        .draw()
        .map_err(draw_err)?;
    Ok(())
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
    }
}
