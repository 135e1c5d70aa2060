//! Property tests over the two ingest parsers, which read whatever the network sends: on any
//! body, never a panic, and every refusal says why. Bodies are mutations of real payloads (the
//! Agents SDK's captured requests; agentrace's own OTLP export in JSON and protobuf) and random
//! bytes. What the parsers accept must also store: it goes through `Store::ingest` into a real
//! SQLite file. `PROPTEST_CASES` sets the number of cases (default 2,000 per property here; the
//! store round trip makes each case cost a few milliseconds).

use std::sync::OnceLock;

use proptest::prelude::*;
use serde_json::Value;

use super::{Ingest, IngestError, openai, otlp};
use crate::store::Store;

const SDK: &str = include_str!("../../tests/fixtures/openai-agents-sdk-ingest-payloads.json");

fn sdk_bodies() -> &'static [Vec<u8>] {
    static BODIES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    BODIES.get_or_init(|| {
        let bodies: Vec<Value> = serde_json::from_str(SDK).unwrap_or_default();
        bodies
            .iter()
            .map(|b| serde_json::to_vec_pretty(b).unwrap_or_default())
            .collect()
    })
}

/// agentrace's own OTLP export of a trace with every kind of span: (JSON, protobuf).
fn otlp_bodies() -> &'static (Vec<u8>, Vec<u8>) {
    static BODIES: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    BODIES.get_or_init(|| {
        use crate::export::otlp::{map, to_json};
        use prost::Message;
        let doc = crate::trace::fixture::every_kind();
        let request = map::request(std::slice::from_ref(&doc), map::resource("fuzz", &[]));
        let json = serde_json::to_vec_pretty(&to_json(&[doc], "fuzz")).unwrap_or_default();
        (json, request.encode_to_vec())
    })
}

fn mutate(seed: &[u8], ops: &[(usize, u8, u8)]) -> Vec<u8> {
    const ALPHABET: &[u8] = b" \"{}[]:,0123456789-+.eE\\nulltrufasTZ_xyz\x00\xff";
    let mut bytes = seed.to_vec();
    for &(pos, op, b) in ops {
        let c = ALPHABET[b as usize % ALPHABET.len()];
        if bytes.is_empty() {
            bytes.push(c);
            continue;
        }
        let i = pos % bytes.len();
        match op % 4 {
            0 => bytes[i] = c,
            1 => bytes.insert(i, c),
            2 => {
                bytes.remove(i);
            }
            // Cut the body short, as a dropped connection would.
            _ => bytes.truncate(i),
        }
    }
    bytes
}

/// A refusal says something; an acceptance stores.
fn check(result: Result<Ingest, IngestError>) {
    match result {
        Err(e) => assert!(!e.to_string().trim().is_empty(), "an empty reason"),
        Ok(ingest) => {
            let dir = tempfile::tempdir().expect("temp dir");
            let store = Store::open(dir.path().join("fuzz.db")).expect("store");
            store.ingest(&ingest).expect("what parses, stores");
            for header in &ingest.traces {
                store.load(header.trace_id).expect("the trace reads back");
            }
        }
    }
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(2_000)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn agents_sdk_payloads_never_panic(
        which in 0usize..2,
        ops in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 0..8),
    ) {
        let seed = &sdk_bodies()[which % sdk_bodies().len()];
        check(openai::parse(&mutate(seed, &ops)));
    }

    #[test]
    fn otlp_json_never_panics(
        ops in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 0..8),
    ) {
        check(otlp::parse_json(&mutate(&otlp_bodies().0, &ops)));
    }

    #[test]
    fn otlp_protobuf_never_panics(
        ops in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 0..8),
    ) {
        check(otlp::parse_protobuf(&mutate(&otlp_bodies().1, &ops)));
    }

    #[test]
    fn random_bytes_are_refused_not_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = openai::parse(&bytes);
        let _ = otlp::parse_json(&bytes);
        let _ = otlp::parse_protobuf(&bytes);
    }
}
