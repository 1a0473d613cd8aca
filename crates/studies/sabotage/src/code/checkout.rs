//! The engineer's checkout: an agent [`Environment`] over a sandbox episode whose home is
//! the repository. Two tools:
//! - `write`: the first line is a path, the rest the file's new content; written into the
//!   episode's tree as data, nothing runs;
//! - `bash` (unless `tools=files`): a shell command, run in the sandbox
//!   (`shammie_sandbox`), never on the host.
//!
//! Resume: steps replayed from the journal are queued and done again, silently and in
//! order, before the next new step or before the commit is read ([`Checkout::settle`]),
//! as in `subterfuge`'s `<bash>` tool.

use async_trait::async_trait;
use shammie_agent::{Environment, ToolSpec};
use shammie_engine::ToolOutput;
use shammie_sandbox::{Episode, Sandbox, Tree};

/// What one replayed or new step does.
enum Action {
    Bash(String),
    Write(String),
}

pub struct Checkout {
    episode: Episode,
    bash: bool,
    pending: Vec<Action>,
    /// Commands run here (not replayed).
    pub commands: u32,
    /// Files written here (not replayed).
    pub writes: u32,
}

/// Splits a `write` input into its path and content (the content is everything after
/// the first newline; a trailing newline is kept as written).
pub fn split_write(input: &str) -> Result<(&str, &str), String> {
    let input = input.strip_prefix('\n').unwrap_or(input);
    let (path, content) = input.split_once('\n').unwrap_or((input, ""));
    let path = path.trim();
    if path.is_empty() {
        return Err("write: the first line must be the file's path".into());
    }
    Ok((path, content))
}

impl Checkout {
    pub fn new(sandbox: &Sandbox, repo: Tree, bash: bool) -> Self {
        Checkout {
            episode: sandbox.episode(repo),
            bash,
            pending: Vec::new(),
            commands: 0,
            writes: 0,
        }
    }

    fn write(&mut self, input: &str) -> Result<String, String> {
        let (path, content) = split_write(input)?;
        self.episode
            .write_file(path, content)
            .map_err(|e| format!("write: {e}"))?;
        Ok(format!("wrote {} bytes to {path}", content.len()))
    }

    /// Does any replayed steps still queued, so the tree is the episode's.
    pub async fn settle(&mut self) -> Result<(), String> {
        for a in std::mem::take(&mut self.pending) {
            match a {
                Action::Bash(cmd) => {
                    self.episode.run(&cmd).await.map_err(|e| e.to_string())?;
                }
                // A write refused the first time is refused again; nothing to redo.
                Action::Write(input) => {
                    let _ = self.write(&input);
                }
            }
        }
        Ok(())
    }

    /// The repository now.
    pub fn tree(&self) -> &Tree {
        self.episode.state()
    }
}

#[async_trait]
impl Environment for Checkout {
    fn tools(&self) -> Vec<ToolSpec> {
        let mut t = vec![ToolSpec {
            name: "write".into(),
            description: "write a file: the first line is its path (relative to the repository root), the rest its whole new content".into(),
            argument: "file".into(),
            argument_help: "the file's path on the first line, then its whole content".into(),
        }];
        if self.bash {
            t.push(ToolSpec {
                name: "bash".into(),
                description: "run a shell command in the repository root".into(),
                argument: "command".into(),
                argument_help: "the command, run with sh -c".into(),
            });
        }
        t
    }

    async fn execute(&mut self, tool: &str, input: &str) -> ToolOutput {
        if let Err(e) = self.settle().await {
            return ToolOutput {
                error: Some(e),
                ..ToolOutput::default()
            };
        }
        match tool {
            "write" => match self.write(input) {
                Ok(o) => {
                    self.writes += 1;
                    ToolOutput {
                        output: o,
                        ..ToolOutput::default()
                    }
                }
                Err(e) => ToolOutput {
                    error: Some(e),
                    ..ToolOutput::default()
                },
            },
            "bash" if self.bash => match self.episode.run(input).await {
                Ok(o) => {
                    self.commands += 1;
                    ToolOutput {
                        output: o.transcript(),
                        exit_status: o.exit_code,
                        ..ToolOutput::default()
                    }
                }
                Err(e) => ToolOutput {
                    error: Some(e.to_string()),
                    ..ToolOutput::default()
                },
            },
            other => ToolOutput {
                error: Some(format!("there is no tool {other:?}")),
                ..ToolOutput::default()
            },
        }
    }

    fn replayed(&mut self, tool: &str, input: &str, _output: &ToolOutput) {
        match tool {
            "write" => self.pending.push(Action::Write(input.to_string())),
            "bash" if self.bash => self.pending.push(Action::Bash(input.to_string())),
            _ => {}
        }
    }
}
