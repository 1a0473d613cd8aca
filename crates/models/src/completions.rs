//! The legacy Completions API (`POST {base}/completions`) of OpenAI-compatible servers:
//! prompts rendered by Shammie with a [`Template`] (a hand-written format, or a GGUF's
//! own chat template), generation, and continuation scoring
//! with `echo` (as lm-evaluation-harness does).
//!
//! # Scoring
//!
//! For each continuation the server is sent `prompt + continuation` with `echo: true,
//! logprobs: 1, max_tokens: 1, temperature: 0` and answers with the tokens of the whole
//! text, each with its character offset (`text_offset`) and log-probability given
//! everything before it (`token_logprobs`; the first token has none: `null`), followed by
//! the one generated token. The continuation's log-probability is the sum over the tokens
//! that hold any of its characters: those that start at or after the continuation's
//! character offset and end no later than the end of the echoed text, **and a token that
//! straddles the boundary** (starts in the prompt, ends in the continuation: the server's
//! tokenizer merged the two). The straddling token is counted because without it the
//! continuation's first characters would not be scored at all; its log-probability is
//! then that of the merged token after the prompt's earlier part, which is the nearest
//! the server can give. Generated tokens (offset at or past the end of the echoed text)
//! never count. Offsets are in characters (Unicode scalar values, as Python's `len`); a
//! server that puts text before the echo (a `<bos>`) is handled by finding the sent text
//! in the echoed one; a server that sends no offsets (or SGLang's `-1`) has its tokens
//! placed by their lengths, against their own joined text. A `null` log-probability among the counted tokens (an empty prompt)
//! is an error, never a zero.
//!
//! Servers tokenise the joined text, whereas `local:` tokenises prompt and continuation
//! apart; for the usual continuations (a word after a space or a quote) the two agree
//! token for token, which the recorded llama.cpp fixture checks.

use serde_json::{json, Value};
use shammie_core::{
    Completion, ContinuationScore, GenerateRequest, StopReason, TokenLogprob, TopLogprob, Usage,
};

use crate::template::{Format, Template};
use crate::ModelError;

fn bad(what: impl Into<String>) -> ModelError {
    ModelError::Malformed(what.into())
}

/// The body that scores `continuation` after `prompt`.
pub(crate) fn scoring_body(model: &str, prompt: &str, continuation: &str) -> Value {
    json!({
        "model": model,
        "prompt": format!("{prompt}{continuation}"),
        "max_tokens": 1,
        "echo": true,
        "logprobs": 1,
        "temperature": 0.0,
    })
}

/// The body that generates after the rendered prompt of `req` (`n` choices when given).
/// A conversation a GGUF's template refuses is an error, before anything is sent.
pub(crate) fn generation_body(
    model: &str,
    template: &Template,
    req: &GenerateRequest,
    n: Option<usize>,
) -> Result<Value, ModelError> {
    let prompt = render(template, req)?;
    let mut stop: Vec<String> = req.stop.clone();
    for s in template.stops_for(req) {
        if !stop.contains(&s) {
            stop.push(s);
        }
    }
    let mut b = json!({
        "model": model,
        "prompt": prompt,
        "max_tokens": req.max_tokens,
        "stop": stop,
    });
    let o = b.as_object_mut().expect("an object");
    if let Some(t) = req.temperature {
        o.insert("temperature".into(), json!(t));
    }
    if let Some(p) = req.top_p {
        o.insert("top_p".into(), json!(p));
    }
    if let Some(s) = req.seed {
        o.insert("seed".into(), json!(s));
    }
    if let Some(k) = req.top_logprobs.filter(|k| *k > 0) {
        o.insert("logprobs".into(), json!(k));
    }
    if let Some(n) = n {
        o.insert("n".into(), json!(n));
    }
    Ok(b)
}

/// The prompt text of `req`; a template's refusal is a permanent error (nothing is sent).
pub(crate) fn render(template: &Template, req: &GenerateRequest) -> Result<String, ModelError> {
    template
        .render(req)
        .map_err(|e| ModelError::Unsupported(e.to_string()))
}

/// The choices of a completions response, in `index` order.
pub(crate) fn choices(v: &Value) -> Result<Vec<&Value>, ModelError> {
    let mut cs: Vec<&Value> = v
        .get("choices")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("completion without choices"))?
        .iter()
        .collect();
    if cs.is_empty() {
        return Err(bad("completion without choices"));
    }
    cs.sort_by_key(|c| c.get("index").and_then(Value::as_u64).unwrap_or(0));
    Ok(cs)
}

