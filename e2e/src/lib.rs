//! Harness for driving the real browser app: starts the relay in-process on `127.0.0.1:0`
//! serving the built app (`dist/`, from `trunk build --release`) and its WebSocket on one port,
//! starts chromedriver (and one geckodriver per Firefox page) on free loopback ports, and opens
//! headless Chromium or Firefox pages ([`Engine`]) with a fake camera and microphone, on this
//! machine or inside a network lab's homes. Used by the end-to-end tests and by the
//! `call-bench` and `netlab-bench` benchmarks.
//!
//! Pages are observed through the DOM the app maintains: `body[data-ready]`,
//! `body[data-client-id]`, `body[data-join-at]`, and one `#grid .tile[data-peer]` per remote
//! peer, with `data-playing` and `data-first-frame-at` once its video shows a frame.

pub mod netlab;

use anyhow::{Context, Result, bail};
use fantoccini::{Client, ClientBuilder, Locator};
use netlab::Lab;
use serde_json::{Value, json};
use server::Config;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// Chromium flags: headless as root in a sandbox-less container, no network chatter, and fake
/// media devices with permission granted.
pub const CHROME_ARGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    "--allow-loopback-in-peer-connection",
    // getDisplayMedia picks the (fake) entire screen without a picker.
    "--auto-select-desktop-capture-source=Entire",
    "--window-size=1280,800",
];

/// Firefox preferences: fake camera and microphone without a permission prompt, autoplay, ICE
/// over loopback (for pages on this machine), and media on the lab's plain-http origin.
pub const FIREFOX_PREFS: &[(&str, bool)] = &[
    ("media.navigator.streams.fake", true),
    ("media.navigator.permission.disabled", true),
    ("media.peerconnection.ice.loopback", true),
    ("media.devices.insecure.enabled", true),
    ("media.getusermedia.insecure.enabled", true),
    ("browser.shell.checkDefaultBrowser", false),
];

/// A browser engine pages can run in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Engine {
    /// Chromium, through chromedriver.
    Chromium,
    /// Firefox (ESR), through geckodriver.
    Firefox,
}

impl Engine {
    /// Both engines.
    pub const ALL: [Engine; 2] = [Engine::Chromium, Engine::Firefox];

    /// Its name, for messages and reports.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Chromium => "chromium",
            Engine::Firefox => "firefox",
        }
    }

    /// The WebDriver server (`CHROMEDRIVER` / `GECKODRIVER`, else from PATH) and what installs
    /// it.
    fn driver_program(self) -> (String, &'static str) {
        match self {
            Engine::Chromium => (
                std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into()),
                "chromium-driver",
            ),
            Engine::Firefox => (
                std::env::var("GECKODRIVER").unwrap_or_else(|_| "geckodriver".into()),
                "geckodriver 0.37.1 (cargo install geckodriver)",
            ),
        }
    }

    /// The capabilities of a new session; `secure_origin`: an http origin to treat as secure.
    fn capabilities(self, secure_origin: Option<&str>) -> serde_json::Map<String, Value> {
        let mut caps = serde_json::Map::new();
        match self {
            Engine::Chromium => {
                let mut args: Vec<String> = CHROME_ARGS.iter().map(|a| a.to_string()).collect();
                if let Some(origin) = secure_origin {
                    // Not loopback, not https: without this the page gets no camera.
                    args.push(format!(
                        "--unsafely-treat-insecure-origin-as-secure={origin}"
                    ));
                }
                let binary =
                    std::env::var("CHROME_BIN").unwrap_or_else(|_| "/usr/bin/chromium".into());
                caps.insert(
                    "goog:chromeOptions".into(),
                    json!({ "args": args, "binary": binary }),
                );
            }
            Engine::Firefox => {
                let prefs: serde_json::Map<String, Value> = FIREFOX_PREFS
                    .iter()
                    .map(|(k, v)| (k.to_string(), Value::from(*v)))
                    .chain([
                        ("media.autoplay.default".to_owned(), Value::from(0)),
                        ("media.autoplay.blocking_policy".to_owned(), Value::from(0)),
                    ])
                    .collect();
                let binary =
                    std::env::var("FIREFOX_BIN").unwrap_or_else(|_| "/usr/bin/firefox-esr".into());
                caps.insert(
                    "moz:firefoxOptions".into(),
                    json!({
                        "binary": binary,
                        "args": ["-headless", "-width=1280", "-height=800"],
                        "prefs": prefs,
                    }),
                );
            }
        }
        caps
    }
}

/// The workspace's `dist/` (the built app).
pub fn dist_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dist")
}

/// Where artefacts (screenshots, figures) are written: the workspace's `artifacts/`.
pub fn artifacts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../artifacts")
}

/// axe-core's script (`AXE_JS`, or where scripts/test.sh installs it).
fn axe_js() -> Result<String> {
    let path = std::env::var_os("AXE_JS").map_or_else(
        || {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../.tools/node_modules/axe-core/axe.min.js")
        },
        PathBuf::from,
    );
    std::fs::read_to_string(&path).with_context(|| {
        format!(
            "axe-core is missing at {} (scripts/test.sh installs it from npm)",
            path.display()
        )
    })
}

