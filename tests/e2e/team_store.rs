//! The team store: agentrace on a real PostgreSQL server (`AGENTRACE_PG_URL`, a throwaway
//! cluster from ci/postgres.sh), for what only a shared server has — bad locations and
//! credentials said in one line with the password masked, many writers at once, a run's liveness
//! across processes, and two `agentrace serve` instances that follow one database live.
//!
//! Every test makes databases of its own on that server (whatever `AGENTRACE_TEST_PG` says, so
//! `.ci/run` runs these once). Without `AGENTRACE_PG_URL` they skip with a note, except under CI,
//! where the server must be there.
//!
//! The password tests add one line for a role of their own at the top of the server's
//! `pg_hba.conf` (`scram-sha-256` for that role only; everyone else keeps ci/postgres.sh's
//! `trust`) and take it out again: the only way to make a trusting test server ask for a
//! password. They need a superuser, as ci/postgres.sh's `agentrace` is.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::processes::*;
use crate::serve::{now_plus, playwright, sdk_body};
use crate::support::serve::Served;
use crate::support::*;
use crate::traces::*;

/// The server of `AGENTRACE_PG_URL`, or `None` after a note (a failure under CI).
fn server() -> Option<String> {
    if let Ok(url) = std::env::var("AGENTRACE_PG_URL")
        && !url.trim().is_empty()
    {
        return Some(url.trim().to_string());
    }
    assert!(
        !under_ci(),
        "AGENTRACE_PG_URL is not set under CI: .ci/run should have started PostgreSQL \
         (ci/postgres.sh)"
    );
    eprintln!(
        "note: skipped the team-store test: set AGENTRACE_PG_URL to a throwaway server: \
         eval \"$(bash ci/postgres.sh start)\""
    );
    None
}

fn admin(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls)
        .unwrap_or_else(|e| panic!("connect to the test PostgreSQL server: {e}"))
}

/// `postgres://USER[:PASSWORD]@HOST:PORT/DB` on the host and port of `base`.
fn url_on(base: &str, user: &str, password: Option<&str>, db: &str) -> String {
    let host_port = base
        .split_once('@')
        .map_or(base, |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap();
    match password {
        Some(pw) => format!("postgres://{user}:{pw}@{host_port}/{db}"),
        None => format!("postgres://{user}@{host_port}/{db}"),
    }
}

/// A name no other test (or run of this one) uses.
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}_{}_{nanos}", std::process::id())
}

/// A port nothing listens on (bound, then let go).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Asserts a bad-store refusal: exit 2, one line on stderr holding every `needles`, nothing on
/// stdout, no panic, and `secret` nowhere.
#[track_caller]
fn assert_refused(out: &Output, needles: &[&str], secret: &str) {
    assert_exit(out, 2);
    let err = stderr(out);
    assert_eq!(err.trim().lines().count(), 1, "one line:\n{err}");
    for needle in needles {
        assert!(err.contains(needle), "{needle:?} in:\n{err}");
    }
    assert!(!err.contains("panicked"), "{err}");
    assert!(stdout(out).trim().is_empty(), "{}", stdout(out));
    assert!(
        !err.contains(secret) && !stdout(out).contains(secret),
        "{err}"
    );
}

/// A workflow that leaves `ran.txt` behind if its step ever runs.
const TOUCH: &str = "name: Touch\nsteps:\n  - { id: t, run: [touch, ran.txt] }\n";

