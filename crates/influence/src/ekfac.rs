//! EK-FAC (George et al. 2018; Grosse et al. 2023, STUDIES.md §8) for any set of linear
//! layers, given each example's *records*: per layer, the layer's inputs ā (with a 1
//! appended last when it has a bias) and the gradients s of the example's loss with
//! respect to the layer's outputs, one row per token (an example of a plain network is
//! one token).
//!
//! Per layer, with N examples and T tokens in all:
//! - covariances A = (1/T) Σ ā āᵀ and S = (1/T) Σ s sᵀ over tokens (the lower triangle
//!   accumulated in place, then mirrored), and
//!   their eigendecompositions A = Q_A diag(λ_A) Q_Aᵀ, S = Q_S diag(λ_S) Q_Sᵀ (ascending);
//! - the eigenvalue correction Λ = (1/N) Σ_n (Q_Sᵀ G_n Q_A)², element-wise, with
//!   G_n = Σ_t s_t ā_tᵀ (out × in′) the example's weight gradient (bias column last);
//! - the damped inverse applied to a gradient V: Q_S [(Q_Sᵀ V Q_A) ⊘ (Λ + λ)] Q_Aᵀ, λ per
//!   layer either given or 0.1 × mean(Λ) ([`Damping`]);
//! - the pairwise score of a query q and a training example z: Σ_layers ⟨P(G_q), G_z⟩,
//!   positive when a gradient step on z lowers the query's loss.
//!
//! These are kronfluence's conventions (checked against its source and outputs:
//! `bench/influence/README.md`), so the factors and scores can be compared entry by entry.
//! Everything is f64.

use faer::{Mat, MatRef, Side};

use crate::InfluenceError;

/// One layer's shape: `inputs` counts the appended 1 when the layer has a bias.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LayerSpec {
    pub name: String,
    pub inputs: usize,
    pub outputs: usize,
}

/// One example's (or a batch of examples') records at one layer: rows are tokens;
/// `examples[i]` is the example of row `i` (rows of one example are contiguous).
#[derive(Debug, Clone)]
pub struct LayerRecord {
    /// (rows × inputs): the layer's inputs, a 1 appended last for the bias.
    pub a: Mat<f64>,
    /// (rows × outputs): the loss gradient with respect to the layer's outputs.
    pub s: Mat<f64>,
}

/// Which pass a record request is for: the covariances, or the eigenvalue correction.
/// With labels sampled from the model the two passes draw independently, as kronfluence
/// does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    Covariance,
    Lambda,
}

/// The factors of one layer.
#[derive(Debug, Clone)]
pub struct LayerFactors {
    pub spec: LayerSpec,
    /// A, (inputs × inputs), normalised by tokens.
    pub activation_covariance: Mat<f64>,
    /// S, (outputs × outputs), normalised by tokens.
    pub gradient_covariance: Mat<f64>,
    pub activation_eigenvalues: Vec<f64>,
    /// Q_A: columns are eigenvectors.
    pub activation_eigenvectors: Mat<f64>,
    pub gradient_eigenvalues: Vec<f64>,
    pub gradient_eigenvectors: Mat<f64>,
    /// Λ, (outputs × inputs), normalised by examples.
    pub lambda: Mat<f64>,
    pub tokens: u64,
    pub examples: u64,
}

/// How the inverse is damped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Damping {
    /// λ = this value for every layer.
    Absolute(f64),
    /// λ = this factor × the layer's mean Λ (the paper's and kronfluence's 0.1).
    MeanEigenvalue(f64),
}

impl Default for Damping {
    fn default() -> Self {
        Damping::MeanEigenvalue(0.1)
    }
}

impl Damping {
    /// Parses `heuristic` (0.1 × mean Λ) or a non-negative number.
    pub fn parse(s: &str) -> Result<Damping, String> {
        match s.trim() {
            "heuristic" => Ok(Damping::default()),
            t => match t.parse::<f64>() {
                Ok(x) if x >= 0.0 && x.is_finite() => Ok(Damping::Absolute(x)),
                _ => Err(format!(
                    "damping `{t}`: `heuristic` or a non-negative number"
                )),
            },
        }
    }

    /// The λ for a layer with these factors.
    pub fn value(&self, f: &LayerFactors) -> f64 {
        match *self {
            Damping::Absolute(x) => x,
            Damping::MeanEigenvalue(k) => {
                let l = &f.lambda;
                let n = (l.nrows() * l.ncols()).max(1) as f64;
                let mut sum = 0.0;
                for j in 0..l.ncols() {
                    for i in 0..l.nrows() {
                        sum += l[(i, j)];
                    }
                }
                k * sum / n
            }
        }
    }
}

