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
//!
//! [`draw_bands_with`] adds, through [`BandExtras`]: hatched bands with dotted edges (so a band
//! stays legible where it overlaps another series' filled band), a shaded region above a level
//! (e.g. "escaped"), markers, reference-line texts in the right margin (outside the data, where
//! no curve can cover them) and lines that stop at the frame instead of running along it. A
//! figure with several panels draws one legend for all of them with [`draw_legend`].

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

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

/// How a band is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BandFill {
    /// Translucent fill (the default).
    #[default]
    Filled,
    /// Dotted edges and thin vertical hatching in the series' colour, no fill: another series'
    /// filled band under it stays visible.
    Hatched,
}

/// Marker shapes of [`BandMarker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerShape {
    /// Upward triangle (e.g. "left upwards: escaped").
    TriangleUp,
    /// Filled circle.
    Circle,
}

/// A marker at a data point.
#[derive(Debug, Clone, PartialEq)]
pub struct BandMarker {
    /// Abscissa.
    pub x: f64,
    /// Ordinate (clamped to the panel's range).
    pub y: f64,
    /// Colour index into [`PALETTE`] (`None`: black).
    pub color: Option<usize>,
    /// Shape.
    pub shape: MarkerShape,
    /// White inside with a coloured edge (else filled).
    pub hollow: bool,
}

/// Additions to a [`BandPanel`], drawn by [`draw_bands_with`]; `Default` adds nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BandExtras {
    /// `fills[i][j]`: how band `j` of series `i` is drawn (missing entries: filled).
    pub fills: Vec<Vec<BandFill>>,
    /// Shade the panel light grey from this `y` up to its top (e.g. the escaped region).
    pub shade_above: Option<f64>,
    /// Markers, drawn on top of everything.
    pub markers: Vec<BandMarker>,
    /// Write the texts of [`BandPanel::hlines`] in the right margin at the line's height
    /// (outside the data, where no curve can cover them) instead of above the line.
    pub hline_labels_outside: bool,
    /// A line stops where it leaves the `y` range (instead of running along the frame). Bands
    /// are still clipped to the frame.
    pub lines_stop_at_frame: bool,
}

/// What a [`LegendItem`]'s sample shows.
#[derive(Debug, Clone, PartialEq)]
pub enum LegendSample {
    /// A line (solid or dashed) over its bands, widest first: `(fill, opacity)`.
    Series {
        /// Dashed line.
        dashed: bool,
        /// The bands under it.
        bands: Vec<(BandFill, f64)>,
    },
    /// A grey dotted reference line.
    Reference,
    /// The light grey shading of [`BandExtras::shade_above`].
    Shade,
    /// A marker.
    Marker(MarkerShape, bool),
}

/// One entry of a figure-level legend ([`draw_legend`]).
#[derive(Debug, Clone, PartialEq)]
pub struct LegendItem {
    /// Text.
    pub text: String,
    /// Colour index into [`PALETTE`] (`None`: black).
    pub color: Option<usize>,
    /// The sample drawn left of the text.
    pub sample: LegendSample,
}

/// Light grey of [`BandExtras::shade_above`].
const SHADE: RGBColor = RGBColor(225, 225, 225);

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
    draw_bands_with(area, p, &BandExtras::default())
}

/// Hatch lines of a hatched band: at every `k`-th point, about 30 across the panel.
fn hatch_stride(n: usize) -> usize {
    (n / 30).max(1)
}

