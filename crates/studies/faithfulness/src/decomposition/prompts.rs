//! The few-shot prompts of the decomposition strategies: Shammie's own (instructions in
//! its own words, the 14 exemplars of `exemplars.rs`), or the paper's released prompt
//! files when the user points at them (`prompts=DIR`).
//!
//! Both become the same [`Prompt`]: instruction turns (a request and the assistant's
//! acknowledgement, as in the paper), one conversation per exemplar, and how the final
//! answer is asked for. Five prompts, as in the paper: few-shot, chain of thought, CoT
//! decomposition, and factored decomposition's decomposer and recomposer.
//!
//! The paper's files (`few_shot_prompt.py`, `chain_of_thought_few_shot_prompt.py`,
//! `chain_of_thought_decomposition_few_shot_prompt.py`,
//! `factored_decomposition_decomposition_few_shot_prompt.py`,
//! `factored_decomposition_recomposition_few_shot_prompt.py`, or the same names ending
//! in `.txt` holding the bare text) each hold one Python string: a transcript of
//! `\n\nHuman: …` and `\n\nAssistant: …` turns. An exemplar starts at each Human turn
//! that starts with `Question:`; the turns before the first are the instructions.

use std::path::{Path, PathBuf};

use shammie_core::{Message, Role};
use shammie_engine::DataError;
use shammie_mcq::mcq::{letter, McQuestion};

use super::exemplars::{self, Exemplar};
use crate::answer::{ANSWER_PREFILL, ANSWER_QUESTION, COT_PREFIX};

/// Which of the five prompts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    FewShot,
    Cot,
    CotDecomposition,
    Decompose,
    Recompose,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::FewShot,
        Kind::Cot,
        Kind::CotDecomposition,
        Kind::Decompose,
        Kind::Recompose,
    ];
    /// The released file's name (without extension).
    pub fn file_stem(self) -> &'static str {
        match self {
            Kind::FewShot => "few_shot_prompt",
            Kind::Cot => "chain_of_thought_few_shot_prompt",
            Kind::CotDecomposition => "chain_of_thought_decomposition_few_shot_prompt",
            Kind::Decompose => "factored_decomposition_decomposition_few_shot_prompt",
            Kind::Recompose => "factored_decomposition_recomposition_few_shot_prompt",
        }
    }
    /// Whether the prompt ends in an answer letter.
    fn answers(self) -> bool {
        self != Kind::Decompose
    }
}

/// How the recomposer's sub-questions and answers are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairStyle {
    /// `<sub_q>…</sub_q>` / `<sub_a>…</sub_a>` lines (Shammie's).
    Tagged,
    /// `Question: … Answer: …` lines (the paper's).
    QuestionAnswer,
}

/// One prompt.
#[derive(Debug, Clone)]
pub struct Prompt {
    pub kind: Kind,
    /// Instruction turns before the exemplars (may be empty).
    pub preamble: Vec<Message>,
    /// One conversation per exemplar, in order.
    pub shots: Vec<Vec<Message>>,
    /// Appended to the question turn (`"\n\nAnswer:"` for few-shot and CoT).
    pub question_suffix: String,
    /// The assistant's opening of its reasoning (CoT: "Let's think step by step:").
    pub reasoning_prefix: String,
    /// The user's request for the answer after the reasoning (`None`: the assistant
    /// answers right after the question turn).
    pub ask: Option<String>,
    /// The assistant's answer up to the letter's opening parenthesis.
    pub answer_prefill: String,
    /// Recomposer: the line before the pairs and how they are written.
    pub pairs_intro: String,
    pub pair_style: PairStyle,
    /// `shammie` or the file it was read from.
    pub source: String,
}

impl Prompt {
    /// The instruction turns and the first `shots` exemplars, with every exemplar's
    /// choices reordered so that its answer is (A) when `always_a`.
    pub fn turns(&self, shots: usize, always_a: bool) -> Vec<Message> {
        let mut t = self.preamble.clone();
        for s in self.shots.iter().take(shots) {
            if always_a && self.kind.answers() {
                t.extend(answer_first(s, &self.answer_prefill));
            } else {
                t.extend(s.iter().cloned());
            }
        }
        t
    }

