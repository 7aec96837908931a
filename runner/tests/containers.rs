//! The image `runbench k8s render` deploys, built from the repository's Dockerfile and run: no
//! registry needed. A Debian bookworm base is made with `debootstrap --variant=minbase` from the
//! mirror this machine's apt uses (once: the tarball is kept under cargo's target tmp folder
//! and the image in podman's storage), the Dockerfile's runtime stage is built on it from this
//! build's runbench and plugins (`--build-context binaries=DIR`), and a multi-host run goes
//! through it on an internal podman network this test creates (its own subnet): a controller, a
//! server agent and two load agents, each in a container of its own, the token a file mounted
//! read-only (0600), the load fenced to the subnet with `--allow-target`. Then one load agent's
//! container is killed mid-window, and one is disconnected from the network mid-window.
//! Every container, the network and the image are removed at the end, also when a check fails.
//!
//! Needs root, podman, runc and debootstrap (`.ci/run` installs them) and a bookworm mirror in
//! /etc/apt/sources.list(.d); without them it prints why and passes. This machine's quirks:
//! crun refuses its hybrid cgroups (`--runtime runc`), and podman's default ulimits cannot be
//! set here (a containers.conf with `default_ulimits = []`, through CONTAINERS_CONF).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod support;
use support::proc::Proc;

/// The base image, kept between runs (it is the cache, with its tarball).
const BASE: &str = "localhost/runbench-test-base:bookworm";
/// Where the token is mounted in every container.
const TOKEN_IN: &str = "/run/runbench/token";

fn exe() -> &'static str {
    env!("CARGO_BIN_EXE_runbench")
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn found(tool: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(tool))
        .find(|p| p.exists())
}

/// The mirror this machine's apt fetches bookworm from (deb822 `.sources` or one-line `.list`).
fn bookworm_mirror() -> Option<String> {
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(d) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<PathBuf> = d.flatten().map(|e| e.path()).collect();
        more.sort();
        files.extend(more);
    }
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        let found = match f.extension().and_then(|e| e.to_str()) {
            Some("sources") => deb822_mirror(&text),
            Some("list") => one_line_mirror(&text),
            _ => None,
        };
        if found.is_some() {
            return found;
        }
    }
    None
}

fn deb822_mirror(text: &str) -> Option<String> {
    for stanza in text.split("\n\n") {
        let field = |name: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.split_whitespace().map(String::from).collect::<Vec<_>>())
                .unwrap_or_default()
        };
        let deb = field("Types:").iter().any(|t| t == "deb");
        if deb && field("Suites:").iter().any(|s| s == "bookworm") {
            return field("URIs:").into_iter().next();
        }
    }
    None
}

fn one_line_mirror(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let mut words = l.split_whitespace().filter(|w| !w.starts_with('['));
        let (kind, uri, suite) = (words.next()?, words.next()?, words.next()?);
        (kind == "deb" && suite == "bookworm").then(|| uri.to_string())
    })
}

/// Why this test cannot run here, if it cannot.
fn missing() -> Option<String> {
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root (podman networks with fixed addresses, debootstrap)".into());
    }
    for tool in ["podman", "runc", "debootstrap"] {
        if found(tool).is_none() {
            return Some(format!(
                "`{tool}` is not installed (apt-get install podman runc debootstrap)"
            ));
        }
    }
    if bookworm_mirror().is_none() {
        return Some(
            "no Debian bookworm mirror in /etc/apt/sources.list(.d) to debootstrap".into(),
        );
    }
    None
}

