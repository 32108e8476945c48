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
        Command::Link(command) => silirep::link::run(&command).map(|()| ExitCode::SUCCESS),
        Command::Predict(args) => silirep::predict::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Schema => {
            print!("{}", silirep_core::schema::JSON_SCHEMA_V1);
            Ok(ExitCode::SUCCESS)
        }
        Command::Measure(args) => silirep::measure::run(&args).map(|o| match o {
            silirep::measure::Outcome::Completed => ExitCode::SUCCESS,
            // The shell convention for "stopped by SIGINT".
            silirep::measure::Outcome::Interrupted => ExitCode::from(130),
        }),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
