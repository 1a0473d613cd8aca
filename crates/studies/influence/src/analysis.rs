//! The tables of `influence/queries`: what the model measured, the most influential
//! candidates per query and sign, how each query's scores are distributed (the paper's
//! "influence is sparse" view), and self-influence.

use shammie_core::{Cell, RunInfo, Table};
use shammie_engine::{Analysis, InfluenceResult, InfluenceText, ReportFile};

use crate::corpus::show_prompt;
use crate::report;

/// A query's candidate scores summarised. Definitions (also in the table's notes), over
/// the n scores s_1 … s_n:
/// - `share_positive`: #{s_i > 0} / n;
/// - `mean` = Σ s_i / n; `sd` = √(Σ (s_i − mean)² / (n − 1)) (`None` for n < 2);
/// - `median`: the middle of the sorted scores (the mean of the two middle ones for even n);
/// - `top1`, `top10`: the share of the total mass Σ|s_i| carried by the k candidates of
///   largest |s|, k = ⌈n/100⌉ and ⌈n/10⌉ (`None` when the mass is 0);
/// - `excess_kurtosis` = m₄ / m₂² − 3 with the central moments m_j = Σ (s_i − mean)^j / n
///   (the plain moment estimator, scipy's `kurtosis(bias=True)`; 0 for a normal
///   distribution, large when a few scores dominate; `None` when m₂ = 0).
#[derive(Debug, Clone, PartialEq)]
pub struct Distribution {
    pub n: usize,
    pub share_positive: f64,
    pub mean: f64,
    pub sd: Option<f64>,
    pub median: f64,
    pub max: f64,
    pub min: f64,
    pub top1: Option<f64>,
    pub top10: Option<f64>,
    pub excess_kurtosis: Option<f64>,
}

/// The summary of `scores` ([`Distribution`]); `None` when there are none.
pub fn distribution(scores: &[f64]) -> Option<Distribution> {
    let n = scores.len();
    if n == 0 {
        return None;
    }
    let nf = n as f64;
    let mean = scores.iter().sum::<f64>() / nf;
    let moment = |j: i32| scores.iter().map(|s| (s - mean).powi(j)).sum::<f64>() / nf;
    let (m2, m4) = (moment(2), moment(4));
    let mut sorted = scores.to_vec();
    sorted.sort_by(f64::total_cmp);
    let median = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    };
    Some(Distribution {
        n,
        share_positive: scores.iter().filter(|s| **s > 0.0).count() as f64 / nf,
        mean,
        sd: (n >= 2).then(|| (m2 * nf / (nf - 1.0)).sqrt()),
        median,
        max: sorted[n - 1],
        min: sorted[0],
        top1: top_share(scores, n.div_ceil(100)),
        top10: top_share(scores, n.div_ceil(10)),
        excess_kurtosis: (m2 > 0.0).then(|| m4 / (m2 * m2) - 3.0),
    })
}

/// The share of Σ|s| carried by the `k` largest |s| (`None` when Σ|s| = 0).
pub fn top_share(scores: &[f64], k: usize) -> Option<f64> {
    let mut abs: Vec<f64> = scores.iter().map(|s| s.abs()).collect();
    abs.sort_by(|a, b| b.total_cmp(a));
    let total: f64 = abs.iter().sum();
    (total > 0.0).then(|| abs.iter().take(k).sum::<f64>() / total)
}

/// The candidates ranked for one sign: indices of the scores above 0 from the largest
/// down (`positive`), or below 0 from the most negative up; equal scores in candidate
/// order; at most `k`.
pub fn ranked(scores: &[f64], positive: bool, k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..scores.len())
        .filter(|&c| {
            if positive {
                scores[c] > 0.0
            } else {
                scores[c] < 0.0
            }
        })
        .collect();
    if positive {
        idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    } else {
        idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    }
    idx.truncate(k);
    idx
}

/// The start of a text on one line: whitespace runs collapsed to one space, cut after
/// `chars` characters with `…`.
pub fn snippet(text: &str, chars: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= chars {
        flat
    } else {
        let cut: String = flat.chars().take(chars).collect();
        format!("{}…", cut.trim_end())
    }
}