/// Runs `cmd` within `limit` (killed past it): its stdout, or why it failed.
fn run(cmd: &mut Command, limit: Duration) -> Result<String, String> {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{what}: {e}"))?;
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().map_err(|e| format!("{what}: {e}"))? {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{what}: still running after {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    if status.success() {
        Ok(out)
    } else {
        Err(format!("{what}: {status}: {}", err.trim()))
    }
}

/// podman with this machine's quirks: runc, and a containers.conf without default ulimits.
struct Podman {
    conf: PathBuf,
}

impl Podman {
    fn new(dir: &Path) -> Podman {
        let conf = dir.join("containers.conf");
        std::fs::write(&conf, "[containers]\ndefault_ulimits = []\n").unwrap();
        Podman { conf }
    }

    fn argv(&self) -> Vec<String> {
        vec![
            "env".into(),
            format!("CONTAINERS_CONF={}", self.conf.display()),
            "podman".into(),
            "--runtime".into(),
            "runc".into(),
        ]
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", &self.conf)
            .args(["--runtime", "runc"])
            .args(args);
        c
    }

    fn ok(&self, args: &[&str], limit: Duration) -> Result<String, String> {
        run(&mut self.cmd(args), limit)
    }
}

/// What this test made in podman, removed when dropped (also when a check fails): the
/// containers, then the network, then the image. The base image stays: it is the cache.
struct Made {
    podman: Podman,
    prefix: String,
    containers: Vec<String>,
    network: Option<String>,
    image: Option<String>,
}

impl Made {
    /// Podman objects of this test are named `<prefix>-...`.
    fn new(podman: Podman) -> Made {
        Made {
            podman,
            prefix: format!("runbench-t{}", std::process::id()),
            containers: Vec::new(),
            network: None,
            image: None,
        }
    }

    fn container(&mut self, what: &str) -> String {
        let name = format!("{}-{what}", self.prefix);
        self.containers.push(name.clone());
        name
    }

    /// Names of this test's containers, networks and images that podman still lists.
    fn leftovers(podman: &Podman, prefix: &str) -> Vec<String> {
        let name = format!("name={prefix}");
        let image = format!("reference=localhost/{prefix}");
        let mut left = Vec::new();
        for (what, filter, format) in [
            ("ps", &name, "{{.Names}}"),
            ("network", &name, "{{.Name}}"),
            ("images", &image, "{{.Repository}}"),
        ] {
            let mut args = if what == "network" {
                vec!["network", "ls"]
            } else {
                vec![what, "-a"]
            };
            args.extend(["--filter", filter, "--format", format]);
            let out = podman.ok(&args, Duration::from_secs(60)).unwrap();
            left.extend(out.lines().map(String::from));
        }
        left
    }
}

impl Drop for Made {
    fn drop(&mut self) {
        let limit = Duration::from_secs(60);
        let p = &self.podman;
        if !self.containers.is_empty() {
            let mut args = vec!["rm", "--force", "--ignore", "--time", "0"];
            args.extend(self.containers.iter().map(String::as_str));
            // --ignore: some were never created, or removed already (--rm).
            if let Err(e) = p.ok(&args, limit) {
                eprintln!("removing the containers: {e}");
            }
        }
        if let Some(n) = &self.network {
            if let Err(e) = p.ok(&["network", "rm", "-f", n], limit) {
                eprintln!("removing the network: {e}");
            }
        }
        if let Some(i) = &self.image {
            if let Err(e) = p.ok(&["rmi", "-f", i], limit) {
                eprintln!("removing the image: {e}");
            }
        }
    }
}

/// The base image: imported from the cached tarball, which debootstrap makes the first time.
fn base_image(p: &Podman) {
    if p.ok(&["image", "exists", BASE], Duration::from_secs(60))
        .is_ok()
    {
        return;
    }
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("containers");
    let tarball = cache.join("base-bookworm.tar");
    if !tarball.exists() {
        make_base(&cache, &tarball);
    }
    let t = tarball.display().to_string();
    p.ok(&["import", "--quiet", &t, BASE], Duration::from_secs(180))
        .expect("importing the base");
}

/// debootstrap's minbase bookworm, trimmed as debian:bookworm-slim is, into `tarball`.
fn make_base(cache: &Path, tarball: &Path) {
    std::fs::create_dir_all(cache).unwrap();
    let root = tempfile::tempdir_in(cache).unwrap();
    let mirror = bookworm_mirror().unwrap();
    let t = Instant::now();
    run(
        Command::new(found("debootstrap").unwrap())
            .args(["--variant=minbase", "bookworm"])
            .arg(root.path())
            .arg(&mirror),
        Duration::from_secs(600),
    )
    .expect("debootstrap");
    // No package cache or lists, manuals, locales, or documents but the copyright files.
    run(
        Command::new("sh")
            .arg("-c")
            .arg(
                "rm -rf var/cache/apt/archives/*.deb var/cache/apt/*.bin var/lib/apt/lists/* \
                 usr/share/man/* usr/share/locale/* usr/share/info/* \
                 && find usr/share/doc -type f ! -name copyright -delete",
            )
            .current_dir(root.path()),
        Duration::from_secs(120),
    )
    .expect("trimming the base");
    let partial = tarball.with_extension("partial");
    run(
        Command::new("tar")
            .arg("-C")
            .arg(root.path())
            .arg("-cf")
            .arg(&partial)
            .arg("."),
        Duration::from_secs(300),
    )
    .expect("packing the base");
    std::fs::rename(&partial, tarball).unwrap();
    eprintln!("base made from {mirror} in {:.0?}", t.elapsed());
}

/// The Dockerfile's runtime stage on the base, from this build's runbench and plugins (the
/// `binaries` build context: a folder with copies of them, not all of target/debug).
fn build_image(made: &mut Made, tmp: &Path) -> String {
    let ctx = tmp.join("context");
    std::fs::create_dir(&ctx).unwrap();
    for e in std::fs::read_dir(support::target_dir()).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if name == "runbench" || (name.starts_with("librunbench_plugin_") && name.ends_with(".so"))
        {
            std::fs::copy(e.path(), ctx.join(&name)).unwrap();
        }
    }
    let tag = format!("localhost/{}:test", made.prefix);
    made.image = Some(tag.clone());
    let binaries = format!("binaries={}", ctx.display());
    let base = format!("BASE={BASE}");
    let t = Instant::now();
    // --layers=false: no intermediate images left behind; the host's network for apt-get.
    made.podman
        .ok(
            &[
                "build",
                "--layers=false",
                "--network",
                "host",
                "--build-context",
                &binaries,
                "--build-arg",
                &base,
                "-t",
                &tag,
                &repo().display().to_string(),
            ],
            Duration::from_secs(400),
        )
        .expect("building the image");
    let size = made
        .podman
        .ok(
            &["image", "inspect", "--format", "{{.Size}}", &tag],
            Duration::from_secs(60),
        )
        .unwrap();
    eprintln!(
        "image {tag} built in {:.0?}: {} MB",
        t.elapsed(),
        size.trim().parse::<u64>().unwrap_or(0) / 1_000_000
    );
    tag
}

/// The runtimes of the workspace's plugins (every folder under plugins/ but the ABI crate).
fn workspace_runtimes() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo().join("plugins"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("Cargo.toml").exists() && e.file_name() != "abi")
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    names
}

