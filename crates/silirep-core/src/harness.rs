//! Turns a [`Backend`] into measurements: warm-up, verification before any timing counts,
//! repetitions until the median is known to the requested precision, and a record of every
//! failure. Every backend goes through this one loop.

use crate::backend::{Backend, KernelError, PreparedKernel};
use crate::kernels::KernelSpec;
use crate::median;
use crate::schema::{
    ErrorKind, Measurement, MeasurementError, Settings, Verification, VerificationStatus,
};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Timing batches are sized to last about this long, so per-call overhead (a thread-pool
/// wake-up, a command-buffer commit) is amortised while the stop checks stay frequent.
const TARGET_BATCH_S: f64 = 0.05;

/// How one configuration is measured. Built from [`Settings`], so the file records exactly
/// the rules its numbers were taken under.
#[derive(Debug, Clone)]
pub struct StoppingRule {
    pub target_relative_ci: f64,
    pub max_time_s: f64,
    pub min_samples: usize,
    pub max_samples: usize,
    pub warmup_iterations: u32,
    /// Untimed running after the warm-up iterations, in seconds.
    pub warmup_time_s: f64,
}

impl From<&Settings> for StoppingRule {
    fn from(s: &Settings) -> Self {
        StoppingRule {
            target_relative_ci: s.target_relative_ci,
            max_time_s: s.max_time_per_config_s,
            min_samples: s.min_samples.max(1) as usize,
            max_samples: s.max_samples.max(s.min_samples).max(1) as usize,
            warmup_iterations: s.warmup_iterations,
            warmup_time_s: s.warmup_time_s,
        }
    }
}

/// Why sampling ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The 95% CI of the median is within the target.
    Converged,
    TimeCap,
    SampleCap,
    Interrupted,
}

impl StopReason {
    pub fn name(self) -> &'static str {
        match self {
            StopReason::Converged => "converged",
            StopReason::TimeCap => "time_cap",
            StopReason::SampleCap => "sample_cap",
            StopReason::Interrupted => "interrupted",
        }
    }
}

impl StoppingRule {
    /// The stopping decision for the samples so far, `None` to keep going.
    pub fn should_stop(&self, samples: &[f64], elapsed_s: f64) -> Option<StopReason> {
        if samples.len() >= self.max_samples {
            return Some(StopReason::SampleCap);
        }
        if samples.len() >= self.min_samples
            && let Some(rel) = median::relative_ci_half_width(samples)
            && rel <= self.target_relative_ci
        {
            return Some(StopReason::Converged);
        }
        // The time cap only applies once the minimum is reached: fewer samples could not
        // support a confidence interval at all.
        if samples.len() >= self.min_samples && elapsed_s >= self.max_time_s {
            return Some(StopReason::TimeCap);
        }
        None
    }

    /// Iterations for the next timing call, from the latest estimate of one sample's wall time.
    fn next_batch(&self, taken: usize, estimate_s: f64) -> u32 {
        let remaining = self.max_samples.saturating_sub(taken).max(1);
        let by_time = if estimate_s > 0.0 {
            (TARGET_BATCH_S / estimate_s).floor() as usize
        } else {
            1
        };
        by_time.clamp(1, remaining).min(u32::MAX as usize) as u32
    }
}

/// Measures one configuration. Never panics on backend failure: every outcome, including
/// allocation failures and wrong results, becomes a [`Measurement`] with its reason.
pub fn measure(
    backend: &mut dyn Backend,
    spec: &KernelSpec,
    rule: &StoppingRule,
    seed: u64,
    stop: &AtomicBool,
) -> Measurement {
    let mut measurement = Measurement {
        flops: spec.flops(),
        bytes: spec.bytes(),
        spec: spec.clone(),
        samples_s: Vec::new(),
        warmup_iterations: 0,
        verification: Verification::not_run("not reached"),
        error: None,
        details: BTreeMap::new(),
        topology: None,
    };
    // A configuration whose operands alone exceed the device's memory cannot run; asking the
    // backend to allocate it would at best fail and at worst abort the process (a host
    // allocator has no way to say no), losing the run. Recorded like any other failure.
    if let Some(e) = exceeds_memory(spec, backend.memory_bytes()) {
        measurement.error = Some(e.to_measurement_error());
        return measurement;
    }
    let mut prepared = match backend.prepare(spec, seed) {
        Ok(p) => p,
        Err(e) => {
            measurement.error = Some(e.to_measurement_error());
            return measurement;
        }
    };
    if let Err(e) = run_prepared(prepared.as_mut(), rule, stop, &mut measurement) {
        measurement.samples_s.clear();
        measurement.error = Some(e.to_measurement_error());
    }
    measurement.details.extend(prepared.details());
    measurement.topology = prepared.topology();
    measurement
}

