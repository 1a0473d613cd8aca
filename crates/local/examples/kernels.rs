//! Times the quantized products (`qmm`) on Gemma 3 270M's and Qwen2.5 0.5B's shapes, per
//! kernel this CPU runs and per row count, against candle's kernel on the same weights:
//! `cargo run --release -p shammie-local --example kernels [THREADS]`

// An example prints its results; the workspace denies printing in library code.
#![allow(clippy::print_stdout)]
use std::time::Instant;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Tensor};
use shammie_local::qmm::{Isa, QMatrix};

fn main() -> anyhow::Result<()> {
    if let Some(t) = std::env::args().nth(1) {
        shammie_local::threads::set(t.parse()?);
    }
    let dev = Device::Cpu;
    let shapes = [
        ("gemma q (Q8_0)", GgmlDType::Q8_0, 1024, 640),
        ("gemma up (Q8_0)", GgmlDType::Q8_0, 2048, 640),
        ("gemma down (Q8_0)", GgmlDType::Q8_0, 640, 2048),
        ("gemma o (Q4_K)", GgmlDType::Q4K, 640, 1024),
        ("gemma down (Q4_K)", GgmlDType::Q4K, 640, 2048),
        ("qwen up (Q8_0)", GgmlDType::Q8_0, 4864, 896),
        ("qwen down (Q4_K)", GgmlDType::Q4K, 896, 4864),
    ];
    println!(
        "threads: {}; GMAC/s (multiply-adds per second, activation quantization included)",
        shammie_local::threads::count()
    );
    for (name, dtype, n, k) in shapes {
        let w = Tensor::randn(0f32, 1.0, (n, k), &dev)?;
        let qt = QTensor::quantize(&w, dtype)?;
        let candle = QMatMul::from_qtensor(qt)?;
        let qt = QTensor::quantize(&w, dtype)?;
        for m in [1usize, 16, 256] {
            let x = Tensor::randn(0f32, 1.0, (m, k), &dev)?;
            let xs = x.flatten_all()?.to_vec1::<f32>()?;
            let macs = (m * n * k) as f64;
            let reps = ((2e9 / macs) as usize).clamp(3, 2000);
            let time = |f: &mut dyn FnMut()| {
                f();
                let t = Instant::now();
                for _ in 0..reps {
                    f();
                }
                macs * reps as f64 / t.elapsed().as_secs_f64() / 1e9
            };
            let mut line = format!("{name:<20} m={m:<4}");
            let c = time(&mut || {
                candle.forward(&x).unwrap();
            });
            line += &format!(" candle {c:>6.1}");
            for isa in Isa::ALL.into_iter().filter(|i| i.supported()) {
                let q = QMatrix::from_qtensor(&qt, isa).expect("Q8_0 or Q4_K");
                let g = time(&mut || {
                    q.forward(&xs);
                });
                line += &format!("  {} {g:>6.1}", isa.name());
            }
            println!("{line}");
        }
    }
    Ok(())
}
