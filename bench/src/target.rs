//! The relay under test: started by the bench (`--spawn`) or already running (`--url`, `--pid`),
//! and stopped with SIGTERM at the end of a spawned run.

use crate::client::Endpoint;
use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// How long a spawned server may take to print its `listening on` line.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a spawned server may take to exit after SIGTERM before it is killed.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// Flags the bench passes to a spawned server unless `--server-arg` sets them itself: any port
/// on loopback, no rate limits (the bench sends faster than a browser, all from one address),
/// room for every mode.
const SPAWN_DEFAULTS: [(&str, &str); 6] = [
    ("--addr", "127.0.0.1:0"),
    ("--rate-limit", "0"),
    ("--max-connections", "20000"),
    ("--max-rooms", "20000"),
    ("--ip-rate-limit", "0"),
    ("--max-connections-per-ip", "0"),
];

/// Which relay to measure.
#[derive(Args, Debug, Clone)]
pub struct TargetArgs {
    /// WebSocket URL of a running relay, e.g. ws://127.0.0.1:8080/ws (needs --pid).
    #[arg(
        long,
        requires = "pid",
        conflicts_with = "spawn",
        required_unless_present = "spawn"
    )]
    pub url: Option<String>,
    /// Process id of the relay at --url, to read its CPU time and memory.
    #[arg(long, requires = "url")]
    pub pid: Option<u32>,
    /// Server binary to start for this run; it listens on 127.0.0.1 on a port the OS picks.
    #[arg(long, value_name = "PATH")]
    pub spawn: Option<PathBuf>,
    /// Extra argument for the spawned server, repeated for several, e.g.
    /// `--server-arg=--max-members --server-arg=20`.
    #[arg(
        long = "server-arg",
        value_name = "ARG",
        requires = "spawn",
        allow_hyphen_values = true
    )]
    pub server_args: Vec<String>,
    /// File that receives the spawned server's stderr (its logs). Without it only the last lines
    /// are kept, to explain a failed start or a crash.
    #[arg(long, value_name = "PATH", requires = "spawn")]
    pub server_log: Option<PathBuf>,
}

/// A relay under test: where to connect and which process to watch.
pub struct Server {
    /// Where clients connect.
    pub endpoint: Endpoint,
    /// The relay's process id, for `/proc`.
    pub pid: u32,
    /// The child process when the bench started it.
    child: Option<Child>,
    /// The end of the spawned server's stderr.
    stderr_tail: StderrTail,
}

impl Server {
    /// Spawns the server binary or attaches to the running relay, as `args` say.
    pub fn start(args: &TargetArgs) -> Result<Server> {
        match (&args.spawn, &args.url, args.pid) {
            (Some(path), _, _) => spawn(path, args),
            (None, Some(url), Some(pid)) => {
                let endpoint = Endpoint::parse(url)?;
                crate::procfs::rss_kb(pid).with_context(|| format!("no relay process {pid}"))?;
                Ok(Server {
                    endpoint,
                    pid,
                    child: None,
                    stderr_tail: StderrTail::default(),
                })
            }
            _ => bail!("give either --spawn PATH or --url URL with --pid PID"),
        }
    }

    /// Fails when a spawned server has exited (crashed) in the meantime.
    pub fn check_running(&mut self) -> Result<()> {
        if let Some(child) = &mut self.child
            && let Some(status) = child
                .try_wait()
                .context("cannot check the server process")?
        {
            let stderr = self.stderr_tail.describe();
            bail!("the server exited during the run ({status}); {stderr}");
        }
        Ok(())
    }