/// Decimals that show the largest of `values` with about four significant digits, and
/// never fewer than 3 (scores can be of any magnitude; shares sit beside them).
pub fn decimals_for(values: impl IntoIterator<Item = f64>) -> usize {
    let max = values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold(0.0f64, |m, v| m.max(v.abs()));
    if max == 0.0 {
        return 3;
    }
    (3 - max.log10().floor() as i64).clamp(3, 15) as usize
}

/// Characters of a completion shown in a table.
const SNIPPET: usize = 80;

/// Everything the analysis reads.
pub struct Inputs<'a> {
    pub queries: &'a [InfluenceText],
    /// The candidates scored, in the order of the result's columns.
    pub candidates: &'a [InfluenceText],
    pub result: &'a InfluenceResult,
    /// Candidates shown per query and sign.
    pub top_k: usize,
    /// Documents in the corpus (the candidates are some of them).
    pub corpus_size: usize,
    pub info: &'a RunInfo,
}

/// The tables and report files.
pub fn analyze(x: &Inputs) -> Analysis {
    let r = x.result;
    let mut tables = Vec::new();
    tables.push(setup(x));
    let mut m = Table::new(
        "measurement",
        "The queries' measurement",
        ["query", "completion", "log p(completion | prompt)"]
            .map(String::from)
            .to_vec(),
        x.queries
            .iter()
            .zip(&r.query_logprobs)
            .map(|(q, lp)| {
                vec![
                    Cell::Text(q.id.clone()),
                    Cell::Text(snippet(&q.completion, SNIPPET)),
                    Cell::Float(*lp),
                ]
            })
            .collect(),
        vec!["The measurement f whose influence is traced: the sum over the completion's tokens of log p(token | everything before it), in nats, with the prompt rendered in the model's prompt format (sequences cut to max_tokens tokens).".into()],
    );
    m.decimals = Some(3);
    tables.push(m);
    for (qi, q) in x.queries.iter().enumerate() {
        tables.push(top_table(x, qi, q));
    }
    tables.push(distribution_table(x));
    if let Some(si) = &r.self_influence {
        tables.push(self_influence_table(x, si));
    }
    let files = vec![
        ReportFile {
            path: "report/influence.html".into(),
            description: "per query, the most influential training sequences with per-token heat maps".into(),
            content: report::html(x).into_bytes(),
        },
        ReportFile {
            path: "report/distribution.svg".into(),
            description: "how concentrated each query's influence is: cumulative share of |score| mass against share of candidates, and |score| against rank (log–log)".into(),
            content: report::distribution_svg(x).into_bytes(),
        },
    ];
    Analysis { tables, files }
}

fn setup(x: &Inputs) -> Table {
    let r = x.result;
    let text = |s: &str| Cell::Text(s.to_string());
    let rows = vec![
        vec![text("queries"), Cell::Int(x.queries.len() as i64)],
        vec![
            text("candidates scored"),
            Cell::Int(x.candidates.len() as i64),
        ],
        vec![text("corpus documents"), Cell::Int(x.corpus_size as i64)],
        vec![text("fit sequences"), Cell::Int(r.fit_sequences as i64)],
        vec![text("fit tokens"), Cell::Int(r.fit_tokens as i64)],
        vec![text("projections"), Cell::Int(r.layers.len() as i64)],
        vec![text("fit seconds"), Cell::Float(r.fit_seconds)],
        vec![text("score seconds"), Cell::Float(r.score_seconds)],
    ];
    let mut t = Table::new(
        "setup",
        "Influence computation",
        ["quantity", "value"].map(String::from).to_vec(),
        rows,
        vec![
            "EK-FAC factors were fitted on the fit sequences (a seeded sample of the corpus); the candidates are the union over queries of the corpus documents most similar to each query by TF-IDF (see the run's config: top_n, fit_sequences, fisher, damping, rank).".into(),
            format!("Projections: {}.", summarise_layers(&r.layers)),
            "Fit seconds are 0 when the factors came from a checkpoint of an earlier, killed attempt.".into(),
        ],
    );
    t.decimals = Some(1);
    t
}

