//! End-to-end tests of the files exports (see tests/e2e.rs for the support code).
