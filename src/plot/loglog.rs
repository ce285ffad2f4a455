//! The convergence figure: weak error against `eta` on log–log axes.
//!
//! One line with markers per series (the points sorted by `x`), a vertical error bar from `lo`
//! to `hi` at every point, and dashed reference lines `y = y_g (x / x_g)^s` through the
//! geometric middle `(x_g, y_g)` of the data (geometric means of all plotted points), so that a
//! series of weak order `s` runs parallel to the line labelled "slope s".
//!
//! What is drawn when data cannot be placed on log axes:
//! * points with `x ≤ 0` or non-finite `x` are skipped;
//! * a point with `y ≤ 0` gets no marker and breaks its series' line; its error bar is still
//!   drawn if `hi > 0`;
//! * an error bar end outside the axes (`lo ≤ 0`, `hi = +∞`, or far beyond the data) is clipped
//!   at the axis and ends in an **arrowhead** on the axis instead of a cap ("continues beyond
//!   the plot");
//! * a series with nothing drawable keeps its legend entry, marked "(no positive values)" or
//!   "(no data)";
//! * a figure with nothing drawable draws its axes and the note "no data".
//!
//! Axis ranges come from the data (positive, finite values only), padded by half a decade on
//! each side; error-bar ends widen the `y` range by at most two decades beyond the point values
//! (one absurd bar must not flatten the rest). Ticks are at 1, 2, 5 × 10ᵏ for spans up to three
//! decades and at decades beyond. The legend (white background) goes in the upper-left corner,
//! else the lower-right one, whichever covers no data; if both would, the `y` range is extended
//! upwards until the upper-left corner is free. Font sizes are chosen for 1000×700 px and scale
//! with the figure.

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{draw_err, try_ensure_fonts, PALETTE};
use crate::Result;

/// One measured point: estimate `y` at `x`, with its confidence interval `[lo, hi]`.
/// `lo` may be 0 (interval reaching zero): the bar is then clipped at the axis bottom.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogLogPoint {
    /// Abscissa (e.g. `eta`); must be positive to be drawn.
    pub x: f64,
    /// Estimate (e.g. weak error); must be positive for a marker.
    pub y: f64,
    /// Lower end of the confidence interval.
    pub lo: f64,
    /// Upper end of the confidence interval (may be `+∞`).
    pub hi: f64,
}

/// A named series of points.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLogSeries {
    /// Legend text.
    pub label: String,
    /// Points in any order (they are sorted by `x` for the connecting line).
    pub points: Vec<LogLogPoint>,
}

/// Everything the convergence figure shows.
#[derive(Debug, Clone, Copy)]
pub struct LogLogFigure<'a> {
    /// Title above the plot (empty for none).
    pub title: &'a str,
    /// Horizontal axis description, e.g. "step size η".
    pub x_label: &'a str,
    /// Vertical axis description, e.g. "weak error max_k |E g(x_k) − E g(X_kη)|".
    pub y_label: &'a str,
    /// The data series.
    pub series: &'a [LogLogSeries],
    /// Slopes of dashed reference lines `∝ x^s`, e.g. `[1.0, 0.5]` ("slope 1", "slope 1/2").
    pub reference_slopes: &'a [f64],
}

/// Marker shapes, cycled alongside the colours so series differ in greyscale too.
#[derive(Debug, Clone, Copy)]
enum Marker {
    Circle,
    Triangle,
    Square,
    Diamond,
}
const MARKERS: [Marker; 4] = [
    Marker::Circle,
    Marker::Triangle,
    Marker::Square,
    Marker::Diamond,
];

/// Reference line styles: (grey level, dash length, gap), in units of the 1000×700 scale.
const REF_STYLES: [(u8, f64, f64); 4] = [
    (0, 12.0, 6.0),
    (120, 5.0, 5.0),
    (60, 20.0, 5.0),
    (160, 10.0, 10.0),
];

/// A labelled vertical guide line at `x` (e.g. `ρ = η`), drawn dashed in grey behind the data.
#[derive(Debug, Clone, PartialEq)]
pub struct Guide {
    /// Abscissa (must be positive; the `x` range is widened to include it).
    pub x: f64,
    /// Text written beside the line near the top of the plot.
    pub label: String,
}

/// Optional layers and layout of a log–log figure (all off by default).
#[derive(Debug, Clone, Copy, Default)]
pub struct LogLogExtras<'a> {
    /// Monte Carlo noise floor `(series index, x, y)` of each series: a thin dotted line in the
    /// series' colour; a value near or below it cannot be told from Monte Carlo noise.
    pub floor: &'a [(usize, f64, f64)],
    /// Exact values `(series index, x, y)`, drawn as a black-edged `×` in the series' colour.
    pub exact: &'a [(usize, f64, f64)],
    /// Offset series horizontally (a few pixels each, symmetric about the true `x`) so that
    /// coinciding points stay visible; the legend says so.
    pub dodge: bool,
    /// Put the legend to the right of the plot instead of over it.
    pub legend_outside: bool,
}

/// A `×` of half-size `$ex` px centred on `$at` (any coordinate type, any backend).
macro_rules! cross {
    ($at:expr, $ex:expr, $width:expr, $color:expr) => {{
        let (ex, style) = ($ex, $color.stroke_width($width));
        EmptyElement::at($at)
            + PathElement::new(vec![(-ex, -ex), (ex, ex)], style)
            + PathElement::new(vec![(-ex, ex), (ex, -ex)], style)
    }};
}

/// Horizontal offset of series `i` of `n` under [`LogLogExtras::dodge`], in decades.
fn dodge_offset(i: usize, n: usize) -> f64 {
    const STEP: f64 = 0.025; // ≈ 8 px per series on a 2-decade, 650 px axis
    STEP * (i as f64 - (n as f64 - 1.0) / 2.0)
}

/// Draw the convergence figure on `area`.
///
/// # Errors
/// [`crate::Error::Plot`] if the backend fails or the font is unavailable.
pub fn draw_loglog<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    fig: &LogLogFigure,
) -> Result<()> {
    draw_loglog_guided(area, fig, &[])
}

/// [`draw_loglog`] with vertical guide lines (e.g. `ρ = η` and `ρ = √η` in a ρ sweep).
///
/// # Errors
/// [`crate::Error::Plot`] if the backend fails or the font is unavailable.
pub fn draw_loglog_guided<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    fig: &LogLogFigure,
    guides: &[Guide],
) -> Result<()> {
    draw_loglog_with(area, fig, guides, &LogLogExtras::default())
}

