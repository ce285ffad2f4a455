//! SDE models (being written).
