//! The spool: what a pushing runner could not send, kept in order in a local file until the
//! next run or `agentrace push` sends it.
//!
//! One [`Record`] a line, as JSON: appending is one `write` of whole lines, and a line cut short
//! by a crash is the only one lost (it is skipped and counted). The file and its folder are
//! private (0600, 0700): a spool holds prompts and outputs like a store does. Every reader and
//! writer holds an exclusive `flock` on a lock file beside it, so that two runs of one CI job,
//! or a run and a `push`, never interleave or send a record twice; the spool is rewritten by a
//! rename (the lock is on the other file for that reason), and removed once empty, so that "the
//! spool exists" means "something is left to send".

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use super::Record;

/// The spool file at a path (which need not exist yet).
#[derive(Clone, Debug)]
pub struct Spool {
    path: PathBuf,
}

/// What to do with a record handed out by [`Spool::drain`].
pub enum Step {
    /// It was sent: drop it.
    Sent,
    /// Keep it and go on with the next one.
    Keep,
    /// Keep it and every one after it; stop.
    Stop,
}

/// What a drain did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Drained {
    pub sent: usize,
    pub spans: usize,
    pub left: usize,
    /// Lines that were not a record (cut short by a crash): dropped.
    pub unreadable: usize,
}

fn io_error(path: &Path, e: &std::io::Error) -> String {
    format!("spool {}: {e}", path.display())
}

impl Spool {
    pub fn new(path: PathBuf) -> Spool {
        Spool { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Holds the spool's lock until dropped, creating the private folder if needed.
    fn lock(&self) -> Result<Flock<File>, String> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| io_error(dir, &e))?;
        }
        let mut name = self.path.as_os_str().to_owned();
        name.push(".lock");
        let lock_path = PathBuf::from(name);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|e| io_error(&lock_path, &e))?;
        Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, errno)| format!("spool {}: cannot lock: {errno}", lock_path.display()))
    }

    /// Appends `records` in order.
    pub fn append(&self, records: &[Record]) -> Result<(), String> {
        if records.is_empty() {
            return Ok(());
        }
        let mut text = String::new();
        for record in records {
            text.push_str(&serde_json::to_string(record).map_err(|e| e.to_string())?);
            text.push('\n');
        }
        let _lock = self.lock()?;
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.path)
            .map_err(|e| io_error(&self.path, &e))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_data())
            .map_err(|e| io_error(&self.path, &e))
    }

    /// How many records wait (0 when there is no spool).
    pub fn pending(&self) -> Result<usize, String> {
        let _lock = self.lock()?;
        Ok(self.lines()?.len())
    }

    fn lines(&self) -> Result<Vec<String>, String> {
        match File::open(&self.path) {
            Ok(file) => BufReader::new(file)
                .lines()
                .filter(|l| !l.as_ref().is_ok_and(|l| l.trim().is_empty()))
                .collect::<Result<_, _>>()
                .map_err(|e| io_error(&self.path, &e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(io_error(&self.path, &e)),
        }
    }

    /// Hands out every record in order to `send`, then keeps only those it did not send (the
    /// spool goes once empty). The lock is held throughout: a run that spools meanwhile waits.
    pub fn drain(&self, mut send: impl FnMut(&Record) -> Step) -> Result<Drained, String> {
        let _lock = self.lock()?;
        let lines = self.lines()?;
        if lines.is_empty() {
            return Ok(Drained::default());
        }
        let mut drained = Drained::default();
        let mut kept: Vec<&str> = Vec::new();
        let mut stopped = false;
        for line in &lines {
            if stopped {
                kept.push(line);
                continue;
            }
            let Ok(record) = serde_json::from_str::<Record>(line) else {
                drained.unreadable += 1;
                continue;
            };
            match send(&record) {
                Step::Sent => {
                    drained.sent += 1;
                    drained.spans += record.spans();
                }
                Step::Keep => kept.push(line),
                Step::Stop => {
                    kept.push(line);
                    stopped = true;
                }
            }
        }
        drained.left = kept.len();
        if kept.len() == lines.len() && drained.unreadable == 0 {
            return Ok(drained);
        }
        if kept.is_empty() {
            std::fs::remove_file(&self.path).map_err(|e| io_error(&self.path, &e))?;
            return Ok(drained);
        }
        let mut name = self.path.as_os_str().to_owned();
        name.push(".tmp");
        let tmp = PathBuf::from(name);
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| io_error(&tmp, &e))?;
        let mut text = kept.join("\n");
        text.push('\n');
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_data())
            .map_err(|e| io_error(&tmp, &e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| io_error(&self.path, &e))?;
        Ok(drained)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn experiment(n: u64) -> Record {
        Record::Experiment(json!({ "n": n }))
    }

    fn numbers(spool: &Spool) -> Vec<u64> {
        let mut seen = Vec::new();
        spool
            .drain(|r| {
                if let Record::Experiment(v) = r {
                    seen.push(v["n"].as_u64().unwrap());
                }
                Step::Keep
            })
            .unwrap();
        seen
    }

    #[test]
    fn records_come_back_in_order_and_sent_ones_go() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path().join("deep/spool.jsonl"));
        assert_eq!(spool.pending().unwrap(), 0);
        spool.append(&[experiment(1), experiment(2)]).unwrap();
        spool.append(&[experiment(3)]).unwrap();
        assert_eq!(numbers(&spool), [1, 2, 3]);
        let drained = spool
            .drain(|r| match r {
                Record::Experiment(v) if v["n"] == 2 => Step::Stop,
                _ => Step::Sent,
            })
            .unwrap();
        assert_eq!((drained.sent, drained.left), (1, 2));
        assert_eq!(numbers(&spool), [2, 3]);
        spool.drain(|_| Step::Sent).unwrap();
        assert!(!spool.path().exists(), "an empty spool is removed");
    }

    #[test]
    fn the_spool_is_private_and_a_torn_line_is_dropped() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path().join("s/spool.jsonl"));
        spool.append(&[experiment(1)]).unwrap();
        let mode = std::fs::metadata(spool.path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let folder = std::fs::metadata(dir.path().join("s")).unwrap();
        assert_eq!(folder.permissions().mode() & 0o777, 0o700);
        let mut f = OpenOptions::new().append(true).open(spool.path()).unwrap();
        f.write_all(b"{\"experiment\": {\"n\"").unwrap();
        let drained = spool.drain(|_| Step::Sent).unwrap();
        assert_eq!((drained.sent, drained.unreadable), (1, 1));
    }

    #[test]
    fn otlp_records_survive_the_json_round_trip() {
        use crate::trace::fixture;
        let doc = fixture::every_kind();
        let request = crate::export::otlp::map::request(
            std::slice::from_ref(&doc),
            crate::export::otlp::map::resource("agentrace", &[]),
        );
        let line = serde_json::to_string(&Record::Traces(request.clone())).unwrap();
        let Record::Traces(back) = serde_json::from_str(&line).unwrap() else {
            panic!("not traces")
        };
        assert_eq!(back, request);
    }
}
