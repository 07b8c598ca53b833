fn main() -> std::process::ExitCode {
    posthorn::commands::main()
}
