//! Shared machinery of the end-to-end tests: a fake OpenAI server and the `TestEnv` builder.

pub mod env;
pub mod fake_openai;
pub mod serve;

#[allow(unused_imports)]
pub use env::*;
#[allow(unused_imports)]
pub use fake_openai::{FakeOpenAI, Recorded, Reply, TOOL_CALL_USAGE, refused_url};
