//! `shammie-study-influence`: study `influence` (Grosse et al. 2023, STUDIES.md §8), which
//! training sequences most influence a model's completion of a query. One task,
//! `queries` ([`queries`]): candidate training documents filtered by TF-IDF similarity to
//! each query, EK-FAC influence scores of every candidate on every query's
//! log p(completion | prompt) computed by the run's lab on a local model, and their
//! analysis ([`analysis`]: the most positively and negatively influential sequences, how
//! sparse influence is, self-influence) with an HTML page of per-token heat maps and a
//! figure ([`report`]). The method and every difference from the paper:
//! `docs/studies/influence.md`.
//!
//! Promises: the HH-RLHF harmless-base test split (from `shammie-data`, MIT) and Shammie's
//! four queries (`data/queries.jsonl`) are built into the binary; any corpus or query
//! file of the formats in [`corpus`] can be given instead, and every problem in it is
//! reported as `FILE:LINE: …` before anything runs. The scoring stage is a deterministic
//! function of the options and the run seed.
//! Not here: the influence computation itself (the lab's, `shammie-influence` behind
//! the CLI), printing, the environment, files written (tables and report files go back
//! to the engine).

pub mod analysis;
pub mod corpus;
pub mod queries;
pub mod report;

use shammie_kit::study::{StudyInfo, TaskInfo};

/// The study as the registry lists it.
pub fn study() -> StudyInfo {
    StudyInfo {
        name: "influence",
        paper: "Grosse et al. 2023, Studying Large Language Model Generalization with Influence Functions",
        summary: "Which training sequences most influence a model's completion of a query: EK-FAC influence functions on a local model over TF-IDF-filtered candidates, with per-token attribution and how sparse influence is",
        tasks: vec![TaskInfo::new(
            "influence",
            "queries",
            "influence of every candidate training sequence on each query's log p(completion | prompt): the most helpful and harmful sequences with per-token heat maps, score distributions, self-influence",
            <queries::QueriesConfig as shammie_engine::OptionGroup>::options,
            queries::roles,
            queries::build,
        )],
        offline: None,
    }
}
