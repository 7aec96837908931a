fn main() {
    let v = runbench_plugin_abi::locked_version("monoio");
    println!("cargo:rustc-env=RUNTIME_VERSION={v}");
    // What serves its HTTP, for the rows (`Plugin::HTTP_STACK`).
    println!(
        "cargo:rustc-env=HYPER_VERSION={}",
        runbench_plugin_abi::locked_version("hyper")
    );
    println!(
        "cargo:rustc-env=MONOIO_COMPAT_VERSION={}",
        runbench_plugin_abi::locked_version("monoio-compat")
    );
    println!(
        "cargo:rustc-env=HYPER_UTIL_VERSION={}",
        runbench_plugin_abi::locked_version("hyper-util")
    );
}