/// `runbench list` and `runbench --version` in the image; no compiler in it.
fn check_image(made: &mut Made, image: &str) {
    let limit = Duration::from_secs(120);
    let name = made.container("list");
    let list = made
        .podman
        .ok(
            &[
                "run",
                "--rm",
                "--name",
                &name,
                "--network",
                "none",
                image,
                "list",
            ],
            limit,
        )
        .expect("runbench list in the image");
    let mut listed: Vec<String> = list
        .lines()
        .filter(|l| l.contains(" /opt/runbench/librunbench_plugin_"))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect();
    listed.sort();
    assert_eq!(listed, workspace_runtimes(), "{list}");
    let name = made.container("version");
    let version = made
        .podman
        .ok(
            &[
                "run",
                "--rm",
                "--name",
                &name,
                "--network",
                "none",
                image,
                "--version",
            ],
            limit,
        )
        .expect("runbench --version in the image");
    let here = run(Command::new(exe()).arg("--version"), limit).unwrap();
    assert_eq!(version, here, "the image holds this build's runbench");
    if let Ok(head) = run(
        Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(repo()),
        limit,
    ) {
        assert!(version.contains(head.trim()), "{version} names {head}");
    }
    // Runtime files only: no compiler, no package cache.
    let name = made.container("compiler");
    let extra = made
        .podman
        .ok(
            &[
                "run",
                "--rm",
                "--name",
                &name,
                "--network",
                "none",
                "--entrypoint",
                "sh",
                image,
                "-c",
                "for c in cc gcc rustc cargo; do command -v $c; done; \
                       ls /var/cache/apt/*.bin /var/cache/apt/archives/*.deb 2>/dev/null; true",
            ],
            limit,
        )
        .expect("looking for a compiler in the image");
    assert_eq!(extra, "", "in the image");
    eprintln!("in the image: {} {}", version.trim(), listed.join(", "));
}