/// Where each example's rows are: `bounds[n]..bounds[n + 1]`.
fn check_record(spec: &LayerSpec, r: &LayerRecord, rows: usize) -> Result<(), InfluenceError> {
    if r.a.ncols() != spec.inputs
        || r.s.ncols() != spec.outputs
        || r.a.nrows() != rows
        || r.s.nrows() != rows
    {
        return Err(InfluenceError::Shape(format!(
            "layer {}: records of {}×{} and {}×{}, expected {rows}×{} and {rows}×{}",
            spec.name,
            r.a.nrows(),
            r.a.ncols(),
            r.s.nrows(),
            r.s.ncols(),
            spec.inputs,
            spec.outputs
        )));
    }
    Ok(())
}

fn symmetric_eigen(m: MatRef<'_, f64>, what: &str) -> Result<(Vec<f64>, Mat<f64>), InfluenceError> {
    let e = m.self_adjoint_eigen(Side::Lower).map_err(|e| {
        InfluenceError::Numeric(format!("{what}: eigendecomposition failed: {e:?}"))
    })?;
    let values: Vec<f64> = e.S().column_vector().iter().copied().collect();
    Ok((values, e.U().to_owned()))
}

/// A batch of examples' records for every layer, and how many tokens each example has.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Per layer (in the order of the specs).
    pub layers: Vec<LayerRecord>,
    /// Rows per example, in order (their sum is every record's row count).
    pub tokens: Vec<usize>,
}

/// Fits the factors over `n_batches` batches: `batch(i, pass)` gives batch `i`'s records
/// (called once per batch and pass, so sampled labels may differ between passes).
pub fn fit(
    specs: &[LayerSpec],
    n_batches: usize,
    batch: impl FnMut(usize, Pass) -> Result<Batch, InfluenceError>,
) -> Result<Vec<LayerFactors>, InfluenceError> {
    fit_checkpointed(specs, n_batches, batch, None)
}

