//! Everything a report writes: Markdown, HTML, charts, CSV. Numbers are formatted only by
//! [`format`]; files are written only through [`output`].

pub mod charts;
pub mod format;
pub mod inventory;
pub mod output;
pub mod pages;
