//! Multi-turn agent episodes: the model answers, the harness reads an action from its
//! answer, runs the tool through the sample's context (recorded, journaled, replayed on
//! resume), shows the model the result, and goes on until the model gives its final
//! answer, stops acting, or a turn or token budget runs out.
//!
//! Actions are text tags (`<bash>ls</bash>`), which every model can produce — base and
//! local models included — and which is how the papers' environments exchanged
//! commands. The closing tags are stop sequences, so the model halts after one action
//! instead of inventing the tool's output; text after the first action is cut and
//! noted; an action cut off by the token limit is not run.
//!
//! Invariants: every model call and tool step goes through [`SampleContext`] (so it is in
//! the transcript and never paid or executed twice on resume); a step replayed on
//! resume is handed to [`Environment::replayed`] instead of [`Environment::execute`];
//! the loop never runs more than `max_turns` model turns.
//!
//! Models with native tool calling (Anthropic, OpenAI) can act through it instead
//! ([`ActionFormat`]): each tool becomes a function with one string argument, every
//! call of a turn is run in order and answered by a tool-result turn, and the final
//! answer is still the final tag in text. Both formats record the same steps, so
//! replay on resume is the same.
//!
//! What is not here: no sandbox (an environment brings its own), no study logic.

pub mod tags;

use async_trait::async_trait;
use shammie_core::{GenerateRequest, Message, StopReason, ToolDefinition};
use shammie_engine::{SampleContext, SampleError, ToolOutput};

/// A tool the model may call, as `<name>input</name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolSpec {
    pub name: String,
    /// One line for the system prompt, e.g. "run a shell command".
    pub description: String,
    /// For native tool calling: the name of the tool's one string argument (e.g.
    /// `command`) and what it holds.
    pub argument: String,
    pub argument_help: String,
}

/// The world an episode acts in.
#[async_trait]
pub trait Environment: Send {
    /// The tools, by tag name.
    fn tools(&self) -> Vec<ToolSpec>;
    /// Runs one action. Called only for steps that were not already taken by an earlier,
    /// killed attempt of the same episode.
    async fn execute(&mut self, tool: &str, input: &str) -> ToolOutput;
    /// A step the killed attempt took, replayed from the journal: bring any state the
    /// environment keeps up to date without repeating side effects. Default: nothing.
    fn replayed(&mut self, _tool: &str, _input: &str, _output: &ToolOutput) {}
    /// How a result is shown to the model (the next user turn).
    fn observation(&self, _tool: &str, out: &ToolOutput) -> String {
        default_observation(out)
    }
}

/// `<output>…</output>`, with the exit status when there is one, or `<error>…</error>`
/// when the tool could not run.
pub fn default_observation(out: &ToolOutput) -> String {
    if let Some(e) = &out.error {
        return format!("<error>{e}</error>");
    }
    match out.exit_status {
        Some(code) => format!("<output exit_status=\"{code}\">{}</output>", out.output),
        None => format!("<output>{}</output>", out.output),
    }
}

/// How an episode is run.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The model role that acts.
    pub role: String,
    pub system: Option<String>,
    /// Most model turns.
    pub max_turns: u32,
    /// Output tokens per model turn.
    pub max_tokens: u32,
    /// Most output tokens over the whole episode (`None`: no limit beyond turns).
    pub token_budget: Option<u64>,
    pub temperature: Option<f64>,
    /// A tag that ends the episode with its contents as the final answer (e.g. `answer`).
    pub final_tag: Option<String>,
    /// Sent when the model neither acts nor answers; `None` ends the episode there.
    pub nudge: Option<String>,
    /// Earlier turns shown before the first message (worked examples); not part of the
    /// episode's own conversation.
    pub examples: Vec<Message>,
    /// Text tags, native tool calls, or native where the model has them (default).
    pub actions: ActionFormat,
    /// Added to every request's nonce (e.g. the i-th of several episodes of one prompt).
    pub nonce: u64,
}

impl AgentConfig {
    pub fn new(role: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            system: None,
            max_turns: 10,
            max_tokens: 512,
            token_budget: None,
            temperature: Some(0.0),
            final_tag: None,
            nudge: None,
            examples: Vec::new(),
            actions: ActionFormat::Auto,
            nonce: 0,
        }
    }
}

impl AgentConfig {
    /// Whether actions will be native tool calls for a model with `caps`.
    pub fn native_for(&self, caps: &shammie_core::Capabilities) -> Result<bool, SampleError> {
        match self.actions {
            ActionFormat::Auto => Ok(caps.native_tools),
            ActionFormat::Tags => Ok(false),
            ActionFormat::Native if caps.native_tools => Ok(true),
            ActionFormat::Native => Err(SampleError::Protocol(format!(
                "the `{}` model has no native tool calling; use text-tag actions",
                self.role
            ))),
        }
    }
}

