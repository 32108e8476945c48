//! silirep: measure what a machine can do for ML, and turn raw results from many machines
//! into committed, regenerable analysis.
//!
//! The modules follow the data: [`measure`] runs backends and writes result files (schema in
//! `silirep-core`), [`ingest`] reads result files of every known format into one tidy table,
//! `analysis` derives statistics and rooflines, [`render`] writes Markdown, HTML, charts and
//! CSV. [`report`], [`predict`] and [`cli`] wire the stages to the command line.

pub mod analysis;
pub mod cli;
pub mod ingest;
pub mod link;
pub mod measure;
pub mod predict;
pub mod render;
pub mod report;
pub mod util;
