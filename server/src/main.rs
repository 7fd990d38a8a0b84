//! `server`: the signaling relay's command line. Parses the configuration, sets up logging,
//! binds the listener, and runs the relay until ctrl-c or SIGTERM.

use anyhow::Context;
use clap::Parser;
use server::Config;
use std::io::Write;
use tracing_subscriber::EnvFilter;

fn main() -> anyhow::Result<()> {
    let config = Config::parse();
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

async fn serve(mut config: Config) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();

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
    // The first stdout line tells scripts and the load generator where the relay is.
    println!("listening on {addr}");
    std::io::stdout().flush()?;
    tracing::info!(%addr, "relay listening");

    server::run(listener, config, shutdown_signal()).await?;
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
