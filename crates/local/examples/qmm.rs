//! Micro-benchmark of candle's quantized matmul per weight type.
use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Tensor};
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let dev = Device::Cpu;
    let (n, k) = (2048usize, 640usize);
    let w = Tensor::randn(0f32, 1.0, (n, k), &dev)?;
    for dt in [
        GgmlDType::Q5_0,
        GgmlDType::Q8_0,
        GgmlDType::Q4K,
        GgmlDType::Q6K,
        GgmlDType::Q4_0,
        GgmlDType::F16,
    ] {
        let q = QMatMul::from_qtensor(QTensor::quantize(&w, dt)?)?;
        for m in [1usize, 32] {
            let x = Tensor::randn(0f32, 1.0, (m, k), &dev)?;
            let _ = q.forward(&x)?;
            let iters = if m == 1 { 200 } else { 20 };
            let t0 = Instant::now();
            for _ in 0..iters {
                let _ = q.forward(&x)?;
            }
            let s = t0.elapsed().as_secs_f64() / iters as f64;
            println!(
                "{dt:?} m={m:>3}: {:>8.3} ms  {:>6.1} GMAC/s",
                s * 1e3,
                (m * n * k) as f64 / s / 1e9
            );
        }
    }
    Ok(())
}
