//! The relays under test: started by the bench (`--spawn`, one instance or several sharing a
//! Redis) or already running (`--url` with `--pid`, repeated for several instances), and stopped
//! with SIGTERM at the end of a spawned run.
//!
//! Several spawned instances run with `--store redis`, each with its own `--instance-id` and one
//! random `--redis-prefix` for the run, against the Redis at `--redis-url` or a `redis-server`
//! the bench starts on a free loopback port (and stops at the end). CPU time and memory are read
//! from `/proc` for every instance (and the bench's own `redis-server`): the modes report their
//! sums as the server's figures, and [`Figures`] per instance.

use crate::client::Endpoint;
use crate::procfs;
use crate::stats::round3;
use anyhow::{Context, Result, anyhow, bail, ensure};
use clap::Args;
use serde::Serialize;
use std::collections::VecDeque;
use std::hash::{BuildHasher, RandomState};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// How long a spawned server may take to print its `listening on` line, and a spawned
/// `redis-server` to answer.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a spawned process may take to exit after SIGTERM before it is killed.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);
/// Free ports tried for the bench's `redis-server` (another process may take a port between the
/// moment the bench finds it free and the moment Redis binds it).
const REDIS_ATTEMPTS: usize = 3;

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

/// Which relays to measure.
#[derive(Args, Debug, Clone)]
pub struct TargetArgs {
    /// WebSocket URL of a running relay, e.g. ws://127.0.0.1:8080/ws (needs --pid). Repeat it,
    /// with one --pid each in the same order, for several instances sharing a Redis.
    #[arg(
        long = "url",
        value_name = "URL",
        requires = "pids",
        conflicts_with = "spawn",
        required_unless_present = "spawn"
    )]
    pub urls: Vec<String>,
    /// Process id of the relay at --url, to read its CPU time and memory (repeated with --url).
    #[arg(long = "pid", value_name = "PID", requires = "urls")]
    pub pids: Vec<u32>,
    /// Server binary to start for this run; it listens on 127.0.0.1 on a port the OS picks.
    #[arg(long, value_name = "PATH")]
    pub spawn: Option<PathBuf>,
    /// Server instances to spawn [default: 1]. Several share room state through Redis
    /// (`--store redis`, a random `--redis-prefix` for the run, `--instance-id i0`, `i1`, ...).
    #[arg(long, value_name = "N", requires = "spawn")]
    pub instances: Option<usize>,
    /// Room store of the spawned instances [default: memory for one instance, redis for
    /// several].
    #[arg(long, value_parser = ["memory", "redis"], requires = "spawn")]
    pub store: Option<String>,
    /// Redis for the spawned instances (implies `--store redis`). Without it the bench starts
    /// its own redis-server on a free loopback port for the run.
    #[arg(long, value_name = "URL", requires = "spawn")]
    pub redis_url: Option<String>,
    /// The redis-server binary the bench starts when it needs a Redis and --redis-url is not
    /// given.
    #[arg(long, value_name = "PATH", default_value = "redis-server")]
    pub redis_server: PathBuf,
    /// Extra argument for every spawned server, repeated for several, e.g.
    /// `--server-arg=--max-members --server-arg=20`.
    #[arg(
        long = "server-arg",
        value_name = "ARG",
        requires = "spawn",
        allow_hyphen_values = true
    )]
    pub server_args: Vec<String>,
    /// File that receives the spawned server's stderr (its logs); with several instances, one
    /// file each, named with `-i<k>` before the extension. Without it only the last lines are
    /// kept, to explain a failed start or a crash.
    #[arg(long, value_name = "PATH", requires = "spawn")]
    pub server_log: Option<PathBuf>,
}

/// The relays under test: one instance, or several sharing a Redis.
pub struct Target {
    /// The instances, in the order of `--url` or of their instance ids.
    instances: Vec<Server>,
    /// The room store of spawned instances; `None` for running relays (not known).
    store: Option<&'static str>,
    /// The Redis that spawned instances share. Declared after `instances`, so that on an error
    /// path the instances are stopped before their Redis.
    redis: Option<Redis>,
}