/// [`draw_loglog_guided`] with the optional layers of [`LogLogExtras`].
///
/// # Errors
/// [`crate::Error::Plot`] if the backend fails or the font is unavailable.
pub fn draw_loglog_with<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    fig: &LogLogFigure,
    guides: &[Guide],
    extras: &LogLogExtras,
) -> Result<()> {
    try_ensure_fonts()?;
    let n_series = fig.series.len();
    let shift = |i: usize| {
        if extras.dodge {
            10f64.powf(dodge_offset(i, n_series))
        } else {
            1.0
        }
    };
    let dodged: Vec<LogLogSeries> = fig
        .series
        .iter()
        .enumerate()
        .map(|(i, ser)| LogLogSeries {
            label: ser.label.clone(),
            points: ser
                .points
                .iter()
                .map(|p| LogLogPoint {
                    x: p.x * shift(i),
                    ..*p
                })
                .collect(),
        })
        .collect();
    let fig = &LogLogFigure {
        series: &dodged,
        ..*fig
    };
    let (w, h) = area.dim_in_pixel();
    // Sizes below are in pixels of a 1000×700 figure and scale with the actual size.
    let s = (w as f64 / 1000.0).min(h as f64 / 700.0).clamp(0.4, 4.0);
    let sz = |v: f64| (v * s).round().max(1.0);
    let font = |v: f64| super::font(v * s);

    let data = Prepared::new(fig.series);

    // Layout: margins, title, label areas; the plotting area is what remains.
    let inner = area.margin(
        sz(12.0) as i32,
        sz(8.0) as i32,
        sz(8.0) as i32,
        sz(30.0) as i32,
    );
    let inner = if fig.title.is_empty() {
        inner
    } else {
        crate::plot::titled(&inner, fig.title, 30.0).map_err(draw_err)?
    };
    let x_area = sz(75.0) as u32;
    let y_area = sz(115.0) as u32;
    let (iw, ih) = inner.dim_in_pixel();
    let plot_px = (
        (iw as f64 - y_area as f64).max(10.0),
        (ih as f64 - x_area as f64).max(10.0),
    );

    // Legend entries and their box size (as plotters lays it out: text + sample + margins).
    let legend_font = font(20.0);
    let mut entries: Vec<String> = fig
        .series
        .iter()
        .zip(&data.series)
        .map(|(ser, p)| {
            if ser.points.is_empty() {
                format!("{} (no data)", ser.label)
            } else if !p.drawable {
                format!("{} (no positive values)", ser.label)
            } else {
                ser.label.clone()
            }
        })
        .collect();
    let refs: Vec<(f64, String)> = fig
        .reference_slopes
        .iter()
        .filter(|s| s.is_finite())
        .map(|&sl| (sl, format!("slope {}", slope_text(sl))))
        .collect();
    if data.anchor.is_some() {
        entries.extend(refs.iter().map(|(_, t)| t.clone()));
    }
    let floor: Vec<(usize, f64, f64)> = extras
        .floor
        .iter()
        .copied()
        .filter(|&(_, x, y)| pos(x) && pos(y))
        .collect();
    let floor_text = "dotted: Monte Carlo noise floor of each series";
    let exact_text = "exact weak error (closed form)";
    let has_exact = extras.exact.iter().any(|&(_, x, y)| pos(x) && pos(y));
    if !floor.is_empty() {
        entries.push(floor_text.to_string());
    }
    if has_exact {
        entries.push(exact_text.to_string());
    }
    if extras.dodge && n_series > 1 {
        entries.push("(series offset sideways for legibility)".to_string());
    }
    let legend_margin = sz(10.0);
    let legend_sample = sz(44.0);
    let legend_box = if entries.is_empty() {
        (0.0, 0.0)
    } else {
        let mut tw = 0.0_f64;
        for e in &entries {
            let (ew, _) = area
                .estimate_text_size(e, &TextStyle::from(legend_font.clone()))
                .map_err(draw_err)?;
            tw = tw.max(ew as f64);
        }
        let line_h = sz(20.0) * 1.25;
        (
            tw + legend_sample + 2.0 * legend_margin,
            line_h * entries.len() as f64 + 2.0 * legend_margin,
        )
    };

    // A legend outside takes a column on the right of the plot.
    let outside_w = if extras.legend_outside && legend_box.0 > 0.0 {
        legend_box.0 + sz(16.0)
    } else {
        0.0
    };
    let inner = inner.margin(0, 0, 0, outside_w as i32); // (top, bottom, left, right)
    let plot_px = ((plot_px.0 - outside_w).max(10.0), plot_px.1);
    let (mut xr, mut yr) = (data.x_range, data.y_range);
    if let Some(lo) = floor
        .iter()
        .map(|&(_, _, y)| y.log10())
        .min_by(f64::total_cmp)
    {
        yr.0 = yr.0.min(lo - 0.2);
    }
    for g in guides.iter().filter(|g| g.x > 0.0 && g.x.is_finite()) {
        let lx = g.x.log10();
        xr = (xr.0.min(lx - 0.25), xr.1.max(lx + 0.25));
    }
    let legend_pos = loop {
        if outside_w > 0.0 {
            break SeriesLabelPosition::Coordinate(plot_px.0 as i32 + sz(16.0) as i32, 0);
        }
        let view = View {
            xr,
            yr,
            px: plot_px,
        };
        if legend_box.0 == 0.0 || !data.hits(&view, Corner::UpperLeft, legend_box, sz(8.0)) {
            break SeriesLabelPosition::UpperLeft;
        }
        if !data.hits(&view, Corner::LowerRight, legend_box, sz(8.0)) {
            break SeriesLabelPosition::LowerRight;
        }
        if yr.1 - yr.0 > 30.0 {
            break SeriesLabelPosition::UpperLeft; // give up: legend larger than the plot
        }
        yr.1 += 0.25;
    };

    let (xb, xl) = ticks(xr);
    let (yb, yl) = ticks(yr);
    let x_spec = (10f64.powf(xr.0)..10f64.powf(xr.1))
        .log_scale()
        .with_key_points(xb)
        .with_light_points(xl);
    let y_spec = (10f64.powf(yr.0)..10f64.powf(yr.1))
        .log_scale()
        .with_key_points(yb)
        .with_light_points(yl);
    let mut chart = ChartBuilder::on(&inner)
        .x_label_area_size(x_area)
        .y_label_area_size(y_area)
        .build_cartesian_2d(x_spec, y_spec)
        .map_err(draw_err)?;
    let fmt = |v: &f64| tick_text(*v);
    chart
        .configure_mesh()
        .x_desc(fig.x_label)
        .y_desc(fig.y_label)
        .axis_desc_style(font(24.0))
        .label_style(font(20.0))
        .x_label_formatter(&fmt)
        .y_label_formatter(&fmt)
        .bold_line_style(RGBColor(200, 200, 200).stroke_width(1))
        .light_line_style(RGBColor(236, 236, 236).stroke_width(1))
        .axis_style(BLACK.stroke_width(sz(1.5) as u32))
        .set_all_tick_mark_size(sz(6.0) as u32)
        .draw()
        .map_err(draw_err)?;

    let (y_lo, y_hi) = (10f64.powf(yr.0), 10f64.powf(yr.1));
    let line_w = sz(2.5) as u32;
    let bar_w = sz(1.8) as u32;
    let cap = sz(6.0) as i32;
    let arrow = sz(12.0) as i32;
    let r = sz(6.0) as i32;

    // Guides, then reference lines, so that data are drawn over them.
    for g in guides.iter().filter(|g| g.x > 0.0 && g.x.is_finite()) {
        let style = RGBColor(110, 110, 110).stroke_width(sz(1.5) as u32);
        chart
            .draw_series(DashedLineSeries::new(
                [(g.x, y_lo), (g.x, y_hi)],
                sz(8.0),
                sz(6.0),
                style,
            ))
            .map_err(draw_err)?;
        let text = TextStyle::from(font(18.0))
            .color(&RGBColor(80, 80, 80))
            .pos(Pos::new(HPos::Left, VPos::Top));
        let y_text = 10f64.powf(yr.1 - 0.04 * (yr.1 - yr.0));
        chart
            .draw_series(std::iter::once(
                EmptyElement::at((g.x, y_text))
                    + Text::new(g.label.clone(), (sz(4.0) as i32, 0), text),
            ))
            .map_err(draw_err)?;
    }
    // Reference lines, so that data are drawn over them.
    let mut ref_annos = Vec::new();
    if let Some((lxg, lyg)) = data.anchor {
        for (i, (slope, text)) in refs.iter().enumerate() {
            let (grey, dash, gap) = REF_STYLES[i % REF_STYLES.len()];
            let style = RGBColor(grey, grey, grey).stroke_width(sz(2.0) as u32);
            let xspan = (
                (data.x_data.0 - 0.25).max(xr.0),
                (data.x_data.1 + 0.25).min(xr.1),
            );
            if let Some((la, lb)) = clip_line(lxg, lyg, *slope, xspan, yr) {
                let pts = [la, lb].map(|lx| (10f64.powf(lx), 10f64.powf(lyg + slope * (lx - lxg))));
                chart
                    .draw_series(DashedLineSeries::new(pts, sz(dash), sz(gap), style))
                    .map_err(draw_err)?;
            }
            ref_annos.push((text.clone(), style, sz(dash), sz(gap)));
        }
    }

    // Noise floors: a thin dotted line per series in its colour, behind the data.
    for i in 0..n_series {
        let mut pts: Vec<(f64, f64)> = floor
            .iter()
            .filter(|f| f.0 == i)
            .map(|&(_, x, y)| (x * shift(i), y))
            .collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        if pts.len() >= 2 {
            let style = PALETTE[i % PALETTE.len()].stroke_width(sz(1.5) as u32);
            chart
                .draw_series(DashedLineSeries::new(pts, sz(2.0), sz(4.0), style))
                .map_err(draw_err)?;
        }
    }

    for (i, prep) in data.series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let marker = MARKERS[i % MARKERS.len()];
        let line = color.stroke_width(line_w);
        let bar = color.stroke_width(bar_w);

        for run in prep.points.split(|p| !p.has_y) {
            if run.len() >= 2 {
                chart
                    .draw_series(LineSeries::new(run.iter().map(|p| (p.x, p.y)), line))
                    .map_err(draw_err)?;
            }
        }
        for p in &prep.points {
            if let Some((lo, lo_cap, hi, hi_cap)) = clip_bar(p.lo, p.hi, y_lo, y_hi) {
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(p.x, lo), (p.x, hi)],
                        bar,
                    )))
                    .map_err(draw_err)?;
                // A cap marks a true end; an arrowhead marks an end clipped at the axis.
                let ends = [(lo, lo_cap, 1), (hi, hi_cap, -1)];
                chart
                    .draw_series(ends.iter().filter(|c| c.1).map(|&(y, _, _)| {
                        EmptyElement::at((p.x, y))
                            + PathElement::new(vec![(-cap, 0), (cap, 0)], bar)
                    }))
                    .map_err(draw_err)?;
                chart
                    .draw_series(ends.iter().filter(|c| !c.1).map(|&(y, _, dir)| {
                        // Tip on the axis, base `arrow` px inside the plot, pointing out of it
                        // (dir = 1: bottom end, pointing down; dir = −1: top end, pointing up).
                        EmptyElement::at((p.x, y))
                            + Polygon::new(
                                vec![(0, 0), (-cap, -dir * arrow), (cap, -dir * arrow)],
                                color.filled(),
                            )
                    }))
                    .map_err(draw_err)?;
            }
        }
        let pts: Vec<(f64, f64)> = prep
            .points
            .iter()
            .filter(|p| p.has_y)
            .map(|p| (p.x, p.y))
            .collect();
        let fill = color.filled();
        let edge = WHITE.stroke_width(1);
        match marker {
            Marker::Circle => chart.draw_series(pts.iter().map(|&c| {
                EmptyElement::at(c) + Circle::new((0, 0), r, fill) + Circle::new((0, 0), r, edge)
            })),
            Marker::Triangle => chart.draw_series(
                pts.iter()
                    .map(|&c| EmptyElement::at(c) + TriangleMarker::new((0, 0), r + 1, fill)),
            ),
            Marker::Square => chart.draw_series(pts.iter().map(|&c| {
                let q = r - 1;
                EmptyElement::at(c) + Rectangle::new([(-q, -q), (q, q)], fill)
            })),
            Marker::Diamond => chart.draw_series(pts.iter().map(|&c| {
                let q = r + 1;
                EmptyElement::at(c) + Polygon::new(vec![(0, -q), (q, 0), (0, q), (-q, 0)], fill)
            })),
        }
        .map_err(draw_err)?;

        // Legend entry: a line segment with the marker in its middle.
        let text = entries[i].clone();
        let len = legend_sample as i32 - sz(8.0) as i32;
        let mid = len / 2;
        let anno = chart
            .draw_series(std::iter::empty::<PathElement<(f64, f64)>>())
            .map_err(draw_err)?;
        anno.label(text);
        let seg = move |(x, y): (i32, i32)| {
            EmptyElement::at((x, y)) + PathElement::new(vec![(0, 0), (len, 0)], line)
        };
        match marker {
            Marker::Circle => anno.legend(move |c| seg(c) + Circle::new((mid, 0), r, fill)),
            Marker::Triangle => {
                anno.legend(move |c| seg(c) + TriangleMarker::new((mid, 0), r + 1, fill))
            }
            Marker::Square => anno.legend(move |c| {
                let q = r - 1;
                seg(c) + Rectangle::new([(mid - q, -q), (mid + q, q)], fill)
            }),
            Marker::Diamond => anno.legend(move |c| {
                let q = r + 1;
                seg(c) + Polygon::new(vec![(mid, -q), (mid + q, 0), (mid, q), (mid - q, 0)], fill)
            }),
        };
    }

    // Exact values: a × in the series' colour over a black one (visible on the marker).
    let ex = sz(6.0) as i32;
    let (wide, thin) = (sz(4.0) as u32, sz(2.0) as u32);
    for &(i, x, y) in extras.exact.iter().filter(|e| pos(e.1) && pos(e.2)) {
        let color = PALETTE[i % PALETTE.len()];
        let at = (x * shift(i), y);
        chart
            .draw_series([cross!(at, ex, wide, BLACK), cross!(at, ex, thin, color)])
            .map_err(draw_err)?;
    }

    for (text, style, dash, gap) in ref_annos {
        let len = legend_sample as i32 - sz(8.0) as i32;
        chart
            .draw_series(std::iter::empty::<PathElement<(f64, f64)>>())
            .map_err(draw_err)?
            .label(text)
            .legend(move |(x, y)| {
                DashedPathElement::new(vec![(x, y), (x + len, y)], dash, gap, style)
            });
    }

    let len = legend_sample as i32 - sz(8.0) as i32;
    let floor_style = RGBColor(90, 90, 90).stroke_width(sz(1.5) as u32);
    let (floor_dash, floor_gap) = (sz(2.0), sz(4.0));
    if !floor.is_empty() {
        chart
            .draw_series(std::iter::empty::<PathElement<(f64, f64)>>())
            .map_err(draw_err)?
            .label(floor_text)
            .legend(move |(x, y)| {
                DashedPathElement::new(
                    vec![(x, y), (x + len, y)],
                    floor_dash,
                    floor_gap,
                    floor_style,
                )
            });
    }
    if has_exact {
        let mid = len / 2;
        chart
            .draw_series(std::iter::empty::<PathElement<(f64, f64)>>())
            .map_err(draw_err)?
            .label(exact_text)
            .legend(move |(x, y)| cross!((x + mid, y), ex, wide, BLACK));
    }
    if extras.dodge && n_series > 1 {
        chart
            .draw_series(std::iter::empty::<PathElement<(f64, f64)>>())
            .map_err(draw_err)?
            .label("(series offset sideways for legibility)")
            .legend(|(x, y)| EmptyElement::at((x, y)));
    }

    if !data.any_drawable {
        let msg = if fig.series.iter().all(|s| s.points.is_empty()) {
            "no data"
        } else {
            "no data: no positive values to show on log axes"
        };
        let style = TextStyle::from(font(28.0))
            .color(&RGBColor(90, 90, 90))
            .pos(Pos::new(HPos::Center, VPos::Center));
        let centre = (
            10f64.powf(0.5 * (xr.0 + xr.1)),
            10f64.powf(0.5 * (yr.0 + yr.1)),
        );
        chart
            .draw_series(std::iter::once(Text::new(msg, centre, style)))
            .map_err(draw_err)?;
    }

    if outside_w > 0.0 {
        // The legend in its own column right of the plot, drawn by hand (plotters clips its
        // legend to the plotting area).
        let (aw, _) = area.dim_in_pixel();
        let x0 = aw as i32 - legend_box.0 as i32 - sz(8.0) as i32;
        let y0 = sz(60.0) as i32;
        let line_h = (sz(20.0) * 1.25) as i32;
        let text_style =
            TextStyle::from(legend_font.clone()).pos(Pos::new(HPos::Left, VPos::Center));
        let len = legend_sample as i32 - sz(8.0) as i32;
        let mid = len / 2;
        let (bw, bh) = (legend_box.0 as i32, legend_box.1 as i32);
        area.draw(&Rectangle::new(
            [(x0, y0), (x0 + bw, y0 + bh)],
            WHITE.filled(),
        ))
        .map_err(draw_err)?;
        area.draw(&Rectangle::new(
            [(x0, y0), (x0 + bw, y0 + bh)],
            RGBColor(120, 120, 120).stroke_width(1),
        ))
        .map_err(draw_err)?;
        let xs = x0 + legend_margin as i32;
        let xt = xs + legend_sample as i32;
        let mut row = 0;
        let mut next = || {
            let y = y0 + legend_margin as i32 + line_h * row + line_h / 2;
            row += 1;
            y
        };
        for (i, text) in entries.iter().take(n_series).enumerate() {
            let y = next();
            let color = PALETTE[i % PALETTE.len()];
            let fill = color.filled();
            area.draw(&PathElement::new(
                vec![(xs, y), (xs + len, y)],
                color.stroke_width(line_w),
            ))
            .map_err(draw_err)?;
            let c = (xs + mid, y);
            match MARKERS[i % MARKERS.len()] {
                Marker::Circle => area.draw(&Circle::new(c, r, fill)),
                Marker::Triangle => area.draw(&TriangleMarker::new(c, r + 1, fill)),
                Marker::Square => {
                    let q = r - 1;
                    area.draw(&Rectangle::new(
                        [(c.0 - q, c.1 - q), (c.0 + q, c.1 + q)],
                        fill,
                    ))
                }
                Marker::Diamond => {
                    let q = r + 1;
                    area.draw(&Polygon::new(
                        vec![
                            (c.0, c.1 - q),
                            (c.0 + q, c.1),
                            (c.0, c.1 + q),
                            (c.0 - q, c.1),
                        ],
                        fill,
                    ))
                }
            }
            .map_err(draw_err)?;
            area.draw(&Text::new(text.clone(), (xt, y), text_style.clone()))
                .map_err(draw_err)?;
        }
        if data.anchor.is_some() {
            for (k, (_, text)) in refs.iter().enumerate() {
                let y = next();
                let (grey, dash, gap) = REF_STYLES[k % REF_STYLES.len()];
                let style = RGBColor(grey, grey, grey).stroke_width(sz(2.0) as u32);
                area.draw(&DashedPathElement::new(
                    vec![(xs, y), (xs + len, y)],
                    sz(dash),
                    sz(gap),
                    style,
                ))
                .map_err(draw_err)?;
                area.draw(&Text::new(text.clone(), (xt, y), text_style.clone()))
                    .map_err(draw_err)?;
            }
        }
        if !floor.is_empty() {
            let y = next();
            area.draw(&DashedPathElement::new(
                vec![(xs, y), (xs + len, y)],
                floor_dash,
                floor_gap,
                floor_style,
            ))
            .map_err(draw_err)?;
            area.draw(&Text::new(floor_text, (xt, y), text_style.clone()))
                .map_err(draw_err)?;
        }
        if has_exact {
            let y = next();
            area.draw(&cross!((xs + mid, y), ex, wide, BLACK))
                .map_err(draw_err)?;
            area.draw(&Text::new(exact_text, (xt, y), text_style.clone()))
                .map_err(draw_err)?;
        }
        if extras.dodge && n_series > 1 {
            let y = next();
            area.draw(&Text::new(
                "(series offset sideways for legibility)",
                (xs, y),
                text_style.clone(),
            ))
            .map_err(draw_err)?;
        }
    } else if !entries.is_empty() {
        chart
            .configure_series_labels()
            .position(legend_pos)
            .margin(legend_margin)
            .legend_area_size(legend_sample)
            .label_font(legend_font)
            .background_style(WHITE.filled())
            .border_style(RGBColor(120, 120, 120).stroke_width(1))
            .draw()
            .map_err(draw_err)?;
    }
    Ok(())
}

