//! Evaluation: running a workflow over a dataset of cases, scoring each run, and comparing
//! experiments. Every case is a normal trace; this module holds what is particular to
//! evaluating: the dataset (`dataset`) and the statistics that compare two experiments
//! (`compare`).

pub mod compare;
pub mod dataset;
