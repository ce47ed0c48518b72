//! The chart: p50, p95 and p99 latency per level (concurrency or offered
//! rate) on the left axis, and the QPS achieved on the right axis, as SVG.
//! Where QPS stops following an open loop's offered rate, the server is
//! saturated and latency turns into queueing.
//!
//! plotters is built with its SVG backend only: no font files, no
//! fontconfig, no bitmap encoders. Text is written as SVG `<text>` and laid
//! out with plotters' built-in size estimate, so labels may sit a little
//! off in some viewers; the numbers themselves are in the table and JSON.

use std::path::Path;

use plotters::prelude::*;

use super::{
    load::{LevelReport, Load},
    report::BenchReport,
    HarnessError,
};

/// Writes the chart of every level that has latencies.
///
/// # Errors
/// [`HarnessError::Chart`] when the file cannot be written.
pub fn write_svg(report: &BenchReport, path: &Path) -> Result<(), HarnessError> {
    draw(report, path).map_err(|e| HarnessError::Chart(e.to_string()))
}

type Pick = fn(&LevelReport) -> f64;

fn draw(report: &BenchReport, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let levels: Vec<&LevelReport> = report.levels.iter().filter(|l| l.latency.is_some()).collect();
    let root = SVGBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let p99 = |l: &LevelReport| l.latency.map_or(0.0, |x| x.p99_ms);
    let y_max = levels.iter().map(|l| p99(l)).fold(0.0, f64::max).max(0.1) * 1.15;
    let qps_max = levels.iter().map(|l| l.qps).fold(0.0, f64::max).max(1.0) * 1.15;
    let n = levels.len().max(1);
    let open = levels.iter().any(|l| matches!(l.load, Load::Open { .. }));
    let caption = format!(
        "semsearch {}: {} docs x {} dims, k = {}{}, {} kernel",
        if open { "open loop" } else { "closed loop" },
        report.server.documents,
        report.server.dimension,
        report.k,
        if report.with_text { ", texts" } else { "" },
        report.server.kernel
    );
    let x_range = -0.5f64..(n as f64 - 0.5);
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 20))
        .margin(20)
        .x_label_area_size(45)
        .y_label_area_size(65)
        .right_y_label_area_size(65)
        .build_cartesian_2d(x_range.clone(), 0f64..y_max)?
        .set_secondary_coord(x_range, 0f64..qps_max);
    let label = |x: &f64| {
        let i = x.round();
        if (x - i).abs() > 1e-6 || i < 0.0 {
            return String::new();
        }
        levels.get(i as usize).map_or_else(String::new, |l| format!("{}", l.load.x()))
    };
    chart
        .configure_mesh()
        .x_labels(n)
        .x_label_formatter(&label)
        .x_desc(if open { "offered rate (requests/s)" } else { "concurrency (requests in flight)" })
        .y_desc("latency (ms)")
        .draw()?;
    chart.configure_secondary_axes().y_desc("QPS (successful answers/s)").draw()?;
    let series: [(&str, RGBColor, Pick); 3] = [
        ("p50", BLUE, |l| l.latency.map_or(0.0, |x| x.p50_ms)),
        ("p95", GREEN, |l| l.latency.map_or(0.0, |x| x.p95_ms)),
        ("p99", RED, |l| l.latency.map_or(0.0, |x| x.p99_ms)),
    ];
    for (name, color, pick) in series {
        let points: Vec<(f64, f64)> = levels.iter().enumerate().map(|(i, l)| (i as f64, pick(l))).collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        chart.draw_series(points.into_iter().map(|p| Circle::new(p, 4, color.filled())))?;
    }
    let qps_color = BLACK.mix(0.6);
    let qps: Vec<(f64, f64)> = levels.iter().enumerate().map(|(i, l)| (i as f64, l.qps)).collect();
    chart
        .draw_secondary_series(LineSeries::new(qps.clone(), qps_color.stroke_width(2)))?
        .label("QPS (right axis)")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], qps_color.stroke_width(2)));
    chart.draw_secondary_series(qps.into_iter().map(|p| TriangleMarker::new(p, 6, qps_color.filled())))?;
    chart.configure_series_labels().position(SeriesLabelPosition::UpperLeft).border_style(BLACK).draw()?;
    root.present()?;
    Ok(())
}
