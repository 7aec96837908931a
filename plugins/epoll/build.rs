fn main() {
    // The lock also holds mio 0.8 (monoio's fallback driver); this plugin is built on mio 1.
    let v = runbench_plugin_abi::locked_version_matching("mio", "1.");
    println!("cargo:rustc-env=RUNTIME_VERSION={v}");
    // What serves its HTTP, for the rows (`Plugin::HTTP_STACK`).
    println!(
        "cargo:rustc-env=HTTPARSE_VERSION={}",
        runbench_plugin_abi::locked_version("httparse")
    );
}
