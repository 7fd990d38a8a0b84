//! `server`: the signaling relay's command line. Parses the configuration, sets up logging,
//! binds the listener, and runs the relay until ctrl-c or SIGTERM.

use anyhow::Context;
use clap::Parser;
use server::Config;
use std::io::Write;
use tracing_subscriber::EnvFilter;

fn main() -> anyhow::Result<()> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "token") {
        return issue_token(&args);
    }
    let config = match Config::load(args) {
        Ok(config) => config,
        Err(server::config::ConfigError::Args(e)) => e.exit(),
        Err(e) => return Err(e.into()),
    };
    let runtime = match config.workers {
        Some(1) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
        workers => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            if let Some(n) = workers {
                builder.worker_threads(n.max(1));
            }
            builder.enable_all().build()?
        }
    };
    runtime.block_on(serve(config))
}

/// `server token`: issues an HS256 token for testing.
#[derive(Parser)]
#[command(
    name = "server token",
    about = "Prints a signed access token (HS256) for testing"
)]
struct TokenArgs {
    /// The user id (`sub` claim); it becomes the client's `fromUserId`.
    #[arg(long)]
    user: String,
    /// A room the token allows (repeat for several; none: any room).
    #[arg(long)]
    room: Vec<String>,
    /// Lifetime (e.g. 30m, 1h).
    #[arg(long, default_value = "1h", value_parser = server::config::parse_duration)]
    ttl: std::time::Duration,
    /// The relay's HS256 secret.
    #[arg(long, env = "SIGNAL_AUTH_SECRET", hide_env_values = true)]
    secret: String,
}

fn issue_token(args: &[std::ffi::OsString]) -> anyhow::Result<()> {
    let t = TokenArgs::parse_from(args.iter().skip(1));
    if let Err(e) = protocol::UserId::new(t.user.as_str()) {
        anyhow::bail!("--user {e}");
    }
    if t.ttl.as_secs() > server::auth::DEFAULT_MAX_LIFETIME_SECS {
        eprintln!(
            "warning: a relay refuses tokens valid for longer than its --auth-max-lifetime \
             (365d unless configured)"
        );
    }
    let now = server::auth::now_unix();
    println!(
        "{}",
        server::auth::issue_hs256(t.secret.as_bytes(), &t.user, &t.room, t.ttl.as_secs(), now)
    );
    Ok(())
}

async fn serve(mut config: Config) -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if config.log_format == "json" {
        logs.json().init();
    } else {
        logs.init();
    }

    // `PORT` (as set by most hosting platforms) applies when no address was given.
    if std::env::var_os("SIGNAL_ADDR").is_none()
        && !std::env::args().any(|a| a.starts_with("--addr"))
    {
        if let Some(port) = std::env::var("PORT").ok().filter(|p| !p.is_empty()) {
            config
                .addr
                .set_port(port.parse().context("PORT must be a port number")?);
        }
    }
    raise_fd_limit();

    let listener =
        server::bind(config.addr).with_context(|| format!("cannot listen on {}", config.addr))?;
    let addr = listener.local_addr()?;
    // Set up first (TLS, Redis): a relay that cannot serve must not announce itself.
    let relay = server::Server::new(listener, config).await?;
    // The first stdout line tells scripts and the load generator where the relay is.
    println!("listening on {addr}");
    std::io::stdout().flush()?;
    tracing::info!(%addr, "relay listening");

    relay.serve(shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Completes on ctrl-c or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received");
}

/// Raises the open-file soft limit to the hard limit: each connection is a file descriptor.
fn raise_fd_limit() {
    #[cfg(unix)]
    {
        // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
        unsafe {
            let mut lim = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
                lim.rlim_cur = lim.rlim_max;
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    tracing::warn!("cannot raise the open-file limit");
                }
            }
        }
    }
}