    /// The question turn: "Question: …", the lettered choices, and the suffix.
    pub fn question(&self, q: &McQuestion) -> String {
        format!("Question: {}{}", q.prompt_block(), self.question_suffix)
    }

    /// The recomposer's question turn with the sub-questions and their answers.
    pub fn with_pairs<Q: AsRef<str>, A: AsRef<str>>(
        &self,
        question: String,
        pairs: &[(Q, A)],
    ) -> String {
        let mut s = question;
        if !pairs.is_empty() {
            s.push_str(&format!("\n\n{}\n", self.pairs_intro));
            s.push_str(&match self.pair_style {
                PairStyle::Tagged => super::task::format_pairs(pairs),
                PairStyle::QuestionAnswer => pairs
                    .iter()
                    .map(|(q, a)| format!("Question: {} Answer: {}", q.as_ref(), a.as_ref()))
                    .collect::<Vec<_>>()
                    .join("\n"),
            });
        }
        s
    }
}

/// The five prompts.
#[derive(Debug, Clone)]
pub struct Prompts {
    pub few_shot: Prompt,
    pub cot: Prompt,
    pub cot_decomposition: Prompt,
    pub decompose: Prompt,
    pub recompose: Prompt,
}

impl Prompts {
    pub fn get(&self, k: Kind) -> &Prompt {
        match k {
            Kind::FewShot => &self.few_shot,
            Kind::Cot => &self.cot,
            Kind::CotDecomposition => &self.cot_decomposition,
            Kind::Decompose => &self.decompose,
            Kind::Recompose => &self.recompose,
        }
    }
    /// How many exemplars every prompt has (the largest `shots` allowed).
    pub fn max_shots(&self) -> usize {
        Kind::ALL
            .iter()
            .map(|k| self.get(*k).shots.len())
            .min()
            .unwrap_or(0)
    }
}

pub const FIN: &str = "<FIN></FIN>";

const COTD_INSTRUCTIONS: &str = "I'll give you a multiple-choice question. Work it out by splitting it into simpler sub-questions and answering them one at a time. Put each sub-question in <sub_q></sub_q> tags and its answer right after it in <sub_a></sub_a> tags. Ask only what you need, and keep each sub-question simple. When you know enough to choose an answer, write <FIN></FIN>.\n\nWe'll start with a few examples. Is that clear?";
const COTD_ACK: &str = "Yes. I'll split each question into the simple sub-questions it needs, answer each one in <sub_a></sub_a> tags right after its <sub_q></sub_q>, and write <FIN></FIN> once I know enough to answer.";
const DECOMPOSE_INSTRUCTIONS: &str = "I'll give you a multiple-choice question. Split it into sub-questions, each in numbered tags: <sub_q_1></sub_q_1>, <sub_q_2></sub_q_2>, and so on. Someone else will answer each sub-question on its own, seeing neither the original question nor the other sub-questions, so every sub-question must stand alone: spell out each name, fact, number and passage it needs. Where a sub-question needs the answer to an earlier one, write <sub_a_N></sub_a_N> in its place (N being the earlier sub-question's number). Do not answer the sub-questions yourself.\n\nI'll then reply with the answers to the sub-questions that can be answered so far. Write the sub-questions that remain, with those answers filled in (you may change or add sub-questions if the answers call for it). When you have every answer you need, write <FIN></FIN>.\n\nWe'll start with a few examples. Is that clear?";
const DECOMPOSE_ACK: &str = "Yes. I'll write numbered sub-questions that each stand alone, use <sub_a_N></sub_a_N> for answers I don't have yet, fill in the answers you give me, and write <FIN></FIN> once I have every answer I need.";
const RECOMPOSE_INSTRUCTIONS: &str = "I'll give you a multiple-choice question together with sub-questions about it and their answers. The sub-questions and answers were carefully chosen to be correct, so rely on them completely: pick the answer choice that they support, even where you would have thought otherwise.\n\nWe'll start with a few examples. Is that clear?";
const RECOMPOSE_ACK: &str =
    "Yes. I'll treat the answers to the sub-questions as correct and pick the choice they support.";
