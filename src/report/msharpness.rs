//! Table, CSV and figure of the m-sharpness study.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::Result;
use crate::output::{to_json, Staging};
use crate::plot::dots::{draw_dot_panel, DotPanel, DotSeries};
use crate::plot::draw_err;
use crate::registry::{Experiment, Overrides, Progress, StudyDef};
use crate::study::msharpness::{MSharpnessConfig, MSharpnessReport, MSharpnessStudy};
use crate::study::verdict::{Observation, Verdict};

/// The printed summary.
pub fn table(r: &MSharpnessReport) -> String {
    let mut s = String::new();
    let c = &r.header.config;
    let _ = writeln!(s, "{}", c.display_title());
    let _ = writeln!(
        s,
        "{} · B = {} · η = {} · ρ = {} · exact moments · {:.2} s",
        r.landscape, r.batch, c.eta, c.rho, r.header.elapsed_s
    );
    let _ = writeln!(
        s,
        "tr Cov_i(∇f_i(x*)) = {:.4e}; stationary laws of the discrete algorithm (fixed point of the moment recursion) and of the SDE (zero of the moment ODE)",
        r.trace_cov_at_minimizer
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "{:>6} {:>8} {:>14} {:>12} {:>24} {:>24}",
        "m",
        "c_m",
        "(ρ/2)trΣ_m(x*)",
        "mean shift",
        "E f − f*: disc / SDE",
        "E‖x − x*‖²: disc / SDE"
    );
    let mut line = |label: String, x: &crate::study::msharpness::MicroRow| {
        let _ = writeln!(
            s,
            "{:>6} {:>8.4} {:>14.4e} {:>12.4e} {:>11.4e} / {:<11.4e} {:>11.4e} / {:<11.4e}",
            label,
            x.c_m,
            x.penalty_at_minimizer,
            x.mean_shift,
            x.loss_discrete,
            x.loss_sde,
            x.dist_discrete,
            x.dist_sde
        );
    };
    line("SGD".into(), &r.sgd);
    for x in &r.rows {
        line(x.m.to_string(), x);
    }
    let _ = writeln!(s);
    for o in &r.observations {
        let _ = writeln!(s, "{}", o.line());
    }
    let _ = writeln!(s);
    for v in &r.verdicts {
        let _ = writeln!(s, "{}", v.line(true));
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "{}", crate::study::verdict::summary_line(&r.verdicts));
    s
}

/// One CSV row per micro-batch size (SGD first, `m = 0`).
pub fn csv(r: &MSharpnessReport) -> String {
    let mut s = String::from(
        "m,c_m,penalty_at_minimizer,mean_shift,loss_discrete,loss_sde,dist_discrete,dist_sde\n",
    );
    for (m, x) in std::iter::once((0, &r.sgd)).chain(r.rows.iter().map(|x| (x.m, x))) {
        let _ = writeln!(
            s,
            "{m},{},{},{},{},{},{},{}",
            x.c_m,
            x.penalty_at_minimizer,
            x.mean_shift,
            x.loss_discrete,
            x.loss_sde,
            x.dist_discrete,
            x.dist_sde
        );
    }
    s
}

/// The 2 × 2 figure: the implicit penalty and the mean shift against `m`, and the stationary
/// loss and distance, discrete beside SDE, with SGD as the reference bar.
pub fn draw_figure<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    r: &MSharpnessReport,
) -> Result<()> {
    let (w, _) = root.dim_in_pixel();
    let sc = (w as f64 / 1400.0).clamp(0.5, 3.0);
    let c = &r.header.config;
    let root = crate::plot::titled(
        root,
        &format!(
            "{}   (η = {}, ρ = {}, B = {}; exact moments)",
            c.display_title(),
            c.eta,
            c.rho,
            r.batch
        ),
        20.0 * sc,
    )
    .map_err(draw_err)?;
    let panels = root.split_evenly((2, 2));
    let cats: Vec<String> = r.rows.iter().map(|x| format!("m = {}", x.m)).collect();
    let point = |v: f64| (v, v, v);
    let one = |label: &str, get: &dyn Fn(&crate::study::msharpness::MicroRow) -> f64| DotSeries {
        label: label.into(),
        values: r.rows.iter().map(|x| point(get(x))).collect(),
    };
    draw_dot_panel(
        &panels[0],
        &DotPanel {
            title: "implicit penalty of the m-USAM SDE at x*: (ρ/2) tr Σ_m(x*)",
            y_label: "(ρ/2) c_m tr Cov_i(∇f_i(x*))",
            categories: cats.clone(),
            series: vec![one("m-USAM SDE drift", &|x| x.penalty_at_minimizer)],
            reference: None,
            log_y: false,
            unit_interval: false,
        },
    )?;
    draw_dot_panel(
        &panels[1],
        &DotPanel {
            title: "shift of the stationary mean from x* (discrete and SDE: equal)",
            y_label: "‖E x_∞ − x*‖",
            categories: cats.clone(),
            series: vec![one("discrete and SDE", &|x| x.mean_shift)],
            reference: None,
            log_y: false,
            unit_interval: false,
        },
    )?;
    let sgd_ref = |v: f64| Some(("SGD (ρ = 0), discrete".to_string(), vec![v; r.rows.len()]));
    draw_dot_panel(
        &panels[2],
        &DotPanel {
            title: "stationary loss E f − f*",
            y_label: "E f(x_∞) − f*",
            categories: cats.clone(),
            series: vec![
                one("m-USAM, discrete", &|x| x.loss_discrete),
                one("m-USAM SDE", &|x| x.loss_sde),
            ],
            reference: sgd_ref(r.sgd.loss_discrete),
            log_y: false,
            unit_interval: false,
        },
    )?;
    draw_dot_panel(
        &panels[3],
        &DotPanel {
            title: "stationary distance to the minimizer E‖x − x*‖²",
            y_label: "E‖x_∞ − x*‖²",
            categories: cats,
            series: vec![
                one("m-USAM, discrete", &|x| x.dist_discrete),
                one("m-USAM SDE", &|x| x.dist_sde),
            ],
            reference: sgd_ref(r.sgd.dist_discrete),
            log_y: false,
            unit_interval: false,
        },
    )?;
    Ok(())
}

