//! A small SVG line-chart writer: a grid of panels sharing one x axis, each with its axes,
//! ticks, labels and legend. Plain SVG 1.1 with no scripts or external fonts, so browsers,
//! image viewers and `rsvg-convert` all show it the same way.

use std::fmt::Write as _;

/// One curve of a panel.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The legend text.
    pub label: String,
    /// `(x, y)` points in x order; non-finite values are left out.
    pub points: Vec<(f64, f64)>,
    /// Stroke colour (`#rrggbb`).
    pub color: &'static str,
    /// A dashed line (reference levels such as `ln K`).
    pub dashed: bool,
    /// A marker at every point (sparse measurements such as k-NN).
    pub markers: bool,
}

/// One chart of the grid.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    /// The heading above the chart.
    pub title: String,
    /// The y-axis label.
    pub y_label: String,
    /// The curves.
    pub series: Vec<Series>,
    /// Shown in the middle of the chart when it has no data.
    pub empty_note: String,
}

/// A grid of panels with a shared x axis.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// The heading of the whole figure.
    pub title: String,
    /// The x-axis label of every panel.
    pub x_label: String,
    /// Panels, row by row.
    pub panels: Vec<Panel>,
    /// Panels per row.
    pub columns: usize,
}

/// A qualitative palette that stays readable for common colour-vision deficiencies.
pub const PALETTE: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];
/// The colour of reference levels.
pub const REFERENCE: &str = "#7f7f7f";

const PANEL_W: f64 = 520.0;
const PANEL_H: f64 = 300.0;
const LEFT: f64 = 72.0;
const RIGHT: f64 = 18.0;
const TOP: f64 = 34.0;
const BOTTOM: f64 = 46.0;
const TITLE_H: f64 = 40.0;

/// A value range of an axis.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Range {
    lo: f64,
    hi: f64,
}

impl Range {
    /// The range covering `values`, widened when flat, padded by 5 % when `pad`.
    fn of(values: impl Iterator<Item = f64>, pad: bool) -> Option<Self> {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for v in values.filter(|v| v.is_finite()) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if lo > hi {
            return None;
        }
        if hi - lo <= f64::EPSILON * hi.abs().max(1.0) {
            let half = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
            return Some(Self {
                lo: lo - half,
                hi: hi + half,
            });
        }
        let margin = if pad { 0.05 * (hi - lo) } else { 0.0 };
        Some(Self {
            lo: lo - margin,
            hi: hi + margin,
        })
    }

    fn fraction(&self, v: f64) -> f64 {
        (v - self.lo) / (self.hi - self.lo)
    }
}

/// About `target` round tick positions (1, 2 or 5 times a power of ten apart) within
/// `range`, with their step.
fn ticks(range: Range, target: usize) -> (Vec<f64>, f64) {
    let raw = (range.hi - range.lo) / target.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    let first = (range.lo / step).ceil() as i64;
    let last = (range.hi / step).floor() as i64;
    let ticks = (first..=last).map(|i| i as f64 * step).collect();
    (ticks, step)
}

/// A tick value with as many decimals as its step needs (`0.25`, `1200`, `3e-5`).
fn tick_label(value: f64, step: f64) -> String {
    if value == 0.0 {
        return "0".to_string();
    }
    if step < 1e-3 || value.abs() >= 1e6 {
        let digits = ((value.abs().log10() - step.log10()).floor().max(0.0)) as usize;
        return format!("{value:.digits$e}");
    }
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    format!("{value:.decimals$}")
}

