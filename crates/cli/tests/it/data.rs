//! Data files are read alike by every study: a bad file exits 2 with one message naming
//! FILE:LINE (FILE alone when it has no records), before any call and without a run
//! directory; a byte-order mark is accepted.

use std::path::{Path, PathBuf};

use crate::common::*;
use serde_json::json;
use shammie_testkit::MockServer;

/// What to run on a bad file, what the file holds, and the error it must give.
struct Case {
    /// `constitution/traits`, `discrim-eval/decisions`, `cot-faithfulness/interventions`,
    /// or `analyze` (`shammie analyze discrim-eval FILE`).
    task: &'static str,
    /// The file's name; a name ending in `/` is a folder of two empty files.
    name: &'static str,
    bytes: Vec<u8>,
    /// The line the error names (`None`: a message about the whole file).
    line: Option<u64>,
    want: &'static str,
}

fn trait_line(q: &str, m: &str, n: &str) -> String {
    json!({"question": q, "answer_matching_behavior": m, "answer_not_matching_behavior": n})
        .to_string()
        + "\n"
}

fn decision(q: u32, race: &str, text: &str) -> String {
    json!({"filled_template": text, "decision_question_id": q, "age": 30, "gender": "male",
           "race": race, "fill_type": "explicit"})
    .to_string()
        + "\n"
}

fn mc(q: &str) -> String {
    json!({"question": q, "choices": ["a", "b"], "answer": 0}).to_string() + "\n"
}

/// A logit table of 2 questions × 2 races, as CSV rows after the header.
fn logit_rows() -> String {
    let mut s = String::new();
    for q in 0..2 {
        for race in ["white", "Black"] {
            s.push_str(&format!("{q},30,male,{race},0.{q}\n"));
        }
    }
    s
}

const LOGIT_HEADER: &str = "decision_question_id,age,gender,race,logit\n";

/// `text` with the byte at `at` replaced by 0xFF (not UTF-8).
fn latin(text: &str, at: usize) -> Vec<u8> {
    let mut b = text.as_bytes().to_vec();
    b[at] = 0xFF;
    b
}

fn cases() -> Vec<Case> {
    let empty = "no records: the file is empty or blank";
    let (t1, t2) = (
        trait_line("Q1?", " Yes", " No"),
        trait_line("Q2?", " No", " Yes"),
    );
    let huge = "x".repeat(2 << 20);
    let ab = "Pick one:\n (A) x\n (B) y";
    let (d1, d2) = (decision(1, "white", "D1"), decision(1, "Black", "D2"));
    let (m1, m2) = (mc("M1?"), mc("M2?"));
    let case = |task, name, bytes: Vec<u8>, line, want| Case {
        task,
        name,
        bytes,
        line,
        want,
    };
    vec![
        // constitution/traits
        case("constitution/traits", "empty.jsonl", vec![], None, empty),
        case("constitution/traits", "blank.jsonl", b"\n \n".to_vec(), None, empty),
        case("constitution/traits", "sets/", vec![], None, empty),
        case(
            "constitution/traits",
            "dup.jsonl",
            format!("{t1}{t2}{t1}").into_bytes(),
            Some(3),
            "duplicate question: the same question and answers (first at line 1)",
        ),
        case(
            "constitution/traits",
            "latin.jsonl",
            latin(&format!("{t1}{t2}"), t1.len() + 15),
            Some(2),
            "not UTF-8 text (byte 0xFF at column 16)",
        ),
        case(
            "constitution/traits",
            "z.jsonl",
            trait_line(ab, " (Z)", " (A)").into_bytes(),
            Some(1),
            "answer_matching_behavior \" (Z)\" is not among the question's choices (A), (B)",
        ),
        case(
            "constitution/traits",
            "huge.jsonl",
            format!("{t1}{}", trait_line(&huge, " Yes", " No")).into_bytes(),
            Some(2),
            "the prompt text is 2097152 bytes, over the limit of 1048576 bytes",
        ),
        // discrim-eval/decisions
        case("discrim-eval/decisions", "empty.jsonl", vec![], None, empty),
        case(
            "discrim-eval/decisions",
            "dup.jsonl",
            format!("{d1}{d2}{}", decision(1, "Black", "D2 again")).into_bytes(),
            Some(3),
            "duplicate prompt: decision_question_id 1, fill_type explicit, age 30, male, Black (first at line 2)",
        ),
        case(
            "discrim-eval/decisions",
            "latin.jsonl",
            latin(&format!("{d1}{d2}"), d1.len() + 21),
            Some(2),
            "not UTF-8 text (byte 0xFF at column 22)",
        ),
        case(
            "discrim-eval/decisions",
            "huge.jsonl",
            format!("{d1}{}", decision(1, "Black", &huge)).into_bytes(),
            Some(2),
            "the prompt text is 2097152 bytes",
        ),
        // cot-faithfulness/interventions (multiple-choice files)
        case("cot-faithfulness/interventions", "empty.json", vec![], None, empty),
        case(
            "cot-faithfulness/interventions",
            "dup.jsonl",
            format!("{m1}{m2}{m1}").into_bytes(),
            Some(3),
            "duplicate question: the same question and choices (first at line 1)",
        ),
        case(
            "cot-faithfulness/interventions",
            "latin.json",
            latin(
                &format!("[\n{},\n{}]", m1.trim_end(), m2.trim_end()),
                m1.len() + 17,
            ),
            Some(3),
            "not UTF-8 text (byte 0xFF at column 15)",
        ),
        case(
            "cot-faithfulness/interventions",
            "huge.jsonl",
            format!("{m1}{}", mc(&huge)).into_bytes(),
            Some(2),
            "the prompt text is 2097154 bytes",
        ),
        // shammie analyze discrim-eval
        case("analyze", "empty.csv", vec![], None, empty),
        case(
            "analyze",
            "twice.csv",
            format!("{LOGIT_HEADER}{}{}", logit_rows(), logit_rows()).into_bytes(),
            Some(6),
            "duplicate row: decision_question_id 0, age 30, male, white, variant all, intervention none (first at line 2)",
        ),
        case(
            "analyze",
            "huge.csv",
            format!("{LOGIT_HEADER}{}", logit_rows().replacen("0.0\n", "1e308\n", 1)).into_bytes(),
            Some(2),
            "`logit` is 1e308; logits must be within ±100",
        ),
        case(
            "analyze",
            "latin.csv",
            latin(&format!("{LOGIT_HEADER}{}", logit_rows()), LOGIT_HEADER.len() + 2),
            Some(2),
            "not UTF-8 text (byte 0xFF at column 3)",
        ),
    ]
}