/// An internal network (no route out) with a /24 of its own; the subnet's first three octets.
fn network(made: &mut Made) -> String {
    let name = format!("{}-net", made.prefix);
    let pid = std::process::id();
    for k in 0..16 {
        let subnet = format!("10.{}.{}", 150 + pid % 50, (pid / 50 + k) % 256);
        let cidr = format!("{subnet}.0/24");
        let args = [
            "network",
            "create",
            "--internal",
            "--disable-dns",
            "--subnet",
            &cidr,
            &name,
        ];
        match made.podman.ok(&args, Duration::from_secs(60)) {
            Ok(_) => {
                made.network = Some(name);
                return subnet;
            }
            // Taken by another network: the next one.
            Err(e) if e.contains("subnet") => eprintln!("{e}"),
            Err(e) => panic!("{e}"),
        }
    }
    panic!("no free 10.x.y.0/24 for the test network");
}

/// A scenario of a few seconds: 8 connections to the epoll plugin.
fn scenario(dir: &Path, duration_s: u32) -> PathBuf {
    support::cluster_scenario(dir, duration_s)
}

/// The image, the network and the token: what every run uses.
struct Site {
    image: String,
    net: String,
    subnet: String,
    token: PathBuf,
    dir: PathBuf,
}

/// One run: the controller and its agents (server, load-a, load-b), each in its container.
struct Run {
    c: Proc,
    agents: Vec<Proc>,
    names: Vec<String>,
    out: PathBuf,
    ips: Vec<String>,
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// Starts run number `case` (its own addresses), controller first, agents close together.
fn start(made: &mut Made, site: &Site, case: u32, duration_s: u32) -> Run {
    let scn = scenario(&site.dir, duration_s);
    let out = site.dir.join(format!("out-{case}"));
    std::fs::create_dir(&out).unwrap();
    let ips: Vec<String> = (0..4)
        .map(|i| format!("{}.{}", site.subnet, 10 + 4 * case + i))
        .collect();
    let listen = format!("{}:7070", ips[0]);
    let roles = ["controller", "server", "load-a", "load-b"];
    let names: Vec<String> = roles
        .iter()
        .map(|r| made.container(&format!("{case}-{r}")))
        .collect();
    let token = format!("{}:{TOKEN_IN}:ro", site.token.display());
    let container = |i: usize, mounts: &[String], args: Vec<String>| {
        let mut argv = made.podman.argv();
        argv.extend(s(&["run", "--name", &names[i], "--network", &site.net]));
        argv.extend(s(&["--ip", &ips[i], "-v", &token]));
        for m in mounts {
            argv.extend(s(&["-v", m]));
        }
        argv.push(site.image.clone());
        argv.extend(args);
        Proc::spawn(roles[i], &argv)
    };
    let c = container(
        0,
        &[
            format!("{}:/scenario.toml:ro", scn.display()),
            format!("{}:/results", out.display()),
        ],
        s(&[
            "run",
            "/scenario.toml",
            "--out",
            "/results",
            "--agents",
            "3",
            "--listen",
            &listen,
            "--token-file",
            TOKEN_IN,
            "--join-timeout",
            "60s",
        ]),
    );
    c.wait_for("controller listening", Duration::from_secs(60));
    let fence = format!("{}.0/24", site.subnet);
    let agents: Vec<Proc> = (1..4)
        .map(|i| {
            let mut args = s(&["agent", "--role", if i == 1 { "server" } else { "load" }]);
            args.extend(s(&["--name", roles[i], "--controller", &listen]));
            args.extend(s(&["--token-file", TOKEN_IN, "--connect-timeout", "60s"]));
            if i > 1 {
                args.extend(s(&["--allow-target", &fence]));
            }
            container(i, &[], args)
        })
        .collect();
    for r in &roles[1..] {
        c.wait_for(&format!("agent {r} ("), Duration::from_secs(60));
    }
    Run {
        c,
        agents,
        names,
        out,
        ips,
    }
}

fn row(out: &Path) -> std::collections::HashMap<String, String> {
    let rows = support::csv_rows(&out.join("cluster").join("latest").join("summary.csv"));
    assert_eq!(rows.len(), 1, "{rows:?}");
    rows.into_iter().next().unwrap()
}

/// The row's columns a person reads: status, requests, req/s, p99, error.
fn show(r: &std::collections::HashMap<String, String>) -> String {
    format!(
        "status={} requests={} requests_per_sec={} p99_us={} error={:?}",
        r["status"], r["requests"], r["requests_per_sec"], r["p99_us"], r["error"]
    )
}

/// Every agent measured, the merge is the sum of the load agents', the row is the merge.
fn all_in_containers(made: &mut Made, site: &Site) {
    let mut k = start(made, site, 0, 2);
    assert_eq!(k.c.exit(Duration::from_secs(120)), 0, "{}", k.c.text());
    for a in &mut k.agents {
        assert_eq!(a.exit(Duration::from_secs(30)), 0, "{}", a.text());
    }
    let text = k.c.text();
    let shards: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("load process") && l.contains("requests="))
        .collect();
    assert_eq!(shards.len(), 2, "{text}");
    assert!(
        shards.iter().all(|l| support::log_num(l, "requests") > 0),
        "{text}"
    );
    let merged = text.lines().find(|l| l.contains("merged:")).unwrap();
    let sum = |f: &str| shards.iter().map(|l| support::log_num(l, f)).sum::<u64>();
    assert_eq!(support::log_num(merged, "requests"), sum("requests"));
    assert_eq!(
        support::log_num(merged, "histogram_count"),
        sum("histogram_count")
    );
    let r = row(&k.out);
    assert_eq!(r["status"], "ok", "{r:?}");
    assert_eq!(
        r["requests"].parse::<u64>().unwrap(),
        support::log_num(merged, "requests")
    );
    let meta = support::read_meta(&k.out.join("cluster").join("latest"));
    let mut addrs: Vec<(String, String)> = meta["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap().into(),
                a["address"].as_str().unwrap().into(),
            )
        })
        .collect();
    addrs.sort();
    let want: Vec<(String, String)> = ["load-a", "load-b", "server"]
        .iter()
        .zip([&k.ips[2], &k.ips[3], &k.ips[1]])
        .map(|(n, ip)| (n.to_string(), ip.to_string()))
        .collect();
    assert_eq!(addrs, want, "each agent from its container's address");
    eprintln!("containers: {merged}; shards {shards:?}; row {}", show(&r));
}

