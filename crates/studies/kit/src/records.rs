//! Checks every loader applies to each record it reads, so that every study accepts and
//! refuses the same things:
//! - [`check_prompt_size`]: the text a record puts into a prompt is at most
//!   [`MAX_PROMPT_BYTES`] (a 50 MB "question" is a broken file, not a question);
//!
//! Each returns the message of a `FILE:LINE: …` error; the loader names file and line.

/// The most bytes of text one record may put into a prompt: 1 MiB, far beyond any
/// model's context window (about 250,000 tokens of English).
pub const MAX_PROMPT_BYTES: usize = 1 << 20;

/// Refuses a record whose prompt text (everything it shows the model: question, choices,
/// template…) is longer than [`MAX_PROMPT_BYTES`].
pub fn check_prompt_size(bytes: usize) -> Result<(), String> {
    if bytes > MAX_PROMPT_BYTES {
        return Err(format!(
            "the prompt text is {bytes} bytes, over the limit of {MAX_PROMPT_BYTES} bytes (1 MiB) for one record"
        ));
    }
    Ok(())
}
