//! One file per subcommand.

pub mod analyze;
pub mod generate;
pub mod list;
pub mod models;
pub mod resume;
pub mod run;
pub mod show;
