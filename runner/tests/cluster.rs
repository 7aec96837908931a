//! runbench across machines, for real on this one: a controller and its agents as separate
//! processes, on loopback, or each in a network namespace of its own (hosts joined by veth
//! pairs into a bridge, 10.x addresses that exist only inside them) with CLOCK_MONOTONIC
//! offset by a time namespace (`unshare --time --monotonic`), so the clock logic meets real
//! skew. Every load is a few seconds and a few connections, and never leaves the namespaces
//! this test made or loopback.
//!
//! The namespace tests need root and iproute2's `ip` and util-linux's `unshare`; without them
//! they print why and pass. Needs the epoll plugin built next to the runbench binary
//! (`cargo build -p runbench-plugin-epoll`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod support;

use support::proc::Proc;

fn exe() -> &'static str {
    env!("CARGO_BIN_EXE_runbench")
}

fn plugin_built() -> bool {
    let p = Path::new(exe()).with_file_name("librunbench_plugin_epoll.so");
    assert!(
        p.exists(),
        "{} is missing: `cargo build -p runbench-plugin-epoll` first",
        p.display()
    );
    true
}

/// A scenario of a few seconds: 8 connections to the epoll plugin.
fn scenario(dir: &Path, duration_s: u32) -> PathBuf {
    support::cluster_scenario(dir, duration_s)
}

fn token(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let out = Command::new(exe())
        .arg("token")
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    path
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn controller(
    scn: &Path,
    out: &Path,
    agents: usize,
    listen: SocketAddr,
    tok: &Path,
    prefix: &[String],
) -> Proc {
    let mut argv = prefix.to_vec();
    argv.extend(s(&[exe(), "run"]));
    argv.push(scn.display().to_string());
    argv.extend(s(&["--out"]));
    argv.push(out.display().to_string());
    argv.extend(s(&[
        "--agents",
        &agents.to_string(),
        "--listen",
        &listen.to_string(),
        "--join-timeout",
        "20s",
        "--token-file",
    ]));
    argv.push(tok.display().to_string());
    Proc::spawn("controller", &argv)
}

fn agent(
    name: &str,
    role: &str,
    ctl: SocketAddr,
    tok: &Path,
    prefix: &[String],
    extra: &[&str],
) -> Proc {
    let mut argv = prefix.to_vec();
    argv.extend(s(&[
        exe(),
        "agent",
        "--role",
        role,
        "--name",
        name,
        "--connect-timeout",
        "20s",
        "--controller",
        &ctl.to_string(),
        "--token-file",
    ]));
    argv.push(tok.display().to_string());
    argv.extend(s(extra));
    Proc::spawn(name, &argv)
}

fn run_dir(out: &Path) -> PathBuf {
    out.join("cluster").join("latest")
}

fn summary(out: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let mut r = csv::Reader::from_path(run_dir(out).join("summary.csv")).unwrap();
    let headers = r.headers().unwrap().clone();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            headers
                .iter()
                .zip(rec.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

fn meta(out: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(run_dir(out).join("meta.json")).unwrap()).unwrap()
}

/// (tag, interval start) -> the interval histogram's count, from latency.hlog.
fn hlog_counts(path: &Path) -> std::collections::BTreeMap<(String, String), u64> {
    use base64::Engine;
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    use hdrhistogram::serialization::Deserializer;
    let text = std::fs::read(path).unwrap();
    let mut out = std::collections::BTreeMap::new();
    for e in IntervalLogIterator::new(&text) {
        if let Ok(LogEntry::Interval(i)) = e {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(i.encoded_histogram())
                .unwrap();
            let h: hdrhistogram::Histogram<u64> = Deserializer::new()
                .deserialize(&mut bytes.as_slice())
                .unwrap();
            let tag = i.tag().map(|t| t.as_str().to_string()).unwrap_or_default();
            out.insert((tag, format!("{:?}", i.start_timestamp())), h.len());
        }
    }
    out
}

// ---------------------------------------------------------------- loopback (no root needed)

#[test]
fn wrong_token_is_refused_on_both_sides() {
    plugin_built();
    let dir = tempfile::tempdir().unwrap();
    let (good, bad) = (token(dir.path(), "good"), token(dir.path(), "bad"));
    let listen: SocketAddr = format!("127.0.0.1:{}", support::listen_port())
        .parse()
        .unwrap();
    let scn = scenario(dir.path(), 1);
    let mut c = Proc::spawn(
        "controller",
        &[
            s(&[exe(), "run"]),
            vec![scn.display().to_string()],
            s(&[
                "--out",
                &dir.path().join("out").display().to_string(),
                "--agents",
                "2",
                "--listen",
                &listen.to_string(),
                "--join-timeout",
                "4s",
                "--token-file",
                &good.display().to_string(),
            ]),
        ]
        .concat(),
    );
    c.wait_for("controller listening", Duration::from_secs(20));
    let mut a = agent("intruder", "load", listen, &bad, &[], &[]);
    assert_eq!(
        a.exit(Duration::from_secs(20)),
        7,
        "the agent exits with code 7"
    );
    assert!(
        a.text()
            .contains("this agent could not prove it holds the token"),
        "{}",
        a.text()
    );
    c.wait_for(
        "refused: it could not prove it holds the token",
        Duration::from_secs(5),
    );
    assert_eq!(
        c.exit(Duration::from_secs(20)),
        7,
        "no agents joined: code 7"
    );
    assert!(c.text().contains("0 of 2 agents joined"), "{}", c.text());
}

#[test]
fn a_token_file_others_may_read_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let tok = token(dir.path(), "t");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&tok, std::fs::Permissions::from_mode(0o640)).unwrap();
    let out = Command::new(exe())
        .args(["agent", "--controller", "127.0.0.1:9", "--token-file"])
        .arg(&tok)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("mode 0640"),
        "{out:?}"
    );
}

