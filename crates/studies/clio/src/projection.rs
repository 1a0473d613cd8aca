//! Points projected to 2-D for the map: UMAP (McInnes, Healy & Melville 2018), written
//! here as a fixed, seeded, single-threaded sequence of operations so that a killed
//! projection stage recomputes the same map. (The maintained Rust implementation,
//! `umap-rs`, draws its negative samples from an unseeded thread-local generator in a
//! parallel loop, so two runs give two maps.)
//!
//! The steps are UMAP's:
//! 1. exact k nearest neighbours (Euclidean);
//! 2. per point, ρ = the distance to its nearest neighbour and σ by bisection so that
//!    Σ_j exp(−(d_j − ρ)/σ) = log₂ k;
//! 3. the fuzzy graph symmetrised: w = a + b − a·b;
//! 4. initial layout: the first two principal components (power iteration), scaled to
//!    ±10;
//! 5. stochastic gradient descent on the cross-entropy, each edge sampled in proportion to
//!    its weight, with 5 negative samples per positive one and a learning rate falling
//!    linearly from 1 to 0; the curve 1/(1 + a·d^{2b}) with a = 1.577, b = 0.895 (UMAP's
//!    fit for min_dist = 0.1, spread = 1).

// Updates index two points of the layout at once.
#![allow(clippy::needless_range_loop)]

use rand::{Rng, SeedableRng};

const A: f64 = 1.576_943_460_405_378;
const B: f64 = 0.895_060_878_123_319_2;
const NEGATIVE: usize = 5;

/// UMAP settings.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub neighbours: usize,
    pub epochs: usize,
    pub seed: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            neighbours: 15,
            epochs: 200,
            seed: 0,
        }
    }
}

/// 2-D coordinates of `n` points of `dim` values (row-major), one `[x, y]` per point.
///
/// Identical points are laid out once and their copies placed around them (a seeded
/// offset of at most 0.05), as umap-learn's `unique=True` does: copies would otherwise
/// share UMAP's local connectivity with the nearest *other* point, pulling groups of
/// identical summaries into each other.
pub fn umap(data: &[f32], dim: usize, s: Settings) -> Vec<[f64; 2]> {
    let n = data.len() / dim;
    let mut first: std::collections::HashMap<Vec<u32>, usize> = Default::default();
    let mut unique: Vec<f32> = Vec::new();
    let mut of: Vec<usize> = Vec::with_capacity(n);
    for i in 0..n {
        let row = &data[i * dim..(i + 1) * dim];
        let key: Vec<u32> = row.iter().map(|x| x.to_bits()).collect();
        let next = first.len();
        let u = *first.entry(key).or_insert_with(|| {
            unique.extend_from_slice(row);
            next
        });
        of.push(u);
    }
    let laid = layout(&unique, dim, s);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(s.seed ^ 0x00D0_B1E5);
    let mut seen = vec![false; laid.len()];
    of.into_iter()
        .map(|u| {
            let p = laid[u];
            if !std::mem::replace(&mut seen[u], true) {
                return p;
            }
            [
                p[0] + rng.gen_range(-0.05..0.05),
                p[1] + rng.gen_range(-0.05..0.05),
            ]
        })
        .collect()
}

