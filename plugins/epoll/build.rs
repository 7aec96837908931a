fn main() {
    // The lock also holds mio 0.8 (monoio's fallback driver); this plugin is built on mio 1.
    let v = runbench_plugin_abi::locked_version_matching("mio", "1.");
    println!("cargo:rustc-env=RUNTIME_VERSION={v}");
    // What serves its HTTP (`Plugin::HTTP_STACK`), for the rows.
    runbench_plugin_abi::export_locked_versions(&[("HTTPARSE_VERSION", "httparse")]);
}
