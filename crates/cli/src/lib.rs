//! The `kjp` command's pieces, kept in a library so tests can call them directly.
//! Each module only translates between the command line and the domain.

pub mod clients;
pub mod config;
pub mod eval;
pub mod money;
pub mod policy_show;
pub mod progress;
pub mod report;
pub mod staff;
