//! Running one prover step: its own process group, a deadline, cancellation, and the
//! tails of what it printed.
//!
//! 1. Spawn the program with stdin closed, stdout and stderr piped, in a new process
//!    group, without the runtime's secrets in its environment.
//! 2. Drain both pipes on threads into bounded tails (a chatty prover never fills the
//!    pipe and never grows our memory).
//! 3. Every [`POLL`], look whether it exited *without reaping it* (`waitid` with
//!    `WNOWAIT`: the zombie keeps its pid, so its process group id cannot be reused),
//!    whether the task was cancelled and whether the deadline passed.
//! 4. Kill the whole process group: on cancel or timeout that stops the step; after a
//!    normal exit it stops anything the step left running. Then reap.
//!
//! Steps still running when the leader or worker exits (a job failed on another lane,
//! the process is shutting down) are killed by [`kill_running`], which the binaries
//! call on their way out; a step's first process also gets SIGKILL if the thread that
//! runs it dies (`PR_SET_PDEATHSIG`), so even a killed worker leaves no prover behind.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io::{self, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use crate::contract::Ending;

/// How often a running step is looked at.
const POLL: Duration = Duration::from_millis(10);
/// Bytes kept from the end of stdout and of stderr.
pub const TAIL_BYTES: usize = 8 * 1024;
/// How long the pipe readers get to finish after the process group is gone (a
/// grandchild that left the group may still hold a pipe open).
const DRAIN_GRACE: Duration = Duration::from_secs(1);

/// Environment variables that hold the runtime's credentials: a prover never needs them.
const SECRET_ENV: &[&str] = &[
    "PROOFLINE_AMQP_URI",
    "PROOFLINE_API_TOKEN",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
];

/// Process groups of the steps running in this process.
static RUNNING: Mutex<BTreeSet<libc::pid_t>> = Mutex::new(BTreeSet::new());

fn running() -> std::sync::MutexGuard<'static, BTreeSet<libc::pid_t>> {
    RUNNING.lock().unwrap_or_else(|p| p.into_inner())
}

/// SIGKILL the process group of every step running in this process; each such step
/// then ends as killed by a signal. Returns how many there were.
pub fn kill_running() -> usize {
    let groups = running();
    for &group in groups.iter() {
        // SAFETY: kill(2) on a group whose leader is our own child, not yet reaped
        // (a group leaves `RUNNING` before its leader is reaped).
        unsafe {
            libc::kill(-group, libc::SIGKILL);
        }
    }
    groups.len()
}

/// One run of the prover.
pub struct Invocation<'a> {
    pub program: &'a Path,
    pub args: Vec<OsString>,
    pub env: Vec<(&'static str, String)>,
    pub cwd: &'a Path,
    pub timeout: Duration,
    /// Polled while the step runs; `true` kills it.
    pub cancelled: &'a dyn Fn() -> bool,
}

/// How a run ended and the tails of its output.
#[derive(Debug)]
pub struct Finished {
    pub ending: Ending,
    pub stdout: String,
    pub stderr: String,
}

/// Run `inv` to its end (see the module docs for the steps).
pub fn run(inv: &Invocation) -> io::Result<Finished> {
    let mut child = command(inv).spawn()?;
    let group = child.id() as libc::pid_t;
    running().insert(group);
    let (done_tx, done_rx) = mpsc::channel();
    let stdout = drain(child.stdout.take(), done_tx.clone());
    let stderr = drain(child.stderr.take(), done_tx);

    let started = Instant::now();
    let stopped = loop {
        if exited_unreaped(&child).inspect_err(|_| {
            running().remove(&group);
        })? {
            break None;
        }
        if (inv.cancelled)() {
            break Some(Ending::Cancelled);
        }
        if started.elapsed() >= inv.timeout {
            break Some(Ending::TimedOut(inv.timeout));
        }
        thread::sleep(POLL);
    };
    kill_group(&child);
    running().remove(&group); // before reaping: the group id stays ours until then
    let status = child.wait()?;
    let ending = stopped.unwrap_or_else(|| match (status.code(), status.signal()) {
        (Some(code), _) => Ending::Exited(code),
        (None, Some(signal)) => Ending::Signalled(signal),
        (None, None) => Ending::Signalled(0),
    });

    let deadline = Instant::now() + DRAIN_GRACE;
    for _ in 0..2 {
        let left = deadline.saturating_duration_since(Instant::now());
        if done_rx.recv_timeout(left).is_err() {
            break;
        }
    }
    Ok(Finished { ending, stdout: stdout.text(), stderr: stderr.text() })
}