/// One generated choice as a completion (usage filled in by the caller); `stops` are the
/// template's own stop strings (a choice that ended on one ended its turn).
pub(crate) fn parse_choice(choice: &Value, stops: &[String]) -> Result<Completion, ModelError> {
    let text = choice
        .get("text")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("completion choice without text"))?
        .to_string();
    let stop_reason = match choice.get("finish_reason").and_then(Value::as_str) {
        // vLLM says which stop string ended it (`stop_reason`); a template's own stop is
        // the end of the turn.
        Some("stop") => match choice.get("stop_reason").and_then(Value::as_str) {
            Some(s)
                if !Format::ALL.iter().any(|f| f.stops().contains(&s))
                    && !stops.iter().any(|x| x == s) =>
            {
                StopReason::StopSequence
            }
            _ => StopReason::EndTurn,
        },
        Some("length") => StopReason::MaxTokens,
        _ => StopReason::Other,
    };
    let logprobs = match choice.get("logprobs") {
        Some(lp @ Value::Object(_)) => Some(legacy_logprobs(lp)?),
        _ => None,
    };
    Ok(Completion {
        text,
        logprobs,
        continuations: None,
        tool_calls: Vec::new(),
        stop_reason,
        usage: Usage::default(),
        meta: Default::default(),
    })
}

/// `{"tokens": […], "token_logprobs": […], "top_logprobs": [{token: logprob}, …]}`.
fn legacy_logprobs(lp: &Value) -> Result<Vec<TokenLogprob>, ModelError> {
    let tokens = lp
        .get("tokens")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("logprobs without tokens"))?;
    let lps = lp
        .get("token_logprobs")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("logprobs without token_logprobs"))?;
    let tops = lp.get("top_logprobs").and_then(Value::as_array);
    tokens
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let token = t.as_str().ok_or_else(|| bad("a logprobs token"))?;
            let logprob = lps
                .get(i)
                .and_then(Value::as_f64)
                .ok_or_else(|| bad(format!("no logprob for generated token {i}")))?;
            let mut top: Vec<TopLogprob> = tops
                .and_then(|a| a.get(i))
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| {
                            Some(TopLogprob {
                                token: k.clone(),
                                logprob: v.as_f64()?,
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            top.sort_by(|a, b| b.logprob.total_cmp(&a.logprob));
            Ok(TokenLogprob {
                token: token.to_string(),
                logprob,
                top,
            })
        })
        .collect()
}