/// A point that can be placed horizontally (`x > 0`), with `has_y` if it gets a marker.
#[derive(Debug, Clone, Copy)]
struct PlotPoint {
    x: f64,
    y: f64,
    lo: f64,
    hi: f64,
    has_y: bool,
}

#[derive(Debug, Clone)]
struct PreparedSeries {
    points: Vec<PlotPoint>,
    drawable: bool,
}

/// Data sorted and screened, with axis ranges in log10 units.
#[derive(Debug, Clone)]
struct Prepared {
    series: Vec<PreparedSeries>,
    any_drawable: bool,
    /// Padded axis ranges (log10).
    x_range: (f64, f64),
    y_range: (f64, f64),
    /// Extent of the drawable x values (log10), for the reference lines.
    x_data: (f64, f64),
    /// Geometric middle (log10) of the points with markers.
    anchor: Option<(f64, f64)>,
}

/// Half a decade of padding on each side of the data.
const PAD: f64 = 0.5;
/// Error-bar ends may widen the y range by at most this many decades beyond the points.
const BAR_REACH: f64 = 2.0;

fn pos(v: f64) -> bool {
    v.is_finite() && v > 0.0
}

fn extent(vals: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    vals.filter(|v| pos(*v))
        .map(f64::log10)
        .fold(None, |acc, l| match acc {
            None => Some((l, l)),
            Some((a, b)) => Some((a.min(l), b.max(l))),
        })
}

