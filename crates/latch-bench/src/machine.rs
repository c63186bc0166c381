//! What machine a run is on, for the report.

use std::time::Duration;

use anyhow::Context as _;

/// CPU time (user plus system) process `pid` has used so far, all its
/// threads together, from `/proc/<pid>/stat`.
///
/// While wrk runs, the benchmark's own threads only wait for it, so the
/// growth of this over a cell is the server's: its worker thread, the
/// blocking pool (SQLite), and the kernel's work on its sockets. The
/// resolution is one clock tick (`USER_HZ`, 100 per second on Linux), half
/// a percent of a 2-second cell at full load.
///
/// # Errors
/// When the file cannot be read or parsed (not Linux, or the process is gone).
pub fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    parse_cpu_time(&stat).with_context(|| format!("reading /proc/{pid}/stat: {stat:?}"))
}

/// `USER_HZ`: the unit of `/proc/<pid>/stat`'s times, fixed at 100 by
/// Linux's user-space interface whatever the kernel's own tick rate.
const USER_HZ: u64 = 100;

fn parse_cpu_time(stat: &str) -> anyhow::Result<Duration> {
    // The command name (field 2) is in parentheses and may hold spaces: the
    // fields after it start behind the last ')'. utime and stime are fields
    // 14 and 15, so the 12th and 13th after it.
    let rest = &stat[stat.rfind(')').context("no ')' in stat")? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let mut next =
        || -> anyhow::Result<u64> { Ok(fields.next().context("stat too short")?.parse()?) };
    let ticks = next()? + next()?;
    Ok(Duration::from_millis(ticks * 1000 / USER_HZ))
}

/// Number of online CPUs.
pub fn nproc() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// The CPU model from `/proc/cpuinfo`.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The 1, 5 and 15 minute load averages from `/proc/loadavg`.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|t| t.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// One line describing the machine and its load now.
pub fn describe() -> String {
    format!(
        "machine: {} CPUs, {}; load average (1/5/15 min): {}",
        nproc(),
        cpu_model(),
        loadavg()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_utime_plus_stime_after_a_name_with_spaces() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt
        // majflt cmajflt utime stime ...
        let stat = "4242 (a (b) c) S 1 2 3 0 -1 4194560 10 0 0 0 250 37 0 0 20 0 3 0";
        assert_eq!(parse_cpu_time(stat).unwrap(), Duration::from_millis(2870));
        assert!(parse_cpu_time("4242 (x) S 1 2").is_err());
    }

    #[test]
    fn this_process_has_used_some_cpu_and_it_only_grows() {
        let before = cpu_time(std::process::id()).unwrap();
        // Burn CPU until the count moves (a clock tick of CPU), giving up
        // after 5 s of wall time however busy the machine is.
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while cpu_time(std::process::id()).unwrap() <= before
            && start.elapsed() < Duration::from_secs(5)
        {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(1));
            }
        }
        assert!(cpu_time(std::process::id()).unwrap() > before);
    }
}
