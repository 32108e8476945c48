//! silirep's charts: a roofline and throughput-vs-size line charts, each drawn twice with
//! plotters — SVG for the web page, PNG for Markdown viewers.
//!
//! Pictures must be identical on every machine so committed reports regenerate byte for
//! byte: text is rendered with an embedded DejaVu Sans (no system fonts), PNGs are encoded
//! by the `png` crate with no time chunk, colours and layout are fixed. The legend sits in
//! its own column right of the plot, so it never covers data.

use plotters::coord::Shift;
use plotters::coord::combinators::{BindKeyPoints, LogCoord, WithKeyPoints};
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};
use std::sync::Once;

const FONT: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";
pub const WIDTH: u32 = 1100;
pub const HEIGHT: u32 = 620;
const LEGEND_WIDTH: u32 = 330;

/// Okabe–Ito, distinguishable with the common forms of colour blindness.
const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
    RGBColor(240, 228, 66),
];

pub fn colour(index: usize) -> RGBColor {
    PALETTE[index % PALETTE.len()]
}

#[derive(Debug, Clone, PartialEq)]
pub struct Roof {
    pub label: String,
    pub peak_flops_per_s: f64,
    pub bandwidth_bytes_per_s: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RoofPoint {
    /// Which roof (machine) the point belongs to: it takes that roof's colour.
    pub roof_index: usize,
    /// Workload name; points with the same name share a marker shape.
    pub label: String,
    pub intensity_flops_per_byte: f64,
    pub achieved_flops_per_s: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RooflineChart {
    pub title: String,
    pub roofs: Vec<Roof>,
    pub points: Vec<RoofPoint>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SeriesPoint {
    pub x: f64,
    pub y: f64,
    /// 95% CI of `y`, drawn as an error bar.
    pub y_low: Option<f64>,
    pub y_high: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub label: String,
    pub points: Vec<SeriesPoint>,
}

/// A horizontal line across the plot at `y`, labelled: a datasheet figure to compare with.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    pub label: String,
    pub y: f64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct LineChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub x_log: bool,
    pub y_log: bool,
    pub series: Vec<Series>,
    /// Dashed horizontal lines (they widen the y range to show themselves).
    pub references: Vec<Reference>,
    /// Thin vertical lines at these x values: events on a time axis.
    pub markers: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub svg: String,
    pub png: Vec<u8>,
    /// Points left out because a log axis cannot show them (zero, negative, non-finite).
    pub skipped_points: usize,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ChartError {
    #[error("nothing to draw: {0}")]
    Empty(String),
    #[error("drawing failed: {0}")]
    Draw(String),
}

fn draw_err<E: std::fmt::Debug>(e: E) -> ChartError {
    ChartError::Draw(format!("{e:?}"))
}

fn ensure_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The font is compiled in; failing to parse it would be a build defect.
        register_font(FAMILY, FontStyle::Normal, FONT).ok();
    });
}

fn usable(v: f64) -> bool {
    v.is_finite() && v > 0.0
}

/// A prepared chart that can draw itself on any plotters backend.
trait Figure {
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Result<(), ChartError>;
}

/// Draws `figure` on both backends and encodes the bitmap as PNG.
fn render_both(figure: &impl Figure) -> Result<(String, Vec<u8>), ChartError> {
    ensure_font();
    let mut svg = String::new();
    {
        let area = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        figure.draw(area)?;
    }
    let mut rgb = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let area = BitMapBackend::with_buffer(&mut rgb, (WIDTH, HEIGHT)).into_drawing_area();
        figure.draw(area)?;
    }
    let mut png_bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut png_bytes, WIDTH, HEIGHT);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(draw_err)?;
        writer.write_image_data(&rgb).map_err(draw_err)?;
    }
    Ok((svg, png_bytes))
}

