//! k-means on embeddings: k-means++ seeding, Lloyd iterations to convergence, the best of
//! several seeded restarts (lowest inertia). Deterministic for a given seed, so a killed
//! clustering stage recomputes the same clusters.
//!
//! Written here rather than taken from a crate: the maintained Rust implementation
//! (`linfa-clustering`) brings `ndarray` and the linfa framework for some forty lines of
//! arithmetic, and its results depend on its thread pool's scheduling; this one is a
//! fixed sequence of operations (each distance summed in 16 lanes in a fixed order,
//! centroid sums in f64 in point order), so any number of threads gives the same
//! clusters. The distance passes, where the time goes, run on all cores, compiled for
//! the CPU's widest vector unit (`shammie_local::vectorized!`; the same bits on each).

use rand::{Rng, SeedableRng};

/// Points, row-major: `n` rows of `dim` values.
#[derive(Debug, Clone, Copy)]
pub struct Points<'a> {
    pub data: &'a [f32],
    pub dim: usize,
}

impl<'a> Points<'a> {
    pub fn new(data: &'a [f32], dim: usize) -> Self {
        assert!(
            dim > 0 && data.len().is_multiple_of(dim),
            "{} values of {dim}",
            data.len()
        );
        Self { data, dim }
    }
    pub fn len(&self) -> usize {
        self.data.len() / self.dim
    }
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    pub fn row(&self, i: usize) -> &'a [f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }
}

/// A clustering.
#[derive(Debug, Clone, PartialEq)]
pub struct Clustering {
    /// Per point, its cluster (0..k).
    pub assignment: Vec<usize>,
    /// k centroids of `dim` values, row-major.
    pub centroids: Vec<f32>,
    /// Sum over points of the squared distance to their centroid.
    pub inertia: f64,
    /// Lloyd iterations of the kept restart.
    pub iterations: usize,
    /// Which restart was kept (0-based).
    pub restart: usize,
}

/// Lanes of the distance sums: independent running sums the compiler keeps in vector
/// registers (a single running sum is a chain of dependent additions it may not reorder).
const LANES: usize = 16;

/// Squared Euclidean distance: the squares summed in 16 lanes (lane i takes dimensions
/// i, i + 16, …), then the lanes added pairwise in a fixed order — the same bits on every
/// call, whatever the machine and whichever vector unit runs it (no step is fused or
/// reordered).
pub fn dist2(a: &[f32], b: &[f32]) -> f32 {
    dist2_body(a, b)
}

#[inline(always)]
fn dist2_body(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0f32; LANES];
    let whole = a.len() / LANES * LANES;
    for (x, y) in a[..whole]
        .chunks_exact(LANES)
        .zip(b[..whole].chunks_exact(LANES))
    {
        for i in 0..LANES {
            let d = x[i] - y[i];
            acc[i] += d * d;
        }
    }
    for (i, (x, y)) in a[whole..].iter().zip(&b[whole..]).enumerate() {
        let d = x - y;
        acc[i] += d * d;
    }
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for i in 0..width {
            acc[i] += acc[i + width];
        }
    }
    acc[0]
}

/// For each row of `rows`, its nearest centroid (lowest index on ties) and squared
/// distance.
#[inline(always)]
fn nearest_body(rows: &[f32], centroids: &[f32], dim: usize, out: &mut [(usize, f32)]) {
    for (x, o) in rows.chunks_exact(dim).zip(out) {
        let mut best = (0, f32::INFINITY);
        for (c, m) in centroids.chunks_exact(dim).enumerate() {
            let d = dist2_body(x, m);
            if d < best.1 {
                best = (c, d);
            }
        }
        *o = best;
    }
}

/// `d2[i] = min(d2[i], |row i − c|²)` (k-means++'s distances to the nearest chosen centre).
#[inline(always)]
fn shrink_body(rows: &[f32], c: &[f32], d2: &mut [f64]) {
    for (x, d) in rows.chunks_exact(c.len()).zip(d2) {
        *d = d.min(dist2_body(x, c) as f64);
    }
}

