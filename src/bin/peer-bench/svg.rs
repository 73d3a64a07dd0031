//! Latency distributions as SVG: the CDF of each phase's samples (the same samples, failed
//! operations included, that the tables' percentiles come from), one line per phase, on a
//! log latency axis (W1's phases span 0.1 ms to hundreds of ms).

use crate::Phase;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// Line colours (Tableau 10 less its grey, which the mesh uses): distinct, colour-blind safe.
pub const COLOURS: [RGBColor; 9] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0xbc, 0xbd, 0x22),
    RGBColor(0x17, 0xbe, 0xcf),
];

/// Below this a sample is drawn at this (a log axis has no 0; the clock's resolution is
/// far finer than anything W1 measures, so it only guards against a zero reading).
const FLOOR_MS: f64 = 0.001;

/// Write the CDF chart to `dir/name` (creating `dir`); the path written.
pub fn write_cdf(dir: &Path, name: &str, title: &str, phases: &[Phase]) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join(name);
    std::fs::write(&path, render_cdf(title, phases)?).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

/// The chart as SVG text. Phases without samples are left out.
pub fn render_cdf(title: &str, phases: &[Phase]) -> Result<String, String> {
    let curves: Vec<(String, Vec<f64>)> = phases
        .iter()
        .filter(|p| !p.lat.is_empty())
        .map(|p| {
            let mut v: Vec<f64> = p.lat.iter().map(|d| (d.as_secs_f64() * 1000.0).max(FLOOR_MS)).collect();
            v.sort_by(f64::total_cmp);
            let n = p.lat.len();
            (format!("{} ({n} op{})", p.name, if n == 1 { "" } else { "s" }), v)
        })
        .collect();
    if curves.is_empty() {
        return Err("no latency samples to draw".into());
    }
    let min = curves.iter().map(|(_, v)| v[0]).fold(f64::INFINITY, f64::min);
    let max = curves.iter().map(|(_, v)| v[v.len() - 1]).fold(0.0, f64::max);
    // Whole decades, each labelled (plotters' own log ticks skip the lowest), with faint
    // lines at 2..9 times each.
    let (d0, d1) = (min.log10().floor() as i32, (max.log10().ceil() as i32).max(min.log10().floor() as i32 + 1));
    let decades: Vec<f64> = (d0..=d1).map(|d| 10f64.powi(d)).collect();
    let minor: Vec<f64> =
        decades[..decades.len() - 1].iter().flat_map(|&p| (2..10).map(move |k| p * k as f64)).collect();
    let (lo, hi) = (decades[0], decades[decades.len() - 1]);
    let x = (lo..hi).log_scale().with_key_points(decades).with_light_points(minor);

    let mut svg = String::new();
    {
        let e = |e: DrawingAreaErrorKind<_>| format!("drawing the chart: {e}");
        let root = SVGBackend::with_string(&mut svg, (960, 600)).into_drawing_area();
        root.fill(&WHITE).map_err(e)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(16)
            .x_label_area_size(50)
            .y_label_area_size(60)
            .build_cartesian_2d(x, 0f64..1f64)
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc("latency, ms (log scale)")
            .y_desc("fraction of operations at or below")
            .x_label_formatter(&|x| trim(*x))
            .y_label_formatter(&|y| format!("{y:.1}"))
            .draw()
            .map_err(e)?;
        for (i, (label, v)) in curves.iter().enumerate() {
            let colour = COLOURS[i % COLOURS.len()];
            let n = v.len() as f64;
            // A step function: at each sample the fraction rises by 1/n.
            let points = v.iter().enumerate().flat_map(|(k, &x)| [(x, k as f64 / n), (x, (k + 1) as f64 / n)]);
            chart
                .draw_series(LineSeries::new(points, colour.stroke_width(2)))
                .map_err(e)?
                .label(label.as_str())
                // A filled box rather than a line sample, so the chart has one polyline per phase.
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 18, y + 5)], colour.filled()));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()
            .map_err(e)?;
        root.present().map_err(e)?;
    }
    Ok(svg)
}

