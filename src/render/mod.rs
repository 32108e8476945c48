//! Everything a report writes: Markdown, HTML, charts, CSV. Numbers are formatted only by
//! [`crate::util::format`]; files are written only through [`output`].

pub mod charts;
pub mod csv;
pub mod inventory;
pub mod output;
pub mod pages;
