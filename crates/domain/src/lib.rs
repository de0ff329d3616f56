//! The pure domain of kjp: identifiers, the programme's policy as data, and the rules
//! engine that decides a child and explains why.
//!
//! Nothing here does I/O: the clock, the policy and the facts come in as arguments.
//! "Ineligible" is a value with reasons, never an error.

pub mod assess;
pub mod conflict;
pub mod facts;
pub mod funding;
pub mod ids;
pub mod money;
pub mod policy;
pub mod regions;

pub use assess::{assess, AssessError, Decision, Explanation, ReasonSet, ReasonText, Rules, Status};
pub use facts::{BoolFact, Education, Fact, FactSet, Facts, GroupSet};
pub use ids::{KkNumber, Level, Nik, Npsn, Programme, RegionCode, Rupiah, SchoolType, Stage};
pub use policy::{Monthly, Policy, PolicyError};