/// `1.2 TFLOP/s`-style tick labels for log axes.
pub fn si_label(value: f64, unit: &str) -> String {
    // A space between number and unit ("1.5 TFLOP/s"); none for bare counts ("4k").
    let space = if unit.is_empty() { "" } else { " " };
    let prefixes = [(1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")];
    for (scale, prefix) in prefixes {
        if value >= scale {
            return format!("{}{space}{prefix}{unit}", trim(value / scale));
        }
    }
    format!("{}{space}{unit}", trim(value))
}

fn trim(v: f64) -> String {
    let text = if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// A logarithmic axis with its tick marks chosen here rather than by plotters, whose own
/// choice labels only some decades (and, at some ranges, one decade twice): labelled ticks at
/// 1, 2 and 5 × 10ᵏ when the axis spans up to ~2.5 decades, at every power of ten beyond that
/// (every other one past 8 decades), and light grid lines at each integer multiple.
fn log_axis(lo: f64, hi: f64) -> WithKeyPoints<LogCoord<f64>> {
    let (labelled, light) = log_ticks(lo, hi);
    (lo..hi)
        .log_scale()
        .with_key_points(labelled)
        .with_light_points(light)
}

/// The labelled and the light tick values of a log axis over [lo, hi] (see [`log_axis`]).
fn log_ticks(lo: f64, hi: f64) -> (Vec<f64>, Vec<f64>) {
    if !(lo > 0.0 && hi > lo && lo.is_finite() && hi.is_finite()) {
        return (Vec::new(), Vec::new());
    }
    let decades = (hi / lo).log10();
    let (first, last) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    // A tiny tolerance keeps a tick that sits exactly on a padded bound.
    let inside = |v: f64| v >= lo * (1.0 - 1e-9) && v <= hi * (1.0 + 1e-9);
    let ticks = |mantissas: &[f64], every: i32| -> Vec<f64> {
        (first..=last)
            .filter(|k| k.rem_euclid(every) == 0)
            .flat_map(|k| mantissas.iter().map(move |m| m * 10f64.powi(k)))
            .filter(|v| inside(*v))
            .collect()
    };
    let all: Vec<f64> = (1..=9).map(f64::from).collect();
    let mut labelled = if decades <= 2.5 {
        ticks(&[1.0, 2.0, 5.0], 1)
    } else if decades <= 8.0 {
        ticks(&[1.0], 1)
    } else {
        ticks(&[1.0], 2)
    };
    if labelled.len() < 2 {
        labelled = ticks(&all, 1);
    }
    (labelled, ticks(&all, 1))
}

/// Log range padded by a factor on each side.
fn log_range(values: impl Iterator<Item = f64>, pad: f64) -> Option<(f64, f64)> {
    let (lo, hi) = values
        .filter(|v| usable(*v))
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    (hi > 0.0).then(|| {
        let (lo, hi) = if lo == hi {
            (lo / 2.0, hi * 2.0)
        } else {
            (lo, hi)
        };
        (lo / pad, hi * pad)
    })
}

enum Legend {
    Line(RGBColor, String),
    Marker(usize, String),
}

/// Distinct marker shapes: eight outlines, each drawn filled and then hollow, so a roofline
/// tells sixteen workloads apart before a shape repeats.
pub const MARKER_KINDS: usize = 16;

/// The (outline, filled) pair of marker `shape`; distinct for every `shape < MARKER_KINDS`.
fn marker_style(shape: usize) -> (usize, bool) {
    let shape = shape % MARKER_KINDS;
    (shape % 8, shape < 8)
}

fn draw_marker<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    shape: usize,
    (x, y): (i32, i32),
    colour: RGBColor,
) -> Result<(), ChartError> {
    let (outline, filled) = marker_style(shape);
    let style = if filled {
        colour.filled()
    } else {
        colour.stroke_width(2)
    };
    let r = 5;
    let polygon = |points: Vec<(i32, i32)>| -> Result<(), ChartError> {
        if filled {
            area.draw(&Polygon::new(points, style)).map_err(draw_err)
        } else {
            let mut closed = points.clone();
            closed.push(points[0]);
            area.draw(&PathElement::new(closed, style))
                .map_err(draw_err)
        }
    };
    let line = |from: (i32, i32), to: (i32, i32)| -> Result<(), ChartError> {
        area.draw(&PathElement::new(vec![from, to], colour.stroke_width(2)))
            .map_err(draw_err)
    };
    match outline {
        0 => area.draw(&Circle::new((x, y), r, style)).map_err(draw_err),
        1 => area
            .draw(&Rectangle::new([(x - r, y - r), (x + r, y + r)], style))
            .map_err(draw_err),
        2 => polygon(vec![(x, y - r - 1), (x - r, y + r), (x + r, y + r)]),
        3 => polygon(vec![(x, y + r + 1), (x - r, y - r), (x + r, y - r)]),
        4 => polygon(vec![
            (x, y - r - 1),
            (x + r + 1, y),
            (x, y + r + 1),
            (x - r - 1, y),
        ]),
        5 => polygon(vec![
            (x - r, y - 2),
            (x - 2, y - 2),
            (x - 2, y - r),
            (x + 2, y - r),
            (x + 2, y - 2),
            (x + r, y - 2),
            (x + r, y + 2),
            (x + 2, y + 2),
            (x + 2, y + r),
            (x - 2, y + r),
            (x - 2, y + 2),
            (x - r, y + 2),
        ]),
        6 => {
            line((x - r, y - r), (x + r, y + r))?;
            line((x - r, y + r), (x + r, y - r))?;
            if filled {
                line((x - r, y), (x + r, y))?;
            }
            Ok(())
        }
        _ => polygon(vec![
            (x - r, y - 2),
            (x, y - r - 1),
            (x + r, y - 2),
            (x + r - 2, y + r),
            (x - r + 2, y + r),
        ]),
    }
}

fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[Legend],
) -> Result<(), ChartError> {
    let font = (FAMILY, 13).into_font().color(&BLACK);
    let mut y = 60;
    for entry in entries {
        match entry {
            Legend::Line(c, label) => {
                area.draw(&PathElement::new(vec![(8, y), (36, y)], c.stroke_width(3)))
                    .map_err(draw_err)?;
                draw_wrapped(area, label, (44, y - 8), &font, &mut y)?;
            }
            Legend::Marker(shape, label) => {
                draw_marker(area, *shape, (22, y), RGBColor(90, 90, 90))?;
                draw_wrapped(area, label, (44, y - 8), &font, &mut y)?;
            }
        }
        y += 22;
    }
    Ok(())
}

/// Legend labels wrap at ~36 characters so long machine/framework names stay in the column.
fn draw_wrapped<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    label: &str,
    (x, y0): (i32, i32),
    font: &TextStyle,
    y: &mut i32,
) -> Result<(), ChartError> {
    let mut lines: Vec<String> = vec![String::new()];
    for word in label.split(' ') {
        let last = lines.last_mut().expect("non-empty");
        if !last.is_empty() && last.chars().count() + word.chars().count() > 36 {
            lines.push(word.to_string());
        } else {
            if !last.is_empty() {
                last.push(' ');
            }
            last.push_str(word);
        }
    }
    for (i, line) in lines.iter().enumerate() {
        area.draw(&Text::new(
            line.clone(),
            (x, y0 + 16 * i as i32),
            font.clone(),
        ))
        .map_err(draw_err)?;
    }
    *y += 16 * (lines.len() as i32 - 1);
    Ok(())
}