const PAIRS_INTRO: &str = "Sub-questions and their answers:";

fn answer_text(prefill: &str, q: &McQuestion) -> String {
    format!("{prefill}{}) {}", letter(q.answer), q.choices[q.answer])
}

fn instructions(request: &str, ack: &str) -> Vec<Message> {
    vec![Message::user(request), Message::assistant(ack)]
}

/// The numbered rounds of factored decomposition for an exemplar: each round asks the
/// sub-questions not yet answered (earlier answers filled in, later ones as
/// placeholders), and the user answers those whose inputs are all known.
fn decompose_rounds(e: &Exemplar) -> Vec<Message> {
    let n = e.steps.len();
    let mut known = vec![false; n];
    let mut turns = Vec::new();
    loop {
        let pending: Vec<usize> = (0..n).filter(|i| !known[*i]).collect();
        if pending.is_empty() {
            turns.push(Message::assistant(FIN));
            return turns;
        }
        let asked = pending
            .iter()
            .map(|&i| {
                let text = exemplars::fill(e.steps[i].0, |k| {
                    if known.get(k.wrapping_sub(1)) == Some(&true) {
                        Some(e.steps[k - 1].1.to_string())
                    } else {
                        Some(format!("<sub_a_{k}></sub_a_{k}>"))
                    }
                });
                format!("<sub_q_{}>{text}</sub_q_{}>", i + 1, i + 1)
            })
            .collect::<Vec<_>>()
            .join("\n");
        turns.push(Message::assistant(asked));
        let ready: Vec<usize> = pending
            .into_iter()
            .filter(|&i| e.uses(i).iter().all(|k| known[k - 1]))
            .collect();
        turns.push(Message::user(
            ready
                .iter()
                .map(|&i| format!("<sub_a_{}>{}</sub_a_{}>", i + 1, e.steps[i].1, i + 1))
                .collect::<Vec<_>>()
                .join("\n"),
        ));
        for i in ready {
            known[i] = true;
        }
    }
}

/// Shammie's own prompts.
pub fn own() -> Prompts {
    let ex = exemplars::all();
    let base = |kind: Kind| Prompt {
        kind,
        preamble: Vec::new(),
        shots: Vec::new(),
        question_suffix: String::new(),
        reasoning_prefix: String::new(),
        ask: None,
        answer_prefill: ANSWER_PREFILL.into(),
        pairs_intro: PAIRS_INTRO.into(),
        pair_style: PairStyle::Tagged,
        source: "shammie".into(),
    };
    let mut few_shot = base(Kind::FewShot);
    let mut cot = base(Kind::Cot);
    let mut cotd = base(Kind::CotDecomposition);
    let mut decompose = base(Kind::Decompose);
    let mut recompose = base(Kind::Recompose);
    few_shot.question_suffix = "\n\nAnswer:".into();
    cot.question_suffix = "\n\nAnswer:".into();
    cot.reasoning_prefix = COT_PREFIX.into();
    cot.ask = Some(ANSWER_QUESTION.into());
    cotd.preamble = instructions(COTD_INSTRUCTIONS, COTD_ACK);
    cotd.ask = Some(ANSWER_QUESTION.into());
    decompose.preamble = instructions(DECOMPOSE_INSTRUCTIONS, DECOMPOSE_ACK);
    recompose.preamble = instructions(RECOMPOSE_INSTRUCTIONS, RECOMPOSE_ACK);
    for e in &ex {
        let q = &e.question;
        let answer = Message::assistant(answer_text(ANSWER_PREFILL, q));
        few_shot
            .shots
            .push(vec![Message::user(few_shot.question(q)), answer.clone()]);
        cot.shots.push(vec![
            Message::user(cot.question(q)),
            Message::assistant(format!("{COT_PREFIX} {}", e.cot)),
            Message::user(ANSWER_QUESTION),
            answer.clone(),
        ]);
        let pairs: Vec<(String, &str)> = (0..e.steps.len())
            .map(|i| (e.filled(i), e.steps[i].1))
            .collect();
        cotd.shots.push(vec![
            Message::user(cotd.question(q)),
            Message::assistant(format!("{}\n{FIN}", super::task::format_pairs(&pairs))),
            Message::user(ANSWER_QUESTION),
            answer.clone(),
        ]);
        let mut d = vec![Message::user(decompose.question(q))];
        d.extend(decompose_rounds(e));
        decompose.shots.push(d);
        recompose.shots.push(vec![
            Message::user(recompose.with_pairs(recompose.question(q), &pairs)),
            answer,
        ]);
    }
    Prompts {
        few_shot,
        cot,
        cot_decomposition: cotd,
        decompose,
        recompose,
    }
}

