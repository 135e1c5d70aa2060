//! TLS to a PostgreSQL team store, with libpq's `sslmode`s: `verify-full` checks the server's
//! certificate against `sslrootcert` (and the platform's roots), and without the right CA the
//! connection is refused with a sentence that says what to give, never the password;
//! `require` and the default `prefer` encrypt without checking it, as libpq does. Against the
//! server `ci/postgres.sh` starts with TLS (`AGENTRACE_PG_URL`, its CA in `AGENTRACE_PG_CA`).

use crate::support::*;

/// The server and its CA, or `None` after a note (a failure under CI).
fn tls_server() -> Option<(String, String)> {
    let url = std::env::var("AGENTRACE_PG_URL")
        .ok()
        .filter(|v| !v.is_empty());
    let ca = std::env::var("AGENTRACE_PG_CA")
        .ok()
        .filter(|v| !v.is_empty());
    match (url, ca) {
        (Some(url), Some(ca)) => Some((url, ca)),
        _ => {
            assert!(
                !under_ci(),
                "AGENTRACE_PG_URL and AGENTRACE_PG_CA are not set under CI: .ci/run starts \
                 PostgreSQL with TLS (ci/postgres.sh)"
            );
            eprintln!(
                "note: skipped the TLS team-store test: run `eval \"$(ci/postgres.sh start)\"`"
            );
            None
        }
    }
}

#[test]
fn a_team_store_over_tls_verifies_the_server_certificate() {
    let Some((base, ca)) = tls_server() else {
        return;
    };
    let db = PgDb::create(&base);
    let env = TestEnv::sqlite().workflow("w.yaml", "name: Over TLS\nsteps:\n  - run: [\"true\"]\n");
    // A password in the URL: the trust-authenticated test server ignores it, and no output
    // may show it.
    let with_password = db
        .url
        .replacen("agentrace@", "agentrace:hunter2-secret@", 1);
    let verified = format!("{with_password}?sslmode=require&sslrootcert={ca}");
    let out = env.run(&["--store", &verified, "run", "w.yaml", "--format", "none"]);
    assert_exit(&out, 0);
    let out = env.run(&["--store", &verified, "list", "--format", "json"]);
    assert_exit(&out, 0);
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed[0]["name"], "Over TLS");
    let full = format!("{with_password}?sslmode=verify-full&sslrootcert={ca}");
    assert_exit(&env.run(&["--store", &full, "list"]), 0);

    // Encrypted without a check, as libpq's require and prefer (the default) are.
    for unchecked in [
        format!("{with_password}?sslmode=require"),
        with_password.clone(),
    ] {
        assert_exit(&env.run(&["--store", &unchecked, "list"]), 0);
    }
    // verify-full without the CA: the platform's roots do not know the server. Refused, and
    // said how to fix.
    let unverified = format!("{with_password}?sslmode=verify-full");
    let out = env.run(&["--store", &unverified, "list"]);
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(err.contains("sslrootcert"), "{err}");
    assert!(err.contains("certificate"), "{err}");
    assert!(
        err.contains("agentrace:***@"),
        "the password is masked: {err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    for out in [stdout(&out), err] {
        assert!(!out.contains("hunter2-secret"), "{out}");
    }
    // A CA that did not sign the server's certificate is refused even under require.
    let other_ca = env.path().join("other-ca.pem");
    let other = rcgen::generate_simple_self_signed(vec!["elsewhere.example".to_string()]).unwrap();
    std::fs::write(&other_ca, other.cert.pem()).unwrap();
    let out = env.run(&[
        "--store",
        &format!(
            "{}?sslmode=require&sslrootcert={}",
            db.url,
            other_ca.display()
        ),
        "list",
    ]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("certificate"), "{}", stderr(&out));
    // A CA file that is not there is a clear error too.
    let out = env.run(&[
        "--store",
        &format!("{}?sslmode=require&sslrootcert=/nonexistent/ca.pem", db.url),
        "list",
    ]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("/nonexistent/ca.pem"),
        "{}",
        stderr(&out)
    );
}
