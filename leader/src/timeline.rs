//! The timeline picture: where a job's time went, as SVG. (Being written.)

use std::path::Path;

use proofline_runtime::leader::timeline::Timeline;

use crate::Failure;

/// Draw `timeline` (of job `title`) into the SVG file `path`, atomically.
pub fn write_svg(_timeline: &Timeline, _title: &str, _path: &Path) -> Result<(), Failure> {
    Err(Failure::other("timeline pictures are not built yet"))
}
