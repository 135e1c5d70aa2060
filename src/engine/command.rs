//! Command steps: one process, never through a shell unless the step is a script string (which
//! validation guarantees holds no template). stdin is closed; stdout is the step's output.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Failure;
use super::executor::{Frame, TraceRun, error_at};
use crate::trace::context::TraceParent;
use crate::trace::{SpanHandle, SpanId, SpanKind, Status};
use crate::workflow::template::Output;
use crate::workflow::{Command, Step, StepKind};

/// How much of stderr a span keeps.
const STDERR_TAIL_BYTES: usize = 2048;

/// The end of stderr: at most [`STDERR_TAIL_BYTES`], cut at a line start where possible.
pub fn stderr_tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let text = text.trim_end();
    if text.len() <= STDERR_TAIL_BYTES {
        return text.to_string();
    }
    let mut start = text.len() - STDERR_TAIL_BYTES;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    let tail = &text[start..];
    match tail.find('\n') {
        Some(nl) if nl + 1 < tail.len() => format!("…{}", &tail[nl + 1..]),
        _ => format!("…{tail}"),
    }
}

/// How much of stdout a step keeps (its last 1 MiB): the output later steps and the store see.
pub const STDOUT_KEPT_BYTES: usize = 1 << 20;

/// How much of stderr is read into memory; only its tail is ever kept.
const STDERR_KEPT_BYTES: usize = 64 << 10;

/// The end of a stream and how long the whole was.
struct Tail {
    bytes: Vec<u8>,
    total: u64,
}

impl Tail {
    fn cut(&self) -> bool {
        self.total > self.bytes.len() as u64
    }
}

/// Reads a pipe to its end, keeping only the last `keep` bytes: the process is drained (so it
/// never blocks on a full pipe) while memory stays under twice `keep`.
async fn read_tail(pipe: Option<impl tokio::io::AsyncRead + Unpin>, keep: usize) -> Tail {
    let mut buf = Vec::new();
    let mut total = 0u64;
    if let Some(mut pipe) = pipe {
        let mut chunk = vec![0u8; 64 << 10];
        // A read error only truncates what we record.
        while let Ok(n) = pipe.read(&mut chunk).await {
            if n == 0 {
                break;
            }
            total += n as u64;
            buf.extend_from_slice(&chunk[..n]);
            if buf.len() > 2 * keep {
                buf.drain(..buf.len() - keep);
            }
        }
    }
    if buf.len() > keep {
        buf.drain(..buf.len() - keep);
    }
    if total > buf.len() as u64 {
        // Start at a character, not inside one.
        let skip = buf
            .iter()
            .take(3)
            .take_while(|b| (**b & 0xC0) == 0x80)
            .count();
        buf.drain(..skip);
    }
    Tail { bytes: buf, total }
}

/// Asks the kernel to SIGKILL the child when this process dies, even by `kill -9`, so that no
/// command outlives its run (its own children, in its process group, are its to stop).
///
/// PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, not the process: a
/// child spawned from a short-lived thread (a `spawn_blocking` worker retires after 10 s idle)
/// would be killed mid-step. `run` drives the engine on a current-thread runtime, so children
/// are forked from the main thread, which lives as long as the process; from any other thread
/// the signal is not set rather than risk that.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn die_with_this_process(cmd: &mut tokio::process::Command) {
    let parent = nix::unistd::getpid();
    if nix::unistd::gettid() != parent {
        return;
    }
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe calls are sound. It makes two plain system calls (prctl, getppid) and
    // neither allocates nor takes a lock; its errors are errno values, built without allocating.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
            // The parent may have died before the signal was armed.
            if nix::unistd::getppid() != parent {
                return Err(nix::errno::Errno::ESRCH.into());
            }
            Ok(())
        });
    }
}

/// Elsewhere there is no PR_SET_PDEATHSIG; cancellation still kills the process group.
#[cfg(not(target_os = "linux"))]
fn die_with_this_process(_cmd: &mut tokio::process::Command) {}

/// The workflow file's directory, absolute, so that a relative program path resolves the same
/// way whatever the current directory of the child.
pub(crate) fn workflow_dir(path: &Path) -> PathBuf {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::path::absolute(&dir).unwrap_or(dir)
}

/// A finished process.
pub(crate) struct Finished {
    pub status: std::process::ExitStatus,
    /// stdout, lossy UTF-8, one trailing newline removed.
    pub stdout: String,
    pub stderr_tail: String,
}

