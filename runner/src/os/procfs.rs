//! Everything runbench reads from /proc (Linux), in one place: resource samples of server
//! processes and process groups, this process's peak RSS and threads' run-queue wait, closing
//! sockets, and the machine's CPU model and kernel.

/// One reading of a process (or the sum over several).
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProcSample {
    pub cpu_user_s: f64,
    pub cpu_sys_s: f64,
    pub rss_bytes: u64,
    pub threads: u64,
    pub ctx_switches: u64,
}

impl ProcSample {
    pub fn add(&mut self, o: &ProcSample) {
        self.cpu_user_s += o.cpu_user_s;
        self.cpu_sys_s += o.cpu_sys_s;
        self.rss_bytes += o.rss_bytes;
        self.threads += o.threads;
        self.ctx_switches += o.ctx_switches;
    }
}

/// This process's peak resident set since its last exec (VmHWM). Unlike wait4's ru_maxrss it does
/// not count the memory the process had before exec (the parent's, for a spawned child).
pub fn peak_rss_self() -> Option<u64> {
    peak_rss("self")
}

/// VmHWM of `/proc/<pid>` (`self` for this process).
fn peak_rss(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// The sum over `pids`; `None` if any of them is gone (a partial sum would read as a drop).
pub fn sample_all(pids: &[u32]) -> Option<ProcSample> {
    let mut total = ProcSample::default();
    for &pid in pids {
        total.add(&sample(pid)?);
    }
    Some(total)
}

/// Reads `/proc/<pid>/stat` and `/proc/<pid>/status`; `None` once the process is gone.
pub fn sample(pid: u32) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name, which may itself contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // SAFETY: sysconf has no preconditions.
    let (ticks, page) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK) as f64,
            libc::sysconf(libc::_SC_PAGESIZE) as u64,
        )
    };
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // proc(5): utime is field 14, stime 15, num_threads 20, rss 24; `rest` starts at field 3.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let ctx: u64 = status
        .lines()
        .filter(|l| {
            l.starts_with("voluntary_ctxt_switches") || l.starts_with("nonvoluntary_ctxt_switches")
        })
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum();
    Some(ProcSample {
        cpu_user_s: num(11) as f64 / ticks,
        cpu_sys_s: num(12) as f64 / ticks,
        threads: num(17),
        rss_bytes: num(21) * page,
        ctx_switches: ctx,
    })
}

/// The fields of `/proc/<pid>/stat` after the command name (which may hold spaces), from field
/// 3 (state) on.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// The live processes of process group `pgid` (zombies excluded: they hold nothing but a pid).
pub fn group_members(pgid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            // proc(5): state is field 3, pgrp field 5.
            stat_fields(pid).is_some_and(|f| {
                f.first().is_some_and(|s| s != "Z" && s != "X")
                    && f.get(2).and_then(|g| g.parse::<u32>().ok()) == Some(pgid)
            })
        })
        .collect()
}

/// CPU time (user, system; each process's own plus its reaped children's) and the sum of the
/// peak RSS of every live process of group `pgid`: what a command that forks used so far.
pub fn group_usage(pgid: u32) -> Option<(f64, f64, u64)> {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let mut total: Option<(f64, f64, u64)> = None;
    for pid in group_members(pgid) {
        let Some(f) = stat_fields(pid) else { continue };
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) as f64;
        // utime 14, stime 15, cutime 16, cstime 17; `f` starts at field 3.
        let t = total.get_or_insert((0.0, 0.0, 0));
        t.0 += (num(11) + num(13)) / ticks;
        t.1 += (num(12) + num(14)) / ticks;
        t.2 += peak_rss(&pid.to_string()).unwrap_or(0);
    }
    total
}