/// One load agent's container killed mid-window: its row fails naming it, the rest is kept.
fn a_killed_container(made: &mut Made, site: &Site) {
    let mut k = start(made, site, 1, 4);
    k.c.wait_for("] measure", Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(2));
    made.podman
        .ok(
            &["kill", "--signal", "KILL", &k.names[3]],
            Duration::from_secs(60),
        )
        .expect("podman kill");
    assert_eq!(k.agents[2].exit(Duration::from_secs(30)), 137, "killed");
    assert_eq!(k.c.exit(Duration::from_secs(120)), 1, "{}", k.c.text());
    let r = row(&k.out);
    assert_eq!(r["status"], "failed", "{r:?}");
    let e = &r["error"];
    assert!(
        e.contains(&format!("load agent load-b ({})", k.ips[3]))
            && e.contains("lost at")
            && e.contains("4 connection(s) it held stopped"),
        "{e}"
    );
    assert!(
        r["requests"].parse::<u64>().unwrap() > 0,
        "the survivor's measurement is kept: {r:?}"
    );
    assert!(k
        .out
        .join("cluster")
        .join("latest")
        .join("percentiles.csv")
        .exists());
    for a in &mut k.agents[..2] {
        assert_eq!(a.exit(Duration::from_secs(30)), 0, "{}", a.text());
    }
    eprintln!("killed container: row {}", show(&r));
}