/// `text` with the XML special characters escaped.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl Figure {
    /// The figure as an SVG document.
    pub fn to_svg(&self) -> String {
        let columns = self.columns.max(1);
        let rows = self.panels.len().div_ceil(columns);
        let width = columns as f64 * PANEL_W;
        let height = TITLE_H + rows as f64 * PANEL_H;
        let x_range = Range::of(
            self.panels
                .iter()
                .flat_map(|p| &p.series)
                .flat_map(|s| s.points.iter().map(|p| p.0)),
            false,
        );
        let mut svg = String::new();
        let _ = writeln!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">"#
        );
        let _ = writeln!(
            svg,
            r#"<rect width="{width}" height="{height}" fill="white"/>"#
        );
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="26" font-size="18" text-anchor="middle" font-weight="bold">{}</text>"#,
            width / 2.0,
            escape(&self.title)
        );
        for (i, panel) in self.panels.iter().enumerate() {
            let origin = (
                (i % columns) as f64 * PANEL_W,
                TITLE_H + (i / columns) as f64 * PANEL_H,
            );
            panel.draw(&mut svg, origin, x_range, &self.x_label);
        }
        svg.push_str("</svg>\n");
        svg
    }
}

impl Panel {
    fn draw(&self, svg: &mut String, (ox, oy): (f64, f64), x_range: Option<Range>, x_label: &str) {
        let (plot_x, plot_y) = (ox + LEFT, oy + TOP);
        let (plot_w, plot_h) = (PANEL_W - LEFT - RIGHT, PANEL_H - TOP - BOTTOM);
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" font-size="14" font-weight="bold" text-anchor="middle">{}</text>"#,
            plot_x + plot_w / 2.0,
            oy + 22.0,
            escape(&self.title)
        );
        let _ = writeln!(
            svg,
            r##"<rect x="{plot_x}" y="{plot_y}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#444" stroke-width="1"/>"##
        );
        let y_range = Range::of(
            self.series
                .iter()
                .flat_map(|s| s.points.iter().map(|p| p.1)),
            true,
        );
        let (Some(xr), Some(yr)) = (x_range, y_range) else {
            let _ = writeln!(
                svg,
                r##"<text x="{}" y="{}" font-size="12" fill="#666" text-anchor="middle">{}</text>"##,
                plot_x + plot_w / 2.0,
                plot_y + plot_h / 2.0,
                escape(&self.empty_note)
            );
            return;
        };
        let px = |x: f64| plot_x + xr.fraction(x) * plot_w;
        let py = |y: f64| plot_y + (1.0 - yr.fraction(y)) * plot_h;

