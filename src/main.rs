fn main() {
    std::process::exit(agentrace::main_entry());
}
