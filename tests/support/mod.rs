//! Shared machinery of the end-to-end tests: a fake OpenAI server, the `TestEnv` builder, and
//! the filters of the snapshots of rendered output.

pub mod env;
pub mod fake_openai;
pub mod fake_responses;
pub mod serve;
pub mod snapshot;

#[allow(unused_imports)]
pub use env::*;
#[allow(unused_imports)]
pub use fake_openai::{FakeOpenAI, Recorded, Reply, TOOL_CALL_USAGE, refused_url};
#[allow(unused_imports)]
pub use snapshot::{snapshot_filters, table_filters};