/// The projection names, shortened when there are many.
fn summarise_layers(layers: &[String]) -> String {
    if layers.len() <= 6 {
        layers.join(", ")
    } else {
        format!(
            "{}, … , {} ({} in all)",
            layers[..3].join(", "),
            layers[layers.len() - 1],
            layers.len()
        )
    }
}

fn top_table(x: &Inputs, qi: usize, q: &InfluenceText) -> Table {
    let s = &x.result.scores[qi];
    let mass: f64 = s.iter().map(|v| v.abs()).sum();
    let mut rows = Vec::new();
    for (sign, positive) in [("positive", true), ("negative", false)] {
        for (rank, &c) in ranked(s, positive, x.top_k).iter().enumerate() {
            rows.push(vec![
                Cell::Text(sign.into()),
                Cell::Int(rank as i64 + 1),
                Cell::Text(x.candidates[c].id.clone()),
                Cell::Float(s[c]),
                Cell::Float(s[c].abs() / mass),
                Cell::Text(snippet(&x.candidates[c].completion, SNIPPET)),
            ]);
        }
    }
    let mut t = Table::new(
        format!("top_{}", qi + 1),
        format!("Most influential candidates for query `{}`", q.id),
        ["sign", "rank", "document", "score", "share of |score| mass", "completion"]
            .map(String::from)
            .to_vec(),
        rows,
        vec![
            format!(
                "Query `{}`: {} → {}",
                q.id,
                snippet(&show_prompt(&q.prompt), SNIPPET),
                snippet(&q.completion, SNIPPET)
            ),
            "Score: the influence I(z) = ∇f(θ)ᵀ (G + λI)⁻¹ ∇log p(z) of candidate z on the query's measurement f = log p(completion | prompt), G the EK-FAC approximation of the Gauss–Newton Hessian, summed over the projections. Positive: training on z raises the probability of the query's completion (it helps); negative: it lowers it.".into(),
            format!("The {} most positive and the {} most negative candidates (top_k); equal scores in corpus order. Share of |score| mass: |score| / Σ |score| over the query's {} scored candidates.", x.top_k, x.top_k, s.len()),
        ],
    );
    t.decimals = Some(decimals_for(s.iter().copied()));
    t
}

fn distribution_table(x: &Inputs) -> Table {
    let opt = |v: Option<f64>| v.map(Cell::Float).unwrap_or(Cell::Empty);
    let mut rows = Vec::new();
    for (q, s) in x.queries.iter().zip(&x.result.scores) {
        let Some(d) = distribution(s) else {
            continue;
        };
        rows.push(vec![
            Cell::Text(q.id.clone()),
            Cell::Int(d.n as i64),
            Cell::Float(d.share_positive),
            Cell::Float(d.mean),
            opt(d.sd),
            Cell::Float(d.median),
            Cell::Float(d.max),
            Cell::Float(d.min),
            opt(d.top1),
            opt(d.top10),
            opt(d.excess_kurtosis),
        ]);
    }
    let mut t = Table::new(
        "distribution",
        "How each query's influence is distributed over the candidates",
        [
            "query",
            "candidates",
            "share positive",
            "mean",
            "sd",
            "median",
            "max",
            "min",
            "top 1% share",
            "top 10% share",
            "excess kurtosis",
        ]
        .map(String::from)
        .to_vec(),
        rows,
        vec![
            "Over a query's n scored candidates s_1 … s_n: share positive = #{s > 0}/n; mean = Σs/n; sd = √(Σ(s − mean)²/(n − 1)); median = the middle sorted score (even n: the mean of the two middle ones); top 1% (10%) share = the share of the mass Σ|s| carried by the ⌈n/100⌉ (⌈n/10⌉) candidates of largest |s|; excess kurtosis = m₄/m₂² − 3, m_j = Σ(s − mean)^j/n (0 for a normal distribution).".into(),
            "Grosse et al. find influence sparse and heavy-tailed: a small share of sequences carries most of the mass (top shares far above 1% and 10%, large kurtosis). The candidates are the TF-IDF-filtered sequences, not the whole corpus, unless top_n=0.".into(),
        ],
    );
    t.decimals = Some(decimals_for(x.result.scores.iter().flatten().copied()));
    t
}

