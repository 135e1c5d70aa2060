//! Fills a store for the storage benchmarks, through the library's own writer:
//! `bench_fill STORE traces N` (STORE: a path or a postgres:// URL) writes N small traces (every 1000th in group `bench-group`), and
//! `bench_fill STORE spans N` writes one trace of N spans (nested ten deep, with events).

use std::sync::Arc;

use agentrace::store::{Store, StoreWriter};
use agentrace::trace::{Recorder, Sink, SpanKind, Status, Trace, TraceId};
use serde_json::{Map, json};

fn trace(name: &str, group: Option<String>) -> Trace {
    Trace {
        group_id: group,
        ..Trace::running(TraceId::generate(), name, name)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(path), Some(what), Some(n)) = (args.get(1), args.get(2), args.get(3)) else {
        eprintln!("usage: bench_fill STORE traces|spans N");
        std::process::exit(2);
    };
    let n: usize = n.parse().unwrap_or(0);
    let location = agentrace::store::Location::parse(path).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    let store = Store::open(location).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    let writer = StoreWriter::spawn(store);
    let sinks: Vec<Arc<dyn Sink>> = vec![writer.sink()];
    match what.as_str() {
        "traces" => {
            for i in 0..n {
                let group = (i % 1000 == 0).then(|| "bench-group".to_string());
                let rec = Recorder::start(trace(&format!("bench {}", i % 7), group), sinks.clone());
                let s = rec.span(None, SpanKind::Custom, "step", Map::new());
                s.end(Status::Ok, None);
                rec.finish(Status::Ok, None);
            }
        }
        "spans" => {
            let rec = Recorder::start(trace("big trace", None), sinks.clone());
            let mut stack = Vec::new();
            for i in 0..n {
                if stack.len() >= 10 {
                    let done: agentrace::trace::SpanHandle = stack.pop().expect("non-empty");
                    done.end(Status::Ok, None);
                }
                let parent = stack.last().map(|s: &agentrace::trace::SpanHandle| s.id());
                let mut attrs = Map::new();
                attrs.insert("index".into(), json!(i));
                let s = rec.span(parent, SpanKind::Custom, format!("span {i}"), attrs);
                if i % 10 == 0 {
                    let mut a = Map::new();
                    a.insert("i".into(), json!(i));
                    s.add_event("tick", a);
                }
                if i % 2 == 0 {
                    stack.push(s);
                } else {
                    s.end(Status::Ok, None);
                }
            }
            while let Some(s) = stack.pop() {
                s.end(Status::Ok, None);
            }
            rec.finish(Status::Ok, None);
        }
        _ => {
            eprintln!("usage: bench_fill STORE traces|spans N");
            std::process::exit(2);
        }
    }
    if let Err(e) = writer.close() {
        eprintln!("{e}");
        std::process::exit(1);
    }
}
