//! A network lab on one machine: a "public" network namespace (the relay and coturn), and homes,
//! each a namespace behind a NAT namespace of its own, with the NAT's kind and the home's link
//! (rates, one-way delay, random loss) chosen per home. Browsers run inside the homes.
//!
//! ```text
//!   home0 ──lan── nat0 ──wan──┐   (nat: cone, symmetric, or open: routing only)
//!   home1 ──lan── nat1 ──wan──┼── br0 [pub: 10.77.0.1, relay, coturn] ── sink (drops all)
//!   ...                       ┘
//! ```
//!
//! Every interface is made inside namespaces the lab made (`ip link add … netns A … peer …
//! netns B`), none links to the machine's own interfaces, and `pub`'s default route leads into
//! a sink namespace that forwards nothing: no packet can leave the machine. Dropping the lab
//! kills what still runs in its namespaces and deletes them, also when a test panics.
//!
//! What this kernel offers decides how links are shaped (no netem here): rates are `tbf` on the
//! NAT's two legs (uplink on `wan`, downlink on `lan`), loss is an nftables `numgen random`
//! drop in the NAT's forward path, and delay is an NFQUEUE (iptables-legacy, the kernel has no
//! nft `queue` statement) served by a thread of this process, inside the NAT's namespace, that
//! holds each packet for the delay before letting it through. A port-restricted cone NAT is
//! plain masquerade plus dropping new inbound connections on the WAN (without that drop, a
//! peer's first hole-punching packet makes conntrack move the outbound mapping to another port);
//! a symmetric NAT is masquerade with `fully-random` ports (a new port per destination).
//!
//! Needs root (CAP_NET_ADMIN) and `ip`, `nft`, `tc`, `iptables-legacy` (Debian's iproute2,
//! nftables, iptables): without them [`Lab::new`] fails saying what is missing.

use anyhow::{Context, Result, bail};
use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The public network's address of the `pub` namespace (relay and coturn).
pub const PUBLIC_ADDR: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);

/// How a home's NAT maps its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nat {
    /// Port-restricted cone: one public port per local port, inbound only from where it sent.
    Cone,
    /// Symmetric: a new public port for every destination; only TURN gets through two of them.
    Symmetric,
    /// No NAT: the home's own address is reachable from the public network (its router only
    /// routes).
    Open,
}

/// A home's link to the public network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Link {
    /// Uplink rate, kbit/s (`None`: as fast as the machine).
    pub up_kbit: Option<u32>,
    /// Downlink rate, kbit/s.
    pub down_kbit: Option<u32>,
    /// Delay added in each direction, ms (the round-trip time grows by twice this).
    pub delay_ms: u32,
    /// Packets dropped at random in each direction, percent.
    pub loss_pct: u32,
}

/// One home: its NAT and its link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HomeSpec {
    /// The NAT's kind.
    pub nat: Nat,
    /// The link's shape.
    pub link: Link,
}

impl HomeSpec {
    /// A home behind `nat` on a clean link.
    pub fn behind(nat: Nat) -> HomeSpec {
        HomeSpec {
            nat,
            link: Link::default(),
        }
    }

    /// The same home on `link`.
    pub fn on(self, link: Link) -> HomeSpec {
        HomeSpec { link, ..self }
    }
}

/// A running lab; see the module doc.
pub struct Lab {
    prefix: String,
    homes: Vec<HomeSpec>,
    /// Every namespace, in creation order (deleted in reverse).
    namespaces: Vec<String>,
    /// The delay queues, by home (made on first use).
    delays: std::sync::Mutex<std::collections::HashMap<usize, DelayQueue>>,
}

/// Distinguishes the labs of one process (tests run in parallel).
static NEXT_LAB: AtomicU32 = AtomicU32::new(0);

