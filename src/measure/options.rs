//! `silirep measure`'s options, checked before a backend is opened, memory allocated or a
//! file written: every number becomes a loop bound in the harness or a field in the result
//! file, so a value out of range is an error that says what was meant, never a silent
//! substitute (`--threads 0` running one thread, `--target-ci 5` read as 500%).

use crate::cli::MeasureArgs;
use anyhow::{Result, bail, ensure};

/// Longest `--max-time` / `--warmup-time` accepted: an hour per configuration is already far
/// past what any suite needs; more is a typo (milliseconds given as seconds).
const MAX_SECONDS_PER_CONFIG: f64 = 3600.0;

/// The options that need more than clap's parsing, validated; returns the CI target as a
/// fraction.
pub fn check(args: &MeasureArgs) -> Result<f64> {
    if args.threads == Some(0) {
        let available = std::thread::available_parallelism()
            .map(|n| n.get().to_string())
            .unwrap_or_else(|_| "the".into());
        bail!(
            "--threads 0: at least 1 thread is needed; leave --threads out to use all {available} \
             available"
        );
    }
    for (flag, value, zero_allowed) in [
        ("--max-time", args.max_time, false),
        ("--warmup-time", args.warmup_time, true),
    ] {
        if let Some(v) = value {
            ensure!(
                v.is_finite() && (v > 0.0 || (zero_allowed && v == 0.0)),
                "{flag} must be a finite number {} 0, got {v}",
                if zero_allowed { "≥" } else { ">" }
            );
            ensure!(
                v <= MAX_SECONDS_PER_CONFIG,
                "{flag} is in seconds per configuration and at most {MAX_SECONDS_PER_CONFIG}, got {v}"
            );
        }
    }
    ensure!(
        args.peer_timeout.is_finite() && args.peer_timeout > 0.0 && args.peer_timeout <= 3600.0,
        "--peer-timeout is in seconds, above 0 and at most 3600, got {}",
        args.peer_timeout
    );
    if let Some(peer) = &args.peer {
        ensure!(
            peer.rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok()),
            "--peer {peer}: expected HOST:PORT of a `silirep link serve` (e.g. 192.168.2.1:5201)"
        );
    }
    if let Some(label) = &args.label {
        ensure!(
            !label.trim().is_empty(),
            "--label must name the machine; leave it out to use the accelerator or CPU model"
        );
    }
    if args.out.exists() && !args.out.is_dir() {
        bail!(
            "--out must be a directory: {} is a file",
            args.out.display()
        );
    }
    target_ci(&args.target_ci)
}

/// `--target-ci`: a percentage (`1%`, `0.5%`) or a fraction (`0.01`), above 0 and below 100%.
/// A bare number of 1 or more is refused rather than read as a fraction: `5` almost always
/// means 5%, and a 500% interval would stop every configuration at its minimum sample count.
pub fn target_ci(text: &str) -> Result<f64> {
    let t = text.trim();
    let hint = "give a percentage such as 1% or a fraction such as 0.01";
    if let Some(number) = t.strip_suffix('%') {
        let Ok(percent) = number.trim().parse::<f64>() else {
            bail!("--target-ci {text:?}: {number:?} is not a number; {hint}");
        };
        ensure!(
            percent.is_finite() && percent > 0.0 && percent < 100.0,
            "--target-ci {t}: a percentage must be above 0% and below 100%; {hint}"
        );
        return Ok(percent / 100.0);
    }
    let Ok(fraction) = t.parse::<f64>() else {
        bail!("--target-ci {text:?} is not a number; {hint}");
    };
    ensure!(
        fraction.is_finite() && fraction > 0.0,
        "--target-ci must be a finite number > 0, got {t}; {hint}"
    );
    ensure!(
        fraction < 1.0,
        "--target-ci {t} would be {}% of the median; did you mean {t}%? ({hint})",
        fraction * 100.0
    );
    Ok(fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_ci_takes_percentages_and_fractions() {
        assert_eq!(target_ci("1%").unwrap(), 0.01);
        assert_eq!(target_ci(" 0.5 % ").unwrap(), 0.005);
        assert_eq!(target_ci("0.01").unwrap(), 0.01);
        assert_eq!(target_ci("0.25").unwrap(), 0.25);
    }

    #[test]
    fn target_ci_refuses_nonsense_with_a_suggestion() {
        for (text, expected) in [
            (
                "5",
                "--target-ci 5 would be 500% of the median; did you mean 5%?",
            ),
            ("1", "did you mean 1%?"),
            ("-1", "must be a finite number > 0, got -1"),
            ("0", "must be a finite number > 0, got 0"),
            ("NaN", "must be a finite number > 0, got NaN"),
            ("inf", "must be a finite number > 0, got inf"),
            ("100%", "below 100%"),
            ("0%", "above 0%"),
            ("-2%", "above 0%"),
            ("x%", "\"x\" is not a number"),
            ("one", "is not a number; give a percentage such as 1%"),
        ] {
            let e = target_ci(text).unwrap_err().to_string();
            assert!(e.contains(expected), "{text}: {e}");
        }
    }
}
