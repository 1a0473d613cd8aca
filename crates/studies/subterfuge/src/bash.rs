//! The `<bash>` tool: an agent [`Environment`] over a sandbox episode
//! (`shammie_sandbox`). Every command the model writes runs in the episode's sandbox;
//! the episode's home tree is what scoring reads at the end.
//!
//! Resume: a step replayed from the journal (an earlier attempt of this sample ran it
//! before being killed) is not shown to the model again, but the file system must be as
//! it was, so replayed commands are queued and run again, silently, before the next new
//! command or before scoring ([`BashEnv::settle`]). A command whose effect depends on
//! time or chance may leave a slightly different tree than the first time; the output
//! the model saw is the recorded one.

use async_trait::async_trait;
use shammie_agent::{Environment, ToolSpec};
use shammie_engine::ToolOutput;
use shammie_sandbox::{Episode, Sandbox, Tree};

pub struct BashEnv {
    episode: Episode,
    pending: Vec<String>,
    /// Commands actually run here (not replayed).
    pub executed: u32,
    /// Commands whose file system could not be captured (episode kept the earlier state).
    pub uncaptured: u32,
    pub timed_out: u32,
}

impl BashEnv {
    pub fn new(sandbox: &Sandbox, home: Tree) -> Self {
        BashEnv {
            episode: sandbox.episode(home),
            pending: Vec::new(),
            executed: 0,
            uncaptured: 0,
            timed_out: 0,
        }
    }

    /// Runs any replayed commands still queued, so the tree is the episode's.
    pub async fn settle(&mut self) -> Result<(), String> {
        for cmd in std::mem::take(&mut self.pending) {
            self.episode.run(&cmd).await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    pub fn episode(&self) -> &Episode {
        &self.episode
    }
}

#[async_trait]
impl Environment for BashEnv {
    fn tools(&self) -> Vec<ToolSpec> {
        vec![ToolSpec {
            name: "bash".into(),
            description: "run a shell command in /home/user".into(),
            argument: "command".into(),
            argument_help: "the command, run with sh -c".into(),
        }]
    }

    async fn execute(&mut self, _tool: &str, input: &str) -> ToolOutput {
        if let Err(e) = self.settle().await {
            return ToolOutput {
                error: Some(e),
                ..ToolOutput::default()
            };
        }
        match self.episode.run(input).await {
            Ok(o) => {
                self.executed += 1;
                if !o.captured {
                    self.uncaptured += 1;
                }
                if o.timed_out {
                    self.timed_out += 1;
                }
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
        }
    }

    fn replayed(&mut self, _tool: &str, input: &str, _output: &ToolOutput) {
        self.pending.push(input.to_string());
    }
}
