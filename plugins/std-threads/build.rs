// The "runtime" is the standard library, so its version is the compiler's.
fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .expect("running rustc --version");
    let text = String::from_utf8(out.stdout).expect("rustc --version is UTF-8");
    // "rustc 1.95.0 (59807616e 2026-04-14)" -> "1.95.0"
    let v = text
        .split_whitespace()
        .nth(1)
        .expect("a version in rustc --version");
    println!("cargo:rustc-env=RUNTIME_VERSION={v}");
    // What serves its HTTP (`Plugin::HTTP_STACK`), for the rows.
    runbench_plugin_abi::export_locked_versions(&[("HTTPARSE_VERSION", "httparse")]);
}
