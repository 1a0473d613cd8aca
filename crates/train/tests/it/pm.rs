//! Preference models (`shammie_train::pm`) on the tiny random Gemma 3: the gradient of the
//! pairwise loss against finite differences, a step's loss against the formula computed
//! by hand from the rewards, packing changing nothing, a planted preference learned, the
//! saved PM scoring as the trained one, an interrupted run resuming exactly, and the data.

use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};
use shammie_local::prompt::{Format, Template};
use shammie_local::white_box::WhiteBox;
use shammie_train::lora::{LoraConfig, LoraSet};
use shammie_train::optim::{AdamWConfig, Decay};
use shammie_train::pm::{self, PairExample, RewardHead};
use shammie_train::run::{train_pm, Objective, Outcome, SftOptions, SftRun};
use shammie_train::sft::{TrainConfig, Trainer};

use crate::{flat, tiny_gguf, white_box};

/// `p·softplus(−d) + (1 − p)·softplus(d)` in f64: the loss as the module documents it.
fn loss_by_hand(d: f64, p: f64) -> f64 {
    let sp = |x: f64| (1.0 + x.exp()).ln();
    p * sp(-d) + (1.0 - p) * sp(d)
}

fn lora(targets: &[&str], seed: u64) -> LoraConfig {
    LoraConfig {
        rank: 2,
        alpha: 4.0,
        targets: targets.iter().map(|s| s.to_string()).collect(),
        seed,
        init_from: None,
        dropout: 0.0,
    }
}

fn config(steps: usize, batch: usize, pack_tokens: usize, lr: f64) -> TrainConfig {
    TrainConfig {
        lora: lora(&["q_proj", "v_proj"], 4),
        optim: AdamWConfig {
            lr,
            ..Default::default()
        },
        batch,
        pack_tokens,
        steps,
        warmup: 0,
        decay: Decay::Linear,
        max_grad_norm: Some(1.0),
        seed: 8,
    }
}

/// Pairs over the tiny vocabulary (40 tokens): a random prompt, then a reply holding the
/// "good" token 30 or the "bad" token 31 among random filler, then the end token 2 (the
/// reward is read there, so the head must learn to look back at the reply). The good
/// reply is A or B at random; `p_a` is 0.9 when A is the good one, else 0.1.
fn planted_pairs(n: usize, seed: u64) -> Vec<PairExample> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let prompt: Vec<u32> = std::iter::once(1)
                .chain((0..rng.gen_range(2..5)).map(|_| rng.gen_range(3..29)))
                .collect();
            let mut reply = |mark: u32| {
                let mut r: Vec<u32> = (0..4).map(|_| rng.gen_range(3..29)).collect();
                let at = rng.gen_range(0..=r.len());
                r.insert(at, mark);
                r.push(2);
                [prompt.clone(), r].concat()
            };
            let (good, bad) = (reply(30), reply(31));
            if rng.gen_bool(0.5) {
                PairExample {
                    a: good,
                    b: bad,
                    p_a: 0.9,
                }
            } else {
                PairExample {
                    a: bad,
                    b: good,
                    p_a: 0.1,
                }
            }
        })
        .collect()
}

/// Accuracy of the current rewards on `pairs`: the share whose reward difference points
/// the way the label does.
fn accuracy(wb: &WhiteBox, head: &RewardHead, pairs: &[PairExample]) -> f64 {
    let seqs: Vec<Vec<u32>> = pairs
        .iter()
        .flat_map(|p| [p.a.clone(), p.b.clone()])
        .collect();
    let r = pm::rewards(wb, head, &seqs, 0).unwrap();
    let right = pairs
        .iter()
        .enumerate()
        .filter(|(i, p)| (r[2 * i] > r[2 * i + 1]) == (p.p_a > 0.5))
        .count();
    right as f64 / pairs.len() as f64
}

