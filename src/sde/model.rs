//! The SDE models of docs/theory.md §3, evaluated on blocks of paths.
//!
//! Every model has the form `dX = −b(X) dt + √η D(X) dW`; one Euler–Maruyama increment over a
//! sub-step `h` is `ΔX = −b(X) h + √η D(X) ΔW`. With `g = ∇f(X)`, `H = ∇²f(X)`, `z = S ΔW`:
//!
//! | model | drift `b` | `D ΔW` |
//! |---|---|---|
//! | `sgd_sde` | `g` | `z` (subsampling: `√(c_B/N) Σ_i (∇f_i − g) ΔW_i`) |
//! | `usam_sde` | `g + ρ H g` | `z + ρ H z` (`D = (I + ρH) S`) |
//! | `dnsam_sde` | `g + ρ H g/‖g‖` | `z + (ρ/‖g‖) H z` |
//! | `sam_sde` (isotropic `S = σI`) | `g + ρ φ(r) H ĝ`, `r = ‖g‖/σ` | `σ ΔW + (ρ/2)(C H + H C) ΔW`, `C = a(r)(I − ĝĝᵀ) + c(r) ĝĝᵀ` |
//! | `<alg>_drift_only` | the algorithm's drift | `z` (the SGD diffusion) |
//! | full batch (`Σ = 0`) | as above (`φ = 1` for SAM) | none: an ODE |
//! | `sgd_sde2`, `usam_sde2` | the second-order drift `B` of [`super::second_order`] | `z` (SGD), `z + ρHz` (USAM) |
//!
//! These closed forms use `H_γ = H`, true for the additive and full-batch oracles. For the
//! subsampling oracle, or SAM with non-isotropic `S`, the expectations are estimated by an inner
//! Monte Carlo ([`super::general`]); the form is chosen by [`SdeForm`].
//! Norms are guarded as in the discrete algorithms: `‖g‖ + ε`, `ε = 1e-12`.

use std::sync::Arc;

use rand_chacha::ChaCha8Rng;

use super::general::{GeneralWorkspace, MonteCarloSde};
use super::moment_ode::AffineSde;
use super::sam_tables::SamTables;
use super::second_order;
use crate::error::{Error, Result};
use crate::landscape::{Landscape, NoiseCov};
use crate::linalg::Matrix;
use crate::optim::{AlgorithmKind, NORM_EPS};
use crate::oracle::Oracle;

/// Which SDE: an algorithm's own (first-order) model, its drift-only ablation, or its
/// second-order model ([`super::second_order`]; SGD and USAM only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModelKind {
    /// The algorithm whose drift (and, unless `drift_only`, diffusion) the model carries.
    pub alg: AlgorithmKind,
    /// `true` for `<alg>_drift_only`: the algorithm's drift with the SGD diffusion.
    pub drift_only: bool,
    /// `true` for `<alg>_sde2`: the weak order-2 model (modified-equation drift corrections).
    pub second_order: bool,
}

impl ModelKind {
    /// The algorithm's own SDE.
    pub fn own(alg: AlgorithmKind) -> Self {
        Self {
            alg,
            drift_only: false,
            second_order: false,
        }
    }
    /// The drift-only ablation `<alg>_drift_only`.
    pub fn drift_only(alg: AlgorithmKind) -> Self {
        Self {
            alg,
            drift_only: true,
            second_order: false,
        }
    }
    /// The second-order model `<alg>_sde2` (SGD and USAM; see [`super::second_order`]).
    pub fn second_order(alg: AlgorithmKind) -> Self {
        Self {
            alg,
            drift_only: false,
            second_order: true,
        }
    }
    /// The weak order the model is built for (1, or 2 for `<alg>_sde2`).
    pub fn order(&self) -> f64 {
        if self.second_order {
            2.0
        } else {
            1.0
        }
    }
    /// Name as used in configs and JSON: `usam_sde`, `usam_drift_only`, `usam_sde2`.
    pub fn name(&self) -> String {
        if self.drift_only {
            format!("{}_drift_only", self.alg.name())
        } else if self.second_order {
            format!("{}_sde2", self.alg.name())
        } else {
            format!("{}_sde", self.alg.name())
        }
    }
    /// Parses `sgd_sde`, `usam_sde`, …, `<alg>_drift_only`, `sgd_sde2`, `usam_sde2`.
    pub fn parse(s: &str) -> Option<Self> {
        if let Some(a) = s.strip_suffix("_sde2") {
            return AlgorithmKind::parse(a)
                .filter(|a| matches!(a, AlgorithmKind::Sgd | AlgorithmKind::Usam))
                .map(Self::second_order);
        }
        if let Some(a) = s.strip_suffix("_sde") {
            return AlgorithmKind::parse(a).map(Self::own);
        }
        if let Some(a) = s.strip_suffix("_drift_only") {
            return AlgorithmKind::parse(a).map(Self::drift_only);
        }
        None
    }
}

