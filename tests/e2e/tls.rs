//! Model servers behind TLS: the certificate is checked against the system's roots (here a CA
//! made by the test, given as `SSL_CERT_FILE`), and a server that offers HTTP/2 carries every
//! later call of a run on the connection the first one opened, however many run at once.

use std::sync::atomic::Ordering;

use crate::support::*;
use crate::traces::{of_kind, run_json};

/// One agent step, then `n` in one `parallel:`.
fn warm_then_fan_out(n: usize) -> String {
    let mut yaml = String::from(
        "name: Fan-out\nmodel: gpt-4o-mini\nagents: { a: { instructions: Be brief. } }\n\
         steps:\n  - { agent: a, input: first }\n  - name: all\n    parallel:\n",
    );
    for i in 0..n {
        yaml.push_str(&format!(
            "      - {{ agent: a, input: \"question {i}\" }}\n"
        ));
    }
    yaml
}

/// A TestEnv whose fake speaks TLS with these ALPN protocols, trusted through `SSL_CERT_FILE`.
fn tls_env(alpn: &[&str]) -> TestEnv {
    let env = TestEnv::new().fake(FakeOpenAI::start_tls(alpn));
    let ca = env.write(
        "ca.pem",
        &env.server().tls().expect("a TLS fake").ca_pem.clone(),
    );
    env.env("SSL_CERT_FILE", ca.to_str().unwrap())
        .env("SSL_CERT_DIR", "/nonexistent")
        .workflow("fan.yaml", &warm_then_fan_out(20))
}

fn connections(env: &TestEnv) -> u64 {
    env.server()
        .tls()
        .unwrap()
        .connections
        .load(Ordering::SeqCst)
}

#[test]
fn over_http2_a_fan_out_shares_the_connection_of_the_first_call() {
    let env = tls_env(&["h2", "http/1.1"]);
    // Every answer takes a moment, so that the twenty calls are in flight together.
    env.server()
        .set_default(Reply::Delay(150, Box::new(Reply::Echo)));
    let (out, lines) = run_json(&env, "fan.yaml", &[]);
    assert_exit(&out, 0);
    assert_eq!(lines[0]["status"], "ok");
    let requests = env.server().requests();
    assert_eq!(requests.len(), 21);
    let versions: Vec<&str> = requests.iter().map(|r| r.version.as_str()).collect();
    assert!(versions.iter().all(|v| *v == "HTTP/2.0"), "{versions:?}");
    assert_eq!(env.server().max_in_flight(), 20, "the twenty at once");
    assert_eq!(connections(&env), 1, "one TLS connection for 21 calls");
    let trace = env.show_json("last");
    assert_eq!(of_kind(&trace, "generation").len(), 21);
}

#[test]
fn a_tls_server_without_http2_gets_http1_with_a_connection_per_concurrent_call() {
    let env = tls_env(&["http/1.1"]);
    env.server()
        .set_default(Reply::Delay(150, Box::new(Reply::Echo)));
    let (out, _) = run_json(&env, "fan.yaml", &[]);
    assert_exit(&out, 0);
    let requests = env.server().requests();
    assert_eq!(requests.len(), 21);
    assert!(requests.iter().all(|r| r.version == "HTTP/1.1"));
    // Each of the twenty needs a connection of its own; the first call's stream was read to
    // its end, so its connection is back in the pool, warm, for one of them.
    assert_eq!(connections(&env), 20);
}

#[test]
fn over_http1_max_connections_is_the_number_of_connections_opened_and_they_are_reused() {
    let env = tls_env(&["http/1.1"]).workflow(
        "capped.yaml",
        &warm_then_fan_out(20).replace(
            "model: gpt-4o-mini\n",
            "model: gpt-4o-mini\nprovider: { max_connections: 3 }\n",
        ),
    );
    env.server()
        .set_default(Reply::Delay(150, Box::new(Reply::Echo)));
    let (out, lines) = run_json(&env, "capped.yaml", &[]);
    assert_exit(&out, 0);
    assert_eq!(lines[0]["status"], "ok");
    assert_eq!(env.server().request_count(), 21);
    assert_eq!(env.server().max_in_flight(), 3);
    // The first step's connection is warm for the fan-out, and each call that waited took the
    // connection of one that had finished: three TLS handshakes for 21 calls.
    assert_eq!(connections(&env), 3);
    let trace = env.show_json("last");
    let waited = of_kind(&trace, "generation")
        .iter()
        .filter(|g| g["attributes"]["queued_ms"].is_number())
        .count();
    assert_eq!(waited, 17, "three of the twenty went at once");
}

#[test]
fn an_untrusted_certificate_fails_the_call_and_says_so() {
    // The CA of another fake: valid, but not the one that signed this server's certificate.
    let other = FakeOpenAI::start_tls(&["h2"]);
    let env = TestEnv::new()
        .fake(FakeOpenAI::start_tls(&["h2", "http/1.1"]))
        .workflow(
            "one.yaml",
            &warm_then_fan_out(0).replace("  - name: all\n    parallel:\n", ""),
        );
    let ca = env.write("other-ca.pem", &other.tls().unwrap().ca_pem);
    let env = env
        .env("SSL_CERT_FILE", ca.to_str().unwrap())
        .env("SSL_CERT_DIR", "/nonexistent");
    let (out, lines) = run_json(&env, "one.yaml", &[]);
    assert_exit(&out, 1);
    let message = lines[0]["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("certificate"), "{message}");
    // Not retried: an untrusted certificate stays untrusted.
    assert!(!message.contains("attempts"), "{message}");
    assert!(env.server().requests().is_empty());

    // A certificate file that cannot be read is a clear error before anything runs.
    let env = env.env("SSL_CERT_FILE", "/nonexistent/ca.pem");
    let out = env.run(&["run", "one.yaml"]);
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(err.contains("cannot build the HTTP client"), "{err}");
    assert!(
        !err.trim_end().ends_with("builder error"),
        "the cause is named: {err}"
    );
}