        let (x_ticks, x_step) = ticks(xr, 6);
        for t in x_ticks {
            let x = px(t);
            let _ = writeln!(
                svg,
                r##"<line x1="{x:.1}" y1="{plot_y}" x2="{x:.1}" y2="{}" stroke="#e4e4e4"/><line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{}" stroke="#444"/><text x="{x:.1}" y="{}" font-size="11" text-anchor="middle">{}</text>"##,
                plot_y + plot_h,
                plot_y + plot_h,
                plot_y + plot_h + 5.0,
                plot_y + plot_h + 17.0,
                tick_label(t, x_step)
            );
        }
        let (y_ticks, y_step) = ticks(yr, 5);
        for t in y_ticks {
            let y = py(t);
            let _ = writeln!(
                svg,
                r##"<line x1="{plot_x}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#e4e4e4"/><line x1="{}" y1="{y:.1}" x2="{plot_x}" y2="{y:.1}" stroke="#444"/><text x="{}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"##,
                plot_x + plot_w,
                plot_x - 5.0,
                plot_x - 8.0,
                y + 4.0,
                tick_label(t, y_step)
            );
        }
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" font-size="12" text-anchor="middle">{}</text>"#,
            plot_x + plot_w / 2.0,
            oy + PANEL_H - 10.0,
            escape(x_label)
        );
        let _ = writeln!(
            svg,
            r#"<text transform="translate({},{}) rotate(-90)" font-size="12" text-anchor="middle">{}</text>"#,
            ox + 16.0,
            plot_y + plot_h / 2.0,
            escape(&self.y_label)
        );

        for s in &self.series {
            let points: Vec<String> = s
                .points
                .iter()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
                .collect();
            let dash = if s.dashed {
                r#" stroke-dasharray="6,4""#
            } else {
                ""
            };
            let _ = writeln!(
                svg,
                r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="1.6"{dash}/>"#,
                points.join(" "),
                s.color
            );
            if s.markers {
                for p in &points {
                    let (x, y) = p.split_once(',').expect("x,y");
                    let _ = writeln!(
                        svg,
                        r#"<circle cx="{x}" cy="{y}" r="3.5" fill="{}"/>"#,
                        s.color
                    );
                }
            }
        }
        self.draw_legend(svg, (plot_x + plot_w, plot_y));
    }

    /// The legend in the top-right corner of the plot area.
    fn draw_legend(&self, svg: &mut String, (right, top): (f64, f64)) {
        if self.series.is_empty() {
            return;
        }
        let longest = self
            .series
            .iter()
            .map(|s| s.label.chars().count())
            .max()
            .unwrap_or(0);
        let (w, line_h) = (36.0 + 6.6 * longest as f64, 16.0);
        let h = 8.0 + line_h * self.series.len() as f64;
        let x = right - w - 6.0;
        let _ = writeln!(
            svg,
            r##"<rect x="{x:.1}" y="{:.1}" width="{w:.1}" height="{h:.1}" fill="white" fill-opacity="0.85" stroke="#bbb"/>"##,
            top + 6.0
        );
        for (i, s) in self.series.iter().enumerate() {
            let y = top + 6.0 + 4.0 + line_h * (i as f64 + 0.5);
            let dash = if s.dashed {
                r#" stroke-dasharray="6,4""#
            } else {
                ""
            };
            let _ = writeln!(
                svg,
                r#"<line x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{}" stroke-width="2"{dash}/><text x="{:.1}" y="{:.1}" font-size="11">{}</text>"#,
                x + 6.0,
                x + 26.0,
                s.color,
                x + 31.0,
                y + 4.0,
                escape(&s.label)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_inside_the_range() {
        let (t, step) = ticks(Range { lo: 0.0, hi: 93.0 }, 6);
        assert_eq!(step, 20.0);
        assert_eq!(t, vec![0.0, 20.0, 40.0, 60.0, 80.0]);
        let (t, step) = ticks(Range { lo: 2.21, hi: 2.32 }, 5);
        assert!((step - 0.05).abs() < 1e-12);
        assert_eq!(t.len(), 2);
        assert_eq!(tick_label(t[0], step), "2.25");
        assert_eq!(tick_label(1200.0, 200.0), "1200");
        assert_eq!(tick_label(3e-5, 1e-5), "3e-5");
    }

    #[test]
    fn a_figure_has_its_titles_labels_legend_and_one_polyline_per_series() {
        let figure = Figure {
            title: "run <a>".into(),
            x_label: "iteration".into(),
            columns: 2,
            panels: vec![
                Panel {
                    title: "Loss".into(),
                    y_label: "loss".into(),
                    series: vec![
                        Series {
                            label: "loss".into(),
                            points: vec![(0.0, 2.0), (1.0, f64::NAN), (2.0, 1.5)],
                            color: PALETTE[0],
                            dashed: false,
                            markers: false,
                        },
                        Series {
                            label: "ln K".into(),
                            points: vec![(0.0, 2.3), (2.0, 2.3)],
                            color: REFERENCE,
                            dashed: true,
                            markers: false,
                        },
                    ],
                    empty_note: String::new(),
                },
                Panel {
                    title: "k-NN".into(),
                    y_label: "top-1 (%)".into(),
                    series: Vec::new(),
                    empty_note: "no k-NN points".into(),
                },
            ],
        };
        let svg = figure.to_svg();
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("run &lt;a&gt;"), "escaped title");
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("stroke-dasharray"));
        assert!(svg.contains(">iteration<"), "the x label");
        assert!(svg.contains(">no k-NN points<"));
        // The NaN point is left out: the loss polyline has two points.
        let loss = svg.lines().find(|l| l.contains("<polyline")).unwrap();
        assert_eq!(loss.matches(',').count(), 2, "{loss}");
    }
}
