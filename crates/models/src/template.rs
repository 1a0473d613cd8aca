//! From a chat request to the text a model reads.
//!
//! A chat-tuned GGUF carries its chat template (`tokenizer.chat_template`); the local
//! runtime renders that template itself ([`crate::jinja::ChatTemplate`]), with its
//! defaults, generation prompt and special tokens, as Hugging Face and llama.cpp do. The
//! hand-written formats here ([`Format`]) are for models without a template — base models
//! such as the default Gemma 3 270M get the pretrained-style "Human: … Assistant:" format
//! that several of the studied papers used, and stop at the next "Human:" turn — and for
//! the `template=` names of OpenAI-compatible specs (Gemma turns, ChatML, Llama 3
//! headers, without any template's defaults).
//!
//! An OpenAI-compatible server reached through `/v1/completions` gets the text rendered
//! here with the spec's `template=`: a [`Format`] by name, or `gguf:FILE`, the GGUF's own
//! template — so the server and `local:` read the same prompt on the same weights.

use std::sync::Arc;

use shammie_core::{GenerateRequest, Role};

use crate::jinja::{ChatTemplate, TemplateError};

/// How a model's prompts are rendered: a hand-written [`Format`], or a model's own chat
/// template.
#[derive(Debug, Clone)]
pub enum Template {
    Format(Format),
    Jinja(Arc<ChatTemplate>),
}

impl From<Format> for Template {
    fn from(f: Format) -> Self {
        Template::Format(f)
    }
}

impl Template {
    /// The prompt text (a prefill appended). Hand-written formats never fail; a chat
    /// template fails on a conversation it refuses (`raise_exception`), naming its model.
    pub fn render(&self, req: &GenerateRequest) -> Result<String, TemplateError> {
        // A raw request is its text as it stands, whatever the model's format.
        if req.raw {
            return Ok(req.raw_text());
        }
        match self {
            Template::Format(f) => Ok(f.render(req)),
            Template::Jinja(t) => t.render(req),
        }
    }

    /// The stops for `req`: none for a raw request (plain continuation), else
    /// [`Template::stops`].
    pub fn stops_for(&self, req: &GenerateRequest) -> Vec<String> {
        if req.raw {
            Vec::new()
        } else {
            self.stops()
        }
    }

    /// Stop strings: the format's, or the template vocabulary's end-of-turn and
    /// end-of-sequence texts.
    pub fn stops(&self) -> Vec<String> {
        match self {
            Template::Format(f) => f.stops().iter().map(|s| s.to_string()).collect(),
            Template::Jinja(t) => t.stops(),
        }
    }

    /// The text that ends an assistant turn (what fine-tuning teaches a model to write
    /// last): the format's stop, or the vocabulary's end-of-turn (else end-of-sequence).
    pub fn turn_end(&self) -> String {
        self.stops().into_iter().next().unwrap_or_default()
    }

    /// The pretrained-style `Human:`/`Assistant:` format (a model without a chat template).
    pub fn is_base(&self) -> bool {
        matches!(self, Template::Format(Format::Base))
    }

    /// How a spec or a log names it: the format's name, or `gguf`.
    pub fn name(&self) -> &str {
        match self {
            Template::Format(f) => f.name(),
            Template::Jinja(_) => "gguf",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// `Human: …\n\nAssistant: …`
    Base,
    /// `<start_of_turn>user\n…<end_of_turn>\n<start_of_turn>model\n`
    Gemma,
    /// `<|im_start|>user\n…<|im_end|>\n<|im_start|>assistant\n`
    ChatMl,
    /// `<|start_header_id|>user<|end_header_id|>\n\n…<|eot_id|>`
    Llama3,
}

impl Format {
    /// Every format, in the order their names are listed.
    pub const ALL: [Format; 4] = [Format::Base, Format::Gemma, Format::ChatMl, Format::Llama3];

    pub fn detect(chat_template: Option<&str>) -> Format {
        match chat_template {
            Some(t) if t.contains("<start_of_turn>") => Format::Gemma,
            Some(t) if t.contains("<|im_start|>") => Format::ChatMl,
            Some(t) if t.contains("<|start_header_id|>") => Format::Llama3,
            _ => Format::Base,
        }
    }

    /// The name a spec gives it (`template=human-assistant`, `gemma`, `chatml`, `llama3`).
    pub fn name(self) -> &'static str {
        match self {
            Format::Base => "human-assistant",
            Format::Gemma => "gemma",
            Format::ChatMl => "chatml",
            Format::Llama3 => "llama3",
        }
    }

    /// The format a spec names, if it names one.
    pub fn from_name(s: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == s)
    }