/// Writes `msharpness.json`, `.csv`, `.png`, `.svg` atomically.
pub fn write(r: &MSharpnessReport, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut st = Staging::new(dir)?;
    st.bytes("msharpness.json", &to_json(r)?)?;
    st.bytes("msharpness.csv", csv(r).as_bytes())?;
    st.with("msharpness.png", |p| {
        crate::plot::render_png(p, (1400, 1000), |a| draw_figure(a, r))
    })?;
    st.with("msharpness.svg", |p| {
        crate::plot::render_svg(p, (1400, 1000), |a| draw_figure(a, r))
    })?;
    st.commit()
}

/// The m-sharpness study in the registry.
pub struct Def(MSharpnessStudy);

impl StudyDef for Def {
    type Config = MSharpnessConfig;
    type Report = MSharpnessReport;
    const NAME: &'static str = "msharpness";
    const ABOUT: &'static str =
        "m-sharpness through the SDE: m-USAM's implicit penalty and stationary law against the micro-batch size m, exactly";
    const LONG_ABOUT: &'static str = "m-sharpness through the SDE: m-USAM's implicit penalty (ρ/2) tr Σ_m at the minimizer and its stationary loss and distance to the minimizer, for every micro-batch size m, from exact moments (discrete recursion and SDE moment ODE; no Monte Carlo).\n\nWithout CONFIG, runs the embedded default (experiments/msharpness_least_squares.toml): least squares with N = 32, d = 4, batches of 16, m = 1, 2, 4, 8, 16. Writes msharpness.json, .csv, .png and .svg to --out (default plots/msharpness). --seed sets the data seed; --paths, --seeds and --profile are not options (nothing is sampled).";
    const DEFAULT: Experiment = Experiment {
        path: "experiments/msharpness_least_squares.toml",
        text: crate::study::msharpness::DEFAULT_CONFIG,
    };
    const EXPERIMENTS: &'static [Experiment] = &[Self::DEFAULT];

    fn apply(c: &mut MSharpnessConfig, o: &Overrides) -> Result<()> {
        if o.paths.is_some() {
            return Err(Overrides::unsupported(Self::NAME, "--paths"));
        }
        if let Some(s) = o.seed {
            if let crate::study::setup::LandscapeConfig::LeastSquares { seed, .. } =
                &mut c.landscape
            {
                *seed = s;
            }
        }
        o.reject_seeds_and_profile(Self::NAME)
    }
    fn build(config: MSharpnessConfig) -> Result<Self> {
        MSharpnessStudy::new(config).map(Def)
    }
    fn config(&self) -> &MSharpnessConfig {
        &self.0.config
    }
    fn total_work(&self) -> u64 {
        0
    }
    fn run(&self, threads: usize, _progress: Option<Progress>) -> Result<MSharpnessReport> {
        self.0.run(threads)
    }
    fn table(r: &MSharpnessReport) -> String {
        table(r)
    }
    fn write(&self, r: &MSharpnessReport, dir: &Path) -> Result<Vec<PathBuf>> {
        write(r, dir)
    }
    fn verdicts(r: &MSharpnessReport) -> &[Verdict] {
        &r.verdicts
    }
    fn observations(r: &MSharpnessReport) -> &[Observation] {
        &r.observations
    }

    /// The exact computation works on `d × d` moments and their `d² × d²` batch-law operators
    /// (one set per micro-batch size), solved by dense linear algebra: memory `≈ 8 d⁴` bytes per
    /// operator, work `≈ d⁶` per solve, plus the landscape's data (`N × d`).
    fn budget(config: &MSharpnessConfig, threads: usize) -> Result<crate::study::budget::Budget> {
        use crate::study::budget::{Budget, F64};
        let _ = threads;
        let mut b = Budget::new(Self::NAME);
        let land = config.landscape.budget(&mut b)?;
        config
            .oracle
            .budget(land.dim, land.dim_field, land.n_samples, &mut b)?;
        let d = land.dim as f64;
        let sizes = config
            .micro_batches
            .as_ref()
            .map_or(8.0, |m| m.len() as f64 + 2.0);
        b.mem(
            "batch-law operators",
            &[land.dim_field],
            4.0 * d.powi(4) * F64,
        );
        b.flops(
            "moment solves",
            &[land.dim_field, "micro_batches"],
            sizes * 2.0 * d.powi(6),
        );
        Ok(b)
    }
}