impl Finished {
    /// `<what> exited with status N: <last stderr line>`.
    pub fn failure_message(&self, what: &str, no_content: bool) -> String {
        let how = match (self.status.code(), self.status.signal()) {
            (Some(code), _) => format!("exited with status {code}"),
            (None, Some(sig)) => format!("was killed by signal {sig}"),
            (None, None) => "failed".to_string(),
        };
        let mut message = format!("{what} {how}");
        if !no_content
            && let Some(last) = self
                .stderr_tail
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
        {
            message.push_str(": ");
            message.push_str(last.trim());
        }
        message
    }
}

impl TraceRun {
    /// A command for `argv` whose relative program path (`./scripts/x.sh`) is resolved from
    /// the workflow's directory.
    pub(crate) fn program(&self, argv: &[String]) -> tokio::process::Command {
        let dir = workflow_dir(&self.engine.wf.path);
        let first = argv.first().map(String::as_str).unwrap_or_default();
        let mut prog = PathBuf::from(first);
        if prog.is_relative() && first.contains('/') {
            prog = dir.join(prog);
        }
        let mut c = tokio::process::Command::new(prog);
        c.args(argv.iter().skip(1));
        c
    }

    /// Runs a process in the workflow's directory, in its own process group, with `stdin`
    /// (or none), recording its pid on `span`. Cancellation kills the whole group.
    pub(crate) async fn run_process(
        &self,
        frame: &Frame,
        span: &SpanHandle,
        program: &str,
        mut cmd: tokio::process::Command,
        stdin: Option<Vec<u8>>,
    ) -> Result<Finished, Failure> {
        cmd.current_dir(workflow_dir(&self.engine.wf.path))
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            // Its own process group, so that cancelling kills the whole tree it started.
            .process_group(0);
        // W3C trace context for the process's own span: an `agentrace run` (or anything
        // instrumented with OpenTelemetry) started here nests under this span.
        cmd.env(
            "TRACEPARENT",
            TraceParent::header(self.rec.trace().trace_id, span.id()),
        );
        match self
            .engine
            .opts
            .trace_context
            .as_ref()
            .and_then(|c| c.tracestate.as_deref())
        {
            Some(state) => cmd.env("TRACESTATE", state),
            None => cmd.env_remove("TRACESTATE"),
        };
        die_with_this_process(&mut cmd);
        // The process may be another run under this trace: the trace must be in the store.
        self.rec.settle();
        let mut child = cmd.spawn().map_err(|e| {
            Failure::error(error_at(
                format!("cannot start `{program}`: {e}"),
                json!({ "program": program }),
            ))
        })?;
        let pid = child.id();
        if let Some(pid) = pid {
            span.set_attribute("pid", json!(pid));
        }
        let input = child.stdin.take();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let feed = async move {
            if let (Some(mut pipe), Some(bytes)) = (input, stdin) {
                // A process that exits without reading its input is not an error here.
                let _ = pipe.write_all(&bytes).await;
                let _ = pipe.shutdown().await;
            }
        };
        let work = async {
            let ((), out, err, status) = tokio::join!(
                feed,
                read_tail(stdout, STDOUT_KEPT_BYTES),
                read_tail(stderr, STDERR_KEPT_BYTES),
                child.wait()
            );
            (out, err, status)
        };
        tokio::pin!(work);
        let finished = tokio::select! {
            r = &mut work => Some(r),
            () = frame.scope.cancelled() => None,
        };
        let Some((out, err, status)) = finished else {
            if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            // Reap the child; a grandchild that left the group may hold the pipes open.
            let _ = tokio::time::timeout(Duration::from_secs(2), &mut work).await;
            return Err(frame.scope.failure());
        };
        let status = status.map_err(|e| {
            Failure::error(error_at(
                format!("waiting for `{program}` failed: {e}"),
                Value::Null,
            ))
        })?;
        span.set_attribute("exit_code", json!(status.code()));
        // A cut stream says so, with its full size; the output is its last part.
        for (name, tail) in [("stdout", &out), ("stderr", &err)] {
            if tail.cut() {
                span.set_attribute(&format!("{name}_bytes"), json!(tail.total));
                span.set_attribute(&format!("{name}_truncated"), json!(true));
            }
        }
        let mut text = String::from_utf8_lossy(&out.bytes).into_owned();
        if text.ends_with('\n') {
            text.pop();
            if text.ends_with('\r') {
                text.pop();
            }
        }
        Ok(Finished {
            status,
            stdout: text,
            stderr_tail: stderr_tail(&err.bytes),
        })
    }