pub fn roofline(chart: &RooflineChart) -> Result<Rendered, ChartError> {
    if chart.roofs.is_empty() {
        return Err(ChartError::Empty(
            "a roofline needs at least one roof".into(),
        ));
    }
    if let Some(r) = chart
        .roofs
        .iter()
        .find(|r| !(usable(r.peak_flops_per_s) && usable(r.bandwidth_bytes_per_s)))
    {
        return Err(ChartError::Empty(format!(
            "roof {:?} has no positive ceilings",
            r.label
        )));
    }
    let drawable: Vec<&RoofPoint> = chart
        .points
        .iter()
        .filter(|p| {
            p.roof_index < chart.roofs.len()
                && usable(p.intensity_flops_per_byte)
                && usable(p.achieved_flops_per_s)
        })
        .collect();
    let skipped = chart.points.len() - drawable.len();
    let ridges: Vec<f64> = chart
        .roofs
        .iter()
        .map(|r| r.peak_flops_per_s / r.bandwidth_bytes_per_s)
        .collect();
    let (x_lo, x_hi) = log_range(
        drawable
            .iter()
            .map(|p| p.intensity_flops_per_byte)
            .chain(ridges.iter().copied())
            .chain(ridges.iter().map(|r| r / 20.0))
            .chain(ridges.iter().map(|r| r * 20.0)),
        1.5,
    )
    .expect("ridges are positive");
    let (y_lo, y_hi) = log_range(
        drawable
            .iter()
            .map(|p| p.achieved_flops_per_s)
            .chain(chart.roofs.iter().map(|r| r.peak_flops_per_s))
            .chain(chart.roofs.iter().map(|r| x_lo * r.bandwidth_bytes_per_s)),
        1.6,
    )
    .expect("peaks are positive");
    let mut kinds: Vec<&str> = drawable.iter().map(|p| p.label.as_str()).collect();
    kinds.sort();
    kinds.dedup();
    let plan = RoofPlan {
        chart,
        drawable,
        ridges,
        x: (x_lo, x_hi),
        y: (y_lo, y_hi),
        kinds,
    };
    let (svg, png) = render_both(&plan)?;
    Ok(Rendered {
        svg,
        png,
        skipped_points: skipped,
    })
}