/// One relay instance: where to connect and which process to watch.
struct Server {
    /// `--instance-id` of a spawned instance in a cluster.
    id: Option<String>,
    /// Where clients connect.
    endpoint: Endpoint,
    /// The relay's process id, for `/proc`.
    pid: u32,
    /// The child process when the bench started it.
    child: Option<Child>,
    /// The end of the spawned server's stderr.
    output: OutputTail,
}

/// The Redis shared by spawned instances.
struct Redis {
    url: String,
    /// The `redis-server` the bench started; `None` for `--redis-url`.
    child: Option<Child>,
    /// The end of the bench's `redis-server`'s output.
    output: OutputTail,
}

impl Target {
    /// Spawns the server instances (and a Redis they share) or attaches to the running relays,
    /// as `args` say.
    pub fn start(args: &TargetArgs) -> Result<Target> {
        match &args.spawn {
            Some(path) => spawn_target(path, args),
            None => attach(args),
        }
    }

    /// Number of instances.
    pub fn len(&self) -> usize {
        self.instances.len()
    }

    /// Where clients connect, one endpoint per instance.
    pub fn endpoints(&self) -> Vec<Endpoint> {
        self.instances.iter().map(|s| s.endpoint.clone()).collect()
    }

    /// The first instance's URL, for the report's `url`.
    pub fn url(&self) -> String {
        self.instances[0].endpoint.url.clone()
    }

    /// Peak resident memory of the instances so far, summed, in KiB.
    pub fn peak_rss_kb(&self) -> Result<u64> {
        self.instances
            .iter()
            .map(|s| procfs::peak_rss_kb(s.pid))
            .sum()
    }

    /// CPU time and memory of every instance (and of the bench's `redis-server`) now.
    pub fn usage(&self) -> Result<Usage> {
        let instances = self
            .instances
            .iter()
            .map(|s| Ok((procfs::cpu_seconds(s.pid)?, procfs::rss_kb(s.pid)?)))
            .collect::<Result<_>>()?;
        let redis = match self.redis.as_ref().and_then(Redis::pid) {
            Some(pid) => Some((procfs::cpu_seconds(pid)?, procfs::rss_kb(pid)?)),
            None => None,
        };
        Ok(Usage { instances, redis })
    }

    /// Fails when a spawned server or the bench's `redis-server` has exited (crashed) in the
    /// meantime.
    pub fn check_running(&mut self) -> Result<()> {
        for server in &mut self.instances {
            if let Some(child) = &mut server.child
                && let Some(status) = child
                    .try_wait()
                    .context("cannot check the server process")?
            {
                let name = server.name();
                let output = server.output.describe("the server");
                bail!("{name} exited during the run ({status}); {output}");
            }
        }
        if let Some(redis) = &mut self.redis
            && let Some(child) = &mut redis.child
            && let Some(status) = child.try_wait().context("cannot check redis-server")?
        {
            let output = redis.output.describe("redis-server");
            bail!("redis-server exited during the run ({status}); {output}");
        }
        Ok(())
    }

    /// The per-instance and Redis figures of a run: CPU time from `cpu_start` to `end`, memory
    /// at `rss_start` and at `end`, over `elapsed` seconds; `clients[k]` is the number of
    /// connections the bench opened to instance `k`.
    pub fn figures(
        &self,
        cpu_start: &Usage,
        rss_start: &Usage,
        end: &Usage,
        elapsed: f64,
        clients: &[usize],
    ) -> Figures {
        let per_instance = self
            .instances
            .iter()
            .enumerate()
            .map(|(k, server)| {
                let cpu_s = end.instances[k].0 - cpu_start.instances[k].0;
                InstanceReport {
                    id: server.id.clone(),
                    url: server.endpoint.url.clone(),
                    pid: server.pid,
                    clients: clients.get(k).copied().unwrap_or(0),
                    cpu_s: round3(cpu_s),
                    cpu_percent: round3(cpu_s / elapsed * 100.0),
                    rss_before_kb: rss_start.instances[k].1,
                    rss_after_kb: end.instances[k].1,
                    exit: None,
                }
            })
            .collect();
        let redis = self.redis.as_ref().map(|redis| {
            let cpu = cpu_start.redis.zip(end.redis);
            RedisReport {
                url: redis.url.clone(),
                spawned: redis.child.is_some(),
                cpu_s: cpu.map(|(start, end)| round3(end.0 - start.0)),
                rss_before_kb: rss_start.redis.map(|(_, rss)| rss),
                rss_after_kb: end.redis.map(|(_, rss)| rss),
                exit: None,
            }
        });
        Figures {
            instances: self.instances.len(),
            store: self.store,
            per_instance,
            redis,
        }
    }

