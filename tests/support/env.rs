//! `TestEnv`: one temporary directory with a store, workflow files, scripts and optionally a fake
//! OpenAI server, and the real `agentrace` binary run inside it with a clean environment.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use super::fake_openai::FakeOpenAI;

/// The key the tests give the binary; it must never reach the store.
pub const SECRET_KEY: &str = "sk-test-SECRET-123";

/// No single command of these tests should take longer; past it the test fails instead of hanging.
pub const DEADLINE: Duration = Duration::from_secs(60);

pub struct TestEnv {
    dir: TempDir,
    store: PathBuf,
    /// The PostgreSQL database the binary stores into instead of `store`, when the tests run
    /// against PostgreSQL (see [`pg_base`]).
    pg: Option<PgDb>,
    server: Option<FakeOpenAI>,
    envs: Vec<(String, String)>,
}

/// The variable that switches every `TestEnv` to PostgreSQL: a URL of a server (and a database
/// to connect to for `CREATE DATABASE`), e.g. `postgres://agentrace@127.0.0.1:5432/postgres`.
/// `.ci/run` runs the end-to-end tests once without it and once with it.
pub const PG_SWITCH: &str = "AGENTRACE_TEST_PG";

/// The server URL of [`PG_SWITCH`], when set.
pub fn pg_base() -> Option<String> {
    std::env::var(PG_SWITCH).ok().filter(|v| !v.is_empty())
}

/// A database of its own for one test, dropped with it.
pub struct PgDb {
    base: String,
    pub name: String,
    pub url: String,
}

