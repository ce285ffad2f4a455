//! Names of the four SAM-family algorithms, as used in configs and JSON.

use serde::{Deserialize, Serialize};

/// SGD, USAM, SAM or DNSAM (docs/theory.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlgorithmKind {
    /// `x ← x − η ∇f_γ(x)`.
    Sgd,
    /// `x ← x − η ∇f_γ(x + ρ ∇f_γ(x))`.
    Usam,
    /// `x ← x − η ∇f_γ(x + ρ ∇f_γ(x)/‖∇f_γ(x)‖)`.
    Sam,
    /// `x ← x − η ∇f_γ(x + ρ ∇f_γ(x)/‖∇f(x)‖)`.
    Dnsam,
}

impl AlgorithmKind {
    /// All four, in the order used in tables.
    pub const ALL: [AlgorithmKind; 4] = [Self::Sgd, Self::Usam, Self::Dnsam, Self::Sam];

    /// Lower-case name (`"usam"`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Sgd => "sgd",
            Self::Usam => "usam",
            Self::Sam => "sam",
            Self::Dnsam => "dnsam",
        }
    }

    /// Parses a lower-case name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == s)
    }
}

impl std::fmt::Display for AlgorithmKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