/// Runs axe-core on what the page shows now; its serious and critical violations, each as
/// `{id, impact, help, nodes}` (up to five elements).
const AXE_RUN: &str = "const done = arguments[arguments.length - 1]; \
    axe.run(document, { resultTypes: ['violations'] }).then(r => done(r.violations \
      .filter(v => v.impact === 'serious' || v.impact === 'critical') \
      .map(v => ({ id: v.id, impact: v.impact, help: v.help, \
        nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ')) })))) \
    .catch(e => done([{ id: 'axe failed', help: String(e) }]));";

/// A relay serving the app, plus chromedrivers: one on this machine's loopback, and, for a
/// relay in a network lab, one inside each home that opens a page.
pub struct Harness {
    /// The relay's address.
    pub addr: SocketAddr,
    config: Config,
    stop: Option<oneshot::Sender<()>>,
    relay: Option<RelayTask>,
    /// The lab the relay runs in (its public namespace), if any.
    lab: Option<Arc<Lab>>,
    /// By home (`None`: this machine's loopback) and engine; geckodriver serves one session
    /// at a time, so each Firefox page has one of its own (under a running number).
    drivers: std::sync::Mutex<Drivers>,
    /// Firefox pages opened so far: each one's running number.
    firefox_pages: std::sync::atomic::AtomicUsize,
}

/// A harness's WebDriver servers, by (home, engine, running number).
type Drivers = HashMap<(Option<usize>, Engine, usize), Arc<Driver>>;

impl Harness {
    /// Starts the relay with `config` (its `static_dir` set to `dist/`) on `127.0.0.1:0`, and
    /// chromedriver.
    pub async fn start(config: Config) -> Result<Harness> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let harness = Self::serve(listener, config, None)?;
        harness.driver(None, Engine::Chromium).await?;
        Ok(harness)
    }

    /// Starts the relay in `lab`'s public namespace, on its public address; pages open in the
    /// lab's homes ([`Harness::page_in`]).
    pub async fn start_in(lab: Arc<Lab>, config: Config) -> Result<Harness> {
        let listener = tokio::net::TcpListener::from_std(lab.listen_public(0)?)?;
        Self::serve(listener, config, Some(lab))
    }

    fn serve(
        listener: tokio::net::TcpListener,
        mut config: Config,
        lab: Option<Arc<Lab>>,
    ) -> Result<Harness> {
        let dist = dist_dir();
        if !dist.join("index.html").exists() {
            bail!(
                "{} has no index.html: build the app first (trunk build --release)",
                dist.display()
            );
        }
        config.static_dir = Some(dist);
        let addr = listener.local_addr()?;
        let (stop, relay) = spawn_relay(listener, config.clone());
        Ok(Harness {
            addr,
            config,
            stop: Some(stop),
            relay: Some(relay),
            lab,
            drivers: std::sync::Mutex::new(HashMap::new()),
            firefox_pages: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    fn drivers(&self) -> Result<std::sync::MutexGuard<'_, Drivers>> {
        self.drivers
            .lock()
            .map_err(|_| anyhow::anyhow!("a thread panicked holding the drivers"))
    }

    /// The loopback chromedriver's process id, which is also its process group's (its
    /// browsers are in it).
    pub fn driver_pid(&self) -> u32 {
        self.drivers()
            .ok()
            .and_then(|d| d.get(&(None, Engine::Chromium, 0)).map(|d| d.child.id()))
            .unwrap_or(0)
    }

    /// The process id of the chromedriver in the lab's home `home` (once a page opened there),
    /// which is also its process group's: the home's browser is in it.
    pub fn home_driver_pid(&self, home: usize) -> Option<u32> {
        let drivers = self.drivers().ok()?;
        drivers
            .get(&(Some(home), Engine::Chromium, 0))
            .map(|d| d.child.id())
    }

    /// The app's URL with `query` (e.g. `room=r&ice=`).
    pub fn url(&self, query: &str) -> String {
        format!("{}/?{query}", self.origin())
    }

    /// The app's origin, `http://addr:port`.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Opens a new Chromium page on the app with `query` and waits until the app is running.
    pub async fn page(&self, query: &str) -> Result<Page> {
        self.open(None, Engine::Chromium, query).await
    }

    /// Opens a page in `engine`.
    pub async fn page_with(&self, engine: Engine, query: &str) -> Result<Page> {
        self.open(None, engine, query).await
    }

    /// Opens a Chromium page in the lab's home `home`.
    pub async fn page_in(&self, home: usize, query: &str) -> Result<Page> {
        self.open(Some(home), Engine::Chromium, query).await
    }

    /// Opens a page in `engine` in the lab's home `home`.
    pub async fn page_in_with(&self, home: usize, engine: Engine, query: &str) -> Result<Page> {
        self.open(Some(home), engine, query).await
    }

    async fn open(&self, home: Option<usize>, engine: Engine, query: &str) -> Result<Page> {
        let driver = self.driver(home, engine).await?;
        let origin = self.origin();
        let caps = engine.capabilities(home.map(|_| origin.as_str()));
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&driver.url)
            .await
            .context("cannot open a browser session")?;
        client.goto(&self.url(query)).await?;
        let page = Page { client, engine };
        // A home on a lossy, delayed link takes a while to load the app (~360 KB).
        let start = if home.is_some() { 60 } else { 20 };
        page.wait_for("the app to start", Duration::from_secs(start), |p| {
            Box::pin(async move { Ok(p.body_attr("data-ready").await?.is_some()) })
        })
        .await?;
        Ok(page)
    }

    /// The WebDriver server of `engine` for `home` (started on first use; for Firefox, one
    /// per page).
    async fn driver(&self, home: Option<usize>, engine: Engine) -> Result<Arc<Driver>> {
        let n = match engine {
            Engine::Chromium => 0,
            Engine::Firefox => {
                1 + self
                    .firefox_pages
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            }
        };
        if let Some(driver) = self.drivers()?.get(&(home, engine, n)) {
            return Ok(driver.clone());
        }
        let ns = match (home, &self.lab) {
            (Some(k), Some(lab)) => Some(lab.home_ns(k)),
            (Some(_), None) => bail!("pages in homes need a harness started in a lab"),
            (None, _) => None,
        };
        let driver = Arc::new(Driver::start(ns, home, engine).await?);
        // Started twice at once (two first Chromium pages): the one kept serves both, the
        // other goes (it has no browser yet).
        let kept = self
            .drivers()?
            .entry((home, engine, n))
            .or_insert(driver)
            .clone();
        Ok(kept)
    }

    /// Shuts the relay down (every client gets a Close frame) and waits until it has stopped.
    pub async fn stop_relay(&mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(relay) = self.relay.take() {
            tokio::time::timeout(Duration::from_secs(10), relay).await???;
        }
        Ok(())
    }

    /// Starts a new relay on the same address (after [`Harness::stop_relay`]).
    pub async fn restart_relay(&mut self) -> Result<()> {
        let listener = server::bind(self.addr).context("rebinding the relay's port")?;
        let (stop, relay) = spawn_relay(listener, self.config.clone());
        self.stop = Some(stop);
        self.relay = Some(relay);
        Ok(())
    }

    /// Stops the relay and the chromedrivers.
    pub async fn stop(mut self) -> Result<()> {
        self.stop_relay().await
    }
}