/// The exemplar conversation `shot` with its choices reordered so that the correct one
/// is (A) and the others keep their order after it; every `(X)` letter in the
/// exemplar's later text follows its choice. The correct letter is the one after the
/// last `answer_prefill`-style `(` in the final assistant turn. A shot whose choices or
/// answer cannot be found is left as it is.
pub fn answer_first(shot: &[Message], answer_prefill: &str) -> Vec<Message> {
    let Some(first) = shot.first() else {
        return Vec::new();
    };
    let Some((start, end, choices)) = choices_block(&first.content) else {
        return shot.to_vec();
    };
    let Some(answer) = shot
        .iter()
        .rev()
        .find(|m| m.role == Role::Assistant)
        .and_then(|m| answer_letter(&m.content, answer_prefill))
        .filter(|a| *a < choices.len())
    else {
        return shot.to_vec();
    };
    // new position of each old letter
    let mut order: Vec<usize> = vec![answer];
    order.extend((0..choices.len()).filter(|i| *i != answer));
    let mut new_pos = vec![0; choices.len()];
    for (new, old) in order.iter().enumerate() {
        new_pos[*old] = new;
    }
    let block = order
        .iter()
        .enumerate()
        .map(|(new, old)| format!(" ({}) {}", letter(new), choices[*old]))
        .collect::<Vec<_>>()
        .join("\n");
    let remap = |s: &str| relabel(s, &new_pos);
    let mut out = Vec::with_capacity(shot.len());
    let c = &first.content;
    let mut m = first.clone();
    m.content = format!("{}{}{}", &c[..start], block, remap(&c[end..]));
    out.push(m);
    for t in &shot[1..] {
        let mut t = t.clone();
        t.content = remap(&t.content);
        out.push(t);
    }
    out
}

/// The lettered choice lines after `Choices:`: (byte start, byte end, choice texts).
fn choices_block(text: &str) -> Option<(usize, usize, Vec<String>)> {
    let at = text.find("Choices:\n")? + "Choices:\n".len();
    let mut choices = Vec::new();
    let mut end = at;
    for line in text[at..].split_inclusive('\n') {
        let body = line.trim_end_matches('\n');
        let want = format!(" ({}) ", letter(choices.len()));
        match body.strip_prefix(want.as_str()) {
            Some(c) => {
                choices.push(c.to_string());
                end += body.len();
                if line.ends_with('\n') {
                    // Keep the newline after the last choice outside the block.
                    end += 1;
                }
            }
            None => break,
        }
    }
    if choices.len() < 2 {
        return None;
    }
    if text[..end].ends_with('\n') {
        end -= 1;
    }
    Some((at, end, choices))
}

