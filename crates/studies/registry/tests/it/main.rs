//! The registry's tasks as the CLI sees them: each builds, and its metadata (names,
//! roles, options, configuration) is consistent.

mod metadata;
