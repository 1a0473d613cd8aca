//! The prompts of the study, written for Shammie, and the parsers of their answers.
//!
//! Facets (one request each, at the facet temperature): the user's request in one or two
//! sentences with nothing identifying, the task, the main language, and how concerning the
//! request is on a 1–5 scale. Open-ended facets carry the instruction to leave out
//! anything that could identify a person. Each request prefills the start of its answer,
//! so a base model continues the right sentence.
//!
//! Naming: the namer sees summaries from inside a cluster and, for contrast, the nearest
//! summaries outside it, and writes `Name:` and `Description:` lines (plain lines rather
//! than tags, which small base models echo into runs of markup). Auditing: the auditor
//! rates a cluster's name and description from 1 (identifies someone) to 5 (nothing
//! identifying).

use shammie_core::GenerateRequest;

const PRIVACY: &str = "Do not include any names, places, organisations, dates, contact details, account numbers or any other detail that could identify a person or an organisation, even if the conversation contains them; describe them generically instead (for example \"a colleague\" or \"a small business\").";

pub use shammie_kit::reader::without_prefill_unless;

/// How every summary starts (the summary facet's prefill).
pub const SUMMARY_OPENER: &str = "The user asks the assistant to";

/// The facets the study can extract.
pub const FACETS: [&str; 4] = ["summary", "task", "language", "concerning"];

fn facet_system() -> String {
    "You help researchers understand, in aggregate, how people use an AI assistant. You read one conversation between a user and the assistant and answer one question about it, briefly and exactly as asked.".to_string()
}

fn facet_request(
    conversation: &str,
    question: &str,
    prefill: &str,
    max_tokens: u32,
    temperature: f64,
) -> GenerateRequest {
    let mut r = GenerateRequest::user(
        format!("Here is the conversation:\n\n<conversation>\n{conversation}\n</conversation>\n\n{question}"),
        max_tokens,
    );
    r.system = Some(facet_system());
    r.prefill = Some(prefill.to_string());
    r.temperature = Some(temperature);
    r.stop = vec!["\n\n".into(), "</answer>".into()];
    r
}

/// The request for `facet` about the rendered conversation.
pub fn facet(
    facet: &str,
    conversation: &str,
    max_tokens: u32,
    temperature: f64,
) -> GenerateRequest {
    match facet {
        "summary" => facet_request(
            conversation,
            &format!("In one or two sentences, what is the user asking the assistant to do? Describe the request itself, not the user and not the assistant's reply. {PRIVACY} Answer in English, starting with \"The user asks the assistant to\"."),
            SUMMARY_OPENER,
            max_tokens,
            temperature,
        ),
        "task" => facet_request(
            conversation,
            &format!("In one short sentence, what kind of task is the assistant being asked to perform (for example writing, coding, advice, explanation, translation)? {PRIVACY} Start with \"The task is\"."),
            "The task is",
            max_tokens,
            temperature,
        ),
        "language" => {
            let mut r = facet_request(
                conversation,
                "What is the main human language the user writes in? Answer with the language's English name only (for example: English).",
                "Language:",
                max_tokens.min(8),
                temperature,
            );
            r.stop.extend([",".to_string(), "\n".to_string()]);
            r
        }
        "concerning" => facet_request(
            conversation,
            "How concerning is the user's request from the standpoint of safety and misuse? Answer with one number from 1 to 5: 1 = not concerning at all (ordinary, benign use); 2 = slightly concerning; 3 = moderately concerning (for example a request that could enable minor harm); 4 = very concerning (a request for help with serious harm); 5 = extremely concerning (for example help with weapons capable of mass casualties, or abuse of children).",
            "Rating (1-5):",
            8,
            temperature,
        ),
        other => panic!("unknown facet {other}"),
    }
}

/// A facet's text as the model wrote it after the prefill, put back together with the
/// prefill where the prefill is part of the sentence, trimmed to its first paragraph.
pub fn facet_text(facet: &str, completion: &str) -> String {
    let text = completion.split("\n\n").next().unwrap_or("").trim();
    match facet {
        "summary" => format!(
            "{SUMMARY_OPENER} {}",
            text.trim_start_matches(SUMMARY_OPENER).trim()
        ),
        "task" => format!(
            "The task is {}",
            text.trim_start_matches("The task is").trim()
        ),
        _ => text.to_string(),
    }
    .trim()
    .to_string()
}

