use clap::Parser;
use silirep::cli::{Cli, Command};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Report(args) => silirep::report::run(&args).map(|o| match o {
            silirep::report::Outcome::Ok => ExitCode::SUCCESS,
            silirep::report::Outcome::Problems => ExitCode::from(1),
        }),
        Command::Schema => {
            print!("{}", silirep_core::schema::JSON_SCHEMA_V1);
            Ok(ExitCode::SUCCESS)
        }
        Command::Measure(_) => Err(anyhow::anyhow!("measure is not wired yet")),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
