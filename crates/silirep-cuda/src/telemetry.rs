//! What the GPU's clock, power draw and temperature were while a kernel was timed, read
//! through NVML (`crate::nvml`).
//!
//! Why it is recorded: a data-center GPU on a large GEMM runs into its power cap within a
//! fraction of a second and lowers its clock (an H100 SXM: 1980 MHz boost, ~1500 MHz at
//! 700 W), so the same kernel is ~25% slower sustained than in a burst. A result file that
//! says which clock its samples ran at, and what limited it, can be compared honestly.
//!
//! Telemetry is optional: where NVML cannot be opened (a container without the library, a
//! driver without a symbol) measurements go on and simply carry no readings.

use crate::nvml::{Handle, Nvml};
use std::collections::BTreeMap;

/// The clock-event ("throttle") reason bits of `nvml.h`, with the names reports use.
/// The idle bit is left out: between timing batches the GPU is briefly idle by design.
const REASONS: [(u64, &str); 8] = [
    (0x2, "application clock setting"),
    (0x4, "software power cap"),
    (0x8, "hardware slowdown"),
    (0x10, "sync boost"),
    (0x20, "software thermal slowdown"),
    (0x40, "hardware thermal slowdown"),
    (0x80, "hardware power brake"),
    (0x100, "display clock setting"),
];

/// One reading, taken right after a timed batch finished. Each field is `None` where the
/// GPU does not report it (power on some GeForce, vGPU and MIG set-ups).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    pub sm_clock_mhz: Option<u32>,
    /// NVML's power reading; on recent GPUs an average over the last second or so, so it
    /// also covers the untimed warm-up just before.
    pub power_w: Option<f64>,
    pub temperature_c: Option<u32>,
    /// `nvmlClocksEventReasons` bits active at that moment.
    pub reasons: Option<u64>,
}

/// NVML, open for the GPU being measured.
pub struct Telemetry {
    nvml: Nvml,
    device: Handle,
}

impl Telemetry {
    /// `None` when NVML is not there or does not know the GPU at `pci_bus_id`.
    pub fn open(pci_bus_id: &str) -> Option<Telemetry> {
        let nvml = Nvml::open()?;
        let device = nvml.device(pci_bus_id)?;
        Some(Telemetry { nvml, device })
    }

    /// The GPU's state now, each field read on its own; `None` when no query succeeded.
    pub fn read(&self) -> Option<Reading> {
        let (nvml, device) = (&self.nvml, self.device);
        let reading = Reading {
            sm_clock_mhz: nvml.sm_clock_mhz(device),
            power_w: nvml.power_w(device),
            temperature_c: nvml.temperature_c(device),
            reasons: nvml.clock_event_reasons(device),
        };
        let any = reading.sm_clock_mhz.is_some()
            || reading.power_w.is_some()
            || reading.temperature_c.is_some()
            || reading.reasons.is_some();
        any.then_some(reading)
    }

    /// The power limit the driver enforces, in watts.
    pub fn power_limit_w(&self) -> Option<f64> {
        self.nvml.power_limit_w(self.device)
    }
}

/// Names of the limiting reasons set in `mask`, idle left out.
pub fn reason_names(mask: u64) -> Vec<&'static str> {
    REASONS
        .iter()
        .filter(|(bit, _)| mask & bit != 0)
        .map(|(_, name)| *name)
        .collect()
}

/// The readings taken while a kernel was timed, as result-file details: the SM clock's
/// median and range, power, peak temperature, and every limiting reason seen.
pub fn summarize(readings: &[Reading]) -> BTreeMap<String, String> {
    let mut details = BTreeMap::new();
    let median_of = |values: &[f64]| silirep_core::median::median(values).unwrap_or(f64::NAN);
    let clocks: Vec<f64> = readings
        .iter()
        .filter_map(|r| r.sm_clock_mhz.map(f64::from))
        .collect();
    if !clocks.is_empty() {
        let (low, high) = clocks.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &c| {
            (lo.min(c), hi.max(c))
        });
        details.insert(
            "sm_clock_mhz".into(),
            format!(
                "median {:.0}, range {low:.0}–{high:.0} ({} while timed)",
                median_of(&clocks),
                match clocks.len() {
                    1 => "1 reading".to_string(),
                    n => format!("{n} readings"),
                }
            ),
        );
    }
    let power: Vec<f64> = readings.iter().filter_map(|r| r.power_w).collect();
    if !power.is_empty() {
        let peak = power.iter().cloned().fold(0.0, f64::max);
        details.insert(
            "power_w".into(),
            format!("median {:.0}, max {peak:.0}", median_of(&power)),
        );
    }
    if let Some(hottest) = readings.iter().filter_map(|r| r.temperature_c).max() {
        details.insert("temperature_max_c".into(), hottest.to_string());
    }
    let masks: Vec<u64> = readings.iter().filter_map(|r| r.reasons).collect();
    if !masks.is_empty() {
        let names = reason_names(masks.iter().fold(0, |all, m| all | m));
        details.insert(
            "clock_limited_by".into(),
            if names.is_empty() {
                "nothing (no limiting reason reported)".into()
            } else {
                names.join(", ")
            },
        );
    }
    details
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(clock: u32, power_w: f64, reasons: u64) -> Reading {
        Reading {
            sm_clock_mhz: Some(clock),
            power_w: Some(power_w),
            temperature_c: Some(55 + clock / 500),
            reasons: Some(reasons),
        }
    }

    #[test]
    fn summary_names_the_power_cap_and_the_clock_range() {
        let readings = [
            reading(1980, 320.0, 0x0),
            reading(1500, 699.0, 0x4),
            reading(1470, 701.4, 0x4 | 0x1),
        ];
        let d = summarize(&readings);
        assert_eq!(
            d["sm_clock_mhz"],
            "median 1500, range 1470–1980 (3 readings while timed)"
        );
        assert_eq!(d["power_w"], "median 699, max 701");
        assert_eq!(d["temperature_max_c"], "58");
        // The idle bit (0x1) is not a limit worth reporting.
        assert_eq!(d["clock_limited_by"], "software power cap");
    }

    #[test]
    fn a_gpu_without_power_readings_still_reports_its_clock() {
        let readings = [Reading {
            power_w: None,
            ..reading(1410, 0.0, 0x0)
        }];
        let d = summarize(&readings);
        assert_eq!(
            d["sm_clock_mhz"],
            "median 1410, range 1410–1410 (1 reading while timed)"
        );
        assert!(!d.contains_key("power_w"));
        assert_eq!(
            d["clock_limited_by"],
            "nothing (no limiting reason reported)"
        );
    }

    #[test]
    fn no_readings_no_details() {
        assert!(summarize(&[]).is_empty());
        assert_eq!(reason_names(0x1), Vec::<&str>::new());
        assert_eq!(
            reason_names(0x20 | 0x40),
            vec!["software thermal slowdown", "hardware thermal slowdown"]
        );
    }

    #[test]
    fn opening_an_unknown_bus_is_none_not_a_panic() {
        // Without NVML (CI) this is None because the library is missing; with it, because no
        // GPU sits at this bus address.
        assert!(Telemetry::open("ffff:ff:1f.7").is_none());
    }
}