/// The score of `continuation` after `prompt` from an echo response (see the module
/// documentation for which tokens count).
pub(crate) fn score(
    v: &Value,
    prompt: &str,
    continuation: &str,
) -> Result<ContinuationScore, ModelError> {
    let choice = choices(v)?[0];
    let lp = choice
        .get("logprobs")
        .filter(|l| l.is_object())
        .ok_or_else(|| {
            bad("the echo came back without logprobs (llama-cpp-python needs --logits_all true)")
        })?;
    let tokens = lp
        .get("tokens")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("echo logprobs without tokens"))?;
    let lps = lp
        .get("token_logprobs")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("echo logprobs without token_logprobs"))?;
    if lps.len() != tokens.len() {
        return Err(bad(format!(
            "echo logprobs: {} tokens but {} logprobs",
            tokens.len(),
            lps.len()
        )));
    }
    let token_text: Vec<&str> = tokens
        .iter()
        .map(|t| {
            t.as_str()
                .ok_or_else(|| bad("an echo token is not a string"))
        })
        .collect::<Result<_, _>>()?;
    // Offsets as sent; where a server sends none (or SGLang's -1), the running sum of the
    // tokens' lengths, placed against the tokens' own text.
    let sent: Option<Vec<i64>> = lp
        .get("text_offset")
        .and_then(Value::as_array)
        .map(|o| o.iter().map(|x| x.as_i64().unwrap_or(-1)).collect());
    let full = format!("{prompt}{continuation}");
    let text = choice.get("text").and_then(Value::as_str).unwrap_or("");
    let running: Vec<usize> = token_text
        .iter()
        .scan(0usize, |at, t| {
            let o = *at;
            *at += t.chars().count();
            Some(o)
        })
        .collect();
    let (offsets, reference): (Vec<usize>, String) = match sent {
        Some(o) if o.len() == tokens.len() && o.iter().all(|x| *x >= 0) => {
            let o: Vec<usize> = o.into_iter().map(|x| x as usize).collect();
            // Offsets into the echoed text — unless the tokens are not where they say
            // (llama-cpp-python echoes special tokens as no text and counts offsets along
            // the tokens' own text): then the tokens' own text.
            if offsets_fit(text, &o, &token_text) {
                (o, text.to_string())
            } else {
                (running, token_text.concat())
            }
        }
        Some(o) if o.len() != tokens.len() => {
            return Err(bad(
                "echo logprobs: text_offset and tokens differ in length",
            ))
        }
        _ => (running, token_text.concat()),
    };
    let (boundary, end) = if reference.is_empty() || reference.starts_with(&full) {
        (prompt.chars().count(), full.chars().count())
    } else if let Some(b) = reference.find(&full) {
        // Characters before the sent text in what the offsets count (e.g. a `<bos>`).
        let shift = reference[..b].chars().count();
        (shift + prompt.chars().count(), shift + full.chars().count())
    } else {
        // The tokens' text lacks the prompt's special tokens (`<|im_start|>` echoed as no
        // text), so the sent text is not in it — but its end is: the continuation ends
        // where the generated text (what the echoed `text` has after the sent text)
        // begins.
        let generated = text
            .find(&full)
            .map(|i| &text[i + full.len()..])
            .filter(|g| reference.ends_with(g))
            .ok_or_else(|| bad("the server did not echo the text it was sent"))?;
        let end = reference.chars().count() - generated.chars().count();
        let boundary = end
            .checked_sub(continuation.chars().count())
            .filter(|&b| {
                reference
                    .chars()
                    .skip(b)
                    .take(end - b)
                    .eq(continuation.chars())
            })
            .ok_or_else(|| bad("the server did not echo the text it was sent"))?;
        (boundary, end)
    };
    let mut sum = 0.0;
    let mut count = 0u32;
    for (i, (&start, text)) in offsets.iter().zip(&token_text).enumerate() {
        let stop = offsets
            .get(i + 1)
            .copied()
            .unwrap_or(start + text.chars().count())
            .max(start + text.chars().count());
        // Echoed (not generated) and holding a character of the continuation.
        if start >= end || stop <= boundary {
            continue;
        }
        let lp = lps[i].as_f64().ok_or_else(|| {
            bad(format!(
                "token {i} ({text:?}) of the continuation has no logprob"
            ))
        })?;
        sum += lp;
        count += 1;
    }
    if count == 0 {
        return Err(bad(format!(
            "no echoed token holds the continuation {continuation:?}"
        )));
    }
    Ok(ContinuationScore {
        logprob: sum,
        tokens: count,
    })
}

