//! Presentation of study reports: printed tables, CSV, figures, and the atomic writing of a
//! run's files (via [`crate::output`]). One file per study.

pub mod convergence;
pub mod flatness;
pub mod implicit_bias;
pub mod kinks;
pub mod rho_sweep;
pub mod saddle;
pub mod sam_rate;
pub mod trajectories;
