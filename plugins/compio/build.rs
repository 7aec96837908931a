fn main() {
    // The runtime's version, and what serves its HTTP (`Plugin::HTTP_STACK`), for the rows.
    runbench_plugin_abi::export_locked_versions(&[
        ("RUNTIME_VERSION", "compio"),
        ("HYPER_VERSION", "hyper"),
        ("SMOL_HYPER_VERSION", "smol-hyper"),
    ]);
}
