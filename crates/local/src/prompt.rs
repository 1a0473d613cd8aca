//! From a chat request to the text a model reads: the formats live in
//! [`shammie_models::template`], shared with OpenAI-compatible servers reached through
//! `/v1/completions`, so both render the same text for the same model family.

pub use shammie_models::template::Format;
