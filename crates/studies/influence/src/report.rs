//! The report files of `influence/queries`: a self-contained HTML page of the most
//! influential sequences with per-token heat maps, and an SVG figure of how concentrated
//! each query's influence is.

use std::fmt::Write;

use shammie_plot::{Figure, LineChart};

use crate::analysis::{ranked, top_share, Inputs};
use crate::corpus::show_prompt;

/// `s` with `& < > " '` escaped, safe in HTML text and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A token score's background: red for positive, blue for negative, opacity 0.85 × |v| /
/// max (so the text stays legible); none where that rounds to 0.
pub fn background(v: f64, max: f64) -> String {
    let a = if max > 0.0 {
        (v.abs() / max).min(1.0) * 0.85
    } else {
        0.0
    };
    if a < 0.0005 {
        return "transparent".into();
    }
    if v > 0.0 {
        format!("rgba(214,39,40,{a:.3})")
    } else {
        format!("rgba(31,119,180,{a:.3})")
    }
}

/// A number as the page shows it: four significant digits, scientific when small or
/// large.
fn num(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if (1e-3..1e4).contains(&v.abs()) {
        let d = (3 - v.abs().log10().floor() as i64).clamp(0, 6) as usize;
        format!("{v:.d$}")
    } else {
        format!("{v:.3e}")
    }
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;max-width:1100px;color:#222;line-height:1.4}
h1{font-size:1.5em;margin-bottom:0}h2{font-size:1.2em;margin-top:2em;border-top:1px solid #ccc;padding-top:1em}h3{font-size:1em;margin:1.2em 0 .4em}
.caption{color:#666;font-size:.9em}.legend span{padding:0 .4em;margin-right:.6em}
.query{background:#f6f6f6;padding:.6em .8em;border-radius:4px;white-space:pre-wrap}
.seq{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.85em;white-space:pre-wrap;word-break:break-word;border:1px solid #ddd;border-radius:4px;padding:.5em;margin:.3em 0 1em}
.seq .p{color:#888;font-style:italic}.seq .cut{color:#999;border-left:2px solid #999;margin:0 2px}
.meta{font-size:.9em}.meta b{font-weight:600}";

/// The HTML page: per query its prompt, completion and log-probability, then its top_k
/// most positive and most negative candidates, each token a span coloured by its score.
pub fn html(x: &Inputs) -> String {
    let r = x.result;
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Influence queries</title><style>{STYLE}</style></head><body>\n<h1>Which training sequences influence each query</h1>\n<p class=\"caption\">{}</p>\n",
        escape(&x.info.caption(&format!(
            "{} queries × {} candidates, factors fitted on {} sequences",
            x.queries.len(),
            x.candidates.len(),
            r.fit_sequences
        )))
    );
    h.push_str("<p>Score of a training sequence z: its influence ∇f(θ)ᵀ (G + λI)⁻¹ ∇log p(z) on the query's measurement f = log p(completion | prompt) (EK-FAC). Positive: training on z makes the query's completion more likely. Each token of a sequence is coloured by its part of the score (its row of the sequence's gradient, so the parts sum to the score), with opacity proportional to |token score| / the largest |token score| among the query's candidates.</p>\n<p class=\"legend\"><span style=\"background:rgba(214,39,40,.6)\">positive</span><span style=\"background:rgba(31,119,180,.6)\">negative</span><span class=\"seq\" style=\"border:0;padding:0\"><span class=\"p\">prompt tokens (context, in grey italics)</span><span class=\"cut\"></span>completion tokens</span> — hover over a token for its score.</p>\n");
    for (qi, q) in x.queries.iter().enumerate() {
        let s = &r.scores[qi];
        let mass: f64 = s.iter().map(|v| v.abs()).sum();
        let max_token = r.token_scores[qi]
            .iter()
            .flatten()
            .fold(0.0f64, |m, v| m.max(v.abs()));
        let _ = write!(
            h,
            "<h2 id=\"q{}\">Query {}: {}</h2>\n<div class=\"query\"><b>Prompt</b>\n{}\n\n<b>Completion</b>\n{}</div>\n<p class=\"meta\">log p(completion | prompt) = {} nats · {} candidates scored · Σ|score| = {}</p>\n",
            qi + 1,
            qi + 1,
            escape(&q.id),
            escape(&show_prompt(&q.prompt)),
            escape(&q.completion),
            num(r.query_logprobs[qi]),
            s.len(),
            num(mass)
        );
        for (title, positive) in [("Most positive", true), ("Most negative", false)] {
            let top = ranked(s, positive, x.top_k);
            let _ = writeln!(h, "<h3>{title} ({})</h3>", top.len());
            if top.is_empty() {
                h.push_str("<p class=\"meta\">none</p>\n");
            }
            for (rank, &c) in top.iter().enumerate() {
                let share = if mass > 0.0 { s[c].abs() / mass } else { 0.0 };
                let _ = write!(
                    h,
                    "<div class=\"meta\"><b>{}. {}</b> · score {} · {}% of the |score| mass</div>\n<div class=\"seq\">",
                    rank + 1,
                    escape(&x.candidates[c].id),
                    num(s[c]),
                    num(100.0 * share)
                );
                let start = r.completion_start[c];
                for (t, (tok, v)) in r.tokens[c].iter().zip(&r.token_scores[qi][c]).enumerate() {
                    if t == start && start > 0 {
                        h.push_str(
                            "<span class=\"cut\" title=\"the completion starts here\"></span>",
                        );
                    }
                    let class = if t < start { " class=\"p\"" } else { "" };
                    let _ = write!(
                        h,
                        "<span{class} style=\"background:{}\" title=\"{}{}\">{}</span>",
                        background(*v, max_token),
                        if t < start { "prompt token · " } else { "" },
                        escape(&num(*v)),
                        escape(tok)
                    );
                }
                h.push_str("</div>\n");
            }
        }
    }
    h.push_str("</body></html>\n");
    h
}

/// At most about `max` indices spread evenly over `0..=n` (both ends included).
fn spread(n: usize, max: usize) -> Vec<usize> {
    if n <= max {
        return (0..=n).collect();
    }
    let mut v: Vec<usize> = (0..=max).map(|i| i * n / max).collect();
    v.dedup();
    v
}

/// The figure: per query, (left) the cumulative share of the |score| mass carried by
/// the top share of candidates ranked by |score| — a straight diagonal if every candidate
/// mattered equally, a curve hugging the top-left corner if a few dominate — and (right)
/// log10 |score| against log10 rank.
pub fn distribution_svg(x: &Inputs) -> String {
    let mut lorenz = LineChart::new("Concentration of influence")
        .x_label("share of candidates (ranked by |score|)")
        .y_label("share of Σ|score|")
        .x_range(0.0, 1.0)
        .y_range(0.0, 1.0)
        .markers(false)
        .series("equal influence", [(0.0, 0.0), (1.0, 1.0)]);
    let mut loglog = LineChart::new("|score| by rank")
        .x_label("log10 rank")
        .y_label("log10 |score|")
        .markers(false);
    let mut notes = Vec::new();
    for (q, s) in x.queries.iter().zip(&x.result.scores) {
        let mut abs: Vec<f64> = s.iter().map(|v| v.abs()).collect();
        abs.sort_by(|a, b| b.total_cmp(a));
        let total: f64 = abs.iter().sum();
        let n = abs.len();
        if n == 0 || total <= 0.0 {
            notes.push(format!("{}: no non-zero score", q.id));
            continue;
        }
        let mut cum = vec![0.0];
        for a in &abs {
            cum.push(cum.last().unwrap() + a);
        }
        lorenz = lorenz.series(
            q.id.clone(),
            spread(n, 400)
                .into_iter()
                .map(|k| (k as f64 / n as f64, cum[k] / total))
                .collect::<Vec<_>>(),
        );
        let mut ranks: Vec<usize> = (0..=60)
            .map(|i| (n as f64).powf(i as f64 / 60.0).round() as usize)
            .filter(|&k| (1..=n).contains(&k))
            .collect();
        ranks.dedup();
        loglog = loglog.series(
            q.id.clone(),
            ranks
                .into_iter()
                .filter(|&k| abs[k - 1] > 0.0)
                .map(|k| ((k as f64).log10(), abs[k - 1].log10()))
                .collect::<Vec<_>>(),
        );
        notes.push(format!(
            "{}: top 1% carry {:.0}%, top 10% {:.0}%",
            q.id,
            100.0 * top_share(s, n.div_ceil(100)).unwrap_or(0.0),
            100.0 * top_share(s, n.div_ceil(10)).unwrap_or(0.0)
        ));
    }
    let mut fig = Figure::panels(2, vec![lorenz, loglog])
        .independent_scales()
        .title("How concentrated each query's influence is")
        .subtitle(x.info.caption(&format!(
            "{} queries × {} candidates",
            x.queries.len(),
            x.candidates.len()
        )));
    fig = fig.note(format!(
        "Candidates ranked by |score| within each query; {}",
        notes.join("; ")
    ));
    fig.to_svg()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_colours() {
        assert_eq!(
            escape("<b a=\"x\">&'</b>"),
            "&lt;b a=&quot;x&quot;&gt;&amp;&#39;&lt;/b&gt;"
        );
        assert_eq!(background(2.0, 4.0), "rgba(214,39,40,0.425)");
        assert_eq!(background(-4.0, 4.0), "rgba(31,119,180,0.850)");
        assert_eq!(background(0.0, 4.0), "transparent");
        assert_eq!(background(1e-9, 4.0), "transparent");
        assert_eq!(num(0.012346), "0.01235");
        assert_eq!(num(-2.5e-6), "-2.500e-6");
        assert_eq!(spread(3, 10), [0, 1, 2, 3]);
        let s = spread(1000, 10);
        assert_eq!((s[0], s[s.len() - 1], s.len()), (0, 1000, 11));
    }
}
