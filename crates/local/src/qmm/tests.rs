//! Every kernel this CPU runs, against a reference computed here independently (the
//! weights dequantized by candle, dot products in f64), on random and extreme blocks and
//! edge shapes; bit-identical across kernels, row counts, tiles and thread counts.

use super::*;
use candle_core::{Device, Tensor};

fn rng(seed: u64) -> impl FnMut() -> u64 {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        s >> 33
    }
}

fn uniform(n: usize, seed: u64) -> Vec<f32> {
    let mut r = rng(seed);
    (0..n)
        .map(|_| (r() % 2_000_001) as f32 / 1_000_000.0 - 1.0)
        .collect()
}

/// Activations with a few large outliers per row, as real hidden states have.
fn activations(m: usize, k: usize, seed: u64) -> Vec<f32> {
    let mut x = uniform(m * k, seed);
    let mut r = rng(seed + 99);
    for _ in 0..(m * k / 50).max(1) {
        let i = r() as usize % (m * k);
        x[i] *= 20.0;
    }
    x
}

fn kernels() -> Vec<Isa> {
    Isa::ALL.into_iter().filter(|i| i.supported()).collect()
}

/// The tests below cover the vector kernels of the architecture they run on (on AArch64,
/// `scripts/test-aarch64` runs them under emulation), and the process uses the best.
#[test]
fn the_vector_kernels_of_this_architecture_are_tested() {
    let have = kernels();
    #[cfg(target_arch = "aarch64")]
    {
        assert!(have.contains(&Isa::Neon), "{have:?}");
        assert_eq!(
            have.contains(&Isa::NeonDot),
            std::arch::is_aarch64_feature_detected!("dotprod")
        );
    }
    #[cfg(target_arch = "x86_64")]
    assert_eq!(
        have.contains(&Isa::Avx2),
        is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c")
    );
    assert_eq!(Isa::best(), *have.last().expect("scalar always runs"));
    assert!(have.contains(&Isa::Scalar));
    // scripts/test-aarch64 names the kernels each emulated CPU must run.
    if let Ok(want) = std::env::var("SHAMMIE_TEST_EXPECT_KERNELS") {
        let names: Vec<&str> = have.iter().map(|i| i.name()).collect();
        assert_eq!(names.join(","), want);
    }
}

/// Raw GGUF blocks of `dtype` for an (n, k) matrix: random bytes, random positive f16
/// scales; `extreme` fills every value and scale with its largest magnitude.
fn raw_blocks(dtype: GgmlDType, n: usize, k: usize, seed: u64, extreme: bool) -> Vec<u8> {
    let mut r = rng(seed);
    let f16 = |lo: f32, hi: f32, r: &mut dyn FnMut() -> u64| {
        let v = lo + (hi - lo) * ((r() % 1000) as f32 / 1000.0);
        half::f16::from_f32(v).to_le_bytes()
    };
    let mut out = Vec::new();
    match dtype {
        GgmlDType::Q8_0 => {
            for _ in 0..n * k / QK8_0 {
                out.extend(f16(0.001, 0.05, &mut r));
                for _ in 0..QK8_0 {
                    // Includes -128, which GGUF allows though llama.cpp never writes it.
                    out.push(if extreme { 0x80 } else { r() as u8 });
                }
            }
        }
        GgmlDType::Q4K => {
            for _ in 0..n * k / QK_K {
                out.extend(f16(0.001, 0.02, &mut r));
                out.extend(f16(0.0, 0.02, &mut r));
                for _ in 0..12 {
                    out.push(if extreme { 0xFF } else { r() as u8 });
                }
                for _ in 0..QK_K / 2 {
                    out.push(if extreme { 0xFF } else { r() as u8 });
                }
            }
        }
        _ => unreachable!(),
    }
    out
}

fn qtensor(dtype: GgmlDType, n: usize, k: usize, raw: Vec<u8>) -> QTensor {
    let storage = match dtype {
        GgmlDType::Q8_0 => candle_core::quantized::QStorage::Cpu(Box::new(bytes_to_blocks::<
            candle_core::quantized::k_quants::BlockQ8_0,
        >(&raw))),
        GgmlDType::Q4K => candle_core::quantized::QStorage::Cpu(Box::new(bytes_to_blocks::<
            candle_core::quantized::k_quants::BlockQ4K,
        >(&raw))),
        _ => unreachable!(),
    };
    QTensor::new(storage, (n, k)).unwrap()
}

fn bytes_to_blocks<T: Clone>(raw: &[u8]) -> Vec<T> {
    let size = std::mem::size_of::<T>();
    assert_eq!(raw.len() % size, 0);
    raw.chunks_exact(size)
        // SAFETY: the block types are plain `repr(C)` structs of f16/u8/i8 arrays with
        // no invalid bit patterns; `read_unaligned` copies one out of the byte slice.
        .map(|c| unsafe { (c.as_ptr() as *const T).read_unaligned() })
        .collect()
}

/// The weight as candle dequantizes it: (n, k).
fn candle_weights(t: &QTensor) -> Vec<Vec<f32>> {
    t.dequantize(&Device::Cpu)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap()
}

