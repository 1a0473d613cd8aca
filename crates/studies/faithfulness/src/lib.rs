//! `shammie-study-faithfulness`: the two reasoning-faithfulness studies, which share
//! most of their machinery.
//!
//! - [`cot_faithfulness`] (Lanham et al. 2023): does the answer depend on the stated
//!   chain of thought? Early answering, adding mistakes, paraphrasing, filler, no CoT.
//! - [`decomposition`] (Radhakrishnan et al. 2023): does answering through
//!   sub-questions make stated reasoning more faithful?
//!
//! What both share, on top of the multiple-choice data in `shammie-mcq`: the answer
//! conversation and how the answer letter is read ([`answer`]), edits of a reasoning
//! chain by a helper model ([`edits`]), and the data sets a run uses ([`data`]: the
//! AQuA-RAT test split from `shammie-data`, Apache-2.0, built into the binary, or user
//! files).
//!
//! Promises: an unusable helper edit is recorded as skipped, never patched; every
//! intervened chain and every answer is in the sample's transcript. Not here: the data
//! formats and the sentence splitter (`shammie-mcq`), provider specifics, printing, the
//! environment, files written.

pub mod answer;
pub mod cot_faithfulness;
pub mod data;
pub mod decomposition;
pub mod edits;

/// Reading the figures back, for their structure tests.
#[cfg(test)]
pub(crate) mod svg_test {
    /// The texts inside each panel (`<g class="panel">`), in order, and the number of
    /// markers (points) each panel draws.
    pub(crate) fn panels(svg: &str) -> Vec<(Vec<String>, usize)> {
        let doc = roxmltree::Document::parse(svg).expect("well-formed SVG");
        doc.descendants()
            .filter(|n| n.attribute("class") == Some("panel"))
            .map(|p| {
                let texts = p
                    .descendants()
                    .filter(|n| n.has_tag_name("text"))
                    .map(|t| {
                        t.descendants()
                            .filter(|x| x.is_text())
                            .filter_map(|x| x.text())
                            .collect::<String>()
                    })
                    .collect();
                let markers = p
                    .descendants()
                    .filter(|n| n.attribute("class") == Some("marker"))
                    .count();
                (texts, markers)
            })
            .collect()
    }

    /// Every text of the document (titles, subtitle, notes, labels).
    pub(crate) fn texts(svg: &str) -> Vec<String> {
        let doc = roxmltree::Document::parse(svg).expect("well-formed SVG");
        doc.descendants()
            .filter(|n| n.has_tag_name("text"))
            .map(|t| {
                t.descendants()
                    .filter(|x| x.is_text())
                    .filter_map(|x| x.text())
                    .collect::<String>()
            })
            .collect()
    }

    /// The numbers among `texts` (tick labels; `−` read as a minus sign).
    pub(crate) fn numbers(texts: &[String]) -> Vec<f64> {
        texts
            .iter()
            .filter_map(|t| t.replace('\u{2212}', "-").parse::<f64>().ok())
            .collect()
    }

    /// The document's width.
    pub(crate) fn width(svg: &str) -> f64 {
        let doc = roxmltree::Document::parse(svg).expect("well-formed SVG");
        doc.root_element()
            .attribute("width")
            .and_then(|w| w.parse().ok())
            .unwrap_or(0.0)
    }
}