/// `Some(OutOfMemory)` when `spec`'s resident operands ([`KernelSpec::footprint_bytes`]) are
/// more than the device has (`memory_bytes`, when the backend knows it).
pub fn exceeds_memory(spec: &KernelSpec, memory_bytes: Option<u64>) -> Option<KernelError> {
    let needed = spec.footprint_bytes()?;
    let available = memory_bytes? as f64;
    (needed > available).then(|| {
        KernelError::OutOfMemory(format!(
            "{} {} at {} needs at least {needed:.0} bytes for its operands; the device has \
             {available:.0} bytes of memory",
            spec.name(),
            spec.precision_label(),
            spec.params_label()
        ))
    })
}

fn run_prepared(
    kernel: &mut dyn PreparedKernel,
    rule: &StoppingRule,
    stop: &AtomicBool,
    out: &mut Measurement,
) -> Result<(), KernelError> {
    // Warm-up: first launches pay for JIT compilation, page faults and clock ramp-up.
    // What one sample costs in wall time, which sizes the timing batches. Not the samples
    // themselves: a backend that times groups of runs and divides (short GPU launches,
    // collectives) returns per-run times far below what each sample takes to produce.
    let mut sample_wall_s = 0.0;
    let mut warmup = if rule.warmup_iterations > 0 {
        timed(kernel, rule.warmup_iterations, &mut sample_wall_s)?
    } else {
        Vec::new()
    };
    out.warmup_iterations = warmup.len() as u32;

    out.verification = kernel.verify()?;
    if out.verification.status == VerificationStatus::Failed {
        // A wrong kernel must not report a number.
        out.error = Some(MeasurementError {
            kind: ErrorKind::VerificationFailed,
            message: format!(
                "output differs from the reference ({}; max rel error {}, tolerance {})",
                out.verification.method,
                fmt_opt(out.verification.max_rel_error),
                fmt_opt(out.verification.tolerance)
            ),
        });
        return Ok(());
    }

    // Then, once the output is known to be right, the kernel keeps running for
    // `warmup_time_s`: a power-capped chip starts at its boost clock and settles lower only
    // after a few hundred milliseconds of load (an H100 on a large GEMM: 1980 MHz for ~0.3 s,
    // then ~1500 MHz at its 700 W cap). Timing from a cold start would report a burst rate
    // that depends on what ran before, not the sustained rate a real workload sees.
    let warming = Instant::now();
    while warming.elapsed().as_secs_f64() < rule.warmup_time_s && !stop.load(Ordering::SeqCst) {
        let batch = rule.next_batch(0, sample_wall_s);
        warmup.extend(timed(kernel, batch, &mut sample_wall_s)?);
    }
    out.warmup_iterations = warmup.len() as u32;

    kernel.begin_timing();
    let started = Instant::now();
    let reason = loop {
        if stop.load(Ordering::SeqCst) {
            break StopReason::Interrupted;
        }
        let batch = rule.next_batch(out.samples_s.len(), sample_wall_s);
        let times = timed(kernel, batch, &mut sample_wall_s)?;
        if let Some(bad) = times.iter().find(|t| !(t.is_finite() && **t > 0.0)) {
            return Err(KernelError::Backend(format!(
                "backend returned a non-positive iteration time ({bad})"
            )));
        }
        out.samples_s.extend_from_slice(&times);
        if let Some(reason) = rule.should_stop(&out.samples_s, started.elapsed().as_secs_f64()) {
            break reason;
        }
    };
    out.details
        .insert("stop_reason".into(), reason.name().to_string());
    if reason == StopReason::Interrupted {
        out.samples_s.clear();
        out.error = Some(MeasurementError {
            kind: ErrorKind::Interrupted,
            message: "interrupted before this configuration finished".into(),
        });
    }
    Ok(())
}