/// How the Hessian-dependent expectations of a model are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SdeForm {
    /// Closed form where one exists (additive/full-batch oracle; SAM needs `S = σI`), else Monte Carlo.
    Auto,
    /// Closed form; an error where none exists.
    ClosedForm,
    /// Inner Monte Carlo over fresh oracle draws (any oracle; slow).
    MonteCarlo,
}

#[derive(Debug, Clone)]
enum Form {
    /// `H_γ = H`; `sigma` is `Some(σ)` for isotropic noise (needed by SAM), `tables` for SAM.
    Closed {
        sigma: Option<f64>,
        tables: Option<Arc<SamTables>>,
    },
    MonteCarlo(MonteCarloSde),
    /// Exact coefficients with real mini-batches on least squares ([`super::musam`]).
    Affine(Arc<AffineSde>),
    /// `<alg>_sde2` ([`super::second_order`]); additive or full-batch oracle.
    SecondOrder,
}

/// An SDE model bound to a landscape dimension, an oracle and `(η, ρ)`.
#[derive(Debug, Clone)]
pub struct SdeModel {
    kind: ModelKind,
    eta: f64,
    rho: f64,
    form: Form,
}

/// Scratch space for one block.
#[derive(Debug)]
pub struct ModelWorkspace {
    g: Matrix,
    hg: Matrix,
    hz: Matrix,
    diff: Matrix,
    tmp: (Vec<f64>, Vec<f64>),
    /// Closed-form SAM: per path `‖g‖², g·w, g·Hw`, then the coefficients `s, ρa, c_g, c_gg`.
    sam: Vec<[f64; 4]>,
    general: Option<GeneralWorkspace>,
    affine: Option<super::musam::AffineWorkspace>,
    second: Option<SecondOrderScratch>,
    /// Eigenvalues clamped to zero in `Σ_alg` square roots (Monte Carlo and affine forms).
    pub clamps: u64,
}

impl SdeModel {
    /// Builds the model; `form` chooses closed form or inner Monte Carlo (`inner_samples` draws).
    pub fn new(
        kind: ModelKind,
        f: &dyn Landscape,
        oracle: &Oracle,
        eta: f64,
        rho: f64,
        form: SdeForm,
        inner_samples: usize,
    ) -> Result<Self> {
        let d = f.dim();
        if kind.second_order {
            return Self::new_second_order(kind, oracle, eta, rho, form);
        }
        if kind.alg == AlgorithmKind::Musam && matches!(oracle, Oracle::Subsampling(_)) {
            return Err(Error::config(
                "models",
                format!("\"{}\"", kind.name()),
                "has no inner-Monte-Carlo form (it would not draw micro-batches): with subsampling on least squares use integration.sde_form = \"auto\"",
            ));
        }
        let closed_ok = match oracle {
            Oracle::FullBatch => true,
            Oracle::Additive(a) => kind.alg != AlgorithmKind::Sam || a.sigma().is_some(),
            Oracle::Subsampling(_) => kind.alg == AlgorithmKind::Sgd,
        };
        let use_closed = match form {
            SdeForm::Auto => closed_ok,
            SdeForm::ClosedForm => {
                if !closed_ok {
                    return Err(Error::config(
                        "integration.sde_form",
                        "\"closed_form\"",
                        format!(
                            "has no closed form for {} with this oracle (needs additive isotropic or full-batch noise); use \"auto\" or \"monte_carlo\"",
                            kind.name()
                        ),
                    ));
                }
                true
            }
            SdeForm::MonteCarlo => kind.alg == AlgorithmKind::Sgd,
        };
        let form = if use_closed {
            let sigma = oracle.isotropic_sigma();
            let tables = (kind.alg == AlgorithmKind::Sam && sigma.unwrap_or(0.0) > 0.0)
                .then(|| shared_tables(d));
            Form::Closed { sigma, tables }
        } else {
            if inner_samples < 2 {
                return Err(Error::config(
                    "integration.inner_samples",
                    inner_samples,
                    "must be ≥ 2",
                ));
            }
            Form::MonteCarlo(MonteCarloSde::new(kind, eta, rho, inner_samples))
        };
        Ok(Self {
            kind,
            eta,
            rho,
            form,
        })
    }