/// Why an episode ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopCause {
    /// The model gave its final answer (the final tag).
    FinalAnswer,
    /// The model answered without an action (and there was no nudge, or it was ignored).
    NoAction,
    MaxTurns,
    TokenBudget,
}

impl StopCause {
    pub fn as_str(self) -> &'static str {
        match self {
            StopCause::FinalAnswer => "final_answer",
            StopCause::NoAction => "no_action",
            StopCause::MaxTurns => "max_turns",
            StopCause::TokenBudget => "token_budget",
        }
    }
}

/// One action the model took and what came back.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub tool: String,
    pub input: String,
    pub output: ToolOutput,
}

/// A finished episode.
#[derive(Debug, Clone)]
pub struct Episode {
    /// The whole conversation, starting with the task's first user message.
    pub messages: Vec<Message>,
    pub steps: Vec<Step>,
    /// Model turns taken.
    pub turns: u32,
    pub output_tokens: u64,
    /// The final tag's contents, when the model gave one.
    pub final_answer: Option<String>,
    pub stop: StopCause,
}

shammie_engine::option_choice! {
    /// How the model's actions are read (also a task option value: `auto`, `tags`, `native`).
    pub enum ActionFormat {
        /// Native tool calls where the model has them, else text tags.
        Auto = "auto",
        /// `<tool>input</tool>` in the text, whatever the model.
        Tags = "tags",
        /// The provider's native tool calling (an error for models without it).
        Native = "native",
    }
}

/// The JSON Schema of a tool's one string argument, for native tool calling.
fn tool_definition(t: &ToolSpec) -> ToolDefinition {
    ToolDefinition {
        name: t.name.clone(),
        description: t.description.clone(),
        input_schema: serde_json::json!({
            "type": "object",
            "properties": { t.argument.clone(): { "type": "string", "description": t.argument_help } },
            "required": [t.argument],
        }),
    }
}

/// A tool result as a native tool-result turn: the output, with a non-zero exit status
/// noted; an error when the tool could not run.
pub fn native_result(out: &ToolOutput) -> (String, bool) {
    if let Some(e) = &out.error {
        return (e.clone(), true);
    }
    match out.exit_status {
        Some(code) if code != 0 => (format!("{}\n[exit status {code}]", out.output), false),
        _ => (out.output.clone(), false),
    }
}

