//! `sde-check`: the command-line front end. Parsing, thread pool, progress bar, printing and
//! file writing live here; every number is computed by the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use samsde::study::convergence::{ConvergenceStudy, DEFAULT_CONFIG};

/// Check continuous-time (SDE) models of Sharpness-Aware Minimization against the discrete
/// algorithms, with confidence intervals and verdicts.
///
/// Exit codes: 0 every verdict passes; 1 a verdict failed or is inconclusive; 2 bad input or
/// runtime error (nothing is written then).
#[derive(Parser, Debug)]
#[command(name = "sde-check", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Weak error of each algorithm against SDE models, its order in η, and a verdict per pair.
    ///
    /// Without CONFIG, runs the embedded default (experiments/convergence_quadratic.toml):
    /// USAM, DNSAM, SAM and SGD on Paper 1's d = 20 quadratic, each against its own SDE and the
    /// SGD SDE, ρ ∝ √η. Writes convergence.json, .csv, .png and .svg to --out.
    Convergence(CommonArgs),
    /// Saddle points: where SAM gets stuck, measured against the theory (SPEC §6).
    ///
    /// Without CONFIG, runs the embedded default (experiments/saddle_default.toml) on
    /// H = diag(1, −0.5), η = 0.01: the SPEC §6 reference run, distance-to-saddle curves and
    /// escape times (discrete and SDE/ODE), and attraction phase diagrams over (ρ, |λ|) and
    /// (ρ, σ) with the predicted boundaries. Writes saddle.json, saddle_phase.csv,
    /// saddle_curves.csv, saddle_phase.png/.svg and saddle_curves.png/.svg to --out
    /// (default plots/saddle). --paths sets the paths of the noisy reference rows, the curves and
    /// the discrete phase diagrams (deterministic reference rows always run one path; the SDE
    /// panel keeps phase_rho_sigma.sde_paths).
    Saddle(CommonArgs),
    /// Flat-minimum preference on a two-basin landscape, exit times, stationary losses.
    ///
    /// Without CONFIG, runs the embedded default (experiments/flatness_two_basin.toml): SGD,
    /// USAM, DNSAM and SAM and their SDEs on a 2-D landscape with a flat and a 10× sharper
    /// basin of equal depth, started on the ridge; plus the stationary loss of the USAM and SGD
    /// SDEs on a quadratic against (ησ²/4)(d + ρ tr H). Writes flatness.json, .csv, .png, .svg.
    Flatness(CommonArgs),
    /// E g(x_k) and E g(X_t) over time for each algorithm and its SDE, with bands; 2-D surfaces.
    ///
    /// Without CONFIG, runs the embedded default (experiments/trajectories_two_basin.toml):
    /// SGD, USAM, DNSAM and SAM beside their SDEs on the 2-D two-basin landscape. Writes
    /// trajectories.json, .csv, .png, .svg, and for 2-D landscapes surfaces.png and .svg.
    Trajectories(CommonArgs),
    /// Engine speed on five reference problems: wall and CPU seconds, path-steps per second and
    /// per CPU-second, and E‖X_T‖² with its 95% CI (and the exact value where one exists).
    ///
    /// Problems: usam_sde, dnsam_sde, sam_sde (Euler–Maruyama, h = η), usam_discrete
    /// (d = 20 Wishart quadratic, σ = 0.5, ρ = 0.1, η = 0.01) and sgd_subsampling (least
    /// squares, N = 32, B = 4). Writes nothing; see BENCHMARKS.md.
    Bench(BenchArgs),
}

