//! `loss.png`: the loss curves (and AP, when evaluations were logged) drawn from
//! `metrics.jsonl` with plotters' bitmap backend. Text uses DejaVu Sans embedded in the binary
//! (the `dejavu` crate through plotters' `ab_glyph` feature), so no system font is needed; the
//! PNG is encoded with `image` and written atomically.
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Once;

use image::ImageEncoder;
use plotters::prelude::*;

use crate::atomic::write_atomic;
use crate::train::metrics::Record;

const WIDTH: u32 = 1200;
const HEIGHT: u32 = 800;
const FONT: &str = "sans-serif";

#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("nothing to plot: {0} has no training records")]
    Empty(String),
    #[error("drawing {path}: {reason}")]
    Draw { path: String, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are a valid TTF shipped by the `dejavu` crate.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
    });
}

/// A centred moving average over `window` points (the curves of a noisy loss are unreadable
/// raw); `window` 1 returns the values unchanged.
fn smooth(values: &[(u64, f64)], window: usize) -> Vec<(u64, f64)> {
    let half = window / 2;
    (0..values.len())
        .map(|i| {
            let lo = i.saturating_sub(half);
            let hi = (i + half + 1).min(values.len());
            let mean = values[lo..hi].iter().map(|v| v.1).sum::<f64>() / (hi - lo) as f64;
            (values[i].0, mean)
        })
        .collect()
}

/// Draws the records' losses (log scale; total and each component) and, if any, evaluation AP
/// into a PNG at `path`. `source` names the records' origin in error messages.
pub fn plot_losses(records: &[Record], path: &Path, source: &str) -> Result<(), PlotError> {
    register_font();
    let mut series: BTreeMap<String, Vec<(u64, f64)>> = BTreeMap::new();
    let mut evals: BTreeMap<String, Vec<(u64, f64)>> = BTreeMap::new();
    for record in records {
        match record {
            Record::Train(t) => {
                series
                    .entry("total_loss".into())
                    .or_default()
                    .push((t.iteration, t.total_loss));
                for (name, v) in &t.losses {
                    series
                        .entry(name.clone())
                        .or_default()
                        .push((t.iteration, *v));
                }
            }
            Record::Eval(e) => {
                for key in ["AP", "AP50"] {
                    if let Some(v) = e.metrics.get(key) {
                        evals.entry(key.into()).or_default().push((e.iteration, *v));
                    }
                }
            }
        }
    }
    let Some(total) = series.get("total_loss") else {
        return Err(PlotError::Empty(source.to_string()));
    };
    let window = (total.len() / 100).clamp(1, 50);
    let max_iter = records
        .iter()
        .map(Record::iteration)
        .max()
        .unwrap_or(1)
        .max(1);
    let finite = |v: &f64| v.is_finite() && *v > 0.0;
    let all: Vec<f64> = series
        .values()
        .flatten()
        .map(|p| p.1)
        .filter(finite)
        .collect();
    let y_min = all.iter().cloned().fold(f64::INFINITY, f64::min).min(1.0) * 0.8;
    let y_max = all.iter().cloned().fold(0.0, f64::max).max(y_min * 10.0) * 1.25;

    let draw_err = |e: &dyn std::fmt::Display| PlotError::Draw {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let mut pixels = vec![255u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| draw_err(&e))?;
        let (top, bottom) = if evals.is_empty() {
            (root.clone(), None)
        } else {
            let (t, b) = root.split_vertically(HEIGHT * 2 / 3);
            (t, Some(b))
        };
        let caption = if window > 1 {
            format!("Training losses (moving average over {window} logged points)")
        } else {
            "Training losses".to_string()
        };
        let mut chart = ChartBuilder::on(&top)
            .caption(caption, (FONT, 24))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(0u64..max_iter, (y_min..y_max).log_scale())
            .map_err(|e| draw_err(&e))?;
        chart
            .configure_mesh()
            .x_desc("iteration")
            .y_desc("loss")
            .label_style((FONT, 16))
            .axis_desc_style((FONT, 18))
            .draw()
            .map_err(|e| draw_err(&e))?;
        // Total first in black and thick, then the components.
        let mut names: Vec<&String> = series.keys().filter(|n| *n != "total_loss").collect();
        names.insert(
            0,
            series
                .keys()
                .find(|n| *n == "total_loss")
                .expect("checked above"),
        );
        for (i, name) in names.into_iter().enumerate() {
            let color = if i == 0 {
                BLACK.to_rgba()
            } else {
                Palette99::pick(i - 1).to_rgba()
            };
            let width = if i == 0 { 3 } else { 2 };
            let points: Vec<(u64, f64)> = smooth(&series[name], window)
                .into_iter()
                .filter(|p| finite(&p.1))
                .collect();
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(width)))
                .map_err(|e| draw_err(&e))?
                .label(name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(width))
                });
        }
        chart
            .configure_series_labels()
            .label_font((FONT, 16))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(|e| draw_err(&e))?;

        if let Some(bottom) = bottom {
            let mut chart = ChartBuilder::on(&bottom)
                .caption("Validation (COCO box AP)", (FONT, 20))
                .margin(15)
                .x_label_area_size(45)
                .y_label_area_size(70)
                .build_cartesian_2d(0u64..max_iter, 0f64..1f64)
                .map_err(|e| draw_err(&e))?;
            chart
                .configure_mesh()
                .x_desc("iteration")
                .y_labels(6)
                .label_style((FONT, 16))
                .axis_desc_style((FONT, 18))
                .draw()
                .map_err(|e| draw_err(&e))?;
            for (i, (name, points)) in evals.iter().enumerate() {
                let color: RGBAColor = Palette99::pick(i + 4).to_rgba();
                chart
                    .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                    .map_err(|e| draw_err(&e))?
                    .label(name.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], color));
                chart
                    .draw_series(points.iter().map(|p| Circle::new(*p, 4, color.filled())))
                    .map_err(|e| draw_err(&e))?;
            }
            chart
                .configure_series_labels()
                .label_font((FONT, 16))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .position(SeriesLabelPosition::UpperLeft)
                .draw()
                .map_err(|e| draw_err(&e))?;
        }
        root.present().map_err(|e| draw_err(&e))?;
    }
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(&pixels, WIDTH, HEIGHT, image::ExtendedColorType::Rgb8)
        .map_err(|e| draw_err(&e))?;
    write_atomic(path, &png).map_err(|source| PlotError::Io {
        path: path.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests;