struct RoofPlan<'a> {
    chart: &'a RooflineChart,
    drawable: Vec<&'a RoofPoint>,
    ridges: Vec<f64>,
    x: (f64, f64),
    y: (f64, f64),
    kinds: Vec<&'a str>,
}

impl Figure for RoofPlan<'_> {
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Result<(), ChartError> {
        let RoofPlan {
            chart,
            drawable,
            ridges,
            x: (x_lo, x_hi),
            y: (y_lo, y_hi),
            kinds,
        } = self;
        let (x_lo, x_hi, y_lo, y_hi) = (*x_lo, *x_hi, *y_lo, *y_hi);
        let shape_of = |label: &str| kinds.iter().position(|k| *k == label).unwrap_or(0);
        root.fill(&WHITE).map_err(draw_err)?;
        let (plot, legend) = root.split_horizontally(WIDTH - LEGEND_WIDTH);
        let mut c = ChartBuilder::on(&plot)
            .caption(&chart.title, (FAMILY, 20))
            .margin(12)
            .x_label_area_size(48)
            .y_label_area_size(90)
            .build_cartesian_2d(log_axis(x_lo, x_hi), log_axis(y_lo, y_hi))
            .map_err(draw_err)?;
        c.configure_mesh()
            .x_desc("arithmetic intensity (FLOP/byte)")
            .y_desc("attainable / achieved FLOP/s")
            .x_label_formatter(&|v| trim(*v))
            .y_label_formatter(&|v| si_label(*v, "FLOP/s"))
            .label_style((FAMILY, 13))
            .axis_desc_style((FAMILY, 15))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(draw_err)?;
        for (i, roof) in chart.roofs.iter().enumerate() {
            let ridge = ridges[i];
            let line = vec![
                (x_lo, x_lo * roof.bandwidth_bytes_per_s),
                (ridge, roof.peak_flops_per_s),
                (x_hi, roof.peak_flops_per_s),
            ];
            c.draw_series(LineSeries::new(line, colour(i).stroke_width(3)))
                .map_err(draw_err)?;
            c.draw_series(std::iter::once(Circle::new(
                (ridge, roof.peak_flops_per_s),
                7,
                colour(i).stroke_width(2),
            )))
            .map_err(draw_err)?;
            c.draw_series(std::iter::once(Text::new(
                format!("ridge {}", trim(ridge)),
                (ridge * 1.08, roof.peak_flops_per_s * 1.12),
                (FAMILY, 12).into_font().color(&colour(i)),
            )))
            .map_err(draw_err)?;
        }
        let plotting = c.plotting_area();
        for p in drawable.iter() {
            let (x, y) =
                plotting.map_coordinate(&(p.intensity_flops_per_byte, p.achieved_flops_per_s));
            draw_marker(&root, shape_of(&p.label), (x, y), colour(p.roof_index))?;
        }
        let mut entries: Vec<Legend> = chart
            .roofs
            .iter()
            .enumerate()
            .map(|(i, r)| Legend::Line(colour(i), r.label.clone()))
            .collect();
        entries.extend(
            kinds
                .iter()
                .enumerate()
                .map(|(i, k)| Legend::Marker(i, k.to_string())),
        );
        draw_legend(&legend, &entries)?;
        root.present().map_err(draw_err)
    }
}

