//! `agent-loop/arithmetic`: a small built-in agentic task that exercises Shammie's agent
//! loop end to end — not a paper's study. Each sample is a multi-step arithmetic word
//! problem; the target may call a calculator as `<calc>EXPRESSION</calc>` (the result
//! comes back as `<output>…</output>`) for up to `max_turns` turns and ends with
//! `<answer>NUMBER</answer>`.
//!
//! What it measures: accuracy (Wilson interval), how often the calculator was used and
//! how many steps and turns an episode took (t intervals), why episodes ended, and how
//! many steps were replayed from the journal after a resume. It is the smallest task on
//! which tool recording, replay after `kill -9` and `--max-samples` can be checked with
//! any model: with `--set audit=FILE` the calculator appends one line to FILE each time
//! it really executes, so a resumed run that replays its recorded steps adds none.
//!
//! Example: `shammie run agent-loop/arithmetic --model local:gemma-3-270m --limit 5`.

pub mod calc;
pub mod problems;

use shammie_kit::study::{StudyInfo, TaskInfo};

/// The study as the registry lists it.
pub fn study() -> StudyInfo {
    StudyInfo {
        name: "agent-loop",
        paper: "none: a built-in check of Shammie's agent loop",
        summary: "Multi-step arithmetic with a calculator tool: exercises tool calls, the step journal and resume on any model",
        tasks: vec![TaskInfo::new(
            "agent-loop",
            "arithmetic",
            "word problems solved with <calc> tool calls and an <answer>; accuracy, tool use, turns, why episodes ended",
            <Config as OptionGroup>::options,
            roles,
            build,
        )],
        offline: None,
    }
}

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use shammie_agent::{run_episode, ActionFormat, AgentConfig, Environment, ToolSpec};
use shammie_core::{Cell, Message, Sample, SampleRecord, Scores, Table, ToolCall};
use shammie_engine::{
    Analysis, DataError, Dataset, EngineError, OptionGroup, Options, RoleSpec, SampleContext,
    SampleError, Task, ToolOutput,
};
use shammie_kit::cells;

use problems::Problem;

shammie_engine::task_options! {
    /// What `agent-loop/arithmetic` takes (`--set key=value`).
    pub struct Config {
        /// most model turns per episode
        pub max_turns: u32 = 6,
        /// output tokens per model turn
        pub max_tokens: u32 = 200,
        /// sampling temperature of the target
        pub temperature: f64 [0.0 ..= 2.0] = 0.0,
        /// show one worked episode before each problem (earlier turns of the conversation)
        pub example: bool = true,
        /// how the model calls the calculator: auto (native tool calls where the model has them, else tags), tags (<calc>…</calc> in text), native
        pub actions: ActionFormat = ActionFormat::Auto,
        /// append one JSON line per real calculator execution to this file (replayed steps are not executed, so not listed)
        pub audit: Option<PathBuf> = None,
    }
}

pub fn roles() -> Vec<RoleSpec> {
    vec![RoleSpec {
        name: "target",
        help: "the model that solves the problems with the calculator",
        defaults_to: None,
    }]
}

const SYSTEM_TAGS: &str = "You solve arithmetic word problems with the help of a calculator. \
To use the calculator, write one expression between <calc> and </calc>, for example \
<calc>12 * (3 + 4)</calc>, and stop there: the result will come back as <output>...</output>. \
Use the calculator for every multiplication and division. When you know the final answer, \
write only the number between <answer> and </answer>, for example <answer>84</answer>.";

const SYSTEM_NATIVE: &str = "You solve arithmetic word problems with the help of a calculator: \
the `calc` tool evaluates an expression such as 12 * (3 + 4). Use it for every \
multiplication and division. When you know the final answer, write only the number between \
<answer> and </answer>, for example <answer>84</answer>.";

const EXAMPLE_PROBLEM: &str = "Problem: A shop sells 14 boxes of 23 pens each, and then 5 single pens. How many pens does it sell?";

/// A worked episode shown before each problem (as earlier turns of the conversation),
/// so base models see the protocol in action: as tags, or as a native tool call.
fn example(native: bool) -> Vec<Message> {
    if native {
        let mut call = Message::assistant("");
        call.tool_calls = vec![ToolCall {
            id: "example_call".into(),
            name: "calc".into(),
            arguments: serde_json::json!({"expression": "14 * 23 + 5"}).to_string(),
        }];
        return vec![
            Message::user(EXAMPLE_PROBLEM),
            call,
            Message::tool_result("example_call", "327", false),
            Message::assistant("<answer>327</answer>"),
        ];
    }
    vec![
        Message::user(EXAMPLE_PROBLEM),
        Message::assistant("<calc>14 * 23 + 5</calc>"),
        Message::user("<output exit_status=\"0\">327</output>"),
        Message::assistant("<answer>327</answer>"),
    ]
}

