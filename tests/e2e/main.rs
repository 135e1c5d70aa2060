//! End-to-end specification of agentrace: the real binary, a real (fake) OpenAI server, a real
//! store in a temp dir. Each test states one clause of the contract (docs/contract.md) or the README.
//! One file per capability; `support` (tests/support/) holds the shared machinery and `traces`
//! the helpers that read traces back. Rendered output (trees, tables, the waterfall, diff, stats,
//! errors) is compared with the insta snapshots in `snapshots/`, through the filters of
//! `support/snapshot.rs`.

// A test that meets an unexpected state should stop right there, and say where.
#![allow(clippy::unwrap_used)]

#[path = "../support/mod.rs"]
mod support;
mod traces;

mod agents;
mod budgets;
mod ci;
mod concurrency;
mod control_flow;
mod eval;
mod examples;
mod failures;
mod files;
mod groups;
mod help;
mod human_scores;
mod ids;
// serve under concurrent ingest: one writer, group commit.
mod ingest_load;
mod insights;
mod interruption;
// Which module of `src/` may import which.
mod layers;
mod list;
mod mcp;
mod mcp_agents;
mod nesting;
mod otlp;
mod processes;
mod push;
mod real_responses;
mod real_server;
mod replay;
// Agent steps on the OpenAI Responses API (`api: responses`).
mod responses;
mod retries;
mod robust;
mod run;
mod scores;
mod secrets;
mod serve;
mod serve_experiments;
// The trace page and the HTML export in headless Chromium.
mod serve_trace_page;
mod shapes;
mod shards;
mod show;
mod store;
mod team_store;
mod team_store_tls;
mod templates;
mod terminal;
mod tls;
mod tooling;
mod validation;

// files.rs names these from the crate root.
use examples::examples;
use traces::run_json;
