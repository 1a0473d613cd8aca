//! EK-FAC (George et al. 2018; Grosse et al. 2023, STUDIES.md §8) for any set of linear
//! layers, given each example's *records*: per layer, the layer's inputs ā (with a 1
//! appended last when it has a bias) and the gradients s of the example's loss with
//! respect to the layer's outputs, one row per token (an example of a plain network is
//! one token).
//!
//! Per layer, with N examples and T tokens in all:
//! - covariances A = (1/T) Σ ā āᵀ and S = (1/T) Σ s sᵀ over tokens, symmetrised, and
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
    mut batch: impl FnMut(usize, Pass) -> Result<Batch, InfluenceError>,
) -> Result<Vec<LayerFactors>, InfluenceError> {
    let mut sum_a: Vec<Mat<f64>> = specs
        .iter()
        .map(|s| Mat::zeros(s.inputs, s.inputs))
        .collect();
    let mut sum_s: Vec<Mat<f64>> = specs
        .iter()
        .map(|s| Mat::zeros(s.outputs, s.outputs))
        .collect();
    let mut tokens = 0u64;
    for i in 0..n_batches {
        let b = batch(i, Pass::Covariance)?;
        let rows: usize = b.tokens.iter().sum();
        tokens += rows as u64;
        for (l, spec) in specs.iter().enumerate() {
            let r = &b.layers[l];
            check_record(spec, r, rows)?;
            sum_a[l] += r.a.transpose() * &r.a;
            sum_s[l] += r.s.transpose() * &r.s;
        }
    }
    if tokens == 0 {
        return Err(InfluenceError::Data(
            "no examples to fit the factors on".into(),
        ));
    }
    let mut out = Vec::with_capacity(specs.len());
    let mut bases = Vec::with_capacity(specs.len());
    for (l, spec) in specs.iter().enumerate() {
        let norm = |m: &Mat<f64>| {
            let t = tokens as f64;
            Mat::from_fn(m.nrows(), m.ncols(), |i, j| {
                (m[(i, j)] + m[(j, i)]) / (2.0 * t)
            })
        };
        let a = norm(&sum_a[l]);
        let s = norm(&sum_s[l]);
        let (la, qa) =
            symmetric_eigen(a.as_ref(), &format!("{}: activation covariance", spec.name))?;
        let (ls, qs) = symmetric_eigen(s.as_ref(), &format!("{}: gradient covariance", spec.name))?;
        bases.push((qa.clone(), qs.clone()));
        out.push(LayerFactors {
            spec: spec.clone(),
            activation_covariance: a,
            gradient_covariance: s,
            activation_eigenvalues: la,
            activation_eigenvectors: qa,
            gradient_eigenvalues: ls,
            gradient_eigenvectors: qs,
            lambda: Mat::zeros(spec.outputs, spec.inputs),
            tokens,
            examples: 0,
        });
    }
    // The eigenvalue correction, from each example's gradient in the Kronecker eigenbasis.
    let mut examples = 0u64;
    for i in 0..n_batches {
        let b = batch(i, Pass::Lambda)?;
        let rows: usize = b.tokens.iter().sum();
        examples += b.tokens.len() as u64;
        for (l, spec) in specs.iter().enumerate() {
            let r = &b.layers[l];
            check_record(spec, r, rows)?;
            let (qa, qs) = &bases[l];
            // Rows rotated into the eigenbases: u = s Q_S, v = ā Q_A.
            let u = &r.s * qs;
            let v = &r.a * qa;
            let lam = &mut out[l].lambda;
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
    }
    for f in &mut out {
        let n = examples as f64;
        for j in 0..f.lambda.ncols() {
            for i in 0..f.lambda.nrows() {
                f.lambda[(i, j)] /= n;
            }
        }
        f.examples = examples;
    }
    Ok(out)
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

/// Pairwise scores (queries × training examples), summed over layers: `queries` are the
/// queries' records (per layer), `train` the training examples' batches.
pub fn pairwise(
    factors: &[LayerFactors],
    damping: Damping,
    queries: &Batch,
    n_train_batches: usize,
    mut train: impl FnMut(usize) -> Result<Batch, InfluenceError>,
) -> Result<Mat<f64>, InfluenceError> {
    // Preconditioned query gradients, per layer and query.
    let nq = queries.tokens.len();
    let mut pre: Vec<Vec<Mat<f64>>> = Vec::with_capacity(factors.len());
    for (l, f) in factors.iter().enumerate() {
        let rows: usize = queries.tokens.iter().sum();
        check_record(&f.spec, &queries.layers[l], rows)?;
        let d = damping.value(f);
        pre.push(
            example_gradients(&queries.layers[l], &queries.tokens)
                .iter()
                .map(|g| precondition(f, d, g.as_ref()))
                .collect(),
        );
    }
    // The preconditioned query gradients of a layer side by side, (outputs × Q·inputs),
    // so a batch's scores at that layer come from one product: M = S·[P_1 … P_Q], and
    // ⟨P_q, G_z⟩ = Σ_t Σ_c M[t, q·inputs + c]·ā[t, c], summed over each example's tokens.
    let stacked: Vec<Mat<f64>> = factors
        .iter()
        .enumerate()
        .map(|(l, f)| {
            let k = f.spec.inputs;
            Mat::from_fn(f.spec.outputs, nq * k, |i, j| pre[l][j / k][(i, j % k)])
        })
        .collect();
    let mut columns: Vec<Vec<f64>> = Vec::new();
    for i in 0..n_train_batches {
        let b = train(i)?;
        let rows: usize = b.tokens.iter().sum();
        // Per query, per token, the score summed over layers.
        let mut token_scores = vec![vec![0f64; rows]; nq];
        for (l, f) in factors.iter().enumerate() {
            let r = &b.layers[l];
            check_record(&f.spec, r, rows)?;
            let m = &r.s * &stacked[l];
            let k = f.spec.inputs;
            for (q, acc) in token_scores.iter_mut().enumerate() {
                for c in 0..k {
                    let mc = m.col(q * k + c);
                    let ac = r.a.col(c);
                    for ((sum, x), y) in acc.iter_mut().zip(mc.iter()).zip(ac.iter()) {
                        *sum += x * y;
                    }
                }
            }
        }
        let mut start = 0;
        for &t in &b.tokens {
            columns.push(
                token_scores
                    .iter()
                    .map(|ts| ts[start..start + t].iter().sum())
                    .collect(),
            );
            start += t;
        }
    }
    Ok(Mat::from_fn(nq, columns.len(), |q, z| columns[z][q]))
}
