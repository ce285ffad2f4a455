//! Phase-diagram figure: a heat map of a fraction in `[0, 1]` on log–log axes, with predicted
//! boundary curves and simulated boundary points (with interval whiskers) drawn on top.
//!
//! Cells: the grid values `xs`, `ys` (increasing, positive) are cell centres; cell edges are the
//! geometric midpoints, and the outer edges lie half a spacing (in log) beyond the end points.
//! Colour: a single-hue sequential ramp from near-white (0) to dark blue (1), readable in
//! greyscale and under colour blindness; non-finite values are drawn grey. Predicted boundaries
//! are orange lines (dashed ones for secondary curves) with a thin black edge so they stay
//! visible on both ends of the ramp; simulated ½-crossings are white circles with black edges
//! and horizontal whiskers for their intervals (a whisker end outside the grid is drawn to the
//! plot edge). A panel's `note` lines are written under it (what a drawn line means, when a
//! legend entry is too short to say it), under a one-row legend that then replaces the one
//! inside the panel. [`draw_heatmaps`] lays several panels out in a row with one shared colour bar.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{draw_err, try_ensure_fonts};
use crate::Result;

/// A boundary curve in data coordinates.
#[derive(Debug, Clone, PartialEq)]
pub struct BoundaryCurve {
    /// Legend text.
    pub label: String,
    /// Points `(x, y)`.
    pub points: Vec<(f64, f64)>,
    /// Dashed (secondary) instead of solid.
    pub dashed: bool,
}

/// A simulated boundary point: at row `y`, crossing `x` with interval `[lo, hi]` (`None` =
/// beyond the grid on that side).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CrossingPoint {
    /// Row value.
    pub y: f64,
    /// Crossing.
    pub x: f64,
    /// Lower end.
    pub lo: Option<f64>,
    /// Upper end.
    pub hi: Option<f64>,
}

/// One heat-map panel.
#[derive(Debug, Clone)]
pub struct HeatmapPanel {
    /// Panel title.
    pub title: String,
    /// Horizontal axis text.
    pub x_label: String,
    /// Vertical axis text.
    pub y_label: String,
    /// Column centres (increasing, positive).
    pub xs: Vec<f64>,
    /// Row centres (increasing, positive).
    pub ys: Vec<f64>,
    /// Values, row-major (`ys` outer): `values[i * xs.len() + j]`.
    pub values: Vec<f64>,
    /// Predicted boundaries.
    pub curves: Vec<BoundaryCurve>,
    /// Simulated boundary points.
    pub crossings: Vec<CrossingPoint>,
    /// Legend text of the crossing markers.
    pub crossing_label: String,
    /// Where the legend goes (choose a corner without boundary curves).
    pub legend_corner: SeriesLabelPosition,
    /// Lines of text under the panel (below the axis label), e.g. what a predicted line means;
    /// empty: none. With a note the legend is drawn under the panel too, above the note
    /// (`legend_corner` is then unused).
    pub note: Vec<String>,
}

/// Colour of a fraction `v ∈ [0, 1]` (near-white → dark blue).
pub fn ramp(v: f64) -> RGBColor {
    if !v.is_finite() {
        return RGBColor(160, 160, 160);
    }
    let v = v.clamp(0.0, 1.0);
    const STOPS: [(f64, (f64, f64, f64)); 4] = [
        (0.0, (247.0, 251.0, 255.0)),
        (0.35, (158.0, 202.0, 225.0)),
        (0.7, (49.0, 130.0, 189.0)),
        (1.0, (8.0, 48.0, 107.0)),
    ];
    for w in STOPS.windows(2) {
        let ((a, ca), (b, cb)) = (w[0], w[1]);
        if v <= b {
            let t = (v - a) / (b - a);
            let mix = |p: f64, q: f64| (p + t * (q - p)).round() as u8;
            return RGBColor(mix(ca.0, cb.0), mix(ca.1, cb.1), mix(ca.2, cb.2));
        }
    }
    RGBColor(8, 48, 107)
}

