//! Roofs as data, and the one prediction rule built on them.
//!
//! A machine is a list of roofs: a compute ceiling per precision (FLOP/s), a memory ceiling
//! (bytes/s) and link ceilings (bytes/s), each saying where its number came from — measured by
//! silirep or copied from a datasheet. A phase's predicted time is the largest of
//! work ÷ rate over the roofs that apply to it: the roofline assumption that compute, memory
//! traffic and link traffic overlap perfectly, so the slowest of them sets the pace and names
//! the bound. The prediction is therefore a lower bound on the time a real run takes.

use crate::error::ModelError;
use crate::work::Work;
use serde::{Deserialize, Serialize};
use silirep_core::Dtype;

/// What a roof limits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum RoofKind {
    /// Arithmetic at one precision, in FLOP/s.
    Compute {
        /// The precision of the arithmetic.
        precision: Dtype,
    },
    /// Memory bandwidth, in bytes/s.
    Memory,
    /// A named link (Thunderbolt, NVLink, PCIe, TCP…), in bytes/s per direction.
    Link {
        /// The link's name.
        name: String,
    },
}

impl std::fmt::Display for RoofKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RoofKind::Compute { precision } => write!(f, "compute ({precision})"),
            RoofKind::Memory => f.write_str("memory"),
            RoofKind::Link { name } => write!(f, "link ({name})"),
        }
    }
}

/// Where a roof's rate came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum RoofSource {
    /// Measured by silirep or a peer tool.
    Measured {
        /// Which measurement (e.g. `gemm f16 8192³, median of 40`).
        what: String,
    },
    /// Copied from a datasheet.
    Datasheet {
        /// Which one (e.g. `NVIDIA H100 Tensor Core GPU datasheet (SXM5)`).
        what: String,
    },
}

/// One ceiling of a machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Roof {
    /// What it limits.
    pub kind: RoofKind,
    /// FLOP/s for compute roofs, bytes/s for memory and link roofs; positive and finite.
    pub rate: f64,
    /// Where the rate came from.
    pub source: RoofSource,
}

/// A machine's roofs: at least a memory roof and a compute roof for each precision it is
/// asked to run, at most one roof of each kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineRoofs {
    /// The machine's name.
    pub machine: String,
    /// Its ceilings.
    pub roofs: Vec<Roof>,
}

impl MachineRoofs {
    /// Every rate positive and finite, no kind listed twice.
    pub fn validate(&self) -> Result<(), ModelError> {
        for (i, roof) in self.roofs.iter().enumerate() {
            if !(roof.rate.is_finite() && roof.rate > 0.0) {
                return Err(ModelError::OutOfRange {
                    what: format!("machine `{}` roof {} rate", self.machine, roof.kind),
                    expected: "a positive, finite rate",
                    found: roof.rate,
                });
            }
            if self.roofs[..i].iter().any(|r| r.kind == roof.kind) {
                return Err(ModelError::DuplicateRoof {
                    machine: self.machine.clone(),
                    kind: roof.kind.to_string(),
                });
            }
        }
        Ok(())
    }

    fn find(&self, kind: &RoofKind) -> Option<&Roof> {
        self.roofs.iter().find(|r| &r.kind == kind)
    }
}

/// A link between two machines, for the planners: per-direction bandwidth and one-way latency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Link {
    /// The link's name.
    pub name: String,
    /// Bytes/s in each direction (full duplex); positive and finite.
    pub bandwidth_bytes_per_s: f64,
    /// Seconds before the first byte arrives; zero or more, finite.
    pub latency_s: f64,
    /// Where the bandwidth came from.
    pub source: RoofSource,
}

impl Link {
    /// Rejects zero, negative or non-finite bandwidth and negative or non-finite latency: a
    /// link with zero bandwidth is an error, not an infinite time, so a typo cannot pass as
    /// "splitting never pays".
    pub fn validate(&self) -> Result<(), ModelError> {
        if !(self.bandwidth_bytes_per_s.is_finite() && self.bandwidth_bytes_per_s > 0.0) {
            return Err(ModelError::OutOfRange {
                what: format!("link `{}` bandwidth_bytes_per_s", self.name),
                expected: "a positive, finite rate",
                found: self.bandwidth_bytes_per_s,
            });
        }
        if !(self.latency_s.is_finite() && self.latency_s >= 0.0) {
            return Err(ModelError::OutOfRange {
                what: format!("link `{}` latency_s", self.name),
                expected: "zero or more seconds, finite",
                found: self.latency_s,
            });
        }
        Ok(())
    }