/// 0.01, 0.1, 1, 10, 100: no trailing zeros on the axis.
fn trim(x: f64) -> String {
    let s = format!("{x:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Synthetic phases: `n` samples spread over two decades.
    fn phases() -> Vec<Phase> {
        ["set", "ref", "ref after churn", "ns set+ref", "missing key"]
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let mut p = Phase::new(name);
                let n = if *name == "missing key" { 1 } else { 50 };
                for k in 0..n {
                    p.add(Duration::from_micros(100 + 37 * k * (i as u64 + 1)), k % 10 != 3);
                }
                p
            })
            .collect()
    }

    /// Every element closed in order, one root `svg` element.
    fn well_formed(svg: &str) -> Result<(), String> {
        let mut stack: Vec<&str> = Vec::new();
        let mut roots = 0;
        let mut rest = svg;
        while let Some(start) = rest.find('<') {
            let end = rest[start..].find('>').ok_or("unclosed tag")? + start;
            let tag = &rest[start + 1..end];
            rest = &rest[end + 1..];
            if tag.starts_with('?') || tag.starts_with('!') {
                continue;
            }
            if let Some(name) = tag.strip_prefix('/') {
                let open = stack.pop().ok_or(format!("</{name}> closes nothing"))?;
                if open != name.trim() {
                    return Err(format!("<{open}> closed by </{name}>"));
                }
            } else {
                let name = tag.split_whitespace().next().ok_or("empty tag")?.trim_end_matches('/');
                if stack.is_empty() {
                    roots += 1;
                }
                if !tag.ends_with('/') {
                    stack.push(name);
                }
            }
        }
        match (stack.is_empty(), roots) {
            (true, 1) if svg.trim_start().starts_with("<svg") || svg.trim_start().starts_with("<?xml") => Ok(()),
            (true, _) => Err(format!("{roots} root elements")),
            (false, _) => Err(format!("unclosed: {stack:?}")),
        }
    }

    #[test]
    fn the_checker_catches_malformed_svg() {
        assert!(well_formed("<svg><g></g></svg>").is_ok());
        for bad in ["<svg><g></svg>", "<svg></svg><svg></svg>", "<svg>", "<svg></g>", "<svg><text"] {
            assert!(well_formed(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn one_line_per_phase_in_well_formed_svg() {
        let phases = phases();
        let svg = render_cdf("W1 latency CDF: 100 peers, rust API, seed 1", &phases).unwrap();
        well_formed(&svg).unwrap();
        assert!(svg.contains("W1 latency CDF: 100 peers, rust API, seed 1"));
        for (i, p) in phases.iter().enumerate() {
            let RGBColor(r, g, b) = COLOURS[i];
            let stroke = format!("stroke=\"#{r:02X}{g:02X}{b:02X}\"");
            let count = svg.split('<').filter(|el| el.starts_with("polyline") && el.contains(&stroke)).count();
            assert_eq!(count, 1, "phase {} ({stroke}): {count} lines", p.name);
            assert!(svg.contains(&format!("{} ({} op", p.name, p.lat.len())), "legend names {}", p.name);
        }
        // Nothing else is drawn in a phase colour.
        let coloured = svg
            .split('<')
            .filter(|el| el.starts_with("polyline"))
            .filter(|el| {
                COLOURS.iter().any(|RGBColor(r, g, b)| el.contains(&format!("stroke=\"#{r:02X}{g:02X}{b:02X}\"")))
            })
            .count();
        assert_eq!(coloured, phases.len());
    }

    #[test]
    fn empty_phases_are_skipped_and_nothing_to_draw_is_an_error() {
        let mut phases = phases();
        phases.push(Phase::new("never ran"));
        let svg = render_cdf("t", &phases).unwrap();
        assert!(!svg.contains("never ran"));
        assert!(render_cdf("t", &[Phase::new("empty")]).is_err());
    }

    #[test]
    fn write_creates_the_directory() {
        let dir = std::env::temp_dir().join(format!("peer-bench-svg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = write_cdf(&dir.join("sub"), "x.svg", "t", &phases()).unwrap();
        assert!(std::fs::read_to_string(&path).unwrap().contains("</svg>"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