/// Held while a lab is built (see [`Lab::new`]).
static BUILDING: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Lab {
    /// Builds the public network, a sink, and one NAT and home per spec.
    pub fn new(homes: &[HomeSpec]) -> Result<Lab> {
        preflight()?;
        // One lab is built at a time: iproute2, nft and iptables share host-wide locks and
        // files (/run/netns, the xtables lock) that parallel set-ups would race for.
        let _one = BUILDING.lock().unwrap_or_else(|p| p.into_inner());
        let n = NEXT_LAB.fetch_add(1, Ordering::Relaxed);
        let mut lab = Lab {
            prefix: format!("rvc{}x{n}", std::process::id()),
            homes: homes.to_vec(),
            namespaces: Vec::new(),
            delays: std::sync::Mutex::new(std::collections::HashMap::new()),
        };
        lab.build_public()?;
        for (k, home) in homes.iter().enumerate() {
            lab.build_home(k, home)?;
        }
        lab.route_open_homes()?;
        Ok(lab)
    }

    /// Every NAT (and the public namespace) routes to the open homes' own networks through
    /// their routers, so that an open home is reachable at its own address from everywhere.
    fn route_open_homes(&self) -> Result<()> {
        let open = self
            .homes
            .iter()
            .enumerate()
            .filter(|(_, h)| h.nat == Nat::Open);
        for (k, _) in open {
            let net = format!("192.168.{}.0/24", 1 + k);
            let via = self.nat_public_addr(k).to_string();
            let others = (0..self.homes.len())
                .filter(|j| *j != k)
                .map(|j| self.nat_ns(j));
            for ns in others.chain([self.public_ns()]) {
                run(&["ip", "-n", &ns, "route", "add", &net, "via", &via])?;
            }
        }
        Ok(())
    }

    /// The name of the public namespace.
    pub fn public_ns(&self) -> String {
        format!("{}pub", self.prefix)
    }

    /// The name of home `k`'s namespace.
    pub fn home_ns(&self, k: usize) -> String {
        format!("{}home{k}", self.prefix)
    }

    fn nat_ns(&self, k: usize) -> String {
        format!("{}nat{k}", self.prefix)
    }

    /// The homes, as asked for.
    pub fn homes(&self) -> &[HomeSpec] {
        &self.homes
    }

    /// The public address of home `k`'s NAT.
    pub fn nat_public_addr(&self, k: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, 0, 10 + u8::try_from(k).unwrap_or(u8::MAX - 10))
    }

    /// Home `k`'s own (private) address.
    pub fn home_addr(&self, k: usize) -> Ipv4Addr {
        Ipv4Addr::new(192, 168, 1 + u8::try_from(k).unwrap_or(250), 2)
    }

    fn add_ns(&mut self, name: &str) -> Result<()> {
        run(&["ip", "netns", "add", name])?;
        self.namespaces.push(name.to_owned());
        run(&["ip", "-n", name, "link", "set", "lo", "up"])
    }

    fn build_public(&mut self) -> Result<()> {
        let (public, sink) = (self.public_ns(), format!("{}sink", self.prefix));
        self.add_ns(&public)?;
        self.add_ns(&sink)?;
        let p = public.as_str();
        run(&["ip", "-n", p, "link", "add", "br0", "type", "bridge"])?;
        run(&["ip", "-n", p, "addr", "add", "10.77.0.1/24", "dev", "br0"])?;
        run(&["ip", "-n", p, "link", "set", "br0", "up"])?;
        // coturn needs a route for every peer address it is given, or it drops the whole
        // allocation on the first unreachable one: the default route leads into the sink.
        veth(("out", p, "10.77.1.1/30"), ("in", &sink, "10.77.1.2/30"))?;
        run(&["ip", "-n", p, "route", "add", "default", "via", "10.77.1.2"])
    }

    fn build_home(&mut self, k: usize, spec: &HomeSpec) -> Result<()> {
        let (public, nat, home) = (self.public_ns(), self.nat_ns(k), self.home_ns(k));
        self.add_ns(&nat)?;
        self.add_ns(&home)?;
        let wan = format!("{}/24", self.nat_public_addr(k));
        let port = format!("n{k}");
        // The bridge port in pub, the WAN leg in the NAT.
        veth(("wan", &nat, &wan), (&port, &public, ""))?;
        run(&["ip", "-n", &public, "link", "set", &port, "master", "br0"])?;
        let lan_net = 1 + k;
        veth(
            ("lan", &nat, &format!("192.168.{lan_net}.1/24")),
            ("eth0", &home, &format!("{}/24", self.home_addr(k))),
        )?;
        run(&[
            "ip",
            "-n",
            &home,
            "route",
            "add",
            "default",
            "via",
            &format!("192.168.{lan_net}.1"),
        ])?;
        run_in(&nat, &["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
        // An open home's router only routes (see `route_open_homes`).
        if spec.nat != Nat::Open {
            nat_rules(&nat, spec)?;
        }
        self.set_link(k, spec.link)
    }

    /// Shapes home `k`'s link as `link` says, replacing its shape so far: rates, loss and
    /// delay (so a test can load its pages first and then make the link bad).
    pub fn set_link(&self, k: usize, link: Link) -> Result<()> {
        let nat = self.nat_ns(k);
        for (dev, rate) in [("wan", link.up_kbit), ("lan", link.down_kbit)] {
            match rate {
                Some(kbit) => set_rate(&nat, dev, kbit)?,
                // No qdisc of ours there yet is fine.
                None => {
                    let _ = run_in(&nat, &["tc", "qdisc", "del", "dev", dev, "root"]);
                }
            }
        }
        let chain = "add chain ip shape loss { type filter hook forward priority 0; }";
        let mut loss = vec!["add table ip shape", chain, "flush chain ip shape loss"];
        let rule = format!(
            "add rule ip shape loss numgen random mod 100 < {} drop",
            link.loss_pct
        );
        if link.loss_pct > 0 {
            loss.push(&rule);
        }
        nft(&nat, &loss)?;
        self.set_delay(k, Duration::from_millis(u64::from(link.delay_ms)))
    }

    /// Sets home `k`'s one-way delay, starting its delay queue the first time it is needed.
    fn set_delay(&self, k: usize, delay: Duration) -> Result<()> {
        let mut delays = self.delays.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(queue) = delays.get(&k) {
            queue.set(delay);
            return Ok(());
        }
        if delay.is_zero() {
            return Ok(());
        }
        let nat = self.nat_ns(k);
        let queue = DelayQueue::start(ns_path(&nat), delay)?;
        run_in(
            &nat,
            &[
                "iptables-legacy",
                "-w",
                "-t",
                "mangle",
                "-A",
                "FORWARD",
                "-j",
                "NFQUEUE",
                "--queue-num",
                "0",
            ],
        )?;
        delays.insert(k, queue);
        Ok(())
    }

    /// Cuts home `k` off the public network (its NAT's WAN leg goes down), as a lost link.
    pub fn cut(&self, k: usize) -> Result<()> {
        run(&["ip", "-n", &self.nat_ns(k), "link", "set", "wan", "down"])
    }

    /// Brings home `k`'s link back after [`Lab::cut`].
    pub fn restore(&self, k: usize) -> Result<()> {
        run(&["ip", "-n", &self.nat_ns(k), "link", "set", "wan", "up"])
    }

    /// A TCP listener on the public address, port `port` (0: any), in the public namespace.
    pub fn listen_public(&self, port: u16) -> Result<std::net::TcpListener> {
        let addr = SocketAddr::from((PUBLIC_ADDR, port));
        let listener = in_namespace(&self.public_ns(), move || std::net::TcpListener::bind(addr))?;
        listener.set_nonblocking(true)?;
        Ok(listener)
    }

    /// A TCP connection to `addr` made from inside namespace `ns` (a home, or the public one).
    pub async fn connect_in(ns: &str, addr: SocketAddr) -> Result<tokio::net::TcpStream> {
        let fd = socket_in(ns, libc::SOCK_STREAM)?;
        // SAFETY: `fd` is a TCP socket this function owns.
        let socket = unsafe { tokio::net::TcpSocket::from_raw_fd(into_raw(fd)) };
        socket
            .connect(addr)
            .await
            .with_context(|| format!("connect to {addr} from namespace {ns}"))
    }

    /// A UDP socket bound to `addr` inside namespace `ns`.
    pub fn udp_in(ns: &str, addr: SocketAddr) -> Result<tokio::net::UdpSocket> {
        let socket = in_namespace(ns, move || std::net::UdpSocket::bind(addr))?;
        socket.set_nonblocking(true)?;
        Ok(tokio::net::UdpSocket::from_std(socket)?)
    }

    /// Whether a TCP connection to `addr` from inside `ns` is accepted (blocking).
    pub fn reachable_in(ns: &str, addr: SocketAddr) -> bool {
        in_namespace(ns, move || {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).map(drop)
        })
        .is_ok()
    }

    /// A command that runs `program` inside namespace `ns` (`ip netns exec`).
    pub fn command_in(ns: &str, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns, program]);
        c
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let delays = self.delays.get_mut().unwrap_or_else(|p| p.into_inner());
        for delay in delays.values_mut() {
            delay.stop();
        }
        for ns in self.namespaces.iter().rev() {
            // Whatever still runs in it (a browser a failed test left) goes first.
            if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    if let Ok(pid) = pid.parse::<libc::pid_t>() {
                        // SAFETY: kill(2) with plain integers.
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                    }
                }
            }
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// Caps the rate out of `dev` in namespace `ns` to `kbit` kbit/s (tbf).
fn set_rate(ns: &str, dev: &str, kbit: u32) -> Result<()> {
    // A burst of ~10 ms of traffic (at least four full packets) and a queue of ~50 ms: like a
    // home router.
    let burst = (kbit * 1000 / 8 / 100).max(4 * 1514);
    run_in(
        ns,
        &[
            "tc",
            "qdisc",
            "replace",
            "dev",
            dev,
            "root",
            "tbf",
            "rate",
            &format!("{kbit}kbit"),
            "burst",
            &burst.to_string(),
            "latency",
            "50ms",
        ],
    )
}