/// Whether each token's text stands at its offset in `text` (offsets in characters).
fn offsets_fit(text: &str, offsets: &[usize], tokens: &[&str]) -> bool {
    let chars: Vec<char> = text.chars().collect();
    offsets.iter().zip(tokens).all(|(&o, t)| {
        let n = t.chars().count();
        n == 0 || (o + n <= chars.len() && chars[o..o + n].iter().copied().eq(t.chars()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo of `Human: Hi\n\nAssistant: "yes` as llama-cpp-python sends it (offsets in
    /// characters, the first logprob null, one generated token at the end).
    fn echo(tokens: &[(&str, Option<f64>)], text: &str) -> Value {
        let mut at = 0;
        let mut offsets = Vec::new();
        for (t, _) in tokens {
            offsets.push(at);
            at += t.chars().count();
        }
        json!({"choices": [{"index": 0, "text": text, "logprobs": {
            "tokens": tokens.iter().map(|t| t.0).collect::<Vec<_>>(),
            "token_logprobs": tokens.iter().map(|t| t.1).collect::<Vec<_>>(),
            "text_offset": offsets,
        }}]})
    }

    #[test]
    fn sums_the_continuations_tokens_only() {
        let v = echo(
            &[
                ("Human", None),
                (":", Some(-9.0)),
                (" é", Some(-13.0)),
                ("\n\n", Some(-3.5)),
                ("Assistant", Some(-10.5)),
                (":", Some(-1.0)),
                (" \"", Some(-6.0)),
                ("yes", Some(-0.25)),
                (" sir", Some(-2.0)),
                ("\"", Some(-0.5)),
            ],
            "Human: é\n\nAssistant: \"yes sir\"",
        );
        let s = score(&v, "Human: é\n\nAssistant: \"", "yes sir").unwrap();
        assert_eq!((s.logprob, s.tokens), (-2.25, 2));
        // The quote is the continuation's first character now.
        let s = score(&v, "Human: é\n\nAssistant:", " \"yes sir").unwrap();
        assert_eq!((s.logprob, s.tokens), (-8.25, 3));
    }

    #[test]
    fn a_straddling_token_counts_and_a_bos_before_the_echo_is_skipped() {
        let v = echo(
            &[
                ("<bos>", None),
                ("Assistant", Some(-1.0)),
                (": (A", Some(-4.0)),
                (")", Some(-0.125)),
                ("\n", Some(-3.0)),
            ],
            "<bos>Assistant: (A)\n",
        );
        let s = score(&v, "Assistant: (", "A)").unwrap();
        assert_eq!((s.logprob, s.tokens), (-4.125, 2));
    }

    #[test]
    fn without_offsets_the_tokens_are_placed_by_their_lengths() {
        // SGLang sends text_offset -1; a <bos> token's text comes first.
        let mut v = echo(
            &[
                ("<bos>", None),
                ("Assistant", Some(-1.0)),
                (":", Some(-2.0)),
                (" yes", Some(-0.5)),
                ("!", Some(-3.0)),
            ],
            "Assistant: yes!",
        );
        v["choices"][0]["logprobs"]["text_offset"] = json!([-1, -1, -1, -1, -1]);
        let s = score(&v, "Assistant:", " yes").unwrap();
        assert_eq!((s.logprob, s.tokens), (-0.5, 1));
        v["choices"][0]["logprobs"]
            .as_object_mut()
            .unwrap()
            .remove("text_offset");
        let s = score(&v, "Assistant:", " yes").unwrap();
        assert_eq!((s.logprob, s.tokens), (-0.5, 1));
    }

    #[test]
    fn a_null_logprob_in_the_continuation_is_an_error() {
        let v = echo(&[("yes", None), ("!", Some(-1.0))], "yes!");
        assert!(score(&v, "", "yes").is_err());
        let v = json!({"choices": [{"index": 0, "text": "x", "logprobs": null}]});
        let e = score(&v, "", "x").unwrap_err().to_string();
        assert!(e.contains("--logits_all"), "{e}");
    }

    /// llama-cpp-python on a chat prompt: special tokens echoed as empty strings, offsets
    /// counted along the tokens' own text, the echoed `text` holding them in full.
    #[test]
    fn special_tokens_echoed_as_nothing_are_placed_from_the_end() {
        let prompt = "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nSay \"";
        let toks: &[(&str, Option<f64>)] = &[
            ("", None),
            ("user", Some(-1.0)),
            ("\n", Some(-1.0)),
            ("Hi", Some(-1.0)),
            ("", Some(-1.0)),
            ("\n", Some(-1.0)),
            ("", Some(-1.0)),
            ("assistant", Some(-1.0)),
            ("\n", Some(-1.0)),
            ("Say", Some(-1.0)),
            (" \"", Some(-1.0)),
            ("y", Some(-0.5)),
            ("es", Some(-0.25)),
            (";", Some(-9.0)),
        ];
        let v = echo(toks, &format!("{prompt}yes;"));
        let s = score(&v, prompt, "yes").unwrap();
        assert_eq!((s.logprob, s.tokens), (-0.75, 2));
        // A continuation the echo does not end with is an error, never a guess.
        assert!(score(&v, prompt, "no").is_err());
    }

    #[test]
    fn generation_body_renders_and_adds_the_template_stop() {
        let mut r = GenerateRequest::user("Hi", 5);
        r.prefill = Some("Sure,".into());
        r.stop = vec!["END".into()];
        r.top_logprobs = Some(3);
        let b = generation_body("m", &Template::Format(Format::Base), &r, Some(4)).unwrap();
        assert_eq!(b["prompt"], "Human: Hi\n\nAssistant: Sure,");
        assert_eq!(b["stop"], json!(["END", "\n\nHuman:"]));
        assert_eq!(
            (b["logprobs"].clone(), b["n"].clone()),
            (json!(3), json!(4))
        );
        let c = parse_choice(
            &json!({"index": 0, "text": " ok", "finish_reason": "stop",
            "logprobs": {"tokens": [" ok"], "token_logprobs": [-0.5],
            "top_logprobs": [{" no": -2.0, " ok": -0.5}], "text_offset": [27]}}),
            &[],
        )
        .unwrap();
        assert_eq!(c.text, " ok");
        assert_eq!(c.stop_reason, StopReason::EndTurn);
        let lp = c.logprobs.unwrap();
        assert_eq!(lp[0].top[0].token, " ok");
        assert_eq!(lp[0].top[1].logprob, -2.0);
    }
}
