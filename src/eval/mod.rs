//! Evaluation: running a workflow over a dataset of cases, scoring each run, and comparing
//! experiments. Every case is a normal trace; this module holds what is particular to
//! evaluating: the dataset (`dataset`), the statistics that compare two experiments
//! (`compare`), and what the CLI and `serve` both read back from the store: an experiment's
//! report (`report`) and two experiments paired case by case (`pairing`); and which cases a
//! shard of `eval --shard K/N` runs (`shard`).

pub mod compare;
pub mod dataset;
pub mod pairing;
pub mod report;
pub mod shard;