/// The gradients of one pair's loss (A and B packed in one pass) with respect to the
/// head and to LoRA factors (B made non-zero) equal central finite differences of the
/// loss computed by hand in f64 from the detached rewards. h = 1e-2 on an f32 model:
/// tolerance 2% of the largest gradient of the tensor plus 1e-4; a sign error, a swapped
/// label or a wrong softplus moves gradients by far more.
#[test]
fn pm_gradients_match_finite_differences() {
    let bytes = tiny_gguf(2);
    let mut wb = white_box(&bytes);
    let set = LoraSet::attach(&mut wb, lora(&["q_proj", "v_proj"], 3)).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    for f in &set.factors {
        let b: Vec<f32> = flat(f.vars.b.as_tensor())
            .iter()
            .map(|_| rng.gen_range(-0.3f32..0.3))
            .collect();
        f.vars
            .b
            .set(&Tensor::from_vec(b, f.vars.b.dims(), &Device::Cpu).unwrap())
            .unwrap();
    }
    // A larger head than the initial N(0, 0.02²), so the rewards differ visibly.
    let head = RewardHead::init(&wb, 1).unwrap();
    head.w.set(&(head.w.as_tensor() * 20.0).unwrap()).unwrap();
    let pair = &planted_pairs(1, 6)[0];
    let p = 0.7;
    let loss_f64 = |wb: &WhiteBox| {
        let r = pm::rewards(wb, &head, &[pair.a.clone(), pair.b.clone()], 0).unwrap();
        loss_by_hand(r[0] - r[1], p)
    };
    let ids = [pair.a.clone(), pair.b.clone()].concat();
    let (la, lb) = (pair.a.len(), pair.b.len());
    let h = wb
        .final_hidden_packed_at(&ids, &[0, la], &[la - 1, la + lb - 1], None)
        .unwrap();
    let r = head.rewards(&h).unwrap();
    let d = (r.get(0).unwrap() - r.get(1).unwrap())
        .unwrap()
        .reshape(1)
        .unwrap();
    let l = pm::pair_loss(&d, &Tensor::new(&[p as f32], &Device::Cpu).unwrap())
        .unwrap()
        .sum_all()
        .unwrap();
    assert!((l.to_scalar::<f32>().unwrap() as f64 - loss_f64(&wb)).abs() < 1e-5);
    let grads = l.backward().unwrap();
    for (name, v) in wb.params() {
        assert!(grads.get(v.as_tensor()).is_none(), "{name} got a gradient");
    }
    let mut vars = vec![("head".to_string(), head.w.clone())];
    for f in &set.factors {
        vars.push((format!("{} {} A", f.layer, f.module), f.vars.a.clone()));
        vars.push((format!("{} {} B", f.layer, f.module), f.vars.b.clone()));
    }
    let eps = 1e-2f32;
    let mut checked = 0;
    for (name, var) in vars {
        let g = flat(grads.get(var.as_tensor()).expect("a gradient"));
        let gmax = g.iter().fold(0f32, |m, x| m.max(x.abs())) as f64;
        assert!(gmax > 1e-5, "{name}: zero gradient");
        for i in (0..g.len()).step_by(3) {
            let mut vals = flat(var.as_tensor());
            let x = vals[i];
            let mut at = |v: f32| {
                vals[i] = v;
                var.set(&Tensor::from_vec(vals.clone(), var.dims(), &Device::Cpu).unwrap())
                    .unwrap();
                loss_f64(&wb)
            };
            let fd = (at(x + eps) - at(x - eps)) / (2.0 * eps as f64);
            at(x);
            assert!(
                (fd - g[i] as f64).abs() < 0.02 * gmax + 1e-4,
                "{name}[{i}]: backward {} vs finite difference {fd}",
                g[i]
            );
            checked += 1;
        }
    }
    assert!(checked > 60, "{checked}");
}