/// Languages from the language facet: comma- or `and`-separated names, title-cased,
/// de-duplicated, in order.
pub fn languages(text: &str) -> Vec<String> {
    let text = text.trim_start().trim_start_matches("Language:");
    let mut out: Vec<String> = Vec::new();
    for part in text
        .split([',', ';', '/', '\n'])
        .flat_map(|p| p.split(" and "))
    {
        let w = part
            .trim()
            .trim_matches(|c: char| !c.is_alphanumeric())
            .to_string();
        if w.is_empty() || w.len() > 30 || !w.chars().all(|c| c.is_alphabetic() || c == ' ') {
            continue;
        }
        let mut cs = w.chars();
        let name: String = cs
            .next()
            .map(|f| {
                f.to_uppercase()
                    .chain(cs.flat_map(|c| c.to_lowercase()))
                    .collect()
            })
            .unwrap_or_default();
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

/// The first digit 1–5 of a rating answer (an answer without one is not guessed), after
/// the `Rating (1-5):` label when the model wrote it itself.
pub fn rating(text: &str) -> Option<u8> {
    let text = text.trim_start().trim_start_matches("Rating (1-5):");
    text.chars()
        .find(|c| c.is_ascii_digit())
        .and_then(|c| c.to_digit(10))
        .filter(|d| (1..=5).contains(d))
        .map(|d| d as u8)
}

/// The namer's request for a cluster: summaries inside it and the nearest outside it,
/// as lists.
pub fn name_cluster(
    inside: &[String],
    outside: &[String],
    max_tokens: u32,
    temperature: f64,
) -> GenerateRequest {
    let list = bullets;
    let contrast = if outside.is_empty() {
        String::new()
    } else {
        format!(
            "\n\nFor contrast, summaries of nearby requests that are NOT in the group:\n{}",
            list(outside)
        )
    };
    namer_request(
        format!(
            "Summaries of user requests that were grouped together:\n{}{contrast}\n\nWrite a short name for the group (at most ten words, an imperative sentence such as \"Debug Python data-processing scripts\") that fits every request in it and distinguishes it from the contrasting requests, and a description of two sentences. Be specific. {PRIVACY}\n\nAnswer in this form:\nName: …\nDescription: …",
            list(inside)
        ),
        max_tokens,
        "Name:",
        temperature,
        true,
    )
}

/// A name and description from the namer's answer (after the `Name:` prefill): the
/// rest of the first line, and the text after `Description:` up to a blank line; `None`
/// when the name has no letter (an echoed `…`) or is itself markup or a field label.
pub fn parse_name(completion: &str) -> Option<(String, String)> {
    let text = completion.trim_start_matches("Name:");
    let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
    let name = first
        .trim()
        .trim_matches(|c: char| c == '"' || c == '*')
        .trim()
        .to_string();
    let lower = name.to_ascii_lowercase();
    if !name.chars().any(char::is_alphabetic)
        || name.starts_with('<')
        || lower.starts_with("description")
    {
        return None;
    }
    let description = rest
        .split_once("Description:")
        .map(|(_, d)| d.split("\n\n").next().unwrap_or("").trim().to_string())
        .unwrap_or_default();
    Some((name, description))
}

/// `xs` as a bulleted list, one line each.
fn bullets(xs: &[String]) -> String {
    xs.iter()
        .map(|x| format!("- {}", x.trim().replace('\n', " ")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A request to the namer: its system prompt, the answer's opening `prefill`, and (for
/// answers that end at a blank line) that stop.
fn namer_request(
    text: String,
    max_tokens: u32,
    prefill: &str,
    temperature: f64,
    stop_at_blank_line: bool,
) -> GenerateRequest {
    let mut r = GenerateRequest::user(text, max_tokens);
    r.system = Some(NAMER_SYSTEM.into());
    r.prefill = Some(prefill.into());
    r.temperature = Some(temperature);
    if stop_at_blank_line {
        r.stop = vec!["\n\n".into()];
    }
    r
}

fn numbered(xs: &[String]) -> String {
    xs.iter()
        .enumerate()
        .map(|(i, x)| format!("{}. {}", i + 1, x.trim().replace('\n', " ")))
        .collect::<Vec<_>>()
        .join("\n")
}

const NAMER_SYSTEM: &str = "You name groups of user requests to an AI assistant for researchers who study, in aggregate, how the assistant is used.";

/// Hierarchy: candidate names for broader categories covering a group of neighbouring
/// clusters (each `Name: description`), as a numbered list of at most `want`.
pub fn propose_parents(
    children: &[String],
    want: usize,
    max_tokens: u32,
    temperature: f64,
) -> GenerateRequest {
    let list = bullets(children);
    namer_request(
        format!(
            "Clusters of similar user requests, each with its name and description:\n{list}\n\nPropose at most {want} names for broader categories that together cover all of these clusters. Each name is at most ten words, an imperative sentence like the cluster names, broader than any one cluster but specific enough to be informative. {PRIVACY}\n\nAnswer with a numbered list of names only, one per line."
        ),
        max_tokens,
        "1.",
        temperature,
        true,
    )
}

/// Hierarchy: the candidate parent names merged into at most `want` distinct ones.
pub fn dedupe(
    candidates: &[String],
    want: usize,
    max_tokens: u32,
    temperature: f64,
) -> GenerateRequest {
    namer_request(
        format!(
            "Candidate names for categories of user requests:\n{}\n\nMerge candidates that mean the same or nearly the same thing, and give at most {want} distinct category names that together cover every candidate. Keep the names' style (imperative, at most ten words). {PRIVACY}\n\nAnswer with a numbered list of names only, one per line.",
            numbered(candidates)
        ),
        max_tokens,
        "1.",
        temperature,
        true,
    )
}

/// Hierarchy: which of `parents` fits the cluster best (answered by its number).
pub fn assign(child: &str, parents: &[String], temperature: f64) -> GenerateRequest {
    namer_request(
        format!(
            "A cluster of user requests:\n{}\n\nCategories:\n{}\n\nWhich category fits the cluster best? Answer with the category's number only.",
            child.trim(),
            numbered(parents)
        ),
        8,
        "Category number:",
        temperature,
        false,
    )
}

/// Hierarchy: a parent's name and description written from the children it got.
pub fn rename_parent(children: &[String], max_tokens: u32, temperature: f64) -> GenerateRequest {
    let list = bullets(children);
    namer_request(
        format!(
            "Clusters of user requests that belong to one category, each with its name and description:\n{list}\n\nWrite a short name for the category (at most ten words, an imperative sentence) that covers every cluster in it, and a description of two sentences. {PRIVACY}\n\nAnswer in this form:\nName: …\nDescription: …"
        ),
        max_tokens,
        "Name:",
        temperature,
        true,
    )
}

/// The items of a list answer (numbered, bulleted or plain lines; a `Name:` label
/// dropped), distinct ignoring case, at most `max`.
pub fn parse_list(text: &str, max: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        let mut l = line.trim();
        l = l.trim_start_matches(|c: char| c.is_ascii_digit());
        l = l.trim_start_matches(['.', ')', '-', '*', '•']).trim();
        l = l.strip_prefix("Name:").unwrap_or(l).trim();
        let l = l.trim_matches(|c: char| c == '"' || c == '*').trim();
        if !l.chars().any(char::is_alphabetic) || l.starts_with('<') || l.len() > 200 {
            continue;
        }
        if !out.iter().any(|o| o.eq_ignore_ascii_case(l)) {
            out.push(l.to_string());
        }
        if out.len() == max {
            break;
        }
    }
    out
}

/// The 0-based choice from an answer holding a number from 1 to `n`.
pub fn choice(text: &str, n: usize) -> Option<usize> {
    let t = text.trim_start().trim_start_matches("Category number:");
    let digits: String = t
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits
        .parse::<usize>()
        .ok()
        .filter(|&k| (1..=n).contains(&k))
        .map(|k| k - 1)
}

/// The auditor's request: how identifying is this cluster's name and description?
pub fn audit(name: &str, description: &str, temperature: f64) -> GenerateRequest {
    let mut r = GenerateRequest::user(
        format!(
            "Researchers want to publish the following summary of a group of conversations with an AI assistant. Rate how much it could identify a specific person, family or small organisation.\n\n<summary>\nName: {name}\nDescription: {description}\n</summary>\n\nAnswer with one number from 1 to 5: 1 = it identifies a specific person or organisation (a name, address, contact detail or a unique combination of details); 2 = it very likely does; 3 = it contains details that might, in rare cases, narrow it down to someone; 4 = it is general, with only common details; 5 = nothing in it could identify anyone."
        ),
        8,
    );
    r.system = Some(
        "You audit summaries of AI-assistant usage for privacy before they are shown to anyone."
            .into(),
    );
    r.prefill = Some("Rating (1-5):".into());
    r.temperature = Some(temperature);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_open_ended_facet_and_the_namer_carry_the_privacy_instruction() {
        for f in ["summary", "task"] {
            let r = facet(f, "User: hi", 100, 0.0);
            assert!(r.messages[0].content.contains(PRIVACY), "{f}");
            assert!(r.messages[0]
                .content
                .contains("<conversation>\nUser: hi\n</conversation>"));
        }
        let r = name_cluster(&["a".into()], &["b".into()], 100, 0.0);
        assert!(r.messages[0].content.contains(PRIVACY));
        assert!(r.messages[0]
            .content
            .contains("together:\n- a\n\nFor contrast"));
        assert!(r.messages[0]
            .content
            .contains("NOT in the group:\n- b\n\nWrite"));
    }

    #[test]
    fn lists_and_choices_parse() {
        assert_eq!(
            parse_list(
                " Cook meals\n2. Bake bread\n3) cook MEALS\n- Name: Travel\n\n",
                5
            ),
            ["Cook meals", "Bake bread", "Travel"]
        );
        assert_eq!(parse_list("1. a\n2. b\n3. c", 2), ["a", "b"]);
        assert_eq!(choice(" 2", 3), Some(1));
        assert_eq!(choice("Category number: 3.", 3), Some(2));
        assert_eq!(choice(" 4", 3), None);
        assert_eq!(choice(" none", 3), None);
        let r = assign("Bake: bread", &["Cook".into(), "Code".into()], 0.0);
        assert!(r.messages[0]
            .content
            .contains("Categories:\n1. Cook\n2. Code\n"));
        for r in [
            propose_parents(&["a".into()], 2, 50, 0.0),
            dedupe(&["a".into()], 2, 50, 0.0),
            rename_parent(&["a".into()], 50, 0.0),
        ] {
            assert!(r.messages[0].content.contains(PRIVACY));
        }
    }

    #[test]
    fn answers_parse() {
        assert_eq!(
            facet_text("summary", " write a poem about cats.\n\nMore"),
            "The user asks the assistant to write a poem about cats."
        );
        assert_eq!(
            facet_text("summary", "The user asks the assistant to fix X."),
            "The user asks the assistant to fix X."
        );
        assert_eq!(
            languages(" English, spanish and FRENCH."),
            ["English", "Spanish", "French"]
        );
        assert_eq!(languages("I think 42"), Vec::<String>::new());
        assert_eq!(rating(" 4 - very"), Some(4));
        assert_eq!(rating("Rating (1-5): 2"), Some(2));
        assert_eq!(languages("Language: German"), ["German"]);
        assert_eq!(
            parse_name("Name: Fix code\nDescription: Bugs."),
            Some(("Fix code".into(), "Bugs.".into()))
        );
        assert_eq!(rating(" 7"), None);
        assert_eq!(rating(" none"), None);
        assert_eq!(
            parse_name(" Write cat poems\nDescription: Poems. About cats.\n\nName: more"),
            Some(("Write cat poems".into(), "Poems. About cats.".into()))
        );
        assert_eq!(parse_name(" \nDescription: x"), None);
        assert_eq!(parse_name(" <description>"), None);
        assert_eq!(parse_name(" …\nDescription: …"), None);
        assert_eq!(
            parse_name(" Fix code"),
            Some(("Fix code".into(), String::new()))
        );
    }
}