impl Prepared {
    fn new(series: &[LogLogSeries]) -> Self {
        let mut out = Vec::with_capacity(series.len());
        for ser in series {
            let mut points: Vec<PlotPoint> = ser
                .points
                .iter()
                .filter(|p| pos(p.x))
                .map(|p| PlotPoint {
                    x: p.x,
                    y: p.y,
                    lo: p.lo,
                    hi: p.hi,
                    has_y: pos(p.y),
                })
                .collect();
            points.sort_by(|a, b| a.x.total_cmp(&b.x));
            let drawable = points.iter().any(|p| p.has_y || pos(p.hi));
            out.push(PreparedSeries { points, drawable });
        }
        let all = || out.iter().flat_map(|s| s.points.iter());
        let drawn = || all().filter(|p| p.has_y || pos(p.hi));
        let any_drawable = drawn().next().is_some();

        let x_data = extent(drawn().map(|p| p.x));
        let y_pts = extent(all().filter(|p| p.has_y).map(|p| p.y));
        let y_bars = extent(drawn().flat_map(|p| [p.lo, p.hi]));
        let y_data = match (y_pts, y_bars) {
            (Some((a, b)), Some((c, d))) => {
                Some((c.max(a - BAR_REACH).min(a), d.min(b + BAR_REACH).max(b)))
            }
            (Some(p), None) => Some(p),
            (None, Some(bars)) => Some(bars),
            (None, None) => None,
        };
        // Defaults when nothing is drawable: η in [1e-3, 1], errors in [1e-4, 1].
        let x_data = x_data.unwrap_or((-3.0 + PAD, -PAD));
        let y_data = y_data.unwrap_or((-4.0 + PAD, -PAD));
        let marked: Vec<(f64, f64)> = all()
            .filter(|p| p.has_y)
            .map(|p| (p.x.log10(), p.y.log10()))
            .collect();
        let anchor = if marked.is_empty() {
            None
        } else {
            let n = marked.len() as f64;
            Some((
                marked.iter().map(|m| m.0).sum::<f64>() / n,
                marked.iter().map(|m| m.1).sum::<f64>() / n,
            ))
        };
        Prepared {
            series: out,
            any_drawable,
            x_range: (x_data.0 - PAD, x_data.1 + PAD),
            y_range: (y_data.0 - PAD, y_data.1 + PAD),
            x_data,
            anchor,
        }
    }

