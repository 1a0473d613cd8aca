//! Runs commands a model wrote, isolated from the host; knows nothing of models.
//!
//! An [`Episode`] is a home directory ([`Tree`], data in memory) and the commands run
//! against it. Each command runs in a fresh bubblewrap sandbox (`bwrap`, Debian's
//! `bubblewrap`: the tool Flatpak uses, maintained, small and audited):
//! - new user, mount, PID, network, IPC, UTS and cgroup namespaces; uid/gid 1000 inside,
//!   all capabilities dropped, no further user namespaces, a new session (no terminal
//!   injection), killed with its parent;
//! - a root file system holding only `/usr` (read-only, with the `/bin`, `/lib`… links), a
//!   private `/proc` (only the sandbox's processes), a minimal `/dev`, a size-capped
//!   `/tmp`, and the home `/home/user` as a size-capped tmpfs filled from the episode's
//!   tree — no `/etc`, `/root`, `/home` of the host, no run directory, no cache, no keys;
//! - no network interface but an unconfigured loopback, and `socket` allowed only for
//!   `AF_UNIX` by the seccomp filter (`seccomp.rs`), which also denies namespace, mount,
//!   tracing, keyring, BPF, module and clock calls;
//! - rlimits on CPU seconds, address space, processes, file size and open files, a
//!   wall-clock timeout (inside, by `timeout`, then by killing the sandbox from outside),
//!   and stdout/stderr capped as they are read.
//!
//! State between commands: the home tree enters the sandbox as a tar stream
//! (`--ro-bind-data`) unpacked into the tmpfs; after the command the sandbox kills
//! whatever the command left running and streams the tree back out on a pipe, which
//! becomes the episode's new state. Nothing the model writes reaches the host's disk;
//! the returned stream is parsed as hostile input ([`tree`]). If the capture fails (the
//! command killed the capture step, or exceeded the tree's size), the episode keeps its
//! state from before the command and the output says so.
//!
//! Where bubblewrap or user namespaces are missing, [`Sandbox::new`] fails with
//! [`SandboxError::Unavailable`] saying what to install; nothing here ever runs a
//! command on the host instead.

pub mod seccomp;
pub mod tree;

mod run;

use std::path::PathBuf;
use std::time::Duration;

pub use tree::{Change, ChangeKind, Entry, Tree};

/// What a command may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// CPU seconds per process (RLIMIT_CPU).
    pub cpu_secs: u64,
    /// Address space per process, bytes (RLIMIT_AS).
    pub memory_bytes: u64,
    /// Processes of the sandbox's user (RLIMIT_NPROC, counted in its own namespace).
    pub processes: u64,
    /// Largest file a process may write, bytes (RLIMIT_FSIZE).
    pub file_size_bytes: u64,
    /// Open files per process (RLIMIT_NOFILE).
    pub open_files: u64,
    /// Wall-clock time of one command.
    pub wall: Duration,
    /// Kept bytes of stdout and of stderr each (the rest is read and dropped).
    pub output_bytes: usize,
    /// Size of the home tmpfs (and so of the episode's files), bytes; `/tmp` gets the same.
    pub disk_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            cpu_secs: 10,
            memory_bytes: 1 << 30,
            processes: 64,
            file_size_bytes: 16 << 20,
            open_files: 256,
            wall: Duration::from_secs(20),
            output_bytes: 64 << 10,
            disk_bytes: 64 << 20,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The isolation cannot be set up here; commands are refused, never run unsandboxed.
    #[error("the sandbox is unavailable: {0}")]
    Unavailable(String),
    #[error("sandbox: {0}")]
    Io(String),
    /// The file system that came back from a command could not be read.
    #[error("sandbox capture: {0}")]
    Capture(String),
}

/// A checked way to run sandboxed commands: bubblewrap found and a probe run under the
/// full isolation succeeded.
#[derive(Debug, Clone)]
pub struct Sandbox {
    bwrap: PathBuf,
    limits: Limits,
    filter: std::sync::Arc<Vec<u8>>,
}

/// What one command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutput {
    /// The first [`Limits::output_bytes`] bytes, lossy UTF-8.
    pub stdout: String,
    pub stderr: String,
    /// Total bytes written to each, kept or not.
    pub stdout_bytes: u64,
    pub stderr_bytes: u64,
    /// The command's exit status (124: it ran out of time inside the sandbox).
    pub exit_code: Option<i32>,
    /// Ran past [`Limits::wall`].
    pub timed_out: bool,
    /// The file system was captured after the command (module comment); when false the
    /// episode kept its state from before it and `note` says why.
    pub captured: bool,
    pub note: Option<String>,
    pub duration: Duration,
}

