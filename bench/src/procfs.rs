//! A process's CPU time and resident memory, read from `/proc` (Linux only).
//!
//! CPU time is `utime + stime` from `/proc/<pid>/stat`, which covers every thread of the
//! process; it is counted in clock ticks (usually 10 ms), so a measured interval should be
//! seconds long for the figure to be good to a percent.

use std::fs;
use std::io;

/// CPU time (user + system) the process `pid` has used so far, in seconds.
pub fn cpu_seconds(pid: u32) -> io::Result<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let ticks = parse_stat_cpu_ticks(&stat).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("/proc/{pid}/stat: unexpected format"),
        )
    })?;
    Ok(ticks as f64 / clock_ticks_per_second() as f64)
}

/// This thread's time on a CPU so far, in nanoseconds (`/proc/thread-self/schedstat`), 0 if
/// unreadable: precise where `cpu_seconds` counts ticks.
pub fn thread_cpu_ns() -> u64 {
    fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// `utime + stime` in ticks from the text of a `/proc/<pid>/stat` file.
///
/// The command name (field 2) may contain spaces and parentheses, so fields are counted
/// from the last `)`.
pub fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // After the command name come field 3 (state) onwards; utime is field 14, stime 15.
    let utime: u64 = fields.nth(14 - 3)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Resident set size (`VmRSS`) of the process `pid`, in KiB.
pub fn rss_kib(pid: u32) -> io::Result<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_status_rss_kib(&status).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("/proc/{pid}/status: no VmRSS line"),
        )
    })
}

/// The `VmRSS` figure in KiB from the text of a `/proc/<pid>/status` file.
pub fn parse_status_rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line["VmRSS:".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Memory the kernel holds for TCP sockets, machine-wide, in KiB: the `mem` figure (pages) of
/// the `TCP:` line of `/proc/net/sockstat`, times the page size (4 KiB).
pub fn tcp_mem_kib() -> Option<u64> {
    parse_sockstat_tcp_pages(&fs::read_to_string("/proc/net/sockstat").ok()?).map(|p| p * 4)
}

/// The `mem` figure of the `TCP:` line of a `/proc/net/sockstat` text, in pages.
pub fn parse_sockstat_tcp_pages(sockstat: &str) -> Option<u64> {
    let line = sockstat.lines().find(|l| l.starts_with("TCP:"))?;
    let mut words = line.split_whitespace();
    words.find(|w| *w == "mem")?;
    words.next()?.parse().ok()
}

/// The machine's one-minute load average from `/proc/loadavg`, if readable.
///
/// Recorded with every result: other work on the machine shows in latencies long before it
/// shows in CPU time per message.
pub fn load_average() -> Option<f64> {
    fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Clock ticks per second (`AT_CLKTCK` from the auxiliary vector), 100 if unreadable.
pub fn clock_ticks_per_second() -> u64 {
    const AT_CLKTCK: u64 = 17;
    let Ok(auxv) = fs::read("/proc/self/auxv") else {
        return 100;
    };
    auxv.chunks_exact(16)
        .filter_map(|pair| {
            let key = u64::from_ne_bytes(pair[..8].try_into().ok()?);
            let value = u64::from_ne_bytes(pair[8..].try_into().ok()?);
            (key == AT_CLKTCK && value > 0).then_some(value)
        })
        .next()
        .unwrap_or(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        let stat = "4242 (we ird) name)) S 1 4242 4242 0 -1 4194560 200 0 0 0 \
                    123 45 0 0 20 0 3 0 1000 10000000 500 18446744073709551615";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(168));
        assert_eq!(parse_stat_cpu_ticks("1 (x) S 1"), None);
    }

    #[test]
    fn rss_line_is_found() {
        let status = "Name:\tnode\nVmPeak:\t  9000 kB\nVmRSS:\t   51234 kB\nThreads:\t7\n";
        assert_eq!(parse_status_rss_kib(status), Some(51234));
        assert_eq!(parse_status_rss_kib("Name:\tx\n"), None);
    }

    #[test]
    fn sockstat_tcp_memory() {
        let text =
            "sockets: used 34\nTCP: inuse 2 orphan 0 tw 0 alloc 2 mem 139\nUDP: inuse 0 mem 7\n";
        assert_eq!(parse_sockstat_tcp_pages(text), Some(139));
        assert_eq!(parse_sockstat_tcp_pages("UDP: inuse 0 mem 7\n"), None);
    }

    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        assert!(rss_kib(pid).unwrap() > 0);
        assert!(cpu_seconds(pid).unwrap() >= 0.0);
        assert!(clock_ticks_per_second() >= 100);
        assert!(load_average().unwrap() >= 0.0);
    }
}
