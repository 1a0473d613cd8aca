//! The engine's contract: single-stage tasks against real providers talking to the
//! loopback mock (`engine`), and multi-stage tasks with an in-process scripted model
//! (`pipeline`). One test binary per crate.

mod engine;
mod pipeline;
mod units;
