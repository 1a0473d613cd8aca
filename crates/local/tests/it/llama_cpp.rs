//! Our Gemma 3 code against llama.cpp on the same GGUF (fixtures from
//! `tests/fixtures/make_fixtures.py`): the same top-5 next tokens, logits within 1.0, and
//! the same first 16 greedy tokens.
//!
//! Two implementations that round differently (llama.cpp keeps keys and values in f16 and
//! quantises activations for every matmul; candle's kernels differ in order and precision)
//! cannot agree on a choice between two tokens whose logits are closer than their
//! disagreement. So: the top-5 must be identical except that tokens whose logits lie within
//! `TIE` of each other (in either implementation) may trade places, and greedy decoding must agree on every
//! token up to the first step where llama.cpp's own best and second-best are within `TIE`
//! (after a tie the two continuations are no longer comparable).

use crate::common;

use std::io::BufReader;

use candle_core::quantized::gguf_file;
use candle_core::Device;
use shammie_local::gemma3::{Gemma3, KvCache};
use shammie_local::sampling::argmax;

/// Logits closer than this are a tie: about the largest disagreement measured here.
const TIE: f32 = 0.6;

#[derive(serde::Deserialize)]
struct Case {
    prompt: String,
    ids: Vec<u32>,
    top5: Vec<(u32, f32)>,
    sixth: (u32, f32),
    greedy16: Vec<u32>,
    greedy_margins: Vec<f32>,
}

#[derive(serde::Deserialize)]
struct Fixture {
    cases: Vec<Case>,
}

#[test]
#[allow(clippy::print_stderr)] // reports what it measured (seen with --nocapture)
fn matches_llama_cpp() {
    let Some(path) = common::model_path_or_skip() else {
        return;
    };
    let fx: Fixture = serde_json::from_str(include_str!("../fixtures/gemma3_logits.json")).unwrap();
    let mut f = BufReader::new(std::fs::File::open(&path).unwrap());
    let content = gguf_file::Content::read(&mut f).unwrap();
    let model = Gemma3::load(&content, &mut f, &Device::Cpu).unwrap();
    let mut worst = 0f32;
    let mut diffs = Vec::new();
    let mut failures = 0;
    let mut report = Vec::new();
    for case in &fx.cases {
        let mut cache = KvCache::new(model.cfg.layers);
        let h = model
            .forward_hidden(&mut [(&case.ids[..], &mut cache)])
            .unwrap()
            .remove(0);
        let last = h.narrow(0, case.ids.len() - 1, 1).unwrap();
        let logits = model
            .logits(&last)
            .unwrap()
            .squeeze(0)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let mut order: Vec<u32> = (0..logits.len() as u32).collect();
        order.sort_by(|a, b| logits[*b as usize].total_cmp(&logits[*a as usize]));
        let ours: Vec<u32> = order[..5].to_vec();
        let theirs: Vec<u32> = case.top5.iter().map(|t| t.0).collect();
        let diff = case
            .top5
            .iter()
            .map(|(i, l)| (logits[*i as usize] - l).abs())
            .fold(0f32, f32::max);
        worst = worst.max(diff);
        diffs.push(diff);
        let mut next = order[0];
        let mut greedy = vec![next];
        while greedy.len() < 16 {
            let h = model
                .forward_hidden(&mut [(&[next][..], &mut cache)])
                .unwrap()
                .remove(0);
            let l = model
                .logits(&h)
                .unwrap()
                .squeeze(0)
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            next = argmax(&l);
            greedy.push(next);
        }
        let agree = greedy
            .iter()
            .zip(&case.greedy16)
            .take_while(|(a, b)| a == b)
            .count();
        // Every token before llama.cpp's first near-tie must agree.
        let first_tie = case
            .greedy_margins
            .iter()
            .position(|m| *m < TIE)
            .unwrap_or(16);
        let greedy_ok = agree >= first_tie;
        let llama_logit = |id: u32| {
            case.top5
                .iter()
                .chain(std::iter::once(&case.sixth))
                .find(|t| t.0 == id)
                .map(|t| t.1)
        };
        // A swap is a tie when either implementation puts the two tokens within TIE.
        let top5_ok = ours.iter().zip(&case.top5).all(|(o, (t, tl))| {
            *o == *t
                || llama_logit(*o).is_some_and(|ol| (ol - tl).abs() < TIE)
                || (logits[*o as usize] - logits[*t as usize]).abs() < TIE
        });
        report.push(format!(
            "{:?}: top5 {} (ours {ours:?} / llama.cpp {theirs:?}), max logit diff {diff:.3}, greedy agrees for {agree}/16 (first near-tie at step {first_tie})",
            &case.prompt.chars().take(30).collect::<String>(),
            if ours == theirs { "same" } else if top5_ok { "same up to ties" } else { "DIFFERENT" },
        ));
        if !top5_ok || diff >= 1.0 || !greedy_ok {
            failures += 1;
        }
    }
    eprintln!(
        "{}\nworst logit difference on llama.cpp's top-5: {worst:.3}, mean {:.3}",
        report.join("\n"),
        diffs.iter().sum::<f32>() / diffs.len() as f32
    );
    assert_eq!(failures, 0, "{failures} cases differ from llama.cpp");
    // Swaps within TIE are noise (llama.cpp quantises activations and keeps an f16 KV
    // cache, and a last-bit change on our side moves which near-tied pair swaps: between
    // 5 and 7 of the 12 top-5s come out in exactly llama.cpp's order). A systematic error
    // would instead lift every case's difference, so bound the mean.
    let mean = diffs.iter().sum::<f32>() / diffs.len() as f32;
    assert!(mean < 0.5, "mean top-5 logit difference {mean:.3}");
}
