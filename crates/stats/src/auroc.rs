//! Area under the ROC curve via the Mann–Whitney statistic.

use crate::{check_finite, check_len, StatsError};

/// AUROC: the probability that a random positive scores higher than a random
/// negative, ties counting ½. Computed as `U / (n₁ n₀)` with
/// `U = R₁ - n₁(n₁+1)/2`, where `R₁` is the sum of the mid-ranks of the
/// positives in the pooled sample (O(n log n)).
///
/// Matches `scipy.stats.mannwhitneyu(pos, neg).statistic / (n1 * n0)` and
/// `sklearn.metrics.roc_auc_score`.
///
/// Errors: empty input, mismatched lengths, non-finite scores, and no
/// positives or no negatives ([`StatsError::InvalidArgument`]).
pub fn auroc(scores: &[f64], labels: &[bool]) -> Result<f64, StatsError> {
    if scores.is_empty() {
        return Err(StatsError::EmptyInput);
    }
    check_len("labels", scores.len(), labels.len())?;
    check_finite(scores, "scores")?;
    let n1 = labels.iter().filter(|&&l| l).count();
    let n0 = labels.len() - n1;
    if n1 == 0 || n0 == 0 {
        return Err(StatsError::InvalidArgument(format!(
            "AUROC needs both classes; got {n1} positives and {n0} negatives"
        )));
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut rank_sum_pos = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        // 1-based ranks i+1..=j+1 share their mean.
        let mid = (i + j) as f64 / 2.0 + 1.0;
        let pos_in_tie = order[i..=j].iter().filter(|&&k| labels[k]).count();
        rank_sum_pos += mid * pos_in_tie as f64;
        i = j + 1;
    }
    let (n1f, n0f) = (n1 as f64, n0 as f64);
    let u = rank_sum_pos - n1f * (n1f + 1.0) / 2.0;
    Ok(u / (n1f * n0f))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute(scores: &[f64], labels: &[bool]) -> f64 {
        let mut num = 0.0;
        let mut den = 0.0;
        for (s1, _) in scores.iter().zip(labels).filter(|(_, l)| **l) {
            for (s0, _) in scores.iter().zip(labels).filter(|(_, l)| !**l) {
                den += 1.0;
                num += if s1 > s0 {
                    1.0
                } else if s1 == s0 {
                    0.5
                } else {
                    0.0
                };
            }
        }
        num / den
    }

    #[test]
    fn perfect_inverted_and_tied() {
        assert_eq!(
            auroc(&[0.1, 0.2, 0.8, 0.9], &[false, false, true, true]),
            Ok(1.0)
        );
        assert_eq!(
            auroc(&[0.1, 0.2, 0.8, 0.9], &[true, true, false, false]),
            Ok(0.0)
        );
        assert_eq!(
            auroc(&[0.5; 6], &[true, false, true, false, false, true]),
            Ok(0.5)
        );
        // -0.0 and 0.0 compare equal: still a tie.
        assert_eq!(auroc(&[-0.0, 0.0], &[true, false]), Ok(0.5));
    }

    #[test]
    fn matches_pairwise_definition_with_ties() {
        let scores = [0.3, 0.3, 0.1, 0.7, 0.7, 0.7, 0.2, 0.9, 0.3, 0.0];
        let labels = [
            true, false, false, true, false, true, true, false, true, false,
        ];
        let a = auroc(&scores, &labels).unwrap();
        assert!((a - brute(&scores, &labels)).abs() < 1e-15);
    }

    #[test]
    fn errors() {
        assert_eq!(auroc(&[], &[]), Err(StatsError::EmptyInput));
        assert!(matches!(
            auroc(&[1.0], &[true, false]),
            Err(StatsError::MismatchedLengths { .. })
        ));
        assert!(matches!(
            auroc(&[1.0, 2.0], &[true, true]),
            Err(StatsError::InvalidArgument(_))
        ));
        assert!(matches!(
            auroc(&[1.0, 2.0], &[false, false]),
            Err(StatsError::InvalidArgument(_))
        ));
        assert_eq!(
            auroc(&[1.0, f64::NAN], &[true, false]),
            Err(StatsError::NonFinite("scores"))
        );
    }
}