impl PgDb {
    /// Creates a fresh, empty database on the server of `base`.
    pub fn create(base: &str) -> PgDb {
        let name = format!(
            "agentrace_t_{}",
            uuid_like()
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .collect::<String>()
        );
        let mut admin = postgres::Client::connect(base, postgres::NoTls)
            .unwrap_or_else(|e| panic!("connect to the test PostgreSQL server: {e}"));
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("create the test database: {e}"));
        let (head, _) = base.rsplit_once('/').expect("a database in the URL");
        PgDb {
            base: base.to_string(),
            url: format!("{head}/{name}"),
            name,
        }
    }

    /// Every row of every table of the database, as text: what a secret must not be in.
    pub fn dump(&self) -> Vec<u8> {
        let mut c = postgres::Client::connect(&self.url, postgres::NoTls)
            .unwrap_or_else(|e| panic!("connect to the test database: {e}"));
        let tables: Vec<String> = c
            .query(
                "SELECT table_name::text FROM information_schema.tables
                 WHERE table_schema = 'public' ORDER BY 1",
                &[],
            )
            .expect("list tables")
            .iter()
            .map(|r| r.get(0))
            .collect();
        let mut out = Vec::new();
        for table in tables {
            for row in c
                .query(&format!("SELECT x::text FROM \"{table}\" x"), &[])
                .expect("read a table")
            {
                out.extend(row.get::<_, String>(0).into_bytes());
                out.push(b'\n');
            }
        }
        out
    }

    /// Whether agentrace's tables exist in the database.
    pub fn has_tables(&self) -> bool {
        let Ok(mut c) = postgres::Client::connect(&self.url, postgres::NoTls) else {
            return false;
        };
        c.query_one("SELECT to_regclass('agentrace_schema') IS NOT NULL", &[])
            .map(|r| r.get::<_, bool>(0))
            .unwrap_or(false)
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        if let Ok(mut admin) = postgres::Client::connect(&self.base, postgres::NoTls) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// A name unique to this process and moment.
fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{}_{nanos}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

#[allow(dead_code)]
impl TestEnv {
    /// A temp dir and a store: a path inside it (the store file is not created), or, when
    /// the tests run against PostgreSQL ([`PG_SWITCH`]), a fresh empty database.
    pub fn new() -> TestEnv {
        let mut env = TestEnv::sqlite();
        env.pg = pg_base().map(|base| PgDb::create(&base));
        env
    }

    /// A TestEnv on an SQLite file whatever the switch says: for the tests of what only a
    /// file has (its permissions, its bytes, a corrupt file, its lock files).
    pub fn sqlite() -> TestEnv {
        let dir = tempfile::Builder::new()
            .prefix("agentrace-e2e-")
            .tempdir()
            .expect("create a temp dir");
        let store = dir.path().join("store").join("traces.db");
        TestEnv {
            dir,
            store,
            pg: None,
            server: None,
            envs: Vec::new(),
        }
    }

    /// A TestEnv on a fresh database of the PostgreSQL server at `base`, whatever the switch
    /// says: for the tests of what only a team store has (tests/e2e/team_store.rs).
    pub fn postgres(base: &str) -> TestEnv {
        let mut env = TestEnv::sqlite();
        env.pg = Some(PgDb::create(base));
        env
    }

    /// The PostgreSQL database of this TestEnv, if it has one.
    pub fn pg(&self) -> Option<&PgDb> {
        self.pg.as_ref()
    }

    /// Whether this TestEnv stores into PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.pg.is_some()
    }

    /// What `--store` / `AGENTRACE_STORE` says for this TestEnv: the file's path or the URL.
    pub fn store_location(&self) -> String {
        match &self.pg {
            Some(pg) => pg.url.clone(),
            None => self.store.display().to_string(),
        }
    }

    /// Whether anything was ever written to the store: the file exists, or agentrace's
    /// tables do.
    pub fn store_exists(&self) -> bool {
        match &self.pg {
            Some(pg) => pg.has_tables(),
            None => self.store.exists(),
        }
    }

    /// Starts a fake OpenAI server; the binary gets its URL and [`SECRET_KEY`].
    pub fn with_fake() -> TestEnv {
        TestEnv::new().fake(FakeOpenAI::start())
    }

    pub fn fake(mut self, server: FakeOpenAI) -> TestEnv {
        self.server = Some(server);
        self
    }

    /// Writes a workflow file (relative to the temp dir).
    pub fn workflow(self, name: &str, yaml: &str) -> TestEnv {
        self.write(name, yaml);
        self
    }

    /// Writes an executable script (relative to the temp dir).
    pub fn script(self, name: &str, text: &str) -> TestEnv {
        let path = self.write(name, text);
        make_executable(&path);
        self
    }

    /// An extra environment variable for every command.
    pub fn env(mut self, key: &str, value: &str) -> TestEnv {
        self.envs.push((key.to_string(), value.to_string()));
        self
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent dir");
        }
        std::fs::write(&path, text).expect("write file");
        path
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The SQLite file (for PostgreSQL TestEnvs, a path that is never created: see
    /// [`TestEnv::store_location`] and [`TestEnv::store_exists`]).
    pub fn store(&self) -> &Path {
        &self.store
    }

    pub fn server(&self) -> &FakeOpenAI {
        self.server
            .as_ref()
            .expect("this TestEnv has no fake server")
    }

    /// The real binary, in the temp dir, with a clean environment.
    pub fn cmd(&self) -> Command {
        self.cmd_of(Command::new(bin()))
    }

    /// `cmd` (another program that runs the binary, such as a shell that sets a limit first)
    /// in the temp dir, with the clean environment of [`TestEnv::cmd`].
    pub fn cmd_of(&self, mut cmd: Command) -> Command {
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy().into_owned();
            if key.starts_with("OTEL_")
                || key.starts_with("OPENAI_")
                || key.starts_with("AGENTRACE_")
            {
                cmd.env_remove(&key);
            }
        }
        for key in [
            "CI",
            "GITHUB_ACTIONS",
            "NO_COLOR",
            "CLICOLOR_FORCE",
            "FORCE_COLOR",
            "RUST_LOG",
            "COLUMNS",
            "LINES",
            // A CI job's own trace context would make every run join it.
            "TRACEPARENT",
            "TRACESTATE",
        ] {
            cmd.env_remove(key);
        }
        cmd.env("NO_COLOR", "1")
            // Tables print local times: one zone for every machine (a test may set another).
            .env("TZ", "UTC")
            .env("AGENTRACE_STORE", self.store_location())
            // Should the store variable be ignored, the default store lands here, not in $HOME.
            .env("XDG_DATA_HOME", self.dir.path().join("xdg"))
            .env("HOME", self.dir.path().join("home"))
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        if let Some(server) = &self.server {
            cmd.env("OPENAI_BASE_URL", server.base_url())
                .env("OPENAI_API_KEY", SECRET_KEY);
        }
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs the binary to completion (failing the test past [`DEADLINE`]).
    pub fn run(&self, args: &[&str]) -> Output {
        let mut cmd = self.cmd();
        cmd.args(args);
        output_within(cmd, DEADLINE)
    }

    /// Runs with a modified command (extra env, removed env).
    pub fn run_with(&self, args: &[&str], f: impl FnOnce(&mut Command)) -> Output {
        let mut cmd = self.cmd();
        cmd.args(args);
        f(&mut cmd);
        output_within(cmd, DEADLINE)
    }

    /// Runs, expects exit 0, and parses stdout as one JSON value.
    pub fn json(&self, args: &[&str]) -> Value {
        let out = self.run(args);
        assert_exit(&out, 0);
        parse_json(&out.stdout)
    }

    /// `show ID --format json`.
    pub fn show_json(&self, id: &str) -> Value {
        self.json(&["show", id, "--format", "json"])
    }

    /// `list --format json` with extra filters.
    pub fn list_json(&self, filters: &[&str]) -> Vec<Value> {
        let mut args = vec!["list", "--format", "json"];
        args.extend_from_slice(filters);
        match self.json(&args) {
            Value::Array(items) => items,
            other => panic!("list --format json printed a non-array: {other}"),
        }
    }

    /// Starts the binary without waiting (stdout and stderr piped).
    pub fn spawn(&self, args: &[&str]) -> Child {
        let mut cmd = self.cmd();
        cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.spawn().expect("spawn agentrace")
    }

    /// Polls `show last --format json` until `pred` holds, failing the test at the deadline.
    pub fn wait_for_trace(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + DEADLINE;
        let mut last = None;
        loop {
            if self.store_exists() {
                let out = self.run(&["show", "last", "--format", "json"]);
                if out.status.code() == Some(0)
                    && let Ok(v) = serde_json::from_slice::<Value>(&out.stdout)
                {
                    if pred(&v) {
                        return v;
                    }
                    last = Some(v);
                }
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}; last trace seen: {last:#?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The raw bytes of the store file and its WAL and journal files (for PostgreSQL, every
    /// row of every table as text).
    pub fn store_bytes(&self) -> Vec<u8> {
        if let Some(pg) = &self.pg {
            return pg.dump();
        }
        let mut bytes = Vec::new();
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut path = self.store.as_os_str().to_owned();
            path.push(suffix);
            if let Ok(b) = std::fs::read(PathBuf::from(path)) {
                bytes.extend(b);
            }
        }
        bytes
    }
}

/// Whether the tests run under CI (`CI` set, not `false`/`0`): there a missing real peer (a
/// model server, a browser, the Python clients) fails its test instead of skipping it.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_agentrace"))
}

pub fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut perms = std::fs::metadata(path).expect("stat file").permissions();
    perms.set_mode(0o755);
    std::fs::set_permissions(path, perms).expect("chmod +x");
}

/// Runs a command, collecting its output, killing it and failing past `limit`.
pub fn output_within(mut cmd: Command, limit: Duration) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().expect("spawn agentrace");
    wait_within(child, limit)
}

