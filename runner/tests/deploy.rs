//! `runbench k8s render` and `runbench slurm render` against golden files
//! (`RUNBENCH_UPDATE_GOLDEN=1` rewrites them), the manifests validated against the Kubernetes
//! schemas by PyPI's `kubernetes-validate` where it is installed, and the values the schemas
//! do not check (completion mode, QoS, pinning) checked here.

use std::path::{Path, PathBuf};
use std::process::Command;

fn exe() -> &'static str {
    env!("CARGO_BIN_EXE_runbench")
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/deploy")
}

/// The fixture token, 0600 as runbench demands (git keeps only the executable bit).
fn token(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let t = dir.join("token");
    std::fs::copy(fixtures().join("token"), &t).unwrap();
    std::fs::set_permissions(&t, std::fs::Permissions::from_mode(0o600)).unwrap();
    t
}

fn golden(name: &str, got: &str) {
    let path = fixtures().join(name);
    if std::env::var_os("RUNBENCH_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (RUNBENCH_UPDATE_GOLDEN=1 writes it)",
            path.display()
        )
    });
    assert_eq!(
        got,
        want,
        "{} differs (RUNBENCH_UPDATE_GOLDEN=1 rewrites it)",
        path.display()
    );
}

fn render_k8s(dir: &Path) -> PathBuf {
    let out = dir.join("k8s");
    let r = Command::new(exe())
        .args(["k8s", "render"])
        .arg(fixtures().join("scenario.toml"))
        .args([
            "--image",
            "registry.example/runbench:1",
            "--server-node",
            "node-s",
        ])
        .args([
            "--load-nodes",
            "node-a,node-b",
            "--allow-target",
            "10.0.0.0/16",
            "--token-file",
        ])
        .arg(token(dir))
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(r.status.success(), "{r:?}");
    out
}

const MANIFESTS: [&str; 5] = [
    "00-scenario.yaml",
    "01-token.yaml",
    "02-controller.yaml",
    "03-server-agent.yaml",
    "04-load-agents.yaml",
];

#[test]
fn k8s_manifests_match_their_golden_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = render_k8s(dir.path());
    for f in MANIFESTS.iter().chain(&["Dockerfile"]) {
        golden(
            &format!("k8s/{f}"),
            &std::fs::read_to_string(out.join(f)).unwrap(),
        );
    }
}

#[test]
fn k8s_manifests_validate_against_the_kubernetes_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let out = render_k8s(dir.path());
    let Ok(v) = Command::new("kubernetes-validate")
        .arg("--version")
        .output()
    else {
        eprintln!(
            "skipped: kubernetes-validate is not installed (pip install kubernetes-validate)"
        );
        return;
    };
    assert!(v.status.success());
    for f in MANIFESTS {
        let r = Command::new("kubernetes-validate")
            .arg("--strict")
            .arg(out.join(f))
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&r.stdout),
            String::from_utf8_lossy(&r.stderr)
        );
        assert!(
            r.status.success() && text.contains("passed") && !text.contains("ERROR"),
            "{f}: {text}"
        );
    }
}

#[test]
fn k8s_values_the_schemas_do_not_check() {
    let dir = tempfile::tempdir().unwrap();
    let out = render_k8s(dir.path());
    let read = |f: &str| std::fs::read_to_string(out.join(f)).unwrap();
    let load = read("04-load-agents.yaml");
    for want in [
        "completionMode: Indexed",
        "completions: 2",
        "parallelism: 2",
        "backoffLimit: 0",
        "restartPolicy: Never",
        "podAntiAffinity:",
        "topologyKey: kubernetes.io/hostname",
        "job-completion-index",
        "\"--shard\"\n            - \"$(SHARD)\"",
    ] {
        assert!(load.contains(want), "load agents lack {want}");
    }
    let server = read("03-server-agent.yaml");
    for want in [
        "hostNetwork: true",
        "kubernetes.io/hostname: \"node-s\"",
        "restartPolicy: Never",
    ] {
        assert!(server.contains(want), "server agent lacks {want}");
    }
    // Guaranteed QoS: requests equal limits, CPUs whole (4 server CPUs, 2 load CPUs).
    assert!(server.contains("requests:\n          cpu: \"4\"\n          memory: 2Gi\n        limits:\n          cpu: \"4\"\n          memory: 2Gi"), "{server}");
    assert!(load.contains("requests:\n              cpu: \"2\"\n              memory: 1Gi\n            limits:\n              cpu: \"2\"\n              memory: 1Gi"), "{load}");
    let ctl = read("02-controller.yaml");
    assert!(
        ctl.contains("--agents 3")
            && ctl.contains("backoffLimit: 0")
            && ctl.contains("kind: Service")
    );
    // The token: the fixture's, readable by its owner only.
    let secret = read("01-token.yaml");
    assert!(secret.contains(
        "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZgo="
    ));
    assert!(server.contains("defaultMode: 256") && load.contains("defaultMode: 256"));
}

#[test]
fn slurm_script_matches_its_golden_file_and_parses() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run.sbatch");
    let r = Command::new(exe())
        .args(["slurm", "render"])
        .arg(fixtures().join("scenario.toml"))
        .args(["--load-nodes", "2", "--runbench", "/shared/runbench", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(r.status.success(), "{r:?}");
    let text = std::fs::read_to_string(&out).unwrap();
    golden("slurm/run.sbatch", &text);
    for want in [
        "#SBATCH hetjob",
        "--exclusive",
        "--cpu-bind=cores",
        "--shard \"$SLURM_PROCID\"",
        "--het-group=0",
        "--het-group=1",
        "--agents 3",
    ] {
        assert!(text.contains(want), "the script lacks {want}");
    }
    let syntax = Command::new("bash").arg("-n").arg(&out).output().unwrap();
    assert!(syntax.status.success(), "bash -n: {syntax:?}");
}

#[test]
fn cpu_numbers_for_other_machines_may_overlap_and_unpinned_load_requests_its_threads() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("big.toml");
    // The server's 64 CPUs and the load's (unpinned, 8 threads) are on different hosts.
    let server_cpus: Vec<String> = (0..64).map(|c| c.to_string()).collect();
    std::fs::write(
        &scenario,
        format!(
            "name = \"big\"\n[server]\ncpus = [{}]\n[load]\nconnections = 50000\npayload_bytes = 64\nduration = \"10s\"\nthreads = 8\n",
            server_cpus.join(", ")
        ),
    )
    .unwrap();
    let out = dir.path().join("k8s");
    let r = Command::new(exe())
        .args(["k8s", "render"])
        .arg(&scenario)
        .args([
            "--image",
            "i",
            "--server-node",
            "s",
            "--load-nodes",
            "a",
            "--allow-target",
            "10.0.0.0/8",
            "-o",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(r.status.success(), "{r:?}");
    let server = std::fs::read_to_string(out.join("03-server-agent.yaml")).unwrap();
    let load = std::fs::read_to_string(out.join("04-load-agents.yaml")).unwrap();
    assert!(server.contains("cpu: \"64\""), "{server}");
    assert!(load.contains("cpu: \"8\""), "{load}");
}