/// The command of step 1: own process group, no stdin, piped output, no secrets.
fn command(inv: &Invocation) -> Command {
    let mut command = Command::new(inv.program);
    command
        .args(&inv.args)
        .current_dir(inv.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    // SAFETY: prctl(2) is async-signal-safe and touches only the new process.
    #[cfg(target_os = "linux")]
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    for name in SECRET_ENV {
        command.env_remove(name);
    }
    command.envs(inv.env.iter().map(|(k, v)| (k, v)));
    command
}

/// Whether `child` has exited, leaving it a zombie (not reaped) so that its pid, and
/// so its process group id, stay reserved until [`kill_group`] has run.
fn exited_unreaped(child: &Child) -> io::Result<bool> {
    // SAFETY: `waitid` writes only into `info`, which is a plain C struct; with
    // WNOHANG it does not block and with WNOWAIT it does not reap.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
    let rc = unsafe { libc::waitid(libc::P_PID, child.id() as libc::id_t, &mut info, flags) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `si_pid` is valid for the SIGCHLD-shaped info `waitid` fills; it is zero
    // when no child has changed state (WNOHANG).
    Ok(unsafe { info.si_pid() } != 0)
}

/// SIGKILL every process in the child's group (the child leads it: `process_group(0)`).
fn kill_group(child: &Child) {
    // SAFETY: kill(2) with a negative pid signals that process group; the group id is
    // our own unreaped child's pid, so it names no one else. ESRCH (nobody left) is fine.
    unsafe {
        libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL);
    }
}

/// The last [`TAIL_BYTES`] of a pipe, filled by a thread.
struct Tail(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Tail {
    fn text(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(|p| p.into_inner());
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

fn drain(pipe: Option<impl Read + Send + 'static>, done: mpsc::Sender<()>) -> Tail {
    let tail = Tail(Default::default());
    let buffer = tail.0.clone();
    thread::spawn(move || {
        if let Some(mut pipe) = pipe {
            let mut chunk = [0u8; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut chunk) {
                let mut kept = buffer.lock().unwrap_or_else(|p| p.into_inner());
                kept.extend_from_slice(&chunk[..n]);
                if kept.len() > TAIL_BYTES {
                    let cut = kept.len() - TAIL_BYTES;
                    kept.drain(..cut);
                }
            }
        }
        let _ = done.send(());
    });
    tail
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tests of this module one at a time: `kill_running` kills every step of the
    /// process, the other tests' too.
    static SERIAL: Mutex<()> = Mutex::new(());

    fn serial() -> std::sync::MutexGuard<'static, ()> {
        SERIAL.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn sh(script: &str, timeout: Duration, cancelled: &dyn Fn() -> bool) -> Finished {
        let dir = tempfile::tempdir().unwrap();
        let inv = Invocation {
            program: Path::new("/bin/sh"),
            args: vec!["-c".into(), script.into()],
            env: vec![("PROOFLINE_TASK", "seg-1".into())],
            cwd: dir.path(),
            timeout,
            cancelled,
        };
        run(&inv).unwrap()
    }

    const LONG: Duration = Duration::from_secs(60);

    #[test]
    fn exit_codes_signals_and_output_tails_come_back() {
        let _serial = serial();
        let done = sh("echo out; echo err >&2; echo $PROOFLINE_TASK >&2; exit 3", LONG, &|| false);
        assert_eq!(done.ending, Ending::Exited(3));
        assert_eq!((done.stdout.as_str(), done.stderr.as_str()), ("out\n", "err\nseg-1\n"));
        let crashed = sh("kill -SEGV $$", LONG, &|| false);
        assert_eq!(crashed.ending, Ending::Signalled(libc::SIGSEGV));
        let chatty = sh("head -c 100000 /dev/zero | tr '\\0' x; echo END", LONG, &|| false);
        assert_eq!(chatty.stdout.len(), TAIL_BYTES);
        assert!(chatty.stdout.ends_with("xEND\n"));
    }

    #[test]
    fn secrets_are_not_passed_on() {
        let inv = Invocation {
            program: Path::new("/bin/true"),
            args: vec![],
            env: vec![("PROOFLINE_TASK", "seg-1".into())],
            cwd: Path::new("/"),
            timeout: LONG,
            cancelled: &|| false,
        };
        let envs: Vec<_> =
            command(&inv).get_envs().map(|(k, v)| (k.to_owned(), v.map(|v| v.to_owned()))).collect();
        for secret in SECRET_ENV {
            assert!(envs.contains(&((*secret).into(), None)), "{secret} is removed");
        }
        assert!(envs.contains(&("PROOFLINE_TASK".into(), Some("seg-1".into()))));
    }

    /// `kill_running` ends every running step (what the binaries do on their way out).
    #[test]
    fn kill_running_ends_the_steps_still_running() {
        let _serial = serial();
        let step = thread::spawn(|| sh("sleep 600", LONG, &|| false));
        let since = Instant::now();
        while kill_running() == 0 {
            assert!(since.elapsed() < Duration::from_secs(10), "the step never started");
            thread::sleep(POLL);
        }
        let done = step.join().unwrap();
        assert_eq!(done.ending, Ending::Signalled(libc::SIGKILL));
    }

    /// A hung step and its background children are killed, on timeout and on cancel.
    #[test]
    fn timeouts_and_cancels_kill_the_whole_process_group() {
        let _serial = serial();
        for (timeout, cancel_after) in [(Duration::from_millis(300), None), (LONG, Some(300))] {
            let pid_file = tempfile::NamedTempFile::new().unwrap();
            let script = format!("sleep 1000 & echo $! > {}; wait", pid_file.path().display());
            let started = Instant::now();
            let cancelled = move || cancel_after.is_some_and(|ms| started.elapsed().as_millis() > ms);
            let done = sh(&script, timeout, &cancelled);
            let expected = if cancel_after.is_some() { Ending::Cancelled } else { Ending::TimedOut(timeout) };
            assert_eq!(done.ending, expected);
            assert!(started.elapsed() < Duration::from_secs(10), "killed promptly");
            let pid: i32 = std::fs::read_to_string(pid_file.path()).unwrap().trim().parse().unwrap();
            // The grandchild was in the group: it dies (a zombie until init reaps it).
            let alive = || {
                std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|stat| stat.split_whitespace().nth(2).is_some_and(|s| s != "Z"))
            };
            let since = Instant::now();
            while alive() && since.elapsed() < Duration::from_secs(5) {
                thread::sleep(POLL);
            }
            assert!(!alive(), "background child {pid} survived");
        }
    }
}