/// Fails with what is missing when namespaces can't be made here.
fn preflight() -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!(
            "the network lab needs root (CAP_NET_ADMIN) to create network namespaces; \
             run the tests as root"
        );
    }
    for (tool, package) in [
        ("ip", "iproute2"),
        ("nft", "nftables"),
        ("tc", "iproute2"),
        ("iptables-legacy", "iptables"),
    ] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            bail!(
                "the network lab needs `{tool}` (Debian package {package}; scripts/test.sh installs it)"
            );
        }
    }
    Ok(())
}

/// The NAT of a home: masquerade out of `wan`, cone or symmetric.
fn nat_rules(nat: &str, spec: &HomeSpec) -> Result<()> {
    let masquerade = match spec.nat {
        Nat::Symmetric => "masquerade fully-random",
        _ => "masquerade",
    };
    nft(
        nat,
        &[
            "add table ip nat",
            "add chain ip nat post { type nat hook postrouting priority 100; }",
            &format!("add rule ip nat post oifname \"wan\" {masquerade}"),
            "add table ip guard",
            "add chain ip guard input { type filter hook input priority 0; }",
            // Nothing reaches the NAT itself from outside: in particular a peer's first
            // hole-punching packet cannot take the port of a mapping about to be made.
            "add rule ip guard input iifname \"wan\" ct state new drop",
        ],
    )
}