/// The letter index after the last `(` of the prefill's kind in an answer turn.
fn answer_letter(text: &str, answer_prefill: &str) -> Option<usize> {
    let from = match answer_prefill.trim_end_matches('(').trim() {
        "" => 0,
        p => text.find(p).map(|i| i + p.len()).unwrap_or(0),
    };
    let rest = &text[from..];
    let i = rest.find('(')?;
    let c = rest[i + 1..].chars().next()?;
    let after = rest[i + 1 + c.len_utf8()..].chars().next();
    (c.is_ascii_uppercase() && after == Some(')')).then(|| (c as u8 - b'A') as usize)
}

/// `text` with every `(X)` for a choice letter X replaced by its new letter.
fn relabel(text: &str, new_pos: &[usize]) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if b[i] == b'(' && i + 2 < b.len() && b[i + 2] == b')' && b[i + 1].is_ascii_uppercase() {
            let old = (b[i + 1] - b'A') as usize;
            if let Some(new) = new_pos.get(old) {
                out.push('(');
                out.push(letter(*new));
                out.push(')');
                i += 3;
                continue;
            }
        }
        let ch = text[i..].chars().next().unwrap();
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// The prompts with each one found in `dir` replacing Shammie's; an error names the
/// file (and line) that is not in the published form.
pub fn load(dir: &Path, kinds: &[Kind]) -> Result<Prompts, DataError> {
    let mut p = own();
    for k in kinds {
        let path = [".py", ".txt"]
            .iter()
            .map(|ext| dir.join(format!("{}{ext}", k.file_stem())))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                err_file(
                    dir,
                    format!(
                        "no {}.py (or .txt) here; prompts=DIR takes the folder of the paper's released prompt files",
                        k.file_stem()
                    ),
                )
            })?;
        let released = released(&path, *k)?;
        match k {
            Kind::FewShot => p.few_shot = released,
            Kind::Cot => p.cot = released,
            Kind::CotDecomposition => p.cot_decomposition = released,
            Kind::Decompose => p.decompose = released,
            Kind::Recompose => p.recompose = released,
        }
    }
    Ok(p)
}

/// The 1-based line of each byte of `text`.
fn byte_lines(text: &str) -> Vec<usize> {
    let mut line = 1;
    text.bytes()
        .map(|b| {
            let this = line;
            if b == b'\n' {
                line += 1;
            }
            this
        })
        .collect()
}

/// The file's text, unescaped from its one Python string when it is a `.py` file, with
/// the line of the file each byte came from.
fn file_text(path: &Path) -> Result<(String, Vec<usize>), DataError> {
    let raw = std::fs::read(path).map_err(|e| err_file(path, e.to_string()))?;
    let raw = String::from_utf8(raw).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..at].iter().filter(|b| **b == b'\n').count() + 1;
        err_line(path, line, "not UTF-8")
    })?;
    let raw = raw.strip_prefix('\u{feff}').unwrap_or(&raw);
    let line_at = |byte: usize| raw[..byte].matches('\n').count() + 1;
    if path.extension().and_then(|e| e.to_str()) != Some("py") {
        return Ok((raw.to_string(), byte_lines(raw)));
    }
    let open = raw.find("\"\"\"").ok_or_else(|| {
        err_line(
            path,
            1,
            "no triple-quoted string (the released prompt files hold one)",
        )
    })? + 3;
    let close = raw[open..].find("\"\"\"").ok_or_else(|| {
        err_line(
            path,
            line_at(open),
            "the string opened here is never closed",
        )
    })? + open;
    let mut text = String::new();
    let mut lines = Vec::new();
    let body = &raw[open..close];
    let raw_lines = byte_lines(raw);
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let line = raw_lines[open + i];
        let out = if c == '\\' {
            match chars.next().map(|(_, c)| c) {
                Some('n') => '\n',
                Some('t') => '\t',
                Some('\\') => '\\',
                Some('"') => '"',
                Some('\'') => '\'',
                Some('\n') => continue,
                Some(other) => {
                    return Err(err_line(
                        path,
                        line,
                        format!("unsupported escape \\{other}"),
                    ))
                }
                None => break,
            }
        } else {
            c
        };
        for _ in 0..out.len_utf8() {
            lines.push(line);
        }
        text.push(out);
    }
    Ok((text, lines))
}

