//! "Which machine for what", derived from the comparisons and rooflines — never written by
//! hand. A workload counts as training-like when the roofline puts it under the compute
//! ceiling on both machines, and as inference-like when it sits under the memory ceiling;
//! the winner, factor and CI come from the ratio of the two machines' measurements.

use super::compare::{Comparison, ComparisonRow, Side};
use super::rooflines::Roofline;
use crate::ingest::MachineKey;
use silirep_core::KernelFamily;
use silirep_model::Bound;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum Category {
    /// Bound by the compute ceiling on both machines.
    ComputeBound,
    /// Bound by the memory ceiling on both machines.
    MemoryBound,
    /// Compute-bound on one machine, memory-bound on the other.
    Mixed,
}

impl Category {
    pub fn title(self) -> &'static str {
        match self {
            Category::ComputeBound => "Training-like work (compute-bound)",
            Category::MemoryBound => "Inference and decode (memory-bound)",
            Category::Mixed => "Bound differently on the two machines",
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct VerdictRow {
    pub workload: String,
    pub params: String,
    pub precision: String,
    pub framework: String,
    pub winner: String,
    /// Winner's rate / loser's rate, ≥ 1.
    pub factor: f64,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
    /// `Some(false)` when the CI contains 1.
    pub significant: Option<bool>,
    pub bound_a: Option<Bound>,
    pub bound_b: Option<Bound>,
    pub caveats: Vec<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct CategoryVerdict {
    pub category: Category,
    pub rows: Vec<VerdictRow>,
    /// Geometric mean of A-over-B speedups across the rows without caveats, oriented to its
    /// winner.
    pub overall_winner: Option<String>,
    pub overall_factor: Option<f64>,
    pub overall_lower: Option<f64>,
    pub overall_upper: Option<f64>,
    /// Why the mean has no CI, when it has none; with the range of the factors it averages,
    /// oriented like `overall_factor`.
    pub overall_no_ci: Option<silirep_stats::NoCi>,
    pub overall_range: Option<(f64, f64)>,
    /// How many rows the geometric mean is over (rows with caveats do not vote).
    pub voting_rows: usize,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PairVerdicts {
    pub a: MachineKey,
    pub b: MachineKey,
    pub categories: Vec<CategoryVerdict>,
}

/// Families whose rows summarise a workload (GEMM and bandwidth sweeps are represented by
/// their largest size only, so one kernel does not outvote the others).
fn representative(rows: &[ComparisonRow]) -> Vec<&ComparisonRow> {
    let mut largest: BTreeMap<(String, String, String, String, String), &ComparisonRow> =
        BTreeMap::new();
    let mut out = Vec::new();
    for r in rows {
        match r.key.family {
            KernelFamily::Gemm | KernelFamily::Bandwidth | KernelFamily::IntensitySweep => {
                let k = (
                    r.key.kernel.clone(),
                    r.key.precision.clone(),
                    r.key.framework.clone(),
                    r.key.script.clone(),
                    String::new(),
                );
                let keep = largest
                    .get(&k)
                    .is_none_or(|prev| r.key.primary_size > prev.key.primary_size);
                if keep {
                    largest.insert(k, r);
                }
            }
            _ => out.push(r),
        }
    }
    out.extend(largest.into_values());
    out
}

fn bound_on(
    rooflines: &BTreeMap<(MachineKey, String), &Roofline>,
    machine: &MachineKey,
    row: &ComparisonRow,
    side: &Side,
) -> Option<Bound> {
    if row.key.family == KernelFamily::Bandwidth {
        return Some(Bound::Memory);
    }
    let roof = rooflines.get(&(machine.clone(), row.key.precision.clone()))?;
    if let Some(p) = roof.points.iter().find(|p| {
        p.kernel == row.key.kernel && p.params == row.key.params && p.framework == side.framework
    }) {
        return Some(p.bound);
    }
    None
}

pub fn derive(comparisons: &[Comparison], rooflines: &[Roofline]) -> Vec<PairVerdicts> {
    let index = super::rooflines::index(rooflines);
    comparisons
        .iter()
        .map(|c| {
            let mut by_category: BTreeMap<Category, Vec<(VerdictRow, f64)>> = BTreeMap::new();
            for row in representative(&c.rows) {
                let bound_a = bound_on(&index, &c.a, row, &row.a);
                let bound_b = bound_on(&index, &c.b, row, &row.b);
                let category = match (bound_a, bound_b) {
                    (Some(Bound::Compute), Some(Bound::Compute)) => Category::ComputeBound,
                    (Some(Bound::Memory), Some(Bound::Memory)) => Category::MemoryBound,
                    (Some(_), Some(_)) => Category::Mixed,
                    // One side unknown: trust the known side.
                    (Some(b), None) | (None, Some(b)) => match b {
                        Bound::Compute => Category::ComputeBound,
                        Bound::Memory => Category::MemoryBound,
                    },
                    (None, None) if row.key.kernel == "model_train" => Category::ComputeBound,
                    (None, None) => continue,
                };
                let s = &row.speedup;
                let (winner, factor, lower, upper) = if s.ratio >= 1.0 {
                    (c.a.label.clone(), s.ratio, s.lower, s.upper)
                } else {
                    (
                        c.b.label.clone(),
                        1.0 / s.ratio,
                        s.upper.map(|u| 1.0 / u),
                        s.lower.map(|l| 1.0 / l),
                    )
                };
                by_category.entry(category).or_default().push((
                    VerdictRow {
                        workload: row.key.kernel.clone(),
                        params: row.key.params.clone(),
                        precision: row.key.precision.clone(),
                        framework: row.key.framework.clone(),
                        winner,
                        factor,
                        lower,
                        upper,
                        significant: s.significant,
                        bound_a,
                        bound_b,
                        caveats: row.caveats.clone(),
                    },
                    s.ratio,
                ));
            }
            let categories = by_category
                .into_iter()
                .map(|(category, rows)| {
                    // Rows resting on suspect data are shown but do not vote.
                    let ratios: Vec<f64> = rows
                        .iter()
                        .filter(|(v, _)| v.caveats.is_empty())
                        .map(|(_, r)| *r)
                        .collect();
                    let geo = silirep_stats::geometric_mean_ratio(&ratios).ok();
                    let (overall_winner, overall_factor, overall_lower, overall_upper) = match &geo
                    {
                        Some(g) if g.value >= 1.0 => {
                            (Some(c.a.label.clone()), Some(g.value), g.lower, g.upper)
                        }
                        Some(g) => (
                            Some(c.b.label.clone()),
                            Some(1.0 / g.value),
                            g.upper.map(|u| 1.0 / u),
                            g.lower.map(|l| 1.0 / l),
                        ),
                        None => (None, None, None, None),
                    };
                    let overall_range = geo.as_ref().map(|g| {
                        if g.value >= 1.0 {
                            g.range
                        } else {
                            (1.0 / g.range.1, 1.0 / g.range.0)
                        }
                    });
                    CategoryVerdict {
                        category,
                        rows: rows.into_iter().map(|(v, _)| v).collect(),
                        overall_winner,
                        overall_factor,
                        overall_lower,
                        overall_upper,
                        overall_no_ci: geo.as_ref().and_then(|g| g.no_ci),
                        overall_range,
                        voting_rows: ratios.len(),
                    }
                })
                .collect();
            PairVerdicts {
                a: c.a.clone(),
                b: c.b.clone(),
                categories,
            }
        })
        .collect()
}
