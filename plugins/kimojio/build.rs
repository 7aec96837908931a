fn main() {
    let v = runbench_plugin_abi::locked_version("kimojio");
    println!("cargo:rustc-env=RUNTIME_VERSION={v}");
}