pub fn line_chart(chart: &LineChart) -> Result<Rendered, ChartError> {
    let keep = |v: f64, log: bool| v.is_finite() && (!log || v > 0.0);
    let mut skipped = 0;
    let series: Vec<(String, Vec<&SeriesPoint>)> = chart
        .series
        .iter()
        .map(|s| {
            let pts: Vec<&SeriesPoint> = s
                .points
                .iter()
                .filter(|p| keep(p.x, chart.x_log) && keep(p.y, chart.y_log))
                .collect();
            skipped += s.points.len() - pts.len();
            (s.label.clone(), pts)
        })
        .filter(|(_, pts)| !pts.is_empty())
        .collect();
    if series.is_empty() {
        return Err(ChartError::Empty(format!(
            "{:?} has no drawable points",
            chart.title
        )));
    }
    let xs = || series.iter().flat_map(|(_, p)| p.iter().map(|p| p.x));
    let ys = || {
        series.iter().flat_map(|(_, p)| {
            p.iter()
                .flat_map(|p| [Some(p.y), p.y_low, p.y_high])
                .flatten()
        })
    };
    let range = |values: Vec<f64>, log: bool| -> (f64, f64) {
        if log {
            log_range(values.into_iter(), 1.3).unwrap_or((0.1, 10.0))
        } else {
            let lo = values
                .iter()
                .cloned()
                .fold(f64::INFINITY, f64::min)
                .min(0.0);
            let hi = values.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            (lo, if hi > lo { hi * 1.1 } else { lo + 1.0 })
        }
    };
    let (x_lo, x_hi) = range(xs().collect(), chart.x_log);
    let (y_lo, y_hi) = range(
        ys().chain(chart.references.iter().map(|r| r.y))
            .filter(|v| keep(*v, chart.y_log))
            .collect(),
        chart.y_log,
    );
    let unit = chart
        .y_label
        .rsplit('(')
        .next()
        .map(|u| u.trim_end_matches(')').to_string())
        .unwrap_or_default();
    let plan = LinePlan {
        chart,
        series,
        x: (x_lo, x_hi),
        y: (y_lo, y_hi),
        unit,
    };
    let (svg, png) = render_both(&plan)?;
    Ok(Rendered {
        svg,
        png,
        skipped_points: skipped,
    })
}

struct LinePlan<'a> {
    chart: &'a LineChart,
    series: Vec<(String, Vec<&'a SeriesPoint>)>,
    x: (f64, f64),
    y: (f64, f64),
    unit: String,
}

impl Figure for LinePlan<'_> {
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Result<(), ChartError> {
        let LinePlan {
            chart,
            series,
            x: (x_lo, x_hi),
            y: (y_lo, y_hi),
            unit,
        } = self;
        let (x_lo, x_hi, y_lo, y_hi) = (*x_lo, *x_hi, *y_lo, *y_hi);
        let keep = |v: f64, log: bool| v.is_finite() && (!log || v > 0.0);
        root.fill(&WHITE).map_err(draw_err)?;
        let (plot, legend) = root.split_horizontally(WIDTH - LEGEND_WIDTH);
        let mut builder = ChartBuilder::on(&plot);
        builder
            .caption(&chart.title, (FAMILY, 20))
            .margin(12)
            .x_label_area_size(48)
            .y_label_area_size(90);
        // Each axis may be linear or logarithmic: four coordinate types, one drawing routine.
        macro_rules! body {
            ($c:expr) => {{
                let mut c = $c.map_err(draw_err)?;
                c.configure_mesh()
                    .x_desc(chart.x_label.as_str())
                    .y_desc(chart.y_label.as_str())
                    .x_label_formatter(&|v| si_label(*v, ""))
                    .y_label_formatter(&|v| si_label(*v, &unit))
                    .label_style((FAMILY, 13))
                    .axis_desc_style((FAMILY, 15))
                    .light_line_style(RGBColor(235, 235, 235))
                    .draw()
                    .map_err(draw_err)?;
                let grey = RGBColor(150, 150, 150);
                for &m in chart.markers.iter().filter(|m| **m >= x_lo && **m <= x_hi) {
                    c.draw_series(std::iter::once(PathElement::new(
                        vec![(m, y_lo), (m, y_hi)],
                        RGBColor(200, 200, 200).stroke_width(1),
                    )))
                    .map_err(draw_err)?;
                }
                for r in chart.references.iter().filter(|r| keep(r.y, chart.y_log)) {
                    // Dashes drawn as short segments: plotters' dashed style is backend-specific.
                    let steps = 60;
                    let at = |k: usize| {
                        let f = k as f64 / steps as f64;
                        if chart.x_log {
                            (x_lo.ln() + f * (x_hi.ln() - x_lo.ln())).exp()
                        } else {
                            x_lo + f * (x_hi - x_lo)
                        }
                    };
                    for k in (0..steps).step_by(2) {
                        c.draw_series(std::iter::once(PathElement::new(
                            vec![(at(k), r.y), (at(k + 1), r.y)],
                            grey.stroke_width(2),
                        )))
                        .map_err(draw_err)?;
                    }
                    c.draw_series(std::iter::once(Text::new(
                        r.label.clone(),
                        (at(1), r.y),
                        (FAMILY, 12).into_font().color(&grey),
                    )))
                    .map_err(draw_err)?;
                }
                for (i, (_, pts)) in series.iter().enumerate() {
                    let col = colour(i);
                    c.draw_series(LineSeries::new(
                        pts.iter().map(|p| (p.x, p.y)),
                        col.stroke_width(2),
                    ))
                    .map_err(draw_err)?;
                    c.draw_series(pts.iter().map(|p| Circle::new((p.x, p.y), 4, col.filled())))
                        .map_err(draw_err)?;
                    for p in pts {
                        if let (Some(lo), Some(hi)) = (p.y_low, p.y_high)
                            && keep(lo, chart.y_log)
                            && keep(hi, chart.y_log)
                        {
                            c.draw_series(std::iter::once(PathElement::new(
                                vec![(p.x, lo), (p.x, hi)],
                                col.stroke_width(1),
                            )))
                            .map_err(draw_err)?;
                        }
                    }
                }
            }};
        }
        match (chart.x_log, chart.y_log) {
            (true, true) => {
                body!(builder.build_cartesian_2d(log_axis(x_lo, x_hi), log_axis(y_lo, y_hi)))
            }
            (true, false) => {
                body!(builder.build_cartesian_2d(log_axis(x_lo, x_hi), y_lo..y_hi))
            }
            (false, true) => {
                body!(builder.build_cartesian_2d(x_lo..x_hi, log_axis(y_lo, y_hi)))
            }
            (false, false) => body!(builder.build_cartesian_2d(x_lo..x_hi, y_lo..y_hi)),
        }
        let entries: Vec<Legend> = series
            .iter()
            .enumerate()
            .map(|(i, (label, _))| Legend::Line(colour(i), label.clone()))
            .collect();
        draw_legend(&legend, &entries)?;
        root.present().map_err(draw_err)
    }
}

