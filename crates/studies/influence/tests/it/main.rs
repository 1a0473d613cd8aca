//! Engine-level tests of `influence/queries` with a planted lab: the job the study hands
//! the lab (queries, candidates, fit sample, settings) and the analysis of planted scores,
//! each against values computed independently here.

mod queries;