type RelayTask = tokio::task::JoinHandle<std::io::Result<()>>;

fn spawn_relay(
    listener: tokio::net::TcpListener,
    config: Config,
) -> (oneshot::Sender<()>, RelayTask) {
    let (stop, stopped) = oneshot::channel::<()>();
    let relay = tokio::spawn(server::run(listener, config, async {
        let _ = stopped.await;
    }));
    (stop, relay)
}

/// One WebDriver server (chromedriver or geckodriver) and the browsers it starts, in its own
/// process group; inside a lab home, reached through a loopback port of this machine that
/// forwards into the home.
struct Driver {
    child: Child,
    url: String,
    bridge: Option<tokio::task::JoinHandle<()>>,
}

impl Driver {
    /// Starts the WebDriver server of `engine` here (`ns` `None`) or inside namespace `ns`,
    /// and waits until it accepts connections.
    async fn start(ns: Option<String>, home: Option<usize>, engine: Engine) -> Result<Driver> {
        let (program, package) = engine.driver_program();
        // In a home the server listens on the same port number as the loopback port that
        // forwards into it (each home's loopback is its own): geckodriver refuses requests
        // whose Host header names another port.
        let (port, outside) = match &ns {
            None => (free_port()?, None),
            Some(_) => {
                let outside = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                (outside.local_addr()?.port(), Some(outside))
            }
        };
        let mut command = match &ns {
            None => Command::new(&program),
            Some(ns) => Lab::command_in(ns, &program),
        };
        // Its own process group, so that its browsers go with it even when a failing test
        // never closed its pages (see `Drop`).
        let child = command
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {program} (install {package})"))?;
        let mut driver = Driver {
            child,
            url: String::new(),
            bridge: None,
        };
        let target = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let up = match &ns {
                None => tokio::net::TcpStream::connect(target).await.is_ok(),
                Some(ns) => Lab::connect_in(ns, target).await.is_ok(),
            };
            if up {
                break;
            }
            if Instant::now() > deadline {
                bail!("{program} did not listen on port {port} (home {home:?})");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        driver.url = format!("http://127.0.0.1:{port}");
        if let (Some(ns), Some(outside)) = (ns, outside) {
            driver.bridge = Some(bridge_into(outside, ns, target));
        }
        Ok(driver)
    }
}

/// Forwards the connections `outside` accepts to `target` inside `ns`.
fn bridge_into(
    outside: tokio::net::TcpListener,
    ns: String,
    target: SocketAddr,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = outside.accept().await {
            let ns = ns.clone();
            tokio::spawn(async move {
                if let Ok(mut inside) = Lab::connect_in(&ns, target).await {
                    let _ = tokio::io::copy_bidirectional(&mut conn, &mut inside).await;
                }
            });
        }
    })
}

