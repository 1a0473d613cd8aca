//! Tiny dense linear algebra for least squares with a handful of regressors:
//! Householder QR of the N×K design, back-substitution, and the inverse of
//! the K×K triangular factor. QR (rather than Cholesky of `X'X`) keeps the
//! conditioning at `cond(X)` instead of `cond(X)²`.
//!
//! For the mixed model (small q×q and p×p blocks): Cholesky factorisation,
//! triangular solves and a pivoted Gauss–Jordan inverse.

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

/// Cholesky factor `L` (lower triangular, `A = L L'`) of a symmetric
/// positive-definite matrix; only the lower triangle of `a` is read.
/// `None` when a pivot is not strictly positive (or not finite).
pub(crate) fn cholesky(a: &Mat) -> Option<Mat> {
    let n = a.len();
    let mut l = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i][k] * l[j][k]).sum();
            if i == j {
                let d = a[i][i] - s;
                if !(d > 0.0 && d.is_finite()) {
                    return None;
                }
                l[i][i] = d.sqrt();
            } else {
                l[i][j] = (a[i][j] - s) / l[j][j];
            }
        }
    }
    Some(l)
}

/// Solves `L z = b` in place for lower-triangular `L`.
pub(crate) fn solve_lower(l: &Mat, b: &mut [f64]) {
    for i in 0..b.len() {
        let s: f64 = (0..i).map(|k| l[i][k] * b[k]).sum();
        b[i] = (b[i] - s) / l[i][i];
    }
}

/// Solves `L' z = b` in place for lower-triangular `L`.
pub(crate) fn solve_lower_transpose(l: &Mat, b: &mut [f64]) {
    let n = b.len();
    for i in (0..n).rev() {
        let s: f64 = ((i + 1)..n).map(|k| l[k][i] * b[k]).sum();
        b[i] = (b[i] - s) / l[i][i];
    }
}

/// Solves `A z = b` given the Cholesky factor `L` of `A`.
pub(crate) fn cholesky_solve(l: &Mat, b: &[f64]) -> Vec<f64> {
    let mut z = b.to_vec();
    solve_lower(l, &mut z);
    solve_lower_transpose(l, &mut z);
    z
}

/// `A⁻¹` from the Cholesky factor `L` of `A` (symmetric result).
pub(crate) fn cholesky_inverse(l: &Mat) -> Mat {
    let n = l.len();
    let mut inv = vec![vec![0.0; n]; n];
    for col in 0..n {
        let mut e = vec![0.0; n];
        e[col] = 1.0;
        let z = cholesky_solve(l, &e);
        for (row, zi) in inv.iter_mut().zip(z) {
            row[col] = zi;
        }
    }
    // Symmetrise away rounding differences.
    let lower: Vec<Vec<f64>> = (0..n)
        .map(|i| (0..i).map(|j| 0.5 * (inv[i][j] + inv[j][i])).collect())
        .collect();
    for (i, row) in lower.iter().enumerate() {
        for (j, v) in row.iter().enumerate() {
            inv[i][j] = *v;
            inv[j][i] = *v;
        }
    }
    inv
}

/// Inverse of a general square matrix by Gauss–Jordan elimination with
/// partial pivoting. [`StatsError::SingularMatrix`] when a pivot is below
/// `1e-14` times the largest absolute entry (or the input is not finite).
pub(crate) fn invert(a: &Mat) -> Result<Mat, StatsError> {
    let n = a.len();
    let scale = a
        .iter()
        .flat_map(|r| r.iter())
        .fold(0.0_f64, |m, v| m.max(v.abs()));
    if !(scale > 0.0 && scale.is_finite()) {
        return Err(StatsError::SingularMatrix);
    }
    let mut m: Mat = a.to_vec();
    let mut inv: Mat = (0..n)
        .map(|i| (0..n).map(|j| if i == j { 1.0 } else { 0.0 }).collect())
        .collect();
    for col in 0..n {
        let piv = (col..n)
            .max_by(|&i, &j| m[i][col].abs().total_cmp(&m[j][col].abs()))
            .expect("non-empty range");
        if m[piv][col].abs() <= 1e-14 * scale {
            return Err(StatsError::SingularMatrix);
        }
        m.swap(col, piv);
        inv.swap(col, piv);
        let d = m[col][col];
        for j in 0..n {
            m[col][j] /= d;
            inv[col][j] /= d;
        }
        for i in 0..n {
            if i != col {
                let f = m[i][col];
                if f != 0.0 {
                    for j in 0..n {
                        m[i][j] -= f * m[col][j];
                        inv[i][j] -= f * inv[col][j];
                    }
                }
            }
        }
    }
    Ok(inv)
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

    fn spd() -> Mat {
        vec![
            vec![4.0, 1.2, -0.5],
            vec![1.2, 3.0, 0.4],
            vec![-0.5, 0.4, 2.0],
        ]
    }

    fn assert_identity(prod: &Mat, tol: f64) {
        for (i, row) in prod.iter().enumerate() {
            for (j, v) in row.iter().enumerate() {
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((v - want).abs() < tol, "({i},{j}) = {v}");
            }
        }
    }

    #[test]
    fn cholesky_reconstructs_and_inverts() {
        let a = spd();
        let l = cholesky(&a).unwrap();
        let lt: Mat = (0..3).map(|j| (0..3).map(|i| l[i][j]).collect()).collect();
        let back = matmul(&l, &lt);
        for i in 0..3 {
            for j in 0..3 {
                assert!((back[i][j] - a[i][j]).abs() < 1e-14);
            }
        }
        assert_identity(&matmul(&a, &cholesky_inverse(&l)), 1e-14);
        let b = vec![1.0, -2.0, 0.5];
        let z = cholesky_solve(&l, &b);
        for i in 0..3 {
            let s: f64 = (0..3).map(|j| a[i][j] * z[j]).sum();
            assert!((s - b[i]).abs() < 1e-14);
        }
        let mut not_pd = a.clone();
        not_pd[2][2] = -1.0;
        assert!(cholesky(&not_pd).is_none());
    }

    #[test]
    fn gauss_jordan_inverse() {
        let a = vec![
            vec![0.0, 2.0, 1.0],
            vec![1.0, -1.0, 0.5],
            vec![3.0, 0.0, -2.0],
        ];
        assert_identity(&matmul(&a, &invert(&a).unwrap()), 1e-14);
        let sing = vec![vec![1.0, 2.0], vec![2.0, 4.0]];
        assert_eq!(invert(&sing), Err(StatsError::SingularMatrix));
    }
}