/// Runs one episode: `first` is the task's opening user message.
pub async fn run_episode(
    cx: &SampleContext<'_>,
    cfg: &AgentConfig,
    env: &mut dyn Environment,
    first: String,
) -> Result<Episode, SampleError> {
    let caps = cx.capabilities(&cfg.role)?;
    let native = cfg.native_for(&caps)?;
    let tools = env.tools();
    // In text mode the tools and the final answer are tags; natively only the final
    // answer is.
    let mut names: Vec<&str> = if native {
        Vec::new()
    } else {
        tools.iter().map(|t| t.name.as_str()).collect()
    };
    if let Some(f) = &cfg.final_tag {
        names.push(f.as_str());
    }
    let stops: Vec<String> = names.iter().map(|n| format!("</{n}>")).collect();
    let definitions: Vec<ToolDefinition> = if native {
        tools.iter().map(tool_definition).collect()
    } else {
        Vec::new()
    };

    let mut messages = vec![Message::user(first)];
    let mut steps = Vec::new();
    let mut output_tokens = 0u64;
    let mut turns = 0u32;
    let mut nudged = false;
    let end = |messages, steps, turns, output_tokens, answer, cause| {
        Ok(Episode {
            messages,
            steps,
            turns,
            output_tokens,
            final_answer: answer,
            stop: cause,
        })
    };
    loop {
        if turns >= cfg.max_turns {
            return end(
                messages,
                steps,
                turns,
                output_tokens,
                None,
                StopCause::MaxTurns,
            );
        }
        if cfg.token_budget.is_some_and(|b| output_tokens >= b) {
            return end(
                messages,
                steps,
                turns,
                output_tokens,
                None,
                StopCause::TokenBudget,
            );
        }
        let max_tokens = match cfg.token_budget {
            Some(b) => cfg
                .max_tokens
                .min((b - output_tokens).min(u32::MAX as u64) as u32),
            None => cfg.max_tokens,
        };
        let mut req = GenerateRequest::user("", max_tokens);
        req.system = cfg.system.clone();
        req.messages = cfg.examples.iter().chain(&messages).cloned().collect();
        req.temperature = cfg.temperature;
        if caps.stop_sequences {
            req.stop = stops.clone();
        }
        req.tools = definitions.clone();
        req.nonce = cfg.nonce;
        // Each model turn is labelled `turn N` (inside the caller's step, if any).
        let c = cx
            .sublabelled(&format!("turn {}", turns + 1))
            .generate(&cfg.role, req)
            .await?;
        turns += 1;
        output_tokens += c.usage.output_tokens;

        if native && !c.tool_calls.is_empty() {
            let mut m = Message::assistant(c.text.clone());
            m.tool_calls = c.tool_calls.clone();
            messages.push(m);
            // Every call of the turn gets its result, in order (both APIs require it).
            for call in &c.tool_calls {
                let arg = tools.iter().find(|t| t.name == call.name).map(|t| {
                    serde_json::from_str::<serde_json::Value>(&call.arguments)
                        .ok()
                        .and_then(|v| v.get(&t.argument)?.as_str().map(str::to_string))
                        .ok_or_else(|| {
                            format!(
                                "the arguments must be a JSON object with a string `{}`",
                                t.argument
                            )
                        })
                });
                let refused = match &arg {
                    None => Some(format!("there is no tool named `{}`", call.name)),
                    Some(Err(why)) => Some(why.clone()),
                    Some(Ok(_)) => None,
                };
                if let Some(why) = &refused {
                    cx.note(format!(
                        "tool call {} ({}) not run: {why}",
                        call.id, call.name
                    ));
                }
                let (content, is_error) = match arg {
                    None | Some(Err(_)) => (refused.unwrap_or_default(), true),
                    Some(Ok(input)) => {
                        let out = take_step(cx, env, &call.name, &input).await?;
                        let r = native_result(&out);
                        steps.push(Step {
                            tool: call.name.clone(),
                            input,
                            output: out,
                        });
                        r
                    }
                };
                messages.push(Message::tool_result(call.id.clone(), content, is_error));
            }
            continue;
        }

        let mut text = c.text;
        let mut action = tags::first_of(&text, &names);
        if let Some(t) = action.as_ref().filter(|t| !t.closed) {
            if c.stop_reason == StopReason::MaxTokens {
                // Cut off mid-action: running half a command would be wrong.
                cx.note(format!(
                    "the <{}> action was cut off by max_tokens ({max_tokens}); not run",
                    t.name
                ));
                action = None;
            } else {
                // Stopped by the closing tag (a stop sequence is not part of the returned
                // text; OpenAI-style APIs report it as an ordinary stop) or at the end of
                // its turn: close the tag so the conversation shows the whole action.
                text.push_str(&format!("</{}>", t.name));
                action = tags::first_of(&text, &names);
            }
        }
        if let Some(t) = &action {
            if t.span.end < text.len() && !text[t.span.end..].trim().is_empty() {
                cx.note(format!(
                    "cut {} bytes the model wrote after its <{}> action",
                    text.len() - t.span.end,
                    t.name
                ));
            }
            text.truncate(t.span.end);
        }
        messages.push(Message::assistant(text.clone()));
        let Some(t) = action else {
            match &cfg.nudge {
                Some(n) if !nudged => {
                    nudged = true;
                    messages.push(Message::user(n.clone()));
                    continue;
                }
                _ => {
                    return end(
                        messages,
                        steps,
                        turns,
                        output_tokens,
                        None,
                        StopCause::NoAction,
                    )
                }
            }
        };
        let input = t.inner(&text).trim().to_string();
        if cfg.final_tag.as_deref() == Some(t.name.as_str()) {
            return end(
                messages,
                steps,
                turns,
                output_tokens,
                Some(input),
                StopCause::FinalAnswer,
            );
        }
        let out = take_step(cx, env, &t.name, &input).await?;
        messages.push(Message::user(env.observation(&t.name, &out)));
        steps.push(Step {
            tool: t.name.clone(),
            input,
            output: out,
        });
    }
}

/// One tool step through the sample's context (recorded, journaled, replayed on
/// resume); a replayed step is handed to the environment to restore its state.
async fn take_step(
    cx: &SampleContext<'_>,
    env: &mut dyn Environment,
    tool: &str,
    input: &str,
) -> Result<ToolOutput, SampleError> {
    let out = {
        let env_ref = &mut *env;
        let (t, i) = (tool.to_string(), input.to_string());
        cx.tool(
            tool,
            serde_json::json!({ "text": input }),
            move || async move { env_ref.execute(&t, &i).await },
        )
        .await?
    };
    if out.replayed {
        env.replayed(tool, input, &out);
    }
    Ok(out)
}