/// [`fit`], saving its state to `checkpoint` as it goes and, when the checkpoint's folder
/// already holds the state of the same fit (same layers and batch count), continuing from
/// it: the batches already counted are not requested again. `batch(i, pass)` must give
/// the same records for the same `(i, pass)` across runs (seed sampled labels per batch).
pub fn fit_checkpointed(
    specs: &[LayerSpec],
    n_batches: usize,
    mut batch: impl FnMut(usize, Pass) -> Result<Batch, InfluenceError>,
    checkpoint: Option<&crate::checkpoint::Checkpoint>,
) -> Result<Vec<LayerFactors>, InfluenceError> {
    use crate::checkpoint::{FitState, Phase};
    let (mut st, mut bases) = match checkpoint {
        Some(c) => c.load(specs, n_batches)?,
        None => None,
    }
    .unwrap_or_else(|| (FitState::new(specs, n_batches), None));
    let mut last_save = std::time::Instant::now();
    if st.phase == Phase::Covariance {
        while st.next < n_batches {
            let b = batch(st.next, Pass::Covariance)?;
            let rows: usize = b.tokens.iter().sum();
            for (l, spec) in specs.iter().enumerate() {
                let r = &b.layers[l];
                check_record(spec, r, rows)?;
                add_gram(&mut st.sum_a[l], &r.a);
                add_gram(&mut st.sum_s[l], &r.s);
            }
            st.tokens += rows as u64;
            st.next += 1;
            if let Some(c) = checkpoint {
                if st.next < n_batches && c.due(last_save) {
                    c.save(specs, &mut st, None)?;
                    last_save = std::time::Instant::now();
                }
            }
        }
        if st.tokens == 0 {
            return Err(InfluenceError::Data(
                "no examples to fit the factors on".into(),
            ));
        }
        st.phase = Phase::Lambda;
        st.next = 0;
        let b = eigenbases(specs, &st)?;
        if let Some(c) = checkpoint {
            // Like every save, only when the interval has passed: a short fit is cheaper
            // to redo than to write.
            if c.due(last_save) {
                c.save(specs, &mut st, Some(&b))?;
                last_save = std::time::Instant::now();
            }
        }
        bases = Some(b);
    }
    let bases = bases.expect("the lambda phase has its eigenbases");
    // The eigenvalue correction, from each example's gradient in the Kronecker eigenbasis.
    while st.next < n_batches {
        let b = batch(st.next, Pass::Lambda)?;
        let rows: usize = b.tokens.iter().sum();
        for (l, spec) in specs.iter().enumerate() {
            let r = &b.layers[l];
            check_record(spec, r, rows)?;
            let (_, qa, _, qs) = &bases[l];
            // Rows rotated into the eigenbases: u = s Q_S, v = ā Q_A.
            let u = &r.s * qs;
            let v = &r.a * qa;
            let lam = &mut st.lambda[l];
            if b.tokens.iter().all(|&t| t == 1) {
                // One token each: (Q_Sᵀ G_n Q_A)² = (u_n²)(v_n²)ᵀ, summed as one product.
                let u2 = Mat::from_fn(u.nrows(), u.ncols(), |i, j| u[(i, j)] * u[(i, j)]);
                let v2 = Mat::from_fn(v.nrows(), v.ncols(), |i, j| v[(i, j)] * v[(i, j)]);
                *lam += u2.transpose() * &v2;
            } else {
                let mut start = 0;
                for &t in &b.tokens {
                    let g = u.as_ref().subrows(start, t).transpose() * v.as_ref().subrows(start, t);
                    for j in 0..g.ncols() {
                        for i in 0..g.nrows() {
                            lam[(i, j)] += g[(i, j)] * g[(i, j)];
                        }
                    }
                    start += t;
                }
            }
        }
        st.examples += b.tokens.len() as u64;
        st.next += 1;
        if let Some(c) = checkpoint {
            if st.next < n_batches && c.due(last_save) {
                c.save(specs, &mut st, None)?;
                last_save = std::time::Instant::now();
            }
        }
    }
    let n = st.examples.max(1) as f64;
    let mut out = Vec::with_capacity(specs.len());
    for (l, (spec, (la, qa, ls, qs))) in specs.iter().zip(bases).enumerate() {
        let mut lambda = std::mem::replace(&mut st.lambda[l], Mat::zeros(0, 0));
        for j in 0..lambda.ncols() {
            for i in 0..lambda.nrows() {
                lambda[(i, j)] /= n;
            }
        }
        out.push(LayerFactors {
            spec: spec.clone(),
            activation_covariance: normalised(&st.sum_a[l], st.tokens),
            gradient_covariance: normalised(&st.sum_s[l], st.tokens),
            activation_eigenvalues: la,
            activation_eigenvectors: qa,
            gradient_eigenvalues: ls,
            gradient_eigenvectors: qs,
            lambda,
            tokens: st.tokens,
            examples: st.examples,
        });
    }
    Ok(out)
}

/// Adds xᵀx to the lower triangle of `sum` (diagonal included) in place: the upper
/// triangle is never written, and half the products of a full xᵀx are saved.
fn add_gram(sum: &mut Mat<f64>, x: &Mat<f64>) {
    use faer::linalg::matmul::triangular::{matmul, BlockStructure};
    matmul(
        sum.as_mut(),
        BlockStructure::TriangularLower,
        faer::Accum::Add,
        x.transpose(),
        BlockStructure::Rectangular,
        x.as_ref(),
        BlockStructure::Rectangular,
        1.0,
        faer::get_global_parallelism(),
    );
}

/// A covariance sum (its lower triangle, as [`add_gram`] accumulates it) divided by its
/// token count, mirrored into a symmetric matrix.
fn normalised(m: &Mat<f64>, tokens: u64) -> Mat<f64> {
    let t = tokens as f64;
    Mat::from_fn(m.nrows(), m.ncols(), |i, j| m[(i.max(j), i.min(j))] / t)
}

/// Per layer, (λ_A, Q_A, λ_S, Q_S) of the normalised covariances.
pub(crate) type Eigenbasis = (Vec<f64>, Mat<f64>, Vec<f64>, Mat<f64>);

