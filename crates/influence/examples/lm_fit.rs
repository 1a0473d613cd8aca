//! Times EK-FAC on a language model through the white box, for profiling and planning:
//! loads a GGUF, taps the MLP projections of every layer, fits factors on the lines of a
//! text file (each line one sequence, tokenised with the model's tokenizer, at most
//! `MAX_TOKENS` tokens), then scores the first `QUERIES` lines against all of them,
//! printing the time of each phase and the peak memory.
//!
//! ```sh
//! cargo build --release -p shammie-influence --example lm_fit
//! target/release/examples/lm_fit MODEL.gguf lines.txt [SEQUENCES] [QUERIES]
//! ```
#![allow(clippy::print_stdout)]

use std::time::Instant;

use candle_core::quantized::gguf_file;
use candle_core::Device;
use shammie_influence::ekfac::{self, Damping};
use shammie_influence::lm::{self, Labels};
use shammie_local::white_box::WhiteBox;

const MAX_TOKENS: usize = 64;

fn peak() -> String {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .map_or("?".into(), |l| {
            l.split_whitespace().nth(1).unwrap_or("?").to_string() + " kB"
        })
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = || anyhow::anyhow!("usage: lm_fit GGUF LINES [SEQUENCES] [QUERIES]");
    let (model, lines) = (
        args.next().ok_or_else(usage)?,
        args.next().ok_or_else(usage)?,
    );
    let n: usize = args.next().map_or(Ok(16), |s| s.parse())?;
    let nq: usize = args.next().map_or(Ok(2), |s| s.parse())?;
    let mut r = std::io::BufReader::new(std::fs::File::open(&model)?);
    let c = gguf_file::Content::read(&mut r)?;
    let tok = shammie_tokenizer::Tokenizer::from_gguf(&c)?;
    let mut wb = WhiteBox::load(&c, &mut r, &Device::Cpu)?;
    wb.set_frozen(true)?;
    let seqs: Vec<Vec<u32>> = std::fs::read_to_string(&lines)?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(n)
        .map(|l| {
            let mut ids = tok.encode(l, true);
            ids.truncate(MAX_TOKENS);
            ids
        })
        .filter(|ids| ids.len() > 2)
        .collect();
    let tokens: usize = seqs.iter().map(Vec::len).sum();
    println!("{} sequences, {tokens} tokens", seqs.len());
    let (taps, specs) = lm::tap(&mut wb, lm::MLP, None)?;
    let in_records = std::cell::Cell::new(0f64);
    let data = |i: usize| {
        let all: Vec<usize> = (0..seqs[i].len() - 1).collect();
        let t = Instant::now();
        let r = lm::records(
            &wb,
            &taps,
            &specs,
            &seqs[i],
            &all,
            Labels::<rand_chacha::ChaCha8Rng>::Data,
        );
        in_records.set(in_records.get() + t.elapsed().as_secs_f64());
        r
    };
    let t0 = Instant::now();
    let factors = ekfac::fit(&specs, seqs.len(), |i, _| data(i))?;
    println!(
        "fit (2 passes + eigendecompositions) {:.1} s, of which forward and backward passes {:.1} s; peak {}",
        t0.elapsed().as_secs_f64(),
        in_records.get(),
        peak()
    );
    let t1 = Instant::now();
    let mut q = data(0)?;
    for i in 1..nq.min(seqs.len()) {
        let b = data(i)?;
        for (l, r) in q.layers.iter_mut().enumerate() {
            let a = faer::Mat::from_fn(r.a.nrows() + b.layers[l].a.nrows(), r.a.ncols(), |i, j| {
                if i < r.a.nrows() {
                    r.a[(i, j)]
                } else {
                    b.layers[l].a[(i - r.a.nrows(), j)]
                }
            });
            let s = faer::Mat::from_fn(r.s.nrows() + b.layers[l].s.nrows(), r.s.ncols(), |i, j| {
                if i < r.s.nrows() {
                    r.s[(i, j)]
                } else {
                    b.layers[l].s[(i - r.s.nrows(), j)]
                }
            });
            *r = ekfac::LayerRecord { a, s };
        }
        q.tokens.extend(b.tokens);
    }
    let s = ekfac::pairwise(&factors, Damping::default(), &q, seqs.len(), data)?;
    println!(
        "scores {}×{} {:.1} s; peak {}",
        s.nrows(),
        s.ncols(),
        t1.elapsed().as_secs_f64(),
        peak()
    );
    for qi in 0..s.nrows() {
        let mut order: Vec<usize> = (0..s.ncols()).collect();
        order.sort_by(|&a, &b| s[(qi, b)].total_cmp(&s[(qi, a)]));
        println!("query {qi}: top {:?}", &order[..order.len().min(5)]);
    }
    Ok(())
}