impl Drop for Driver {
    /// Kills chromedriver's process group: chromedriver and every browser it started. Killing
    /// chromedriver alone would leave the browsers of pages a failing test never closed running
    /// (and loading the machine for the tests after it).
    fn drop(&mut self) {
        if let Some(bridge) = self.bridge.take() {
            bridge.abort();
        }
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: kill(2) takes plain integers; a negative pid names the process group the
            // child leads (it was spawned with `process_group(0)`).
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// One remote tile as a page shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Tile {
    /// The remote client id.
    pub peer: String,
    /// The video's width: above zero once a frame was decoded.
    pub video_width: u64,
    /// When the first frame showed (ms since the epoch).
    pub first_frame_at: Option<f64>,
    /// Given up: the tile says why (`data-failed`), its last frame is no longer live.
    pub failed: bool,
}

/// One browser page running the app.
pub struct Page {
    /// The WebDriver session.
    pub client: Client,
    /// The engine it runs in.
    pub engine: Engine,
}

type Check<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<bool>> + 'a>>;

impl Page {
    /// An attribute of `<body>`.
    pub async fn body_attr(&self, name: &str) -> Result<Option<String>> {
        let body = self.client.find(Locator::Css("body")).await?;
        Ok(body.attr(name).await?)
    }

    /// This page's client id at the relay (once connected).
    pub async fn client_id(&self) -> Result<Option<String>> {
        self.body_attr("data-client-id").await
    }

    /// Clicks the button with id `id`.
    pub async fn click(&self, id: &str) -> Result<()> {
        self.client.find(Locator::Id(id)).await?.click().await?;
        Ok(())
    }

    /// The serious and critical accessibility violations axe-core finds on the page now.
    pub async fn accessibility_violations(&self) -> Result<Vec<Value>> {
        let loaded = "return typeof axe !== 'undefined'";
        if self.eval(loaded).await? != json!(true) {
            self.client
                .execute(&format!("{}\nreturn null;", axe_js()?), vec![])
                .await?;
        }
        match self.client.execute_async(AXE_RUN, vec![]).await? {
            Value::Array(found) => Ok(found),
            other => bail!("axe-core answered {other}"),
        }
    }

    /// Presses `key` (a WebDriver key code, e.g. Tab `\u{E004}`) where the focus is; the
    /// id of the element focused then (`""` for none).
    pub async fn press(&self, key: &str) -> Result<String> {
        self.client.active_element().await?.send_keys(key).await?;
        let id = self.eval("return document.activeElement ? document.activeElement.id : ''");
        Ok(id.await?.as_str().unwrap_or_default().to_owned())
    }

    /// Sends `text` in the chat as a user does: opens the chat panel when it is closed,
    /// types, and presses Enter.
    pub async fn say(&self, text: &str) -> Result<()> {
        let open = "return document.body.dataset.panel === 'chat'";
        if self.eval(open).await? != serde_json::json!(true) {
            self.click("chat-toggle").await?;
            self.wait_for("the chat panel open", Duration::from_secs(10), move |p| {
                Box::pin(async move { Ok(p.eval(open).await? == serde_json::json!(true)) })
            })
            .await?;
        }
        self.client
            .find(Locator::Id("chat-input"))
            .await?
            .send_keys(&format!("{text}\u{E007}"))
            .await?;
        Ok(())
    }

    /// Leaves the call as a user does: Leave, then Leave in the dialog that asks.
    pub async fn leave(&self) -> Result<()> {
        self.click("leave").await?;
        self.wait_leave_dialog(true).await?;
        self.click("leave-yes").await?;
        self.wait_leave_dialog(false).await
    }

    /// Waits until the leave dialog is open (or closed).
    pub async fn wait_leave_dialog(&self, open: bool) -> Result<()> {
        let what = format!("the leave dialog {}", if open { "open" } else { "closed" });
        self.wait_for(&what, Duration::from_secs(10), move |p| {
            Box::pin(async move {
                let v = p
                    .eval("return document.getElementById('leave-dialog').open")
                    .await?;
                Ok(v == serde_json::json!(open))
            })
        })
        .await
    }

    /// The remote tiles.
    pub async fn tiles(&self) -> Result<Vec<Tile>> {
        let v = self
            .client
            .execute(
                "return Array.from(document.querySelectorAll('#grid .tile')).map(t => \
                 [t.dataset.peer, t.querySelector('video').videoWidth, \
                 t.dataset.firstFrameAt ? Number(t.dataset.firstFrameAt) : null, \
                 t.hasAttribute('data-failed')]);",
                vec![],
            )
            .await?;
        let rows = v.as_array().cloned().unwrap_or_default();
        Ok(rows
            .iter()
            .map(|r| Tile {
                peer: r[0].as_str().unwrap_or_default().to_owned(),
                video_width: r[1].as_u64().unwrap_or(0),
                first_frame_at: r[2].as_f64(),
                failed: r[3].as_bool().unwrap_or(false),
            })
            .collect())
    }

