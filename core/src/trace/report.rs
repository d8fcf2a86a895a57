//! One self-contained HTML page about a trace: each run's summary, its diagnosis and its
//! timeline, and charts of tokens spent against saved per agent and of money over time.
//!
//! The page has no scripts and loads nothing: styles are inline and the charts are SVG, so it
//! opens from a file, in a mail attachment, or in a CI artifact viewer alike.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::diagnose::Diagnosis;
use super::explain::{amount, explain, money_or};
use super::reader::Runs;
use super::timeline::timeline;
use super::TraceRecord;
use crate::event::EventKind;

/// Colours of the verdicts, shared by the table and the legend.
const VERDICT_COLOURS: [(&str, &str); 5] = [
    ("stale-context", "#b45309"),
    ("permission", "#b91c1c"),
    ("budget", "#7c3aed"),
    ("gate-rejected", "#be185d"),
    ("model", "#1d4ed8"),
];

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#1f2937;padding:0 1rem}\
h1{font-size:1.6rem;margin-bottom:.2rem}h2{margin-top:2rem;border-bottom:1px solid #e5e7eb}\
table{border-collapse:collapse;width:100%}th,td{padding:.3rem .5rem;border-bottom:1px solid #e5e7eb;text-align:left;vertical-align:top}\
td.n{text-align:right;font-variant-numeric:tabular-nums}.muted{color:#6b7280}\
.verdict{display:inline-block;padding:0 .4rem;border-radius:.3rem;color:#fff;font-size:12px;margin-right:.4rem}\
ol.timeline{list-style:none;padding-left:0;font:12px/1.5 ui-monospace,monospace}\
ol.timeline li{white-space:pre-wrap;word-break:break-word}svg text{font:11px system-ui,sans-serif}";

/// The HTML page for `records`, titled `title` (the trace file's name, say).
pub fn html_report(title: &str, records: &[TraceRecord]) -> String {
    let runs = Runs::from_records(records.iter());
    let explanations: Vec<_> = runs.runs.iter().map(explain).collect();
    let mut page = String::with_capacity(16 * 1024);
    let _ = write!(
        page,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>fourfold report: {}</title><style>{STYLE}</style></head><body>",
        escape(title)
    );
    let n_verdicts: usize = explanations
        .iter()
        .map(|explained| explained.diagnoses.len())
        .sum();
    let _ = write!(
        page,
        "<h1>fourfold report</h1><p class=\"muted\">{}: {} runs, {} records, {} verdicts{}</p>",
        escape(title),
        explanations.len(),
        records.len(),
        n_verdicts,
        if runs.n_dropped_events > 0 {
            format!(", {} events dropped by a full queue", runs.n_dropped_events)
        } else {
            String::new()
        }
    );

    page.push_str("<h2>Runs</h2><table id=\"runs\"><tr><th>agent</th><th>task</th><th>run</th><th>actions</th><th>failed</th><th>gates</th><th>tokens in / out</th><th>money</th><th>context served / whole files</th><th>verdicts</th></tr>");
    for explained in &explanations {
        let totals = &explained.totals;
        let gates: Vec<String> = totals
            .gates
            .iter()
            .map(|(outcome, count)| format!("{outcome} {count}"))
            .collect();
        let _ = write!(
            page,
            "<tr data-run=\"{}\"><td>{}</td><td>{}</td><td><a href=\"#run-{}\">{}</a></td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td class=\"n\">{} / {}</td><td class=\"n\">{}</td><td class=\"n\">{} / {}</td><td>{}</td></tr>",
            escape(&explained.run_id),
            escape(&explained.agent_id),
            escape(explained.task_id.as_deref().unwrap_or("-")),
            escape(&explained.run_id),
            escape(&explained.run_id),
            totals.n_actions,
            totals.n_failed_actions,
            escape(&gates.join(", ")),
            totals.cost.input_tokens,
            totals.cost.output_tokens,
            escape(&money_or(&totals.cost.cost_micros, "-", ", ")),
            totals.context_tokens_served,
            totals.context_tokens_baseline,
            verdict_badges(&explained.diagnoses),
        );
    }
    page.push_str("</table>");

    page.push_str("<h2>Diagnosis</h2>");
    if n_verdicts == 0 {
        page.push_str("<p>No action failed and no request was refused.</p>");
    }
    page.push_str("<ul id=\"diagnosis\">");
    for explained in &explanations {
        for diagnosis in &explained.diagnoses {
            let _ = write!(
                page,
                "<li class=\"diagnosis\" data-verdict=\"{}\" data-run=\"{}\">{}<b>{}</b> #{} {}: {}</li>",
                diagnosis.verdict.name(),
                escape(&explained.run_id),
                badge(diagnosis.verdict.name()),
                escape(&explained.agent_id),
                diagnosis.seq,
                escape(&diagnosis.subject),
                escape(&diagnosis.detail),
            );
        }
    }
    page.push_str("</ul>");

    page.push_str("<h2>Tokens spent and saved, per agent</h2>");
    page.push_str(&tokens_chart(&explanations));
    page.push_str("<h2>Money over time</h2>");
    page.push_str(&money_chart(records));

    page.push_str("<h2>Timelines</h2>");
    for explained in &explanations {
        let _ = write!(
            page,
            "<h3 id=\"run-{}\">{} <span class=\"muted\">({}{})</span></h3><ol class=\"timeline\">",
            escape(&explained.run_id),
            escape(&explained.agent_id),
            escape(&explained.run_id),
            explained
                .task_id
                .as_deref()
                .map_or_else(String::new, |task| format!(", task {}", escape(task)))
        );
        for line in timeline(records, &explained.run_id) {
            let _ = write!(
                page,
                "<li style=\"padding-left:{}em\">{}</li>",
                line.depth * 2,
                escape(&line.text)
            );
        }
        page.push_str("</ol>");
    }
    page.push_str("<p class=\"muted\">Tokens are as recorded in the trace's cost and context events; money is in the currency each cost event names.</p></body></html>\n");
    page
}

fn colour(verdict: &str) -> &'static str {
    VERDICT_COLOURS
        .iter()
        .find(|(name, _)| *name == verdict)
        .map_or("#374151", |(_, colour)| colour)
}

fn badge(verdict: &str) -> String {
    format!(
        "<span class=\"verdict\" style=\"background:{}\">{}</span>",
        colour(verdict),
        verdict
    )
}

fn verdict_badges(diagnoses: &[Diagnosis]) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for diagnosis in diagnoses {
        *counts.entry(diagnosis.verdict.name()).or_default() += 1;
    }
    counts
        .into_iter()
        .map(|(verdict, count)| {
            if count == 1 {
                badge(verdict)
            } else {
                format!("{}×{count}", badge(verdict))
            }
        })
        .collect()
}

/// Horizontal bars: per agent, the model tokens spent and the context tokens saved (what reading
/// the served sections' documents whole would have cost, less what was served).
fn tokens_chart(explanations: &[super::explain::Explanation]) -> String {
    let mut per_agent: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for explained in explanations {
        let totals = &explained.totals;
        let entry = per_agent.entry(explained.agent_id.as_str()).or_default();
        entry.0 += totals.cost.input_tokens + totals.cost.output_tokens;
        entry.1 += totals
            .context_tokens_baseline
            .saturating_sub(totals.context_tokens_served);
    }
    let largest = per_agent
        .values()
        .map(|(spent, saved)| (*spent).max(*saved))
        .max()
        .unwrap_or(0)
        .max(1);
    let (label_width, bar_width, row_height) = (140.0, 560.0, 34.0);
    let height = 30.0 + row_height * per_agent.len() as f64;
    let mut svg = format!(
        "<svg id=\"tokens-chart\" role=\"img\" aria-label=\"tokens spent and saved per agent\" width=\"{}\" height=\"{height}\" viewBox=\"0 0 {} {height}\">",
        label_width + bar_width + 120.0,
        label_width + bar_width + 120.0
    );
    let _ = write!(
        svg,
        "<rect x=\"{label_width}\" y=\"4\" width=\"10\" height=\"10\" fill=\"#2563eb\"/><text x=\"{}\" y=\"13\">spent (model tokens)</text><rect x=\"{}\" y=\"4\" width=\"10\" height=\"10\" fill=\"#16a34a\"/><text x=\"{}\" y=\"13\">saved (context tokens)</text>",
        label_width + 14.0,
        label_width + 170.0,
        label_width + 184.0
    );
    for (row, (agent, (spent, saved))) in per_agent.iter().enumerate() {
        let y = 24.0 + row as f64 * row_height;
        let spent_width = bar_width * *spent as f64 / largest as f64;
        let saved_width = bar_width * *saved as f64 / largest as f64;
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"{}\">{}</text><rect class=\"spent\" data-agent=\"{}\" x=\"{label_width}\" y=\"{y}\" width=\"{spent_width:.1}\" height=\"12\" fill=\"#2563eb\"/><text x=\"{:.1}\" y=\"{}\">{spent}</text><rect class=\"saved\" data-agent=\"{}\" x=\"{label_width}\" y=\"{}\" width=\"{saved_width:.1}\" height=\"12\" fill=\"#16a34a\"/><text x=\"{:.1}\" y=\"{}\">{saved}</text>",
            y + 16.0,
            escape(agent),
            escape(agent),
            label_width + spent_width + 4.0,
            y + 10.0,
            escape(agent),
            y + 13.0,
            label_width + saved_width + 4.0,
            y + 23.0,
        );
    }
    svg.push_str("</svg>");
    svg
}

/// A step line of the money spent so far, over the trace's time, in its first currency.
fn money_chart(records: &[TraceRecord]) -> String {
    let mut points: Vec<(u64, u64)> = Vec::new();
    let mut currency: Option<String> = None;
    let mut total: u64 = 0;
    for record in records {
        let TraceRecord::Event(event) = record else {
            continue;
        };
        let EventKind::Cost(cost) = &event.kind else {
            continue;
        };
        if cost.cost_micros == 0 {
            continue;
        }
        match &currency {
            None => currency = Some(cost.currency.clone()),
            Some(first) if *first != cost.currency => continue,
            Some(_) => {}
        }
        total = total.saturating_add(cost.cost_micros);
        points.push((event.timestamp_ns, total));
    }
    let Some(currency) = currency else {
        return "<p id=\"money-chart\">No money was recorded.</p>".to_string();
    };
    points.sort_by_key(|(at_ns, _)| *at_ns);
    let (start, end) = (points[0].0, points[points.len() - 1].0);
    let span = end.saturating_sub(start).max(1) as f64;
    let (width, height, left, bottom) = (700.0, 220.0, 70.0, 24.0);
    let x = |at_ns: u64| left + (width - left - 10.0) * at_ns.saturating_sub(start) as f64 / span;
    let y = |micros: u64| {
        (height - bottom) - (height - bottom - 10.0) * micros as f64 / total.max(1) as f64
    };
    let mut path = format!("M{:.1},{:.1}", x(start), y(0));
    for (at_ns, micros) in &points {
        let _ = write!(path, " H{:.1} V{:.1}", x(*at_ns), y(*micros));
    }
    format!(
        "<svg id=\"money-chart\" role=\"img\" aria-label=\"money spent over time\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\"><line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#9ca3af\"/><line x1=\"{left}\" y1=\"10\" x2=\"{left}\" y2=\"{}\" stroke=\"#9ca3af\"/><path d=\"{path}\" fill=\"none\" stroke=\"#dc2626\" stroke-width=\"2\"/><text x=\"0\" y=\"16\">{}</text><text x=\"0\" y=\"{}\">0</text><text x=\"{left}\" y=\"{}\">0 s</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{:.3} s</text></svg>",
        height - bottom,
        width - 10.0,
        height - bottom,
        height - bottom,
        escape(&amount(total, &currency)),
        height - bottom,
        height - 6.0,
        width - 10.0,
        height - 6.0,
        span / 1e9,
    )
}

/// `text` with HTML's special characters escaped, for element text and attribute values.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            _ => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ActionEvent, Event};

    fn action_record(
        run_id: &str,
        seq: u64,
        arguments_json: &str,
        error: Option<&str>,
    ) -> TraceRecord {
        TraceRecord::Event(Event {
            run_id: run_id.into(),
            agent_id: "coder".into(),
            task_id: None,
            seq,
            timestamp_ns: 1_000 + seq,
            span_id: None,
            parent_span_id: None,
            kind: EventKind::Action(ActionEvent {
                tool: "bash".into(),
                arguments_json: arguments_json.into(),
                result_digest: None,
                duration_ns: None,
                error: error.map(str::to_string),
            }),
        })
    }

    #[test]
    fn text_from_the_trace_is_escaped() {
        let records = vec![action_record(
            "run-<1>",
            1,
            r#"{"command":"echo '<script>alert(1)</script>' && true"}"#,
            Some("<b>boom</b>"),
        )];
        let page = html_report("t<r>ace & \"file\"", &records);
        assert!(!page.contains("<script>"), "{page}");
        assert!(!page.contains("<b>boom</b>"), "{page}");
        assert!(page.contains("&lt;script&gt;"));
        assert!(page.contains("t&lt;r&gt;ace &amp; &quot;file&quot;"));
        assert!(page.contains("data-verdict=\"model\""));
    }

    #[test]
    fn an_empty_trace_still_makes_a_page() {
        let page = html_report("empty", &[]);
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.contains("0 runs"));
        assert!(page.contains("No money was recorded."));
        assert!(page.trim_end().ends_with("</html>"));
    }
}
