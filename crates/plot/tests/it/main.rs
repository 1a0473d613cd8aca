//! Integration tests of the SVG charts: snapshots and checks on the rendered XML.
//!
//! One test binary per crate (one link, one copy of the dependencies on disk);
//! each module below is one former test file.

mod common;
mod render;
mod snapshots;
mod stacked;
