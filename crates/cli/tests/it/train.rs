//! `shammie train sft` on a tiny random Gemma 3 (with a byte tokenizer) loaded by path,
//! with LoRA dropout and packing on: a run directory with options, data digest, per-step
//! log, checkpoints, the adapter as an artifact that `local:PATH+lora=DIR` serves, resume,
//! and bad data or options refused. And the same command on a tiny Llama 3 and Qwen2.

use std::path::Path;
use std::process::Output;

use crate::common::{offline_cmd, only_run, text};

const DATA: &str = r#"{"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]}
{"messages": [{"role": "system", "content": "Terse."}, {"role": "user", "content": "Sky?"}, {"role": "assistant", "content": "Blue."}]}
{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}
"#;

fn shammie(dir: &Path, args: &[&str]) -> Output {
    offline_cmd(dir, "cache").args(args).output().unwrap()
}

#[test]
fn train_sft_writes_a_run_whose_adapter_serves_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let model = d.join("tiny.gguf");
    std::fs::write(&model, shammie_train::testing::tiny_gemma3_gguf(5, true)).unwrap();
    let data = d.join("chat.jsonl");
    std::fs::write(&data, DATA).unwrap();
    let spec = format!("local:{}", model.display());
    let args = |runs: &str| -> Vec<String> {
        [
            "train",
            "sft",
            "--model",
            &spec,
            "--data",
            data.to_str().unwrap(),
            "--steps",
            "4",
            "--batch",
            "2",
            "--pack-tokens",
            "64",
            "--dropout",
            "0.2",
            "--rank",
            "2",
            "--lr",
            "0.02",
            "--warmup",
            "1",
            "--checkpoint-every",
            "2",
            "--seed",
            "7",
            "--log-dir",
            d.join(runs).to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec()
    };
    let a: Vec<String> = args("runs-a");
    let out = shammie(d, &a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let run = only_run(&d.join("runs-a"));
    let adapter = run.join("artifacts/adapter");
    let stdout = text(&out.stdout);
    let use_it = format!("local:{}+lora={}", model.display(), adapter.display());
    assert!(stdout.contains(&format!("use it as: {use_it}")), "{stdout}");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("step 4/4") && stderr.contains("tokens/s") && stderr.contains("ETA"),
        "{stderr}"
    );
    // run.json: the options and the data's digest.
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).unwrap()).unwrap();
    assert_eq!(meta["study"], "train");
    assert_eq!(meta["config"]["train"]["steps"], 4);
    assert_eq!(meta["config"]["train"]["lora"]["rank"], 2);
    assert_eq!(meta["config"]["train"]["lora"]["dropout"], 0.2);
    assert_eq!(meta["config"]["train"]["pack_tokens"], 64);
    let acfg: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(adapter.join("adapter_config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(acfg["lora_dropout"], 0.2);
    assert_eq!(meta["config"]["checkpoint_every"], 2);
    let digest = meta["inputs"][data.to_str().unwrap()].as_str().unwrap();
    assert_eq!(digest.len(), 64);
    let log = std::fs::read_to_string(run.join("train.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 4);
    assert!(run
        .join("checkpoints/step-000002/state.safetensors")
        .exists());
    assert!(run.join("checkpoints/step-000004/state.json").exists());
    assert!(run.join("report/loss.svg").exists());
    assert!(adapter.join("adapter_model.safetensors").exists());

    // The adapter serves: generate with it.
    let g = shammie(
        d,
        &[
            "generate",
            "--model",
            &use_it,
            "--max-tokens",
            "3",
            "--seed",
            "1",
            "Hi",
        ],
    );
    assert!(g.status.success(), "{}", text(&g.stderr));
    assert!(text(&g.stderr).contains("+lora="), "{}", text(&g.stderr));

    // An interrupted copy (the state after step 3: checkpoint 2, a logged step 2 and a
    // torn line) resumes to the same log, byte for byte.
    let b = d.join("runs-b");
    let out = shammie(
        d,
        &args("runs-b")
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let cut = only_run(&b);
    std::fs::remove_dir_all(cut.join("checkpoints/step-000004")).unwrap();
    std::fs::remove_dir_all(cut.join("artifacts")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    std::fs::write(
        cut.join("train.jsonl"),
        format!(
            "{}\n{}\n{}\n{{\"step\": 3, \"lo",
            lines[0], lines[1], lines[2]
        ),
    )
    .unwrap();
    let show = shammie(d, &["show", cut.to_str().unwrap()]);
    let shown = text(&show.stdout);
    assert!(
        shown.contains("3 of 4 steps logged") && shown.contains("incomplete: continue with"),
        "{shown}{}",
        text(&show.stderr)
    );
    // `shammie resume` of a training run continues it (as `train sft --resume` does).
    let out = shammie(d, &["resume", cut.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&shammie(d, &["show", cut.to_str().unwrap()]).stdout);
    assert!(
        shown.contains("4 of 4 steps logged") && shown.contains("adapter: local:"),
        "{shown}"
    );
    assert_eq!(
        std::fs::read_to_string(cut.join("train.jsonl")).unwrap(),
        log
    );
    assert_eq!(
        std::fs::read(cut.join("artifacts/adapter/adapter_model.safetensors")).unwrap(),
        std::fs::read(adapter.join("adapter_model.safetensors")).unwrap()
    );

    // A dropout of 1 is refused before a run directory exists.
    let mut bad = args("runs-d");
    let i = bad.iter().position(|x| x == "0.2").unwrap();
    bad[i] = "1".into();
    let out = shammie(d, &bad.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("dropout must be in [0, 1)"),
        "{}",
        text(&out.stderr)
    );
    assert!(!d.join("runs-d").exists());

    // Bad data: FILE:LINE, and no run directory.
    std::fs::write(&data, format!("{DATA}{{\"messages\": []}}\n")).unwrap();
    let out = shammie(
        d,
        &args("runs-c")
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let e = text(&out.stderr);
    assert!(
        e.contains(&format!("{}:4: no `assistant` turn", data.display())),
        "{e}"
    );
    assert!(!d.join("runs-c").exists());
}

/// `train sft` takes a Llama 3 or Qwen2 GGUF as it takes Gemma 3 (the white box picks the
/// architecture from the file), and the adapter it writes serves with the model.
#[test]
fn train_sft_on_llama_and_qwen2_models() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let data = d.join("chat.jsonl");
    std::fs::write(&data, DATA).unwrap();
    for (arch, bytes) in [
        ("llama", shammie_train::testing::tiny_llama_gguf(5, true)),
        ("qwen2", shammie_train::testing::tiny_qwen2_gguf(5, true)),
    ] {
        let model = d.join(format!("tiny-{arch}.gguf"));
        std::fs::write(&model, bytes).unwrap();
        let spec = format!("local:{}", model.display());
        let runs = d.join(format!("runs-{arch}"));
        let out = shammie(
            d,
            &[
                "train",
                "sft",
                "--model",
                &spec,
                "--data",
                data.to_str().unwrap(),
                "--steps",
                "2",
                "--rank",
                "2",
                "--targets",
                "q_proj,k_proj,v_proj",
                "--log-dir",
                runs.to_str().unwrap(),
            ],
        );
        assert!(out.status.success(), "{arch}: {}", text(&out.stderr));
        let adapter = only_run(&runs).join("artifacts/adapter");
        assert!(adapter.join("adapter_model.safetensors").exists(), "{arch}");
        let use_it = format!("local:{}+lora={}", model.display(), adapter.display());
        assert!(
            text(&out.stdout).contains(&use_it),
            "{arch}: {}",
            text(&out.stdout)
        );
        let g = shammie(
            d,
            &["generate", "--model", &use_it, "--max-tokens", "3", "Hi"],
        );
        assert!(g.status.success(), "{arch}: {}", text(&g.stderr));
    }
}
