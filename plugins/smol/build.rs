fn main() {
    let v = runbench_plugin_abi::locked_version("smol");
    println!("cargo:rustc-env=RUNTIME_VERSION={v}");
    // What serves its HTTP, for the rows (`Plugin::HTTP_STACK`).
    println!(
        "cargo:rustc-env=HYPER_VERSION={}",
        runbench_plugin_abi::locked_version("hyper")
    );
    println!(
        "cargo:rustc-env=SMOL_HYPER_VERSION={}",
        runbench_plugin_abi::locked_version("smol-hyper")
    );
}