#[derive(Args, Debug)]
struct BenchArgs {
    /// Problem to run (repeatable; default: all five).
    #[arg(long = "problem")]
    problems: Vec<String>,
    /// Paths per problem (default 10000).
    #[arg(long)]
    paths: Option<usize>,
    /// Steps per path (default 1000).
    #[arg(long)]
    steps: Option<usize>,
    /// Worker threads (default 1).
    #[arg(long)]
    threads: Option<usize>,
    /// Print the JSON report instead of the table.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct CommonArgs {
    /// TOML configuration (default: the embedded one; see README for the format).
    config: Option<PathBuf>,
    /// Output folder.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Override the number of Monte Carlo paths.
    #[arg(long)]
    paths: Option<usize>,
    /// Worker threads (default: all cores). Results do not depend on it.
    #[arg(long)]
    threads: Option<usize>,
    /// Override the master seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Print the (validated) configuration as TOML and exit without running.
    #[arg(long)]
    print_config: bool,
    /// Print the JSON report to stdout instead of the table.
    #[arg(long)]
    json: bool,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<bool> {
    match cli.command {
        Command::Convergence(args) => convergence(args),
        Command::Saddle(args) => saddle(args),
        Command::Flatness(args) => flatness(args),
        Command::Trajectories(args) => trajectories(args),
        Command::Bench(args) => bench(args),
    }
}

fn read_config(path: &Option<PathBuf>, default: &str) -> anyhow::Result<String> {
    match path {
        None => Ok(default.to_string()),
        Some(p) => std::fs::read_to_string(p)
            .with_context(|| format!("cannot read configuration {}", p.display())),
    }
}

fn thread_pool(threads: Option<usize>) -> anyhow::Result<(rayon::ThreadPool, usize)> {
    let n = match threads {
        Some(0) => anyhow::bail!("--threads must be ≥ 1, got 0"),
        Some(n) => n,
        None => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
    };
    let pool = rayon::ThreadPoolBuilder::new().num_threads(n).build()?;
    Ok((pool, n))
}

fn progress_bar(total: u64, quiet: bool) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if quiet || total == 0 {
        pb.set_draw_target(ProgressDrawTarget::hidden());
    }
    pb.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {percent:>3}% path-steps, eta {eta}",
        )
        .expect("valid template"),
    );
    pb
}

/// The part every study shares once its configuration is validated: `--print-config`, the
/// thread pool, the progress bar, the run, the atomic write, and the printed table or JSON.
type Progress<'p> = &'p (dyn Fn(u64) + Sync);
type RunFn<'a, R> = Box<dyn FnOnce(usize, Progress) -> samsde::Result<R> + Send + 'a>;
type WriteFn<'a, R> = Box<dyn FnOnce(&R, &Path) -> samsde::Result<Vec<PathBuf>> + 'a>;

struct Job<'a, R> {
    config_toml: String,
    total_work: u64,
    default_out: &'static str,
    run: RunFn<'a, R>,
    write: WriteFn<'a, R>,
    table: fn(&R) -> String,
    all_pass: fn(&R) -> bool,
}

fn execute<R: serde::Serialize + Send>(args: CommonArgs, job: Job<R>) -> anyhow::Result<bool> {
    if args.print_config {
        print!("{}", job.config_toml);
        return Ok(true);
    }
    let (pool, threads) = thread_pool(args.threads)?;
    let pb = progress_bar(job.total_work, args.quiet);
    let done = AtomicU64::new(0);
    let tick = |n: u64| {
        let v = done.fetch_add(n, Ordering::Relaxed) + n;
        pb.set_position(v);
    };
    let run = job.run;
    let report = pool.install(|| run(threads, &tick))?;
    pb.finish_and_clear();
    let out = args.out.unwrap_or_else(|| PathBuf::from(job.default_out));
    let written = (job.write)(&report, &out)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", (job.table)(&report));
        for w in &written {
            println!("wrote {}", w.display());
        }
    }
    Ok((job.all_pass)(&report))
}

/// Reads CONFIG (or the embedded default) into a study's raw configuration.
fn load<T: serde::de::DeserializeOwned>(args: &CommonArgs, default: &str) -> anyhow::Result<T> {
    let text = read_config(&args.config, default)?;
    samsde::study::setup::parse_toml(&text).context("invalid configuration")
}