fn eigenbases(
    specs: &[LayerSpec],
    st: &crate::checkpoint::FitState,
) -> Result<Vec<Eigenbasis>, InfluenceError> {
    use rayon::prelude::*;
    // One eigendecomposition per thread, each sequential: on a few cores that finishes the
    // set sooner than running them one by one, each split across the cores (faer's
    // tridiagonalisation scales poorly). Largest first, for balance.
    struct Restore(faer::Par);
    impl Drop for Restore {
        fn drop(&mut self) {
            faer::set_global_parallelism(self.0);
        }
    }
    let _restore = Restore(faer::get_global_parallelism());
    faer::set_global_parallelism(faer::Par::Seq);
    let mut jobs: Vec<(usize, bool)> = (0..specs.len())
        .flat_map(|l| [(l, false), (l, true)])
        .collect();
    let dim = |&(l, g): &(usize, bool)| {
        if g {
            specs[l].outputs
        } else {
            specs[l].inputs
        }
    };
    jobs.sort_by_key(|j| std::cmp::Reverse(dim(j)));
    type Eigen = Result<(Vec<f64>, Mat<f64>), InfluenceError>;
    let done: Vec<((usize, bool), Eigen)> = jobs
        .par_iter()
        .with_max_len(1)
        .map(|&(l, g)| {
            let (sum, what) = if g {
                (&st.sum_s[l], "gradient covariance")
            } else {
                (&st.sum_a[l], "activation covariance")
            };
            let m = normalised(sum, st.tokens);
            (
                (l, g),
                symmetric_eigen(m.as_ref(), &format!("{}: {what}", specs[l].name)),
            )
        })
        .collect();
    let mut a: Vec<Option<(Vec<f64>, Mat<f64>)>> = (0..specs.len()).map(|_| None).collect();
    let mut s: Vec<Option<(Vec<f64>, Mat<f64>)>> = (0..specs.len()).map(|_| None).collect();
    for ((l, g), r) in done {
        if g {
            s[l] = Some(r?);
        } else {
            a[l] = Some(r?);
        }
    }
    Ok(a.into_iter()
        .zip(s)
        .map(|(a, s)| {
            let ((la, qa), (ls, qs)) = (a.expect("every layer"), s.expect("every layer"));
            (la, qa, ls, qs)
        })
        .collect())
}

/// The damped inverse of layer `f`'s EK-FAC curvature applied to `v` (outputs × inputs).
pub fn precondition(f: &LayerFactors, damping: f64, v: MatRef<'_, f64>) -> Mat<f64> {
    let (qa, qs) = (&f.activation_eigenvectors, &f.gradient_eigenvectors);
    let mut rot = qs.transpose() * v * qa;
    for j in 0..rot.ncols() {
        for i in 0..rot.nrows() {
            rot[(i, j)] /= f.lambda[(i, j)] + damping;
        }
    }
    qs * &rot * qa.transpose()
}

/// [`precondition`] of each example's gradient, rotated into the eigenbasis from its
/// records: Q_Sᵀ G_n Q_A = (s Q_S)ᵀ (ā Q_A) over the example's rows, which for short
/// examples (queries) costs far less than rotating the out × in gradient.
pub fn precondition_records(
    f: &LayerFactors,
    damping: f64,
    r: &LayerRecord,
    tokens: &[usize],
) -> Vec<Mat<f64>> {
    let (qa, qs) = (&f.activation_eigenvectors, &f.gradient_eigenvectors);
    let u = &r.s * qs;
    let v = &r.a * qa;
    let mut out = Vec::with_capacity(tokens.len());
    let mut start = 0;
    for &t in tokens {
        let mut rot = u.as_ref().subrows(start, t).transpose() * v.as_ref().subrows(start, t);
        for j in 0..rot.ncols() {
            for i in 0..rot.nrows() {
                rot[(i, j)] /= f.lambda[(i, j)] + damping;
            }
        }
        out.push(qs * &rot * qa.transpose());
        start += t;
    }
    out
}

/// Each example's weight gradient at one layer, G_n = Σ_t s_t ā_tᵀ.
pub fn example_gradients(r: &LayerRecord, tokens: &[usize]) -> Vec<Mat<f64>> {
    let mut out = Vec::with_capacity(tokens.len());
    let mut start = 0;
    for &t in tokens {
        out.push(r.s.as_ref().subrows(start, t).transpose() * r.a.as_ref().subrows(start, t));
        start += t;
    }
    out
}

/// The preconditioned query gradients P(G_q) of every layer, laid out for scoring.
pub struct Preconditioned {
    queries: usize,
    layers: Vec<QueryLayer>,
}

