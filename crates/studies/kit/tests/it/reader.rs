use std::collections::BTreeMap;
use std::sync::Arc;

use shammie_core::{GenerateRequest, TokenLogprob, TopLogprob};
use shammie_engine::{Models, OptionGroup, Options, SampleContext};
use shammie_kit::answers::AnswerKind;
use shammie_kit::reader::{read, AnswerOptions, Labels, ReadPath, Shape};
use shammie_models::Model;
use shammie_testkit::scripted::{self, ScriptedModel};

fn yes_no() -> Labels {
    Labels {
        kind: AnswerKind::YesNo,
        names: vec!["Yes".into(), "No".into()],
        forms: vec![
            vec!["yes".into(), "Yes".into(), "YES".into()],
            vec!["no".into(), "No".into(), "NO".into()],
        ],
    }
}

fn shape() -> Shape {
    Shape {
        logprob_tokens: 1,
        sample_tokens: 3,
        sample_prefix: String::new(),
    }
}

fn models(m: ScriptedModel) -> Models {
    let m: Arc<dyn Model> = Arc::new(m);
    Models::new(BTreeMap::from([("target".to_string(), m)]))
}

fn opts(kv: &[(&str, &str)]) -> AnswerOptions {
    AnswerOptions::from_options(Options::new(
        "t",
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    ))
    .unwrap()
}

fn top(alts: &[(&str, f64)]) -> shammie_core::Completion {
    let mut c = scripted::text(alts[0].0);
    c.logprobs = Some(vec![TokenLogprob {
        token: alts[0].0.into(),
        logprob: alts[0].1,
        top: alts
            .iter()
            .map(|(t, l)| TopLogprob {
                token: t.to_string(),
                logprob: *l,
            })
            .collect(),
    }]);
    c
}

#[tokio::test]
async fn top_k_sums_forms_and_bounds_a_missing_answer() {
    let ms = models(ScriptedModel::new("t", |r: &GenerateRequest| {
        assert_eq!(r.max_tokens, 1);
        assert_eq!(r.top_logprobs, Some(5));
        assert_eq!(r.temperature, Some(0.0));
        if r.messages[0].content == "both" {
            top(&[("yes", -0.5), ("Yes", -2.0), ("no", -1.5), ("maybe", -4.0)])
        } else if r.messages[0].content == "one" {
            top(&[("Yes", -0.1), ("Sure", -3.0), ("maybe", -6.0)])
        } else {
            top(&[("maybe", -0.1)])
        }
    }));
    let cx = SampleContext::new(&ms, "s", 1, 0);
    let o = opts(&[("top_logprobs", "5")]);
    let (labels, sh) = (yes_no(), shape());
    let go = |q: &'static str| {
        read(
            &cx,
            "target",
            GenerateRequest::user(q, 9),
            &labels,
            ReadPath::Logprobs,
            &o,
            &sh,
        )
    };
    let r = go("both").await.unwrap();
    assert!((r.values[0] - ((-0.5f64).exp() + (-2.0f64).exp())).abs() < 1e-12);
    assert!((r.values[1] - (-1.5f64).exp()).abs() < 1e-12);
    assert!(r.absent().is_empty());
    let r = go("one").await.unwrap();
    assert!((r.values[0] - (-0.1f64).exp()).abs() < 1e-12);
    assert_eq!(r.absent(), [1]);
    // The bound: the smallest probability listed.
    assert!((r.floor.unwrap() - (-6.0f64).exp()).abs() < 1e-12);
    let r = go("none").await.unwrap();
    assert!(!r.found);
    assert_eq!(r.values, [0.0, 0.0]);
}

#[tokio::test]
async fn a_pair_is_bounded_when_an_answer_is_not_listed_and_explained_by_its_forms() {
    let ms = models(ScriptedModel::new("t", |r: &GenerateRequest| {
        match r.messages[0].content.as_str() {
            "both" => top(&[("yes", -0.5), ("Yes", -2.0), ("no", -1.5), ("maybe", -4.0)]),
            "one" => top(&[("Yes", -0.1), ("Sure", -3.0), ("maybe", -6.0)]),
            _ => top(&[("maybe", -0.1)]),
        }
    }));
    let cx = SampleContext::new(&ms, "s", 1, 0);
    let (labels, sh, o) = (yes_no(), shape(), opts(&[]));
    let go = |q: &'static str| {
        read(
            &cx,
            "target",
            GenerateRequest::user(q, 9),
            &labels,
            ReadPath::Logprobs,
            &o,
            &sh,
        )
    };
    let e = f64::exp;
    // Both listed: yes = e^-0.5 + e^-2 = 0.7418, no = e^-1.5 = 0.2231; mass 0.9650.
    let pair = go("both").await.unwrap().pair(0, 1).unwrap();
    assert_eq!(pair.bounded, None);
    assert!((pair.mass() - 0.964_996_103).abs() < 1e-8);
    assert!(pair.low_mass(0.97) && !pair.low_mass(0.96));
    // "No" not listed: it takes the floor e^-6 as a bound and is flagged, instead of 0
    // (which would make the share exactly 1): share = e^-0.1 / (e^-0.1 + e^-6) = 0.99727.
    let r = go("one").await.unwrap();
    let pair = r.pair(0, 1).unwrap();
    assert_eq!(pair.bounded, Some(1));
    assert_eq!(pair.p, [e(-0.1), e(-6.0)]);
    assert!((pair.share().unwrap() - 0.997_268_039).abs() < 1e-8);
    assert_eq!(r.pair(1, 0).unwrap().bounded, Some(0));
    assert_eq!(
        r.explain(&labels),
        "logprobs: Yes 0.9048 = \"Yes\" 0.9048; No not listed (< 0.0025)"
    );
    // Neither answer listed: nothing to read.
    let r = go("none").await.unwrap();
    assert_eq!(r.pair(0, 1), None);
    assert_eq!(
        r.explain(&labels),
        "logprobs: no answer listed at the answer position"
    );
}