    /// Does a legend box of `size` pixels in `corner` cover any marker, line or error bar?
    fn hits(&self, view: &View, corner: Corner, size: (f64, f64), slack: f64) -> bool {
        // plotters places the legend 5 px from the corner of the plotting area.
        let (bw, bh) = (size.0 + 5.0 + slack, size.1 + 5.0 + slack);
        let (pw, ph) = view.px;
        let inside = |(x, y): (f64, f64)| match corner {
            Corner::UpperLeft => x <= bw && y <= bh,
            Corner::LowerRight => x >= pw - bw && y >= ph - bh,
        };
        let (y_lo, y_hi) = (10f64.powf(view.yr.0), 10f64.powf(view.yr.1));
        for ser in &self.series {
            for p in &ser.points {
                if p.has_y && inside(view.to_px(p.x, p.y)) {
                    return true;
                }
                if let Some((lo, _, hi, _)) = clip_bar(p.lo, p.hi, y_lo, y_hi) {
                    let (a, b) = (view.to_px(p.x, lo), view.to_px(p.x, hi));
                    if segment_hits(a, b, &inside) {
                        return true;
                    }
                }
            }
            for run in ser.points.split(|p| !p.has_y) {
                for w in run.windows(2) {
                    let (a, b) = (view.to_px(w[0].x, w[0].y), view.to_px(w[1].x, w[1].y));
                    if segment_hits(a, b, &inside) {
                        return true;
                    }
                }
            }
        }
        false
    }
}

