//! From a chat request to the text a model reads. The renderers live in
//! [`shammie_models`] — the hand-written formats in [`shammie_models::template`] (shared
//! with OpenAI-compatible servers reached through `/v1/completions`) and a GGUF's own
//! chat template in [`shammie_models::jinja`] — and this module picks one for a GGUF:
//! its own `tokenizer.chat_template` when it has one, else the base model format
//! ("Human: … Assistant:").

pub use shammie_models::jinja::{ChatTemplate, SpecialTexts, TemplateError};
pub use shammie_models::template::{Format, Template};

use shammie_tokenizer::{TokenKind, Tokenizer};

/// The texts of the vocabulary's BOS, EOS and end-of-turn tokens (a control token as it is
/// written, `<bos>`), and whether the tokenizer adds a BOS: what a chat template renders
/// with.
pub fn special_texts(tok: &Tokenizer) -> SpecialTexts {
    let text = |id: Option<u32>| {
        id.map(|id| match tok.kind(id) {
            Some(TokenKind::Control | TokenKind::UserDefined | TokenKind::Unknown) => {
                tok.raw_piece(id).unwrap_or_default().to_string()
            }
            _ => tok.token_str(id),
        })
    };
    SpecialTexts {
        bos: text(tok.bos()),
        eos: text(tok.eos()),
        eot: text(tok.eot()),
        add_bos: tok.add_bos_by_default(),
    }
}

/// How `local:` renders prompts for the GGUF `origin` (its path, named in errors) with
/// this tokenizer: the GGUF's own chat template when it has one — compiled now, so a
/// template this renderer cannot run is an error naming the file, never a silent
/// fallback — else the base-model format.
pub fn template_for(tok: &Tokenizer, origin: &str) -> Result<Template, TemplateError> {
    match tok.chat_template() {
        Some(src) if !src.trim().is_empty() => Ok(Template::Jinja(std::sync::Arc::new(
            ChatTemplate::new(src, special_texts(tok), origin)?,
        ))),
        _ => Ok(Template::Format(Format::Base)),
    }
}

/// The prompt's token ids: `text` (rendered by [`Template::render`]) tokenized with a BOS
/// in front when the vocabulary adds one (`tokenizer.ggml.add_bos_token`), as llama.cpp
/// does — a chat template's own BOS has already been taken off the text in that case.
pub fn prompt_ids(tok: &Tokenizer, text: &str) -> Vec<u32> {
    tok.encode(text, tok.add_bos_by_default())
}
