fn main() {
    // The runtime's version, and what serves its HTTP (`Plugin::HTTP_STACK`), for the rows.
    runbench_plugin_abi::export_locked_versions(&[
        ("RUNTIME_VERSION", "embassy-executor"),
        ("PICOSERVE_VERSION", "picoserve"),
        ("EMBASSY_NET_VERSION", "embassy-net"),
    ]);
}