/// Seconds from `from` (UTC) to the time of day `hms` ("HH:MM:SS.mmm"), across midnight too.
fn seconds_to(from: chrono::DateTime<chrono::Utc>, hms: &str) -> f64 {
    let t = chrono::NaiveTime::parse_from_str(hms, "%H:%M:%S%.3f").unwrap();
    let d = (t - from.time()).num_milliseconds() as f64 / 1000.0;
    if d < -43_200.0 {
        d + 86_400.0
    } else {
        d
    }
}

/// One load agent disconnected mid-window: both sides see the silence within the budget.
fn a_disconnected_container(made: &mut Made, site: &Site) {
    let mut k = start(made, site, 2, 6);
    k.c.wait_for("] measure", Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(2));
    let cut = chrono::Utc::now();
    made.podman
        .ok(
            &["network", "disconnect", &site.net, &k.names[2]],
            Duration::from_secs(60),
        )
        .expect("podman network disconnect");
    let cut_took = (chrono::Utc::now() - cut).num_milliseconds() as f64 / 1000.0;
    assert_eq!(k.agents[1].exit(Duration::from_secs(30)), 7, "gave up");
    assert!(k.agents[1].text().contains("the controller was silent"));
    assert_eq!(k.c.exit(Duration::from_secs(120)), 1, "{}", k.c.text());
    let r = row(&k.out);
    assert_eq!(r["status"], "failed", "{r:?}");
    let e = &r["error"];
    let lost = format!("load agent load-a ({}) lost at ", k.ips[2]);
    let at = e.find(&lost).unwrap_or_else(|| panic!("{e}")) + lost.len();
    assert!(e[at..].contains("no frame for"), "{e}");
    let hms = e[at..].split('Z').next().unwrap();
    // Silent for 2 s after its last frame (at most a heartbeat, 250 ms, before the cut), found
    // at the next read timeout (250 ms later at most); one second more for a loaded machine.
    let after = seconds_to(cut, hms);
    assert!(
        (1.75..=3.5 + cut_took).contains(&after),
        "lost {after:.3} s after the cut began (the cut took {cut_took:.3} s): {e}"
    );
    assert!(r["requests"].parse::<u64>().unwrap() > 0, "{r:?}");
    eprintln!(
        "disconnected container: lost {after:.3} s after the cut began; row {}",
        show(&r)
    );
}

#[test]
fn the_image_runs_a_multi_host_run_and_its_faults_in_containers() {
    if let Some(why) = missing() {
        eprintln!("skipped: {why}");
        return;
    }
    let t = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let podman = Podman::new(tmp.path());
    base_image(&podman);
    let mut made = Made::new(podman);
    let prefix = made.prefix.clone();
    let image = build_image(&mut made, tmp.path());
    check_image(&mut made, &image);
    let subnet = network(&mut made);
    let token = tmp.path().join("token");
    run(
        Command::new(exe()).arg("token").arg(&token),
        Duration::from_secs(30),
    )
    .unwrap();
    let site = Site {
        image,
        net: made.network.clone().unwrap(),
        subnet,
        token,
        dir: tmp.path().to_path_buf(),
    };
    all_in_containers(&mut made, &site);
    a_killed_container(&mut made, &site);
    a_disconnected_container(&mut made, &site);
    let podman = Podman::new(tmp.path());
    drop(made);
    assert_eq!(
        Made::leftovers(&podman, &prefix),
        Vec::<String>::new(),
        "removed"
    );
    eprintln!("the container test took {:.0?}", t.elapsed());
}
