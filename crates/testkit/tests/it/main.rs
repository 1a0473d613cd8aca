//! Integration tests of the mock LLM server: wire formats, scripted replies and injected faults.
//!
//! One test binary per crate (one link, one copy of the dependencies on disk);
//! each module below is one former test file.

mod common;
mod faults;
mod server;
mod wire;
