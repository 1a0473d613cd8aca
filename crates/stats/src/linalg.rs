//! Tiny dense linear algebra for least squares with a handful of regressors:
//! Householder QR of the N×K design, back-substitution, and the inverse of
//! the K×K triangular factor. QR (rather than Cholesky of `X'X`) keeps the
//! conditioning at `cond(X)` instead of `cond(X)²`.

use crate::StatsError;

/// Matrix stored as rows.
pub(crate) type Mat = Vec<Vec<f64>>;

/// Relative threshold below which a column is considered linearly dependent
/// on the previous ones: `|R_jj| <= RANK_TOL * ||x_j||`.
const RANK_TOL: f64 = 1e-10;

/// Least-squares fit `min ||y - X b||`.
pub(crate) struct LeastSquares {
    /// Coefficients `b`.
    pub coef: Vec<f64>,
    /// `(X'X)^{-1}` (K×K, symmetric).
    pub xtx_inv: Mat,
}

/// Solves least squares by Householder QR. `x` is N rows of K columns
/// (already validated rectangular, N >= K >= 1, finite).
pub(crate) fn least_squares(x: &[Vec<f64>], y: &[f64]) -> Result<LeastSquares, StatsError> {
    let k = x[0].len();
    // Column-major working copy.
    let mut a: Vec<Vec<f64>> = (0..k)
        .map(|j| x.iter().map(|row| row[j]).collect())
        .collect();
    let col_norms: Vec<f64> = a.iter().map(|c| norm(c)).collect();
    let mut b = y.to_vec();
    let mut r = vec![vec![0.0; k]; k];

    for j in 0..k {
        let sub_norm = norm(&a[j][j..]);
        if col_norms[j] == 0.0 || sub_norm <= RANK_TOL * col_norms[j] {
            return Err(StatsError::SingularMatrix);
        }
        let alpha = if a[j][j] > 0.0 { -sub_norm } else { sub_norm };
        // Householder vector v = a[j][j..] - alpha e_1.
        let mut v: Vec<f64> = a[j][j..].to_vec();
        v[0] -= alpha;
        let vtv: f64 = v.iter().map(|t| t * t).sum();
        let apply = |col: &mut [f64]| {
            let dot: f64 = v.iter().zip(col.iter()).map(|(p, q)| p * q).sum();
            let s = 2.0 * dot / vtv;
            for (c, vi) in col.iter_mut().zip(v.iter()) {
                *c -= s * vi;
            }
        };
        for col in a.iter_mut().skip(j + 1) {
            apply(&mut col[j..]);
        }
        apply(&mut b[j..]);
        a[j][j] = alpha;
        // Column j of R: entries above the diagonal were transformed by the
        // earlier reflections and are final now.
        for (i, row) in r.iter_mut().enumerate().take(j + 1) {
            row[j] = a[j][i];
        }
    }
    let coef = back_substitute(&r, &b[..k]);
    let r_inv = upper_triangular_inverse(&r);
    // (X'X)^{-1} = R^{-1} R^{-T}
    let mut xtx_inv = vec![vec![0.0; k]; k];
    for i in 0..k {
        for j in i..k {
            let s: f64 = (j..k).map(|l| r_inv[i][l] * r_inv[j][l]).sum();
            xtx_inv[i][j] = s;
            xtx_inv[j][i] = s;
        }
    }
    Ok(LeastSquares { coef, xtx_inv })
}

fn norm(v: &[f64]) -> f64 {
    // Scaled to avoid overflow/underflow for extreme magnitudes.
    let scale = v.iter().fold(0.0_f64, |m, t| m.max(t.abs()));
    if scale == 0.0 {
        return 0.0;
    }
    scale
        * v.iter()
            .map(|t| (t / scale) * (t / scale))
            .sum::<f64>()
            .sqrt()
}

/// Solves `R z = c` for upper-triangular `R`.
fn back_substitute(r: &Mat, c: &[f64]) -> Vec<f64> {
    let k = c.len();
    let mut z = vec![0.0; k];
    for i in (0..k).rev() {
        let s: f64 = ((i + 1)..k).map(|j| r[i][j] * z[j]).sum();
        z[i] = (c[i] - s) / r[i][i];
    }
    z
}

/// Inverse of an upper-triangular matrix (also upper triangular).
fn upper_triangular_inverse(r: &Mat) -> Mat {
    let k = r.len();
    let mut inv = vec![vec![0.0; k]; k];
    for col in 0..k {
        let mut e = vec![0.0; k];
        e[col] = 1.0;
        let z = back_substitute(r, &e);
        for (row, zi) in inv.iter_mut().zip(z) {
            row[col] = zi;
        }
    }
    inv
}

/// `A B` for small dense matrices.
pub(crate) fn matmul(a: &Mat, b: &Mat) -> Mat {
    let n = a.len();
    let m = b[0].len();
    let inner = b.len();
    let mut out = vec![vec![0.0; m]; n];
    for (i, row) in out.iter_mut().enumerate() {
        for (j, cell) in row.iter_mut().enumerate() {
            *cell = (0..inner).map(|l| a[i][l] * b[l][j]).sum();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_fit_recovers_coefficients() {
        // y = 2 - 3 x1 + 0.5 x2, no noise.
        let x: Vec<Vec<f64>> = (0..10)
            .map(|i| {
                let i = i as f64;
                vec![1.0, i, (i * 0.7).sin()]
            })
            .collect();
        let y: Vec<f64> = x.iter().map(|r| 2.0 - 3.0 * r[1] + 0.5 * r[2]).collect();
        let fit = least_squares(&x, &y).unwrap();
        assert!((fit.coef[0] - 2.0).abs() < 1e-12);
        assert!((fit.coef[1] + 3.0).abs() < 1e-12);
        assert!((fit.coef[2] - 0.5).abs() < 1e-12);
    }

    #[test]
    fn inverse_times_gram_is_identity() {
        let x: Vec<Vec<f64>> = (0..7)
            .map(|i| {
                let i = i as f64;
                vec![1.0, i, i * i - 3.0]
            })
            .collect();
        let y = vec![0.0; 7];
        let fit = least_squares(&x, &y).unwrap();
        let xt: Mat = (0..3).map(|j| x.iter().map(|r| r[j]).collect()).collect();
        let gram = matmul(&xt, &x.to_vec());
        let prod = matmul(&gram, &fit.xtx_inv);
        for (i, row) in prod.iter().enumerate() {
            for (j, v) in row.iter().enumerate() {
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((v - want).abs() < 1e-10, "({i},{j}) = {v}");
            }
        }
    }

    #[test]
    fn collinear_columns_are_singular() {
        let x: Vec<Vec<f64>> = (0..6)
            .map(|i| vec![1.0, i as f64, 2.0 * i as f64])
            .collect();
        let y = vec![1.0; 6];
        assert!(matches!(
            least_squares(&x, &y),
            Err(StatsError::SingularMatrix)
        ));
        let zero: Vec<Vec<f64>> = (0..6).map(|i| vec![1.0, 0.0 * i as f64]).collect();
        assert!(matches!(
            least_squares(&zero, &y),
            Err(StatsError::SingularMatrix)
        ));
    }
}