#[test]
fn listening_on_every_interface_needs_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let tok = token(dir.path(), "t");
    let scn = scenario(dir.path(), 1);
    let out = Command::new(exe())
        .arg("run")
        .arg(&scn)
        .args(["--agents", "2", "--listen", "0.0.0.0:7999", "--token-file"])
        .arg(&tok)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--listen-any"),
        "{out:?}"
    );
}

#[test]
fn a_target_outside_allow_target_is_refused_and_a_late_joiner_too() {
    plugin_built();
    let dir = tempfile::tempdir().unwrap();
    let tok = token(dir.path(), "t");
    let out = dir.path().join("out");
    let listen: SocketAddr = format!("127.0.0.1:{}", support::listen_port())
        .parse()
        .unwrap();
    let mut c = controller(&scenario(dir.path(), 1), &out, 2, listen, &tok, &[]);
    let _srv = agent("srv", "server", listen, &tok, &[], &[]);
    let mut load = agent(
        "ld",
        "load",
        listen,
        &tok,
        &[],
        &["--allow-target", "10.255.0.0/16"],
    );
    c.wait_for("load agent ld", Duration::from_secs(20));
    // Only once both places are taken is a newcomer late.
    c.wait_for("server agent srv", Duration::from_secs(20));
    let mut late = agent("late", "load", listen, &tok, &[], &[]);
    assert_eq!(late.exit(Duration::from_secs(20)), 7);
    assert!(
        late.text().contains("already has its 2 agents"),
        "{}",
        late.text()
    );
    assert_eq!(c.exit(Duration::from_secs(60)), 1, "the row failed");
    let rows = summary(&out);
    assert_eq!(rows[0]["status"], "failed");
    assert!(
        rows[0]["error"].contains("outside --allow-target 10.255.0.0/16"),
        "{:?}",
        rows[0]["error"]
    );
    assert_eq!(
        load.exit(Duration::from_secs(10)),
        0,
        "the run ended: the agent exits 0"
    );
}

#[test]
fn a_start_that_reaches_the_agent_too_late_fails_the_step_before_it_measures() {
    plugin_built();
    let dir = tempfile::tempdir().unwrap();
    let tok = token(dir.path(), "t");
    let out = dir.path().join("out");
    let listen: SocketAddr = format!("127.0.0.1:{}", support::listen_port())
        .parse()
        .unwrap();
    let mut argv = s(&[exe(), "run"]);
    argv.push(scenario(dir.path(), 1).display().to_string());
    argv.extend(s(&[
        "--out",
        &out.display().to_string(),
        "--agents",
        "2",
        "--listen",
        &listen.to_string(),
        "--token-file",
        &tok.display().to_string(),
    ]));
    // The start instant is now: it has passed when the agent reads it.
    argv.extend(s(&["--start-lead", "0s"]));
    let mut c = Proc::spawn("controller", &argv);
    let _srv = agent("srv", "server", listen, &tok, &[], &[]);
    let _ld = agent("ld", "load", listen, &tok, &[], &[]);
    assert_eq!(c.exit(Duration::from_secs(60)), 1, "{}", c.text());
    let rows = summary(&out);
    assert_eq!(rows[0]["status"], "failed");
    let e = &rows[0]["error"];
    assert!(
        e.contains("the start instant reached agent ld") && e.contains("not started"),
        "{e}"
    );
    assert!(
        rows[0]["requests"].is_empty(),
        "nothing was measured: {:?}",
        rows[0]["requests"]
    );
}

#[test]
fn killing_the_controller_stops_the_agents() {
    plugin_built();
    let dir = tempfile::tempdir().unwrap();
    let tok = token(dir.path(), "t");
    let out = dir.path().join("out");
    let listen: SocketAddr = format!("127.0.0.1:{}", support::listen_port())
        .parse()
        .unwrap();
    let mut c = controller(&scenario(dir.path(), 20), &out, 2, listen, &tok, &[]);
    let mut srv = agent("srv", "server", listen, &tok, &[], &[]);
    let mut load = agent("ld", "load", listen, &tok, &[], &[]);
    c.wait_for("load agent ld", Duration::from_secs(20));
    // Well into the load (warmup 1 s), then the controller dies without a word.
    c.wait_for("] measure", Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(3));
    c.kill();
    let t = Instant::now();
    assert_eq!(load.exit(Duration::from_secs(10)), 7);
    assert_eq!(srv.exit(Duration::from_secs(10)), 7);
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "stopped in {:?}",
        t.elapsed()
    );
    assert!(
        load.text().contains("stopped 1 child process(es)"),
        "{}",
        load.text()
    );
}

// ------------------------------------------------------------ network and time namespaces