pub struct Arithmetic {
    config: Config,
}

pub fn build(opts: Options) -> Result<Arc<dyn Task>, EngineError> {
    let config = Config::from_options(opts)?;
    if config.max_turns == 0 || config.max_tokens == 0 {
        return Err(EngineError::Config(
            "agent-loop/arithmetic: max_turns and max_tokens must be at least 1".into(),
        ));
    }
    if !(0.0..=2.0).contains(&config.temperature) {
        return Err(EngineError::Config(
            "agent-loop/arithmetic: temperature must be between 0 and 2".into(),
        ));
    }
    Ok(Arc::new(Arithmetic { config }))
}

/// The calculator, with the optional execution audit.
struct Calculator {
    audit: Option<PathBuf>,
    sample: String,
    epoch: u32,
}

#[async_trait]
impl Environment for Calculator {
    fn tools(&self) -> Vec<ToolSpec> {
        vec![ToolSpec {
            name: "calc".into(),
            description: "evaluate an arithmetic expression (+ - * / ^ and parentheses)".into(),
            argument: "expression".into(),
            argument_help: "the expression, e.g. 12 * (3 + 4)".into(),
        }]
    }

    async fn execute(&mut self, _tool: &str, input: &str) -> ToolOutput {
        if let Some(path) = &self.audit {
            let line = serde_json::json!({"sample": self.sample, "epoch": self.epoch, "expression": input});
            let written = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()));
            if let Err(e) = written {
                return ToolOutput {
                    error: Some(format!("audit file {}: {e}", path.display())),
                    ..ToolOutput::default()
                };
            }
        }
        match calc::eval(input) {
            Ok(v) => ToolOutput {
                output: calc::format(v),
                exit_status: Some(0),
                ..ToolOutput::default()
            },
            Err(e) => ToolOutput {
                output: format!("error: {e}"),
                exit_status: Some(1),
                ..ToolOutput::default()
            },
        }
    }
}

/// Per-sample scores.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArithmeticScores {
    pub correct: bool,
    /// The model gave an `<answer>` with a number in it.
    pub answered: bool,
    pub answer: Option<f64>,
    pub expected: f64,
    pub tool_calls: u32,
    /// Steps taken from the journal on resume instead of executed.
    pub replayed_tool_calls: u32,
    /// Calculator calls whose expression did not evaluate.
    pub calc_errors: u32,
    pub turns: u32,
    pub stop: String,
}

#[async_trait]
impl Task for Arithmetic {
    fn study(&self) -> &str {
        "agent-loop"
    }
    fn name(&self) -> &str {
        "arithmetic"
    }
    fn roles(&self) -> Vec<RoleSpec> {
        roles()
    }
    fn config(&self) -> serde_json::Value {
        serde_json::to_value(&self.config).expect("config serialises")
    }

    fn dataset(&self) -> Result<Dataset, DataError> {
        let items = problems::builtin();
        Ok(Dataset::new(
            Some(items.len() as u64),
            "problem",
            items.into_iter().map(|p| {
                Ok(Sample::new(
                    p.id.clone(),
                    serde_json::to_value(&p).expect("problems serialise"),
                ))
            }),
        ))
    }

    async fn solve(&self, cx: &SampleContext, sample: &Sample) -> Result<Scores, SampleError> {
        let p: Problem = serde_json::from_value(sample.input.clone())
            .map_err(|e| SampleError::Protocol(format!("bad sample input: {e}")))?;
        let mut cfg = AgentConfig::new("target");
        cfg.actions = self.config.actions;
        let native = cfg.native_for(&cx.capabilities("target")?)?;
        cfg.system = Some(if native { SYSTEM_NATIVE } else { SYSTEM_TAGS }.to_string());
        cfg.max_turns = self.config.max_turns;
        cfg.max_tokens = self.config.max_tokens;
        cfg.temperature = Some(self.config.temperature);
        cfg.final_tag = Some("answer".into());
        if self.config.example {
            cfg.examples = example(native);
        }
        let mut env = Calculator {
            audit: self.config.audit.clone(),
            sample: sample.id.clone(),
            epoch: cx.epoch(),
        };
        let ep = run_episode(cx, &cfg, &mut env, format!("Problem: {}", p.question)).await?;
        let answer = ep.final_answer.as_deref().and_then(problems::parse_number);
        let correct =
            answer.is_some_and(|a| (a - p.answer).abs() <= 1e-6 * p.answer.abs().max(1.0));
        let scores = ArithmeticScores {
            correct,
            answered: answer.is_some(),
            answer,
            expected: p.answer,
            tool_calls: ep.steps.len() as u32,
            replayed_tool_calls: ep.steps.iter().filter(|s| s.output.replayed).count() as u32,
            calc_errors: ep
                .steps
                .iter()
                .filter(|s| s.output.exit_status != Some(0))
                .count() as u32,
            turns: ep.turns,
            stop: ep.stop.as_str().to_string(),
        };
        match serde_json::to_value(&scores).expect("scores serialise") {
            serde_json::Value::Object(m) => Ok(m.into_iter().collect()),
            _ => unreachable!("a struct serialises to an object"),
        }
    }