    /// Stop strings the format implies (the start of the next user turn).
    pub fn stops(self) -> &'static [&'static str] {
        match self {
            Format::Base => &["\n\nHuman:"],
            Format::Gemma => &["<end_of_turn>"],
            Format::ChatMl => &["<|im_end|>"],
            Format::Llama3 => &["<|eot_id|>"],
        }
    }

    /// The prompt text (without the BOS token; the tokenizer adds it).
    pub fn render(self, req: &GenerateRequest) -> String {
        let mut s = String::new();
        let prefill = req.prefill.as_deref().unwrap_or("");
        match self {
            Format::Base => {
                if let Some(sys) = &req.system {
                    s.push_str(sys.trim_end());
                    s.push_str("\n\n");
                }
                for m in &req.messages {
                    let who = match m.role {
                        Role::User => "Human",
                        Role::Assistant => "Assistant",
                    };
                    s.push_str(&format!("{who}: {}\n\n", m.content.trim_end()));
                }
                s.push_str("Assistant:");
                if !prefill.is_empty() {
                    s.push(' ');
                    s.push_str(prefill);
                }
            }
            Format::Gemma => {
                // Gemma has no system role: the system text opens the first user turn.
                let mut first = true;
                for m in &req.messages {
                    let role = if m.role == Role::User {
                        "user"
                    } else {
                        "model"
                    };
                    s.push_str(&format!("<start_of_turn>{role}\n"));
                    if first && m.role == Role::User {
                        if let Some(sys) = &req.system {
                            s.push_str(sys.trim_end());
                            s.push_str("\n\n");
                        }
                    }
                    first = false;
                    s.push_str(&m.content);
                    s.push_str("<end_of_turn>\n");
                }
                s.push_str("<start_of_turn>model\n");
                s.push_str(prefill);
            }
            Format::ChatMl => {
                if let Some(sys) = &req.system {
                    s.push_str(&format!("<|im_start|>system\n{sys}<|im_end|>\n"));
                }
                for m in &req.messages {
                    let role = if m.role == Role::User {
                        "user"
                    } else {
                        "assistant"
                    };
                    s.push_str(&format!("<|im_start|>{role}\n{}<|im_end|>\n", m.content));
                }
                s.push_str("<|im_start|>assistant\n");
                s.push_str(prefill);
            }
            Format::Llama3 => {
                if let Some(sys) = &req.system {
                    s.push_str(&format!(
                        "<|start_header_id|>system<|end_header_id|>\n\n{sys}<|eot_id|>"
                    ));
                }
                for m in &req.messages {
                    let role = if m.role == Role::User {
                        "user"
                    } else {
                        "assistant"
                    };
                    s.push_str(&format!(
                        "<|start_header_id|>{role}<|end_header_id|>\n\n{}<|eot_id|>",
                        m.content
                    ));
                }
                s.push_str("<|start_header_id|>assistant<|end_header_id|>\n\n");
                s.push_str(prefill);
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shammie_core::Message;

    fn req() -> GenerateRequest {
        let mut r = GenerateRequest::user("Is it?", 5);
        r.system = Some("Be brief.".into());
        r.messages.push(Message::assistant("Yes."));
        r.messages.push(Message::user("Sure?"));
        r.prefill = Some("(".into());
        r
    }

    #[test]
    fn a_raw_request_is_its_text_with_no_format_and_no_stop() {
        let mut r = req();
        r.raw = true;
        for f in Format::ALL {
            let t = Template::Format(f);
            assert_eq!(t.render(&r).unwrap(), "Be brief.Is it?Yes.Sure?(");
            assert!(t.stops_for(&r).is_empty());
            assert_eq!(t.stops_for(&req()), t.stops());
        }
    }

    #[test]
    fn base_format() {
        assert_eq!(
            Format::Base.render(&req()),
            "Be brief.\n\nHuman: Is it?\n\nAssistant: Yes.\n\nHuman: Sure?\n\nAssistant: ("
        );
        assert_eq!(
            Format::Base.render(&GenerateRequest::user("Hi", 1)),
            "Human: Hi\n\nAssistant:"
        );
    }

    #[test]
    fn chat_formats() {
        assert_eq!(
            Format::Gemma.render(&req()),
            "<start_of_turn>user\nBe brief.\n\nIs it?<end_of_turn>\n<start_of_turn>model\nYes.<end_of_turn>\n<start_of_turn>user\nSure?<end_of_turn>\n<start_of_turn>model\n("
        );
        assert!(Format::ChatMl
            .render(&req())
            .starts_with("<|im_start|>system\nBe brief.<|im_end|>\n"));
        assert!(Format::Llama3
            .render(&req())
            .ends_with("<|start_header_id|>assistant<|end_header_id|>\n\n("));
        assert_eq!(
            Format::detect(Some("{% ... <start_of_turn> ... %}")),
            Format::Gemma
        );
        assert_eq!(Format::detect(None), Format::Base);
    }

    #[test]
    fn names_round_trip() {
        for f in Format::ALL {
            assert_eq!(Format::from_name(f.name()), Some(f));
        }
        assert_eq!(Format::from_name("base"), None);
    }
}