/// `out[j] = |x − row j|²` for every row of `rows`.
#[inline(always)]
fn distances_body(x: &[f32], rows: &[f32], out: &mut [f32]) {
    for (r, o) in rows.chunks_exact(x.len()).zip(out) {
        *o = dist2_body(x, r);
    }
}

shammie_local::vectorized!(pub(crate) fn distances(x: &[f32], rows: &[f32], out: &mut [f32]) => distances_body);
shammie_local::vectorized!(fn nearest_rows(rows: &[f32], centroids: &[f32], dim: usize, out: &mut [(usize, f32)]) => nearest_body);
shammie_local::vectorized!(fn shrink_rows(rows: &[f32], c: &[f32], d2: &mut [f64]) => shrink_body);

/// Threads for a pass over `n` points against `k` centres of `dim` values: all cores when
/// the pass is large enough to be worth it.
fn threads(n: usize, k: usize, dim: usize) -> usize {
    if n * k * dim < 1 << 22 {
        1
    } else {
        std::thread::available_parallelism()
            .map_or(1, |t| t.get())
            .min(n)
    }
}

/// Runs `f(rows, out)` over disjoint ranges of points and their slots in `out`, on `t`
/// threads (each point's answer depends on nothing else, so the result is the same on
/// any number of threads).
fn split_rows<T: Send>(
    points: Points,
    out: &mut [T],
    t: usize,
    f: impl Fn(&[f32], &mut [T]) + Sync,
) {
    let (n, dim) = (points.len(), points.dim);
    let per = n.div_ceil(t.max(1)).max(1);
    if t <= 1 {
        return f(points.data, out);
    }
    std::thread::scope(|s| {
        for (rows, chunk) in points.data.chunks(per * dim).zip(out.chunks_mut(per)) {
            let f = &f;
            s.spawn(move || f(rows, chunk));
        }
    });
}

/// Each point's nearest centroid, on `t` threads.
fn assign_all(points: Points, centroids: &[f32], out: &mut [(usize, f32)], t: usize) {
    let isa = shammie_local::qmm::isa();
    split_rows(points, out, t, |rows, out| {
        nearest_rows(isa, rows, centroids, points.dim, out)
    });
}

/// The rule of thumb for k when none is given: √(n/2), at least 2 and at most n.
pub fn default_k(n: usize) -> usize {
    ((n as f64 / 2.0).sqrt().round() as usize).clamp(2.min(n), n.max(1))
}