/// A step's reported loss is the mean over its pairs of the loss computed by hand from
/// the rewards before the step (every pair in one step), its accuracy the share of
/// pairs ranked the label's way; packing the pairs changes neither (up to rounding).
#[test]
fn a_step_reports_the_mean_pair_loss_by_hand() {
    let pairs = planted_pairs(6, 11);
    let mut reports = Vec::new();
    for pack in [0, 64] {
        let bytes = tiny_gguf(3);
        let mut wb = white_box(&bytes);
        let head = RewardHead::init(&wb, 2).unwrap();
        head.w.set(&(head.w.as_tensor() * 30.0).unwrap()).unwrap();
        let mut tr = Trainer::with_extra(
            &mut wb,
            config(1, pairs.len(), pack, 1e-2),
            vec![head.w.clone()],
        )
        .unwrap();
        let seqs: Vec<Vec<u32>> = pairs
            .iter()
            .flat_map(|p| [p.a.clone(), p.b.clone()])
            .collect();
        let r = pm::rewards(&wb, &head, &seqs, 0).unwrap();
        let want: f64 = pairs
            .iter()
            .enumerate()
            .map(|(i, p)| loss_by_hand(r[2 * i] - r[2 * i + 1], p.p_a))
            .sum::<f64>()
            / pairs.len() as f64;
        let right = pairs
            .iter()
            .enumerate()
            .filter(|(i, p)| (r[2 * i] > r[2 * i + 1]) == (p.p_a > 0.5))
            .count();
        let rep = tr.step_pairs(&wb, &head, &pairs).unwrap();
        assert!(
            (rep.loss - want).abs() < 1e-5,
            "pack {pack}: {} vs {want}",
            rep.loss
        );
        assert_eq!(rep.accuracy, Some(right as f64 / 6.0));
        // The head moved: it is trained with the factors.
        assert!(accuracy(&wb, &head, &pairs).is_finite());
        reports.push(rep);
    }
    assert!((reports[0].loss - reports[1].loss).abs() < 1e-5);
    assert!((reports[0].grad_norm - reports[1].grad_norm).abs() < 1e-4 * reports[0].grad_norm);
    // Packed rewards equal rewards read one sequence at a time.
    let bytes = tiny_gguf(3);
    let wb = white_box(&bytes);
    let head = RewardHead::init(&wb, 2).unwrap();
    let seqs: Vec<Vec<u32>> = pairs.iter().map(|p| p.a.clone()).collect();
    let alone = pm::rewards(&wb, &head, &seqs, 0).unwrap();
    let packed = pm::rewards(&wb, &head, &seqs, 40).unwrap();
    for (x, y) in alone.iter().zip(&packed) {
        assert!((x - y).abs() < 1e-6, "{alone:?} {packed:?}");
    }
}

/// The planted preference (the reply with token 30 over the one with token 31, labels
/// 0.9/0.1) is learned: accuracy on 40 held-out pairs goes from chance to ≥ 0.9. A flipped
/// sign in the loss would teach the opposite (accuracy near 0).
#[test]
fn a_planted_preference_is_learned() {
    let (train, held) = (planted_pairs(48, 1), planted_pairs(40, 2));
    let bytes = tiny_gguf(4);
    let mut wb = white_box(&bytes);
    let head = RewardHead::init(&wb, 5).unwrap();
    let mut cfg = config(60, 8, 128, 3e-2);
    cfg.lora = lora(&["q_proj", "k_proj", "v_proj", "o_proj"], 4);
    let mut tr = Trainer::with_extra(&mut wb, cfg, vec![head.w.clone()]).unwrap();
    let before = accuracy(&wb, &head, &held);
    let mut losses = Vec::new();
    for _ in 0..60 {
        losses.push(tr.step_pairs(&wb, &head, &train).unwrap().loss);
    }
    let after = accuracy(&wb, &head, &held);
    let first: f64 = losses[..5].iter().sum::<f64>() / 5.0;
    let last: f64 = losses[55..].iter().sum::<f64>() / 5.0;
    assert!(
        after >= 0.9,
        "held-out accuracy {before} → {after}; losses {losses:?}"
    );
    assert!(last < first, "{first} → {last}");
    // The floor of the soft-label loss is the labels' entropy, H(0.9) = 0.325.
    assert!(last > 0.3250, "{last}");
}

fn run_opts(data: &std::path::Path) -> SftOptions {
    SftOptions {
        model: "local:tiny".into(),
        data: data.to_path_buf(),
        train: config(6, 2, 0, 2e-2),
        checkpoint_every: 2,
        objective: Objective::Preference,
    }
}

