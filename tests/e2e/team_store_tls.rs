//! TLS to a PostgreSQL team store: `sslmode=require` with the server's CA as `sslrootcert`
//! works; without the CA the connection is refused with a sentence that says what to give,
//! never the password; `verify-full` is accepted as `require` (always verified). Against the
//! server `ci/postgres.sh` starts (`AGENTRACE_PG_URL`, its CA in `AGENTRACE_PG_CA`).

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

    // Without the CA the platform's roots do not know the server: refused, and said how to fix.
    let unverified = format!("{with_password}?sslmode=require");
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