/// k-means of `points` into `k` clusters, the best of `restarts` seeded runs.
pub fn kmeans(points: Points, k: usize, restarts: usize, max_iter: usize, seed: u64) -> Clustering {
    let n = points.len();
    assert!(k >= 1 && k <= n, "k = {k} for {n} points");
    let mut best: Option<Clustering> = None;
    for r in 0..restarts.max(1) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(
            seed ^ (r as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        let init = plus_plus(points, k, &mut rng);
        let mut c = lloyd(points, init, max_iter.max(1));
        c.restart = r;
        if best.as_ref().is_none_or(|b| c.inertia < b.inertia) {
            best = Some(c);
        }
    }
    best.expect("at least one restart")
}

/// k-means++ seeding: the first centre uniformly, each next one with probability
/// proportional to its squared distance to the nearest centre chosen so far.
fn plus_plus(points: Points, k: usize, rng: &mut impl Rng) -> Vec<f32> {
    let n = points.len();
    let mut centroids = Vec::with_capacity(k * points.dim);
    let first = rng.gen_range(0..n);
    centroids.extend_from_slice(points.row(first));
    let mut d2: Vec<f64> = (0..n)
        .map(|i| dist2(points.row(i), points.row(first)) as f64)
        .collect();
    for _ in 1..k {
        let total: f64 = d2.iter().sum();
        let pick = if total > 0.0 {
            let mut x = rng.gen::<f64>() * total;
            let mut pick = n - 1;
            for (i, &d) in d2.iter().enumerate() {
                if x < d {
                    pick = i;
                    break;
                }
                x -= d;
            }
            pick
        } else {
            // Every point sits on a centre already: any point will do.
            rng.gen_range(0..n)
        };
        let c = points.row(pick);
        centroids.extend_from_slice(c);
        let isa = shammie_local::qmm::isa();
        split_rows(points, &mut d2, threads(n, 1, points.dim), |rows, d2| {
            shrink_rows(isa, rows, c, d2)
        });
    }
    centroids
}

/// Lloyd iterations from `centroids` until no assignment changes (or `max_iter`). A
/// cluster left empty takes the point farthest from its own centroid.
fn lloyd(points: Points, mut centroids: Vec<f32>, max_iter: usize) -> Clustering {
    let (n, dim) = (points.len(), points.dim);
    let k = centroids.len() / dim;
    let mut assignment = vec![usize::MAX; n];
    let mut nearest_now = vec![(0usize, 0f32); n];
    let mut iterations = 0;
    loop {
        iterations += 1;
        let mut changed = false;
        assign_all(points, &centroids, &mut nearest_now, threads(n, k, dim));
        for (a, &(c, _)) in assignment.iter_mut().zip(&nearest_now) {
            if *a != c {
                *a = c;
                changed = true;
            }
        }
        // New centroids: means in f64.
        let mut sums = vec![0f64; k * dim];
        let mut counts = vec![0usize; k];
        for (i, &a) in assignment.iter().enumerate() {
            counts[a] += 1;
            for (s, &x) in sums[a * dim..(a + 1) * dim].iter_mut().zip(points.row(i)) {
                *s += x as f64;
            }
        }
        for c in 0..k {
            if counts[c] == 0 {
                // The point farthest from its centroid starts the empty cluster.
                let far = (0..n)
                    .max_by(|&i, &j| {
                        let di = dist2(points.row(i), &centroids[assignment[i] * dim..][..dim]);
                        let dj = dist2(points.row(j), &centroids[assignment[j] * dim..][..dim]);
                        di.total_cmp(&dj).then(j.cmp(&i))
                    })
                    .expect("n ≥ 1");
                centroids[c * dim..(c + 1) * dim].copy_from_slice(points.row(far));
                assignment[far] = c;
                changed = true;
                continue;
            }
            for (o, s) in centroids[c * dim..(c + 1) * dim]
                .iter_mut()
                .zip(&sums[c * dim..(c + 1) * dim])
            {
                *o = (s / counts[c] as f64) as f32;
            }
        }
        if !changed || iterations >= max_iter {
            break;
        }
    }
    let inertia = assignment
        .iter()
        .enumerate()
        .map(|(i, &a)| dist2(points.row(i), &centroids[a * dim..][..dim]) as f64)
        .sum();
    Clustering {
        assignment,
        centroids,
        inertia,
        iterations,
        restart: 0,
    }
}

/// The nearest centroid (lowest index on ties) and its squared distance.
pub fn nearest(x: &[f32], centroids: &[f32], dim: usize) -> (usize, f32) {
    let mut out = [(0, 0f32)];
    nearest_body(x, centroids, dim, &mut out);
    out[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three tight, well-separated blobs in 3-D (known membership), shuffled.
    fn blobs() -> (Vec<f32>, Vec<usize>) {
        let centres = [[0.0, 0.0, 10.0], [10.0, 0.0, 0.0], [0.0, 10.0, 0.0]];
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let mut data = Vec::new();
        let mut truth = Vec::new();
        for i in 0..60 {
            let b = (i * 7) % 3;
            for c in centres[b] {
                data.push(c + rng.gen_range(-0.5f32..0.5));
            }
            truth.push(b);
        }
        (data, truth)
    }

    #[test]
    fn planted_blobs_are_found_exactly() {
        let (data, truth) = blobs();
        let c = kmeans(Points::new(&data, 3), 3, 5, 100, 1);
        // The same partition as the truth, up to the clusters' numbering.
        for i in 0..truth.len() {
            for j in 0..truth.len() {
                assert_eq!(truth[i] == truth[j], c.assignment[i] == c.assignment[j]);
            }
        }
        // Inertia is the sum of squared distances to the centroids, recomputed here from
        // the members' means.
        let mut want = 0f64;
        for cl in 0..3 {
            let members: Vec<usize> = (0..60).filter(|&i| c.assignment[i] == cl).collect();
            let mean: Vec<f64> = (0..3)
                .map(|d| {
                    members.iter().map(|&i| data[i * 3 + d] as f64).sum::<f64>()
                        / members.len() as f64
                })
                .collect();
            for &i in &members {
                want += (0..3)
                    .map(|d| (data[i * 3 + d] as f64 - mean[d]).powi(2))
                    .sum::<f64>();
            }
        }
        assert!(
            (c.inertia - want).abs() < 1e-3 * want.max(1.0),
            "{} {want}",
            c.inertia
        );
    }

    #[test]
    fn the_same_seed_gives_the_same_clusters_and_restarts_keep_the_best() {
        let (data, _) = blobs();
        let p = Points::new(&data, 3);
        assert_eq!(kmeans(p, 4, 3, 100, 9), kmeans(p, 4, 3, 100, 9));
        let one = kmeans(p, 4, 1, 100, 9);
        let many = kmeans(p, 4, 8, 100, 9);
        assert!(many.inertia <= one.inertia);
    }

    #[test]
    fn k_equal_to_n_puts_every_point_alone_and_duplicates_are_fine() {
        let data = [1.0f32, 1.0, 1.0, 1.0, 5.0, 5.0];
        let c = kmeans(Points::new(&data, 2), 3, 2, 50, 0);
        let mut sizes = [0; 3];
        for &a in &c.assignment {
            sizes[a] += 1;
        }
        assert_eq!(sizes.iter().sum::<usize>(), 3);
        assert!(sizes.iter().all(|&s| s == 1), "{sizes:?}");
        assert_eq!(c.inertia, 0.0);
    }

    #[test]
    fn distances_match_a_plain_sum_and_threads_change_nothing() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(8);
        for len in [1, 15, 16, 17, 384, 390] {
            let a: Vec<f32> = (0..len).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
            let b: Vec<f32> = (0..len).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
            let want: f64 = a
                .iter()
                .zip(&b)
                .map(|(x, y)| ((x - y) as f64).powi(2))
                .sum();
            assert!(
                (dist2(&a, &b) as f64 - want).abs() < 1e-5 * want.max(1.0),
                "{len}"
            );
        }
        let data: Vec<f32> = (0..1000 * 24)
            .map(|_| rng.gen_range(-1.0f32..1.0))
            .collect();
        let cents: Vec<f32> = data[..7 * 24].to_vec();
        let p = Points::new(&data, 24);
        let mut one = vec![(0, 0f32); 1000];
        let mut three = vec![(0, 0f32); 1000];
        assign_all(p, &cents, &mut one, 1);
        assign_all(p, &cents, &mut three, 3);
        assert_eq!(one, three);
        assert_eq!(one[3].0, 3);
        // The vector unit's build gives the portable build's bits.
        let mut portable = vec![(0, 0f32); 1000];
        nearest_rows(
            shammie_local::qmm::Isa::Scalar,
            &data,
            &cents,
            24,
            &mut portable,
        );
        assert_eq!(one, portable);
        let mut a = vec![f64::INFINITY; 1000];
        let mut b = a.clone();
        shrink_rows(
            shammie_local::qmm::Isa::Scalar,
            &data,
            &cents[24..48],
            &mut a,
        );
        shrink_rows(shammie_local::qmm::isa(), &data, &cents[24..48], &mut b);
        assert_eq!(a, b);
        assert_eq!(a[1], 0.0);
    }

    #[test]
    fn the_rule_of_thumb() {
        assert_eq!(default_k(1), 1);
        assert_eq!(default_k(3), 2);
        assert_eq!(default_k(200), 10);
        assert_eq!(default_k(20_000), 100);
    }
}