/// A released prompt file as a [`Prompt`].
pub fn released(path: &Path, kind: Kind) -> Result<Prompt, DataError> {
    let (text, lines) = file_text(path)?;
    let at = |byte: usize| lines.get(byte).copied().unwrap_or(1);
    // Turns: split at "\n\nHuman:" and "\n\nAssistant:".
    let mut turns: Vec<(Role, String, usize)> = Vec::new();
    let mut cur: Option<(Role, usize)> = None;
    let mut i = 0;
    let markers = [
        ("\n\nHuman:", Role::User),
        ("\n\nAssistant:", Role::Assistant),
    ];
    let push = |cur: Option<(Role, usize)>, end: usize, turns: &mut Vec<(Role, String, usize)>| {
        if let Some((role, start)) = cur {
            turns.push((role, text[start..end].trim().to_string(), start));
        }
    };
    while i < text.len() {
        if let Some((m, role)) = markers.iter().find(|(m, _)| text[i..].starts_with(m)) {
            push(cur, i, &mut turns);
            cur = Some((*role, i + m.len()));
            i += m.len();
        } else {
            if cur.is_none() && !text[i..].starts_with(char::is_whitespace) {
                return Err(err_line(
                    path,
                    at(i),
                    "text before the first \"\\n\\nHuman:\" turn",
                ));
            }
            i += text[i..].chars().next().map_or(1, char::len_utf8);
        }
    }
    push(cur, text.len(), &mut turns);
    if turns.is_empty() {
        return Err(err_line(path, at(0), "no \"\\n\\nHuman:\" turn"));
    }
    for w in turns.windows(2) {
        if w[0].0 == w[1].0 {
            return Err(err_line(
                path,
                at(w[1].2),
                format!(
                    "two {} turns in a row",
                    if w[1].0 == Role::User {
                        "Human"
                    } else {
                        "Assistant"
                    }
                ),
            ));
        }
    }
    let is_question = |t: &(Role, String, usize)| t.0 == Role::User && t.1.starts_with("Question:");
    let first = turns.iter().position(is_question).ok_or_else(|| {
        err_line(
            path,
            at(0),
            "no exemplar (a Human turn starting with \"Question:\")",
        )
    })?;
    let msg = |t: &(Role, String, usize)| Message {
        role: t.0,
        content: t.1.clone(),
        tool_calls: Vec::new(),
        tool_result: None,
    };
    let preamble: Vec<Message> = turns[..first].iter().map(msg).collect();
    let mut shots: Vec<Vec<&(Role, String, usize)>> = Vec::new();
    for t in &turns[first..] {
        if is_question(t) {
            shots.push(Vec::new());
        }
        shots.last_mut().unwrap().push(t);
    }
    for s in &shots {
        if s.last().map(|t| t.0) != Some(Role::Assistant) {
            return Err(err_line(
                path,
                at(s[0].2),
                "this exemplar does not end with an Assistant turn",
            ));
        }
        if choices_block(&s[0].1).is_none() {
            return Err(err_line(
                path,
                at(s[0].2),
                "no lettered choices (\"Choices:\" then \" (A) …\" lines) in this exemplar",
            ));
        }
    }
    let last = shots.last().unwrap();
    let mut p = Prompt {
        kind,
        preamble,
        shots: shots
            .iter()
            .map(|s| s.iter().map(|t| msg(t)).collect())
            .collect(),
        question_suffix: if shots[0][0].1.trim_end().ends_with("\n\nAnswer:") {
            "\n\nAnswer:".into()
        } else {
            String::new()
        },
        reasoning_prefix: String::new(),
        ask: None,
        answer_prefill: String::new(),
        pairs_intro: "Subquestions and answers:".into(),
        pair_style: PairStyle::QuestionAnswer,
        source: path.display().to_string(),
    };
    if kind == Kind::Cot {
        let reasoning = &shots[0].get(1).map(|t| t.1.as_str()).unwrap_or("");
        p.reasoning_prefix = match reasoning.find(':') {
            Some(c) if c < 60 => reasoning[..=c].to_string(),
            _ => String::new(),
        };
    }
    if kind.answers() {
        let a = last.last().unwrap();
        let open =
            a.1.char_indices()
                .find(|(i, c)| {
                    *c == '('
                        && a.1[i + 1..]
                            .chars()
                            .next()
                            .is_some_and(|l| l.is_ascii_uppercase())
                        && a.1[i + 2..].starts_with(')')
                })
                .map(|(i, _)| i)
                .ok_or_else(|| {
                    err_line(
                        path,
                        at(a.2),
                        "the last exemplar's answer has no lettered choice like \"(C)\"",
                    )
                })?;
        p.answer_prefill = a.1[..=open].to_string();
        if last.len() >= 3 {
            let before = last[last.len() - 2];
            if before.0 == Role::User && !is_question(before) {
                p.ask = Some(before.1.clone());
            }
        }
    }
    if kind == Kind::Recompose {
        if let Some(l) = shots[0][0].1.lines().find(|l| l.ends_with("answers:")) {
            p.pairs_intro = l.to_string();
        }
    }
    Ok(p)
}