    /// The SGD / USAM / m-USAM SDE with real mini-batches on an affine finite sum, with exact
    /// drift and diffusion ([`super::musam::affine_sde`]), integrated by Euler–Maruyama.
    pub fn affine(kind: ModelKind, eta: f64, rho: f64, sde: AffineSde) -> Self {
        Self {
            kind,
            eta,
            rho,
            form: Form::Affine(Arc::new(sde)),
        }
    }

    /// Which model.
    pub fn kind(&self) -> ModelKind {
        self.kind
    }
    /// `true` when the inner Monte Carlo form is used.
    pub fn is_monte_carlo(&self) -> bool {
        matches!(self.form, Form::MonteCarlo(_))
    }
    /// `true` when the model needs per-path auxiliary random numbers (inner Monte Carlo).
    pub fn needs_aux_rng(&self) -> bool {
        self.is_monte_carlo()
    }

    /// A workspace for `d × p` blocks.
    pub fn workspace(&self, f: &dyn Landscape, oracle: &Oracle, p: usize) -> ModelWorkspace {
        let d = f.dim();
        ModelWorkspace {
            g: Matrix::zeros(d, p),
            hg: Matrix::zeros(d, p),
            hz: Matrix::zeros(d, p),
            diff: Matrix::zeros(d, p),
            tmp: (vec![0.0; d], vec![0.0; d]),
            sam: vec![[0.0; 4]; p],
            general: match &self.form {
                Form::MonteCarlo(m) => Some(m.workspace(f, oracle)),
                Form::Closed { .. } | Form::Affine(_) | Form::SecondOrder => None,
            },
            affine: matches!(self.form, Form::Affine(_))
                .then(|| super::musam::AffineWorkspace::new(d)),
            second: matches!(self.form, Form::SecondOrder).then(|| SecondOrderScratch::new(d)),
            clamps: 0,
        }
    }

    /// Euler–Maruyama increment: `x += −b(x) h + √η D(x) dw` for every column.
    ///
    /// `dw` is the Brownian increment over the sub-step (`m × P`, variance `h`), `s_dw = S dw`
    /// for the additive oracle. `aux` holds one auxiliary RNG per path (inner Monte Carlo only).
    #[allow(clippy::too_many_arguments)]
    pub fn euler_step(
        &self,
        f: &dyn Landscape,
        oracle: &Oracle,
        x: &mut Matrix,
        dw: &Matrix,
        s_dw: Option<&Matrix>,
        h: f64,
        ws: &mut ModelWorkspace,
        aux: &mut [ChaCha8Rng],
    ) {
        match &self.form {
            Form::MonteCarlo(m) => {
                let gw = ws.general.as_mut().expect("workspace built for this model");
                ws.clamps += m.euler_step(f, oracle, x, dw, h, gw, aux);
            }
            Form::Closed { sigma, tables } => {
                self.closed_step(f, oracle, x, dw, s_dw, h, *sigma, tables.as_deref(), ws)
            }
            Form::Affine(sde) => {
                let aw = ws.affine.as_mut().expect("workspace built for this model");
                ws.clamps += super::musam::euler_step(sde, x, dw, h, aw);
            }
            Form::SecondOrder => {
                let sw = ws.second.as_mut().expect("workspace built for this model");
                self.second_order_step(f, oracle, x, dw, s_dw, h, sw)
            }
        }
    }

