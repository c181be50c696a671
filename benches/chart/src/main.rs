//! Draws the ratio chart of a `benches/compare-nginx` run.
//!
//! ```text
//! ringd-bench-chart RESULTS.json OUT.png [--font FILE.ttf]
//! ```
//!
//! The JSON is the one the harness writes next to its markdown report. Every entry of its
//! `bars` array becomes one bar: the median ratio ringd/nginx (or ringd against a Rust peer:
//! may_minihttp, hyper) of one metric in one scenario, with a whisker from the smallest to the
//! largest per-round ratio. A horizontal line marks 1.0 (parity). Each bar says in its label
//! whether higher or lower is better for ringd; bars against a peer are a lighter shade.
//!
//! Text is drawn with a TrueType font read from a file (plotters' `ab_glyph` backend), so no
//! fontconfig or GUI library is needed: `--font`, else `$RINGD_CHART_FONT`, else DejaVu Sans
//! (Debian package `fonts-dejavu-core`) or Liberation Sans at their usual paths.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{register_font, FontStyle};
use serde::Deserialize;

/// Candidate y-axis ticks (ratios), thinned out when they would crowd.
const TICKS: &[f64] = &[
    0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0,
    500.0, 1000.0,
];

const FONT_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

/// The chart's input, written by benches/compare-nginx.
#[derive(Debug, Deserialize)]
struct Input {
    /// First line of the chart's caption.
    title: String,
    /// Second line (rounds, duration, host); may be empty.
    #[serde(default)]
    subtitle: String,
    /// One bar per scenario and metric, in drawing order.
    bars: Vec<Bar>,
}

#[derive(Debug, Deserialize)]
struct Bar {
    /// Scenario name, the first line of the bar's label.
    scenario: String,
    /// Metric, the second line of the label, e.g. "req/s ringd÷nginx" or "RSS/conn ringd÷nginx".
    metric: String,
    /// "higher" or "lower": which direction is better for ringd.
    better: String,
    /// The server ringd is compared with: "nginx" (also when absent, as in older files) or a
    /// Rust peer's name.
    #[serde(default = "nginx")]
    against: String,
    /// Median of the per-round ratios ringd/nginx, or null when it could not be measured.
    median: Option<f64>,
    /// Smallest per-round ratio.
    min: Option<f64>,
    /// Largest per-round ratio.
    max: Option<f64>,
}

fn main() -> Result<()> {
    let mut args = std::env::args_os().skip(1);
    let mut positional = Vec::new();
    let mut font: Option<PathBuf> = std::env::var_os("RINGD_CHART_FONT").map(PathBuf::from);
    while let Some(a) = args.next() {
        if a == "--font" {
            font = Some(args.next().context("--font needs a file")?.into());
        } else if a == "-h" || a == "--help" {
            println!("usage: ringd-bench-chart RESULTS.json OUT.png [--font FILE.ttf]");
            return Ok(());
        } else {
            positional.push(PathBuf::from(a));
        }
    }
    let [input, output] = positional.as_slice() else {
        bail!("usage: ringd-bench-chart RESULTS.json OUT.png [--font FILE.ttf]");
    };
    let text = std::fs::read_to_string(input).with_context(|| format!("reading {}", input.display()))?;
    let data: Input = serde_json::from_str(&text).with_context(|| format!("parsing {}", input.display()))?;
    load_font(font.as_deref())?;
    draw(&data, output)?;
    println!("chart written to {}", output.display());
    Ok(())
}

fn load_font(explicit: Option<&Path>) -> Result<()> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => FONT_CANDIDATES
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .context("no TrueType font found: install fonts-dejavu-core or pass --font FILE.ttf")?,
    };
    let bytes = std::fs::read(&path).with_context(|| format!("reading font {}", path.display()))?;
    // plotters keeps registered fonts for the life of the process.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| anyhow::anyhow!("{} is not a usable TrueType/OpenType font", path.display()))
}

fn nginx() -> String {
    "nginx".to_owned()
}

/// The colour of the metric, for the bar's label.
fn metric_colour(bar: &Bar) -> RGBColor {
    if bar.better == "lower" {
        RGBColor(46, 139, 87)
    } else if bar.metric.starts_with("req/s") {
        RGBColor(49, 104, 168)
    } else {
        RGBColor(222, 125, 44)
    }
}

