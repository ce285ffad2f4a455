//! SDE models of the SAM family (docs/theory.md §3): closed forms, the general Monte Carlo form, the SAM
//! tables `φ, a, c`, and linear (Ornstein–Uhlenbeck) models with exact moments and transitions.

pub mod general;
pub mod linear;
pub mod model;
pub mod sam_tables;

pub use model::{ModelKind, SdeForm, SdeModel};
