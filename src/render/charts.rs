//! Charts drawn on the server as SVG: no JavaScript, readable in any browser.
//! Every text that goes in is escaped; numbers are written by us.

use handlebars::html_escape;

/// One line of a chart, or one segment of a bar.
pub struct Series<'a> {
    pub label: &'a str,
    pub color: &'a str,
    pub values: Vec<i64>,
}

/// A line chart of daily values: `series` share the x axis, `x_labels` are
/// printed under its start, middle and end.
pub fn lines(title: &str, series: &[Series<'_>], x_labels: [&str; 3]) -> String {
    const W: f64 = 720.0;
    const H: f64 = 180.0;
    const PAD_L: f64 = 40.0;
    const PAD_B: f64 = 22.0;
    let days = series
        .iter()
        .map(|s| s.values.len())
        .max()
        .unwrap_or(0)
        .max(2);
    let top = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1);
    let x = |i: usize| PAD_L + (W - PAD_L - 8.0) * i as f64 / (days - 1) as f64;
    let y = |v: i64| 8.0 + (H - PAD_B - 8.0) * (1.0 - v as f64 / top as f64);
    let mut svg = format!(
        r#"<svg role="img" aria-label="{}" viewBox="0 0 {W} {H}" width="100%" preserveAspectRatio="xMidYMid meet"><title>{}</title>"#,
        html_escape(title),
        html_escape(title)
    );
    // Axes: zero and the top value.
    svg.push_str(&format!(
        r##"<line x1="{PAD_L}" y1="{0:.1}" x2="{1}" y2="{0:.1}" stroke="#8c959f" stroke-width="1"/><text x="{2}" y="{3:.1}" text-anchor="end">0</text><text x="{2}" y="{4:.1}" text-anchor="end">{top}</text>"##,
        y(0),
        W - 8.0,
        PAD_L - 6.0,
        y(0) + 4.0,
        y(top) + 4.0,
    ));
    for (i, label) in x_labels.iter().enumerate() {
        let (at, anchor) = match i {
            0 => (x(0), "start"),
            1 => (x((days - 1) / 2), "middle"),
            _ => (x(days - 1), "end"),
        };
        svg.push_str(&format!(
            r#"<text x="{at:.1}" y="{:.1}" text-anchor="{anchor}">{}</text>"#,
            H - 6.0,
            html_escape(label)
        ));
    }
    for s in series {
        let points: Vec<String> = s
            .values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v)))
            .collect();
        svg.push_str(&format!(
            r#"<polyline fill="none" stroke="{}" stroke-width="2" points="{}"><title>{}</title></polyline>"#,
            html_escape(s.color),
            points.join(" "),
            html_escape(s.label)
        ));
    }
    svg.push_str("</svg>");
    svg
}

/// A horizontal bar split by share: one segment per series (its first value).
pub fn bar(title: &str, segments: &[Series<'_>]) -> String {
    let total: i64 = segments.iter().filter_map(|s| s.values.first()).sum();
    let mut svg = format!(
        r#"<svg role="img" aria-label="{}" viewBox="0 0 200 14" width="100%" height="14" preserveAspectRatio="none"><title>{}</title>"#,
        html_escape(title),
        html_escape(title)
    );
    if total == 0 {
        svg.push_str(
            r##"<rect x="0" y="0" width="200" height="14" fill="#8c959f" opacity="0.3"/>"##,
        );
    }
    let mut at = 0.0;
    for s in segments {
        let n = s.values.first().copied().unwrap_or(0);
        if n == 0 || total == 0 {
            continue;
        }
        let w = 200.0 * n as f64 / total as f64;
        svg.push_str(&format!(
            r#"<rect x="{at:.2}" y="0" width="{w:.2}" height="14" fill="{}"><title>{} {n}</title></rect>"#,
            html_escape(s.color),
            html_escape(s.label)
        ));
        at += w;
    }
    svg.push_str("</svg>");
    svg
}

/// One bar per row, each as long as its value against the largest, with its
/// label and value written beside it: links by clicks, services by readers.
pub fn bars(title: &str, rows: &[(&str, i64)], color: &str) -> String {
    const W: f64 = 720.0;
    const ROW: f64 = 22.0;
    const LABEL: f64 = 300.0;
    let top = rows.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1);
    let h = ROW * rows.len().max(1) as f64;
    let mut svg = format!(
        r#"<svg role="img" aria-label="{}" viewBox="0 0 {W} {h}" width="100%" preserveAspectRatio="xMinYMin meet"><title>{}</title>"#,
        html_escape(title),
        html_escape(title)
    );
    for (i, (label, value)) in rows.iter().enumerate() {
        let y = ROW * i as f64;
        let w = (W - LABEL - 60.0) * (*value).max(0) as f64 / top as f64;
        // Long labels (URLs) are cut for the picture; the title keeps them whole.
        let short: String = if label.chars().count() > 48 {
            label.chars().take(47).chain(std::iter::once('…')).collect()
        } else {
            label.to_string()
        };
        svg.push_str(&format!(
            r#"<g><title>{} {value}</title><text x="0" y="{:.1}">{}</text><rect x="{LABEL}" y="{:.1}" width="{w:.1}" height="{:.1}" fill="{}"/><text x="{:.1}" y="{:.1}">{value}</text></g>"#,
            html_escape(label),
            y + 15.0,
            html_escape(&short),
            y + 4.0,
            ROW - 8.0,
            html_escape(color),
            LABEL + w + 6.0,
            y + 15.0,
        ));
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_in_charts_is_escaped() {
        let svg = bar(
            "<script>",
            &[Series {
                label: "<b>sent</b>",
                color: "#000",
                values: vec![3],
            }],
        );
        assert!(!svg.contains("<script>") && !svg.contains("<b>"), "{svg}");
        let svg = lines(
            "t",
            &[Series {
                label: "new",
                color: "#000",
                values: vec![0, 5, 2],
            }],
            ["a", "<i>", "c"],
        );
        assert!(svg.contains("polyline") && !svg.contains("<i>"), "{svg}");
        let svg = bars("links", &[("https://e.x/<a>", 3), ("b", 1)], "#000");
        assert!(svg.contains("&lt;a&gt;") && !svg.contains("<a>"), "{svg}");
        assert_eq!(svg.matches("<rect").count(), 2);
    }
}