/// The bar's fill: the metric's colour against nginx, halfway to white against a peer.
fn bar_colour(bar: &Bar) -> RGBColor {
    let RGBColor(r, g, b) = metric_colour(bar);
    if bar.against == "nginx" {
        return RGBColor(r, g, b);
    }
    let light = |c: u8| c + (255 - c) / 2;
    RGBColor(light(r), light(g), light(b))
}

fn draw(data: &Input, output: &Path) -> Result<()> {
    let n = data.bars.len();
    if n == 0 {
        bail!("no bars to draw");
    }
    let width = (120 + 150 * n as u32).max(640);
    let root = BitMapBackend::new(output, (width, 560)).into_drawing_area();
    root.fill(&WHITE)?;

    // Log scale: a ratio of 2 and one of 0.5 are the same distance from parity, and one
    // scenario far off (say 20x) does not flatten the others. Bars grow from 1.0.
    let values: Vec<f64> = data
        .bars
        .iter()
        .flat_map(|b| [b.median, b.min, b.max])
        .flatten()
        .filter(|v| v.is_finite() && *v > 0.0)
        .collect();
    let top = values.iter().copied().fold(1.0f64, f64::max);
    let bottom = values.iter().copied().fold(1.0f64, f64::min);
    let y_max = (top * 1.35).max(2.0);
    let y_min = (bottom / 1.35).min(0.5);
    // `y` moved up by `frac` of the (logarithmic) axis height.
    let up = |y: f64, frac: f64| y * (y_max / y_min).powf(frac);

    let caption = if data.subtitle.is_empty() {
        data.title.clone()
    } else {
        format!("{}\n{}", data.title, data.subtitle)
    };
    let (title_area, plot_area) = root.split_vertically(64);
    for (i, line) in caption.lines().enumerate() {
        let size = if i == 0 { 22 } else { 15 };
        title_area.draw(&Text::new(
            line.to_owned(),
            (16, 8 + 26 * i as i32),
            ("sans-serif", size).into_font(),
        ))?;
    }

    let mut chart = ChartBuilder::on(&plot_area)
        .margin(12)
        .x_label_area_size(66)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..n as f64, (y_min..y_max).log_scale())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .disable_y_mesh()
        .y_desc("ratio, log scale (1.0 = parity)")
        .x_labels(0)
        .y_labels(0)
        .y_label_formatter(&|_: &f64| String::new())
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 15))
        .draw()?;

    // Our own ticks and grid: plotters' log-axis labels crowd and skip values below 1.
    let mut last_tick = f64::NEG_INFINITY;
    for t in TICKS.iter().copied().filter(|t| (y_min..=y_max).contains(t)) {
        // at least 6% of the axis height between two labelled ticks
        if (t.ln() - last_tick) / (y_max / y_min).ln() < 0.06 {
            continue;
        }
        last_tick = t.ln();
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(0.0, t), (n as f64, t)],
            ShapeStyle::from(&RGBColor(210, 210, 210)).stroke_width(1),
        )))?;
        let (px, py) = chart.backend_coord(&(0.0, t));
        root.draw(&Text::new(
            format!("{t}"),
            (px - 8, py),
            ("sans-serif", 14)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Right, VPos::Center)),
        ))?;
    }

    for (i, bar) in data.bars.iter().enumerate() {
        let x0 = i as f64 + 0.18;
        let x1 = i as f64 + 0.82;
        let mid = i as f64 + 0.5;
        let (colour, label_colour) = (bar_colour(bar), metric_colour(bar));
        match bar.median.filter(|v| v.is_finite() && *v > 0.0) {
            Some(m) => {
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(x0, 1.0), (x1, m)],
                    colour.mix(0.8).filled(),
                )))?;
                if let (Some(lo), Some(hi)) = (bar.min.filter(|v| *v > 0.0), bar.max) {
                    let cap = 0.12;
                    let style = ShapeStyle::from(&BLACK).stroke_width(2);
                    for seg in [
                        vec![(mid, lo), (mid, hi)],
                        vec![(mid - cap, lo), (mid + cap, lo)],
                        vec![(mid - cap, hi), (mid + cap, hi)],
                    ] {
                        chart.draw_series(std::iter::once(PathElement::new(seg, style)))?;
                    }
                }
                // The value beyond the bar's end (and its whisker): above for gains, below for losses.
                let (label_y, vpos) = if m >= 1.0 {
                    (up(bar.max.unwrap_or(m).max(m), 0.01), VPos::Bottom)
                } else {
                    (up(bar.min.filter(|v| *v > 0.0).unwrap_or(m).min(m), -0.01), VPos::Top)
                };
                chart.draw_series(std::iter::once(Text::new(
                    format!("{m:.2}"),
                    (mid, label_y),
                    ("sans-serif", 15)
                        .into_font()
                        .color(&BLACK)
                        .pos(Pos::new(HPos::Center, vpos)),
                )))?;
            }
            None => {
                chart.draw_series(std::iter::once(Text::new(
                    "n/a".to_owned(),
                    (mid, up(y_min, 0.05)),
                    ("sans-serif", 15)
                        .into_font()
                        .color(&BLACK)
                        .pos(Pos::new(HPos::Center, VPos::Bottom)),
                )))?;
            }
        }
        // The bar's label under the x axis: scenario, then metric and direction.
        let (px, py) = chart.backend_coord(&(mid, y_min));
        let centred = Pos::new(HPos::Center, VPos::Top);
        root.draw(&Text::new(
            bar.scenario.clone(),
            (px, py + 6),
            ("sans-serif", 15).into_font().color(&BLACK).pos(centred),
        ))?;
        root.draw(&Text::new(
            bar.metric.clone(),
            (px, py + 25),
            ("sans-serif", 12).into_font().color(&label_colour).pos(centred),
        ))?;
        root.draw(&Text::new(
            format!("{} is better", bar.better),
            (px, py + 41),
            ("sans-serif", 12).into_font().color(&label_colour).pos(centred),
        ))?;
    }
    // Parity, drawn over the bars: ringd and nginx equal.
    chart.draw_series(std::iter::once(PathElement::new(
        vec![(0.0, 1.0), (n as f64, 1.0)],
        ShapeStyle::from(&BLACK).stroke_width(2),
    )))?;
    root.present()
        .with_context(|| format!("writing {}", output.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{"title": "ringd / nginx", "subtitle": "test", "bars": [
        {"scenario": "plaintext", "metric": "req/s ringd÷nginx", "better": "higher", "median": 1.1, "min": 1.0, "max": 1.2},
        {"scenario": "close", "metric": "CPU/req nginx÷ringd", "better": "higher", "median": 0.9, "min": 0.8, "max": 0.95},
        {"scenario": "idle10k", "metric": "RSS/conn ringd÷nginx", "better": "lower", "median": 27.0, "min": 26.0, "max": 28.0},
        {"scenario": "json", "metric": "req/s ringd÷nginx", "better": "higher", "median": null, "min": null, "max": null},
        {"scenario": "plaintext", "metric": "CPU/req hyper÷ringd", "better": "higher", "against": "hyper", "median": 0.8, "min": 0.7, "max": 0.9}
    ]}"#;

    #[test]
    fn parses_the_harness_json() {
        let data: Input = serde_json::from_str(SAMPLE).unwrap();
        assert_eq!(data.bars.len(), 5);
        assert_eq!(data.bars[2].better, "lower");
        assert_eq!(data.bars[3].median, None);
        assert_eq!(data.bars[0].against, "nginx");
        assert_eq!(data.bars[4].against, "hyper");
        assert_ne!(bar_colour(&data.bars[1]), bar_colour(&data.bars[4]));
    }

    #[test]
    fn draws_a_png() {
        if !FONT_CANDIDATES.iter().any(|p| Path::new(p).is_file()) {
            eprintln!("skipped: no font at {FONT_CANDIDATES:?} (Debian: fonts-dejavu-core)");
            return;
        }
        load_font(None).unwrap();
        let data: Input = serde_json::from_str(SAMPLE).unwrap();
        let out = std::env::temp_dir().join(format!("ringd-bench-chart-test-{}.png", std::process::id()));
        draw(&data, &out).unwrap();
        let bytes = std::fs::read(&out).unwrap();
        std::fs::remove_file(&out).unwrap();
        assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
        assert!(bytes.len() > 5000, "suspiciously small PNG: {} bytes", bytes.len());
    }
}
