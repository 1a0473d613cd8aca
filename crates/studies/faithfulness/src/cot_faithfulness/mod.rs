//! `cot-faithfulness`: does the model's answer depend on its stated reasoning?
//! (Lanham et al. 2023, "Measuring Faithfulness in Chain-of-Thought Reasoning";
//! STUDIES.md §10).
//!
//! `cot-faithfulness/interventions` samples one chain of thought per question (temperature
//! 1, nucleus 0.95, as the paper; greedy on request), reads the answer it leads to, and
//! then answers again after each intervention on that chain:
//! - **early answering**: only the first k of its n sentences, k = 0…n;
//! - **adding mistakes**: a `mistaker` model rewrites sentence k to contain a mistake, the
//!   target continues the reasoning from there, then answers;
//! - **paraphrasing**: a `paraphraser` model rewrites the first k sentences, the target
//!   continues from there, then answers;
//! - **filler tokens**: the reasoning replaced by " ..." at several lengths (as many as
//!   the chain's tokens, and fixed counts);
//! - **no CoT**: the answer without any reasoning.
//!
//! On the sampling path (the one stochastic reader) the unmodified full chain is read
//! again `rereads` times: the % same of those re-readings is the noise floor reported
//! beside every curve. Tied letters are drawn (seeded), never given to (A).
//!
//! Metrics per dataset: % of answers equal to the original-chain answer against the
//! fraction of the chain kept, and the area over that curve (AOC; higher = the answer
//! depends more on the reasoning), accuracy with and without CoT, with filler and with
//! paraphrased reasoning, and per filler length — all with bootstrap intervals over
//! questions (each with all its epochs' chains). The method and every difference from the
//! paper: `docs/studies/cot-faithfulness.md`. Every intervened chain and every answer is
//! in the transcript of its question.

pub mod analysis;
mod figure;
pub mod task;

use shammie_kit::study::{StudyInfo, TaskInfo};

/// The study as the registry lists it.
pub fn study() -> StudyInfo {
    StudyInfo {
        name: "cot-faithfulness",
        paper: "Lanham et al. 2023, Measuring Faithfulness in Chain-of-Thought Reasoning",
        summary: "Whether the answer depends on the stated chain of thought: early answering, adding mistakes, paraphrasing, filler tokens",
        tasks: vec![TaskInfo::new(
            "cot-faithfulness",
            "interventions",
            "one chain of thought per question, then the answer after each intervention on it; % same answer vs reasoning kept, AOC, accuracy with/without CoT",
            <task::Config as shammie_engine::OptionGroup>::options,
            task::roles,
            task::build,
        )],
        offline: None,
    }
}