#[tokio::test]
async fn scoring_sums_each_labels_forms_exactly() {
    let ms = models(ScriptedModel::new("t", |r: &GenerateRequest| {
        assert_eq!(r.continuations, ["yes", "Yes", "YES", "no", "No", "NO"]);
        scripted::scores(&[-1.0, -2.0, -3.0, -0.5, -4.0, -5.0])
    }));
    let cx = SampleContext::new(&ms, "s", 1, 0);
    let r = read(
        &cx,
        "target",
        GenerateRequest::user("q", 9),
        &yes_no(),
        ReadPath::Scoring,
        &opts(&[]),
        &shape(),
    )
    .await
    .unwrap();
    let e = f64::exp;
    assert!((r.values[0] - (e(-1.0) + e(-2.0) + e(-3.0))).abs() < 1e-12);
    assert!((r.values[1] - (e(-0.5) + e(-4.0) + e(-5.0))).abs() < 1e-12);
    assert_eq!(r.path, ReadPath::Scoring);
    // What decided it, form by form: e^-1 = 0.3679, e^-2 = 0.1353, e^-3 = 0.0498 (sum
    // 0.5530); e^-0.5 = 0.6065, e^-4 = 0.0183, e^-5 = 0.0067 (sum 0.6316).
    assert_eq!(
        r.explain(&yes_no()),
        "scoring: Yes 0.5530 = \"yes\" 0.3679 + \"Yes\" 0.1353 + \"YES\" 0.0498; \
         No 0.6316 = \"no\" 0.6065 + \"No\" 0.0183 + \"NO\" 0.0067"
    );
    // Below 0.0001 a probability keeps two significant digits: e^-12 = 6.1e-6.
    let tiny = shammie_kit::reader::Reading {
        values: vec![e(-12.0), 0.5],
        forms: vec![vec![("Yes".into(), e(-12.0))], vec![("No".into(), 0.5)]],
        ..r.clone()
    };
    assert_eq!(
        tiny.explain(&yes_no()),
        "scoring: Yes 6.1e-6 = \"Yes\" 6.1e-6; No 0.5000 = \"No\" 0.5000"
    );
    let pair = r.pair(1, 0).unwrap();
    assert_eq!((pair.p, pair.bounded), ([r.values[1], r.values[0]], None));
}

#[tokio::test]
async fn sampling_counts_parsed_answers_with_distinct_nonces() {
    let ms = models(ScriptedModel::new("t", |r: &GenerateRequest| {
        assert_eq!(r.temperature, Some(0.7));
        assert_eq!(r.max_tokens, 3);
        // Nonces 0..5: yes, no, yes, unreadable, yes.
        scripted::text(["Yes.", "no", "yes", "perhaps", "YES"][r.nonce as usize])
    }));
    let cx = SampleContext::new(&ms, "s", 1, 0);
    let o = opts(&[("samples", "5"), ("temperature", "0.7")]);
    let r = read(
        &cx,
        "target",
        GenerateRequest::user("q", 9),
        &yes_no(),
        ReadPath::Sampling,
        &o,
        &shape(),
    )
    .await
    .unwrap();
    assert_eq!(r.values, [3.0, 1.0]);
    assert_eq!(r.samples, 5);
    assert_eq!(cx.into_transcript().calls().count(), 5);
}

#[test]
fn auto_picks_the_best_offered_path_the_model_supports() {
    let all = [ReadPath::Scoring, ReadPath::Logprobs, ReadPath::Sampling];
    let mut caps = scripted::all_capabilities();
    let o = opts(&[]);
    assert_eq!(o.resolve(&caps, &all), ReadPath::Scoring);
    assert_eq!(o.resolve(&caps, &all[1..]), ReadPath::Logprobs);
    caps.max_top_logprobs = 0;
    caps.score_continuations = false;
    assert_eq!(o.resolve(&caps, &all), ReadPath::Sampling);
    let e = opts(&[("path", "logprobs")])
        .check_model("m", &caps)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no token log-probabilities"), "{e}");
    let e = opts(&[("path", "scoring")])
        .validate("s/t", &all[1..])
        .unwrap_err()
        .to_string();
    assert!(e.contains("path=scoring is not offered"), "{e}");
    // Out-of-range values never get that far: the option's declared range refuses them.
    let e = AnswerOptions::from_options(Options::new(
        "s/t",
        [("samples".to_string(), "0".to_string())]
            .into_iter()
            .collect(),
    ))
    .unwrap_err()
    .to_string();
    assert!(e.contains("samples=\"0\": must be between 1"), "{e}");
}
