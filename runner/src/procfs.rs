//! Resource samples of a running server process from /proc (Linux).

/// One reading of a process (or the sum over several).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
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
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
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

#[cfg(test)]
mod tests {
    #[test]
    fn samples_this_process() {
        let s = super::sample(std::process::id()).expect("own /proc entry");
        assert!(s.threads >= 1);
        assert!(s.rss_bytes > 0);
    }
}
