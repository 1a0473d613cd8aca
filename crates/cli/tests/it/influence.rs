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