/// `kernel.time(iterations)`, updating `sample_wall_s` to what one sample of this call cost:
/// its wall time per sample, or the median sample where that is larger (a backend that
/// reports times without spending them, as the tests' scripted one does).
fn timed(
    kernel: &mut dyn PreparedKernel,
    iterations: u32,
    sample_wall_s: &mut f64,
) -> Result<Vec<f64>, KernelError> {
    let started = Instant::now();
    let times = kernel.time(iterations)?;
    if !times.is_empty() {
        let wall = started.elapsed().as_secs_f64() / times.len() as f64;
        *sample_wall_s = wall.max(median::median(&times).unwrap_or(0.0));
    }
    Ok(times)
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.3e}"))
        .unwrap_or_else(|| "n/a".into())
}

/// Compares `actual` with `expected` entry by entry: passes when every
/// `|a − e| ≤ tolerance · max(1, |e|)`. The mixed absolute/relative bound keeps entries near
/// zero (where relative error explodes) from failing a correct low-precision kernel.
pub fn compare_outputs(
    actual: &[f64],
    expected: &[f64],
    tolerance: f64,
    method: &str,
) -> Verification {
    let mut max_abs = 0.0f64;
    let mut max_rel = 0.0f64;
    let mut ok = actual.len() == expected.len() && !actual.is_empty();
    for (a, e) in actual.iter().zip(expected) {
        let abs = (a - e).abs();
        if !abs.is_finite() {
            ok = false;
            max_abs = f64::INFINITY;
            max_rel = f64::INFINITY;
            continue;
        }
        let rel = abs / e.abs().max(1.0);
        max_abs = max_abs.max(abs);
        max_rel = max_rel.max(rel);
        if rel > tolerance {
            ok = false;
        }
    }
    Verification {
        status: if ok {
            VerificationStatus::Passed
        } else {
            VerificationStatus::Failed
        },
        method: method.to_string(),
        max_abs_error: Some(max_abs),
        max_rel_error: Some(max_rel),
        tolerance: Some(tolerance),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::Dtype;
    use crate::schema::{Accelerator, BackendInfo};

    /// A backend whose kernel "takes" a scripted time and returns a scripted answer.
    struct Scripted {
        times: Vec<f64>,
        wrong: bool,
        fail_prepare: Option<KernelError>,
        stop_after: Option<(usize, &'static AtomicBool)>,
        /// From this iteration on, every iteration takes this long (a clock that settled).
        settles: Option<(usize, f64)>,
        /// Sleep for the scripted time, so wall-clock warm-up sees it pass.
        real_time: bool,
        /// Wall time each sample takes, whatever time it reports (a backend timing groups
        /// of runs and dividing).
        sample_wall_s: Option<f64>,
        memory_bytes: Option<u64>,
    }

    struct ScriptedKernel<'a> {
        parent: &'a Scripted,
        next: usize,
    }

    impl Backend for Scripted {
        fn name(&self) -> &'static str {
            "scripted"
        }
        fn info(&self) -> BackendInfo {
            BackendInfo::default()
        }
        fn accelerator(&self) -> Option<Accelerator> {
            None
        }
        fn last_level_cache_bytes(&self) -> Option<u64> {
            None
        }
        fn memory_bytes(&self) -> Option<u64> {
            self.memory_bytes
        }
        fn suite(&self, _suite: crate::backend::Suite) -> Vec<KernelSpec> {
            vec![spec()]
        }
        fn prepare<'a>(
            &'a mut self,
            _spec: &KernelSpec,
            _seed: u64,
        ) -> Result<Box<dyn PreparedKernel + 'a>, KernelError> {
            if let Some(e) = self.fail_prepare.clone() {
                return Err(e);
            }
            Ok(Box::new(ScriptedKernel {
                parent: self,
                next: 0,
            }))
        }
    }

    impl PreparedKernel for ScriptedKernel<'_> {
        fn time(&mut self, iterations: u32) -> Result<Vec<f64>, KernelError> {
            let mut out = Vec::new();
            for _ in 0..iterations {
                let t = match self.parent.settles {
                    Some((from, settled)) if self.next >= from => settled,
                    _ => self.parent.times[self.next % self.parent.times.len()],
                };
                if self.parent.real_time {
                    std::thread::sleep(std::time::Duration::from_secs_f64(t));
                }
                if let Some(wall) = self.parent.sample_wall_s {
                    std::thread::sleep(std::time::Duration::from_secs_f64(wall));
                }
                out.push(t);
                self.next += 1;
                if let Some((n, flag)) = self.parent.stop_after
                    && self.next >= n
                {
                    flag.store(true, Ordering::SeqCst);
                }
            }
            Ok(out)
        }
        fn verify(&mut self) -> Result<Verification, KernelError> {
            let expected = [1.0, 2.0, 3.0];
            let actual = if self.parent.wrong {
                [1.0, 2.0, 3.5]
            } else {
                [1.0, 2.0, 3.0 + 1e-9]
            };
            Ok(compare_outputs(&actual, &expected, 1e-6, "scripted"))
        }
    }

    fn spec() -> KernelSpec {
        KernelSpec::Gemm {
            m: 8,
            n: 8,
            k: 8,
            dtype: Dtype::F32,
        }
    }

    fn rule() -> StoppingRule {
        StoppingRule {
            target_relative_ci: 0.01,
            max_time_s: 10.0,
            min_samples: 10,
            max_samples: 500,
            warmup_iterations: 2,
            warmup_time_s: 0.0,
        }
    }

    fn scripted(times: Vec<f64>) -> Scripted {
        Scripted {
            times,
            wrong: false,
            fail_prepare: None,
            stop_after: None,
            settles: None,
            real_time: false,
            sample_wall_s: None,
            memory_bytes: None,
        }
    }

    #[test]
    fn timed_warm_up_starts_timing_at_the_settled_rate() {
        // 1 ms per iteration for the first 40 iterations (boost clock), 1.25 ms after.
        let settling = || Scripted {
            settles: Some((40, 1.25e-3)),
            real_time: true,
            ..scripted(vec![1e-3])
        };
        let cold = measure(
            &mut settling(),
            &spec(),
            &rule(),
            1,
            &AtomicBool::new(false),
        );
        assert_eq!(median::median(&cold.samples_s), Some(1e-3));
        let warm_rule = StoppingRule {
            warmup_time_s: 0.1,
            ..rule()
        };
        let warm = measure(
            &mut settling(),
            &spec(),
            &warm_rule,
            1,
            &AtomicBool::new(false),
        );
        assert_eq!(median::median(&warm.samples_s), Some(1.25e-3));
        assert!(warm.warmup_iterations >= 40, "{}", warm.warmup_iterations);
    }

    #[test]
    fn steady_timings_converge_at_the_minimum() {
        let mut b = scripted(vec![1e-3]);
        let m = measure(&mut b, &spec(), &rule(), 1, &AtomicBool::new(false));
        assert!(m.error.is_none());
        assert_eq!(m.verification.status, VerificationStatus::Passed);
        // One 50 ms batch of 1 ms iterations, already converged.
        assert_eq!(m.samples_s.len(), 50);
        assert_eq!(m.details["stop_reason"], "converged");
        assert_eq!(m.warmup_iterations, 2);
    }

    #[test]
    fn noisy_timings_run_to_the_sample_cap() {
        // Alternating 1 ms / 2 ms never gets a 1% CI.
        let mut b = scripted(vec![1e-3, 2e-3]);
        let m = measure(&mut b, &spec(), &rule(), 1, &AtomicBool::new(false));
        assert_eq!(m.samples_s.len(), 500);
        assert_eq!(m.details["stop_reason"], "sample_cap");
    }

    #[test]
    fn batches_are_sized_by_what_a_sample_costs_not_what_it_reports() {
        // Samples that report 1–2 µs per run but take 5 ms each to produce (a group of runs
        // divided): sized by the reported time, the first batch would be 500 samples, 2.5 s,
        // ten times the 0.25 s cap. Sized by wall time, batches are ~10 samples.
        let mut b = Scripted {
            sample_wall_s: Some(5e-3),
            ..scripted(vec![1e-6, 2e-6])
        };
        let capped = StoppingRule {
            max_time_s: 0.25,
            ..rule()
        };
        let m = measure(&mut b, &spec(), &capped, 1, &AtomicBool::new(false));
        assert_eq!(m.details["stop_reason"], "time_cap");
        assert!(m.samples_s.len() <= 100, "{} samples", m.samples_s.len());
    }

    #[test]
    fn stopping_rule_needs_min_samples_before_time_cap() {
        let r = rule();
        assert_eq!(r.should_stop(&[1.0, 2.0], 100.0), None);
        let noisy: Vec<f64> = (0..10).map(|i| 1.0 + (i % 2) as f64).collect();
        assert_eq!(r.should_stop(&noisy, 100.0), Some(StopReason::TimeCap));
        assert_eq!(r.should_stop(&noisy, 1.0), None);
    }

    #[test]
    fn a_wrong_kernel_reports_no_number() {
        let mut b = scripted(vec![1e-3]);
        b.wrong = true;
        let m = measure(&mut b, &spec(), &rule(), 1, &AtomicBool::new(false));
        assert!(m.samples_s.is_empty());
        assert_eq!(m.verification.status, VerificationStatus::Failed);
        assert_eq!(m.error.unwrap().kind, ErrorKind::VerificationFailed);
    }

    #[test]
    fn preparation_failure_is_recorded() {
        let mut b = scripted(vec![1e-3]);
        b.fail_prepare = Some(KernelError::OutOfMemory("64 GiB requested".into()));
        let m = measure(&mut b, &spec(), &rule(), 1, &AtomicBool::new(false));
        let err = m.error.unwrap();
        assert_eq!(err.kind, ErrorKind::OutOfMemory);
        assert!(err.message.contains("64 GiB"));
    }

    #[test]
    fn a_configuration_larger_than_memory_is_a_recorded_failure_not_an_allocation() {
        let mut b = scripted(vec![1e-3]);
        // Preparing would succeed: the check must come first and never reach the backend.
        b.memory_bytes = Some(1 << 30);
        let huge = spec().with_primary_size(1_000_000_000);
        let m = measure(&mut b, &huge, &rule(), 1, &AtomicBool::new(false));
        let err = m.error.unwrap();
        assert_eq!(err.kind, ErrorKind::OutOfMemory);
        assert!(err.message.contains("m=1000000000"), "{}", err.message);
        assert!(
            err.message.contains("1073741824 bytes of memory"),
            "{}",
            err.message
        );
        assert!(m.samples_s.is_empty());
        let fits = measure(&mut b, &spec(), &rule(), 1, &AtomicBool::new(false));
        assert!(fits.error.is_none());
    }

    #[test]
    fn interruption_discards_the_unfinished_configuration() {
        static STOP: AtomicBool = AtomicBool::new(false);
        let mut b = scripted(vec![1e-3, 2e-3]);
        b.stop_after = Some((100, &STOP));
        let m = measure(&mut b, &spec(), &rule(), 1, &STOP);
        assert!(m.samples_s.is_empty());
        assert_eq!(m.error.unwrap().kind, ErrorKind::Interrupted);
    }

    #[test]
    fn compare_outputs_mixes_absolute_and_relative() {
        let v = compare_outputs(&[1e-9, 100.0], &[0.0, 100.001], 1e-4, "t");
        assert_eq!(v.status, VerificationStatus::Passed);
        let v = compare_outputs(&[f64::NAN], &[1.0], 1e-4, "t");
        assert_eq!(v.status, VerificationStatus::Failed);
        let v = compare_outputs(&[], &[], 1e-4, "t");
        assert_eq!(v.status, VerificationStatus::Failed);
    }
}