    pub(crate) async fn run_command(
        &self,
        frame: &Frame,
        step: &Step,
        parent: Option<SpanId>,
    ) -> Result<(), Failure> {
        let StepKind::Run { command, env } = &step.kind else {
            return Ok(());
        };
        let no_content = self.engine.opts.no_content;
        let started = std::time::Instant::now();
        let mut attrs = self.step_attributes(step);
        // Render before opening the span so that the span can carry what actually runs; a
        // template error still gets a span to sit on.
        let rendered: Result<Vec<String>, Failure> = match command {
            Command::Argv(args) => {
                let mut argv = Ok(Vec::with_capacity(args.len()));
                for (i, a) in args.iter().enumerate() {
                    match self
                        .render(frame, &format!("run[{i}]"), a.loc, &a.value)
                        .await
                    {
                        Ok(arg) => argv.iter_mut().for_each(|v| v.push(arg.clone())),
                        Err(e) => {
                            argv = Err(e);
                            break;
                        }
                    }
                }
                argv
            }
            Command::Script(script) => Ok(vec![script.value.clone()]),
        };
        let program = match (command, &rendered) {
            (Command::Argv(_), Ok(argv)) => argv.first().cloned().unwrap_or_default(),
            (Command::Argv(args), Err(_)) => {
                args.first().map(|a| a.value.clone()).unwrap_or_default()
            }
            (Command::Script(_), _) => "sh".to_string(),
        };
        match (command, &rendered) {
            (Command::Argv(_), Ok(argv)) if !no_content => {
                attrs.insert("argv".into(), json!(argv));
            }
            (Command::Argv(_), _) => {
                attrs.insert("argv".into(), json!([program]));
            }
            (Command::Script(script), _) if !no_content => {
                attrs.insert("script".into(), Value::String(script.value.clone()));
            }
            (Command::Script(_), _) => {
                attrs.insert(
                    "script".into(),
                    Value::String("<omitted: --no-content>".into()),
                );
            }
        }
        if !env.is_empty() {
            // Names only: values may be secrets passed on purpose.
            attrs.insert("env".into(), json!(env.keys().collect::<Vec<_>>()));
        }
        let name = match (&step.name, &step.id) {
            (Some(n), _) => self
                .render(frame, "name", n.loc, &n.value)
                .await
                .unwrap_or_else(|_| n.value.clone()),
            (None, Some(id)) => id.value.clone(),
            (None, None) => program.clone(),
        };
        let span = self.rec.span(parent, SpanKind::Command, name, attrs);

        let result = async {
            let argv = rendered?;
            let mut vars = Vec::new();
            for (key, value) in env {
                vars.push((
                    key.clone(),
                    self.render(frame, &format!("env.{key}"), value.loc, &value.value)
                        .await?,
                ));
            }
            let mut cmd = match command {
                Command::Argv(_) => self.program(&argv),
                Command::Script(_) => {
                    let mut c = tokio::process::Command::new("sh");
                    c.arg("-c").arg(&argv[0]);
                    c
                }
            };
            cmd.envs(vars);
            let done = self.run_process(frame, &span, &program, cmd, None).await?;
            if done.status.success() {
                if !no_content {
                    span.set_attribute("stdout", Value::String(done.stdout.clone()));
                }
                Ok(done.stdout)
            } else {
                let mut data = Map::new();
                data.insert("exit_code".into(), json!(done.status.code()));
                if !no_content && !done.stderr_tail.is_empty() {
                    span.set_attribute("stderr_tail", Value::String(done.stderr_tail.clone()));
                    data.insert(
                        "stderr_tail".into(),
                        Value::String(done.stderr_tail.clone()),
                    );
                }
                let what = match command {
                    Command::Argv(_) => format!("command `{program}`"),
                    Command::Script(_) => "script".to_string(),
                };
                let message = done.failure_message(&what, no_content);
                Err(Failure::error(error_at(message, Value::Object(data))))
            }
        }
        .await;

        // -- `expect:` checks, while the span is open: their events land on it.
        let result = result.and_then(|text| {
            let usage = crate::trace::Usage::default();
            self.check_expectations(step, &span, &text, usage, started.elapsed(), None)?;
            Ok(text)
        });
        match result {
            Ok(text) => {
                let output = Output::from_text(text);
                self.record_output(frame, step, &output, Status::Ok);
                // -- `scores:`, under the step's span; they never fail it.
                if !step.scores.is_empty() {
                    let subject = super::scores::Subject {
                        output: output.text(),
                        path: None,
                    };
                    self.run_scores(frame, &step.scores, Some(span.id()), &subject)
                        .await;
                }
                span.end(Status::Ok, None);
                Ok(())
            }
            Err(failure) => {
                span.end(
                    failure.status(),
                    (!failure.cancelled).then(|| failure.error.clone()),
                );
                Err(failure)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_tail_keeps_the_end_at_a_line_start() {
        assert_eq!(stderr_tail(b"short\n"), "short");
        let long = format!("{}\nlast line\n", "x".repeat(5000));
        let tail = stderr_tail(long.as_bytes());
        assert!(tail.len() <= STDERR_TAIL_BYTES + 4);
        assert!(tail.ends_with("last line"));
    }
}
