#![allow(clippy::print_stdout)]
use faer::{Mat, Par, Side};
use std::time::Instant;
fn main() {
    let n = 2048;
    let x = Mat::<f64>::from_fn(n, 3 * n, |i, j| (((i * 7919 + j * 104729) % 1000) as f64) / 1000.0 - 0.5);
    let a = &x * x.transpose();
    println!("global par: {:?}", faer::get_global_parallelism());
    for par in [Par::Seq, Par::rayon(2)] {
        faer::set_global_parallelism(par);
        let t = Instant::now();
        let e = a.self_adjoint_eigen(Side::Lower).unwrap();
        println!("{par:?}: eigh {n}: {:.2} s ({})", t.elapsed().as_secs_f64(), e.S().column_vector()[n - 1]);
        let t = Instant::now();
        let _p = &a * &a;
        println!("{par:?}: matmul {n}: {:.2} s", t.elapsed().as_secs_f64());
    }
}
