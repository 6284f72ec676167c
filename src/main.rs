use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = gate::cli::Cli::parse();
    gate::exit::finish(gate::run(cli))
}
