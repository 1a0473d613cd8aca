//! Plain-text rendering of result tables.

use shammie_core::{Results, Table};

pub(crate) fn table(t: &Table) -> String {
    let cells: Vec<Vec<String>> = t
        .rows
        .iter()
        .map(|r| r.iter().map(|c| c.render()).collect())
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
    out
}
