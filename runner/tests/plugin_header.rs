//! The header fields appended to ABI v1 (see plugins/abi docs): read only when the plugin's
//! `header_size` covers them. Needs the workspace built (`cargo build --workspace`).

use runbench::plugin;
use std::path::{Path, PathBuf};

fn built(lib: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_runbench")).with_file_name(format!("lib{lib}.so"));
    assert!(
        path.exists(),
        "{} is missing; run `cargo build --workspace` first",
        path.display()
    );
    path
}

#[test]
fn a_plugin_older_than_the_needs_field_loads_and_needs_nothing() {
    let p = plugin::load(&built("runbench_testplugin_v1_header")).expect("v1 header loads");
    assert_eq!(p.name(), "v1-header");
    assert_eq!(p.runtime_version(), "1.0.0");
    assert_eq!(p.needs(), 0);
    assert!(!p.needs_tap());
}

#[test]
fn embassy_asks_for_a_tap_device_and_tokio_does_not() {
    let embassy = plugin::load(&built("runbench_plugin_embassy")).unwrap();
    assert_eq!(embassy.name(), "embassy");
    assert!(embassy.needs_tap());
    let tokio = plugin::load(&built("runbench_plugin_tokio")).unwrap();
    assert!(!tokio.needs_tap());
}