    /// The text of the status line.
    pub async fn status(&self) -> Result<String> {
        Ok(self
            .client
            .find(Locator::Id("status"))
            .await?
            .text()
            .await?)
    }

    /// Waits until `check` holds, polling the page, or fails after `timeout` naming `what`.
    pub async fn wait_for<F>(&self, what: &str, timeout: Duration, check: F) -> Result<()>
    where
        F: for<'a> Fn(&'a Page) -> Check<'a>,
    {
        let deadline = Instant::now() + timeout;
        loop {
            if check(self).await? {
                return Ok(());
            }
            if Instant::now() > deadline {
                let status = self.status().await.unwrap_or_default();
                let tiles = self.tiles().await.unwrap_or_default();
                bail!("timed out waiting for {what} (status: {status:?}, tiles: {tiles:?})");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until this page shows exactly the peers `ids`, each with video playing.
    pub async fn wait_playing(&self, ids: &[String], timeout: Duration) -> Result<Vec<Tile>> {
        let mut want: Vec<String> = ids.to_vec();
        want.sort();
        let what = format!("remote video from {want:?}");
        self.wait_for(&what, timeout, move |p| {
            let want = want.clone();
            Box::pin(async move {
                let tiles = p.tiles().await?;
                let mut playing: Vec<String> = tiles
                    .iter()
                    .filter(|t| t.video_width > 0 && !t.failed)
                    .map(|t| t.peer.clone())
                    .collect();
                playing.sort();
                Ok(tiles.len() == want.len() && playing == want)
            })
        })
        .await?;
        self.tiles().await
    }

    /// Clicks Join and waits until the relay has given the page its client id.
    pub async fn join(&self) -> Result<()> {
        self.click("join").await?;
        self.wait_for("the client id", Duration::from_secs(20), |p| {
            Box::pin(async move { Ok(p.client_id().await?.is_some()) })
        })
        .await
    }

    /// A `data-` attribute of the tile of `peer` (`None`: no such tile or attribute).
    pub async fn tile_attr(&self, peer: &str, name: &str) -> Result<Option<String>> {
        let v = self
            .client
            .execute(
                "const t = document.querySelector(`#grid .tile[data-peer=\"${arguments[0]}\"]`); \
                 return t ? t.getAttribute(arguments[1]) : null;",
                vec![json!(peer), json!(name)],
            )
            .await?;
        Ok(v.as_str().map(str::to_owned))
    }

    /// Saves a PNG screenshot of the page.
    pub async fn screenshot(&self, path: &std::path::Path) -> Result<()> {
        let png = self.client.screenshot().await?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, png)?;
        Ok(())
    }

    /// Runs a script in the page and returns its result.
    pub async fn eval(&self, script: &str) -> Result<Value> {
        Ok(self.client.execute(script, vec![]).await?)
    }

    /// Ends the browser session.
    pub async fn close(self) -> Result<()> {
        self.client.close().await?;
        Ok(())
    }
}

/// Every page's client id (once joined).
pub async fn client_ids(pages: &[&Page]) -> Result<Vec<String>> {
    let mut ids = Vec::new();
    for p in pages {
        ids.push(p.client_id().await?.context("a client id once joined")?);
    }
    Ok(ids)
}

/// Waits until every page shows exactly the other pages, each playing. The pages' ids are read
/// again at every look: a page that came back with a new session counts under its new id.
pub async fn wait_full_mesh(pages: &[&Page], deadline: Duration) -> Result<()> {
    let until = Instant::now() + deadline;
    loop {
        let all = client_ids(pages).await?;
        let mut missing = None;
        for (i, page) in pages.iter().enumerate() {
            let mut want: Vec<&String> = all
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, id)| id)
                .collect();
            want.sort();
            let tiles = page.tiles().await?;
            let mut playing: Vec<&String> = tiles
                .iter()
                .filter(|t| t.video_width > 0 && !t.failed)
                .map(|t| &t.peer)
                .collect();
            playing.sort();
            if tiles.len() != want.len() || playing != want {
                missing = Some(format!("page {i} wants {want:?}, has {tiles:?}"));
                break;
            }
        }
        let Some(missing) = missing else {
            return Ok(());
        };
        if Instant::now() > until {
            bail!("timed out waiting for every page to play every other: {missing}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The median of `times` (`None` when there are none).
pub fn median(times: &[f64]) -> Option<f64> {
    let mut sorted = times.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => None,
        n if n % 2 == 1 => Some(sorted[n / 2]),
        n => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// Waits until `page` shows `peer`'s tile with attribute `name` for which `ok` holds.
pub async fn wait_tile(
    page: &Page,
    peer: &str,
    name: &str,
    deadline: Duration,
    ok: impl Fn(&str) -> bool,
) -> Result<()> {
    let until = Instant::now() + deadline;
    loop {
        let value = page.tile_attr(peer, name).await?;
        if value.as_deref().is_some_and(&ok) {
            return Ok(());
        }
        if Instant::now() > until {
            bail!(
                "{} page: timed out waiting on {peer}'s tile: {name} = {value:?} (status {:?})",
                page.engine.name(),
                page.status().await.unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until every page receives video frames and audible audio from every other page: a
/// frame rate above zero, and audio packets and audio energy that grow.
pub async fn wait_media_flowing(pages: &[&Page], deadline: Duration) -> Result<()> {
    let ids = client_ids(pages).await?;
    for (i, page) in pages.iter().enumerate() {
        for (j, id) in ids.iter().enumerate().filter(|(j, _)| *j != i) {
            wait_tile(page, id, "data-fps", deadline, |f| {
                f.parse::<f64>().is_ok_and(|v| v > 0.0)
            })
            .await
            .with_context(|| format!("page {i}: video from page {j}"))?;
            for attr in ["data-audio-packets", "data-audio-energy"] {
                let first: f64 = page
                    .tile_attr(id, attr)
                    .await?
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0.0);
                wait_tile(page, id, attr, deadline, |v| {
                    v.parse::<f64>().is_ok_and(|v| v > first)
                })
                .await
                .with_context(|| format!("page {i}: {attr} from page {j} past {first}"))?;
            }
        }
    }
    Ok(())
}

/// Waits until every page's chat channel to every other page is open, then has each page
/// type a line and waits until every other page shows it as come over the channel.
pub async fn wait_chat_over_channels(pages: &[&Page], deadline: Duration) -> Result<()> {
    let ids = client_ids(pages).await?;
    for (i, page) in pages.iter().enumerate() {
        for (j, id) in ids.iter().enumerate().filter(|(j, _)| *j != i) {
            wait_tile(page, id, "data-chat", deadline, |v| v == "open")
                .await
                .with_context(|| format!("page {i}: chat channel to page {j}"))?;
        }
    }
    let texts = "return Array.from(document.querySelectorAll('#chat-log li[data-via=channel] .text'))\
                 .map(t => t.textContent);";
    for (i, page) in pages.iter().enumerate() {
        let line = format!("hi from page {i} ({})", page.engine.name());
        page.say(&line).await?;
        for (j, other) in pages.iter().enumerate().filter(|(j, _)| *j != i) {
            let line = line.clone();
            let what = format!("page {j} to show {line:?}");
            other
                .wait_for(&what, deadline, move |p| {
                    let line = line.clone();
                    Box::pin(async move {
                        let got: Vec<String> = serde_json::from_value(p.eval(texts).await?)?;
                        Ok(got.contains(&line))
                    })
                })
                .await?;
        }
    }
    Ok(())
}

/// A TCP proxy in front of the relay whose connections can all be cut at once with a reset, to
/// play a network blip between browser pages and the relay.
pub struct BlipProxy {
    /// The proxy's address (give pages `signal=ws://<addr>/ws`).
    pub addr: SocketAddr,
    cut: tokio::sync::watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl BlipProxy {
    /// Proxies a free loopback port to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Result<BlipProxy> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (cut, cuts) = tokio::sync::watch::channel(0u64);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let mut cuts = cuts.clone();
                cuts.mark_unchanged();
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (mut c, mut s) = (client, server);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut c, &mut s) => {}
                        _ = cuts.changed() => {
                            // A reset on both sides, as a failing network path looks.
                            #[allow(deprecated)]
                            {
                                let _ = c.set_linger(Some(Duration::ZERO));
                                let _ = s.set_linger(Some(Duration::ZERO));
                            }
                        }
                    }
                });
            }
        });
        Ok(BlipProxy { addr, cut, task })
    }

    /// Resets every connection open through the proxy.
    pub fn blip(&self) {
        self.cut.send_modify(|n| *n += 1);
    }
}

impl Drop for BlipProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A coturn `turnserver` with the TURN REST API secret `secret`, on a free loopback port or in
/// a lab's public namespace, to relay media between test pages; it can be stopped and started
/// again on the same port. It answers STUN too.
pub struct TurnServer {
    /// Its UDP/TCP port.
    pub port: u16,
    /// Its address.
    pub ip: std::net::Ipv4Addr,
    /// The namespace it runs in (`None`: this machine's).
    ns: Option<String>,
    secret: String,
    child: Option<Child>,
}

impl TurnServer {
    /// Starts one on loopback (`turnserver` must be on PATH: Debian's coturn; scripts/test.sh
    /// installs it).
    pub fn start(secret: &str) -> Result<TurnServer> {
        Self::launch(std::net::Ipv4Addr::LOCALHOST, free_port()?, None, secret)
    }

