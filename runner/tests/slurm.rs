//! `runbench slurm render` for real: a Slurm cluster of two nodes on this one machine (two
//! slurmd on loopback ports, its own munged, config, state and PidFiles in a temporary folder,
//! all stopped at the end), the rendered script submitted with `sbatch --wait`, and its run
//! folder checked. Needs root and Debian's `slurm-wlm` and `munge` (`.ci/run` installs them);
//! without them it prints why and passes. Needs the epoll plugin built next to runbench.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

mod support;
use support::listen_port;

fn exe() -> &'static str {
    env!("CARGO_BIN_EXE_runbench")
}

fn missing() -> Option<String> {
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root (slurmd and munged run as root here)".into());
    }
    for tool in [
        "munged",
        "mungekey",
        "slurmctld",
        "slurmd",
        "sbatch",
        "sinfo",
    ] {
        let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .chain([PathBuf::from("/usr/sbin")])
            .any(|d| d.join(tool).exists());
        if !found {
            return Some(format!(
                "`{tool}` is not installed (apt-get install slurm-wlm munge)"
            ));
        }
    }
    None
}

/// The daemons this test started, stopped by their PidFiles when dropped.
struct Daemons {
    dir: PathBuf,
}

impl Drop for Daemons {
    fn drop(&mut self) {
        for f in [
            "slurmd-n0.pid",
            "slurmd-n1.pid",
            "slurmctld.pid",
            "munged.pid",
        ] {
            let Ok(pid) = std::fs::read_to_string(self.dir.join(f)) else {
                continue;
            };
            let Ok(pid) = pid.trim().parse::<i32>() else {
                continue;
            };
            unsafe { libc::kill(pid, libc::SIGTERM) };
            // Gone before its folder is removed; SIGKILL after 10 s.
            let deadline = Instant::now() + Duration::from_secs(10);
            while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {out:?}");
}

fn sbin(tool: &str) -> PathBuf {
    let p = Path::new("/usr/sbin").join(tool);
    if p.exists() {
        p
    } else {
        PathBuf::from(tool)
    }
}

/// The daemons' logs' last lines, for a cluster that did not come up.
fn log_tails(dir: &Path) -> String {
    let mut out = String::new();
    for log in [
        "slurmctld.log",
        "slurmd-n0.log",
        "slurmd-n1.log",
        "munged.log",
    ] {
        let text = std::fs::read_to_string(dir.join("log").join(log)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = &lines[lines.len().saturating_sub(8)..];
        out.push_str(&format!("\n--- {log}:\n{}", tail.join("\n")));
    }
    out
}

fn start_cluster(dir: &Path) -> (Daemons, PathBuf) {
    let d = dir.display();
    for sub in ["state", "log"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let daemons = Daemons {
        dir: dir.to_path_buf(),
    };
    let key = dir.join("munge.key");
    run(Command::new(sbin("mungekey"))
        .arg("-c")
        .arg("-f")
        .arg("-k")
        .arg(&key));
    run(Command::new(sbin("munged"))
        .arg("--force")
        .arg("-S")
        .arg(dir.join("munge.sock"))
        .arg("--key-file")
        .arg(&key)
        .arg("--pid-file")
        .arg(dir.join("munged.pid"))
        .arg("--log-file")
        .arg(dir.join("log/munged.log"))
        .arg("--seed-file")
        .arg(dir.join("munge.seed")));
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let host = host.trim().split('.').next().unwrap().to_string();
    let conf = dir.join("slurm.conf");
    std::fs::write(
        &conf,
        format!(
            "ClusterName=runbenchtest
SlurmctldHost={host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={d}/munge.sock
CredType=cred/munge
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool-%n
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd-%n.pid
SlurmctldLogFile={d}/log/slurmctld.log
SlurmdLogFile={d}/log/slurmd-%n.log
SlurmctldPort={ctl}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
SchedulerParameters=bf_interval=1
NodeName=n0 NodeHostname={host} NodeAddr=127.0.0.1 Port={p0} CPUs=1 State=UNKNOWN
NodeName=n1 NodeHostname={host} NodeAddr=127.0.0.1 Port={p1} CPUs=1 State=UNKNOWN
PartitionName=test Nodes=n0,n1 Default=YES MaxTime=INFINITE State=UP
",
            ctl = listen_port(),
            p0 = listen_port(),
            p1 = listen_port(),
        ),
    )
    .unwrap();
    run(Command::new(sbin("slurmctld")).arg("-f").arg(&conf));
    for n in ["n0", "n1"] {
        run(Command::new(sbin("slurmd"))
            .arg("-f")
            .arg(&conf)
            .arg("-N")
            .arg(n));
    }
    // Up in 2-10 s on a quiet machine; once, in CI right after the load tests, not in 30 s.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let out = Command::new("sinfo")
            .args(["-h", "-o", "%D %t"])
            .env("SLURM_CONF", &conf)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        if text.trim() == "2 idle" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the test cluster did not come up: sinfo said {text:?}; {}",
            log_tails(dir)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    (daemons, conf)
}

#[test]
fn the_rendered_batch_script_runs_a_server_and_a_load_agent_through_slurm() {
    if let Some(why) = missing() {
        eprintln!("skipped: {why}");
        return;
    }
    let plugin = Path::new(exe()).with_file_name("librunbench_plugin_epoll.so");
    assert!(
        plugin.exists(),
        "{} missing: `cargo build -p runbench-plugin-epoll`",
        plugin.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let (_daemons, conf) = start_cluster(&dir.path().join("slurm"));
    let scenario = dir.path().join("s.toml");
    std::fs::write(
        &scenario,
        "name = \"slurmtest\"\nruntimes = [\"epoll\"]\n[server]\nthreads = 1\ncpus = [0]\n\
         [load]\nconnections = 8\npayload_bytes = 64\nwarmup = \"1s\"\nduration = \"2s\"\ncpus = [1]\n\
         [shutdown]\ngrace = \"1s\"\n",
    )
    .unwrap();
    let script = dir.path().join("run.sbatch");
    run(Command::new(exe())
        .args(["slurm", "render"])
        .arg(&scenario)
        .args(["--load-nodes", "1", "--runbench", exe(), "-o"])
        .arg(&script));
    let out = Command::new("timeout")
        .args(["120", "sbatch", "--wait"])
        .arg(&script)
        .current_dir(dir.path())
        .env("SLURM_CONF", &conf)
        .output()
        .unwrap();
    let log: String = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".out"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    eprintln!("{log}");
    assert!(out.status.success(), "sbatch --wait: {out:?}\n{log}");
    let run_dir = dir.path().join("output/slurmtest/latest");
    let summary = std::fs::read_to_string(run_dir.join("summary.csv")).unwrap();
    assert!(
        summary.lines().nth(1).unwrap().contains(",ok,"),
        "{summary}"
    );
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("meta.json")).unwrap()).unwrap();
    let names: Vec<&str> = meta["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["server", "load-0"]);
    assert!(log.contains("load process 0 on agent load-0"), "{log}");
    // The token was removed at the end.
    assert!(!std::fs::read_dir(dir.path()).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with(".runbench-token")));
}