#[derive(Debug, Clone, Copy)]
enum Corner {
    UpperLeft,
    LowerRight,
}

/// Axis ranges (log10) and plotting-area size, to map data to pixels from the top-left corner.
struct View {
    xr: (f64, f64),
    yr: (f64, f64),
    px: (f64, f64),
}

impl View {
    fn to_px(&self, x: f64, y: f64) -> (f64, f64) {
        (
            (x.log10() - self.xr.0) / (self.xr.1 - self.xr.0) * self.px.0,
            (self.yr.1 - y.log10()) / (self.yr.1 - self.yr.0) * self.px.1,
        )
    }
}

/// Sampled test of a segment against a region (fine enough: 50 samples over ≤ 1000 px).
fn segment_hits(a: (f64, f64), b: (f64, f64), inside: &impl Fn((f64, f64)) -> bool) -> bool {
    (0..=50).any(|k| {
        let t = k as f64 / 50.0;
        inside((a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1)))
    })
}

/// Error bar `[lo, hi]` clipped to the axis range `[y_lo, y_hi]`:
/// `(lo', lo_has_cap, hi', hi_has_cap)`, or `None` if nothing of it is visible or it is `NaN`.
fn clip_bar(lo: f64, hi: f64, y_lo: f64, y_hi: f64) -> Option<(f64, bool, f64, bool)> {
    if lo.is_nan() || hi.is_nan() || hi <= y_lo || lo >= y_hi || hi < lo {
        return None;
    }
    let (l, lc) = if lo > y_lo { (lo, true) } else { (y_lo, false) };
    let (h, hc) = if hi < y_hi { (hi, true) } else { (y_hi, false) };
    Some((l, lc, h, hc))
}

/// Part of the line `ly = lyg + s (lx − lxg)` (log10 units) with `lx ∈ xspan`, `ly ∈ yr`.
fn clip_line(lxg: f64, lyg: f64, s: f64, xspan: (f64, f64), yr: (f64, f64)) -> Option<(f64, f64)> {
    let (mut a, mut b) = xspan;
    if s == 0.0 {
        if lyg < yr.0 || lyg > yr.1 {
            return None;
        }
    } else {
        let x_at = |ly: f64| lxg + (ly - lyg) / s;
        let (p, q) = (x_at(yr.0), x_at(yr.1));
        a = a.max(p.min(q));
        b = b.min(p.max(q));
    }
    (b > a).then_some((a, b))
}

/// Tick positions for a log10 range: (labelled, grid-only).
fn ticks((l0, l1): (f64, f64)) -> (Vec<f64>, Vec<f64>) {
    let span = l1 - l0;
    let (bold_m, light_m): (&[f64], &[f64]) = if span <= 3.0 {
        (&[1.0, 2.0, 5.0], &[3.0, 4.0, 6.0, 7.0, 8.0, 9.0])
    } else if span <= 8.0 {
        (&[1.0], &[2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0])
    } else {
        (&[1.0], &[])
    };
    let step = if span <= 8.0 {
        1
    } else {
        (span / 8.0).ceil() as i64
    };
    let (mut bold, mut light) = (Vec::new(), Vec::new());
    let eps = 1e-9;
    for k in (l0.floor() as i64)..=(l1.ceil() as i64) {
        let decade = 10f64.powi(k as i32);
        let labelled_decade = k.rem_euclid(step) == 0;
        for &m in bold_m {
            let v = m * decade;
            if (l0 - eps..=l1 + eps).contains(&v.log10()) {
                if labelled_decade {
                    bold.push(v);
                } else {
                    light.push(v);
                }
            }
        }
        for &m in light_m {
            let v = m * decade;
            if (l0 - eps..=l1 + eps).contains(&v.log10()) {
                light.push(v);
            }
        }
    }
    (bold, light)
}

/// Tick label: plain decimals from 0.001 to 1000, `m×10ᵏ` outside.
fn tick_text(v: f64) -> String {
    if !pos(v) {
        return String::new();
    }
    let e = (v.log10() + 1e-9).floor() as i32;
    let m = (v / 10f64.powi(e)).round() as i64;
    if (-3..=3).contains(&e) {
        if e >= 0 {
            format!("{}", m * 10i64.pow(e as u32))
        } else {
            format!("{:.*}", (-e) as usize, v)
        }
    } else if m == 1 {
        format!("10{}", superscript(e))
    } else {
        format!("{m}×10{}", superscript(e))
    }
}

fn superscript(e: i32) -> String {
    e.to_string()
        .chars()
        .map(|c| match c {
            '-' => '⁻',
            '0' => '⁰',
            '1' => '¹',
            '2' => '²',
            '3' => '³',
            '4' => '⁴',
            '5' => '⁵',
            '6' => '⁶',
            '7' => '⁷',
            '8' => '⁸',
            _ => '⁹',
        })
        .collect()
}

/// "1", "1/2", "3/2", "2/3", or a short decimal.
fn slope_text(s: f64) -> String {
    for d in [1.0, 2.0, 3.0, 4.0] {
        let n = s * d;
        if (n - n.round()).abs() < 1e-9 {
            let n = n.round() as i64;
            return if d == 1.0 {
                format!("{n}")
            } else {
                format!("{n}/{}", d as i64)
            };
        }
    }
    let t = format!("{s:.3}");
    t.trim_end_matches('0').to_string()
}

#[cfg(test)]
mod tests {
    use super::super::{render_png, render_svg_string};
    use super::*;

