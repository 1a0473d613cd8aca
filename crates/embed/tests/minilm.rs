//! Our tokenizer and encoder against sentence-transformers on the same model folder
//! (`fixtures/minilm.json`, made by `fixtures/make_fixtures.py`).

mod common;

use serde::Deserialize;
use shammie_embed::{cosine, Embedder};

#[derive(Deserialize)]
struct Fixtures {
    max_seq_length: usize,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    text: String,
    ids: Vec<u32>,
    embedding: Vec<f32>,
}

fn fixtures() -> Fixtures {
    serde_json::from_str(include_str!("fixtures/minilm.json")).unwrap()
}

/// Loads the model once per test binary run; `None` when skipped.
fn embedder() -> Option<&'static Embedder> {
    use std::sync::OnceLock;
    static EMBEDDER: OnceLock<Option<Embedder>> = OnceLock::new();
    EMBEDDER
        .get_or_init(|| common::model_dir_or_skip().map(|dir| Embedder::load(&dir).unwrap()))
        .as_ref()
}

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

#[test]
fn token_ids_match_the_reference() {
    let Some(embedder) = embedder() else { return };
    let fx = fixtures();
    assert_eq!(embedder.tokenizer().max_len(), fx.max_seq_length);
    assert!(
        fx.cases.iter().any(|c| c.ids.len() == fx.max_seq_length),
        "fixtures test truncation"
    );
    let mismatches: Vec<String> = fx
        .cases
        .iter()
        .filter(|c| embedder.tokenize(&c.text) != c.ids)
        .map(|c| {
            format!(
                "{:?}:\n  ours {:?}\n  ref  {:?}",
                c.text,
                embedder.tokenize(&c.text),
                c.ids
            )
        })
        .collect();
    assert!(
        mismatches.is_empty(),
        "{} texts tokenised differently:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

#[test]
#[allow(clippy::print_stderr)] // reports what it measured (seen with --nocapture)
fn embeddings_match_the_reference_one_by_one() {
    let Some(embedder) = embedder() else { return };
    assert_eq!(embedder.dim(), 384);
    let mut worst = 1f32;
    for case in fixtures().cases {
        let ours = embedder.embed(&[case.text.as_str()]).unwrap().remove(0);
        assert_eq!(ours.len(), 384);
        let c = cosine(&ours, &case.embedding);
        worst = worst.min(c);
        assert!(c >= 0.9999, "{:?}: cosine {c}", case.text);
        assert!(
            (norm(&ours) - 1.0).abs() < 1e-4,
            "{:?}: norm {}",
            case.text,
            norm(&ours)
        );
    }
    eprintln!("min cosine against sentence-transformers (one at a time): {worst}");
}

#[test]
#[allow(clippy::print_stderr)] // reports what it measured (seen with --nocapture)
fn embeddings_match_the_reference_as_one_batch() {
    let Some(embedder) = embedder() else { return };
    let fx = fixtures();
    let texts: Vec<&str> = fx.cases.iter().map(|c| c.text.as_str()).collect();
    let batch = embedder.embed(&texts).unwrap();
    assert_eq!(batch.len(), texts.len());
    let mut worst = 1f32;
    for (case, ours) in fx.cases.iter().zip(&batch) {
        let c = cosine(ours, &case.embedding);
        worst = worst.min(c);
        assert!(c >= 0.9999, "{:?}: cosine {c}", case.text);
        assert!((norm(ours) - 1.0).abs() < 1e-4);
    }
    // Padding must not change results: batched equals one at a time.
    for (text, ours) in texts.iter().zip(&batch) {
        let alone = embedder.embed(&[text]).unwrap().remove(0);
        assert!(
            cosine(ours, &alone) >= 0.99999,
            "{text:?}: batched differs from alone"
        );
    }
    let max_diff = fx
        .cases
        .iter()
        .zip(&batch)
        .flat_map(|(case, ours)| case.embedding.iter().zip(ours).map(|(a, b)| (a - b).abs()))
        .fold(0f32, f32::max);
    eprintln!("min cosine against sentence-transformers (one batch): {worst}; max |difference| {max_diff:e}");
}

#[test]
fn batches_of_any_size_keep_order() {
    let Some(embedder) = embedder() else { return };
    assert!(embedder.embed(&[]).unwrap().is_empty());
    // More than one internal chunk of 32, lengths shuffled so sorting reorders them.
    let fx = fixtures();
    let texts: Vec<&str> = (0..70)
        .map(|i| fx.cases[(i * 7) % fx.cases.len()].text.as_str())
        .collect();
    let out = embedder.embed(&texts).unwrap();
    assert_eq!(out.len(), 70);
    for (i, v) in out.iter().enumerate() {
        let case = &fx.cases[(i * 7) % fx.cases.len()];
        assert!(cosine(v, &case.embedding) >= 0.9999, "position {i}");
    }
}

#[test]
fn similar_sentences_are_closer() {
    let Some(embedder) = embedder() else { return };
    let e = embedder
        .embed(&[
            "The cat sat on the mat.",
            "A cat was sitting on a mat.",
            "Stock prices fell sharply today.",
        ])
        .unwrap();
    assert!(cosine(&e[0], &e[1]) > cosine(&e[0], &e[2]) + 0.3);
}

/// `Precision::Int8` (Q8_0 weights, 8-bit activations on the integer kernels) stays close
/// to sentence-transformers' vectors and keeps their order of similarity.
#[test]
fn int8_products_stay_close_to_the_reference() {
    let Some(dir) = common::model_dir_or_skip() else {
        return;
    };
    let e = Embedder::load_with(&dir, shammie_embed::Precision::Int8).unwrap();
    let f = fixtures();
    let texts: Vec<&str> = f.cases.iter().map(|c| c.text.as_str()).collect();
    let got = e.embed(&texts).unwrap();
    let mut worst = 1f32;
    for (c, v) in f.cases.iter().zip(&got) {
        let cos = cosine(v, &c.embedding);
        worst = worst.min(cos);
        assert!((norm(v) - 1.0).abs() < 1e-4);
    }
    // Measured: 0.9985 on the fixtures.
    assert!(
        worst > 0.995,
        "worst cosine to sentence-transformers {worst}"
    );
}