#[test]
fn an_unreachable_server_an_unknown_scheme_and_a_missing_database_are_one_line_errors() {
    let Some(base) = server() else {
        return;
    };
    let env = TestEnv::postgres(&base).workflow("touch.yaml", TOUCH);
    let secret = "hunter2-SECRET-pw";

    // Nothing listens on the port: unreachable, said with the store's URL (password masked).
    let port = closed_port();
    let store = format!("postgres://agentrace:{secret}@127.0.0.1:{port}/traces");
    for args in [
        vec!["list"],
        vec!["run", "touch.yaml"],
        vec!["show", "last"],
    ] {
        let out = env.run_with(&args, |c| {
            c.env("AGENTRACE_STORE", &store);
        });
        assert_refused(
            &out,
            &[&format!("postgres://agentrace:***@127.0.0.1:{port}/traces")],
            secret,
        );
    }
    // The flag says the same as the variable.
    let out = env.run(&["--store", &store, "list"]);
    assert_refused(&out, &[&format!("127.0.0.1:{port}")], secret);

    // A scheme agentrace does not speak is refused, not taken for a file name.
    let mysql = format!("mysql://root:{secret}@127.0.0.1:3306/traces");
    for args in [vec!["list"], vec!["run", "touch.yaml"]] {
        let out = env.run_with(&args, |c| {
            c.env("AGENTRACE_STORE", &mysql);
        });
        assert_refused(&out, &["mysql://", "root:***@"], secret);
    }
    assert!(
        !env.path().join("mysql:").exists(),
        "no file store was made"
    );

    // A database that does not exist on a reachable server: named, and not created.
    let missing = unique("agentrace_missing");
    let store = url_on(&base, "agentrace", Some(secret), &missing);
    for args in [vec!["list"], vec!["run", "touch.yaml"]] {
        let out = env.run_with(&args, |c| {
            c.env("AGENTRACE_STORE", &store);
        });
        assert_refused(&out, &[&missing, "agentrace:***@"], secret);
    }
    let exists: bool = admin(&base)
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
            &[&missing],
        )
        .unwrap()
        .get(0);
    assert!(!exists, "the missing database was not created");

    // A role the server does not know.
    let nobody = unique("agentrace_nobody");
    let db = &env.pg().unwrap().name;
    let store = url_on(&base, &nobody, Some(secret), db);
    let out = env.run_with(&["run", "touch.yaml"], |c| {
        c.env("AGENTRACE_STORE", &store);
    });
    assert_refused(&out, &[&nobody, "***@"], secret);

    assert!(!env.path().join("ran.txt").exists(), "no step ran");
    assert!(
        !env.store_exists(),
        "nothing was written to the good database"
    );
}

#[test]
fn a_database_of_a_newer_schema_is_refused_and_the_run_writes_nothing() {
    let Some(base) = server() else {
        return;
    };
    let env = TestEnv::postgres(&base)
        .workflow("w.yaml", "name: W\nsteps:\n  - { run: [true] }\n")
        .workflow("touch.yaml", TOUCH);
    assert_exit(&env.run(&["run", "w.yaml", "--format", "none"]), 0);
    let url = env.pg().unwrap().url.clone();
    let mut db = admin(&url);
    db.batch_execute("UPDATE agentrace_schema SET version = 99")
        .unwrap();
    let count = |db: &mut postgres::Client| (rows(db, "traces"), rows(db, "spans"));
    let before = count(&mut db);
    for args in [
        vec!["run", "touch.yaml"],
        vec!["list"],
        vec!["show", "last"],
    ] {
        let out = env.run(&args);
        assert_refused(&out, &["99", "newer", &url], "(this URL has no password)");
    }
    assert!(!env.path().join("ran.txt").exists(), "no step ran");
    assert_eq!(count(&mut db), before, "the run wrote nothing");
    let version: i64 = db
        .query_one("SELECT max(version) FROM agentrace_schema", &[])
        .unwrap()
        .get(0);
    assert_eq!(version, 99, "the newer schema was left alone");
}

/// A role that must give its password: a `scram-sha-256` line of its own at the top of the
/// server's pg_hba.conf, and the owner of the test's database. Dropping it restores the file
/// and drops the role (and the database).
struct PasswordRole {
    base: String,
    name: String,
    db: String,
    hba: String,
    original: String,
}

const PASSWORD: &str = "Pw-0f-the-TEAM-store";

