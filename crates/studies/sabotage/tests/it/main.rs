//! `sabotage`'s tasks end to end on scripted models with planted effects; every expected
//! number is computed in the tests from the planted rules, never read back from the study.

mod code;
mod common;
mod decisions;
mod oversight;
mod sandbagging;