    /// Stops a spawned server with SIGTERM and describes how it ended, for the report; `None`
    /// for a relay the bench did not start (it is left running).
    pub fn stop(mut self) -> Result<Option<String>> {
        match self.child.take() {
            Some(child) => terminate(child).map(Some),
            None => Ok(None),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // On an error path: never leave a spawned server behind.
        if let Some(child) = self.child.take()
            && let Err(e) = terminate(child)
        {
            eprintln!("relay-bench: cannot stop the server: {e:#}");
        }
    }
}

fn spawn(path: &Path, args: &TargetArgs) -> Result<Server> {
    let mut command = Command::new(path);
    for (flag, value) in SPAWN_DEFAULTS {
        let overridden = args.server_args.iter().any(|a| {
            a == flag
                || a.strip_prefix(flag)
                    .is_some_and(|rest| rest.starts_with('='))
        });
        if !overridden {
            command.args([flag, value]);
        }
    }
    command
        .args(&args.server_args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    command.stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot start {}", path.display()))?;
    let stderr_tail = match keep_stderr(&mut child, args.server_log.as_deref()) {
        Ok(tail) => tail,
        Err(e) => {
            let _ = terminate(child);
            return Err(e);
        }
    };
    let endpoint = match listening_endpoint(&mut child) {
        Ok(endpoint) => endpoint,
        Err(e) => {
            // Best effort: the startup error is the one worth reporting.
            let _ = terminate(child);
            return Err(anyhow!("{e:#}\n{}", stderr_tail.describe()));
        }
    };
    Ok(Server {
        endpoint,
        pid: child.id(),
        child: Some(child),
        stderr_tail,
    })
}

/// The last lines the spawned server wrote on stderr, to explain a failed start or a crash.
#[derive(Clone, Default)]
struct StderrTail(Arc<Mutex<VecDeque<String>>>);

impl StderrTail {
    const LINES: usize = 20;

    fn push(&self, line: String) {
        if let Ok(mut lines) = self.0.lock() {
            if lines.len() == Self::LINES {
                lines.pop_front();
            }
            lines.push_back(line);
        }
    }

    fn describe(&self) -> String {
        let lines = self.0.lock().map(|l| l.iter().cloned().collect::<Vec<_>>());
        match lines {
            Ok(lines) if !lines.is_empty() => {
                format!("the server's last stderr lines:\n{}", lines.join("\n"))
            }
            _ => "the server wrote nothing on stderr".to_owned(),
        }
    }
}

/// Reads the spawned server's stderr in a thread: every line goes to `log` when given, and the
/// last ones are kept in memory.
fn keep_stderr(child: &mut Child, log: Option<&Path>) -> Result<StderrTail> {
    let stderr = child
        .stderr
        .take()
        .context("the server's stderr is not piped")?;
    let mut log = match log {
        Some(path) => Some(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        ),
        None => None,
    };
    let tail = StderrTail::default();
    let kept = tail.clone();
    std::thread::Builder::new()
        .name("server-stderr".into())
        .spawn(move || {
            let mut reader = BufReader::new(stderr);
            let mut line = Vec::new();
            while matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0) {
                if let Some(file) = &mut log
                    && file.write_all(&line).is_err()
                {
                    log = None;
                }
                kept.push(String::from_utf8_lossy(&line).trim_end().to_owned());
                line.clear();
            }
        })
        .context("cannot start the thread reading the server's stderr")?;
    Ok(tail)
}

/// Reads the spawned server's first stdout line, `listening on ADDR`, and keeps draining the
/// rest in a thread so that a chatty server never blocks on a full pipe.
fn listening_endpoint(child: &mut Child) -> Result<Endpoint> {
    let stdout = child
        .stdout
        .take()
        .context("the server's stdout is not piped")?;
    let (first_line, lines) = mpsc::channel();
    std::thread::Builder::new()
        .name("server-stdout".into())
        .spawn(move || {
            let mut reader = BufReader::new(stdout).lines();
            let _ = first_line.send(reader.next());
            for _ in reader {}
        })
        .context("cannot start the thread reading the server's stdout")?;
    let line = match lines.recv_timeout(STARTUP_TIMEOUT) {
        Ok(Some(line)) => line.context("cannot read the server's stdout")?,
        Ok(None) | Err(mpsc::RecvTimeoutError::Disconnected) => {
            // Give an exiting server a moment, to report its exit status.
            let mut status = None;
            for _ in 0..50 {
                status = child
                    .try_wait()
                    .context("cannot check the server process")?;
                if status.is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let status = status.map_or_else(|| "still running".to_owned(), |s| s.to_string());
            bail!("the server closed its stdout before printing `listening on ADDR` ({status})");
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            bail!("the server printed nothing on stdout within {STARTUP_TIMEOUT:?}")
        }
    };
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .with_context(|| format!("the server's first line is `{line}`, not `listening on ADDR`"))?;
    Endpoint::parse(&format!("ws://{addr}/ws"))
}

/// Sends SIGTERM, waits for the exit, and kills the process if it does not exit in time.
fn terminate(mut child: Child) -> Result<String> {
    if let Some(status) = child
        .try_wait()
        .context("cannot check the server process")?
    {
        return Ok(format!("had already exited ({status})"));
    }
    let pid = libc::pid_t::try_from(child.id()).context("pid out of range")?;
    let started = Instant::now();
    // SAFETY: kill has no memory-safety preconditions; the pid is our own unreaped child.
    if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(e).context("cannot send SIGTERM to the server");
    }
    while started.elapsed() < SHUTDOWN_TIMEOUT {
        if let Some(status) = child.try_wait().context("cannot wait for the server")? {
            let ms = started.elapsed().as_millis();
            return Ok(format!("{status} {ms} ms after SIGTERM"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().context("cannot kill the server")?;
    child.wait().context("cannot reap the server")?;
    Ok(format!(
        "did not exit within {SHUTDOWN_TIMEOUT:?} of SIGTERM; killed"
    ))
}

/// Raises the soft limit on open files to the hard limit: the bench holds one socket per
/// client, and a spawned server inherits the raised limit.
pub fn raise_nofile_limit() -> Result<()> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit for the kernel to fill in.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(e).context("cannot read the open-file limit");
    }
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: `limit` is a valid rlimit; raising the soft limit up to the hard one is allowed.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            let e = std::io::Error::last_os_error();
            return Err(e).context("cannot raise the open-file limit");
        }
    }
    Ok(())
}
