//! Integration tests of the model layer: providers on the wire, the cache and retries.
//!
//! One test binary per crate (one link, one copy of the dependencies on disk);
//! each module below is one former test file.

mod cache;
mod common;
mod providers;
mod retries;
