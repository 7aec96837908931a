//! The header fields appended to ABI v1 (see plugins/abi docs): read only when the plugin's
//! `header_size` covers them. Needs the workspace built (`cargo build --workspace`).

mod support;

use runbench::plugin;

#[test]
fn a_plugin_older_than_the_needs_field_loads_and_needs_nothing() {
    let p = plugin::load(&support::plugin_file("runbench_testplugin_v1_header"))
        .expect("v1 header loads");
    assert_eq!(p.name(), "v1-header");
    assert_eq!(p.runtime_version(), "1.0.0");
    assert_eq!(p.needs(), 0);
    assert!(!p.needs_tap());
    // It serves what every plugin of the first ABI served: the cpu and sleep parts.
    assert_eq!(p.workloads(), runbench_plugin_abi::WORKLOAD_V1);
}

#[test]
fn a_plugin_without_a_timer_is_skipped_for_a_workload_that_sleeps_and_runs_one_that_does_not() {
    let _g = support::load_lock();
    let dir = tempfile::tempdir().unwrap();
    let plugin = support::plugin_file("runbench_testplugin_no_timer");
    for (sleep, status) in [("1ms", "skipped"), ("0s", "ok")] {
        let file = support::write(
            dir.path(),
            &format!("s{status}.toml"),
            &format!(
                "name = \"w{status}\"\n[server]\nsleep = \"{sleep}\"\n[load]\nconnections = 2\n\
                 payload_bytes = 64\nduration = \"300ms\"\n"
            ),
        );
        let out = support::runbench(&[
            "run",
            file.to_str().unwrap(),
            "--out",
            dir.path().join("out").to_str().unwrap(),
            "--plugin",
            plugin.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", support::text(&out));
        let rows = support::csv_rows(&dir.path().join(format!("out/w{status}/latest/summary.csv")));
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0]["status"], status, "{}", rows[0]["error"]);
        if status == "skipped" {
            assert!(
                rows[0]["error"].contains("does not serve the workload's sleep"),
                "{}",
                rows[0]["error"]
            );
        } else {
            assert!(support::num(&rows[0], "requests") > 0.0);
        }
    }
}

#[test]
fn embassy_asks_for_a_tap_device_and_tokio_does_not() {
    let embassy = plugin::load(&support::plugin_file("runbench_plugin_embassy")).unwrap();
    assert_eq!(embassy.name(), "embassy");
    assert!(embassy.needs_tap());
    let tokio = plugin::load(&support::plugin_file("runbench_plugin_tokio")).unwrap();
    assert!(!tokio.needs_tap());
}