    fn new_second_order(
        kind: ModelKind,
        oracle: &Oracle,
        eta: f64,
        rho: f64,
        form: SdeForm,
    ) -> Result<Self> {
        if !matches!(kind.alg, AlgorithmKind::Sgd | AlgorithmKind::Usam) || kind.drift_only {
            return Err(Error::config(
                "models",
                format!("{:?}", kind.name()),
                "second-order models exist for SGD and USAM only (sgd_sde2, usam_sde2)",
            ));
        }
        if matches!(oracle, Oracle::Subsampling(_)) {
            return Err(Error::config(
                "oracle.kind",
                "\"subsampling\"",
                format!(
                    "{} needs the additive or full-batch oracle (its drift uses the constant noise covariance Σ = SSᵀ)",
                    kind.name()
                ),
            ));
        }
        if form == SdeForm::MonteCarlo {
            return Err(Error::config(
                "integration.sde_form",
                "\"monte_carlo\"",
                format!("{} has only a closed form; use \"auto\"", kind.name()),
            ));
        }
        let rho = if kind.alg == AlgorithmKind::Usam {
            rho
        } else {
            0.0
        };
        Ok(Self {
            kind,
            eta,
            rho,
            form: Form::SecondOrder,
        })
    }

    /// `x += −h B(x) + √η (z + ρHz)` per column, `z = S ΔW` ([`super::second_order`]).
    #[allow(clippy::too_many_arguments)]
    fn second_order_step(
        &self,
        f: &dyn Landscape,
        oracle: &Oracle,
        x: &mut Matrix,
        dw: &Matrix,
        s_dw: Option<&Matrix>,
        h: f64,
        sw: &mut SecondOrderScratch,
    ) {
        let d = f.dim();
        let (rho, sqrt_eta) = (self.rho, self.eta.sqrt());
        let (cov, sigma) = match oracle {
            Oracle::Additive(a) => match a.sigma() {
                Some(0.0) => (None, Some(0.0)),
                Some(s) => (Some(NoiseCov::Isotropic(s)), Some(s)),
                None => (Some(NoiseCov::Factor(a.s())), None),
            },
            _ => (None, Some(0.0)),
        };
        let m = dw.nrows();
        for j in 0..x.ncols() {
            let xc = &x.as_slice()[j * d..(j + 1) * d];
            second_order::drift_into(
                f,
                xc,
                self.eta,
                rho,
                cov,
                second_order::DriftTerms::ALL,
                &mut sw.drift,
                &mut sw.b,
            );
            // z = S ΔW (σΔW when isotropic), then D ΔW = z + ρHz.
            match (s_dw, sigma) {
                (_, Some(0.0)) => sw.z.fill(0.0),
                (Some(z), _) => sw.z.copy_from_slice(&z.as_slice()[j * d..(j + 1) * d]),
                (None, Some(s)) => {
                    for (zi, wi) in sw.z.iter_mut().zip(&dw.as_slice()[j * m..j * m + d]) {
                        *zi = s * wi;
                    }
                }
                (None, None) => unreachable!("a non-isotropic S comes with S ΔW"),
            }
            if rho != 0.0 {
                f.hess_vec_into(xc, &sw.z, &mut sw.hz);
            }
            let xc = &mut x.as_mut_slice()[j * d..(j + 1) * d];
            for (((xi, bi), zi), hzi) in xc.iter_mut().zip(&sw.b).zip(&sw.z).zip(&sw.hz) {
                let hz = if rho != 0.0 { rho * hzi } else { 0.0 };
                *xi += -h * bi + sqrt_eta * (zi + hz);
            }
        }
    }