/// Runs nftables commands in namespace `ns`, one transaction.
fn nft(ns: &str, commands: &[&str]) -> Result<()> {
    let script = commands.join("\n") + "\n";
    let mut child = Lab::command_in(ns, "nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("run nft")?;
    std::io::Write::write_all(child.stdin.as_mut().expect("piped"), script.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "nft in {ns} failed: {}\n{script}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// A veth pair between two namespaces, each end up with its address (`""`: none).
fn veth(a: (&str, &str, &str), b: (&str, &str, &str)) -> Result<()> {
    run(&[
        "ip", "link", "add", a.0, "netns", a.1, "type", "veth", "peer", "name", b.0, "netns", b.1,
    ])?;
    for (dev, ns, addr) in [a, b] {
        if !addr.is_empty() {
            run(&["ip", "-n", ns, "addr", "add", addr, "dev", dev])?;
        }
        run(&["ip", "-n", ns, "link", "set", dev, "up"])?;
    }
    Ok(())
}

fn run(args: &[&str]) -> Result<()> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .with_context(|| format!("run {}", args[0]))?;
    if !out.status.success() {
        bail!(
            "`{}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn run_in(ns: &str, args: &[&str]) -> Result<()> {
    let mut all = vec!["ip", "netns", "exec", ns];
    all.extend_from_slice(args);
    run(&all)
}

fn ns_path(ns: &str) -> PathBuf {
    PathBuf::from("/run/netns").join(ns)
}

/// Runs `f` on a thread of its own that has entered namespace `ns` (the process's other
/// threads stay where they are), and returns what it made: a socket keeps its namespace.
fn in_namespace<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T> {
    let path = ns_path(ns);
    std::thread::spawn(move || {
        enter(&path)?;
        f()
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the thread in namespace {ns} panicked"))?
    .with_context(|| format!("in namespace {ns}"))
}

/// Moves the calling thread into the network namespace at `path`.
fn enter(path: &std::path::Path) -> std::io::Result<()> {
    let file = std::fs::File::open(path)?;
    // SAFETY: setns with an open namespace file descriptor; it affects this thread only.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// A non-blocking IPv4 socket of `kind` made inside namespace `ns`.
fn socket_in(ns: &str, kind: libc::c_int) -> Result<OwnedFd> {
    in_namespace(ns, move || {
        // SAFETY: socket(2) with constant arguments; the result is checked.
        let fd = unsafe {
            libc::socket(
                libc::AF_INET,
                kind | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor this closure owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    })
}

fn into_raw(fd: OwnedFd) -> std::os::fd::RawFd {
    std::os::fd::IntoRawFd::into_raw_fd(fd)
}

/// Holds every packet that a namespace's NFQUEUE 0 gets for `delay`, then lets it through in
/// order: the delay this kernel cannot add with netem. Runs on a thread of its own inside the
/// namespace until stopped.
struct DelayQueue {
    stop: Arc<AtomicBool>,
    /// The delay, µs (changed while running by [`DelayQueue::set`]).
    delay_us: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DelayQueue {
    fn start(ns: PathBuf, delay: Duration) -> Result<DelayQueue> {
        let stop = Arc::new(AtomicBool::new(false));
        let delay_us = Arc::new(AtomicU64::new(micros(delay)));
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let (flag, held_for) = (stop.clone(), delay_us.clone());
        let thread = std::thread::spawn(move || {
            let queue = enter(&ns).and_then(|()| open_queue());
            match queue {
                Ok(queue) => {
                    let _ = ready_tx.send(Ok(()));
                    hold(queue, &held_for, &flag);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            }
        });
        ready
            .recv()
            .context("the delay thread ended early")?
            .context("cannot open the NFQUEUE for the delay")?;
        Ok(DelayQueue {
            stop,
            delay_us,
            thread: Some(thread),
        })
    }

    /// Holds the packets that arrive from now on for `delay`.
    fn set(&self, delay: Duration) {
        self.delay_us.store(micros(delay), Ordering::Relaxed);
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn open_queue() -> std::io::Result<nfq::Queue> {
    let mut queue = nfq::Queue::open()?;
    queue.bind(0)?;
    // Only the verdict matters: no packet is copied to this process.
    queue.set_copy_range(0, 0)?;
    queue.set_queue_max_len(0, 8192)?;
    queue.set_nonblocking(true);
    Ok(queue)
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The delay loop: takes what arrived, releases what is due, sleeps at most a millisecond.
/// Packets leave in arrival order (a shorter delay set later waits behind longer ones).
fn hold(mut queue: nfq::Queue, delay_us: &AtomicU64, stop: &AtomicBool) {
    let mut held: VecDeque<(Instant, nfq::Message)> = VecDeque::new();
    while !stop.load(Ordering::Relaxed) {
        while let Ok(msg) = queue.recv() {
            let delay = Duration::from_micros(delay_us.load(Ordering::Relaxed));
            held.push_back((Instant::now() + delay, msg));
        }
        let now = Instant::now();
        // In order: the first one not due yet holds the others back.
        while held.front().is_some_and(|(due, _)| *due <= now) {
            let (_, mut msg) = held.pop_front().expect("checked");
            msg.set_verdict(nfq::Verdict::Accept);
            let _ = queue.verdict(msg);
        }
        let next = held.front().map_or(Duration::from_millis(1), |(due, _)| {
            due.saturating_duration_since(now)
        });
        std::thread::sleep(next.min(Duration::from_millis(1)));
    }
    for (_, mut msg) in held {
        msg.set_verdict(nfq::Verdict::Accept);
        let _ = queue.verdict(msg);
    }
}