/// Checks `got` (m, n) for `x` against f64 references: the exact value of the quantized
/// product (within float rounding) and the value of the unquantized product (within the
/// rounding bound of the activation quantization).
fn check(w: &[Vec<f32>], x: &[f32], k: usize, fmt: ActFormat, got: &[f32], what: &str) {
    let n = w.len();
    let m = x.len() / k;
    let a = Acts::quantize(x, k, fmt, Isa::Scalar);
    let bl = fmt.block();
    for r in 0..m {
        for (c, wc) in w.iter().enumerate() {
            let (mut exact, mut scale_sum, mut plain, mut bound) = (0f64, 0f64, 0f64, 0f64);
            for i in 0..k {
                let d = a.d[r * (k / bl) + i / bl] as f64;
                let aq = a.qs[r * k + i] as f64 * d;
                exact += wc[i] as f64 * aq;
                scale_sum += (wc[i] as f64 * aq).abs();
                plain += wc[i] as f64 * x[r * k + i] as f64;
                // Each activation moves by at most half a quantization step.
                bound += (wc[i] as f64).abs() * d / 2.0;
            }
            let v = got[r * n + c] as f64;
            let tol = 1e-5 * scale_sum + 1e-6;
            assert!(
                (v - exact).abs() <= tol,
                "{what}: row {r} col {c}: {v} against the exact {exact} (tolerance {tol})"
            );
            assert!(
                (v - plain).abs() <= bound * 1.001 + tol,
                "{what}: row {r} col {c}: {v} against the unquantized {plain} (bound {bound})"
            );
        }
    }
}

fn run(
    dtype: GgmlDType,
    n: usize,
    k: usize,
    m: usize,
    raw: Vec<u8>,
    x: &[f32],
    what: &str,
) -> Vec<f32> {
    let t = qtensor(dtype, n, k, raw);
    let w = candle_weights(&t);
    let mut first: Option<(Isa, Vec<f32>)> = None;
    for isa in kernels() {
        let q = QMatrix::from_qtensor(&t, isa).unwrap();
        assert_eq!(q.dims(), (n, k));
        let got = q.forward(x);
        assert_eq!(got.len(), m * n);
        check(
            &w,
            x,
            k,
            q.act_format(),
            &got,
            &format!("{what} {}", isa.name()),
        );
        match &first {
            None => first = Some((isa, got)),
            Some((i0, g0)) => assert!(
                g0.iter().zip(&got).all(|(a, b)| a.to_bits() == b.to_bits()),
                "{what}: {} and {} differ",
                i0.name(),
                isa.name()
            ),
        }
    }
    first.unwrap().1
}

#[test]
fn q8_0_kernels_match_the_reference_on_edge_shapes() {
    for (n, k) in [
        (1, 32),
        (5, 96),
        (16, 640),
        (17, 256),
        (33, 512),
        (70, 2048),
        (3, 4864),
    ] {
        for m in [1, 2, 3, 4, 5, 7, 9] {
            let seed = (n * 1000 + k + m) as u64;
            let raw = raw_blocks(GgmlDType::Q8_0, n, k, seed, false);
            let x = activations(m, k, seed);
            run(
                GgmlDType::Q8_0,
                n,
                k,
                m,
                raw,
                &x,
                &format!("q8_0 {m}×{k}×{n}"),
            );
        }
    }
}

#[test]
fn q4k_kernels_match_the_reference_on_edge_shapes() {
    for (n, k) in [
        (1, 256),
        (5, 512),
        (16, 1024),
        (17, 256),
        (33, 2048),
        (7, 4864),
    ] {
        for m in [1, 2, 3, 4, 5, 7, 9] {
            let seed = (n * 1000 + k + m) as u64;
            let raw = raw_blocks(GgmlDType::Q4K, n, k, seed, false);
            let x = activations(m, k, seed);
            run(
                GgmlDType::Q4K,
                n,
                k,
                m,
                raw,
                &x,
                &format!("q4_k {m}×{k}×{n}"),
            );
        }
    }
}

#[test]
fn extreme_values_do_not_overflow_any_kernel() {
    // Every weight at its largest magnitude, every activation at ±127 steps of one sign:
    // the largest intermediate sums any kernel forms.
    for (dtype, k) in [(GgmlDType::Q8_0, 640), (GgmlDType::Q4K, 1024)] {
        for sign in [1f32, -1.0] {
            let (n, m) = (19, 5);
            let raw = raw_blocks(dtype, n, k, 7, true);
            let x = vec![sign; m * k];
            run(
                dtype,
                n,
                k,
                m,
                raw,
                &x,
                &format!("{dtype:?} extreme {sign}"),
            );
        }
    }
}

