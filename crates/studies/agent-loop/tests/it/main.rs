//! The agent loop end to end through the engine, with an in-process scripted model:
//! tool calls recorded in order, the observation fed back, the planted accuracy
//! recovered, and steps journaled and replayed on resume instead of executed again;
//! and snapshots of the prompts of the first episodes.

mod episodes;
mod prompts;
