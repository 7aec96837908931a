fn main() {
    let v = runbench_plugin_abi::locked_version("embassy-executor");
    println!("cargo:rustc-env=RUNTIME_VERSION={v}");
    // What serves its HTTP, for the rows (`Plugin::HTTP_STACK`).
    for (var, krate) in [
        ("PICOSERVE_VERSION", "picoserve"),
        ("EMBASSY_NET_VERSION", "embassy-net"),
    ] {
        let v = runbench_plugin_abi::locked_version(krate);
        println!("cargo:rustc-env={var}={v}");
    }
}
