//! A child process whose stderr is collected line by line (and echoed, for a failing test's log),
//! waited for with deadlines that say what they waited for.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Proc {
    pub name: String,
    pub child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    seen: mpsc::Receiver<String>,
}

impl Proc {
    /// `argv` in a process group of its own, stdin and stdout closed, stderr collected.
    pub fn spawn(name: &str, argv: &[String]) -> Proc {
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, seen) = mpsc::channel();
        let (l, n) = (lines.clone(), name.to_string());
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                eprintln!("[{n}] {line}");
                l.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        Proc {
            name: name.to_string(),
            child,
            lines,
            seen,
        }
    }

    /// Waits for a stderr line containing `what`.
    pub fn wait_for(&self, what: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        if let Some(l) = self.lines.lock().unwrap().iter().find(|l| l.contains(what)) {
            return l.clone();
        }
        while let Ok(line) = self
            .seen
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            if line.contains(what) {
                return line;
            }
        }
        panic!("{}: no line with `{what}` within {within:?}", self.name);
    }

    /// Exit code, waiting at most `within` (then the test fails).
    pub fn exit(&mut self, within: Duration) -> i32 {
        let deadline = Instant::now() + within;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                // The last lines reach `text` after the exit.
                std::thread::sleep(Duration::from_millis(100));
                return s.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "{} still running after {within:?}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL to the whole group.
    pub fn kill(&mut self) {
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }

    pub fn text(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.kill();
        }
    }
}
