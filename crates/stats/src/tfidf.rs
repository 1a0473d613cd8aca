//! TF-IDF similarity between a query text and a collection of documents, for picking
//! the documents most like a query (the candidate filter of influence queries, Grosse
//! et al. 2023).
//!
//! - **Words**: the runs of alphanumeric characters (Unicode), lowercased ([`words`]).
//!   Unlike scikit-learn's default token pattern, a single character is a word and `_`
//!   is not part of one.
//! - **Weights**: tf = the word's count in the text; idf = ln((1 + N) / (1 + df)) + 1, N
//!   the number of documents, df the number holding the word (scikit-learn's
//!   `TfidfVectorizer(smooth_idf=True, sublinear_tf=False)`); weight = tf · idf. A query
//!   is weighed with the documents' idf; its words that no document holds are dropped.
//! - **Similarity**: the cosine of the two weight vectors (each L2-normalised); 0 when
//!   either has no weighted word.
//!
//! Vectors are kept sparse and sorted by word, so every sum runs in the same order and
//! the similarities are the same bits on every run.

use std::collections::HashMap;

/// The words of `text`: its maximal runs of alphanumeric characters, lowercased, in order.
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in text.chars() {
        if c.is_alphanumeric() {
            cur.extend(c.to_lowercase());
        } else if !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// TF-IDF vectors of a fixed collection of documents.
#[derive(Debug, Clone)]
pub struct TfIdf {
    /// Word → its index, in order of first appearance.
    vocab: HashMap<String, usize>,
    /// Per word index, its idf.
    idf: Vec<f64>,
    /// Per document, its L2-normalised weights as (word index, weight), sorted by index.
    docs: Vec<Vec<(usize, f64)>>,
}

impl TfIdf {
    /// The vectors of `docs` (idf counted over them).
    pub fn fit<S: AsRef<str>>(docs: &[S]) -> TfIdf {
        let mut vocab: HashMap<String, usize> = HashMap::new();
        let mut df: Vec<usize> = Vec::new();
        let mut counts: Vec<Vec<(usize, f64)>> = Vec::with_capacity(docs.len());
        for d in docs {
            let mut tf: HashMap<usize, f64> = HashMap::new();
            for w in words(d.as_ref()) {
                let next = vocab.len();
                let i = *vocab.entry(w).or_insert(next);
                if i == df.len() {
                    df.push(0);
                }
                *tf.entry(i).or_insert(0.0) += 1.0;
            }
            let mut v: Vec<(usize, f64)> = tf.into_iter().collect();
            v.sort_unstable_by_key(|(i, _)| *i);
            for (i, _) in &v {
                df[*i] += 1;
            }
            counts.push(v);
        }
        let n = docs.len() as f64;
        let idf: Vec<f64> = df
            .iter()
            .map(|&d| ((1.0 + n) / (1.0 + d as f64)).ln() + 1.0)
            .collect();
        let docs = counts
            .into_iter()
            .map(|mut v| {
                for (i, x) in v.iter_mut() {
                    *x *= idf[*i];
                }
                normalise(&mut v);
                v
            })
            .collect();
        TfIdf { vocab, idf, docs }
    }

    /// The number of documents.
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    /// The idf of `word` (already lowercased), `None` when no document holds it.
    pub fn idf(&self, word: &str) -> Option<f64> {
        self.vocab.get(word).map(|&i| self.idf[i])
    }

    /// The normalised weights of `text` under the documents' idf (words no document
    /// holds dropped), sorted by word index.
    fn vector(&self, text: &str) -> Vec<(usize, f64)> {
        let mut tf: HashMap<usize, f64> = HashMap::new();
        for w in words(text) {
            if let Some(&i) = self.vocab.get(&w) {
                *tf.entry(i).or_insert(0.0) += 1.0;
            }
        }
        let mut v: Vec<(usize, f64)> = tf.into_iter().map(|(i, c)| (i, c * self.idf[i])).collect();
        v.sort_unstable_by_key(|(i, _)| *i);
        normalise(&mut v);
        v
    }

    /// The cosine similarity of `query` to every document, in document order.
    pub fn similarities(&self, query: &str) -> Vec<f64> {
        let q = self.vector(query);
        self.docs.iter().map(|d| dot(&q, d)).collect()
    }

    /// The `n` documents most similar to `query` (all when `n` is at least their
    /// number), as (document index, similarity), most similar first; equal similarities
    /// in document order.
    pub fn top(&self, query: &str, n: usize) -> Vec<(usize, f64)> {
        let mut s: Vec<(usize, f64)> = self.similarities(query).into_iter().enumerate().collect();
        // A stable sort keeps document order among equals.
        s.sort_by(|a, b| b.1.total_cmp(&a.1));
        s.truncate(n);
        s
    }
}

fn normalise(v: &mut [(usize, f64)]) {
    let norm = v.iter().map(|(_, x)| x * x).sum::<f64>().sqrt();
    if norm > 0.0 {
        for (_, x) in v.iter_mut() {
            *x /= norm;
        }
    }
}

/// The dot product of two sparse vectors sorted by index.
fn dot(a: &[(usize, f64)], b: &[(usize, f64)]) -> f64 {
    let (mut i, mut j, mut s) = (0, 0, 0.0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                s += a[i].1 * b[j].1;
                i += 1;
                j += 1;
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(x: f64, y: f64) {
        assert!((x - y).abs() < 1e-12, "{x} != {y}");
    }

    #[test]
    fn words_are_lowercase_alphanumeric_runs() {
        assert_eq!(
            words("The CAT's 2nd mat—Über_alles!"),
            ["the", "cat", "s", "2nd", "mat", "über", "alles"]
        );
        assert!(words(" ,.; ").is_empty());
    }

    /// By hand. Documents d0 = "the cat sat", d1 = "The dog sat.", d2 = "a bird, a".
    /// N = 3; df: the 2, sat 2, cat 1, dog 1, a 1, bird 1, so
    ///   idf(df=2) = ln(4/3) + 1 = 1.2876820724517808 (i2),
    ///   idf(df=1) = ln(4/2) + 1 = 1.6931471805599454 (i1).
    /// d0 = (the i2, cat i1, sat i2), |d0|² = 2·i2² + i1² = 2·1.6581251197137132 +
    /// 2.8667473750380923 = 6.183, |d0| = 2.4865634145272706; d1 has the same norm.
    /// Query "The cat!" = (the i2, cat i1), |q| = √(i2² + i1²) = 2.1271747682670097:
    ///   cos(q, d0) = (i2² + i1²)/(|q||d0|) = 4.5248724947518055/5.289353… = 0.8554677334345862,
    ///   cos(q, d1) = i2²/(|q||d1|) = 0.3134834273358341, cos(q, d2) = 0.
    /// Query "a": d2 = (a 2·i1, bird i1), so cos = 2i1/(i1√5) = 2/√5 = 0.894427190999916.
    #[test]
    fn a_hand_computed_example() {
        let t = TfIdf::fit(&["the cat sat", "The dog sat.", "a bird, a"]);
        assert_eq!(t.len(), 3);
        close(t.idf("the").unwrap(), 1.2876820724517808);
        close(t.idf("bird").unwrap(), 1.6931471805599454);
        assert_eq!(t.idf("zebra"), None);
        let s = t.similarities("The cat!");
        close(s[0], 0.8554677334345862);
        close(s[1], 0.3134834273358341);
        close(s[2], 0.0);
        // Repeating every word scales the vector, not its direction.
        close(t.similarities("the CAT the cat")[0], 0.8554677334345862);
        close(t.similarities("a")[2], 2.0 / 5f64.sqrt());
        let top = t.top("The cat!", 2);
        assert_eq!(top.iter().map(|x| x.0).collect::<Vec<_>>(), [0, 1]);
        close(top[0].1, 0.8554677334345862);
    }

    #[test]
    fn ties_go_in_document_order_and_unknown_words_weigh_nothing() {
        let t = TfIdf::fit(&["the cat sat", "The dog sat.", "a bird, a"]);
        // "sat": d0 and d1 hold it once and have the same norm.
        let top = t.top("sat", 3);
        assert_eq!(top.iter().map(|x| x.0).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(top[0].1, top[1].1);
        assert_eq!(t.top("sat", 1)[0].0, 0);
        // No known word: every similarity 0, documents in order; n beyond N gives N.
        let top = t.top("zebra", 10);
        assert_eq!(top, [(0, 0.0), (1, 0.0), (2, 0.0)]);
        assert!(TfIdf::fit::<&str>(&[]).top("x", 3).is_empty());
    }
}
