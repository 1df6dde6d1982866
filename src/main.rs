fn main() -> std::process::ExitCode {
    mooring::cli::main()
}
