//! End-to-end tests of the otlp exports (see tests/e2e.rs for the support code).
