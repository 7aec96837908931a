fn main() {
    std::process::exit(runbench::cli::main());
}