impl CommandOutput {
    pub fn stdout_truncated(&self) -> bool {
        self.stdout_bytes > self.stdout.len() as u64
    }
    pub fn stderr_truncated(&self) -> bool {
        self.stderr_bytes > self.stderr.len() as u64
    }

    /// What a model is shown of the command: stdout then stderr, with notes on
    /// truncation, the timeout and a lost capture.
    pub fn transcript(&self) -> String {
        let mut s = self.stdout.clone();
        if self.stdout_truncated() {
            s.push_str(&format!(
                "\n[stdout truncated: {} bytes in all]",
                self.stdout_bytes
            ));
        }
        if !self.stderr.is_empty() {
            if !s.is_empty() && !s.ends_with('\n') {
                s.push('\n');
            }
            s.push_str(&self.stderr);
            if self.stderr_truncated() {
                s.push_str(&format!(
                    "\n[stderr truncated: {} bytes in all]",
                    self.stderr_bytes
                ));
            }
        }
        if self.timed_out {
            s.push_str("\n[the command timed out]");
        }
        if let Some(n) = &self.note {
            s.push_str(&format!("\n[{n}]"));
        }
        s
    }
}

const INSTALL_HINT: &str = "install bubblewrap (Debian/Ubuntu: `apt-get install bubblewrap`) \
and allow unprivileged user namespaces (`sysctl kernel.unprivileged_userns_clone=1`, or on \
Ubuntu 24.04+ an AppArmor profile for bwrap); Shammie never runs model-written commands \
without the sandbox";

impl Sandbox {
    /// Finds `bwrap` (`$SHAMMIE_BWRAP`, else on `PATH`) and runs a probe command under the
    /// full isolation; any failure is [`SandboxError::Unavailable`] with what to install.
    pub async fn new(limits: Limits) -> Result<Sandbox, SandboxError> {
        let bwrap = match std::env::var_os("SHAMMIE_BWRAP") {
            Some(p) => PathBuf::from(p),
            None => find_on_path("bwrap").ok_or_else(|| {
                SandboxError::Unavailable(format!("`bwrap` not found on PATH; {INSTALL_HINT}"))
            })?,
        };
        Sandbox::with_bwrap(bwrap, limits).await
    }

    /// [`Sandbox::new`] with the given `bwrap` executable.
    pub async fn with_bwrap(bwrap: PathBuf, limits: Limits) -> Result<Sandbox, SandboxError> {
        let sb = Sandbox {
            bwrap,
            limits,
            filter: std::sync::Arc::new(seccomp::filter_bytes()?),
        };
        let mut probe = Episode::new(&sb, Tree::new());
        let out = probe.run_inner("echo ok").await.map_err(|e| {
            SandboxError::Unavailable(format!("the probe command failed: {e}; {INSTALL_HINT}"))
        })?;
        if out.exit_code != Some(0) || out.stdout.trim() != "ok" || !out.captured {
            return Err(SandboxError::Unavailable(format!(
                "the probe command failed (exit {:?}): {}; {INSTALL_HINT}",
                out.exit_code,
                out.stderr.trim()
            )));
        }
        Ok(sb)
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// A new episode on `files`.
    pub fn episode(&self, files: Tree) -> Episode {
        Episode::new(self, files)
    }
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|f| f.is_file())
    })
}

/// A home tree and the commands run against it, in order.
#[derive(Debug, Clone)]
pub struct Episode {
    sandbox: Sandbox,
    start: Tree,
    state: Tree,
}

impl Episode {
    pub fn new(sandbox: &Sandbox, files: Tree) -> Self {
        Episode {
            sandbox: sandbox.clone(),
            start: files.clone(),
            state: files,
        }
    }

    /// Runs one shell command (`sh -c`) in `/home/user`; the episode's state becomes the
    /// file system it leaves (module comment). Errors only when the sandbox itself cannot
    /// be started; a command that fails, times out or floods its output is a normal
    /// [`CommandOutput`].
    pub async fn run(&mut self, command: &str) -> Result<CommandOutput, SandboxError> {
        self.run_inner(command).await
    }

    /// The files the episode started with.
    pub fn start(&self) -> &Tree {
        &self.start
    }

    /// The files now.
    pub fn state(&self) -> &Tree {
        &self.state
    }

    /// Writes a file into the episode's tree without running anything (an edit a model
    /// made as data); the path is checked as [`Tree::write_file`] checks it.
    pub fn write_file(&mut self, path: &str, data: impl Into<Vec<u8>>) -> Result<(), String> {
        self.state.write_file(path, data)
    }

    /// What changed since the start.
    pub fn changes(&self) -> Vec<Change> {
        self.start.diff(&self.state)
    }
}
