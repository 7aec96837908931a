fn main() {
    let v = runbench_plugin_abi::locked_version("glommio");
    println!("cargo:rustc-env=RUNTIME_VERSION={v}");
}