/// UMAP of distinct points.
fn layout(data: &[f32], dim: usize, s: Settings) -> Vec<[f64; 2]> {
    let n = data.len() / dim;
    if n == 0 {
        return Vec::new();
    }
    if n == 1 {
        return vec![[0.0, 0.0]];
    }
    let row = |i: usize| &data[i * dim..(i + 1) * dim];
    let k = s.neighbours.min(n - 1).max(1);

    // 1. Exact kNN: each point's k nearest others (nearest first, lower index on ties),
    // points split between threads (each point's list depends on nothing else).
    let mut knn: Vec<Vec<(usize, f64)>> = vec![Vec::new(); n];
    let isa = shammie_local::qmm::isa();
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let per = n.div_ceil(threads);
    std::thread::scope(|scope| {
        for (c, chunk) in knn.chunks_mut(per).enumerate() {
            scope.spawn(move || {
                let mut d2 = vec![0f32; n];
                for (o, i) in chunk.iter_mut().zip(c * per..) {
                    crate::kmeans::distances(isa, row(i), data, &mut d2);
                    let mut d: Vec<(usize, f32)> = d2
                        .iter()
                        .copied()
                        .enumerate()
                        .filter(|&(j, _)| j != i)
                        .collect();
                    let order = |a: &(usize, f32), b: &(usize, f32)| {
                        a.1.total_cmp(&b.1).then(a.0.cmp(&b.0))
                    };
                    if d.len() > k {
                        d.select_nth_unstable_by(k - 1, order);
                        d.truncate(k);
                    }
                    d.sort_by(order);
                    *o = d.into_iter().map(|(j, d)| (j, (d as f64).sqrt())).collect();
                }
            });
        }
    });

    // 2. Membership strengths.
    let target = (k as f64).log2();
    let mut edges: std::collections::BTreeMap<(usize, usize), f64> = Default::default();
    for (i, nb) in knn.iter().enumerate() {
        let rho = nb.iter().map(|x| x.1).find(|&d| d > 0.0).unwrap_or(0.0);
        let (mut lo, mut hi, mut sigma) = (0.0f64, f64::INFINITY, 1.0f64);
        for _ in 0..64 {
            let sum: f64 = nb
                .iter()
                .map(|&(_, d)| (-((d - rho).max(0.0)) / sigma).exp())
                .sum();
            if (sum - target).abs() < 1e-5 {
                break;
            }
            if sum > target {
                hi = sigma;
                sigma = (lo + hi) / 2.0;
            } else {
                lo = sigma;
                sigma = if hi.is_infinite() {
                    sigma * 2.0
                } else {
                    (lo + hi) / 2.0
                };
            }
        }
        for &(j, d) in nb {
            let w = (-((d - rho).max(0.0)) / sigma).exp();
            edges.insert((i, j), w);
        }
    }
    // 3. Symmetrise.
    let mut graph: Vec<(usize, usize, f64)> = Vec::new();
    for (&(i, j), &w) in &edges {
        if i < j || !edges.contains_key(&(j, i)) {
            let v = edges.get(&(j, i)).copied().unwrap_or(0.0);
            graph.push((i.min(j), i.max(j), w + v - w * v));
        }
    }

    // 4. PCA initialisation.
    let mut y = pca2(data, dim);
    let max = y
        .iter()
        .flat_map(|p| p.iter().map(|v| v.abs()))
        .fold(0.0f64, f64::max);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(s.seed);
    for p in y.iter_mut() {
        for v in p.iter_mut() {
            *v = if max > 0.0 { *v / max * 10.0 } else { 0.0 };
            // A little seeded jitter separates duplicate points.
            *v += rng.gen_range(-1e-4..1e-4);
        }
    }

    // 5. SGD.
    let wmax = graph.iter().map(|e| e.2).fold(0.0f64, f64::max);
    let per_sample: Vec<f64> = graph
        .iter()
        .map(|e| if e.2 > 0.0 { wmax / e.2 } else { f64::INFINITY })
        .collect();
    let mut next: Vec<f64> = per_sample.clone();
    let clip = |g: f64| g.clamp(-4.0, 4.0);
    for epoch in 0..s.epochs {
        let alpha = 1.0 - epoch as f64 / s.epochs as f64;
        for (e, &(i, j, _)) in graph.iter().enumerate() {
            if next[e] > (epoch + 1) as f64 {
                continue;
            }
            next[e] += per_sample[e];
            let d2 = (y[i][0] - y[j][0]).powi(2) + (y[i][1] - y[j][1]).powi(2);
            if d2 > 0.0 {
                let c = -2.0 * A * B * d2.powf(B - 1.0) / (1.0 + A * d2.powf(B));
                for t in 0..2 {
                    let g = clip(c * (y[i][t] - y[j][t])) * alpha;
                    y[i][t] += g;
                    y[j][t] -= g;
                }
            }
            for _ in 0..NEGATIVE {
                let m = rng.gen_range(0..n);
                if m == i {
                    continue;
                }
                let d2 = (y[i][0] - y[m][0]).powi(2) + (y[i][1] - y[m][1]).powi(2);
                let c = 2.0 * B / ((0.001 + d2) * (1.0 + A * d2.powf(B)));
                for t in 0..2 {
                    let g = if c > 0.0 {
                        clip(c * (y[i][t] - y[m][t]))
                    } else {
                        4.0
                    };
                    y[i][t] += g * alpha;
                }
            }
        }
    }
    y
}