    /// Starts one on the public address of `lab`, port 3478.
    pub fn start_in(lab: &Lab, secret: &str) -> Result<TurnServer> {
        Self::launch(netlab::PUBLIC_ADDR, 3478, Some(lab.public_ns()), secret)
    }

    fn launch(
        ip: std::net::Ipv4Addr,
        port: u16,
        ns: Option<String>,
        secret: &str,
    ) -> Result<TurnServer> {
        let mut turn = TurnServer {
            port,
            ip,
            ns,
            secret: secret.to_owned(),
            child: None,
        };
        turn.restart()?;
        Ok(turn)
    }

    /// Its `turn:` URL (UDP).
    pub fn turn_url(&self) -> String {
        format!("turn:{}:{}?transport=udp", self.ip, self.port)
    }

    /// Its `stun:` URL.
    pub fn stun_url(&self) -> String {
        format!("stun:{}:{}", self.ip, self.port)
    }

    /// Starts it again (after [`TurnServer::stop`]) on the same port.
    pub fn restart(&mut self) -> Result<()> {
        self.stop();
        let mut command = match &self.ns {
            None => Command::new("turnserver"),
            Some(ns) => Lab::command_in(ns, "turnserver"),
        };
        command
            .arg("-n")
            .arg(format!("--listening-ip={}", self.ip))
            .arg(format!("--relay-ip={}", self.ip))
            .arg(format!("--listening-port={}", self.port))
            .args([
                "--use-auth-secret",
                &format!("--static-auth-secret={}", self.secret),
            ])
            .args(["--realm=e2e", "--no-tls", "--no-dtls", "--no-cli"])
            .args(["--log-file=stdout", "--simple-log"]);
        if self.ns.is_none() {
            command.arg("--allow-loopback-peers");
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start turnserver (install coturn)")?;
        self.child = Some(child);
        // Ready when its TCP listener accepts.
        let addr = SocketAddr::from((self.ip, self.port));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !self.accepts(addr) {
            if std::time::Instant::now() > deadline {
                bail!("turnserver did not listen on {addr}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    fn accepts(&self, addr: SocketAddr) -> bool {
        match &self.ns {
            None => std::net::TcpStream::connect(addr).is_ok(),
            Some(ns) => Lab::reachable_in(ns, addr),
        }
    }

    /// Kills it: every allocation, and the media relayed through it, is gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for TurnServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One reading of a remote tile: what its page receives from that peer and sends to it (the
/// tile's `data-*` attributes, from the page's getStats).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TileReading {
    /// The peer's client id.
    pub peer: String,
    /// When it was read, ms since the epoch (the page's clock).
    pub at_ms: f64,
    /// The received video's frame rate.
    pub fps: Option<f64>,
    /// The received video's freezes so far and their total length (`None`: not counted).
    pub freezes: Option<f64>,
    /// See `freezes`.
    pub freeze_ms: Option<f64>,
    /// Audio packets received and lost so far.
    pub audio_packets: Option<f64>,
    /// See `audio_packets`.
    pub audio_lost: Option<f64>,
    /// What the page sends to the peer: bitrate (kbit/s), height, and why not more.
    pub send_kbps: Option<f64>,
    /// See `send_kbps`.
    pub send_height: Option<f64>,
    /// See `send_kbps`: the frame rate encoded for the peer.
    pub send_fps: Option<f64>,
    /// See `send_kbps`.
    pub send_limit: String,
    /// What the link's own estimate leaves its media, and what the budget allows it, kbit/s.
    pub send_estimate: Option<f64>,
    /// See `send_estimate`.
    pub send_allowed: Option<f64>,
    /// The fraction of the page's packets the peer last reported lost.
    pub send_loss: Option<f64>,
    /// The page paused its video to the peer (low bandwidth).
    pub send_paused: bool,
    /// The peer paused its video to this page: the tile shows the notice.
    pub video_paused: bool,
}

/// Reads every remote tile of `page` at once.
pub async fn read_tiles(page: &Page) -> Result<Vec<TileReading>> {
    let script = "const n = (t, k) => t.dataset[k] === undefined || t.dataset[k] === '' \
                    || t.dataset[k] === 'unknown' ? null : Number(t.dataset[k]); \
                  return Array.from(document.querySelectorAll('#grid .tile')).map(t => ({ \
                    peer: t.dataset.peer, atMs: Date.now(), fps: n(t, 'fps'), \
                    freezes: n(t, 'freezes'), freezeMs: n(t, 'freezeMs'), \
                    audioPackets: n(t, 'audioPackets'), audioLost: n(t, 'audioLost'), \
                    sendKbps: n(t, 'sendKbps'), sendHeight: n(t, 'sendHeight'), \
                    sendFps: n(t, 'sendFps'), \
                    sendLimit: t.dataset.sendLimit || '', \
                    sendEstimate: n(t, 'sendEstimate'), sendAllowed: n(t, 'sendAllowed'), \
                    sendLoss: n(t, 'sendLoss'), \
                    sendPaused: t.hasAttribute('data-send-paused'), \
                    videoPaused: t.hasAttribute('data-video-paused') }));";
    Ok(serde_json::from_value(page.eval(script).await?)?)
}

/// What a window of readings of one tile says.
#[derive(Debug, Clone, Default)]
pub struct TileWindow {
    /// The window's length, ms.
    pub span_ms: f64,
    /// The median received frame rate.
    pub fps: f64,
    /// Freezes over the window, and the fraction of it spent frozen (`None`: not counted).
    pub freezes: Option<f64>,
    /// See `freezes`.
    pub frozen: Option<f64>,
    /// Audio packets received and lost over the window, and the fraction lost.
    pub audio_packets: f64,
    /// See `audio_packets`.
    pub audio_lost: f64,
    /// See `audio_packets`.
    pub audio_loss: f64,
    /// The mean bitrate sent to the peer, kbit/s.
    pub send_kbps: f64,
    /// The median height sent to the peer, and frame rate encoded for it.
    pub send_height: f64,
    /// See `send_height`.
    pub send_fps: f64,
    /// Every reason given for sending no more, and whether video to or from it paused.
    pub send_limits: Vec<String>,
    /// See `send_limits`.
    pub send_paused: bool,
    /// See `send_limits`.
    pub video_paused: bool,
    /// Each reading, for a failure's message.
    pub timeline: Timeline,
}

/// The readings of a window, told compactly: `t+6s ↑72@240 est 108 ok 120 ↓20fps` (sent
/// kbit/s at a height, the link's estimate, what the budget allows, `lost 4%` where the
/// peer reports loss, received), `paused`
/// where the page paused its video to the peer, `‖` where the peer paused its video to it.
#[derive(Clone, Default)]
pub struct Timeline(Vec<TileReading>);

impl std::fmt::Debug for Timeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Some(first) = self.0.first() else {
            return write!(f, "[]");
        };
        let n = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.0}"));
        write!(f, "[")?;
        for r in &self.0 {
            write!(
                f,
                " t+{:.0}s ↑{}@{} est {} ok {}{}{} ↓{}fps{};",
                (r.at_ms - first.at_ms) / 1000.0,
                n(r.send_kbps),
                n(r.send_height),
                n(r.send_estimate),
                n(r.send_allowed),
                match r.send_loss.filter(|l| *l > 0.0) {
                    Some(l) => format!(" lost {:.0}%", l * 100.0),
                    None => String::new(),
                },
                if r.send_paused { " paused" } else { "" },
                n(r.fps),
                if r.video_paused { " ‖" } else { "" },
            )?;
        }
        write!(f, " ]")
    }
}

/// Sums up the readings of one tile (in time order).
pub fn tile_window(readings: &[TileReading]) -> TileWindow {
    let (Some(first), Some(last)) = (readings.first(), readings.last()) else {
        return TileWindow::default();
    };
    let delta = |f: fn(&TileReading) -> Option<f64>| Some(f(last)? - f(first)?);
    let span_ms = last.at_ms - first.at_ms;
    let values = |f: fn(&TileReading) -> Option<f64>| -> Vec<f64> {
        readings.iter().filter_map(f).collect()
    };
    let sent = values(|r| r.send_kbps);
    let packets = delta(|r| r.audio_packets).unwrap_or(0.0);
    let lost = delta(|r| r.audio_lost).unwrap_or(0.0);
    let mut limits: Vec<String> = readings.iter().map(|r| r.send_limit.clone()).collect();
    limits.sort();
    limits.dedup();
    TileWindow {
        span_ms,
        fps: median(&values(|r| r.fps)).unwrap_or(0.0),
        freezes: delta(|r| r.freezes),
        frozen: delta(|r| r.freeze_ms).map(|ms| ms / span_ms.max(1.0)),
        audio_packets: packets,
        audio_lost: lost,
        audio_loss: if packets + lost > 0.0 {
            lost / (packets + lost)
        } else {
            0.0
        },
        send_kbps: sent.iter().sum::<f64>() / sent.len().max(1) as f64,
        send_height: median(&values(|r| r.send_height)).unwrap_or(0.0),
        send_fps: median(&values(|r| r.send_fps)).unwrap_or(0.0),
        send_limits: limits,
        send_paused: readings.iter().any(|r| r.send_paused),
        video_paused: readings.iter().any(|r| r.video_paused),
        timeline: Timeline(readings.to_vec()),
    }
}

/// Reads every page's tiles every `every` over `span`: for each page, each peer's window.
pub async fn watch_tiles(
    pages: &[&Page],
    span: Duration,
    every: Duration,
) -> Result<Vec<BTreeMap<String, TileWindow>>> {
    let mut readings: Vec<BTreeMap<String, Vec<TileReading>>> = vec![BTreeMap::new(); pages.len()];
    let end = Instant::now() + span;
    loop {
        for (page, seen) in pages.iter().zip(readings.iter_mut()) {
            for r in read_tiles(page).await? {
                seen.entry(r.peer.clone()).or_default().push(r);
            }
        }
        if Instant::now() >= end {
            break;
        }
        // A window of statistics is read at intervals: there is no event to wait for.
        tokio::time::sleep(every).await;
    }
    Ok(readings
        .iter()
        .map(|seen| {
            seen.iter()
                .map(|(k, v)| (k.clone(), tile_window(v)))
                .collect()
        })
        .collect())
}