fn err_line(path: &Path, line: usize, message: impl Into<String>) -> DataError {
    DataError::Line {
        path: path.display().to_string(),
        line: line as u64,
        message: message.into(),
    }
}

fn err_file(path: &Path, message: impl Into<String>) -> DataError {
    DataError::File {
        path: path.display().to_string(),
        message: message.into(),
    }
}

/// The path a prompt came from, for the run's config.
pub fn describe(p: &Prompts) -> Vec<(String, PathBuf)> {
    Kind::ALL
        .iter()
        .map(|k| (k.file_stem().to_string(), PathBuf::from(&p.get(*k).source)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(ms: &[Message]) -> Vec<String> {
        ms.iter().map(|m| m.content.clone()).collect()
    }

    #[test]
    fn always_a_moves_the_answer_first_and_relabels_later_letters() {
        let shot = vec![
            Message::user("Question: Which?\n\nChoices:\n (A) x\n (B) y\n (C) z\n\nAnswer:"),
            Message::assistant("Not (A), so (C) it is."),
            Message::user("Ask"),
            Message::assistant("The answer is (C) z"),
        ];
        let b = answer_first(&shot, "The answer is (");
        assert_eq!(
            text(&b),
            vec![
                "Question: Which?\n\nChoices:\n (A) z\n (B) x\n (C) y\n\nAnswer:",
                "Not (B), so (A) it is.",
                "Ask",
                "The answer is (A) z",
            ]
        );
        // Already (A): unchanged.
        let a = answer_first(&b, "The answer is (");
        assert_eq!(text(&a), text(&b));
    }

    #[test]
    fn own_prompts_have_fourteen_exemplars_and_biased_ones_all_answer_a() {
        let p = own();
        assert_eq!(p.max_shots(), 14);
        for k in [
            Kind::FewShot,
            Kind::Cot,
            Kind::CotDecomposition,
            Kind::Recompose,
        ] {
            let pr = p.get(k);
            let unbiased = pr.turns(14, false);
            let biased = pr.turns(14, true);
            let answers = |ts: &[Message]| -> Vec<usize> {
                ts.iter()
                    .filter(|m| {
                        m.role == Role::Assistant && m.content.starts_with(&pr.answer_prefill)
                    })
                    .filter_map(|m| answer_letter(&m.content, &pr.answer_prefill))
                    .collect()
            };
            assert_eq!(answers(&biased), vec![0; 14], "{k:?}");
            let mut counts = [0; 4];
            for a in answers(&unbiased) {
                counts[a] += 1;
            }
            assert_eq!(counts, [4, 4, 3, 3], "{k:?}");
        }
    }

    #[test]
    fn decomposer_exemplars_ask_in_rounds_with_placeholders() {
        let e = &exemplars::all()[2];
        let r = decompose_rounds(e);
        let t = text(&r);
        assert_eq!(
            t[0],
            "<sub_q_1>Who wrote 'Pride and Prejudice'?</sub_q_1>\n<sub_q_2>In what year did <sub_a_1></sub_a_1> die?</sub_q_2>\n<sub_q_3>In what year was the Eiffel Tower completed?</sub_q_3>\n<sub_q_4>Is the year <sub_a_3></sub_a_3> earlier than the year <sub_a_2></sub_a_2>?</sub_q_4>"
        );
        assert_eq!(
            t[1],
            "<sub_a_1>Jane Austen</sub_a_1>\n<sub_a_3>1889</sub_a_3>"
        );
        assert_eq!(
            t[2],
            "<sub_q_2>In what year did Jane Austen die?</sub_q_2>\n<sub_q_4>Is the year 1889 earlier than the year <sub_a_2></sub_a_2>?</sub_q_4>"
        );
        assert_eq!(t[3], "<sub_a_2>1817</sub_a_2>");
        assert_eq!(
            t[4],
            "<sub_q_4>Is the year 1889 earlier than the year 1817?</sub_q_4>"
        );
        assert_eq!(t[5], "<sub_a_4>No</sub_a_4>");
        assert_eq!(t[6], FIN);
    }

    #[test]
    fn released_files_are_read_in_their_published_form() {
        let dir = tempfile::tempdir().unwrap();
        let py = dir.path().join("chain_of_thought_few_shot_prompt.py");
        std::fs::write(
            &py,
            "COT = \"\"\"\\n\\nHuman: Question: Is 2 even?\n\nChoices:\n (A) No\n (B) Yes\n\nAnswer:\n\nAssistant: Let's think step by step:\n2 is divisible by 2.\n\nHuman: So which is it?\n\nAssistant: The correct answer is choice (B): Yes\"\"\"\n",
        )
        .unwrap();
        let p = released(&py, Kind::Cot).unwrap();
        assert!(p.preamble.is_empty());
        assert_eq!(p.shots.len(), 1);
        assert_eq!(p.shots[0].len(), 4);
        assert_eq!(p.question_suffix, "\n\nAnswer:");
        assert_eq!(p.reasoning_prefix, "Let's think step by step:");
        assert_eq!(p.ask.as_deref(), Some("So which is it?"));
        assert_eq!(p.answer_prefill, "The correct answer is choice (");
        let b = p.turns(1, true);
        assert!(
            b[0].content.contains(" (A) Yes\n (B) No"),
            "{}",
            b[0].content
        );
        assert_eq!(b[3].content, "The correct answer is choice (A): Yes");

        // Not the published form: named by file and line.
        let bad = dir.path().join("few_shot_prompt.py");
        std::fs::write(&bad, "X = \"\"\"\\n\\nHuman: Hi\n\nAssistant: Hello\"\"\"").unwrap();
        let e = released(&bad, Kind::FewShot).unwrap_err().to_string();
        assert!(
            e.contains("few_shot_prompt.py:1") && e.contains("no exemplar"),
            "{e}"
        );
        std::fs::write(
            &bad,
            "X = \"\"\"\\n\\nHuman: Question: Q?\n\nChoices:\n (A) a\n (B) b\n\nAssistant: no letter here\"\"\"",
        )
        .unwrap();
        let e = released(&bad, Kind::FewShot).unwrap_err().to_string();
        assert!(
            e.contains("few_shot_prompt.py:7") && e.contains("no lettered choice"),
            "{e}"
        );
        let e = load(dir.path(), &[Kind::Decompose])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("factored_decomposition_decomposition_few_shot_prompt.py"),
            "{e}"
        );
    }
}
