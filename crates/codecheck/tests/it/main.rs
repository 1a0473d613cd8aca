//! The rules on positive and negative snippets (written for Shammie), each asserting the exact
//! rule and line, and the extraction of code from completions.
//!
//! One test binary per crate; each module below is one table.

mod extraction;
mod rules;