    /// Stops every spawned server with SIGTERM (all at once), then the bench's `redis-server`,
    /// and notes how each ended in `figures`. Returns the report's `server_exit`: how the server
    /// ended, or `i0: ...; i1: ...` for several; `None` for relays the bench did not start (they
    /// are left running).
    pub fn stop(self, figures: &mut Figures) -> Result<Option<String>> {
        let Target {
            mut instances,
            redis,
            ..
        } = self;
        let children: Vec<Option<Child>> = instances.iter_mut().map(|s| s.child.take()).collect();
        let exits: Vec<Option<Result<String>>> = std::thread::scope(|scope| {
            let waiting: Vec<_> = children
                .into_iter()
                .map(|child| child.map(|child| scope.spawn(move || terminate(child))))
                .collect();
            waiting
                .into_iter()
                .map(|handle| {
                    handle.map(|h| {
                        h.join()
                            .unwrap_or_else(|_| Err(anyhow!("stopping the server panicked")))
                    })
                })
                .collect()
        });
        let mut summary = Vec::new();
        let mut first_error = None;
        for ((server, exit), report) in instances.iter().zip(exits).zip(&mut figures.per_instance) {
            match exit {
                Some(Ok(exit)) => {
                    summary.push((server.name(), exit.clone()));
                    report.exit = Some(exit);
                }
                Some(Err(e)) => {
                    first_error.get_or_insert_with(|| e.context(server.name()));
                }
                None => {}
            }
        }
        if let Some(mut redis) = redis
            && let Some(child) = redis.child.take()
        {
            let exit = terminate(child).context("cannot stop redis-server")?;
            if let Some(report) = &mut figures.redis {
                report.exit = Some(exit);
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        Ok(match summary.as_slice() {
            [] => None,
            [(_, exit)] if instances.len() == 1 => Some(exit.clone()),
            _ => Some(
                summary
                    .iter()
                    .map(|(name, exit)| format!("{name}: {exit}"))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
        })
    }
}

/// CPU seconds and resident memory of every instance, and of the bench's `redis-server`, at
/// one moment.
#[derive(Debug, Clone)]
pub struct Usage {
    /// `(cpu_s, rss_kb)` of each instance.
    instances: Vec<(f64, u64)>,
    /// `(cpu_s, rss_kb)` of the `redis-server` the bench started.
    redis: Option<(f64, u64)>,
}

impl Usage {
    /// CPU seconds summed over the instances.
    pub fn cpu_s(&self) -> f64 {
        self.instances.iter().map(|(cpu, _)| cpu).sum()
    }

    /// Resident memory summed over the instances, in KiB.
    pub fn rss_kb(&self) -> u64 {
        self.instances.iter().map(|(_, rss)| rss).sum()
    }
}

/// The target's part of a report: how many instances, and figures per instance and of Redis.
#[derive(Debug, Serialize)]
pub struct Figures {
    /// Number of relay instances measured.
    pub instances: usize,
    /// `memory` or `redis` for spawned instances; `null` for running relays.
    pub store: Option<&'static str>,
    pub per_instance: Vec<InstanceReport>,
    /// The shared Redis of spawned instances with `--store redis`.
    pub redis: Option<RedisReport>,
}

impl Figures {
    /// `server_cpu_s` plus the CPU time of the Redis the instances share: the whole cluster's
    /// CPU. `None` when that is not known (a Redis or relays the bench did not start).
    pub fn cpu_with_redis(&self, server_cpu_s: f64) -> Option<f64> {
        self.store?;
        match &self.redis {
            None => Some(server_cpu_s),
            Some(redis) => redis.cpu_s.map(|cpu| server_cpu_s + cpu),
        }
    }
}

/// One instance's figures over a run.
#[derive(Debug, Serialize)]
pub struct InstanceReport {
    /// `--instance-id` of a spawned instance in a cluster.
    id: Option<String>,
    url: String,
    pid: u32,
    /// Connections the bench opened to this instance.
    clients: usize,
    cpu_s: f64,
    cpu_percent: f64,
    rss_before_kb: u64,
    rss_after_kb: u64,
    /// How the spawned instance ended after SIGTERM.
    exit: Option<String>,
}

/// The shared Redis's figures over a run (CPU and memory only for the bench's own).
#[derive(Debug, Serialize)]
pub struct RedisReport {
    url: String,
    /// Whether the bench started this `redis-server`.
    spawned: bool,
    cpu_s: Option<f64>,
    rss_before_kb: Option<u64>,
    rss_after_kb: Option<u64>,
    /// How the bench's `redis-server` ended after SIGTERM.
    exit: Option<String>,
}

impl Server {
    /// How errors name this instance.
    fn name(&self) -> String {
        match &self.id {
            Some(id) => id.clone(),
            None => format!("the server at {}", self.endpoint.url),
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

impl Redis {
    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(child) = self.child.take()
            && let Err(e) = terminate(child)
        {
            eprintln!("relay-bench: cannot stop redis-server: {e:#}");
        }
    }
}

/// Checks the `--url`/`--pid` pairs of running relays.
fn attach(args: &TargetArgs) -> Result<Target> {
    ensure!(
        !args.urls.is_empty(),
        "give either --spawn PATH or --url URL with --pid PID"
    );
    // clap drops `requires = "spawn"` when --url (which conflicts with --spawn) is present.
    ensure!(
        args.instances.is_none()
            && args.store.is_none()
            && args.redis_url.is_none()
            && args.server_args.is_empty()
            && args.server_log.is_none(),
        "--instances, --store, --redis-url, --server-arg and --server-log need --spawn; \
         for several running instances repeat --url and --pid"
    );
    ensure!(
        args.urls.len() == args.pids.len(),
        "give one --pid per --url ({} URLs, {} pids)",
        args.urls.len(),
        args.pids.len()
    );
    let instances = args
        .urls
        .iter()
        .zip(&args.pids)
        .map(|(url, &pid)| {
            let endpoint = Endpoint::parse(url)?;
            procfs::rss_kb(pid).with_context(|| format!("no relay process {pid}"))?;
            Ok(Server {
                id: None,
                endpoint,
                pid,
                child: None,
                output: OutputTail::default(),
            })
        })
        .collect::<Result<_>>()?;
    Ok(Target {
        instances,
        store: None,
        redis: None,
    })
}

/// Starts a Redis when the store needs one, then the instances.
fn spawn_target(path: &Path, args: &TargetArgs) -> Result<Target> {
    let count = args.instances.unwrap_or(1);
    ensure!(count >= 1, "--instances must be at least 1");
    let store = match (args.store.as_deref(), &args.redis_url) {
        (Some("memory"), Some(_)) => bail!("--redis-url needs --store redis"),
        (Some("memory"), None) if count > 1 => {
            bail!("several instances share rooms only through Redis: drop --store memory")
        }
        (Some("memory"), None) => "memory",
        (None, None) if count == 1 => "memory",
        _ => "redis",
    };
    if count > 1 && has_flag(&args.server_args, "--instance-id") {
        bail!("the bench gives each instance its own --instance-id; drop it from --server-arg");
    }
    let redis = match (store, &args.redis_url) {
        ("redis", Some(url)) => Some(Redis {
            url: url.clone(),
            child: None,
            output: OutputTail::default(),
        }),
        ("redis", None) => Some(spawn_redis(&args.redis_server)?),
        _ => None,
    };
    let mut target = Target {
        instances: Vec::with_capacity(count),
        store: Some(store),
        redis,
    };
    // One prefix per run: nothing is shared with an earlier run or another bench on this Redis.
    let prefix = format!(
        "bench:{:016x}:",
        RandomState::new().hash_one(std::process::id())
    );
    for k in 0..count {
        let id = format!("i{k}");
        let mut cluster = Vec::new();
        if let Some(redis) = &target.redis {
            cluster.extend([
                ("--store", "redis".to_owned()),
                ("--redis-url", redis.url.clone()),
                ("--redis-prefix", prefix.clone()),
            ]);
            if count > 1 {
                cluster.push(("--instance-id", id.clone()));
            }
        }
        let log = args.server_log.as_deref().map(|log| match count {
            1 => log.to_owned(),
            _ => instance_log(log, &id),
        });
        let mut server = spawn(path, args, &cluster, log.as_deref())
            .with_context(|| format!("cannot start instance {id}"))?;
        if target.redis.is_some() && count > 1 {
            server.id = Some(id);
        }
        target.instances.push(server);
    }
    Ok(target)
}

/// `server.log` becomes `server-i1.log` for instance `i1`.
fn instance_log(log: &Path, id: &str) -> PathBuf {
    let stem = log.file_stem().unwrap_or_default().to_string_lossy();
    let name = match log.extension() {
        Some(ext) => format!("{stem}-{id}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{id}"),
    };
    log.with_file_name(name)
}

/// Whether `args` sets `flag`, as `--flag VALUE` or `--flag=VALUE`.
fn has_flag(args: &[String], flag: &str) -> bool {
    args.iter().any(|a| {
        a == flag
            || a.strip_prefix(flag)
                .is_some_and(|rest| rest.starts_with('='))
    })
}

/// Spawns one server with the defaults, `cluster` (its Redis flags), then `--server-arg`s; a
/// flag of the first two that `--server-arg` sets is left out.
fn spawn(
    path: &Path,
    args: &TargetArgs,
    cluster: &[(&str, String)],
    log: Option<&Path>,
) -> Result<Server> {
    let mut command = Command::new(path);
    let defaults = SPAWN_DEFAULTS.iter().map(|&(flag, value)| (flag, value));
    let cluster = cluster.iter().map(|(flag, value)| (*flag, value.as_str()));
    for (flag, value) in defaults.chain(cluster) {
        if !has_flag(&args.server_args, flag) {
            command.args([flag, value]);
        }
    }
    command
        .args(&args.server_args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot start {}", path.display()))?;
    let output = OutputTail::default();
    let kept = child
        .stderr
        .take()
        .context("the server's stderr is not piped")
        .and_then(|stderr| keep_lines(stderr, log, &output, "server-stderr"));
    if let Err(e) = kept {
        let _ = terminate(child);
        return Err(e);
    }
    let endpoint = match listening_endpoint(&mut child) {
        Ok(endpoint) => endpoint,
        Err(e) => {
            // Best effort: the startup error is the one worth reporting.
            let _ = terminate(child);
            return Err(anyhow!("{e:#}\n{}", output.describe("the server")));
        }
    };
    Ok(Server {
        id: None,
        endpoint,
        pid: child.id(),
        child: Some(child),
        output,
    })
}

/// Starts a `redis-server` without persistence on a free loopback port.
fn spawn_redis(binary: &Path) -> Result<Redis> {
    let mut failure = None;
    for _ in 0..REDIS_ATTEMPTS {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|listener| listener.local_addr())
            .context("cannot find a free port for redis-server")?
            .port();
        match try_spawn_redis(binary, port) {
            Ok(redis) => return Ok(redis),
            Err(e) => failure = Some(e),
        }
    }
    Err(failure.unwrap_or_else(|| anyhow!("no attempt made")))
        .with_context(|| format!("cannot start {}", binary.display()))
}

fn try_spawn_redis(binary: &Path, port: u16) -> Result<Redis> {
    let dir = std::env::temp_dir();
    let mut child = Command::new(binary)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .arg("--dir")
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    let output = OutputTail::default();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let mut redis = Redis {
        url: format!("redis://127.0.0.1:{port}"),
        child: Some(child),
        output: output.clone(),
    };
    // From here on, dropping `redis` stops the process.
    if let Some(stdout) = stdout {
        keep_lines(stdout, None, &output, "redis-stdout")?;
    }
    if let Some(stderr) = stderr {
        keep_lines(stderr, None, &output, "redis-stderr")?;
    }
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let started = Instant::now();
    loop {
        let child = redis.child.as_mut().context("redis-server is gone")?;
        if let Some(status) = child.try_wait().context("cannot check redis-server")? {
            bail!(
                "redis-server exited at start ({status}); {}",
                output.describe("redis-server")
            );
        }
        // The pid check makes sure that the Redis answering is ours, not another process that
        // took the port first.
        match redis_pid(addr) {
            Ok(pid) if pid == child.id() => return Ok(redis),
            Ok(pid) => bail!("another Redis (pid {pid}) answers on port {port}"),
            Err(e) if started.elapsed() > STARTUP_TIMEOUT => {
                return Err(e.context(format!(
                    "redis-server did not answer within {STARTUP_TIMEOUT:?}; {}",
                    output.describe("redis-server")
                )));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// The process id of the Redis at `addr` (`process_id` of `INFO server`).
fn redis_pid(addr: SocketAddr) -> Result<u32> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200))?;
    stream.set_read_timeout(Some(Duration::from_secs(1)))?;
    stream.write_all(b"INFO server\r\n")?;
    let mut reply = Vec::new();
    let mut buffer = [0; 4096];
    loop {
        let text = String::from_utf8_lossy(&reply);
        if text.starts_with('-') && text.contains("\r\n") {
            bail!("Redis answered {}", text.trim_end());
        }
        if let Some((_, rest)) = text.split_once("\r\nprocess_id:")
            && let Some((pid, _)) = rest.split_once("\r\n")
        {
            return pid.trim().parse().context("bad process_id in INFO");
        }
        let n = stream.read(&mut buffer)?;
        if n == 0 {
            bail!("Redis closed the connection");
        }
        reply.extend_from_slice(&buffer[..n]);
    }
}

/// The last lines a spawned process wrote, to explain a failed start or a crash.
#[derive(Clone, Default)]
struct OutputTail(Arc<Mutex<VecDeque<String>>>);

impl OutputTail {
    const LINES: usize = 20;

    fn push(&self, line: String) {
        if let Ok(mut lines) = self.0.lock() {
            if lines.len() == Self::LINES {
                lines.pop_front();
            }
            lines.push_back(line);
        }
    }

    /// Describes the kept lines of `who`'s output.
    fn describe(&self, who: &str) -> String {
        let lines = self.0.lock().map(|l| l.iter().cloned().collect::<Vec<_>>());
        match lines {
            Ok(lines) if !lines.is_empty() => {
                format!("{who}'s last output lines:\n{}", lines.join("\n"))
            }
            _ => format!("{who} wrote nothing"),
        }
    }
}

/// Reads a child's output in a thread: every line goes to `log` when given, and the last ones
/// are kept in `tail`.
fn keep_lines(
    output: impl Read + Send + 'static,
    log: Option<&Path>,
    tail: &OutputTail,
    thread: &str,
) -> Result<()> {
    let mut log = match log {
        Some(path) => Some(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        ),
        None => None,
    };
    let kept = tail.clone();
    std::thread::Builder::new()
        .name(thread.into())
        .spawn(move || {
            let mut reader = BufReader::new(output);
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
        .with_context(|| format!("cannot start the thread {thread}"))?;
    Ok(())
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
    if let Some(status) = child.try_wait().context("cannot check the process")? {
        return Ok(format!("had already exited ({status})"));
    }
    let pid = libc::pid_t::try_from(child.id()).context("pid out of range")?;
    let started = Instant::now();
    // SAFETY: kill has no memory-safety preconditions; the pid is our own unreaped child.
    if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(e).context("cannot send SIGTERM");
    }
    while started.elapsed() < SHUTDOWN_TIMEOUT {
        if let Some(status) = child.try_wait().context("cannot wait for the process")? {
            let ms = started.elapsed().as_millis();
            return Ok(format!("{status} {ms} ms after SIGTERM"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().context("cannot kill the process")?;
    child.wait().context("cannot reap the process")?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_found_with_or_without_equals() {
        let args = [
            "--store=redis".to_owned(),
            "--workers".to_owned(),
            "1".to_owned(),
        ];
        assert!(has_flag(&args, "--store"));
        assert!(has_flag(&args, "--workers"));
        assert!(!has_flag(&args, "--redis-url"));
        assert!(!has_flag(&["--storey".to_owned()], "--store"));
    }

    #[test]
    fn instance_logs_are_named_per_instance() {
        assert_eq!(
            instance_log(Path::new("/tmp/server.log"), "i1"),
            Path::new("/tmp/server-i1.log")
        );
        assert_eq!(instance_log(Path::new("log"), "i0"), Path::new("log-i0"));
    }
}