    fn analyze(
        &self,
        records: &mut dyn Iterator<Item = SampleRecord>,
        _run: &shammie_engine::RunInfo,
    ) -> Result<Analysis, String> {
        let mut all: Vec<ArithmeticScores> = Vec::new();
        let mut failed = 0u64;
        for r in records {
            if r.error.is_some() {
                failed += 1;
                continue;
            }
            let s: ArithmeticScores =
                serde_json::from_value(serde_json::Value::Object(r.scores.into_iter().collect()))
                    .map_err(|e| format!("sample {}: unreadable scores: {e}", r.id))?;
            all.push(s);
        }
        Ok(summarize(&all, failed).into())
    }
}

fn mean(values: &[f64]) -> Cell {
    match shammie_stats::mean_ci_t(values, 0.95) {
        Ok(e) => cells::cell(Some(e.interval()), values.len()),
        Err(_) if values.len() == 1 => cells::cell(Some(cells::point(values[0])), 1),
        Err(_) => Cell::Empty,
    }
}

/// The results table.
pub fn summarize(all: &[ArithmeticScores], failed: u64) -> Vec<Table> {
    let n = all.len();
    let count = |f: &dyn Fn(&ArithmeticScores) -> bool| all.iter().filter(|s| f(s)).count();
    let steps: Vec<f64> = all.iter().map(|s| s.tool_calls as f64).collect();
    let turns: Vec<f64> = all.iter().map(|s| s.turns as f64).collect();
    let mut stops: std::collections::BTreeMap<&str, usize> = Default::default();
    for s in all {
        *stops.entry(s.stop.as_str()).or_default() += 1;
    }
    let stops = stops
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    let rows = vec![
        vec![
            Cell::text("accuracy"),
            cells::share(count(&|s| s.correct), n),
            Cell::Int(n as i64),
        ],
        vec![
            Cell::text("gave a numeric answer"),
            cells::share(count(&|s| s.answered), n),
            Cell::Int(n as i64),
        ],
        vec![
            Cell::text("used the calculator"),
            cells::share(count(&|s| s.tool_calls > 0), n),
            Cell::Int(n as i64),
        ],
        vec![
            Cell::text("calculator calls per episode"),
            mean(&steps),
            Cell::Int(n as i64),
        ],
        vec![
            Cell::text("model turns per episode"),
            mean(&turns),
            Cell::Int(n as i64),
        ],
        vec![
            Cell::text("calculator calls that failed to evaluate"),
            Cell::Int(all.iter().map(|s| s.calc_errors as i64).sum()),
            Cell::Int(n as i64),
        ],
        vec![
            Cell::text("steps replayed from the journal"),
            Cell::Int(all.iter().map(|s| s.replayed_tool_calls as i64).sum()),
            Cell::Int(n as i64),
        ],
        vec![
            Cell::text("episodes ended by"),
            Cell::text(if stops.is_empty() {
                "—".to_string()
            } else {
                stops
            }),
            Cell::Int(n as i64),
        ],
    ];
    vec![Table {
        name: "arithmetic".into(),
        title: "Arithmetic with a calculator tool (agent loop check)".into(),
        caption: String::new(),
        decimals: None,
        columns: vec!["measure".into(), "value [95% CI]".into(), "n".into()],
        rows,
        notes: {
            let mut notes = vec![
                "Shares: Wilson intervals; means: t intervals over episodes.".to_string(),
                "A built-in check of the agent loop, not a paper's study.".to_string(),
                "Shares are proportions (0–1), three decimals; n = episodes. \u{2014}: no episode to estimate from; \u{2020}: n < 5, the interval is unreliable.".to_string(),
            ];
            if failed > 0 {
                notes.push(format!("{failed} samples failed (provider errors) and are left out; `shammie resume --retry-failed` solves them again."));
            }
            notes
        },
    }]
}
