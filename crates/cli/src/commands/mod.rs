//! One file per subcommand.

pub mod list;
pub mod resume;
pub mod run;
pub mod show;
