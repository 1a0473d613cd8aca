//! Plain-text rendering of result tables: title, the run's caption (models, n, seed,
//! date), columns, rows (estimates with their n, `†` below 5 units; the table's fixed
//! decimals), then the notes, with what `†` and `—` mean added when the table has them
//! and its notes do not say.

use shammie_core::{Results, Table, MIN_RELIABLE_N, UNRELIABLE_MARK};

pub(crate) fn table(t: &Table) -> String {
    let decimals = t.decimals.unwrap_or(3);
    let cells: Vec<Vec<String>> = t
        .rows
        .iter()
        .map(|r| r.iter().map(|c| c.render_with(decimals)).collect())
        .collect();
    let mut widths: Vec<usize> = t.columns.iter().map(|c| c.chars().count()).collect();
    for row in &cells {
        for (i, c) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let line = |vals: &[String]| -> String {
        let parts: Vec<String> = vals
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let pad = widths
                    .get(i)
                    .copied()
                    .unwrap_or(0)
                    .saturating_sub(v.chars().count());
                format!("{v}{}", " ".repeat(pad))
            })
            .collect();
        parts.join("  ").trim_end().to_string()
    };
    let mut out = String::new();
    out.push_str(&t.title);
    out.push('\n');
    if !t.caption.is_empty() {
        out.push_str(&format!("({})\n", t.caption));
    }
    out.push_str(&line(&t.columns));
    out.push('\n');
    out.push_str(
        &widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("  "),
    );
    out.push('\n');
    for row in &cells {
        out.push_str(&line(row));
        out.push('\n');
    }
    for n in &t.notes {
        out.push_str(&format!("  · {n}\n"));
    }
    let said = |mark: &str| t.notes.iter().any(|n| n.contains(mark));
    if t.has_unreliable() && !said(UNRELIABLE_MARK) {
        out.push_str(&format!(
            "  · {UNRELIABLE_MARK}: from fewer than {MIN_RELIABLE_N} units (n); the interval is unreliable\n"
        ));
    }
    if t.has_empty() && !said("\u{2014}") {
        out.push_str("  · \u{2014}: no data to estimate this from\n");
    }
    out
}

pub(crate) fn results(r: &Results) -> String {
    let mut out = format!("{}/{}\n\n", r.study, r.task);
    for t in &r.tables {
        out.push_str(&table(t));
        out.push('\n');
    }
    if !r.files.is_empty() {
        out.push_str("report files (in the run directory):\n");
        for f in &r.files {
            out.push_str(&format!("  {}  {}\n", f.path, f.description));
        }
        out.push('\n');
    }
    let tt = &r.totals;
    out.push_str(&format!(
        "samples {} (failed {}), calls {} (cached {}), tokens in {} out {} (paid in {} out {})\n",
        tt.samples,
        tt.failed,
        tt.calls,
        tt.cached_calls,
        tt.usage.input_tokens,
        tt.usage.output_tokens,
        tt.paid_usage.input_tokens,
        tt.paid_usage.output_tokens
    ));
    if tt.cost_usd > 0.0 {
        out.push_str(&format!(
            "cost ${:.4} at list price, paid ${:.4} (the rest from the cache){}{}\n",
            tt.cost_usd,
            tt.paid_cost_usd,
            if tt.batch_calls > 0 {
                format!(
                    "; {} calls through batch APIs, ${:.4} at the batch price",
                    tt.batch_calls, tt.batch_cost_usd
                )
            } else {
                String::new()
            },
            if tt.unpriced_calls > 0 {
                format!(
                    "; {} calls to models without a price not counted",
                    tt.unpriced_calls
                )
            } else {
                String::new()
            }
        ));
    }
    out
}