    /// The closed forms. With `g = ∇f(x)`, `H = ∇²f(x)`, `z = S ΔW` and the drift coefficient
    /// `s` (`ρ` for USAM, `ρ/(‖g‖ + ε)` for DNSAM), the USAM and DNSAM increments share
    /// `I + sH`: `−(g + sHg) h + √η (z + sHz) = u + sHu` with `u = −hg + √η z`, which costs
    /// two products (`∇f` and `Hu`) instead of four. For isotropic noise `z = σΔW` is a scalar
    /// multiple, never a product.
    #[allow(clippy::too_many_arguments)]
    fn closed_step(
        &self,
        f: &dyn Landscape,
        oracle: &Oracle,
        x: &mut Matrix,
        dw: &Matrix,
        s_dw: Option<&Matrix>,
        h: f64,
        sigma: Option<f64>,
        tables: Option<&SamTables>,
        ws: &mut ModelWorkspace,
    ) {
        let (rho, sqrt_eta) = (self.rho, self.eta.sqrt());
        let alg = self.kind.alg;
        let d = f.dim();
        f.grad_batch(x, &mut ws.g);
        // No noise at all: full batch, or additive noise with S = 0 (σ = 0). SAM's tables need
        // σ > 0, and with σ = 0 its drift is the full-batch one (φ = 1).
        let noisy = match oracle {
            Oracle::FullBatch => false,
            Oracle::Additive(a) => a.sigma() != Some(0.0),
            Oracle::Subsampling(_) => true,
        };
        // z = S ΔW, as a scaled view of ΔW (isotropic) or the engine's product.
        let noise = if !noisy {
            Noise::Zero
        } else {
            match (oracle, s_dw) {
                (Oracle::Subsampling(_), _) => Noise::Zero, // handled below (SGD only)
                (_, Some(z)) => Noise::Given(z.as_slice()),
                (_, None) => Noise::Scaled(
                    sigma.expect("isotropic noise when S ΔW is not formed"),
                    dw.as_slice(),
                ),
            }
        };
        let drift_coef = |gc: &[f64]| -> f64 {
            match alg {
                AlgorithmKind::Sgd => 0.0,
                // With H_γ = H and one noise draw for every micro-batch, m-USAM is USAM.
                AlgorithmKind::Usam | AlgorithmKind::Musam => rho,
                AlgorithmKind::Dnsam => rho / (norm(gc) + NORM_EPS),
                AlgorithmKind::Sam => {
                    let n = norm(gc);
                    let phi = match (sigma, tables) {
                        (Some(s), Some(t)) if s > 0.0 => t.eval(n / s).phi,
                        _ => 1.0,
                    };
                    rho * phi / (n + NORM_EPS)
                }
            }
        };
        let fused = !self.kind.drift_only
            && matches!(
                alg,
                AlgorithmKind::Usam | AlgorithmKind::Musam | AlgorithmKind::Dnsam
            )
            && !matches!(oracle, Oracle::Subsampling(_));
        if fused {
            // u = −h g + √η z (in ws.diff), Hu (in ws.hz), x += u + s Hu.
            noise.axpby_into(-h, ws.g.as_slice(), sqrt_eta, ws.diff.as_mut_slice());
            f.hess_vec_batch(x, &ws.diff, &mut ws.hz);
            let cols = x.as_mut_slice().chunks_exact_mut(d);
            let rest =
                ws.g.as_slice()
                    .chunks_exact(d)
                    .zip(ws.diff.as_slice().chunks_exact(d))
                    .zip(ws.hz.as_slice().chunks_exact(d));
            for (xc, ((gc, uc), huc)) in cols.zip(rest) {
                let c = drift_coef(gc);
                for ((xi, ui), hui) in xc.iter_mut().zip(uc).zip(huc) {
                    *xi += ui + c * hui;
                }
            }
            return;
        }
        if alg != AlgorithmKind::Sgd {
            f.hess_vec_batch(x, &ws.g, &mut ws.hg);
        }
        // Diffusion √η D ΔW into ws.diff (it needs x before the update).
        let mut diffusion = noisy;
        match oracle {
            Oracle::Subsampling(_) if noisy => {
                // Only SGD reaches here (others use the Monte Carlo form).
                sgd_subsampling_diffusion(f, oracle, x, dw, &mut ws.diff, &mut ws.tmp);
            }
            _ if !noisy => {}
            _ if self.kind.drift_only || alg == AlgorithmKind::Sgd => {
                // The SGD diffusion z is added directly below.
                diffusion = false;
            }
            _ => {
                // SAM (isotropic: the Brownian dimension equals d).
                debug_assert_eq!(dw.nrows(), d);
                f.hess_vec_batch(x, dw, &mut ws.hz);
                let sigma = sigma.expect("closed-form SAM needs σ");
                let tables = tables.expect("closed-form SAM needs tables");
                sam_update(
                    x,
                    (&ws.g, &ws.hg, dw, &ws.hz),
                    (sigma, rho, h, sqrt_eta),
                    tables,
                    &mut ws.sam,
                );
                return;
            }
        }
        // x += −h (g + s Hg) + √η (diffusion or z).
        for (j, xc) in x.as_mut_slice().chunks_exact_mut(d).enumerate() {
            let r = j * d..(j + 1) * d;
            let gc = &ws.g.as_slice()[r.clone()];
            let c = drift_coef(gc);
            let hgc = &ws.hg.as_slice()[r.clone()];
            for (i, xi) in xc.iter_mut().enumerate() {
                let mut v = -h * gc[i];
                if c != 0.0 {
                    v -= h * c * hgc[i];
                }
                *xi += v;
            }
            if diffusion {
                for (xi, di) in xc.iter_mut().zip(&ws.diff.as_slice()[r]) {
                    *xi += sqrt_eta * di;
                }
            } else {
                noise.add_scaled_col(sqrt_eta, j * d, xc);
            }
        }
    }
}

