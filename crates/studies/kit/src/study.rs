//! How a study describes itself to the registry: its paper, its runnable tasks (options,
//! model roles, constructor) and, optionally, an analysis of data computed elsewhere.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use shammie_engine::{Analysis, EngineError, OptionSpec, Options, RoleSpec, Task};

/// A runnable task of a study.
pub struct TaskInfo {
    pub study: &'static str,
    pub name: &'static str,
    pub summary: &'static str,
    /// The options with their defaults and help (from the task's typed configuration).
    pub options: fn() -> Vec<OptionSpec>,
    pub roles: fn() -> Vec<RoleSpec>,
    build: fn(Options) -> Result<Arc<dyn Task>, EngineError>,
}

impl TaskInfo {
    /// A task of `study` called `name`, built by `build` from its typed options.
    pub const fn new(
        study: &'static str,
        name: &'static str,
        summary: &'static str,
        options: fn() -> Vec<OptionSpec>,
        roles: fn() -> Vec<RoleSpec>,
        build: fn(Options) -> Result<Arc<dyn Task>, EngineError>,
    ) -> Self {
        TaskInfo {
            study,
            name,
            summary,
            options,
            roles,
            build,
        }
    }

    pub fn path(&self) -> String {
        format!("{}/{}", self.study, self.name)
    }

    /// Builds the task from `--set` options (typed, defaults filled, unknown keys rejected).
    pub fn build(&self, options: BTreeMap<String, String>) -> Result<Arc<dyn Task>, EngineError> {
        (self.build)(Options::new(self.path(), options))
    }
}

/// A study's statistics over a file of data computed elsewhere, without any model
/// (`shammie analyze STUDY FILE`).
pub struct OfflineAnalysis {
    /// The options it reads (`key=value`), for help and error messages.
    pub options: fn() -> Vec<OptionSpec>,
    run: fn(&Path, Options) -> Result<Analysis, EngineError>,
}

impl OfflineAnalysis {
    /// An offline analysis that reads `options` and runs `run` on a file.
    pub const fn new(
        options: fn() -> Vec<OptionSpec>,
        run: fn(&Path, Options) -> Result<Analysis, EngineError>,
    ) -> Self {
        OfflineAnalysis { options, run }
    }

    /// Runs it over `file` with `options` (typed, defaults filled, unknown keys rejected);
    /// `study` names the study in option errors.
    pub fn run(
        &self,
        study: &str,
        file: &Path,
        options: BTreeMap<String, String>,
    ) -> Result<Analysis, EngineError> {
        (self.run)(file, Options::new(format!("{study} analysis"), options))
    }
}

/// A study: a paper and its tasks.
pub struct StudyInfo {
    pub name: &'static str,
    pub paper: &'static str,
    pub summary: &'static str,
    pub tasks: Vec<TaskInfo>,
    /// Its analysis of data computed elsewhere, if it offers one.
    pub offline: Option<OfflineAnalysis>,
}
