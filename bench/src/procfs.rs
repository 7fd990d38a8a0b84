//! Resource usage of a process read from `/proc`: CPU time and resident memory.

use anyhow::{Context, Result, bail};
use std::fs;

/// CPU time (user + system) that process `pid` has used so far, in seconds.
///
/// Reads `utime` and `stime` (fields 14 and 15) of `/proc/PID/stat`. The fields are counted
/// after the last `)`, because the command name before it may contain spaces and parentheses.
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    parse_cpu_ticks(&stat)
        .map(|ticks| ticks as f64 / clock_ticks_per_second())
        .with_context(|| format!("unexpected format of {path}"))
}

/// CPU time used so far by the bench itself, in seconds.
pub fn own_cpu_seconds() -> Result<f64> {
    cpu_seconds(std::process::id())
}

/// Resident set size of process `pid`, in KiB (`VmRSS` of `/proc/PID/status`).
pub fn rss_kb(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    parse_vm_rss(&status).with_context(|| format!("no VmRSS line in {path}"))
}

fn parse_cpu_ticks(stat: &str) -> Result<u64> {
    let close = stat.rfind(')').context("no `)` after the command name")?;
    // The first field after the command name is field 3 (state), so field N is at index N - 3.
    let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    let (Some(utime), Some(stime)) = (fields.get(14 - 3), fields.get(15 - 3)) else {
        bail!("fewer than 15 fields");
    };
    let utime: u64 = utime.parse().context("utime is not a number")?;
    let stime: u64 = stime.parse().context("stime is not a number")?;
    Ok(utime + stime)
}

/// Peak resident set size of process `pid` so far, in KiB (`VmHWM` of `/proc/PID/status`).
pub fn peak_rss_kb(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    parse_vm_field(&status, "VmHWM:").with_context(|| format!("no VmHWM line in {path}"))
}

fn parse_vm_rss(status: &str) -> Result<u64> {
    parse_vm_field(status, "VmRSS:")
}

fn parse_vm_field(status: &str, field: &str) -> Result<u64> {
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .with_context(|| format!("no {field} line"))?;
    let kb = line.trim().trim_end_matches("kB").trim();
    kb.parse()
        .with_context(|| format!("{field} `{kb}` is not a number"))
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions; it returns -1 for an unknown name.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_fields_14_and_15_after_the_name() {
        let stat = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 37 0 0 20 0 \
                    3 0 12345 1000000 200 18446744073709551615";
        assert_eq!(parse_cpu_ticks(stat).unwrap(), 287);
    }

    #[test]
    fn vm_rss_is_read_in_kib() {
        let status = "Name:\tserver\nVmPeak:\t  9000 kB\nVmRSS:\t    5120 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss(status).unwrap(), 5120);
    }

    #[test]
    fn own_process_is_readable() {
        assert!(own_cpu_seconds().unwrap() >= 0.0);
        assert!(rss_kb(std::process::id()).unwrap() > 0);
    }
}