/// Hosts as network namespaces on one bridge: removed when dropped, also when a test fails.
struct Hosts {
    bridge: String,
    names: Vec<String>,
    veths: Vec<String>,
    subnet: String,
}

fn sh(argv: &[&str]) -> Result<(), String> {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .map_err(|e| format!("{argv:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{argv:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

/// Why the namespace tests cannot run here, if they cannot.
fn cannot_namespace() -> Option<String> {
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root (network namespaces need CAP_NET_ADMIN)".into());
    }
    for tool in ["ip", "unshare"] {
        if Command::new(tool).arg("--version").output().is_err() {
            return Some(format!("`{tool}` is not installed"));
        }
    }
    let help = Command::new("unshare").arg("--help").output().unwrap();
    if !String::from_utf8_lossy(&help.stdout).contains("--monotonic") {
        return Some("this `unshare` has no --monotonic (time namespaces)".into());
    }
    if sh(&["unshare", "--time", "--fork", "--monotonic", "5", "true"]).is_err() {
        return Some("the kernel refuses time namespaces".into());
    }
    None
}

impl Hosts {
    /// `n` hosts; host i has 10.<a>.<b>.(i+1)/24.
    fn new(n: usize) -> Result<Hosts, String> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let k = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let tag = format!("{}{}", pid % 100_000, k);
        let mut h = Hosts {
            bridge: format!("rbtb{tag}"),
            names: Vec::new(),
            veths: Vec::new(),
            subnet: format!("10.{}.{}", 200 + (pid % 50), (pid / 50 % 50) * 5 + k % 5),
        };
        sh(&["ip", "link", "add", &h.bridge, "type", "bridge"])?;
        sh(&["ip", "link", "set", &h.bridge, "up"])?;
        for i in 0..n {
            let ns = format!("runbench-t-{tag}-{i}");
            sh(&["ip", "netns", "add", &ns])?;
            h.names.push(ns.clone());
            let veth = format!("rbtv{tag}{i}");
            sh(&[
                "ip", "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ])?;
            h.veths.push(veth.clone());
            sh(&["ip", "link", "set", &veth, "master", &h.bridge, "up"])?;
            let addr = format!("{}/24", h.ip(i));
            sh(&["ip", "-n", &ns, "addr", "add", &addr, "dev", "eth0"])?;
            sh(&["ip", "-n", &ns, "link", "set", "eth0", "up"])?;
            sh(&["ip", "-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(h)
    }

    fn ip(&self, i: usize) -> String {
        format!("{}.{}", self.subnet, i + 1)
    }

    /// Runs in host `i`, its CLOCK_MONOTONIC `monotonic_s` ahead of this machine's.
    fn prefix(&self, i: usize, monotonic_s: u64) -> Vec<String> {
        let mut p = s(&["ip", "netns", "exec", &self.names[i]]);
        if monotonic_s > 0 {
            p.extend(s(&[
                "unshare",
                "--time",
                "--fork",
                "--kill-child",
                "--monotonic",
                &monotonic_s.to_string(),
            ]));
        }
        p
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for ns in &self.names {
            let _ = sh(&["ip", "netns", "del", ns]);
        }
        for v in &self.veths {
            let _ = sh(&["ip", "link", "del", v]);
        }
        let _ = sh(&["ip", "link", "del", &self.bridge]);
    }
}

const HOUR: u64 = 3600;
const DAY: u64 = 86_400;

/// Controller in host 0; server agent in host 1 (+1 h); load agents in hosts 2 (+1 day) and 3.
/// Fields drop in order: the processes go before their namespaces and folder.
struct Cluster {
    c: Proc,
    agents: Vec<Proc>,
    hosts: Hosts,
    dir: tempfile::TempDir,
    out: PathBuf,
}

fn cluster(duration_s: u32) -> Option<Cluster> {
    if let Some(why) = cannot_namespace() {
        eprintln!("skipped: {why}");
        return None;
    }
    plugin_built();
    let hosts = Hosts::new(4).expect("creating the namespaces");
    let dir = tempfile::tempdir().unwrap();
    let tok = token(dir.path(), "t");
    let out = dir.path().join("out");
    let listen: SocketAddr = format!("{}:7070", hosts.ip(0)).parse().unwrap();
    let c = controller(
        &scenario(dir.path(), duration_s),
        &out,
        3,
        listen,
        &tok,
        &hosts.prefix(0, 0),
    );
    c.wait_for("controller listening", Duration::from_secs(20));
    let agents = vec![
        agent(
            "server",
            "server",
            listen,
            &tok,
            &hosts.prefix(1, HOUR),
            &[],
        ),
        agent("load-a", "load", listen, &tok, &hosts.prefix(2, DAY), &[]),
        agent("load-b", "load", listen, &tok, &hosts.prefix(3, 0), &[]),
    ];
    c.wait_for("load agent load-b", Duration::from_secs(30));
    c.wait_for("load agent load-a", Duration::from_secs(30));
    Some(Cluster {
        hosts,
        dir,
        out,
        c,
        agents,
    })
}

#[test]
fn three_hosts_with_skewed_clocks_merge_exactly_and_start_together() {
    let Some(mut k) = cluster(2) else { return };
    assert_eq!(k.c.exit(Duration::from_secs(90)), 0, "{}", k.c.text());
    for a in &mut k.agents {
        assert_eq!(a.exit(Duration::from_secs(10)), 0);
    }
    let rows = summary(&k.out);
    assert_eq!(rows[0]["status"], "ok", "{:?}", rows[0]);
    // Each load process's result as the controller received it, and the merge.
    let text = k.c.text();
    // The log names where the load goes: the server agent, not this host's loopback.
    assert!(
        text.contains("target server agent") && !text.contains("target 127.0.0.1 (a fresh port"),
        "{text}"
    );
    let shards: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("load process") && l.contains("requests="))
        .collect();
    assert_eq!(shards.len(), 2, "{text}");
    let merged = text
        .lines()
        .find(|l| l.contains("merged:"))
        .expect("the merge line");
    let sum = |f: &str| shards.iter().map(|l| support::log_num(l, f)).sum::<u64>();
    assert_eq!(support::log_num(merged, "requests"), sum("requests"));
    assert_eq!(
        support::log_num(merged, "histogram_count"),
        sum("histogram_count")
    );
    assert!(
        shards.iter().all(|l| support::log_num(l, "requests") > 0),
        "every agent measured"
    );
    assert_eq!(
        rows[0]["requests"].parse::<u64>().unwrap(),
        support::log_num(merged, "requests")
    );
    let m = meta(&k.out);
    let agents = m["agents"].as_array().unwrap();
    assert_eq!(agents.len(), 3);
    let offset = |name: &str| {
        agents.iter().find(|a| a["name"] == name).unwrap()["offset_ns"]
            .as_i64()
            .unwrap()
    };
    let near = |got: i64, want_s: u64| (got - (want_s * 1_000_000_000) as i64).abs() < 5_000_000;
    assert!(near(offset("server"), HOUR), "{}", offset("server"));
    assert!(near(offset("load-a"), DAY), "{}", offset("load-a"));
    assert!(near(offset("load-b"), 0), "{}", offset("load-b"));
    let skew = m["start_skew_bound_ns"].as_u64().unwrap();
    assert!(skew < 5_000_000, "start skew bound {skew} ns");
    // latency.hlog: each interval merged and per agent; the merge is their sum.
    let counts = hlog_counts(&run_dir(&k.out).join("latency.hlog"));
    let mut checked = 0;
    for ((tag, start), n) in &counts {
        if tag.contains("agent:") {
            continue;
        }
        let a = counts.get(&(format!("{tag}/agent:load-a"), start.clone()));
        let b = counts.get(&(format!("{tag}/agent:load-b"), start.clone()));
        assert_eq!(
            Some(*n),
            a.zip(b).map(|(a, b)| a + b),
            "interval {start} of {tag}"
        );
        checked += 1;
    }
    assert!(checked >= 3, "{counts:?}");
    // The server agent's /proc samples reach the timeline.
    let mut t = csv::Reader::from_path(run_dir(&k.out).join("timeline.csv")).unwrap();
    let col = t
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "server_rss_bytes")
        .unwrap();
    let rss: Vec<u64> = t
        .records()
        .map(|r| r.unwrap()[col].parse().unwrap_or(0))
        .collect();
    assert!(rss.iter().any(|&r| r > 0), "{rss:?}");
    eprintln!("merged {merged}; shards {shards:?}; skew bound {skew} ns; agents {agents:?}");
    drop(k.dir);
}

#[test]
fn a_killed_load_agent_fails_the_row_and_keeps_the_rest_on_disk() {
    let Some(mut k) = cluster(6) else { return };
    k.c.wait_for("] measure", Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(3));
    k.agents[2].kill();
    assert_eq!(k.c.exit(Duration::from_secs(90)), 1, "{}", k.c.text());
    let rows = summary(&k.out);
    assert_eq!(rows[0]["status"], "failed");
    let e = &rows[0]["error"];
    assert!(
        e.contains("load agent load-b")
            && e.contains("lost at")
            && e.contains("4 connection(s) it held stopped"),
        "{e}"
    );
    assert!(
        rows[0]["requests"].parse::<u64>().unwrap() > 0,
        "the survivor's measurement is kept"
    );
    assert!(run_dir(&k.out).join("percentiles.csv").exists());
}

#[test]
fn a_cut_link_is_detected_on_both_sides() {
    let Some(mut k) = cluster(8) else { return };
    k.c.wait_for("] measure", Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(3));
    let veth = k.hosts.veths[2].clone();
    sh(&["ip", "link", "set", &veth, "down"]).unwrap();
    let t = Instant::now();
    assert_eq!(
        k.agents[1].exit(Duration::from_secs(10)),
        7,
        "the cut-off agent stops its load"
    );
    assert!(
        k.agents[1].text().contains("silent"),
        "{}",
        k.agents[1].text()
    );
    eprintln!("the agent gave up {:?} after the cut", t.elapsed());
    assert_eq!(k.c.exit(Duration::from_secs(90)), 1, "{}", k.c.text());
    let rows = summary(&k.out);
    assert_eq!(rows[0]["status"], "failed");
    assert!(
        rows[0]["error"].contains("load agent load-a") && rows[0]["error"].contains("no frame for"),
        "{:?}",
        rows[0]["error"]
    );
}

// ------------------------------------------- admission under hostile and slow conditions

/// `runbench run SCENARIO --agents 2 --listen ADDR --token-file T` and `extra`.
fn controller_args(scn: &Path, out: &Path, listen: SocketAddr, tok: &Path, extra: &[&str]) -> Proc {
    let mut argv = s(&[exe(), "run"]);
    argv.push(scn.display().to_string());
    argv.extend(s(&["--out", &out.display().to_string(), "--agents", "2"]));
    argv.extend(s(&["--listen", &listen.to_string()]));
    argv.extend(s(&["--token-file", &tok.display().to_string()]));
    argv.extend(s(extra));
    Proc::spawn("controller", &argv)
}

fn loopback() -> SocketAddr {
    format!("127.0.0.1:{}", support::listen_port())
        .parse()
        .unwrap()
}

/// A peer without the token that sends the start of a 4,096-byte frame one byte every 200 ms
/// (for at most `for_s` seconds), as a slow or hostile peer would: it keeps a reader that
/// waits per read, rather than by one deadline, waiting.
fn trickle(mut s: std::net::TcpStream, for_s: u64) {
    use std::io::Write;
    std::thread::spawn(move || {
        let bytes = [0u8, 0, 16, 0].into_iter().chain(std::iter::repeat(b'{'));
        let end = Instant::now() + Duration::from_secs(for_s);
        for b in bytes {
            if Instant::now() >= end || s.write_all(&[b]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
}

/// A silent peer, a trickling one, and one that sends a hello and hangs up, at `addr`; the
/// first two are held until the returned value drops.
fn hostile_peers(addr: SocketAddr, trickle_for_s: u64) -> Vec<std::net::TcpStream> {
    use std::io::Write;
    let silent = std::net::TcpStream::connect(addr).unwrap();
    let slow = std::net::TcpStream::connect(addr).unwrap();
    trickle(slow.try_clone().unwrap(), trickle_for_s);
    let mut quitter = std::net::TcpStream::connect(addr).unwrap();
    let hello = br#"{"m":"hello","version":"x","role":"load","name":"quitter","nonce":"00"}"#;
    let mut frame = (hello.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(hello);
    quitter.write_all(&frame).unwrap();
    drop(quitter);
    vec![silent, slow]
}

/// `<field> <number>` in a log line, e.g. `round trip 1000.123 ms`.
fn figure(line: &str, field: &str) -> f64 {
    let at = line
        .find(field)
        .unwrap_or_else(|| panic!("no `{field}` in {line}"))
        + field.len();
    line[at..]
        .trim_start()
        .split(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|e| panic!("`{field}` in {line}: {e}"))
}

#[test]
fn silent_and_trickling_peers_do_not_hold_up_admission() {
    plugin_built();
    let dir = tempfile::tempdir().unwrap();
    let tok = token(dir.path(), "t");
    let (listen, out) = (loopback(), dir.path().join("out"));
    let scn = scenario(dir.path(), 1);
    let mut c = controller_args(&scn, &out, listen, &tok, &["--join-timeout", "30s"]);
    c.wait_for("controller listening", Duration::from_secs(20));
    // The default --handshake-timeout (10 s): the peers would hold a serial accept loop so long.
    let _peers = hostile_peers(listen, 15);
    std::thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    let mut srv = agent("srv", "server", listen, &tok, &[], &[]);
    let mut ld = agent("ld", "load", listen, &tok, &[], &[]);
    c.wait_for(
        "server agent srv (127.0.0.1) joined",
        Duration::from_secs(20),
    );
    c.wait_for("load agent ld (127.0.0.1) joined", Duration::from_secs(20));
    let joined = t.elapsed();
    eprintln!("both agents joined {joined:?} after they were started, beside 2 hostile peers");
    assert!(
        joined < Duration::from_secs(3),
        "the agents waited {joined:?} behind peers without the token"
    );
    c.wait_for(
        "closed the connection during the handshake",
        Duration::from_secs(5),
    );
    assert_eq!(c.exit(Duration::from_secs(60)), 0, "{}", c.text());
    assert_eq!(srv.exit(Duration::from_secs(10)), 0);
    assert_eq!(ld.exit(Duration::from_secs(10)), 0);
    assert!(
        !c.text().contains("does not hold the token"),
        "{}",
        c.text()
    );
    assert!(!c.text().contains("os error"), "{}", c.text());
}

#[test]
fn the_join_timeout_and_sigterm_are_honoured_while_peers_trickle() {
    let dir = tempfile::tempdir().unwrap();
    let tok = token(dir.path(), "t");
    let scn = scenario(dir.path(), 1);
    let out = dir.path().join("out");
    // The join timeout: 2 s, with a trickling peer that would keep a per-read wait going 12 s.
    let listen = loopback();
    let mut c = controller_args(&scn, &out, listen, &tok, &["--join-timeout", "2s"]);
    c.wait_for("controller listening", Duration::from_secs(20));
    let t = Instant::now();
    let _peers = hostile_peers(listen, 12);
    assert_eq!(c.exit(Duration::from_secs(20)), 7, "{}", c.text());
    let took = t.elapsed();
    eprintln!("--join-timeout 2s beside hostile peers: exited after {took:?}");
    assert!(took < Duration::from_secs(3), "exited after {took:?}");
    assert!(c.text().contains("0 of 2 agents joined within 2s"));
    // SIGTERM while they trickle.
    let listen = loopback();
    let mut c = controller_args(&scn, &out, listen, &tok, &["--join-timeout", "60s"]);
    c.wait_for("controller listening", Duration::from_secs(20));
    let _peers = hostile_peers(listen, 12);
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    unsafe { libc::kill(c.child.id() as i32, libc::SIGTERM) };
    assert_eq!(c.exit(Duration::from_secs(20)), 143, "{}", c.text());
    let took = t.elapsed();
    eprintln!("SIGTERM beside hostile peers: exited after {took:?}");
    assert!(
        took < Duration::from_secs(1),
        "exited {took:?} after SIGTERM"
    );
}

#[test]
fn an_agent_gives_up_on_a_trickling_controller_by_its_handshake_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let tok = token(dir.path(), "t");
    let listen = loopback();
    let fake = std::net::TcpListener::bind(listen).unwrap();
    std::thread::spawn(move || {
        if let Ok((s, _)) = fake.accept() {
            trickle(s, 12);
            std::thread::sleep(Duration::from_secs(12));
        }
    });
    let t = Instant::now();
    let mut a = agent(
        "ld",
        "load",
        listen,
        &tok,
        &[],
        &["--handshake-timeout", "1s"],
    );
    assert_eq!(a.exit(Duration::from_secs(20)), 7, "{}", a.text());
    let took = t.elapsed();
    eprintln!("the agent gave up on a trickling controller after {took:?}");
    assert!(took < Duration::from_secs(3), "gave up after {took:?}");
    assert!(
        a.text()
            .contains("the handshake with the controller did not finish within 1s"),
        "{}",
        a.text()
    );
    assert!(!a.text().contains("os error"), "{}", a.text());
}

/// How far apart the agents start: five times as long as an agent waits for a silent
/// controller (2 s), as Kubernetes pods or srun steps may start.
const APART: Duration = Duration::from_secs(10);

#[test]
fn agents_started_ten_seconds_apart_join_and_run() {
    plugin_built();
    let dir = tempfile::tempdir().unwrap();
    let tok = token(dir.path(), "t");
    let (listen, out) = (loopback(), dir.path().join("out"));
    let scn = scenario(dir.path(), 1);
    let mut c = controller_args(&scn, &out, listen, &tok, &["--join-timeout", "30s"]);
    let mut srv = agent("srv", "server", listen, &tok, &[], &[]);
    c.wait_for(
        "server agent srv (127.0.0.1) joined",
        Duration::from_secs(20),
    );
    std::thread::sleep(APART);
    assert!(
        srv.child.try_wait().unwrap().is_none(),
        "the server agent left while waiting: {}",
        srv.text()
    );
    let mut ld = agent("ld", "load", listen, &tok, &[], &[]);
    assert_eq!(c.exit(Duration::from_secs(60)), 0, "{}", c.text());
    assert_eq!(summary(&out)[0]["status"], "ok");
    assert_eq!(srv.exit(Duration::from_secs(10)), 0);
    assert_eq!(ld.exit(Duration::from_secs(10)), 0);
}

#[test]
fn an_agent_lost_while_waiting_gives_its_place_back() {
    plugin_built();
    let dir = tempfile::tempdir().unwrap();
    let tok = token(dir.path(), "t");
    let (listen, out) = (loopback(), dir.path().join("out"));
    let scn = scenario(dir.path(), 1);
    let mut c = controller_args(&scn, &out, listen, &tok, &["--join-timeout", "30s"]);
    let mut first = agent("srv-1", "server", listen, &tok, &[], &[]);
    c.wait_for(
        "server agent srv-1 (127.0.0.1) joined",
        Duration::from_secs(20),
    );
    first.kill();
    c.wait_for("its place is open again", Duration::from_secs(5));
    let mut srv = agent("srv-2", "server", listen, &tok, &[], &[]);
    let mut ld = agent("ld", "load", listen, &tok, &[], &[]);
    assert_eq!(c.exit(Duration::from_secs(60)), 0, "{}", c.text());
    assert_eq!(srv.exit(Duration::from_secs(10)), 0);
    assert_eq!(ld.exit(Duration::from_secs(10)), 0);
    let m = meta(&out);
    let names: Vec<&str> = m["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["srv-2", "ld"]);
}

/// A TCP proxy of this test's own on loopback: `listen` -> `to`, each direction through
/// `shape` (the first frame from the agent, then the rest in chunks as they come).
fn proxy(
    listen: SocketAddr,
    to: SocketAddr,
    delay: Duration,
    rewrite_hello: Option<fn(&str) -> String>,
) {
    let l = std::net::TcpListener::bind(listen).unwrap();
    std::thread::spawn(move || {
        for conn in l.incoming().take(4) {
            let Ok(a) = conn else { return };
            let Ok(b) = std::net::TcpStream::connect(to) else {
                return;
            };
            let (a2, b2) = (a.try_clone().unwrap(), b.try_clone().unwrap());
            std::thread::spawn(move || pipe(a, b, delay, rewrite_hello));
            std::thread::spawn(move || pipe(b2, a2, delay, None));
        }
    });
}

/// Copies `from` to `to`, each chunk `delay` after it arrived (a queue, so the bandwidth is
/// not cut), the first frame rewritten by `rewrite` when given.
fn pipe(
    mut from: std::net::TcpStream,
    mut to: std::net::TcpStream,
    delay: Duration,
    rewrite: Option<fn(&str) -> String>,
) {
    use std::io::{Read, Write};
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    std::thread::spawn(move || {
        for (due, chunk) in rx {
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            if to.write_all(&chunk).is_err() {
                break;
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Both);
    });
    if let Some(f) = rewrite {
        let mut len = [0u8; 4];
        if from.read_exact(&mut len).is_err() {
            return;
        }
        let mut hello = vec![0u8; u32::from_be_bytes(len) as usize];
        if from.read_exact(&mut hello).is_err() {
            return;
        }
        let changed = f(&String::from_utf8_lossy(&hello)).into_bytes();
        let mut frame = (changed.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&changed);
        let _ = tx.send((Instant::now() + delay, frame));
    }
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if tx
                    .send((Instant::now() + delay, buf[..n].to_vec()))
                    .is_err()
                {
                    break;
                }
            }
        }
    }
}

#[test]
fn a_hello_rewritten_on_the_way_ends_the_connection() {
    plugin_built();
    let dir = tempfile::tempdir().unwrap();
    let tok = token(dir.path(), "t");
    let (listen, out) = (loopback(), dir.path().join("out"));
    let scn = scenario(dir.path(), 1);
    let mut c = controller_args(&scn, &out, listen, &tok, &["--join-timeout", "4s"]);
    c.wait_for("controller listening", Duration::from_secs(20));
    // Someone on the path without the token makes a load agent the server, under a new name.
    let on_path = loopback();
    let to_server = |h: &str| {
        h.replace("\"role\":\"load\"", "\"role\":\"server\"")
            .replace("\"name\":\"ld\"", "\"name\":\"evil\"")
    };
    proxy(on_path, listen, Duration::ZERO, Some(to_server));
    let mut ld = agent("ld", "load", on_path, &tok, &[], &[]);
    assert_eq!(ld.exit(Duration::from_secs(20)), 7, "{}", ld.text());
    assert!(
        ld.text().contains("its hello was changed on the way"),
        "{}",
        ld.text()
    );
    c.wait_for(
        "refused: it could not prove it holds the token",
        Duration::from_secs(5),
    );
    assert_eq!(c.exit(Duration::from_secs(20)), 7, "{}", c.text());
    assert!(!c.text().contains("evil"), "{}", c.text());
    assert!(c.text().contains("0 of 2 agents joined"), "{}", c.text());
}

#[test]
fn a_one_second_round_trip_joins_and_measures_the_clock() {
    plugin_built();
    let dir = tempfile::tempdir().unwrap();
    let tok = token(dir.path(), "t");
    let (listen, out) = (loopback(), dir.path().join("out"));
    let scn = scenario(dir.path(), 1);
    let mut c = controller_args(&scn, &out, listen, &tok, &["--join-timeout", "30s"]);
    c.wait_for("controller listening", Duration::from_secs(20));
    // 500 ms each way: a 1 s round trip between the load agent and the controller.
    let far = loopback();
    proxy(far, listen, Duration::from_millis(500), None);
    let _srv = agent("srv", "server", listen, &tok, &[], &[]);
    let t = Instant::now();
    let mut ld = agent("ld", "load", far, &tok, &[], &[]);
    let line = c.wait_for("load agent ld (127.0.0.1) joined", Duration::from_secs(20));
    let took = t.elapsed();
    eprintln!("joined at 1 s round trip after {took:?}: {line}");
    let rtt = figure(&line, "round trip");
    assert!((1000.0..1500.0).contains(&rtt), "round trip {rtt} ms");
    // Same host, same clock: the offset is within its bound of zero.
    let (offset_s, within_ms) = (figure(&line, "clock offset"), figure(&line, "(within"));
    assert!(
        offset_s.abs() * 1e3 <= within_ms,
        "offset {offset_s} s, bound {within_ms} ms"
    );
    ld.wait_for("round trip 10", Duration::from_secs(5));
    // And the run goes through it: start instants announced four round trips ahead.
    assert_eq!(c.exit(Duration::from_secs(90)), 0, "{}", c.text());
    assert_eq!(summary(&out)[0]["status"], "ok");
    eprintln!("the run at 1 s round trip took {:?} in all", t.elapsed());
    assert_eq!(ld.exit(Duration::from_secs(10)), 0, "{}", ld.text());
}

#[test]
fn a_missing_or_invalid_scenario_exits_2_before_listening() {
    let dir = tempfile::tempdir().unwrap();
    let tok = token(dir.path(), "t");
    let out = dir.path().join("out");
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "name = \"bad\"\nruntimes = [\"epoll\"]\n[load]\nconnections = \"x\"\n",
    )
    .unwrap();
    for scn in [dir.path().join("missing.toml"), bad] {
        let listen = loopback();
        let mut c = controller_args(&scn, &out, listen, &tok, &["--join-timeout", "3s"]);
        assert_eq!(c.exit(Duration::from_secs(10)), 2, "{}", c.text());
        assert!(!c.text().contains("listening"), "{}", c.text());
    }
}

#[test]
fn agents_told_of_a_failed_run_exit_non_zero() {
    plugin_built();
    let dir = tempfile::tempdir().unwrap();
    let tok = token(dir.path(), "t");
    // The results cannot be written: a file stands where the output folder would be.
    let out = dir.path().join("file").join("out");
    std::fs::write(dir.path().join("file"), "").unwrap();
    let listen = loopback();
    let scn = scenario(dir.path(), 1);
    let mut c = controller_args(&scn, &out, listen, &tok, &["--join-timeout", "30s"]);
    let mut srv = agent("srv", "server", listen, &tok, &[], &[]);
    let mut ld = agent("ld", "load", listen, &tok, &[], &[]);
    assert_ne!(c.exit(Duration::from_secs(60)), 0, "{}", c.text());
    for a in [&mut srv, &mut ld] {
        assert_eq!(a.exit(Duration::from_secs(10)), 7, "{}", a.text());
        assert!(
            a.text().contains("the controller ended the run"),
            "{}",
            a.text()
        );
    }
}

#[test]
fn a_fifo_as_the_token_file_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let st = Command::new("mkfifo")
        .args(["-m", "600"])
        .arg(&fifo)
        .status();
    assert!(st.unwrap().success());
    let scn = scenario(dir.path(), 1);
    let listen = loopback();
    let mut c = controller_args(&scn, &dir.path().join("out"), listen, &fifo, &[]);
    let mut a = agent("ld", "load", listen, &fifo, &[], &[]);
    for p in [&mut c, &mut a] {
        assert_eq!(p.exit(Duration::from_secs(5)), 2, "{}", p.text());
        assert!(
            p.text().contains("not a regular file (it is a FIFO)"),
            "{}",
            p.text()
        );
    }
}

#[test]
fn a_hundred_idle_connections_from_one_host_do_not_keep_agents_out() {
    plugin_built();
    let dir = tempfile::tempdir().unwrap();
    let tok = token(dir.path(), "t");
    let (listen, out) = (loopback(), dir.path().join("out"));
    let scn = scenario(dir.path(), 1);
    let mut c = controller_args(&scn, &out, listen, &tok, &["--join-timeout", "30s"]);
    c.wait_for("controller listening", Duration::from_secs(20));
    // From 127.0.0.2, another host as far as the controller can tell; the agents come from
    // 127.0.0.1. The default --handshake-timeout (10 s) holds the idle ones' places.
    let idle: Vec<socket2::Socket> = (0..100)
        .map(|_| {
            let s =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            s.bind(&"127.0.0.2:0".parse::<SocketAddr>().unwrap().into())
                .unwrap();
            s.connect(&listen.into()).unwrap();
            s
        })
        .collect();
    c.wait_for(
        "8 handshakes from 127.0.0.2 are under way",
        Duration::from_secs(10),
    );
    let t = Instant::now();
    let mut srv = agent("srv", "server", listen, &tok, &[], &[]);
    let mut ld = agent("ld", "load", listen, &tok, &[], &[]);
    c.wait_for(
        "server agent srv (127.0.0.1) joined",
        Duration::from_secs(20),
    );
    c.wait_for("load agent ld (127.0.0.1) joined", Duration::from_secs(20));
    let joined = t.elapsed();
    eprintln!(
        "beside 100 idle connections from another address the agents joined after {joined:?}"
    );
    assert!(joined < Duration::from_secs(3), "joined after {joined:?}");
    drop(idle);
    assert_eq!(c.exit(Duration::from_secs(60)), 0, "{}", c.text());
    assert_eq!(srv.exit(Duration::from_secs(10)), 0);
    assert_eq!(ld.exit(Duration::from_secs(10)), 0);
}

#[test]
fn idle_connections_from_the_agents_own_address_delay_them_by_the_handshake_timeout_at_most() {
    plugin_built();
    let dir = tempfile::tempdir().unwrap();
    let tok = token(dir.path(), "t");
    let (listen, out) = (loopback(), dir.path().join("out"));
    let scn = scenario(dir.path(), 1);
    let extra = ["--join-timeout", "30s", "--handshake-timeout", "1s"];
    let mut c = controller_args(&scn, &out, listen, &tok, &extra);
    c.wait_for("controller listening", Duration::from_secs(20));
    let idle: Vec<std::net::TcpStream> = (0..100)
        .map(|_| std::net::TcpStream::connect(listen).unwrap())
        .collect();
    c.wait_for("are under way", Duration::from_secs(10));
    let t = Instant::now();
    let mut srv = agent("srv", "server", listen, &tok, &[], &[]);
    let mut ld = agent("ld", "load", listen, &tok, &[], &[]);
    c.wait_for(
        "server agent srv (127.0.0.1) joined",
        Duration::from_secs(20),
    );
    c.wait_for("load agent ld (127.0.0.1) joined", Duration::from_secs(20));
    let joined = t.elapsed();
    eprintln!("beside 100 idle connections from their address the agents joined after {joined:?}");
    // The idle ones hold their places for at most --handshake-timeout; the agents try again.
    assert!(joined < Duration::from_secs(4), "joined after {joined:?}");
    drop(idle);
    assert_eq!(c.exit(Duration::from_secs(60)), 0, "{}", c.text());
    assert_eq!(srv.exit(Duration::from_secs(10)), 0);
    assert_eq!(ld.exit(Duration::from_secs(10)), 0);
}
