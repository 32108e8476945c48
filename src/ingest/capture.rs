//! Time series that are not measurements of one configuration: interface traffic sampled
//! while a distributed job ran, with the job's own markers (layer boundaries, all-reduces).
//! They are kept whole for charts and never turned into records: a rate sampled every 10 ms
//! during a fine-tune step says when the link was busy, not what it can carry.
//!
//! A capture keeps exactly what its file holds. Totals are the bytes the file counted where it
//! counted them, else the rates integrated over each sample's interval (and then say so);
//! anything that makes the series less than a measurement (it recorded nothing, it has no
//! capture metadata) is a caveat on the capture and a warning on its file.

use super::record::{MachineKey, Provenance};

/// One sample: seconds since the capture started and bytes per second each way.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrafficSample {
    pub t_s: f64,
    pub send_bytes_per_s: f64,
    pub recv_bytes_per_s: f64,
}

/// A point in time the job marked (`layer_3_fwd_allreduce`).
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    pub t_s: f64,
    pub label: String,
}

/// How the totals were obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotalsSource {
    /// Byte counters recorded with each sample, summed.
    Counted,
    /// Rates × the time since the previous sample, summed: an estimate.
    IntegratedRates,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TrafficCapture {
    pub source: Provenance,
    /// What the capture was of, as the file names it (`tp`, `TP Sample`).
    pub name: String,
    /// The machines at either end of the link; the capture belongs to both.
    pub machines: Vec<MachineKey>,
    /// Network interface captured (`bridge0`), when the file says.
    pub interface: Option<String>,
    pub sample_rate_hz: Option<f64>,
    /// When the capture was taken, as the file wrote it.
    pub captured_at: Option<String>,
    pub duration_s: Option<f64>,
    pub samples: Vec<TrafficSample>,
    pub markers: Vec<Marker>,
    pub send_bytes: f64,
    pub recv_bytes: f64,
    pub totals_source: TotalsSource,
    /// Why the series is less than a measurement (empty when nothing is wrong).
    pub caveats: Vec<String>,
}

impl TrafficCapture {
    /// Highest rate either way, bytes per second.
    pub fn peak_bytes_per_s(&self) -> f64 {
        self.samples
            .iter()
            .map(|s| s.send_bytes_per_s.max(s.recv_bytes_per_s))
            .fold(0.0, f64::max)
    }
}

/// Sum of rate × interval over the samples, the first interval taken from time 0: bytes each
/// way (send, receive).
pub fn integrate(samples: &[TrafficSample]) -> (f64, f64) {
    let mut previous_t = 0.0;
    let (mut send, mut recv) = (0.0, 0.0);
    for s in samples {
        let dt = (s.t_s - previous_t).max(0.0);
        send += s.send_bytes_per_s * dt;
        recv += s.recv_bytes_per_s * dt;
        previous_t = s.t_s;
    }
    (send, recv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integration_weights_each_rate_by_its_interval() {
        let samples = [
            TrafficSample {
                t_s: 0.5,
                send_bytes_per_s: 2.0,
                recv_bytes_per_s: 0.0,
            },
            TrafficSample {
                t_s: 1.5,
                send_bytes_per_s: 4.0,
                recv_bytes_per_s: 1.0,
            },
        ];
        // 0.5 s at 2 B/s + 1 s at 4 B/s; receive 1 s at 1 B/s.
        assert_eq!(integrate(&samples), (5.0, 1.0));
        assert_eq!(integrate(&[]), (0.0, 0.0));
    }
}
