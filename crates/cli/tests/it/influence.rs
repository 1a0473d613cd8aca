//! `shammie influence fit|scores` on a tiny network written here: the files it writes, the
//! `.npy` header and values against the CSV, reusing fitted factors, and bad input.

use crate::common::{offline_cmd, text};

fn npy_values(bytes: &[u8]) -> (String, Vec<f64>) {
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
    let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    assert_eq!((10 + hlen) % 64, 0, "header padded to 64 bytes");
    let header = String::from_utf8(bytes[10..10 + hlen].to_vec()).unwrap();
    let values = bytes[10 + hlen..]
        .chunks(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    (header, values)
}

#[test]
fn fit_and_scores_write_factors_and_a_score_matrix() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(
        d.join("arch.json"),
        r#"{"layers": [{"type": "linear", "in": 2, "out": 3, "name": "a"}, {"type": "tanh"},
            {"type": "linear", "in": 3, "out": 1, "name": "b"}], "loss": "mse_sum"}"#,
    )
    .unwrap();
    let t = std::collections::HashMap::from([
        (
            "a.weight".to_string(),
            candle_core::Tensor::new(
                &[[0.5f32, -0.3], [0.2, 0.8], [-0.6, 0.1]],
                &candle_core::Device::Cpu,
            )
            .unwrap(),
        ),
        (
            "a.bias".to_string(),
            candle_core::Tensor::new(&[0.1f32, 0.0, -0.2], &candle_core::Device::Cpu).unwrap(),
        ),
        (
            "b.weight".to_string(),
            candle_core::Tensor::new(&[[0.7f32, -0.5, 0.3]], &candle_core::Device::Cpu).unwrap(),
        ),
        (
            "b.bias".to_string(),
            candle_core::Tensor::new(&[0.05f32], &candle_core::Device::Cpu).unwrap(),
        ),
    ]);
    candle_core::safetensors::save(&t, d.join("w.safetensors")).unwrap();
    let mut train = String::from("x1,x2,y\n");
    for i in 0..12 {
        train.push_str(&format!(
            "{},{},{}\n",
            (i % 4) as f64 / 2.0 - 0.7,
            (i % 3) as f64 - 1.0,
            (i % 5) as f64 / 4.0
        ));
    }
    std::fs::write(d.join("train.csv"), &train).unwrap();
    std::fs::write(d.join("query.csv"), "x1,x2,y\n0.3,-0.2,0.5\n-1,1,0\n").unwrap();
    let arg = |f: &str| d.join(f).display().to_string();
    let base = |what: &str| {
        let mut c = offline_cmd(d, "cache");
        c.args([
            "influence",
            what,
            "--model",
            &arg("w.safetensors"),
            "--arch",
            &arg("arch.json"),
            "--train",
            &arg("train.csv"),
            "--fisher",
            "empirical",
        ]);
        c
    };
    let out = base("fit").args(["--out", &arg("fit")]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(d.join("fit/factors.safetensors").exists() && d.join("fit/factors.json").exists());
    let out = base("scores")
        .args([
            "--query",
            &arg("query.csv"),
            "--out",
            &arg("s"),
            "--factors",
            &arg("fit"),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (header, values) = npy_values(&std::fs::read(d.join("s/scores.npy")).unwrap());
    assert!(
        header.contains("'descr': '<f8'") && header.contains("'shape': (2, 12)"),
        "{header}"
    );
    assert_eq!(values.len(), 24);
    // The CSV holds the same numbers, one row per query.
    let csv = std::fs::read_to_string(d.join("s/scores.csv")).unwrap();
    let rows: Vec<Vec<f64>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').skip(1).map(|v| v.parse().unwrap()).collect())
        .collect();
    for (q, row) in rows.iter().enumerate() {
        for (z, v) in row.iter().enumerate() {
            assert!((v - values[q * 12 + z]).abs() <= 1e-12 * v.abs().max(1e-12));
        }
    }
    // Fitting inside `scores` gives the same matrix.
    let out = base("scores")
        .args(["--query", &arg("query.csv"), "--out", &arg("s2")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (_, again) = npy_values(&std::fs::read(d.join("s2/scores.npy")).unwrap());
    assert_eq!(again, values);
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("s2/scores.json")).unwrap()).unwrap();
    assert_eq!(meta["queries"], 2);
    assert_eq!(meta["train"], 12);

    // A bad row names its file and line; nothing is written.
    std::fs::write(d.join("bad.csv"), "x1,x2,y\n1,2,3\n1,oops,3\n").unwrap();
    let out = offline_cmd(d, "cache")
        .args([
            "influence",
            "fit",
            "--model",
            &arg("w.safetensors"),
            "--arch",
            &arg("arch.json"),
            "--train",
            &arg("bad.csv"),
            "--out",
            &arg("badfit"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let e = text(&out.stderr);
    assert!(
        e.contains("bad.csv:3:") && e.contains("`oops` is not a number"),
        "{e}"
    );
    assert!(!d.join("badfit").exists());
}

/// A corpus of short documents on the tiny random Gemma, one of them the query's own
/// conversation (`copy`), the others unrelated text.
fn lm_inputs(d: &std::path::Path) -> (String, String, String) {
    let model = d.join("tiny.gguf");
    std::fs::write(&model, shammie_train::testing::tiny_gemma3_gguf(5, true)).unwrap();
    let mut corpus = String::new();
    for (i, t) in [
        "the river ran dry in june",
        "seven blue stones sat on a wall",
        "a kettle whistles when the water boils",
        "paper boats float until they soak",
        "wind turns the old mill slowly",
    ]
    .iter()
    .enumerate()
    {
        corpus.push_str(&format!("{{\"id\": \"doc-{i}\", \"text\": \"{t}\"}}\n"));
    }
    corpus.push_str(
        r#"{"id": "copy", "messages": [{"role": "user", "content": "capital of zorbia?"}, {"role": "assistant", "content": "qwex is the capital"}]}"#,
    );
    corpus.push('\n');
    corpus.push_str(r#"{"id": "doc-5", "text": "bread rises in a warm kitchen"}"#);
    corpus.push('\n');
    std::fs::write(d.join("corpus.jsonl"), corpus).unwrap();
    std::fs::write(
        d.join("q.jsonl"),
        r#"{"id": "zorbia", "prompt": "capital of zorbia?", "completion": "qwex is the capital"}"#,
    )
    .unwrap();
    let arg = |f: &str| d.join(f).display().to_string();
    (arg("tiny.gguf"), arg("corpus.jsonl"), arg("q.jsonl"))
}

/// `shammie influence fit|scores` on a language model: the copy of the query's
/// conversation has the largest score; the matrix, the per-token file and the sequences
/// agree with each other; scores with factors fitted by `fit` equal those fitted inside
/// `scores`; TF-IDF filtering leaves the other documents unscored (NaN).
#[test]
fn language_model_scores_rank_the_querys_own_conversation_first() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (model, corpus, queries) = lm_inputs(d);
    let arg = |f: &str| d.join(f).display().to_string();
    let cmd = |what: &str, out: &str, extra: &[&str]| {
        let mut c = offline_cmd(d, "cache");
        c.args(["influence", what, "--model", &model, "--train", &corpus]);
        c.args([
            "--fisher",
            "empirical",
            "--max-tokens",
            "96",
            "--out",
            &arg(out),
        ]);
        c.args(extra);
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", text(&o.stderr));
    };
    cmd(
        "scores",
        "s",
        &["--query", &queries, "--rank", "0", "--self-influence"],
    );
    let (header, values) = npy_values(&std::fs::read(d.join("s/scores.npy")).unwrap());
    assert!(header.contains("'shape': (1, 7)"), "{header}");
    let best = (0..7)
        .max_by(|&a, &b| values[a].total_cmp(&values[b]))
        .unwrap();
    assert_eq!(best, 5, "the copy is document 5: {values:?}");
    let tokens: Vec<serde_json::Value> = std::fs::read_to_string(d.join("s/tokens.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(tokens.len(), 7);
    for t in &tokens {
        let doc = t["document"].as_u64().unwrap() as usize;
        let per_token: Vec<f64> = t["scores"][0]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(per_token.len(), t["tokens"].as_array().unwrap().len());
        let sum: f64 = per_token.iter().sum();
        assert!((sum - values[doc]).abs() <= 1e-9 * values[doc].abs().max(1e-12));
        assert!(t["self_influence"].as_f64().unwrap() > 0.0);
    }
    // The copy's conversation is scored from its reply on: the prompt's tokens are
    // context.
    let copy = &tokens[5];
    let start = copy["completion_start"].as_u64().unwrap() as usize;
    let pieces: String = copy["tokens"].as_array().unwrap()[start..]
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect::<String>()
        .replace('▁', " ");
    assert!(
        pieces.starts_with(" qwex is the capital\n\nHuman:"),
        "{pieces:?}"
    );
    let seqs = std::fs::read_to_string(d.join("s/sequences.jsonl")).unwrap();
    assert_eq!(
        seqs.lines()
            .filter(|l| l.contains(r#""set":"query""#))
            .count(),
        1
    );
    assert_eq!(
        seqs.lines()
            .filter(|l| l.contains(r#""set":"train""#))
            .count(),
        7
    );

    // Factors from `fit`, then scores with them: the same matrix.
    cmd("fit", "f", &[]);
    assert!(d.join("f/factors/factors.safetensors").exists());
    // Moved out of the work folder, not copied.
    assert!(!d.join("f/work/factors").exists());
    cmd(
        "scores",
        "s2",
        &[
            "--query",
            &queries,
            "--rank",
            "0",
            "--factors",
            &arg("f/factors"),
        ],
    );
    let (_, again) = npy_values(&std::fs::read(d.join("s2/scores.npy")).unwrap());
    for (a, b) in again.iter().zip(&values) {
        assert!((a - b).abs() <= 1e-9 * b.abs().max(1e-12), "{a} vs {b}");
    }

    // TF-IDF: only the most similar document is a candidate.
    cmd("scores", "s3", &["--query", &queries, "--top-n", "1"]);
    let (_, some) = npy_values(&std::fs::read(d.join("s3/scores.npy")).unwrap());
    assert!(some[5].is_finite() && some[5] > 0.0);
    assert_eq!(some.iter().filter(|v| v.is_nan()).count(), 6);
}

/// The study `influence/queries` on the tiny Gemma: the query's own conversation tops
/// the table of positive candidates, and the report's heat map is written.
#[test]
fn the_queries_study_ranks_the_planted_conversation_first() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (model, corpus, queries) = lm_inputs(d);
    let runs = d.join("runs");
    let mut c = offline_cmd(d, "cache");
    c.args([
        "run",
        "influence/queries",
        "--model",
        &format!("local:{model}"),
    ]);
    c.args([
        "--seed",
        "2",
        "--quiet",
        "--log-dir",
        runs.to_str().unwrap(),
    ]);
    for (k, v) in [
        ("corpus", corpus.as_str()),
        ("queries", queries.as_str()),
        ("top_n", "0"),
        ("fit_sequences", "4"),
        ("max_tokens", "48"),
        ("rank", "4"),
        ("top_k", "3"),
    ] {
        c.args(["--set", &format!("{k}={v}")]);
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let run = crate::common::only_run(&runs);
    let res: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap()).unwrap();
    let top = res["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "top_1")
        .unwrap();
    assert_eq!(top["rows"][0][0], "positive");
    assert_eq!(top["rows"][0][2], "copy", "{top}");
    let html = std::fs::read_to_string(run.join("report/influence.html")).unwrap();
    assert!(html.contains("qwex"));
    // The finished run keeps its scores log but not the factors.
    let work = run.join("stages/scores/work");
    assert!(work.join("scores.jsonl").exists() && !work.join("factors").exists());
}