fn convergence(args: CommonArgs) -> anyhow::Result<bool> {
    use samsde::report::convergence as report;
    use samsde::study::convergence::ConvergenceConfig;
    let mut config: ConvergenceConfig = load(&args, DEFAULT_CONFIG)?;
    if let Some(p) = args.paths {
        config.paths = p;
    }
    if let Some(s) = args.seed {
        config.seed = s;
    }
    let study = ConvergenceStudy::new(config).context("invalid configuration")?;
    let job = Job {
        config_toml: toml::to_string_pretty(&study.config)?,
        total_work: study.total_work(),
        default_out: "plots/convergence",
        run: Box::new(|threads, tick| study.run(threads, Some(tick))),
        write: Box::new(report::write),
        table: report::table,
        all_pass: |r| r.all_pass(),
    };
    execute(args, job)
}

fn saddle(args: CommonArgs) -> anyhow::Result<bool> {
    use samsde::report::saddle as report;
    use samsde::study::saddle::{SaddleConfig, SaddleStudy, DEFAULT_CONFIG};
    let mut config: SaddleConfig = load(&args, DEFAULT_CONFIG)?;
    if let Some(p) = args.paths {
        config.reference.paths = p;
        config.curves.paths = p;
        config.phase_rho_lambda.paths = p;
        config.phase_rho_sigma.paths = p;
    }
    if let Some(s) = args.seed {
        config.seed = s;
    }
    let study = SaddleStudy::new(config).context("invalid configuration")?;
    let job = Job {
        config_toml: toml::to_string_pretty(&study.config)?,
        total_work: study.total_work(),
        default_out: "plots/saddle",
        run: Box::new(|threads, tick| study.run(threads, Some(tick))),
        write: Box::new(report::write),
        table: report::table,
        all_pass: |r| r.all_pass(),
    };
    execute(args, job)
}

fn flatness(args: CommonArgs) -> anyhow::Result<bool> {
    use samsde::report::flatness as report;
    use samsde::study::flatness::{FlatnessConfig, FlatnessStudy, DEFAULT_CONFIG};
    let mut config: FlatnessConfig = load(&args, DEFAULT_CONFIG)?;
    if let Some(p) = args.paths {
        config.paths = p;
    }
    if let Some(s) = args.seed {
        config.seed = s;
    }
    let study = FlatnessStudy::new(config).context("invalid configuration")?;
    let job = Job {
        config_toml: toml::to_string_pretty(&study.config)?,
        total_work: study.total_work(),
        default_out: "plots/flatness",
        run: Box::new(|threads, tick| study.run(threads, Some(tick))),
        write: Box::new(report::write),
        table: report::table,
        all_pass: |r| r.all_pass(),
    };
    execute(args, job)
}

fn trajectories(args: CommonArgs) -> anyhow::Result<bool> {
    use samsde::report::trajectories as report;
    use samsde::study::trajectories::{TrajectoriesConfig, TrajectoriesStudy, DEFAULT_CONFIG};
    let mut config: TrajectoriesConfig = load(&args, DEFAULT_CONFIG)?;
    if let Some(p) = args.paths {
        config.paths = p;
    }
    if let Some(s) = args.seed {
        config.seed = s;
    }
    let study = TrajectoriesStudy::new(config).context("invalid configuration")?;
    let job = Job {
        config_toml: toml::to_string_pretty(&study.config)?,
        total_work: study.total_work(),
        default_out: "plots/trajectories",
        run: Box::new(|threads, tick| study.run(threads, Some(tick))),
        write: Box::new(|r, out| report::write(r, study.landscape(), out)),
        table: report::table,
        all_pass: |r| r.all_pass(),
    };
    execute(args, job)
}

fn bench(args: BenchArgs) -> anyhow::Result<bool> {
    use samsde::bench::{self, BenchConfig, BenchProblem};
    let mut config = BenchConfig::default();
    if !args.problems.is_empty() {
        config.problems = args
            .problems
            .iter()
            .map(|p| BenchProblem::parse(p))
            .collect::<samsde::Result<_>>()?;
    }
    config.paths = args.paths.unwrap_or(config.paths);
    config.steps = args.steps.unwrap_or(config.steps);
    config.threads = args.threads.unwrap_or(config.threads);
    let report = bench::run(&config)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", bench::table(&report));
    }
    Ok(true)
}
