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
}

#[test]
fn embassy_asks_for_a_tap_device_and_tokio_does_not() {
    let embassy = plugin::load(&support::plugin_file("runbench_plugin_embassy")).unwrap();
    assert_eq!(embassy.name(), "embassy");
    assert!(embassy.needs_tap());
    let tokio = plugin::load(&support::plugin_file("runbench_plugin_tokio")).unwrap();
    assert!(!tokio.needs_tap());
}
