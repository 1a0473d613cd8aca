//! Engine-level tests of the reasoning-faithfulness tasks with in-process scripted
//! models: snapshots of the prompts of the first samples.

mod cot_faithfulness;
mod decomposition;
mod harness;
