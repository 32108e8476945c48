//! The page of one machine: its rooflines and every measurement, with its status, clock and
//! source.

use super::text::{decode_scope, rate_text};
use super::{MachineView, RooflineView, machine_views, roofline_views};
use crate::analysis::RateEstimate;
use crate::analysis::rooflines::Roofline;
use crate::ingest::{Dataset, MachineKey, Verification};
use crate::util::format;
use serde::Serialize;

#[derive(Serialize)]
pub struct MachinePageView {
    pub machine: MachineView,
    pub rooflines: Vec<RooflineView>,
    pub measurements: Vec<MeasurementView>,
    /// Whether any measurement recorded its accelerator clock (adds a column).
    pub has_clock: bool,
    /// The machine's history page (`<stem>-history.md`) when it has more than one run.
    pub history_page: Option<String>,
}

#[derive(Serialize)]
pub struct MeasurementView {
    pub kernel: String,
    pub precision: String,
    pub params: String,
    pub framework: String,
    pub rate: String,
    pub time: String,
    pub n: String,
    pub status: String,
    /// The accelerator clock while timed, and what limited it; "—" where not recorded.
    pub clock: String,
    pub source: String,
}

/// Every machine's page, in the dataset's machine order. Views shared by all pages (machines,
/// rooflines) are built once, and records are grouped by machine in one pass.
pub fn machine_page_views(
    dataset: &Dataset,
    rates: &[Option<RateEstimate>],
    rooflines: &[Roofline],
) -> Vec<(MachineKey, MachinePageView)> {
    let mut machines: std::collections::BTreeMap<(String, String), MachineView> =
        machine_views(dataset, "../")
            .into_iter()
            .map(|m| ((m.id.clone(), m.label.clone()), m))
            .collect();
    let mut roofline_rows: std::collections::BTreeMap<(String, String), Vec<RooflineView>> =
        std::collections::BTreeMap::new();
    for r in roofline_views(rooflines) {
        roofline_rows
            .entry((r.machine_id.clone(), r.machine.clone()))
            .or_default()
            .push(r);
    }
    let mut records_of: std::collections::BTreeMap<&MachineKey, Vec<_>> =
        std::collections::BTreeMap::new();
    for (r, rate) in dataset.records.iter().zip(rates) {
        records_of.entry(&r.machine).or_default().push((r, rate));
    }
    dataset
        .machines
        .keys()
        .map(|key| {
            let at = (key.id.clone(), key.label.clone());
            let machine = machines.remove(&at).unwrap_or(MachineView {
                label: key.label.clone(),
                id: key.id.clone(),
                page: String::new(),
                frameworks: String::new(),
                measurements: 0,
            });
            let mut page = machine_page_view(
                machine,
                roofline_rows.remove(&at).unwrap_or_default(),
                records_of.remove(key).unwrap_or_default(),
            );
            let runs = dataset.runs.values().filter(|r| &r.machine == key).count();
            page.history_page =
                (runs > 1).then(|| format!("{}-history.md", super::machine_file_stem(key)));
            (key.clone(), page)
        })
        .collect()
}

fn machine_page_view(
    machine: MachineView,
    rooflines: Vec<RooflineView>,
    mut records: Vec<(&crate::ingest::Record, &Option<RateEstimate>)>,
) -> MachinePageView {
    records.sort_by(|(x, _), (y, _)| {
        (
            x.spec.family().name(),
            x.spec.name(),
            x.spec.precision_label(),
            x.spec.primary_size(),
            &x.framework,
            &x.source,
        )
            .cmp(&(
                y.spec.family().name(),
                y.spec.name(),
                y.spec.precision_label(),
                y.spec.primary_size(),
                &y.framework,
                &y.source,
            ))
    });
    let measurements = records
        .into_iter()
        .map(|(r, rate)| MeasurementView {
            kernel: r.spec.name().to_string(),
            precision: r.spec.precision_label().to_string(),
            params: r.spec.params_label().to_string(),
            framework: r.framework.to_string(),
            rate: rate
                .as_ref()
                .map(|rate| decode_scope(&r.spec, rate, rate_text(rate)))
                .unwrap_or_else(|| "—".into()),
            time: r
                .timing
                .as_ref()
                .map(|t| format!("{} ({})", format::duration(t.center_s()), t.center_method()))
                .unwrap_or_else(|| "—".into()),
            n: r.timing
                .as_ref()
                .map(|t| t.n().to_string())
                .unwrap_or_else(|| "0".into()),
            status: match &r.error {
                Some(e) => format!("failed: {e}"),
                None if r.verification == Verification::Passed => "verified".into(),
                None if r.verification == Verification::NotReported => {
                    "not verified by source".into()
                }
                None => r.verification.name().to_string(),
            }
            .to_string(),
            clock: r.clock.as_deref().unwrap_or("—").to_string(),
            source: format!("{} {}", r.source.file, r.source.json_path),
        })
        .collect::<Vec<_>>();
    MachinePageView {
        has_clock: measurements.iter().any(|m| m.clock != "—"),
        history_page: None,
        machine,
        rooflines,
        measurements,
    }
}
