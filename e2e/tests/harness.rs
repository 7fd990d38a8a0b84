//! The end-to-end harness cleans up after itself: a test that fails before closing its pages
//! must not leave browsers running to load the machine for the tests after it.

use e2e::Harness;
use server::Config;
use std::time::{Duration, Instant};

/// The live (not zombie) processes of process group `pgid`, read from /proc.
fn live_members(pgid: u32) -> Vec<u32> {
    let mut pids = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return pids;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // After the command name (in parentheses, may hold spaces): state, ppid, pgrp, ...
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 2 && fields[0] != "Z" && fields[2].parse() == Ok(pgid) {
            pids.push(pid);
        }
    }
    pids
}

/// A harness dropped while a page is still open (as when a test panics) takes chromedriver and
/// every browser process with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_harness_leaves_no_browser_running() {
    let harness = Harness::start(Config::default()).await.unwrap();
    let page = harness.page("room=e2e-harness&ice=").await.unwrap();
    let group = harness.driver_pid();
    let before = live_members(group);
    assert!(
        before.len() > 1,
        "chromedriver and its browser share a process group: {before:?}"
    );
    drop(page);
    drop(harness);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = live_members(group);
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "processes of the harness's group still running: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