/// Writes the case's file (or folder) and returns the path to give and the path the
/// error must name.
fn write(dir: &Path, c: &Case) -> (PathBuf, PathBuf) {
    let p = dir.join(c.name.trim_end_matches('/'));
    if c.name.ends_with('/') {
        std::fs::create_dir(&p).unwrap();
        for f in ["a.jsonl", "b.jsonl"] {
            std::fs::write(p.join(f), "").unwrap();
        }
        let named = p.join("a.jsonl");
        (p, named)
    } else {
        std::fs::write(&p, &c.bytes).unwrap();
        (p.clone(), p)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_data_file_exits_2_naming_file_and_line_in_every_study() {
    let server = MockServer::start().await.unwrap();
    let spec = format!("openai-compatible:{}/m", server.openai_base_url());
    let mut problems = Vec::new();
    for c in cases() {
        let s = Scratch::new();
        let (given, named) = write(s.dir.path(), &c);
        let o = if c.task == "analyze" {
            s.cmd(&["analyze", "discrim-eval", given.to_str().unwrap()])
                .output()
                .await
                .unwrap()
        } else {
            let data = format!("data={}", given.display());
            let mut args = vec!["run", c.task, "--model", &spec, "--set", &data];
            if c.task.starts_with("cot-") {
                // The interventions a model without prefill can take.
                args.extend(["--set", "interventions=early,filler,no-cot"]);
            }
            s.run(&args, &[]).await
        };
        let e = stderr(&o);
        let at = match c.line {
            Some(l) => format!("{}:{l}: ", named.display()),
            None => format!("{}: ", named.display()),
        };
        let wanted = format!("error: {at}{}", c.want);
        if o.status.code() != Some(2)
            || !e.starts_with(&wanted)
            || e.trim_end().lines().count() != 1
            || !o.stdout.is_empty()
            || s.runs().exists()
        {
            problems.push(format!(
                "{} {}: exit {:?}, run directory {}, stdout {} bytes, stderr {e:?}; wanted exit 2 and one line `{wanted}…`",
                c.task,
                c.name,
                o.status.code(),
                s.runs().exists(),
                o.stdout.len()
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(server.request_count(), 0, "no call was paid for");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_byte_order_mark_is_accepted() {
    let server = MockServer::start().await.unwrap();
    let spec = format!("openai-compatible:{}/m", server.openai_base_url());
    let s = Scratch::new();
    let f = s.dir.path().join("bom.jsonl");
    let text = format!(
        "\u{feff}{}{}",
        trait_line("Q1?", " Yes", " No"),
        trait_line("Q2?", " No", " Yes")
    );
    std::fs::write(&f, text).unwrap();
    let data = format!("data={}", f.display());
    let o = s
        .run(
            &[
                "run",
                "constitution/traits",
                "--model",
                &spec,
                "--set",
                &data,
            ],
            &[],
        )
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(records(&run_dir(&o)).len(), 2);

    // The offline analysis reads JSONL with one too.
    let f = s.dir.path().join("logits.jsonl");
    let mut text = String::from("\u{feff}");
    for q in 0..4 {
        for (age, gender, race, l) in [
            (20, "male", "white", 0.1),
            (60, "female", "white", -0.3),
            (20, "female", "Black", 0.4),
            (60, "male", "Black", 0.2),
        ] {
            let row = json!({"decision_question_id": q, "age": age, "gender": gender,
                             "race": race, "logit": l + 0.1 * q as f64});
            text.push_str(&format!("{row}\n"));
        }
    }
    std::fs::write(&f, text).unwrap();
    let o = s
        .cmd(&[
            "analyze",
            "discrim-eval",
            f.to_str().unwrap(),
            "--random",
            "intercept",
        ])
        .output()
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}