/// TCP sockets to or from `port` that are closing but not yet in TIME_WAIT (FIN_WAIT*,
/// CLOSE_WAIT, LAST_ACK, CLOSING): what a just-stopped server leaves behind.
pub fn closing_sockets(port: u16) -> usize {
    let on_port = |addr: &str| {
        addr.rsplit(':')
            .next()
            .and_then(|p| u16::from_str_radix(p, 16).ok())
            == Some(port)
    };
    let mut n = 0;
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            // Column 4 is the state in hex: 04 FIN_WAIT1, 05 FIN_WAIT2, 08 CLOSE_WAIT,
            // 09 LAST_ACK, 0B CLOSING.
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() > 3
                && (on_port(cols[1]) || on_port(cols[2]))
                && matches!(cols[3], "04" | "05" | "08" | "09" | "0B")
            {
                n += 1;
            }
        }
    }
    n
}

/// Time the calling thread has spent runnable but waiting for a CPU (the run queue), from
/// /proc/thread-self/schedstat; `None` where the kernel does not keep it.
pub fn thread_cpu_wait() -> Option<std::time::Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = text.split_whitespace().nth(1)?.parse().ok()?;
    Some(std::time::Duration::from_nanos(ns))
}

/// Nanoseconds on a CPU of every thread of `pid`, by thread id, from
/// /proc/<pid>/task/<tid>/schedstat (exact, unlike stat's clock ticks); falls back to stat's
/// utime + stime where the kernel keeps no schedstat. `None` once the process is gone.
pub fn thread_cpu_ns(pid: u32) -> Option<Vec<(u32, u64)>> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    // SAFETY: sysconf has no preconditions.
    let tick_ns = 1e9 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let mut out = Vec::new();
    for e in dir.flatten() {
        let Some(tid) = e.file_name().to_str().and_then(|t| t.parse::<u32>().ok()) else {
            continue;
        };
        let base = format!("/proc/{pid}/task/{tid}");
        let from_schedstat = std::fs::read_to_string(format!("{base}/schedstat"))
            .ok()
            .and_then(|t| t.split_whitespace().next()?.parse::<u64>().ok());
        let ns = from_schedstat.or_else(|| {
            let stat = std::fs::read_to_string(format!("{base}/stat")).ok()?;
            let f: Vec<&str> = stat
                .get(stat.rfind(')')? + 2..)?
                .split_whitespace()
                .collect();
            let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            Some(((num(11) + num(12)) as f64 * tick_ns) as u64)
        });
        // A thread that ended between the listing and the read is left out.
        if let Some(ns) = ns {
            out.push((tid, ns));
        }
    }
    Some(out)
}

/// The CPU model, kernel release and host name.
pub fn machine() -> (String, String, String) {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    (
        cpu_model,
        read("/proc/sys/kernel/osrelease"),
        read("/proc/sys/kernel/hostname"),
    )
}

/// Threads running on the machine now (the fourth field of /proc/loadavg, "running/total").
pub fn threads_running() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace()
        .nth(3)?
        .split('/')
        .nth(1)?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn samples_this_process() {
        let s = super::sample(std::process::id()).expect("own /proc entry");
        assert!(s.threads >= 1);
        assert!(s.rss_bytes > 0);
    }

    #[test]
    fn a_process_group_is_found_and_measured_whole() {
        use std::os::unix::process::CommandExt;
        // A shell leading its own group, with a child of its own (`sleep` is not exec'd: the
        // shell waits to run `true` after it).
        let mut sh = std::process::Command::new("sh")
            .args(["-c", "sleep 5; true"])
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = sh.id();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut members = super::group_members(pgid);
        while members.len() < 2 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
            members = super::group_members(pgid);
        }
        assert_eq!(members.len(), 2, "{members:?}");
        assert!(members.contains(&pgid));
        let (_, _, rss) = super::group_usage(pgid).unwrap();
        assert!(rss > 0);
        // SAFETY: signalling the group of our own child.
        unsafe { libc::kill(-(pgid as i32), libc::SIGKILL) };
        sh.wait().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !super::group_members(pgid).is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(super::group_members(pgid).is_empty());
    }
}