enum QueryLayer {
    /// (outputs × Q·inputs): the queries' P(G_q) side by side, so a batch's scores at the
    /// layer come from one product M = S·[P_1 … P_Q], with ⟨P_q, G_z⟩ =
    /// Σ_t Σ_c M[t, q·inputs + c]·ā[t, c] over the example's tokens.
    Full(Mat<f64>),
    /// Rank-r approximations P_q ≈ Σ_k σ_k u_k v_kᵀ: `u` (outputs × Q·r) and `v`
    /// (inputs × Q·r, each column scaled by its σ_k), so a token's score is
    /// Σ_k (s_t·u_k)(ā_t·σ_k v_k).
    LowRank {
        u: Mat<f64>,
        v: Mat<f64>,
        rank: usize,
    },
}

impl Preconditioned {
    pub fn queries(&self) -> usize {
        self.queries
    }
}

/// Preconditions each query's gradient (`queries`' examples) at every layer: exactly
/// (`rank` = `None`), or approximated by its `rank` largest singular triplets (the
/// paper's query batching; exact when `rank` ≥ min(outputs, inputs)).
pub fn precondition_queries(
    factors: &[LayerFactors],
    damping: Damping,
    queries: &Batch,
    rank: Option<usize>,
) -> Result<Preconditioned, InfluenceError> {
    let nq = queries.tokens.len();
    let rows: usize = queries.tokens.iter().sum();
    let mut layers = Vec::with_capacity(factors.len());
    for (l, f) in factors.iter().enumerate() {
        check_record(&f.spec, &queries.layers[l], rows)?;
        let d = damping.value(f);
        let pre = precondition_records(f, d, &queries.layers[l], &queries.tokens);
        let (o, k) = (f.spec.outputs, f.spec.inputs);
        let full_rank = o.min(k);
        layers.push(match rank {
            Some(r) if r < full_rank => {
                let r = r.max(1);
                let mut u = Mat::zeros(o, nq * r);
                let mut v = Mat::zeros(k, nq * r);
                for (q, p) in pre.iter().enumerate() {
                    let (uq, vq) = top_singular(p, r, &f.spec.name)?;
                    u.as_mut().subcols_mut(q * r, r).copy_from(&uq);
                    v.as_mut().subcols_mut(q * r, r).copy_from(&vq);
                }
                QueryLayer::LowRank { u, v, rank: r }
            }
            _ => QueryLayer::Full(Mat::from_fn(o, nq * k, |i, j| pre[j / k][(i, j % k)])),
        });
    }
    Ok(Preconditioned {
        queries: nq,
        layers,
    })
}

/// The `r` largest singular triplets of `p` (o × k) as `u` (o × r) and `v` (k × r, each
/// column scaled by its σ), so p ≈ u vᵀ: from the eigendecomposition of the Gram matrix of
/// the smaller side (pᵀp when k ≤ o: v_j its eigenvectors, σ_j = √μ_j, u_j = p v_j / σ_j;
/// else p pᵀ the same way round). Triplets with σ = 0 are left zero.
fn top_singular(
    p: &Mat<f64>,
    r: usize,
    what: &str,
) -> Result<(Mat<f64>, Mat<f64>), InfluenceError> {
    let (o, k) = (p.nrows(), p.ncols());
    let tall = k <= o;
    let gram = if tall {
        p.transpose() * p
    } else {
        p * p.transpose()
    };
    let (mu, q) = symmetric_eigen(gram.as_ref(), &format!("{what}: query Gram matrix"))?;
    let n = mu.len();
    let mut u = Mat::zeros(o, r);
    let mut v = Mat::zeros(k, r);
    let top = mu[n - 1].max(0.0);
    for c in 0..r.min(n) {
        // Eigenvalues ascending: the largest last.
        let j = n - 1 - c;
        let m = mu[j];
        if !m.is_finite() || m <= top * 1e-24 {
            continue;
        }
        let sigma = m.sqrt();
        let qj = q.col(j);
        // The other side's singular vector: p q_j / σ (or pᵀ q_j / σ).
        let other = if tall { p * qj } else { p.transpose() * qj };
        for i in 0..o {
            u[(i, c)] = if tall { other[i] / sigma } else { qj[i] };
        }
        for i in 0..k {
            // v scaled by σ: σ·(pᵀ u / σ) = pᵀ u when p pᵀ was decomposed.
            v[(i, c)] = if tall { qj[i] * sigma } else { other[i] };
        }
    }
    if u.col_iter()
        .chain(v.col_iter())
        .any(|c| c.iter().any(|x| !x.is_finite()))
    {
        return Err(InfluenceError::Numeric(format!(
            "{what}: the low-rank query gradient is not finite"
        )));
    }
    Ok((u, v))
}

