//! Agency files in, decisions out: the file formats of `docs/formats.md`, snapshots
//! (`kjp import`), and the stage run (`kjp stage open|verify|summary|export|impact`).
//!
//! Parsing is pure and collects every bad row; joining and deciding are pure functions
//! over parsed records; only `snapshot` and `stage` touch the store and the disk.

pub mod amend;
pub mod annex;
pub mod decree;
pub mod encode;
pub mod fixture;
pub mod funding;
pub mod kjmu;
pub mod money;
pub mod snapshot;
pub mod source;
pub mod stage;
pub mod verify;

pub use snapshot::{import_file, source_files, ImportError, Imported};
pub use source::Source;
pub use stage::{StageError, Summary};