/// A matrix of values, one coloured cell each: a peer-to-peer bandwidth matrix (row: source
/// GPU, column: destination).
#[derive(Debug, Clone, PartialEq)]
pub struct Heatmap {
    pub title: String,
    pub row_title: String,
    pub column_title: String,
    pub rows: Vec<String>,
    pub columns: Vec<String>,
    /// `values[row][column]`; `None` where nothing was measured (the diagonal, say).
    pub values: Vec<Vec<Option<f64>>>,
    /// Unit of the values, for the cell labels (`B/s`).
    pub unit: String,
}

/// Draws a heatmap: darker cells are larger values, each cell carries its value, unmeasured
/// cells are left white with a dash.
pub fn heatmap(chart: &Heatmap) -> Result<Rendered, ChartError> {
    let values: Vec<f64> = chart
        .values
        .iter()
        .flatten()
        .flatten()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    if chart.rows.is_empty() || chart.columns.is_empty() || values.is_empty() {
        return Err(ChartError::Empty(format!(
            "{:?} has no values",
            chart.title
        )));
    }
    if chart.values.len() != chart.rows.len()
        || chart.values.iter().any(|r| r.len() != chart.columns.len())
    {
        return Err(ChartError::Empty(format!(
            "{:?}: {} rows × {} columns of labels but values of another shape",
            chart.title,
            chart.rows.len(),
            chart.columns.len()
        )));
    }
    let (svg, png) = render_both(&HeatmapPlan { chart })?;
    Ok(Rendered {
        svg,
        png,
        skipped_points: 0,
    })
}

struct HeatmapPlan<'a> {
    chart: &'a Heatmap,
}