/// A PM run: interrupted after its third step (last checkpoint after the second) and resumed, its log and
/// PM files equal an uninterrupted run's byte for byte; the saved PM attached to a fresh
/// model gives the rewards of the trained one in memory.
#[test]
fn a_pm_run_resumes_exactly_and_its_pm_scores_as_trained() {
    let tmp = tempfile::tempdir().unwrap();
    let pairs = planted_pairs(5, 9);
    let data = tmp.path().join("prefs.jsonl");
    std::fs::write(&data, "{}\n").unwrap();
    let bytes = tiny_gguf(6);

    let mut wb = white_box(&bytes);
    let straight = SftRun::create(&tmp.path().join("a"), run_opts(&data)).unwrap();
    let Outcome::Finished(tr) = train_pm(&straight, &mut wb, &pairs, |_| true).unwrap() else {
        panic!("stopped")
    };
    assert_eq!(tr.steps_done(), 6);
    // The head is the trainer's last extra tensor.
    let head = RewardHead {
        w: tr.vars().last().unwrap().clone(),
    };
    let seqs: Vec<Vec<u32>> = pairs.iter().map(|p| p.b.clone()).collect();
    let trained = pm::rewards(&wb, &head, &seqs, 0).unwrap();

    let mut fresh = white_box(&bytes);
    let (info, loaded) = pm::attach_pm(&mut fresh, &straight.adapter_path()).unwrap();
    assert_eq!(
        (info.base.as_str(), info.pairs, info.steps),
        ("local:tiny", 5, 6)
    );
    let again = pm::rewards(&fresh, &loaded, &seqs, 0).unwrap();
    for (x, y) in trained.iter().zip(&again) {
        assert!((x - y).abs() < 1e-6, "{trained:?} {again:?}");
    }
    assert!(straight
        .dir
        .artifacts()
        .unwrap()
        .contains_key("pm/reward_head.safetensors"));
    let steps = straight.steps().unwrap();
    assert!(steps.iter().all(|s| s.accuracy.is_some()));

    let mut wb = white_box(&bytes);
    let cut = SftRun::create(&tmp.path().join("b"), run_opts(&data)).unwrap();
    let stopped = train_pm(&cut, &mut wb, &pairs, |r| r.step < 2).unwrap();
    assert!(matches!(stopped, Outcome::Stopped(_)));
    let resumed = SftRun::open(cut.path()).unwrap();
    assert_eq!(resumed.opts.objective, Objective::Preference);
    let mut wb = white_box(&bytes);
    let mut ran = Vec::new();
    train_pm(&resumed, &mut wb, &pairs, |r| {
        ran.push(r.step);
        true
    })
    .unwrap();
    assert_eq!(ran, [2, 3, 4, 5]);
    let log = |r: &SftRun| std::fs::read_to_string(r.path().join("train.jsonl")).unwrap();
    assert_eq!(log(&resumed), log(&straight));
    for f in [
        "adapter_model.safetensors",
        pm::HEAD_FILE,
        pm::INFO_FILE,
        "adapter_config.json",
    ] {
        assert_eq!(
            std::fs::read(resumed.adapter_path().join(f)).unwrap(),
            std::fs::read(straight.adapter_path().join(f)).unwrap(),
            "{f}"
        );
    }
    // A PM run is not an SFT run, and the other way round.
    let e = shammie_train::run::train(&resumed, &mut wb, &[], |_| true)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("train_pm"), "{e}");
}

/// Preference JSONL: each reply laid out after the rendered prompt with the end of turn,
/// as chat training lays out a reply; a bad line is `FILE:LINE`.
#[test]
fn preference_files_are_read_as_chat_layouts() {
    let tok = crate::chat::tokenizer();
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("prefs.jsonl");
    std::fs::write(
        &p,
        "{\"prompt\": \"Is the sky blue?\", \"a\": \"Yes.\", \"b\": \"No.\", \"p_a\": 0.8}\n\
         {\"prompt\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"a\": \"Hello\", \"b\": \"Go away\", \"p_a\": 1}\n",
    )
    .unwrap();
    let pairs = pm::load_preferences_jsonl(&p, &Template::from(Format::Base), &tok).unwrap();
    assert_eq!(pairs.len(), 2);
    assert_eq!(pairs[0].p_a, 0.8);
    // The tiny tokenizer's pieces keep SentencePiece's space mark.
    let decode = |ids: &[u32]| tok.decode(ids).replace('▁', " ");
    let text = decode(&pairs[0].a);
    assert!(
        text.ends_with("Human: Is the sky blue?\n\nAssistant: Yes.\n\nHuman:"),
        "{text:?}"
    );
    assert!(decode(&pairs[1].b).ends_with("Assistant: Go away\n\nHuman:"));
    std::fs::write(
        &p,
        "{\"prompt\": \"x\", \"a\": \"y\", \"b\": \"z\", \"p_a\": 0.5}\n{\"prompt\": \"x\", \"a\": \"y\", \"b\": \"z\", \"p_a\": 2}\n",
    )
    .unwrap();
    let e = pm::load_preferences_jsonl(&p, &Template::from(Format::Base), &tok)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("prefs.jsonl:2:") && e.contains("not a probability"),
        "{e}"
    );
}
