//! Integration tests of the statistics: against statsmodels/scipy reference values and property checks.
//!
//! One test binary per crate (one link, one copy of the dependencies on disk);
//! each module below is one former test file.

mod bootstrap_properties;
mod glmm_reference;
mod mixed_reference;
mod reference;