/// Cell edges of increasing positive centres (geometric midpoints, half a spacing outside).
fn edges(c: &[f64]) -> Vec<f64> {
    let l: Vec<f64> = c.iter().map(|v| v.ln()).collect();
    let n = l.len();
    if n == 1 {
        return vec![(l[0] - 0.5).exp(), (l[0] + 0.5).exp()];
    }
    let mut e = Vec::with_capacity(n + 1);
    e.push((l[0] - 0.5 * (l[1] - l[0])).exp());
    for i in 0..n - 1 {
        e.push((0.5 * (l[i] + l[i + 1])).exp());
    }
    e.push((l[n - 1] + 0.5 * (l[n - 1] - l[n - 2])).exp());
    e
}

fn tick_text(v: f64) -> String {
    if !(0.001..1000.0).contains(&v) {
        format!("{v:.0e}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// 1-2-5 tick values inside `[a, b]`.
fn ticks(a: f64, b: f64) -> Vec<f64> {
    let mut out = Vec::new();
    let mut k = a.log10().floor() as i32 - 1;
    while 10f64.powi(k) <= b * 1.0001 {
        for m in [1.0, 2.0, 5.0] {
            let v = m * 10f64.powi(k);
            if v >= a * 0.9999 && v <= b * 1.0001 {
                out.push(v);
            }
        }
        k += 1;
    }
    out
}

/// Draws one panel on `area`.
pub fn draw_heatmap<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    p: &HeatmapPanel,
) -> Result<()> {
    try_ensure_fonts()?;
    let (w, h) = area.dim_in_pixel();
    let s = (w as f64 / 600.0).min(h as f64 / 560.0).clamp(0.4, 4.0);
    let sz = |v: f64| (v * s).round().max(1.0);
    let font = |v: f64| super::font(v * s);
    if p.xs.is_empty() || p.ys.is_empty() || p.values.len() != p.xs.len() * p.ys.len() {
        return Err(crate::Error::Plot(format!(
            "heat map {:?}: {} values for a {}×{} grid",
            p.title,
            p.values.len(),
            p.ys.len(),
            p.xs.len()
        )));
    }
    // With a note, the legend goes under the panel too (one row: the lines, the crossings),
    // followed by the note's lines, so nothing covers a cell or a crossing.
    let line_h = (1.45 * super::font_size(15.0 * s)) as u32;
    let (area, note_area) = if p.note.is_empty() {
        (area.clone(), None)
    } else {
        let items = p.curves.len() + usize::from(!p.crossings.is_empty());
        let nh = line_h * (p.note.len() + items) as u32 + sz(8.0) as u32;
        let (a, b) = area.split_vertically(h.saturating_sub(nh));
        (a, Some(b))
    };
    let orange = RGBColor(230, 159, 0);
    let r = sz(5.5) as i32;
    let whisker = BLACK.stroke_width(sz(1.8) as u32);
    if let Some(na) = &note_area {
        let (nw, _) = na.dim_in_pixel();
        let left = TextStyle::from(super::font(15.0 * s)).pos(Pos::new(HPos::Left, VPos::Center));
        // One legend entry per row, left-aligned with the plotting area.
        let x = sz(82.0) as i32;
        let seg = sz(24.0) as i32;
        let gap = sz(8.0) as i32;
        let row_y = |i: usize| (i as u32 * line_h + line_h / 2) as i32 + sz(2.0) as i32;
        for (i, c) in p.curves.iter().enumerate() {
            let y = row_y(i);
            let edge = BLACK.stroke_width(sz(5.5) as u32);
            let line = orange.stroke_width(sz(3.0) as u32);
            na.draw(&PathElement::new(vec![(x, y), (x + seg, y)], edge))
                .map_err(draw_err)?;
            na.draw(&PathElement::new(vec![(x, y), (x + seg, y)], line))
                .map_err(draw_err)?;
            na.draw(&Text::new(
                c.label.clone(),
                (x + seg + gap, y),
                left.clone(),
            ))
            .map_err(draw_err)?;
        }
        if !p.crossings.is_empty() {
            let y = row_y(p.curves.len());
            na.draw(&PathElement::new(vec![(x, y), (x + seg, y)], whisker))
                .map_err(draw_err)?;
            na.draw(&Circle::new((x + seg / 2, y), r, WHITE.filled()))
                .map_err(draw_err)?;
            na.draw(&Circle::new(
                (x + seg / 2, y),
                r,
                BLACK.stroke_width(sz(1.5) as u32),
            ))
            .map_err(draw_err)?;
            na.draw(&Text::new(
                p.crossing_label.clone(),
                (x + seg + gap, y),
                left.clone(),
            ))
            .map_err(draw_err)?;
        }
        let items = p.curves.len() + usize::from(!p.crossings.is_empty());
        let style = super::font(15.0 * s)
            .color(&RGBColor(40, 40, 40))
            .pos(Pos::new(HPos::Center, VPos::Top));
        for (i, line) in p.note.iter().enumerate() {
            na.draw(&Text::new(
                line.clone(),
                (
                    nw as i32 / 2,
                    ((i + items) as u32 * line_h) as i32 + sz(6.0) as i32,
                ),
                style.clone(),
            ))
            .map_err(draw_err)?;
        }
    }
    let area = &area;
    let ex = edges(&p.xs);
    let ey = edges(&p.ys);
    let (x0, x1) = (ex[0], *ex.last().unwrap());
    let (y0, y1) = (ey[0], *ey.last().unwrap());
    let fmt = |v: &f64| tick_text(*v);
    let mut chart = ChartBuilder::on(area)
        .margin(sz(10.0) as i32)
        .caption(&p.title, font(21.0))
        .x_label_area_size(sz(58.0) as u32)
        .y_label_area_size(sz(72.0) as u32)
        .build_cartesian_2d(
            (x0..x1).log_scale().with_key_points(ticks(x0, x1)),
            (y0..y1).log_scale().with_key_points(ticks(y0, y1)),
        )
        .map_err(draw_err)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc(p.x_label.as_str())
        .y_desc(p.y_label.as_str())
        .axis_desc_style(font(19.0))
        .label_style(font(16.0))
        .x_label_formatter(&fmt)
        .y_label_formatter(&fmt)
        .axis_style(BLACK.stroke_width(sz(1.2) as u32))
        .draw()
        .map_err(draw_err)?;
    let nx = p.xs.len();
    chart
        .draw_series(p.ys.iter().enumerate().flat_map(|(i, _)| {
            let (ex, ey) = (&ex, &ey);
            (0..nx).map(move |j| {
                Rectangle::new(
                    [(ex[j], ey[i]), (ex[j + 1], ey[i + 1])],
                    ramp(p.values[i * nx + j]).filled(),
                )
            })
        }))
        .map_err(draw_err)?;
    // Predicted boundaries: black edge under an orange line.
    let inside = |&(x, y): &(f64, f64)| x >= x0 && x <= x1 && y >= y0 && y <= y1;
    for c in &p.curves {
        let pts: Vec<(f64, f64)> = c.points.iter().copied().filter(inside).collect();
        if pts.len() < 2 {
            continue;
        }
        let edge = BLACK.stroke_width(sz(5.5) as u32);
        let line = orange.stroke_width(sz(3.0) as u32);
        if c.dashed {
            chart
                .draw_series(DashedLineSeries::new(pts.clone(), sz(10.0), sz(6.0), edge))
                .map_err(draw_err)?;
            chart
                .draw_series(DashedLineSeries::new(pts, sz(10.0), sz(6.0), line))
                .map_err(draw_err)?
                .label(c.label.as_str())
                .legend(move |(x, y)| {
                    EmptyElement::at((x, y))
                        + PathElement::new(vec![(0, 0), (sz(22.0) as i32, 0)], edge)
                        + PathElement::new(vec![(0, 0), (sz(22.0) as i32, 0)], line)
                });
        } else {
            chart
                .draw_series(LineSeries::new(pts.clone(), edge))
                .map_err(draw_err)?;
            chart
                .draw_series(LineSeries::new(pts, line))
                .map_err(draw_err)?
                .label(c.label.as_str())
                .legend(move |(x, y)| {
                    EmptyElement::at((x, y))
                        + PathElement::new(vec![(0, 0), (sz(22.0) as i32, 0)], edge)
                        + PathElement::new(vec![(0, 0), (sz(22.0) as i32, 0)], line)
                });
        }
    }
    // Simulated crossings.
    let shown: Vec<&CrossingPoint> = p
        .crossings
        .iter()
        .filter(|c| c.x.is_finite() && c.x >= x0 && c.x <= x1 && c.y >= y0 && c.y <= y1)
        .collect();
    chart
        .draw_series(shown.iter().map(|c| {
            let lo = c.lo.unwrap_or(x0).clamp(x0, x1);
            let hi = c.hi.unwrap_or(x1).clamp(x0, x1);
            PathElement::new(vec![(lo, c.y), (hi, c.y)], whisker)
        }))
        .map_err(draw_err)?;
    let anno = chart
        .draw_series(shown.iter().map(|c| {
            EmptyElement::at((c.x, c.y))
                + Circle::new((0, 0), r, WHITE.filled())
                + Circle::new((0, 0), r, BLACK.stroke_width(sz(1.5) as u32))
        }))
        .map_err(draw_err)?;
    if !shown.is_empty() {
        anno.label(p.crossing_label.as_str()).legend(move |(x, y)| {
            EmptyElement::at((x + sz(11.0) as i32, y))
                + PathElement::new(vec![(-sz(11.0) as i32, 0), (sz(11.0) as i32, 0)], whisker)
                + Circle::new((0, 0), r, WHITE.filled())
                + Circle::new((0, 0), r, BLACK.stroke_width(sz(1.5) as u32))
        });
    }
    if note_area.is_some() {
        return Ok(());
    }
    chart
        .configure_series_labels()
        .position(p.legend_corner.clone())
        .margin(sz(6.0) as i32)
        .legend_area_size(sz(30.0) as i32)
        .label_font(font(14.0))
        .background_style(WHITE.mix(0.9).filled())
        .border_style(RGBColor(120, 120, 120).stroke_width(1))
        .draw()
        .map_err(draw_err)?;
    Ok(())
}

/// Draws `panels` on a grid of `cols` columns (row by row) with a shared vertical colour bar
/// (0–1) labelled `bar_label`, under an overall `title`.
pub fn draw_heatmaps<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    panels: &[HeatmapPanel],
    cols: usize,
    bar_label: &str,
) -> Result<()> {
    try_ensure_fonts()?;
    let (w, h) = area.dim_in_pixel();
    let cols = cols.clamp(1, panels.len().max(1));
    let rows = panels.len().div_ceil(cols).max(1);
    let s = (h as f64 / rows as f64 / 620.0).clamp(0.4, 4.0);
    let sz = |v: f64| (v * s).round().max(1.0);
    let area = if title.is_empty() {
        area.clone()
    } else {
        crate::plot::titled(area, title, 24.0 * s).map_err(draw_err)?
    };
    let bar_w = sz(110.0) as u32;
    let (main, bar) = area.split_horizontally(w.saturating_sub(bar_w));
    if !panels.is_empty() {
        let cells = main.split_evenly((rows, cols));
        for (c, p) in cells.iter().zip(panels) {
            draw_heatmap(c, p)?;
        }
    }
    // Colour bar.
    let (bw, bh) = bar.dim_in_pixel();
    let top = sz(60.0) as i32;
    let bottom = bh as i32 - sz(75.0) as i32;
    let left = sz(12.0) as i32;
    let right = left + sz(24.0) as i32;
    let n = 100;
    for k in 0..n {
        let v0 = k as f64 / n as f64;
        let y_a = bottom - ((bottom - top) as f64 * v0) as i32;
        let y_b = bottom - ((bottom - top) as f64 * (k + 1) as f64 / n as f64) as i32;
        bar.draw(&Rectangle::new(
            [(left, y_b), (right, y_a)],
            ramp(v0 + 0.5 / n as f64).filled(),
        ))
        .map_err(draw_err)?;
    }
    bar.draw(&Rectangle::new([(left, top), (right, bottom)], BLACK))
        .map_err(draw_err)?;
    let f = super::font(16.0 * s);
    for k in 0..=4 {
        let v = k as f64 / 4.0;
        let y = bottom - ((bottom - top) as f64 * v) as i32;
        bar.draw(&PathElement::new(vec![(right, y), (right + 5, y)], BLACK))
            .map_err(draw_err)?;
        bar.draw(&Text::new(
            format!("{v:.2}"),
            (right + 8, y - sz(8.0) as i32),
            f.clone(),
        ))
        .map_err(draw_err)?;
    }
    let lf = super::font(19.0 * s).transform(FontTransform::Rotate270);
    bar.draw(&Text::new(
        bar_label.to_string(),
        (
            (bw as i32 - sz(20.0) as i32).max(right + 40),
            (top + bottom) / 2 + sz(120.0) as i32,
        ),
        lf,
    ))
    .map_err(draw_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::render_svg_string;

    fn panel() -> HeatmapPanel {
        let xs: Vec<f64> = (0..5).map(|i| 0.1 * 2f64.powi(i)).collect();
        let ys = vec![0.5, 1.0, 2.0];
        let values = ys
            .iter()
            .flat_map(|&y| xs.iter().map(move |&x| if x * y > 0.4 { 1.0 } else { 0.0 }))
            .collect();
        HeatmapPanel {
            title: "test".into(),
            x_label: "ρ".into(),
            y_label: "|λ|".into(),
            xs,
            ys: ys.clone(),
            values,
            curves: vec![BoundaryCurve {
                label: "predicted".into(),
                points: ys.iter().map(|&y| (0.4 / y, y)).collect(),
                dashed: false,
            }],
            crossings: vec![CrossingPoint {
                y: 1.0,
                x: 0.45,
                lo: None,
                hi: Some(0.6),
            }],
            crossing_label: "simulated".into(),
            legend_corner: SeriesLabelPosition::LowerLeft,
            note: vec!["a note under the panel".into()],
        }
    }

    #[test]
    fn svg_smoke() {
        let svg = render_svg_string((1200, 560), |a| {
            draw_heatmaps(a, "title", &[panel(), panel(), panel()], 2, "fraction")
        })
        .unwrap();
        assert!(svg.contains("predicted") && svg.contains("simulated") && svg.contains("fraction"));
        assert!(svg.contains("a note under the panel"));
    }

    #[test]
    fn bad_shape_is_an_error() {
        let mut p = panel();
        p.values.pop();
        assert!(render_svg_string((600, 560), |a| draw_heatmap(a, &p)).is_err());
    }

    #[test]
    fn ramp_ends_and_nan() {
        assert_eq!(ramp(0.0), RGBColor(247, 251, 255));
        assert_eq!(ramp(1.0), RGBColor(8, 48, 107));
        assert_eq!(ramp(f64::NAN), RGBColor(160, 160, 160));
    }

    #[test]
    fn edges_are_geometric_midpoints() {
        let e = edges(&[1.0, 4.0, 16.0]);
        assert!(
            (e[1] - 2.0).abs() < 1e-12 && (e[0] - 0.5).abs() < 1e-12 && (e[3] - 32.0).abs() < 1e-9
        );
    }
}