/// Waits for a spawned child (with piped stdout/stderr), failing the test past `limit`.
pub fn wait_within(mut child: Child, limit: Duration) -> Output {
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.read_to_end(&mut buf);
        }
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stderr.as_mut() {
            let _ = s.read_to_end(&mut buf);
        }
        buf
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for agentrace") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("agentrace did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts the exit code, printing both streams when it is wrong.
#[track_caller]
pub fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "expected exit {code}, got {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        stdout(out),
        stderr(out)
    );
}

#[track_caller]
pub fn parse_json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON value ({e}):\n{}",
            String::from_utf8_lossy(bytes)
        )
    })
}

/// Parses JSON Lines (one object per non-empty line).
#[track_caller]
pub fn parse_json_lines(bytes: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Redaction of JSON documents compared as values (the JSON shapes of docs/contract.md, in
// shapes.rs): ids become numbered placeholders, so parent links still compare, and times and
// durations placeholders. Rendered text is not compared through this: it goes to insta
// snapshots through the filters of support/snapshot.rs.

/// Replaces ids, RFC 3339 times and durations in text with placeholders: the strings inside a
/// document that [`redact_json`] redacts.
///
/// `trace_<32 hex>` → `trace_[ID]`, `span_<16 hex>` → `span_[ID]`, a time → `[TIME]`, a number
/// followed by `ms`, `s`, `µs` or `m` (as a whole word) → `[DUR]`.
pub fn redact(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let rest = &chars[i..];
        let at_word_start = i == 0 || !is_word(chars[i - 1]);
        if at_word_start {
            if let Some(n) = hex_id(rest, "trace_", 32) {
                out.push_str("trace_[ID]");
                i += n;
                continue;
            }
            if let Some(n) = hex_id(rest, "span_", 16) {
                out.push_str("span_[ID]");
                i += n;
                continue;
            }
            if let Some(n) = rfc3339(rest) {
                out.push_str("[TIME]");
                i += n;
                continue;
            }
            if let Some(n) = duration(rest) {
                out.push_str("[DUR]");
                i += n;
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

fn hex_id(s: &[char], prefix: &str, len: usize) -> Option<usize> {
    let p: Vec<char> = prefix.chars().collect();
    if s.len() < p.len() + len || s[..p.len()] != p[..] {
        return None;
    }
    let hex = &s[p.len()..p.len() + len];
    if !hex
        .iter()
        .all(|c| c.is_ascii_digit() || ('a'..='f').contains(c))
    {
        return None;
    }
    if s.get(p.len() + len)
        .is_some_and(|c| c.is_ascii_alphanumeric())
    {
        return None;
    }
    Some(p.len() + len)
}

fn digits(s: &[char], at: usize, n: usize) -> bool {
    s.len() >= at + n && s[at..at + n].iter().all(|c| c.is_ascii_digit())
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM)`
fn rfc3339(s: &[char]) -> Option<usize> {
    let ok = digits(s, 0, 4)
        && s.get(4) == Some(&'-')
        && digits(s, 5, 2)
        && s.get(7) == Some(&'-')
        && digits(s, 8, 2)
        && matches!(s.get(10), Some('T') | Some(' '))
        && digits(s, 11, 2)
        && s.get(13) == Some(&':')
        && digits(s, 14, 2)
        && s.get(16) == Some(&':')
        && digits(s, 17, 2);
    if !ok {
        return None;
    }
    let mut i = 19;
    if s.get(i) == Some(&'.') {
        i += 1;
        while s.get(i).is_some_and(|c| c.is_ascii_digit()) {
            i += 1;
        }
    }
    match s.get(i) {
        Some('Z') => i += 1,
        Some('+') | Some('-') if digits(s, i + 1, 2) && s.get(i + 3) == Some(&':') => i += 6,
        _ => {}
    }
    Some(i)
}

fn duration(s: &[char]) -> Option<usize> {
    let mut i = 0;
    while s.get(i).is_some_and(|c| c.is_ascii_digit()) {
        i += 1;
    }
    if i == 0 {
        return None;
    }
    if s.get(i) == Some(&'.') && s.get(i + 1).is_some_and(|c| c.is_ascii_digit()) {
        i += 1;
        while s.get(i).is_some_and(|c| c.is_ascii_digit()) {
            i += 1;
        }
    }
    for unit in ["ms", "µs", "us", "s", "m"] {
        let u: Vec<char> = unit.chars().collect();
        if s.len() >= i + u.len() && s[i..i + u.len()] == u[..] {
            let end = i + u.len();
            if s.get(end).is_some_and(|c| c.is_ascii_alphanumeric()) {
                continue;
            }
            return Some(end);
        }
    }
    None
}

/// Redacts a JSON document: ids become stable placeholders numbered by first appearance
/// (`trace_1`, `span_1`, `span_2`, …, so parent links still compare), times become `[TIME]` and
/// `duration_ms` becomes `[DUR]`.
pub fn redact_json(v: &Value) -> Value {
    let mut ids: Vec<String> = Vec::new();
    redact_value(v, &mut ids, None)
}

fn redact_value(v: &Value, ids: &mut Vec<String>, key: Option<&str>) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), redact_value(v, ids, Some(k))))
                .collect(),
        ),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| redact_value(v, ids, key)).collect())
        }
        Value::Number(_) if key == Some("duration_ms") => Value::String("[DUR]".into()),
        Value::String(s) => {
            let chars: Vec<char> = s.chars().collect();
            let whole_id = hex_id(&chars, "trace_", 32) == Some(chars.len())
                || hex_id(&chars, "span_", 16) == Some(chars.len());
            if whole_id {
                let kind = if s.starts_with("trace_") {
                    "trace"
                } else {
                    "span"
                };
                let n = match ids.iter().position(|x| x == s) {
                    Some(p) => p,
                    None => {
                        ids.push(s.clone());
                        ids.len() - 1
                    }
                };
                let same_kind = ids[..=n].iter().filter(|x| x.starts_with(kind)).count();
                Value::String(format!("{kind}_{same_kind}"))
            } else if rfc3339(&chars) == Some(chars.len()) {
                Value::String("[TIME]".into())
            } else {
                Value::String(redact(s))
            }
        }
        other => other.clone(),
    }
}
