//! Study `constitution` (Kundu et al. 2023, STUDIES.md §7): specific versus general
//! principles for constitutional AI. So far: the `traits` evaluation.

pub mod evals;
pub mod traits;
