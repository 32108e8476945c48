//! `silirep link serve`: the peer end of the network link benchmark (`silirep-link`).

use crate::cli::{LinkCommand, LinkServeArgs};
use anyhow::{Context, Result};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub fn run(command: &LinkCommand) -> Result<()> {
    match command {
        LinkCommand::Serve(args) => serve(args),
    }
}

fn serve(args: &LinkServeArgs) -> Result<()> {
    anyhow::ensure!(
        args.timeout.is_finite() && args.timeout > 0.0 && args.timeout <= 3600.0,
        "--timeout {}: expected seconds between 0 and 3600",
        args.timeout
    );
    let listener = std::net::TcpListener::bind(&args.listen)
        .with_context(|| format!("--listen {}: cannot listen there", args.listen))?;
    let stop = Arc::new(AtomicBool::new(false));
    let on_signal = Arc::clone(&stop);
    ctrlc::set_handler(move || on_signal.store(true, Ordering::SeqCst))
        .context("installing the Ctrl-C handler")?;
    eprintln!(
        "serving link benchmarks on {} (Ctrl-C stops); on the other machine: silirep measure --peer {} --kernels interconnect",
        listener.local_addr()?,
        args.listen
    );
    silirep_link::serve(
        listener,
        silirep_link::ServeOptions {
            timeout: Duration::from_secs_f64(args.timeout),
            verbose: args.verbose,
        },
        stop,
    )
    .context("serving")?;
    eprintln!("stopped");
    Ok(())
}
