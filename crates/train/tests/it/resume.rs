//! A training run directory: an interrupted run resumed from its last checkpoint gives
//! bit for bit the losses and adapter of an uninterrupted run.

use std::io::Cursor;
use std::path::Path;

use candle_core::quantized::gguf_file;
use candle_core::Device;
use shammie_local::prompt::{Format, Template};
use shammie_local::white_box::WhiteBox;
use shammie_train::chat::load_chat_jsonl;
use shammie_train::lora::LoraConfig;
use shammie_train::optim::{AdamWConfig, Decay};
use shammie_train::run::{train, Outcome, SftOptions, SftRun, StepRecord};
use shammie_train::sft::TrainConfig;
use shammie_train::testing::tiny_gemma3_gguf;

const DATA: &str = r#"{"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]}
{"messages": [{"role": "system", "content": "Terse."}, {"role": "user", "content": "Sky?"}, {"role": "assistant", "content": "Blue."}]}
{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Bye"}, {"role": "assistant", "content": "Ciao."}]}
"#;

fn setup(dir: &Path) -> (WhiteBox, Vec<shammie_train::sft::Example>, SftOptions) {
    let bytes = tiny_gemma3_gguf(5, true);
    let c = gguf_file::Content::read(&mut Cursor::new(&bytes)).unwrap();
    let wb = WhiteBox::load(&c, &mut Cursor::new(&bytes), &Device::Cpu).unwrap();
    let tok = crate::chat::tokenizer();
    let data = dir.join("data.jsonl");
    std::fs::write(&data, DATA).unwrap();
    let ex = load_chat_jsonl(&data, &Template::from(Format::Base), &tok).unwrap();
    let opts = SftOptions {
        model: "local:tiny".into(),
        data,
        train: TrainConfig {
            lora: LoraConfig {
                rank: 2,
                alpha: 4.0,
                targets: vec!["q_proj".into(), "v_proj".into()],
                seed: 11,
                init_from: None,
                dropout: 0.0,
            },
            optim: AdamWConfig {
                lr: 2e-2,
                ..Default::default()
            },
            batch: 1,
            pack_tokens: 0,
            steps: 9,
            warmup: 2,
            decay: Decay::Linear,
            max_grad_norm: Some(1.0),
            seed: 3,
        },
        checkpoint_every: 4,
        objective: Default::default(),
    };
    (wb, ex, opts)
}

/// 9 steps of one example each over 3 examples: passes reshuffle at steps 3 and 6. The
/// interrupted run stops after 5 steps (its last checkpoint is after 4, in the middle of
/// the second pass); resumed, it redoes step 4 and goes on. Its `train.jsonl` then equals
/// the straight run's bit for bit (f64 losses compared with ==), as do the adapter's
/// bytes; the resumed process ran exactly 5 steps.
#[test]
fn a_resumed_run_matches_an_uninterrupted_one() {
    resumed_matches_straight(|_| ());
}

/// The same with LoRA dropout (its RNG is part of the checkpoint: restarting it from the
/// seed would give step 4 other masks) and packing, two examples per step packed into one
/// sequence. The dropout is real: the losses differ from a run without it from step 2 on
/// (B is 0 until the update of step 1, the first with a learning rate above 0).
#[test]
fn a_resumed_run_with_dropout_and_packing_matches_an_uninterrupted_one() {
    let with = resumed_matches_straight(|o| {
        o.train.lora.dropout = 0.3;
        o.train.batch = 2;
        o.train.pack_tokens = 64;
    });
    let without = resumed_matches_straight(|o| {
        o.train.batch = 2;
        o.train.pack_tokens = 64;
    });
    assert_eq!(with.len(), without.len());
    assert_eq!(
        with[1].loss, without[1].loss,
        "B = 0: no dropout effect yet"
    );
    assert!(
        with.iter()
            .zip(&without)
            .skip(2)
            .all(|(a, b)| a.loss != b.loss),
        "dropout changed nothing"
    );
}

/// Runs the check of [`a_resumed_run_matches_an_uninterrupted_one`] on the options of
/// `setup` changed by `tweak`; returns the straight run's records.
fn resumed_matches_straight(tweak: impl Fn(&mut SftOptions)) -> Vec<StepRecord> {
    let tmp = tempfile::tempdir().unwrap();
    let (mut wb, ex, mut opts) = setup(tmp.path());
    tweak(&mut opts);
    let straight = SftRun::create(&tmp.path().join("a"), opts.clone()).unwrap();
    assert!(matches!(
        train(&straight, &mut wb, &ex, |_| true).unwrap(),
        Outcome::Finished(_)
    ));
    let want = straight.steps().unwrap();
    assert_eq!(want.len(), 9);
    assert!(want.iter().enumerate().all(|(i, r)| r.step == i));

    let (mut wb, _, _) = setup(tmp.path());
    let cut = SftRun::create(&tmp.path().join("b"), opts).unwrap();
    let stopped = train(&cut, &mut wb, &ex, |r| r.step < 4).unwrap();
    assert!(matches!(stopped, Outcome::Stopped(_)));
    assert_eq!(cut.steps().unwrap().len(), 5);
    assert_eq!(cut.latest_checkpoint().unwrap().unwrap().0, 4);
    assert!(!cut.adapter_path().exists());

    let resumed = SftRun::open(cut.path()).unwrap();
    let (mut wb, _, _) = setup(tmp.path());
    let mut ran = Vec::new();
    let out = train(&resumed, &mut wb, &ex, |r| {
        ran.push(r.step);
        true
    })
    .unwrap();
    assert!(matches!(out, Outcome::Finished(_)));
    assert_eq!(ran, [4, 5, 6, 7, 8]);
    assert_eq!(resumed.steps().unwrap(), want);
    let log = |r: &SftRun| std::fs::read_to_string(r.path().join("train.jsonl")).unwrap();
    assert_eq!(log(&resumed), log(&straight));
    for f in ["adapter_config.json", "adapter_model.safetensors"] {
        assert_eq!(
            std::fs::read(resumed.adapter_path().join(f)).unwrap(),
            std::fs::read(straight.adapter_path().join(f)).unwrap(),
            "{f}"
        );
    }
    // The adapter is a listed artifact, the curve is drawn, the final state checkpointed.
    let listed = resumed.dir.artifacts().unwrap();
    assert!(listed.contains_key("adapter/adapter_model.safetensors"));
    let svg = std::fs::read_to_string(resumed.path().join("report/loss.svg")).unwrap();
    assert!(
        svg.contains("<svg") && svg.contains("Training loss"),
        "{svg}"
    );
    assert_eq!(resumed.latest_checkpoint().unwrap().unwrap().0, 9);
    let a = shammie_local::lora::Adapter::read(&resumed.adapter_path()).unwrap();
    assert_eq!(a.deltas.len(), 4);
    want
}

/// A run refuses to resume on data that changed since it started.
#[test]
fn resuming_on_changed_data_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, _, opts) = setup(tmp.path());
    let run = SftRun::create(&tmp.path().join("r"), opts.clone()).unwrap();
    std::fs::write(&opts.data, format!("{DATA}{DATA}")).unwrap();
    let e = SftRun::open(run.path()).err().unwrap().to_string();
    assert!(e.contains("changed since the run started"), "{e}");
}