#[test]
fn weights_from_candles_quantizer_match_too() {
    let dev = Device::Cpu;
    for (dtype, k) in [
        (GgmlDType::Q8_0, 640),
        (GgmlDType::Q4K, 512),
        (GgmlDType::Q5_0, 640),
        (GgmlDType::Q4_0, 96),
    ] {
        let n = 40;
        let w = Tensor::from_vec(uniform(n * k, 3), (n, k), &dev).unwrap();
        let t = QTensor::quantize(&w, dtype).unwrap();
        let x = activations(6, k, 4);
        let expected = candle_weights(&t);
        for isa in kernels() {
            let q = QMatrix::from_qtensor(&t, isa).unwrap();
            check(
                &expected,
                &x,
                k,
                q.act_format(),
                &q.forward(&x),
                &format!("{dtype:?}"),
            );
            // Dequantizing our layout gives candle's values exactly.
            assert_eq!(
                q.dequantize(),
                expected.concat(),
                "{dtype:?} {}",
                isa.name()
            );
        }
    }
}

#[test]
fn a_row_gets_the_same_bits_alone_in_any_batch_and_on_any_thread_count() {
    for (dtype, k, n) in [(GgmlDType::Q8_0, 640, 70), (GgmlDType::Q4K, 1024, 37)] {
        let t = qtensor(dtype, n, k, raw_blocks(dtype, n, k, 11, false));
        let x = activations(7, k, 12);
        for isa in kernels() {
            let q = QMatrix::from_qtensor(&t, isa).unwrap();
            let batch = q.forward(&x);
            for r in 0..7 {
                let alone = q.forward(&x[r * k..(r + 1) * k]);
                assert_eq!(
                    alone,
                    batch[r * n..(r + 1) * n],
                    "{dtype:?} {} row {r}",
                    isa.name()
                );
                // The same row inside batches of every size and position.
                for len in 1..=7 {
                    for start in r.saturating_sub(len - 1)..=r.min(7 - len) {
                        let part = q.forward(&x[start * k..(start + len) * k]);
                        let i = r - start;
                        assert_eq!(part[i * n..(i + 1) * n], batch[r * n..(r + 1) * n]);
                    }
                }
            }
            // Enough work to be split between threads: the same bits on one and on two.
            let big = activations(64, k, 13);
            let before = crate::threads::count();
            crate::threads::set(1);
            let one = q.forward(&big);
            crate::threads::set(2);
            let two = q.forward(&big);
            crate::threads::set(before);
            assert_eq!(one, two, "{dtype:?} {}", isa.name());
        }
    }
}

#[test]
fn activation_quantization_is_the_same_on_every_kernel() {
    let k = 512;
    let mut x = activations(3, k, 21);
    // Exact halves after scaling (ties, rounded to even), zeros and a zero block.
    let d = 2.0f32 / 127.0;
    for (i, v) in x[..64].iter_mut().enumerate() {
        *v = (i as f32 - 32.0 + 0.5) * d;
    }
    x[64] = 2.0;
    for v in &mut x[96..128] {
        *v = 0.0;
    }
    for fmt in [ActFormat::Q8_0, ActFormat::Q8K] {
        let reference = Acts::quantize(&x, k, fmt, Isa::Scalar);
        assert!(reference.qs.iter().all(|&q| q >= -127));
        for isa in kernels() {
            let a = Acts::quantize(&x, k, fmt, isa);
            assert_eq!(a.qs, reference.qs, "{fmt:?} {}", isa.name());
            assert_eq!(a.d, reference.d);
            assert_eq!(a.sums, reference.sums);
        }
    }
}

#[test]
fn q5_0_read_at_five_bits_gives_the_bits_of_the_widened_kernel() {
    // Random and extreme Q5_0 blocks (every fifth bit set, every nibble 15 or 0).
    let mut r = rng(31);
    let (n, k) = (37, 640);
    for extreme in [false, true] {
        let mut raw = Vec::new();
        for _ in 0..n * k / QK8_0 {
            raw.extend(half::f16::from_f32(0.01 + (r() % 100) as f32 * 1e-4).to_le_bytes());
            for _ in 0..20 {
                raw.push(if extreme { 0xFF } else { r() as u8 });
            }
        }
        let storage = candle_core::quantized::QStorage::Cpu(Box::new(bytes_to_blocks::<
            candle_core::quantized::k_quants::BlockQ5_0,
        >(&raw)));
        let t = QTensor::new(storage, (n, k)).unwrap();
        let w = candle_weights(&t);
        for isa in kernels() {
            let q = QMatrix::from_qtensor(&t, isa).unwrap();
            assert_eq!(q.packed.is_some(), isa == Isa::Avx512);
            assert_eq!(q.dequantize(), w.concat(), "{}", isa.name());
            let x = activations(9, k, 32);
            // Nine rows take the widened kernel; each row alone and in tiles of up to four
            // takes the packed one where there is one: the same bits.
            let all = q.forward(&x);
            check(
                &w,
                &x,
                k,
                ActFormat::Q8_0,
                &all,
                &format!("q5_0 {}", isa.name()),
            );
            for rows in 1..=4 {
                for start in [0, 9 - rows] {
                    let part = q.forward(&x[start * k..(start + rows) * k]);
                    assert_eq!(
                        part,
                        all[start * n..(start + rows) * n],
                        "{} {rows}",
                        isa.name()
                    );
                }
            }
        }
    }
}