    /// latency + bytes / bandwidth: one message of `bytes` in one direction.
    pub fn transfer_time_s(&self, bytes: f64) -> f64 {
        self.latency_s + bytes / self.bandwidth_bytes_per_s
    }
}

/// Time one roof alone would allow for a piece of work.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoofTime {
    /// The roof.
    pub kind: RoofKind,
    /// Its rate.
    pub rate: f64,
    /// Where the rate came from.
    pub source: RoofSource,
    /// FLOPs or bytes of the work that this roof limits.
    pub amount: f64,
    /// amount ÷ rate.
    pub time_s: f64,
}

/// A predicted time and what bounds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// The largest per-roof time.
    pub time_s: f64,
    /// The roof with that time (the first listed, on a tie).
    pub bound_by: RoofKind,
    /// Every roof that applied: compute at the work's precision, memory, and the work's link.
    pub per_roof: Vec<RoofTime>,
}

/// Predicted time of `work` on a machine: time = max over applicable roofs of work ÷ rate,
/// with FLOPs against the compute roof of the work's precision, all memory bytes against the
/// memory roof, and link bytes against the roof of the link the work names. A missing roof is
/// an error naming the machine and what is missing, never a silently smaller time.
pub fn predict_phase(work: &Work, machine: &MachineRoofs) -> Result<Prediction, ModelError> {
    machine.validate()?;
    let compute_kind = RoofKind::Compute {
        precision: work.precision,
    };
    let compute = machine
        .find(&compute_kind)
        .ok_or_else(|| ModelError::MissingComputeRoof {
            machine: machine.machine.clone(),
            precision: work.precision,
            available: available_precisions(machine),
        })?;
    let memory = machine
        .find(&RoofKind::Memory)
        .ok_or_else(|| ModelError::MissingMemoryRoof {
            machine: machine.machine.clone(),
        })?;
    let mut applied = vec![(compute, work.flops), (memory, work.bytes.total())];
    if let Some(traffic) = work.link.as_ref().filter(|t| t.bytes > 0.0) {
        let link = machine
            .find(&RoofKind::Link {
                name: traffic.link.clone(),
            })
            .ok_or_else(|| ModelError::MissingLinkRoof {
                machine: machine.machine.clone(),
                bytes: traffic.bytes,
            })?;
        applied.push((link, traffic.bytes));
    }
    let per_roof: Vec<RoofTime> = applied
        .into_iter()
        .map(|(roof, amount)| RoofTime {
            kind: roof.kind.clone(),
            rate: roof.rate,
            source: roof.source.clone(),
            amount,
            time_s: amount / roof.rate,
        })
        .collect();
    let mut slowest = 0;
    for (i, candidate) in per_roof.iter().enumerate() {
        if candidate.time_s > per_roof[slowest].time_s {
            slowest = i;
        }
    }
    Ok(Prediction {
        time_s: per_roof[slowest].time_s,
        bound_by: per_roof[slowest].kind.clone(),
        per_roof,
    })
}