/// Per-token scores of a batch of training examples against preconditioned queries:
/// `[example][query][token]`, summed over layers; token `t`'s score is its part
/// ⟨P(G_q), s_t ā_tᵀ⟩ of the example's gradient G = Σ_t s_t ā_tᵀ, so an example's tokens
/// sum to its pairwise score.
pub fn token_scores(
    factors: &[LayerFactors],
    pre: &Preconditioned,
    b: &Batch,
) -> Result<Vec<Vec<Vec<f64>>>, InfluenceError> {
    let rows: usize = b.tokens.iter().sum();
    let nq = pre.queries;
    // Per query, per row, the score summed over layers.
    let mut acc = vec![vec![0f64; rows]; nq];
    for (l, f) in factors.iter().enumerate() {
        let r = &b.layers[l];
        check_record(&f.spec, r, rows)?;
        match &pre.layers[l] {
            QueryLayer::Full(stacked) => {
                let m = &r.s * stacked;
                let k = f.spec.inputs;
                for (q, acc) in acc.iter_mut().enumerate() {
                    for c in 0..k {
                        let mc = m.col(q * k + c);
                        let ac = r.a.col(c);
                        for ((sum, x), y) in acc.iter_mut().zip(mc.iter()).zip(ac.iter()) {
                            *sum += x * y;
                        }
                    }
                }
            }
            QueryLayer::LowRank { u, v, rank } => {
                let su = &r.s * u;
                let av = &r.a * v;
                for (q, acc) in acc.iter_mut().enumerate() {
                    for c in q * rank..(q + 1) * rank {
                        for ((sum, x), y) in
                            acc.iter_mut().zip(su.col(c).iter()).zip(av.col(c).iter())
                        {
                            *sum += x * y;
                        }
                    }
                }
            }
        }
    }
    let mut out = Vec::with_capacity(b.tokens.len());
    let mut start = 0;
    for &t in &b.tokens {
        out.push(acc.iter().map(|a| a[start..start + t].to_vec()).collect());
        start += t;
    }
    Ok(out)
}

/// Each example's self-influence ⟨P(G_z), G_z⟩, summed over layers: with the example's
/// gradient rotated into the eigenbasis, R = Q_Sᵀ G Q_A = (s Q_S)ᵀ (ā Q_A), it is
/// Σ R² ⊘ (Λ + λ).
pub fn self_influence(
    factors: &[LayerFactors],
    damping: Damping,
    b: &Batch,
) -> Result<Vec<f64>, InfluenceError> {
    let rows: usize = b.tokens.iter().sum();
    let mut out = vec![0f64; b.tokens.len()];
    for (l, f) in factors.iter().enumerate() {
        let r = &b.layers[l];
        check_record(&f.spec, r, rows)?;
        let d = damping.value(f);
        let u = &r.s * &f.gradient_eigenvectors;
        let v = &r.a * &f.activation_eigenvectors;
        let mut start = 0;
        for (n, &t) in b.tokens.iter().enumerate() {
            let g = u.as_ref().subrows(start, t).transpose() * v.as_ref().subrows(start, t);
            let mut sum = 0.0;
            for j in 0..g.ncols() {
                for i in 0..g.nrows() {
                    sum += g[(i, j)] * g[(i, j)] / (f.lambda[(i, j)] + d);
                }
            }
            out[n] += sum;
            start += t;
        }
    }
    Ok(out)
}

/// Pairwise scores (queries × training examples), summed over layers: `queries` are the
/// queries' records (per layer), `train` the training examples' batches; exact (no
/// low-rank approximation of the queries).
pub fn pairwise(
    factors: &[LayerFactors],
    damping: Damping,
    queries: &Batch,
    n_train_batches: usize,
    mut train: impl FnMut(usize) -> Result<Batch, InfluenceError>,
) -> Result<Mat<f64>, InfluenceError> {
    let pre = precondition_queries(factors, damping, queries, None)?;
    let mut columns: Vec<Vec<f64>> = Vec::new();
    for i in 0..n_train_batches {
        let b = train(i)?;
        for per_query in token_scores(factors, &pre, &b)? {
            columns.push(per_query.iter().map(|t| t.iter().sum()).collect());
        }
    }
    Ok(Mat::from_fn(pre.queries, columns.len(), |q, z| {
        columns[z][q]
    }))
}
