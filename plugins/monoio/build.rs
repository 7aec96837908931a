fn main() {
    // The runtime's version, and what serves its HTTP (`Plugin::HTTP_STACK`), for the rows.
    runbench_plugin_abi::export_locked_versions(&[
        ("RUNTIME_VERSION", "monoio"),
        ("HYPER_VERSION", "hyper"),
        ("MONOIO_COMPAT_VERSION", "monoio-compat"),
        ("HYPER_UTIL_VERSION", "hyper-util"),
    ]);
}
