//! Recognised, deliberately not imported.

use super::*;

pub(super) struct MfuSummary;

impl Importer for MfuSummary {
    fn format_name(&self) -> &'static str {
        "mac-ml-benchmark MFU summary"
    }

    fn recognises(&self, file: &FileView) -> bool {
        file.doc.get("model_level_mfu").is_some()
            || file
                .doc
                .get("float16")
                .is_some_and(|f| f.get("mfu_percent").is_some())
    }

    fn import(&self, _file: &FileView, out: &mut Imported) -> Result<(), ImportError> {
        out.not_imported = Some(
            "derived summary (peaks and utilisation computed from the other files and from \
             assumed datasheet peaks); silirep derives these from the raw measurements"
                .into(),
        );
        Ok(())
    }
}
