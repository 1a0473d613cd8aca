//! `shammie-kit`: what every study crate builds on.
//!
//! - [`answers`]: reading a Yes/No or letter answer from top-k log-probabilities or from
//!   sampled text; an answer that cannot be read is counted as unparseable, never guessed.
//! - [`cells`]: the one interval type and the one way to make a table cell of it.
//! - [`reader`]: the one answer reader (scoring, top-k logprobs or sampling, chosen from
//!   capabilities) and the one option group that configures it.
//! - [`jsonl`]: data files (whole text or JSONL) from disk or built into the binary,
//!   read alike by every loader (byte-order mark dropped, non-UTF-8 bytes and empty files
//!   refused), every problem reported as `FILE:LINE: …`.
//! - [`records`]: the checks every loader applies to each record (prompt size,
//!   duplicates).
//! - [`tags`]: the one `<tag>…</tag>` parser, for generators, decompositions and agent
//!   protocols alike.
//! - [`values`]: option values several studies share (data paths with a built-in
//!   default).
//! - [`scores`]: a study's typed per-sample scores, into and out of a record.
//! - [`lab`]: where a multi-stage study's training stage records the model it trained,
//!   how later stages read and bind it, and the per-item seeds reductions draw from.
//! - [`transcripts`]: the `Human:`/`Assistant:` transcript format of HH-RLHF.
//! - [`study`]: how a study describes itself to the registry (`StudyInfo`, `TaskInfo`,
//!   `OfflineAnalysis`), here so that study crates and the registry share it without a
//!   dependency cycle.
//!
//! What is not here: any study's protocol, prompts or data; no printing, no environment,
//! no files written.

pub mod answers;
pub mod cells;
pub mod jsonl;
pub mod lab;
pub mod reader;
pub mod records;
pub mod scores;
pub mod study;
#[cfg(feature = "testing")]
pub mod testing;
pub mod transcripts;
pub mod values;

/// The one `<tag>…</tag>` parser (byte spans into the text), shared with the agent loop.
pub use shammie_agent::tags;