impl Figure for HeatmapPlan<'_> {
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Result<(), ChartError> {
        let chart = self.chart;
        root.fill(&WHITE).map_err(draw_err)?;
        let (w, h) = (WIDTH as i32, HEIGHT as i32);
        let (left, top, right, bottom) = (170, 70, 40, 70);
        let n_rows = chart.rows.len() as i32;
        let n_cols = chart.columns.len() as i32;
        let cell_w = ((w - left - right) / n_cols).min(160);
        let cell_h = ((h - top - bottom) / n_rows).min(90);
        let max = chart
            .values
            .iter()
            .flatten()
            .flatten()
            .copied()
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::max);
        let text = |size: u32| (FAMILY, size).into_font().color(&BLACK);
        root.draw(&Text::new(chart.title.clone(), (left, 20), text(20)))
            .map_err(draw_err)?;
        root.draw(&Text::new(
            format!("{} →", chart.column_title),
            (left, top - 28),
            text(14),
        ))
        .map_err(draw_err)?;
        root.draw(&Text::new(
            format!("{} ↓", chart.row_title),
            (10, top - 28),
            text(14),
        ))
        .map_err(draw_err)?;
        for (c, label) in chart.columns.iter().enumerate() {
            let x = left + c as i32 * cell_w + 6;
            root.draw(&Text::new(label.clone(), (x, top - 12), text(13)))
                .map_err(draw_err)?;
        }
        for (r, label) in chart.rows.iter().enumerate() {
            let y = top + r as i32 * cell_h + cell_h / 2 - 6;
            root.draw(&Text::new(label.clone(), (10, y), text(13)))
                .map_err(draw_err)?;
            for (c, value) in chart.values[r].iter().enumerate() {
                let x0 = left + c as i32 * cell_w;
                let y0 = top + r as i32 * cell_h;
                let cell = [(x0, y0), (x0 + cell_w - 2, y0 + cell_h - 2)];
                match value.filter(|v| v.is_finite()) {
                    Some(v) => {
                        // Light to dark blue by the share of the largest value.
                        let f = if max > 0.0 {
                            (v / max).clamp(0.0, 1.0)
                        } else {
                            0.0
                        };
                        let mix = |light: f64, dark: f64| (light + f * (dark - light)) as u8;
                        let fill = RGBColor(mix(222.0, 8.0), mix(235.0, 69.0), mix(247.0, 148.0));
                        root.draw(&Rectangle::new(cell, fill.filled()))
                            .map_err(draw_err)?;
                        let ink = if f > 0.55 { WHITE } else { BLACK };
                        root.draw(&Text::new(
                            si_label(v, &chart.unit),
                            (x0 + 8, y0 + cell_h / 2 - 7),
                            (FAMILY, 14).into_font().color(&ink),
                        ))
                        .map_err(draw_err)?;
                    }
                    None => {
                        root.draw(&Rectangle::new(cell, RGBColor(245, 245, 245).filled()))
                            .map_err(draw_err)?;
                        root.draw(&Text::new(
                            "—".to_string(),
                            (x0 + 8, y0 + cell_h / 2 - 7),
                            text(14),
                        ))
                        .map_err(draw_err)?;
                    }
                }
            }
        }
        root.present().map_err(draw_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ticks_label_each_value_once_at_readable_steps() {
        let (labelled, light) = log_ticks(8e7, 1.2e10);
        assert_eq!(
            labelled,
            vec![1e8, 2e8, 5e8, 1e9, 2e9, 5e9, 1e10],
            "≤ 2.5 decades: 1-2-5"
        );
        assert!(light.contains(&3e9) && light.len() > labelled.len());
        let (labelled, _) = log_ticks(5e9, 2e15);
        assert_eq!(labelled, vec![1e10, 1e11, 1e12, 1e13, 1e14, 1e15]);
        let (labelled, _) = log_ticks(1e6, 1e16);
        assert_eq!(labelled, vec![1e6, 1e8, 1e10, 1e12, 1e14, 1e16]);
        // Narrower than one 1-2-5 step: every integer multiple, still at least two labels.
        let (labelled, _) = log_ticks(2.2e12, 4.1e12);
        assert_eq!(labelled, vec![3e12, 4e12]);
        // Every label distinct (plotters' own log ticks repeated a decade at some ranges).
        for (lo, hi) in [(0.3, 7000.0), (1.5e-6, 2e-2), (9e10, 1.1e12)] {
            let (labelled, _) = log_ticks(lo, hi);
            let mut dedup = labelled.clone();
            dedup.dedup();
            assert_eq!(dedup, labelled, "{lo}..{hi}");
            assert!(labelled.len() >= 2, "{lo}..{hi}: {labelled:?}");
        }
        assert_eq!(log_ticks(0.0, 1.0), (Vec::new(), Vec::new()));
    }

    fn roofline_chart() -> RooflineChart {
        RooflineChart {
            title: "Roofline <f16> & more".into(),
            roofs: vec![
                Roof {
                    label: "Apple M5".into(),
                    peak_flops_per_s: 14e12,
                    bandwidth_bytes_per_s: 118e9,
                },
                Roof {
                    label: "Apple M4 Pro".into(),
                    peak_flops_per_s: 6e12,
                    bandwidth_bytes_per_s: 230e9,
                },
            ],
            points: vec![
                RoofPoint {
                    roof_index: 0,
                    label: "gemm".into(),
                    intensity_flops_per_byte: 1365.0,
                    achieved_flops_per_s: 13e12,
                },
                RoofPoint {
                    roof_index: 1,
                    label: "attention".into(),
                    intensity_flops_per_byte: 512.0,
                    achieved_flops_per_s: 3e12,
                },
                RoofPoint {
                    roof_index: 1,
                    label: "decode".into(),
                    intensity_flops_per_byte: 1.0,
                    achieved_flops_per_s: 0.1e12,
                },
                RoofPoint {
                    roof_index: 0,
                    label: "bad".into(),
                    intensity_flops_per_byte: -1.0,
                    achieved_flops_per_s: 1.0,
                },
            ],
        }
    }

    #[test]
    fn roofline_renders_deterministically_with_escaped_text() {
        let a = roofline(&roofline_chart()).unwrap();
        let b = roofline(&roofline_chart()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.skipped_points, 1);
        assert!(a.png.starts_with(&[0x89, b'P', b'N', b'G']));
        assert!(
            a.svg.contains("Roofline &lt;f16&gt; &amp; more"),
            "title must be escaped"
        );
        assert!(a.svg.contains("Apple M4 Pro"));
        assert!(!a.svg.contains("<f16>"));
    }

    #[test]
    fn line_chart_renders_and_rejects_empty_input() {
        let chart = LineChart {
            title: "GEMM".into(),
            x_label: "size".into(),
            y_label: "throughput (FLOP/s)".into(),
            x_log: true,
            y_log: true,
            series: vec![Series {
                label: "m".into(),
                points: vec![
                    SeriesPoint {
                        x: 512.0,
                        y: 1e12,
                        y_low: Some(0.9e12),
                        y_high: Some(1.1e12),
                    },
                    SeriesPoint {
                        x: 1024.0,
                        y: 2e12,
                        y_low: None,
                        y_high: None,
                    },
                ],
            }],
            ..Default::default()
        };
        let r = line_chart(&chart).unwrap();
        // A reference line above every point widens the range to show itself.
        let with_reference = LineChart {
            references: vec![Reference {
                label: "datasheet".into(),
                y: 5e12,
            }],
            markers: vec![700.0],
            ..chart.clone()
        };
        let r2 = line_chart(&with_reference).unwrap();
        assert!(r2.svg.contains("datasheet"));
        assert_ne!(r2.svg, r.svg);
        assert_eq!(r, line_chart(&chart).unwrap());
        let empty = LineChart {
            series: vec![],
            ..chart
        };
        assert!(matches!(line_chart(&empty), Err(ChartError::Empty(_))));
        assert!(matches!(
            roofline(&RooflineChart {
                title: "x".into(),
                roofs: vec![],
                points: vec![]
            }),
            Err(ChartError::Empty(_))
        ));
    }

    #[test]
    fn tick_labels() {
        assert_eq!(si_label(1.5e12, "FLOP/s"), "1.5 TFLOP/s");
        assert_eq!(si_label(100e9, "B/s"), "100 GB/s");
        assert_eq!(si_label(0.5, ""), "0.5");
    }

    #[test]
    fn sixteen_workloads_get_sixteen_different_markers() {
        let styles: std::collections::BTreeSet<(usize, bool)> =
            (0..MARKER_KINDS).map(marker_style).collect();
        assert_eq!(styles.len(), MARKER_KINDS);
    }

    #[test]
    fn heatmaps_draw_values_and_refuse_bad_shapes() {
        let chart = Heatmap {
            title: "P2P".into(),
            row_title: "from GPU".into(),
            column_title: "to GPU".into(),
            rows: vec!["0".into(), "1".into()],
            columns: vec!["0".into(), "1".into()],
            values: vec![vec![None, Some(3.9e11)], vec![Some(3.8e11), None]],
            unit: "B/s".into(),
        };
        let r = heatmap(&chart).unwrap();
        assert!(
            r.svg.contains("390 GB/s") && r.svg.contains("380 GB/s"),
            "{}",
            &r.svg[..200]
        );
        assert_eq!(r, heatmap(&chart).unwrap());
        let bad = Heatmap {
            values: vec![vec![Some(1.0)]],
            ..chart.clone()
        };
        assert!(matches!(heatmap(&bad), Err(ChartError::Empty(_))));
    }
}