    /// A series whose CIs reach 0 (and +∞): error bars must be clipped at the axes.
    fn noise_floor_series() -> LogLogSeries {
        LogLogSeries {
            label: "near the noise floor".into(),
            points: vec![
                LogLogPoint {
                    x: 0.1,
                    y: 1e-2,
                    lo: 2e-3,
                    hi: 2e-2,
                },
                LogLogPoint {
                    x: 0.05,
                    y: 3e-3,
                    lo: 0.0,
                    hi: 8e-3,
                },
                LogLogPoint {
                    x: 0.025,
                    y: 0.0,
                    lo: 0.0,
                    hi: 5e-3,
                },
                LogLogPoint {
                    x: 0.0125,
                    y: 1e-3,
                    lo: 0.0,
                    hi: f64::INFINITY,
                },
            ],
        }
    }

    fn conv_series() -> Vec<LogLogSeries> {
        let eta: [f64; 5] = [0.1, 0.05, 0.025, 0.0125, 0.00625];
        let make = |label: &str, c: f64, order: f64, rel: f64| LogLogSeries {
            label: label.to_string(),
            points: eta
                .iter()
                .map(|&e| {
                    let y = c * e.powf(order);
                    LogLogPoint {
                        x: e,
                        y,
                        lo: y * (1.0 - rel),
                        hi: y * (1.0 + rel),
                    }
                })
                .collect(),
        };
        vec![
            make("USAM vs USAM SDE", 0.8, 1.1, 0.15),
            make("USAM vs SGD SDE", 0.5, 0.5, 0.1),
            make("SGD vs SGD SDE", 0.3, 1.0, 0.3),
        ]
    }

    fn fig<'a>(series: &'a [LogLogSeries], slopes: &'a [f64]) -> LogLogFigure<'a> {
        LogLogFigure {
            title: "Weak error of the SDE models",
            x_label: "step size η",
            y_label: "weak error",
            series,
            reference_slopes: slopes,
        }
    }

    fn svg_of(f: &LogLogFigure) -> String {
        render_svg_string((1000, 700), |root| draw_loglog(root, f)).unwrap()
    }

    #[test]
    fn svg_smoke_normal() {
        let series = conv_series();
        let svg = svg_of(&fig(&series, &[1.0, 0.5]));
        assert!(
            svg.len() > 5000,
            "suspiciously small SVG ({} bytes)",
            svg.len()
        );
        for needle in [
            "Weak error of the SDE models",
            "step size η",
            "weak error",
            "slope 1",
            "slope 1/2",
        ] {
            assert!(svg.contains(needle), "missing {needle:?}");
        }
        for s in &series {
            assert!(svg.contains(&s.label), "missing label {:?}", s.label);
        }
        // Dashed reference lines are drawn as many short segments; markers as circles.
        assert!(svg.matches("<circle").count() >= 5);
    }

    #[test]
    fn svg_smoke_zero_lower_ci_and_infinite_upper() {
        let series = vec![noise_floor_series()];
        let svg = svg_of(&fig(&series, &[1.0]));
        assert!(svg.contains("Weak error of the SDE models"));
        assert!(svg.contains("near the noise floor"));
        assert!(
            !svg.contains("NaN") && !svg.contains("inf"),
            "non-finite coordinates leaked"
        );
    }

    #[test]
    fn extras_draw_floor_exact_and_outside_legend() {
        let series = conv_series();
        let floor: Vec<(usize, f64, f64)> = series[0]
            .points
            .iter()
            .map(|p| (0, p.x, p.y / 20.0))
            .collect();
        let exact = [(0usize, series[0].points[0].x, series[0].points[0].y)];
        let extras = LogLogExtras {
            floor: &floor,
            exact: &exact,
            dodge: true,
            legend_outside: true,
        };
        let svg = render_svg_string((1400, 700), |root| {
            draw_loglog_with(root, &fig(&series, &[1.0]), &[], &extras)
        })
        .unwrap();
        for text in [
            "Monte Carlo noise floor",
            "exact weak error",
            "offset sideways",
            "USAM vs SGD SDE",
        ] {
            assert!(svg.contains(text), "{text} missing");
        }
        assert!(!svg.contains("NaN"));
    }

    #[test]
    fn svg_smoke_empty_and_all_zero() {
        let svg = svg_of(&fig(&[], &[1.0, 0.5]));
        assert!(svg.contains("Weak error of the SDE models"));
        assert!(svg.contains("no data"));

        let series = vec![
            LogLogSeries {
                label: "nothing yet".into(),
                points: vec![],
            },
            LogLogSeries {
                label: "exactly zero".into(),
                points: vec![
                    LogLogPoint {
                        x: 0.1,
                        y: 0.0,
                        lo: 0.0,
                        hi: 0.0,
                    },
                    LogLogPoint {
                        x: 0.05,
                        y: 0.0,
                        lo: 0.0,
                        hi: 0.0,
                    },
                ],
            },
        ];
        let svg = svg_of(&fig(&series, &[1.0]));
        assert!(svg.contains("nothing yet (no data)"));
        assert!(svg.contains("exactly zero (no positive values)"));
        assert!(svg.contains("no data: no positive values"));
    }

    #[test]
    fn many_series_cycle_palette_without_panicking() {
        let base = conv_series();
        let series: Vec<LogLogSeries> = (0..12)
            .map(|i| {
                let mut s = base[i % 3].clone();
                s.label = format!("series {i}");
                for p in &mut s.points {
                    p.y *= 1.5f64.powi(i as i32);
                    p.lo *= 1.5f64.powi(i as i32);
                    p.hi *= 1.5f64.powi(i as i32);
                }
                s
            })
            .collect();
        let svg = svg_of(&fig(&series, &[1.0, 0.5, 1.5, -1.0, 0.0, f64::NAN]));
        for i in 0..12 {
            assert!(svg.contains(&format!("series {i}")));
        }
        assert!(svg.contains("slope 3/2") && svg.contains("slope -1") && svg.contains("slope 0"));
    }