fn self_influence_table(x: &Inputs, si: &[f64]) -> Table {
    let rows = ranked(si, true, x.top_k)
        .iter()
        .enumerate()
        .map(|(rank, &c)| {
            vec![
                Cell::Int(rank as i64 + 1),
                Cell::Text(x.candidates[c].id.clone()),
                Cell::Float(si[c]),
                Cell::Text(snippet(&x.candidates[c].completion, SNIPPET)),
            ]
        })
        .collect();
    let mut t = Table::new(
        "self_influence",
        "Candidates of highest self-influence",
        ["rank", "document", "self-influence", "completion"]
            .map(String::from)
            .to_vec(),
        rows,
        vec![format!(
            "Self-influence ∇log p(z)ᵀ (G + λI)⁻¹ ∇log p(z): how strongly training on z would move its own probability; high for sequences unusual for the model (memorised or atypical). The {} highest of {} candidates.",
            x.top_k,
            si.len()
        )],
    );
    t.decimals = Some(decimals_for(si.iter().copied()));
    t
}

/// Checks that a result fits its job: one row of scores per query and one column per
/// candidate, per-token scores matching each candidate's tokens, every number finite.
pub fn check_result(
    r: &InfluenceResult,
    queries: usize,
    candidates: usize,
    self_influence: bool,
) -> Result<(), String> {
    let bad = |what: String| {
        Err(format!(
            "the lab's influence result does not fit the job: {what}"
        ))
    };
    if r.scores.len() != queries
        || r.token_scores.len() != queries
        || r.query_logprobs.len() != queries
    {
        return bad(format!(
            "{queries} queries, but {} rows of scores, {} of token scores and {} log-probabilities",
            r.scores.len(),
            r.token_scores.len(),
            r.query_logprobs.len()
        ));
    }
    if r.tokens.len() != candidates || r.completion_start.len() != candidates {
        return bad(format!(
            "{candidates} candidates, but tokens of {} and completion starts of {}",
            r.tokens.len(),
            r.completion_start.len()
        ));
    }
    for (c, (t, s)) in r.tokens.iter().zip(&r.completion_start).enumerate() {
        if *s > t.len() {
            return bad(format!(
                "candidate {c}: completion starts at token {s} of {}",
                t.len()
            ));
        }
    }
    for q in 0..queries {
        if r.scores[q].len() != candidates || r.token_scores[q].len() != candidates {
            return bad(format!(
                "query {q}: scores of {} candidates",
                r.scores[q].len()
            ));
        }
        for c in 0..candidates {
            if r.token_scores[q][c].len() != r.tokens[c].len() {
                return bad(format!(
                    "query {q}, candidate {c}: {} token scores for {} tokens",
                    r.token_scores[q][c].len(),
                    r.tokens[c].len()
                ));
            }
        }
    }
    match (&r.self_influence, self_influence) {
        (Some(si), true) if si.len() != candidates => {
            return bad(format!("self-influence of {} candidates", si.len()))
        }
        (None, true) => return bad("no self-influence, which was asked for".into()),
        _ => {}
    }
    let finite = r.scores.iter().flatten().all(|v| v.is_finite())
        && r.token_scores
            .iter()
            .flatten()
            .flatten()
            .all(|v| v.is_finite())
        && r.query_logprobs.iter().all(|v| v.is_finite())
        && r.self_influence.iter().flatten().all(|v| v.is_finite());
    if !finite {
        return bad("a score or log-probability is not a finite number".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(x: f64, y: f64) {
        assert!((x - y).abs() < 1e-12, "{x} != {y}");
    }

    /// By hand, s = [8, −4, 2, 1, 1, 0, 0, 0, 0, −1, −1] (n = 11):
    /// - positive: 8, 2, 1, 1 → 4/11; mean = (8 − 4 + 2 + 1 + 1 − 1 − 1)/11 = 6/11;
    /// - sorted: −4, −1, −1, 0, 0, 0, 0, 1, 1, 2, 8 → median (6th) 0, min −4, max 8;
    /// - mass Σ|s| = 8 + 4 + 2 + 1 + 1 + 1 + 1 = 18; top 1%: k = ⌈0.11⌉ = 1 → 8/18;
    ///   top 10%: k = ⌈1.1⌉ = 2 → (8 + 4)/18 = 2/3;
    /// - in units of 1/11, s − mean = [82, −50, 16, 5, 5, −6, −6, −6, −6, −17, −17]/11:
    ///   Σ squares = 6724 + 2500 + 256 + 2·25 + 4·36 + 2·289 = 10252, so
    ///   sd = √(10252/121/10) = 2.910794955459294;
    ///   Σ fourth powers = 45212176 + 6250000 + 65536 + 2·625 + 4·1296 + 2·83521 = 51701188;
    ///   m₄/m₂² = n·Σd⁴/(Σd²)² = 11·51701188/10252² = 5.410981…, so excess kurtosis
    ///   = 2.410981045884065.
    #[test]
    fn distribution_by_hand() {
        let s = [8.0, -4.0, 2.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, -1.0, -1.0];
        let d = distribution(&s).unwrap();
        assert_eq!(d.n, 11);
        close(d.share_positive, 4.0 / 11.0);
        close(d.mean, 6.0 / 11.0);
        close(d.median, 0.0);
        assert_eq!((d.max, d.min), (8.0, -4.0));
        close(d.top1.unwrap(), 8.0 / 18.0);
        close(d.top10.unwrap(), 2.0 / 3.0);
        close(d.sd.unwrap(), 2.910794955459294);
        close(
            d.excess_kurtosis.unwrap(),
            11.0 * 51701188.0 / 10252f64.powi(2) - 3.0,
        );
        close(d.excess_kurtosis.unwrap(), 2.410981045884065);
        // k = ⌈n/10⌉ at n = 10 is 1: 5 of the mass 10; ⌈n/100⌉ at n = 200 is 2: 20 of 218.
        let ten = [5.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0];
        close(distribution(&ten).unwrap().top10.unwrap(), 0.5);
        let mut many = vec![1.0; 198];
        many.extend([-10.0, 10.0]);
        close(distribution(&many).unwrap().top1.unwrap(), 20.0 / 218.0);
        // Even n: the mean of the two middle scores; one score: no sd; equal scores: no
        // kurtosis; all zero: no top shares.
        close(distribution(&[3.0, -1.0, 2.0, 0.0]).unwrap().median, 1.0);
        let one = distribution(&[2.5]).unwrap();
        assert_eq!(
            (one.sd, one.excess_kurtosis, one.top1),
            (None, None, Some(1.0))
        );
        let zero = distribution(&[0.0, 0.0]).unwrap();
        assert_eq!(
            (zero.top10, zero.excess_kurtosis, zero.sd),
            (None, None, Some(0.0))
        );
        assert!(distribution(&[]).is_none());
    }

    #[test]
    fn ranking_by_sign() {
        let s = [0.5, -2.0, 3.0, 0.5, 0.0, -0.1, -2.0];
        assert_eq!(ranked(&s, true, 10), [2, 0, 3]);
        assert_eq!(ranked(&s, true, 2), [2, 0]);
        assert_eq!(ranked(&s, false, 10), [1, 6, 5]);
    }

    #[test]
    fn snippets_and_decimals() {
        assert_eq!(snippet("  a\n\nb  c ", 10), "a b c");
        assert_eq!(snippet("abcdef ghij", 7), "abcdef…");
        assert_eq!(decimals_for([0.0042, -0.001]), 6);
        assert_eq!(decimals_for([1234.5]), 3);
        assert_eq!(decimals_for([0.5]), 4);
        assert_eq!(decimals_for([0.0]), 3);
        assert_eq!(decimals_for([1e-30]), 15);
    }
}