impl PasswordRole {
    /// `None` after a note when the server's user may not edit pg_hba.conf (not a superuser);
    /// a failure under CI, where ci/postgres.sh's user is one.
    fn create(base: &str, db: &str) -> Option<PasswordRole> {
        let mut admin = admin(base);
        let superuser: bool = admin
            .query_one(
                "SELECT rolsuper FROM pg_roles WHERE rolname = current_user",
                &[],
            )
            .unwrap()
            .get(0);
        if !superuser {
            assert!(!under_ci(), "ci/postgres.sh's user should be a superuser");
            eprintln!("note: skipped the password checks: AGENTRACE_PG_URL's user is no superuser");
            return None;
        }
        let hba: String = admin
            .query_one(
                "SELECT setting FROM pg_settings WHERE name = 'hba_file'",
                &[],
            )
            .unwrap()
            .get(0);
        let original: String = admin
            .query_one("SELECT pg_read_file($1)", &[&hba])
            .unwrap()
            .get(0);
        let name = unique("agentrace_pw");
        admin
            .batch_execute(&format!(
                "SET password_encryption = 'scram-sha-256';
                 CREATE ROLE {name} LOGIN PASSWORD '{PASSWORD}';
                 ALTER DATABASE {db} OWNER TO {name};"
            ))
            .unwrap();
        let role = PasswordRole {
            base: base.to_string(),
            name: name.clone(),
            db: db.to_string(),
            hba,
            original,
        };
        let mut lines = vec![format!("host all {name} 127.0.0.1/32 scram-sha-256")];
        lines.extend(role.original.lines().map(str::to_string));
        write_file(&mut admin, &role.hba, &lines);
        reload(&mut admin);
        // The rule is in force once the role cannot connect without its password.
        let deadline = Instant::now() + Duration::from_secs(10);
        let bare = url_on(base, &name, None, db);
        while postgres::Client::connect(&bare, postgres::NoTls).is_ok() {
            assert!(
                Instant::now() < deadline,
                "the server never asked {name} for a password"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(role)
    }
}

impl Drop for PasswordRole {
    fn drop(&mut self) {
        if let Ok(mut admin) = postgres::Client::connect(&self.base, postgres::NoTls) {
            let lines: Vec<String> = self.original.lines().map(str::to_string).collect();
            write_file(&mut admin, &self.hba, &lines);
            reload(&mut admin);
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE); DROP ROLE IF EXISTS {}",
                self.db, self.name
            ));
        }
    }
}

/// Writes `lines` to a file of the server (as the server), through `COPY ... TO`. Tabs become
/// spaces (COPY would escape them; in pg_hba.conf both only separate fields).
fn write_file(admin: &mut postgres::Client, path: &str, lines: &[String]) {
    let quote = |s: &str| format!("'{}'", s.replace('\t', " ").replace('\'', "''"));
    let array = lines.iter().map(|l| quote(l)).collect::<Vec<_>>().join(",");
    let sql = format!(
        "COPY (SELECT line FROM unnest(ARRAY[{array}]::text[]) WITH ORDINALITY AS t(line, n) \
         ORDER BY n) TO {}",
        quote(path)
    );
    admin
        .batch_execute(&sql)
        .unwrap_or_else(|e| panic!("rewrite {path}: {e}"));
}

fn reload(admin: &mut postgres::Client) {
    admin.batch_execute("SELECT pg_reload_conf()").unwrap();
    let errors: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(errors, 0, "pg_hba.conf has errors");
}