/// Scratch of the second-order models: the drift's workspace, `B`, `z = SΔW` and `Hz`.
#[derive(Debug)]
struct SecondOrderScratch {
    drift: second_order::DriftWorkspace,
    b: Vec<f64>,
    z: Vec<f64>,
    hz: Vec<f64>,
}

impl SecondOrderScratch {
    fn new(d: usize) -> Self {
        Self {
            drift: second_order::DriftWorkspace::new(d),
            b: vec![0.0; d],
            z: vec![0.0; d],
            hz: vec![0.0; d],
        }
    }
}

/// `z = S ΔW` without forming it when `S = σI`.
enum Noise<'a> {
    /// No noise.
    Zero,
    /// `z = c · w`.
    Scaled(f64, &'a [f64]),
    /// `z` given.
    Given(&'a [f64]),
}

impl Noise<'_> {
    /// `out = a·g + b·z`.
    fn axpby_into(&self, a: f64, g: &[f64], b: f64, out: &mut [f64]) {
        match *self {
            Noise::Zero => {
                for (o, gi) in out.iter_mut().zip(g) {
                    *o = a * gi;
                }
            }
            Noise::Scaled(c, w) => {
                let bc = b * c;
                for ((o, gi), wi) in out.iter_mut().zip(g).zip(w) {
                    *o = a * gi + bc * wi;
                }
            }
            Noise::Given(z) => {
                for ((o, gi), zi) in out.iter_mut().zip(g).zip(z) {
                    *o = a * gi + b * zi;
                }
            }
        }
    }
    /// `x += b · z[start..start + len]`.
    fn add_scaled_col(&self, b: f64, start: usize, x: &mut [f64]) {
        let r = start..start + x.len();
        match *self {
            Noise::Zero => {}
            Noise::Scaled(c, w) => {
                let bc = b * c;
                for (xi, wi) in x.iter_mut().zip(&w[r]) {
                    *xi += bc * wi;
                }
            }
            Noise::Given(z) => {
                for (xi, zi) in x.iter_mut().zip(&z[r]) {
                    *xi += b * zi;
                }
            }
        }
    }
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|a| a * a).sum::<f64>().sqrt()
}

/// Tables of `φ, a, c` are built once per dimension per process and shared.
pub fn shared_tables(d: usize) -> Arc<SamTables> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static CACHE: OnceLock<Mutex<HashMap<usize, Arc<SamTables>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let mut map = cache.lock().expect("table cache poisoned");
    map.entry(d)
        .or_insert_with(|| Arc::new(SamTables::new(d)))
        .clone()
}

/// `out = D(x) dW` for the SGD SDE under subsampling, `D = √(c_B/N)[∇f_i − ∇f]_i`.
fn sgd_subsampling_diffusion(
    f: &dyn Landscape,
    oracle: &Oracle,
    x: &Matrix,
    dw: &Matrix,
    out: &mut Matrix,
    tmp: &mut (Vec<f64>, Vec<f64>),
) {
    let Oracle::Subsampling(s) = oracle else {
        unreachable!()
    };
    let fs = f.as_finite_sum().expect("validated: finite sum");
    let d = f.dim();
    let scale = (s.c_b() / s.n as f64).sqrt();
    let (g, gi) = (&mut tmp.0, &mut tmp.1);
    let (xs, dws) = (x.as_slice(), dw.as_slice());
    let m = dw.nrows();
    for (j, o) in out.as_mut_slice().chunks_exact_mut(d).enumerate() {
        let xj = &xs[j * d..(j + 1) * d];
        let wj = &dws[j * m..(j + 1) * m];
        f.grad_into(xj, g);
        o.fill(0.0);
        for (i, &wi) in wj.iter().enumerate().take(s.n) {
            fs.sample_grad_into(i, xj, gi);
            for k in 0..d {
                o[k] += scale * (gi[k] - g[k]) * wi;
            }
        }
    }
}