/// Draws one panel with [`BandExtras`].
pub fn draw_bands_with<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    p: &BandPanel,
    ex: &BandExtras,
) -> Result<()> {
    try_ensure_fonts()?;
    let (w, h) = area.dim_in_pixel();
    // Text scales with the panel but not below 3/4 of the design size (legibility in grids).
    let s = (w as f64 / 700.0).min(h as f64 / 480.0).clamp(0.75, 4.0);
    let sz = |v: f64| (v * s).round().max(1.0);
    let font = |v: f64| super::font(v * s);
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
    let outside_labels = ex.hline_labels_outside && !p.hlines.is_empty();
    if outside_labels {
        let widest = p
            .hlines
            .iter()
            .map(|(_, t)| {
                area.estimate_text_size(t, &TextStyle::from(font(14.0)))
                    .map_or(0, |(w, _)| w)
            })
            .max()
            .unwrap_or(0);
        // A right margin, not a label area (plotters would mirror the tick labels into one).
        builder.margin_right(widest + sz(16.0) as u32);
    }
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
            if let Some(y) = ex.shade_above.filter(|y| *y < yr.1) {
                let y = y.max(yr.0);
                $chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x_at(0.0), $to_y(y)), (x_at(1.0), $to_y(yr.1))],
                        SHADE.filled(),
                    )))
                    .map_err(draw_err)?;
            }
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
                    if outside_labels {
                        // In the right margin, vertically centred on the line.
                        let (px, py) = $chart.backend_coord(&(x_at(1.0), $to_y(*y)));
                        let (bx, by) = area.get_base_pixel();
                        let style = TextStyle::from(font(14.0).color(&RGBColor(60, 60, 60)))
                            .pos(Pos::new(HPos::Left, VPos::Center));
                        area.draw(&Text::new(
                            text.clone(),
                            (px - bx + sz(6.0) as i32, py - by),
                            style,
                        ))
                        .map_err(draw_err)?;
                    } else {
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
            }
            for (si, ser) in p.series.iter().enumerate() {
                let color = PALETTE[ser.color % PALETTE.len()];
                for (bi, band) in ser.bands.iter().enumerate() {
                    let mut poly: Vec<(f64, f64)> = Vec::new();
                    let mut back: Vec<(f64, f64)> = Vec::new();
                    for i in (0..ser.x.len()).filter(|&i| x_in(ser.x[i])) {
                        if let (Some(a), Some(b)) = (clip(band.lo[i], yr), clip(band.hi[i], yr)) {
                            poly.push((ser.x[i], $to_y(b)));
                            back.push((ser.x[i], $to_y(a)));
                        }
                    }
                    let fill = ex
                        .fills
                        .get(si)
                        .and_then(|f| f.get(bi))
                        .copied()
                        .unwrap_or_default();
                    if fill == BandFill::Hatched {
                        // Vertical hatching at every k-th point, then dotted edges.
                        let hatch = color.mix(band.opacity.max(0.3)).stroke_width(1);
                        let k = hatch_stride(poly.len());
                        $chart
                            .draw_series(
                                poly.iter()
                                    .zip(&back)
                                    .step_by(k)
                                    .map(|(t, b)| PathElement::new(vec![*b, *t], hatch)),
                            )
                            .map_err(draw_err)?;
                        let edge = color.mix(0.9).stroke_width(sz(1.2) as u32);
                        for run in [poly, back] {
                            if run.len() >= 2 {
                                $chart
                                    .draw_series(DashedLineSeries::new(run, sz(2.0), sz(3.0), edge))
                                    .map_err(draw_err)?;
                            }
                        }
                        continue;
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
                        let outside = y < yr.0 || y > yr.1;
                        if !x_in(x) || (ex.lines_stop_at_frame && outside) {
                            None
                        } else {
                            clip(y, yr).map(|y| (x, $to_y(y)))
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
            // Open markers first and larger, so a filled one at the same place leaves a ring.
            let mut markers: Vec<&BandMarker> = ex
                .markers
                .iter()
                .filter(|m| x_in(m.x) && m.y.is_finite())
                .collect();
            markers.sort_by_key(|m| !m.hollow);
            for m in markers {
                let color = m.color.map_or(BLACK, |c| PALETTE[c % PALETTE.len()]);
                let (px, py) = $chart.backend_coord(&(m.x, $to_y(m.y.clamp(yr.0, yr.1))));
                let (bx, by) = area.get_base_pixel();
                draw_marker(
                    area,
                    (px - bx, py - by),
                    m.shape,
                    m.hollow,
                    color,
                    sz(if m.hollow { 10.0 } else { 5.0 }) as i32,
                    sz(1.6) as i32,
                )?;
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

/// Draws a marker of `shape` centred at pixel `at` of `area`, radius `r` pixels.
fn draw_marker<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    at: (i32, i32),
    shape: MarkerShape,
    hollow: bool,
    color: RGBColor,
    r: i32,
    edge: i32,
) -> Result<()> {
    let fill = if hollow { WHITE } else { color };
    match shape {
        MarkerShape::TriangleUp => {
            // Vertices at radius `h` around the centroid `at`.
            let tri = |h: i32| {
                let half = (h as f64 * 0.866).round() as i32;
                vec![
                    (at.0, at.1 - h),
                    (at.0 + half, at.1 + h / 2),
                    (at.0 - half, at.1 + h / 2),
                ]
            };
            area.draw(&Polygon::new(tri(r + 2 * edge), color.filled()))
                .map_err(draw_err)?;
            area.draw(&Polygon::new(tri(r), fill.filled()))
                .map_err(draw_err)
        }
        MarkerShape::Circle => {
            area.draw(&Circle::new(at, r + edge, color.filled()))
                .map_err(draw_err)?;
            area.draw(&Circle::new(at, r, fill.filled()))
                .map_err(draw_err)
        }
    }
}

/// Draws a figure-level legend on `area` (outside every panel): the items in rows of `cols`
/// columns, each a sample (line with band swatches, reference line, shading or marker) and
/// its text, at `font_px` pixels. [`legend_height`] gives the height it needs.
pub fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    items: &[LegendItem],
    cols: usize,
    font_px: f64,
) -> Result<()> {
    try_ensure_fonts()?;
    let (w, _) = area.dim_in_pixel();
    let cols = cols.max(1);
    let u = super::font_size(font_px);
    let row_h = (1.9 * u) as i32;
    let sample_w = (3.2 * u) as i32;
    let col_w = w as i32 / cols as i32;
    let style = TextStyle::from(super::font(u)).pos(Pos::new(HPos::Left, VPos::Center));
    for (k, it) in items.iter().enumerate() {
        let (row, col) = ((k / cols) as i32, (k % cols) as i32);
        let x = col * col_w + (0.8 * u) as i32;
        let y = row * row_h + row_h / 2;
        let color = it.color.map_or(BLACK, |c| PALETTE[c % PALETTE.len()]);
        let half = (0.55 * u) as i32;
        match &it.sample {
            LegendSample::Series { dashed, bands } => {
                let n = bands.len() as i32;
                for (j, (fill, opacity)) in bands.iter().enumerate() {
                    // Widest first: each band a little narrower than the one before.
                    let hh = half - (j as i32) * half / (n + 1).max(2);
                    let (a, b) = ((x, y - hh), (x + sample_w, y + hh));
                    match fill {
                        BandFill::Filled => area
                            .draw(&Rectangle::new([a, b], color.mix(*opacity).filled()))
                            .map_err(draw_err)?,
                        BandFill::Hatched => {
                            let hatch = color.mix(opacity.max(0.3)).stroke_width(1);
                            for hx in (a.0..=b.0).step_by(((0.35 * u) as usize).max(3)) {
                                area.draw(&PathElement::new(vec![(hx, a.1), (hx, b.1)], hatch))
                                    .map_err(draw_err)?;
                            }
                            let edge = color.mix(0.9).stroke_width(1);
                            for ey in [a.1, b.1] {
                                area.draw(&DashedPathElement::new(
                                    vec![(a.0, ey), (b.0, ey)],
                                    2,
                                    3,
                                    edge,
                                ))
                                .map_err(draw_err)?;
                            }
                        }
                    }
                }
                let line = color.stroke_width((0.2 * u).round().max(1.0) as u32);
                let pts = vec![(x, y), (x + sample_w, y)];
                if *dashed {
                    area.draw(&DashedPathElement::new(
                        pts,
                        (0.6 * u) as u32,
                        (0.4 * u) as u32,
                        line,
                    ))
                    .map_err(draw_err)?;
                } else {
                    area.draw(&PathElement::new(pts, line)).map_err(draw_err)?;
                }
            }
            LegendSample::Reference => {
                let line = RGBColor(90, 90, 90).stroke_width((0.13 * u).round().max(1.0) as u32);
                area.draw(&DashedPathElement::new(
                    vec![(x, y), (x + sample_w, y)],
                    (0.25 * u) as u32,
                    (0.33 * u) as u32,
                    line,
                ))
                .map_err(draw_err)?;
            }
            LegendSample::Shade => {
                area.draw(&Rectangle::new(
                    [(x, y - half), (x + sample_w, y + half)],
                    SHADE.filled(),
                ))
                .map_err(draw_err)?;
            }
            LegendSample::Marker(shape, hollow) => {
                draw_marker(
                    area,
                    (x + sample_w / 2, y),
                    *shape,
                    *hollow,
                    color,
                    (0.4 * u) as i32,
                    (0.12 * u).round().max(1.0) as i32,
                )?;
            }
        }
        area.draw(&Text::new(
            it.text.clone(),
            (x + sample_w + (0.6 * u) as i32, y),
            style.clone(),
        ))
        .map_err(draw_err)?;
    }
    Ok(())
}

/// Height in pixels [`draw_legend`] needs for `n` items in `cols` columns at `font_px`.
pub fn legend_height(n: usize, cols: usize, font_px: f64) -> u32 {
    let rows = n.div_ceil(cols.max(1)) as f64;
    (rows * 1.9 * super::font_size(font_px)).ceil() as u32 + 4
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
