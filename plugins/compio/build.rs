fn main() {
    let v = runbench_plugin_abi::locked_version("compio");
    println!("cargo:rustc-env=RUNTIME_VERSION={v}");
}