/// One Euler–Maruyama step of closed-form SAM:
/// `x += −h (g + s Hg) + √η D ΔW` with the drift coefficient `s = ρ φ(r)/(‖g‖ + ε)`,
/// `r = ‖g‖/σ`, and `D ΔW = σ w + (ρ/2)[2a Hw + (c − a)((ĝ·w) Hĝ + (ĝ·Hw) ĝ)]`
/// (one table evaluation per path and step serves both; `w = ΔW`).
///
/// Three sweeps over the block, each with independent work per path so that the processor
/// overlaps paths: the three dot products of every path, the table evaluation and scalar
/// coefficients of every path (`coefs`), then one fused update pass.
fn sam_update(
    x: &mut Matrix,
    (g, hg, w, hw): (&Matrix, &Matrix, &Matrix, &Matrix),
    (sigma, rho, h, sqrt_eta): (f64, f64, f64, f64),
    tables: &SamTables,
    coefs: &mut [[f64; 4]],
) {
    let d = g.nrows();
    let gs = g.as_slice().chunks_exact(d);
    let ws = w.as_slice().chunks_exact(d);
    let hws = hw.as_slice().chunks_exact(d);
    for (cf, ((gc, wc), hwc)) in coefs.iter_mut().zip(gs.zip(ws).zip(hws)) {
        let (gc, wc, hwc) = (&gc[..d], &wc[..d], &hwc[..d]);
        // ‖g‖², g·w, g·Hw in one sweep, each summed in index order from −0.0 like
        // `Iterator::sum`, so the bits are those of separate sums.
        let (mut n2, mut gw, mut ghw) = (-0.0, -0.0, -0.0);
        for i in 0..d {
            n2 += gc[i] * gc[i];
            gw += gc[i] * wc[i];
            ghw += gc[i] * hwc[i];
        }
        *cf = [n2, gw, ghw, 0.0];
    }
    for cf in coefs.iter_mut() {
        let [n2, gw, ghw, _] = *cf;
        let n = n2.sqrt();
        let coef = tables.eval(n / sigma);
        let inv = 1.0 / (n + NORM_EPS);
        let c = rho * coef.phi * inv;
        let g_dot_w = gw * inv;
        let g_dot_hw = ghw * inv;
        let k = 0.5 * rho * (coef.c - coef.a);
        *cf = [c, rho * coef.a, k * g_dot_w * inv, k * g_dot_hw * inv];
    }
    let cols = x.as_mut_slice().chunks_exact_mut(d).zip(
        g.as_slice()
            .chunks_exact(d)
            .zip(hg.as_slice().chunks_exact(d))
            .zip(
                w.as_slice()
                    .chunks_exact(d)
                    .zip(hw.as_slice().chunks_exact(d)),
            ),
    );
    for ((xc, ((gc, hgc), (wc, hwc))), cf) in cols.zip(coefs.iter()) {
        let (xc, gc, hgc, wc, hwc) = (&mut xc[..d], &gc[..d], &hgc[..d], &wc[..d], &hwc[..d]);
        let [c, ca, cg, cgg] = *cf;
        if c != 0.0 {
            for i in 0..d {
                let v = -h * gc[i] - h * c * hgc[i];
                let diff = sigma * wc[i] + ca * hwc[i] + cg * hgc[i] + cgg * gc[i];
                xc[i] = (xc[i] + v) + sqrt_eta * diff;
            }
        } else {
            for i in 0..d {
                let v = -h * gc[i];
                let diff = sigma * wc[i] + ca * hwc[i] + cg * hgc[i] + cgg * gc[i];
                xc[i] = (xc[i] + v) + sqrt_eta * diff;
            }
        }
    }
}