/// The first two principal components' scores (power iteration on the covariance,
/// deflated; deterministic start).
fn pca2(data: &[f32], dim: usize) -> Vec<[f64; 2]> {
    let n = data.len() / dim;
    let mut mean = vec![0f64; dim];
    for i in 0..n {
        for (m, &x) in mean.iter_mut().zip(&data[i * dim..(i + 1) * dim]) {
            *m += x as f64 / n as f64;
        }
    }
    let centred = |i: usize, t: usize| data[i * dim + t] as f64 - mean[t];
    let mut comps: Vec<Vec<f64>> = Vec::new();
    for c in 0..2 {
        let mut v: Vec<f64> = (0..dim)
            .map(|t| 1.0 + ((t * 7 + c * 3) % 11) as f64 / 10.0)
            .collect();
        for _ in 0..100 {
            // w = Xᵀ X v, with earlier components projected out.
            let mut w = vec![0f64; dim];
            for i in 0..n {
                let s: f64 = (0..dim).map(|t| centred(i, t) * v[t]).sum();
                for (t, wt) in w.iter_mut().enumerate() {
                    *wt += s * centred(i, t);
                }
            }
            for u in &comps {
                let p: f64 = w.iter().zip(u).map(|(a, b)| a * b).sum();
                for (wt, ut) in w.iter_mut().zip(u) {
                    *wt -= p * ut;
                }
            }
            let norm = w.iter().map(|x| x * x).sum::<f64>().sqrt();
            if norm == 0.0 {
                break;
            }
            v = w.into_iter().map(|x| x / norm).collect();
        }
        comps.push(v);
    }
    (0..n)
        .map(|i| {
            let s = |u: &Vec<f64>| (0..dim).map(|t| centred(i, t) * u[t]).sum::<f64>();
            [s(&comps[0]), s(&comps[1])]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Four well-separated blobs in 10-D.
    fn blobs() -> (Vec<f32>, Vec<usize>) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let (mut data, mut label) = (Vec::new(), Vec::new());
        for i in 0..80 {
            let b = i % 4;
            for t in 0..10 {
                let centre = if t == b * 2 { 8.0 } else { 0.0 };
                data.push(centre + rng.gen_range(-0.5f32..0.5));
            }
            label.push(b);
        }
        (data, label)
    }

    #[test]
    fn blobs_stay_apart_and_the_map_is_reproducible() {
        let (data, label) = blobs();
        let s = Settings {
            seed: 11,
            ..Default::default()
        };
        let y = umap(&data, 10, s);
        assert_eq!(y, umap(&data, 10, s));
        // Every point is nearer its own blob's 2-D centre than any other blob's.
        let centre = |b: usize| {
            let pts: Vec<&[f64; 2]> = (0..80).filter(|&i| label[i] == b).map(|i| &y[i]).collect();
            let m = pts.len() as f64;
            [
                pts.iter().map(|p| p[0]).sum::<f64>() / m,
                pts.iter().map(|p| p[1]).sum::<f64>() / m,
            ]
        };
        let centres: Vec<[f64; 2]> = (0..4).map(centre).collect();
        for i in 0..80 {
            let d = |c: &[f64; 2]| (y[i][0] - c[0]).hypot(y[i][1] - c[1]);
            let own = d(&centres[label[i]]);
            for (b, c) in centres.iter().enumerate() {
                if b != label[i] {
                    assert!(own < d(c), "point {i}");
                }
            }
        }
    }

    #[test]
    fn the_first_principal_component_is_the_spread_direction() {
        // Points along (1, 1, 0) with small noise in z: PC1 scores are ±√2·t.
        let data: Vec<f32> = (0..9)
            .flat_map(|t| {
                let t = t as f32 - 4.0;
                [t, t, if t as i32 % 2 == 0 { 0.01 } else { -0.01 }]
            })
            .collect();
        let p = pca2(&data, 3);
        for (i, s) in p.iter().enumerate() {
            let want = (i as f64 - 4.0) * 2f64.sqrt();
            assert!((s[0].abs() - want.abs()).abs() < 1e-4, "{i}: {s:?}");
        }
    }

    #[test]
    fn groups_of_identical_points_stay_apart() {
        // Three groups of ten identical points: each group lands on one spot.
        let mut data = Vec::new();
        for i in 0..30 {
            for t in 0..8 {
                data.push(if t == i % 3 { 1.0f32 } else { 0.0 });
            }
        }
        let y = umap(&data, 8, Settings::default());
        let d = |i: usize, j: usize| (y[i][0] - y[j][0]).hypot(y[i][1] - y[j][1]);
        for i in 0..30 {
            for j in 0..30 {
                if i % 3 == j % 3 {
                    assert!(d(i, j) <= 0.1 * 2f64.sqrt(), "{i} {j}");
                } else {
                    assert!(d(i, j) > 0.5, "{i} {j}: {}", d(i, j));
                }
            }
        }
    }

    #[test]
    fn tiny_inputs() {
        assert!(umap(&[], 3, Settings::default()).is_empty());
        assert_eq!(umap(&[1.0, 2.0], 2, Settings::default()), vec![[0.0, 0.0]]);
        assert_eq!(umap(&[1.0, 2.0, 3.0, 4.0], 2, Settings::default()).len(), 2);
    }
}