fn available_precisions(machine: &MachineRoofs) -> String {
    let names: Vec<&str> = machine
        .roofs
        .iter()
        .filter_map(|r| match &r.kind {
            RoofKind::Compute { precision } => Some(precision.name()),
            _ => None,
        })
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::shape::ModelShape;
    use crate::work::{LinkTraffic, decode_step, prefill};

    /// A machine with an f16 compute roof and a memory roof, both "measured" (test values).
    pub(crate) fn machine(name: &str, f16_flops: f64, memory_bytes_per_s: f64) -> MachineRoofs {
        MachineRoofs {
            machine: name.into(),
            roofs: vec![
                Roof {
                    kind: RoofKind::Compute {
                        precision: Dtype::F16,
                    },
                    rate: f16_flops,
                    source: RoofSource::Measured {
                        what: "test gemm".into(),
                    },
                },
                Roof {
                    kind: RoofKind::Memory,
                    rate: memory_bytes_per_s,
                    source: RoofSource::Measured {
                        what: "test triad".into(),
                    },
                },
            ],
        }
    }

    #[test]
    fn decode_is_memory_bound_and_prefill_compute_bound() {
        // 10 TFLOP/s, 100 GB/s.
        let m = machine("m", 10e12, 100e9);
        let step =
            predict_phase(&decode_step(&ModelShape::mistral_7b(), 1, 871).unwrap(), &m).unwrap();
        assert_eq!(step.bound_by, RoofKind::Memory);
        // bytes = 14,221,328,384 + 114,163,712 + 131,072 + 588,288 = 14,336,211,456
        // time = 14,336,211,456 / 1e11 = 0.14336211456 s
        assert!((step.time_s - 0.143_362_114_56).abs() < 1e-12);
        assert_eq!(step.per_roof.len(), 2);
        let fill = predict_phase(&prefill(&ModelShape::mistral_7b(), 1, 871).unwrap(), &m).unwrap();
        assert_eq!(
            fill.bound_by,
            RoofKind::Compute {
                precision: Dtype::F16
            }
        );
        // 12,357,080,186,880 FLOPs / 1e13 = 1.235708018688 s
        assert!((fill.time_s - 1.235_708_018_688).abs() < 1e-12);
    }

    #[test]
    fn missing_and_bad_roofs_are_errors() {
        let work = decode_step(&ModelShape::mistral_7b(), 1, 10).unwrap();
        let mut m = machine("m5", 10e12, 100e9);
        m.roofs[0].kind = RoofKind::Compute {
            precision: Dtype::Bf16,
        };
        assert_eq!(
            predict_phase(&work, &m).unwrap_err().to_string(),
            "machine `m5` has no compute roof for f16 (it has: bf16)"
        );
        let mut no_memory = machine("m5", 10e12, 100e9);
        no_memory.roofs.pop();
        assert!(matches!(
            predict_phase(&work, &no_memory),
            Err(ModelError::MissingMemoryRoof { .. })
        ));
        let zero = machine("m5", 0.0, 100e9);
        assert!(
            predict_phase(&work, &zero)
                .unwrap_err()
                .to_string()
                .contains("positive")
        );
        let mut twice = machine("m5", 10e12, 100e9);
        twice.roofs.push(twice.roofs[1].clone());
        assert!(matches!(
            predict_phase(&work, &twice),
            Err(ModelError::DuplicateRoof { .. })
        ));
    }

    #[test]
    fn link_roof_applies_to_link_traffic() {
        let mut work = decode_step(&ModelShape::mistral_7b(), 1, 10).unwrap();
        work.link = Some(LinkTraffic {
            link: "tb5".into(),
            bytes: 4.7e9,
        });
        let mut m = machine("m", 10e12, 1e12);
        assert!(matches!(
            predict_phase(&work, &m),
            Err(ModelError::MissingLinkRoof { .. })
        ));
        m.roofs.push(Roof {
            kind: RoofKind::Link { name: "tb5".into() },
            rate: 4.7e9,
            source: RoofSource::Measured {
                what: "iperf3".into(),
            },
        });
        let p = predict_phase(&work, &m).unwrap();
        // 4.7e9 bytes at 4.7e9 bytes/s = 1 s, more than the 14.3 ms of memory traffic
        assert_eq!(p.time_s, 1.0);
        assert_eq!(p.bound_by, RoofKind::Link { name: "tb5".into() });
    }

    #[test]
    fn roofs_serialise_as_tagged_objects() {
        let m = machine("m", 1e12, 1e11);
        let text = serde_json::to_string(&m.roofs[0]).unwrap();
        assert_eq!(
            text,
            r#"{"kind":{"type":"compute","precision":"f16"},"rate":1000000000000.0,"source":{"type":"measured","what":"test gemm"}}"#
        );
        let back: MachineRoofs = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn link_validation() {
        let link = Link {
            name: "tb".into(),
            bandwidth_bytes_per_s: 0.0,
            latency_s: 0.0,
            source: RoofSource::Datasheet { what: "x".into() },
        };
        assert_eq!(
            link.validate().unwrap_err().to_string(),
            "link `tb` bandwidth_bytes_per_s: expected a positive, finite rate, found 0"
        );
        let slow = Link {
            bandwidth_bytes_per_s: 4.7e9,
            latency_s: 1e-5,
            ..link.clone()
        };
        slow.validate().unwrap();
        // Mistral-7B, 871 tokens of f16 KV: 1e-5 + 114,163,712 / 4.7e9 = 1e-5 + 0.0242901515 s
        assert!(
            (slow.transfer_time_s(114_163_712.0) - (1e-5 + 0.024_290_151_489_361_7)).abs() < 1e-12
        );
        let negative = Link {
            latency_s: -1.0,
            ..slow
        };
        assert!(negative.validate().is_err());
    }
}