    #[test]
    fn png_render_writes_a_png() {
        let series = conv_series();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("loglog.png");
        render_png(&path, (1000, 700), |root| {
            draw_loglog(root, &fig(&series, &[1.0, 0.5]))
        })
        .unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
        // Measured: a blank white 1000×700 PNG is ~12 kB, axes and grid alone ~41 kB, this
        // figure ~90 kB. 20 kB separates "something was drawn" from a blank image; whether the
        // data were drawn is checked on pixels in `bitmap_shows_each_series_in_its_colour`.
        assert!(bytes.len() > 20_000, "PNG only {} bytes", bytes.len());
        // IHDR width and height (big-endian) at bytes 16..24.
        assert_eq!(u32::from_be_bytes(bytes[16..20].try_into().unwrap()), 1000);
        assert_eq!(u32::from_be_bytes(bytes[20..24].try_into().unwrap()), 700);
    }

    /// Render into an RGB buffer and count the pixels of each series' palette colour: every
    /// series must show up, and an unused palette colour must not appear. Each series covers
    /// ~1800–2900 px of its exact colour here (measured); ≥ 300 is a low bar that a missing or
    /// miscoloured series fails (checked by skipping one series: its count drops to 0).
    #[test]
    fn bitmap_shows_each_series_in_its_colour() {
        super::super::ensure_fonts();
        let series = conv_series();
        let (w, h) = (1000u32, 700u32);
        let mut buf = vec![0u8; (w * h * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
            root.fill(&WHITE).unwrap();
            draw_loglog(&root, &fig(&series, &[1.0, 0.5])).unwrap();
            root.present().unwrap();
        }
        let count = |c: RGBColor| {
            buf.chunks_exact(3)
                .filter(|p| p == &[c.0, c.1, c.2])
                .count()
        };
        for (i, s) in series.iter().enumerate() {
            let n = count(PALETTE[i]);
            assert!(
                n >= 300,
                "series {:?}: only {n} pixels of its colour",
                s.label
            );
        }
        assert_eq!(
            count(PALETTE[5]),
            0,
            "palette colour 5 is not used by 3 series"
        );
    }

    /// Writes the figures to /tmp for a human look (`cargo test --lib plot -- --ignored`).
    #[test]
    #[ignore]
    fn write_pngs_for_inspection() {
        let series = conv_series();
        render_png(
            std::path::Path::new("/tmp/loglog_check.png"),
            (1000, 700),
            |root| draw_loglog(root, &fig(&series, &[1.0, 0.5])),
        )
        .unwrap();
        let floor = vec![conv_series().remove(1), noise_floor_series()];
        render_png(
            std::path::Path::new("/tmp/loglog_floor.png"),
            (1000, 700),
            |root| draw_loglog(root, &fig(&floor, &[1.0, 0.5])),
        )
        .unwrap();
        let many: Vec<LogLogSeries> = (0..10)
            .map(|i| {
                let mut s = conv_series()[i % 3].clone();
                s.label = format!("comparison number {i}");
                for p in &mut s.points {
                    let f = 1.4f64.powi(i as i32);
                    (p.y, p.lo, p.hi) = (p.y * f, p.lo * f, p.hi * f);
                }
                s
            })
            .collect();
        render_png(
            std::path::Path::new("/tmp/loglog_many.png"),
            (1000, 700),
            |root| draw_loglog(root, &fig(&many, &[1.0, 0.5])),
        )
        .unwrap();
        render_png(
            std::path::Path::new("/tmp/loglog_small.png"),
            (600, 420),
            |root| draw_loglog(root, &fig(&series, &[1.0, 0.5])),
        )
        .unwrap();
        render_png(
            std::path::Path::new("/tmp/loglog_empty.png"),
            (1000, 700),
            |root| draw_loglog(root, &fig(&[], &[1.0])),
        )
        .unwrap();
    }

    #[test]
    fn tick_labels() {
        assert_eq!(tick_text(0.01), "0.01");
        assert_eq!(tick_text(0.002), "0.002");
        assert_eq!(tick_text(0.05), "0.05");
        assert_eq!(tick_text(1.0), "1");
        assert_eq!(tick_text(200.0), "200");
        assert_eq!(tick_text(1e-5), "10⁻⁵");
        assert_eq!(tick_text(2e-5), "2×10⁻⁵");
        assert_eq!(tick_text(1e6), "10⁶");
    }

    #[test]
    fn tick_positions() {
        // 0.002 … 0.3: 1-2-5 labels.
        let (b, l) = ticks(((0.002f64).log10(), (0.3f64).log10()));
        let want = [0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2];
        assert_eq!(b.len(), want.len(), "{b:?}");
        for (x, y) in b.iter().zip(want) {
            assert!((x / y - 1.0).abs() < 1e-12, "{b:?}");
        }
        assert!(l.len() > 5);
        // 12 decades: every second decade labelled.
        let (b, _) = ticks((-12.0, 0.0));
        assert_eq!(b.len(), 7, "{b:?}");
    }

    #[test]
    fn slope_texts() {
        assert_eq!(slope_text(1.0), "1");
        assert_eq!(slope_text(0.5), "1/2");
        assert_eq!(slope_text(1.5), "3/2");
        assert_eq!(slope_text(2.0 / 3.0), "2/3");
        assert_eq!(slope_text(0.0), "0");
        assert_eq!(slope_text(0.37), "0.37");
    }

    #[test]
    fn legend_corner_avoids_data() {
        // Rising data leave the upper-left corner free.
        let series = conv_series();
        let data = Prepared::new(&series);
        let view = View {
            xr: data.x_range,
            yr: data.y_range,
            px: (860.0, 560.0),
        };
        assert!(!data.hits(&view, Corner::UpperLeft, (250.0, 120.0), 8.0));
        // A point placed right under the upper-left corner is detected.
        let mut s2 = series.clone();
        let (x, y) = (
            10f64.powf(data.x_range.0 + 0.1),
            10f64.powf(data.y_range.1 - 0.1),
        );
        s2[0].points.push(LogLogPoint { x, y, lo: y, hi: y });
        let d2 = Prepared {
            series: Prepared::new(&s2).series,
            ..data.clone()
        };
        assert!(d2.hits(&view, Corner::UpperLeft, (250.0, 120.0), 8.0));
    }

    #[test]
    fn bars_are_clipped_without_caps() {
        assert_eq!(
            clip_bar(0.0, 1.0, 1e-3, 10.0),
            Some((1e-3, false, 1.0, true))
        );
        assert_eq!(
            clip_bar(0.1, f64::INFINITY, 1e-3, 10.0),
            Some((0.1, true, 10.0, false))
        );
        assert_eq!(clip_bar(0.0, 0.0, 1e-3, 10.0), None);
        assert_eq!(clip_bar(f64::NAN, 1.0, 1e-3, 10.0), None);
    }
}
