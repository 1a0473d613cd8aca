//! One file per subcommand.

pub(crate) mod analyze;
pub(crate) mod compare;
pub(crate) mod export;
pub(crate) mod generate;
pub(crate) mod influence;
pub(crate) mod list;
pub(crate) mod models;
pub(crate) mod resume;
pub(crate) mod run;
pub(crate) mod sandbox;
pub(crate) mod show;
pub(crate) mod train;
pub(crate) mod view;