/// Every row of every table of agentrace's database as text.
fn everything_stored(url: &str) -> String {
    let mut db = admin(url);
    let tables: Vec<String> = db
        .query(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(tables.iter().any(|t| t == "traces"), "{tables:?}");
    let mut text = String::new();
    for t in tables {
        let rows = db
            .query(&format!("SELECT {t}::text FROM {t}"), &[])
            .unwrap();
        for r in rows {
            text.push_str(&r.get::<_, String>(0));
            text.push('\n');
        }
    }
    text
}

#[test]
fn a_password_comes_from_the_url_pgpassword_or_pgpass_and_is_never_printed_or_stored() {
    let Some(base) = server() else {
        return;
    };
    let env = TestEnv::postgres(&base).workflow(
        "w.yaml",
        "name: Secretive\nsteps:\n  - { id: hello, run: [echo, hello] }\n",
    );
    let db = env.pg().unwrap().name.clone();
    let Some(role) = PasswordRole::create(&base, &db) else {
        return;
    };
    let with = |pw: Option<&str>| url_on(&base, &role.name, pw, &db);
    let run_as = |store: &str, args: &[&str], envs: &[(&str, &str)]| {
        env.run_with(args, |c| {
            c.env("AGENTRACE_STORE", store).env_remove("PGPASSWORD");
            for (k, v) in envs {
                c.env(k, v);
            }
        })
    };

    // A wrong password: refused, in one line, naming the store with the password masked.
    let wrong = "not-THE-password";
    let out = run_as(&with(Some(wrong)), &["run", "w.yaml"], &[]);
    assert_refused(&out, &[&format!("{}:***@", role.name), "password"], wrong);
    // No password at all, and none in the environment or a password file.
    let out = run_as(&with(None), &["run", "w.yaml"], &[]);
    assert_refused(&out, &[&format!("{}@", role.name), "password"], PASSWORD);
    assert!(!env.store_exists(), "nothing was written");

    // The URL's password: the run works, and no output, no row of the store shows it.
    let store = with(Some(PASSWORD));
    let out = run_as(&store, &["run", "w.yaml"], &[]);
    assert_exit(&out, 0);
    let mut printed = format!("{}{}", stdout(&out), stderr(&out));
    for args in [
        vec!["list"],
        vec!["show", "last"],
        vec!["list", "--format", "json"],
    ] {
        let out = run_as(&store, &args, &[]);
        assert_exit(&out, 0);
        printed.push_str(&stdout(&out));
        printed.push_str(&stderr(&out));
    }
    // serve's log names its store too.
    let served_env = TestEnv::sqlite().env("AGENTRACE_STORE", &store);
    let served = Served::start(&served_env, &[]);
    let listed = served.get_json("/api/traces");
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    let log = served.stop();
    printed.push_str(&stderr(&log));
    assert!(printed.contains("Secretive"), "{printed}");
    assert!(
        !printed.contains(PASSWORD),
        "the password was printed:\n{printed}"
    );
    let stored = everything_stored(&env.pg().unwrap().url);
    assert!(stored.contains("Secretive"), "{stored}");
    assert!(!stored.contains(PASSWORD), "the password was stored");

    // PGPASSWORD, when the URL has none.
    let out = run_as(&with(None), &["run", "w.yaml"], &[("PGPASSWORD", PASSWORD)]);
    assert_exit(&out, 0);
    assert!(!stderr(&out).contains(PASSWORD));

    // ~/.pgpass (HOME is the test's own): read when only its owner may read it, ignored (as
    // libpq does) when others may.
    let home = env.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let pgpass = home.join(".pgpass");
    let port = base.rsplit_once(':').unwrap().1.split('/').next().unwrap();
    std::fs::write(
        &pgpass,
        format!(
            "# host:port:database:user:password\n127.0.0.1:{port}:*:someone_else:nope\n\
             127.0.0.1:{port}:{db}:{}:{PASSWORD}\n",
            role.name
        ),
    )
    .unwrap();
    set_mode(&pgpass, 0o600);
    let out = run_as(&with(None), &["run", "w.yaml"], &[]);
    assert_exit(&out, 0);
    set_mode(&pgpass, 0o644);
    let out = run_as(&with(None), &["list"], &[]);
    assert_exit(&out, 2);
    assert!(!stderr(&out).contains(PASSWORD), "{}", stderr(&out));
    // PGPASSFILE names another file.
    let elsewhere = env.path().join("team.pgpass");
    std::fs::copy(&pgpass, &elsewhere).unwrap();
    set_mode(&elsewhere, 0o600);
    let out = run_as(
        &with(None),
        &["list"],
        &[("PGPASSFILE", elsewhere.to_str().unwrap())],
    );
    assert_exit(&out, 0);
    assert_eq!(
        run_as(&store, &["list", "--format", "json"], &[])
            .status
            .code(),
        Some(0)
    );
    let traces: Vec<Value> = parse_json(&run_as(&store, &["list", "--format", "json"], &[]).stdout)
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(
        traces.len(),
        3,
        "the URL's, PGPASSWORD's and .pgpass's runs"
    );
    drop(served_env);
    drop(role);
}

fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn sixteen_runs_of_fifty_steps_at_once_all_land_whole_in_one_database() {
    let Some(base) = server() else {
        return;
    };
    let mut yaml = String::from("name: Fifty\nsteps:\n");
    for i in 0..50 {
        yaml.push_str(&format!("  - {{ id: s{i}, run: [\"true\"] }}\n"));
    }
    let env = TestEnv::postgres(&base).workflow("fifty.yaml", &yaml);
    let children: Vec<Child> = (0..16)
        .map(|_| env.spawn(&["run", "fifty.yaml", "--format", "none"]))
        .collect();
    for child in children {
        assert_exit(&wait_within(child, Duration::from_secs(180)), 0);
    }
    let traces = env.list_json(&[]);
    assert_eq!(traces.len(), 16, "{traces:#?}");
    let mut all_spans = 0;
    for t in &traces {
        assert_eq!(t["status"], "ok", "{t}");
        let doc = env.show_json(t["trace_id"].as_str().unwrap());
        assert_eq!(doc["status"], "ok");
        let spans = spans(&doc);
        let commands = spans.iter().filter(|s| s["kind"] == "command").count();
        assert_eq!(commands, 50, "{doc:#}");
        assert!(
            spans.len() <= 51,
            "50 steps and at most a root: {}",
            spans.len()
        );
        assert!(spans.iter().all(|s| s["status"] == "ok"), "{doc:#}");
        assert_eq!(distinct(spans, "span_id"), spans.len(), "no span twice");
        all_spans += spans.len();
    }
    assert_eq!(distinct(&traces, "trace_id"), 16, "no trace twice");
    // The database holds exactly these: no stray or doubled rows.
    let mut db = admin(&env.pg().unwrap().url);
    assert_eq!(rows(&mut db, "spans"), i64::try_from(all_spans).unwrap());
    assert_eq!(rows(&mut db, "traces"), 16);
}

/// How many rows `table` holds.
fn rows(db: &mut postgres::Client, table: &str) -> i64 {
    db.query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .unwrap()
        .get(0)
}

/// How many different values of `key` the documents have.
fn distinct(docs: &[Value], key: &str) -> usize {
    let mut seen: Vec<&str> = docs.iter().map(|d| d[key].as_str().unwrap()).collect();
    seen.sort_unstable();
    seen.dedup();
    seen.len()
}

#[test]
fn a_run_killed_with_kill_9_did_not_finish_and_a_live_run_elsewhere_stays_running() {
    let Some(base) = server() else {
        return;
    };
    let env = TestEnv::postgres(&base)
        .workflow(
            "killed.yaml",
            "name: Killed\nsteps:\n  - { id: quick, run: [echo, quick] }\n  - { id: nap, run: \"echo $$ > nap.pid; exec sleep 30\" }\n",
        )
        .workflow(
            "alive.yaml",
            "name: Alive\nsteps:\n  - { id: wait, run: \"echo $$ > wait.pid; while [ ! -e go ]; do sleep 0.1; done\" }\n",
        );
    let killed = env.spawn(&["run", "killed.yaml", "--format", "none"]);
    let alive = env.spawn(&["run", "alive.yaml", "--format", "none"]);
    let nap: i32 = wait_for_file(&env.path().join("nap.pid")).parse().unwrap();
    wait_for_file(&env.path().join("wait.pid"));
    let id_of = |name: &str| -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if env.store_exists()
                && let Some(t) = env.list_json(&["--workflow", name]).first()
            {
                return t["trace_id"].as_str().unwrap().to_string();
            }
            assert!(Instant::now() < deadline, "{name} never listed");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let killed_id = id_of("Killed");
    let alive_id = id_of("Alive");
    // Readers in other processes see both as running and leave them so.
    for _ in 0..3 {
        assert_eq!(env.show_json(&killed_id)["status"], "running");
        assert_eq!(env.show_json(&alive_id)["status"], "running");
    }

    signal(killed.id(), nix::sys::signal::Signal::SIGKILL);
    let out = wait_within(killed, DEADLINE);
    assert_eq!(out.status.code(), None, "killed by a signal");
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(nap),
        nix::sys::signal::Signal::SIGKILL,
    );

    // The dead run's session (and its advisory lock) is gone: the next reader closes it.
    let deadline = Instant::now() + DEADLINE;
    let doc = loop {
        let doc = env.show_json(&killed_id);
        if doc["status"] != "running" || Instant::now() > deadline {
            break doc;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(doc["status"], "error", "{doc:#}");
    let message = doc["error"]["message"].as_str().unwrap();
    assert!(message.contains("did not finish"), "{message}");
    assert!(
        spans(&doc)
            .iter()
            .any(|s| s["kind"] == "command" && s["status"] == "ok"),
        "what finished is kept: {doc:#}"
    );
    let out = env.run(&["show", &killed_id]);
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("did not finish"), "{}", stdout(&out));

    // The other run, alive in its own process, is not closed by any of these readers.
    assert_eq!(env.show_json(&alive_id)["status"], "running");
    let running = env.list_json(&["--status", "running"]);
    assert_eq!(running.len(), 1, "{running:#?}");
    assert_eq!(running[0]["trace_id"], alive_id.as_str());
    std::fs::write(env.path().join("go"), "").unwrap();
    assert_exit(&wait_within(alive, DEADLINE), 0);
    let doc = env.show_json(&alive_id);
    assert_eq!(
        doc["status"], "ok",
        "the live run finished its own trace: {doc:#}"
    );
}

// ---- two serve instances, one database, one browser page ----

/// A child's stdout lines, as they come.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let out = child.stdout.take().expect("stdout piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

#[test]
fn two_serve_instances_on_one_database_show_every_writer_live_in_headless_chromium() {
    let Some(base) = server() else {
        return;
    };
    let Some(browser) = crate::files::chromium() else {
        return;
    };
    let Some(node_path) = playwright() else {
        return;
    };
    let env = TestEnv::postgres(&base).workflow(
        "direct.yaml",
        "name: Recorded Directly\nsteps:\n  - { id: hi, run: [echo, hi] }\n",
    );
    // Something in the store before the page opens.
    assert_exit(&env.run(&["run", "direct.yaml", "--format", "none"]), 0);
    let a = Served::start(&env, &[]);
    let b = Served::start(&env, &[]);
    let hex = "7ea4000000000000000000000000b0b0";

    let mut node = std::process::Command::new("node")
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/ui/live.mjs"))
        .args(["--base", &a.url("")])
        .args(["--expect-trace", &format!("trace_{hex}")])
        .args([
            "--expect-workflow",
            "Recorded Directly",
            "--expect-rows",
            "3",
        ])
        .env("CHROMIUM", &browser)
        .env("NODE_PATH", &node_path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn node");
    let lines = lines_of(&mut node);
    let ready = lines.recv_timeout(Duration::from_secs(90));
    let Ok(ready) = ready else {
        let out = wait_within(node, Duration::from_secs(10));
        panic!("the page never got ready:\n{}", stderr(&out));
    };
    let ready: Value = serde_json::from_str(&ready).expect("a JSON line");
    assert_eq!(ready["ready"], true, "{ready}");
    assert_eq!(ready["rows"], 1, "{ready}");

    // Through instance B, and straight into the database: the page on A sees both.
    let r = b.post(
        "/v1/traces/ingest",
        "application/json",
        &sdk_body(hex, "Sent To B", &now_plus(-2), &now_plus(-1)),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_exit(&env.run(&["run", "direct.yaml", "--format", "none"]), 0);

    let out = wait_within(node, Duration::from_secs(120));
    let rest: Vec<String> = lines.try_iter().collect();
    assert!(
        out.status.success(),
        "the live check failed:\n{}\n{}",
        rest.join("\n"),
        stderr(&out)
    );
    let summary: Value = serde_json::from_str(rest.last().expect("a summary line")).unwrap();
    assert_eq!(summary["ok"], true, "{summary}");
    assert_eq!(summary["navigations"], 1, "no reload: {summary}");

    // Both instances list the same traces, newest first.
    let from_a = a.get_json("/api/traces");
    let from_b = b.get_json("/api/traces");
    assert_eq!(from_a.as_array().map(Vec::len), Some(3), "{from_a}");
    let ids = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|t| t["trace_id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&from_a), ids(&from_b));
    assert_eq!(from_a, from_b);
}

#[test]
fn a_short_id_is_found_by_a_range_of_the_reversed_id_index_not_a_scan() {
    let Some(base) = server() else {
        return;
    };
    let env = TestEnv::postgres(&base).workflow("w.yaml", "name: W\nsteps:\n  - { run: [true] }\n");
    assert_exit(&env.run(&["run", "w.yaml", "--format", "none"]), 0);
    let id = env.show_json("last")["trace_id"]
        .as_str()
        .unwrap()
        .to_string();
    let tail = &id[id.len() - 8..];
    assert_eq!(env.show_json(tail)["trace_id"], id.as_str());
    // With sequential scans priced out, the planner takes the index if the query can use it
    // (a table this small is otherwise cheaper to scan).
    let mut db = admin(&env.pg().unwrap().url);
    db.batch_execute("SET enable_seqscan = off").unwrap();
    let plan: Vec<String> = db
        .query(
            "EXPLAIN SELECT trace_id FROM traces
             WHERE reverse(trace_id) >= $1 AND reverse(trace_id) < $1 || 'g'",
            &[&tail.chars().rev().collect::<String>()],
        )
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect();
    assert!(
        plan.iter().any(|l| l.contains("traces_by_reversed_id")),
        "{plan:#?}"
    );
}
