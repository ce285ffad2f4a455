//! `sde-check`: the command-line front end. Parsing, thread pool, progress bar, printing and
//! file writing live here; every number is computed by the library. The study subcommands are
//! generated from the library's registry ([`samsde::registry::studies`]), so a new study
//! appears here by registering there.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use clap::{ArgMatches, Args, Command, FromArgMatches};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use samsde::registry::{self, Limits, Overrides, StudyEntry};
use samsde::study::budget;

const ABOUT: &str = "Check continuous-time (SDE) models of Sharpness-Aware Minimization against \
the discrete algorithms, with confidence intervals and verdicts";

const LONG_ABOUT: &str = "Check continuous-time (SDE) models of Sharpness-Aware Minimization \
against the discrete algorithms, with confidence intervals and verdicts.\n\n\
Every study runs its embedded default without CONFIG; CONFIG is a TOML file or a result JSON \
written by the same study (its recorded configuration repeats the run). `sde-check list` shows \
the shipped configurations.\n\n\
Exit codes: 0 every verdict passes; 1 a verdict failed or is inconclusive; 2 bad input or \
runtime error (nothing is written then).\n\n\
Before anything is allocated, every study estimates the run's memory and time: a run that \
needs more than half the physical memory (SAMSDE_MAX_MEMORY overrides, e.g. 8G) is refused, \
and one estimated longer than 2 hours needs --yes (also under --print-config).";

/// Options shared by every study subcommand.
#[derive(Args, Debug)]
struct CommonArgs {
    /// TOML configuration, or a result JSON of the same study (default: the embedded one).
    config: Option<PathBuf>,
    /// Output folder (created if missing; checked for writing before the run starts).
    #[arg(long)]
    out: PathBuf,
    /// Override the number of Monte Carlo paths (see the study's help for what it sets).
    #[arg(long, allow_negative_numbers = true)]
    paths: Option<usize>,
    /// Override the number of independent seeds (studies that run over seeds).
    #[arg(long, allow_negative_numbers = true)]
    seeds: Option<usize>,
    /// Size preset of studies that have them (e.g. quick, paper).
    #[arg(long)]
    profile: Option<String>,
    /// Worker threads [default: all cores]. Results do not depend on it.
    #[arg(long, allow_negative_numbers = true)]
    threads: Option<usize>,
    /// Override the master seed.
    #[arg(long, allow_negative_numbers = true)]
    seed: Option<u64>,
    /// Print the validated configuration (every default filled in) as TOML and exit.
    #[arg(long)]
    print_config: bool,
    /// Print the JSON report to stdout instead of the table.
    #[arg(long)]
    json: bool,
    /// No progress bar (and no printed time estimate).
    #[arg(long, short)]
    quiet: bool,
    /// Compute only shard I of N of the Monte Carlo work and write
    /// `<study>.shard-I-of-N.bin` to --out instead of results; `sde-check merge` combines the
    /// N shards into exactly the single run's results.
    #[arg(long, value_name = "I/N")]
    shard: Option<String>,
    /// Run even when the estimated time exceeds the limit for unconfirmed runs (2 h); memory
    /// limits still apply. The estimate is printed before any run estimated above a minute.
    #[arg(long, short = 'y')]
    yes: bool,
}

fn cli() -> Command {
    let mut cmd = Command::new("sde-check")
        .version(env!("CARGO_PKG_VERSION"))
        .about(ABOUT)
        .long_about(LONG_ABOUT)
        .subcommand_required(true)
        .arg_required_else_help(true);
    for s in registry::studies() {
        let sub = CommonArgs::augment_args(Command::new(s.name))
            .about(s.about)
            .long_about(s.long_about)
            .mut_arg("out", |a| {
                // clap keeps defaults as `&'static str`; one short string per study, once.
                let out: &'static str = Box::leak(s.default_out().display().to_string().into());
                a.default_value(out).required(false)
            });
        cmd = cmd.subcommand(sub);
    }
    cmd.subcommand(
        Command::new("list").about("List the shipped experiment configurations, one line each"),
    )
    .subcommand(MergeArgs::augment_args(
        Command::new("merge")
            .about("Merge the shard files of one study run into its results, bit-identical to a single run")
            .long_about(
                "Merge the shard files of one study run (written by `sde-check STUDY --shard I/N`) into the study's normal result files, bit-identical to the same run on one machine (timings and the thread count aside).\n\nThe shards must be all N shards of one run, each once: same study, samsde version, seed and configuration; anything else is refused with an error naming the files (exit 2). scripts/slurm/ has a Slurm job array and a GNU parallel script that do this.",
            ),
    ))
    .subcommand(ReproduceArgs::augment_args(
        Command::new("reproduce")
            .about("Run every study and write one claims report (report.md, report.html, summary.json)")
            .long_about(samsde::reproduce::LONG_ABOUT),
    ))
    .subcommand(BenchArgs::augment_args(
        Command::new("bench")
            .about("Engine speed on five reference problems, with E‖X_T‖² and its CI beside the exact value")
            .long_about(
                "Engine speed on five reference problems: wall and CPU seconds, path-steps per second and per CPU-second, and E‖X_T‖² with its 95% CI (and the exact value where one exists), so speed is never reported without correctness.\n\nProblems: usam_sde, dnsam_sde, sam_sde (Euler–Maruyama, h = η), usam_discrete (d = 20 Wishart quadratic, σ = 0.5, ρ = 0.1, η = 0.01, x₀ ~ N(0, I)) and sgd_subsampling (least squares, N = 32, B = 4). Writes nothing; see BENCHMARKS.md and bench/peers/ for the same problems in NumPy, numba, JAX, diffrax and torchsde.",
            ),
    ))
}

/// Options of `sde-check merge`.
#[derive(Args, Debug)]
struct MergeArgs {
    /// Shard files, or folders holding them (`*.shard-I-of-N.bin`).
    #[arg(required = true)]
    shards: Vec<PathBuf>,
    /// Output folder for the merged results [default: plots/<study>].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Worker threads [default: all cores]. Results do not depend on it.
    #[arg(long, allow_negative_numbers = true)]
    threads: Option<usize>,
    /// Print the JSON report to stdout instead of the table.
    #[arg(long)]
    json: bool,
}

/// Options of `sde-check reproduce`.
#[derive(Args, Debug)]
struct ReproduceArgs {
    /// Size profile: quick (minutes) or paper (the papers' sizes where a study has them).
    #[arg(long, default_value = "quick")]
    profile: String,
    /// Output folder: one sub-folder per study, report.md, report.html, summary.json.
    #[arg(long, default_value = "reproduce")]
    out: PathBuf,
    /// Only these studies (comma-separated names; `sde-check list` shows them).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Skip studies whose result file in --out records the same configuration and version.
    #[arg(long)]
    resume: bool,
    /// Run this configuration for STUDY instead of its shipped ones (repeatable).
    #[arg(long = "config", value_name = "STUDY=FILE")]
    configs: Vec<String>,
    /// Worker threads [default: all cores]. Results do not depend on it.
    #[arg(long, allow_negative_numbers = true)]
    threads: Option<usize>,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

/// Options of `sde-check bench`.
#[derive(Args, Debug)]
struct BenchArgs {
    /// Problem to run (repeatable) [default: all five].
    #[arg(long = "problem")]
    problems: Vec<String>,
    /// Paths per problem [default: 10000].
    #[arg(long, allow_negative_numbers = true)]
    paths: Option<usize>,
    /// Steps per path [default: 1000].
    #[arg(long, allow_negative_numbers = true)]
    steps: Option<usize>,
    /// Worker threads [default: 1].
    #[arg(long, allow_negative_numbers = true)]
    threads: Option<usize>,
    /// Print the JSON report instead of the table.
    #[arg(long)]
    json: bool,
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
    if config.threads > max_threads() {
        anyhow::bail!(
            "--threads must be ≤ {} (8 × the cores, at least 64), got {}",
            max_threads(),
            config.threads
        );
    }
    let report = bench::run(&config)?;
    if args.json {
        emit(&format!("{}\n", serde_json::to_string_pretty(&report)?));
    } else {
        let mut t = bench::table(&report);
        if !t.ends_with('\n') {
            t.push('\n');
        }
        emit(&t);
    }
    Ok(true)
}

fn main() -> ExitCode {
    // Ctrl-C / SIGTERM: finish a commit in progress, remove temporaries, exit 130. Previous
    // results stay intact (see samsde::output).
    let _ = ctrlc::set_handler(|| {
        let removed = samsde::output::interrupted();
        eprintln!("\ninterrupted: {removed} temporary files removed; no partial result set left");
        std::process::exit(130);
    });
    let matches = cli().get_matches();
    match run(&matches) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            // A failed run leaves no empty output folder it created.
            samsde::output::remove_created_folders();
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(2)
        }
    }
}

fn run(matches: &ArgMatches) -> anyhow::Result<bool> {
    match matches.subcommand() {
        Some(("list", _)) => {
            list();
            Ok(true)
        }
        Some(("bench", sub)) => bench(BenchArgs::from_arg_matches(sub)?),
        Some(("merge", sub)) => merge(MergeArgs::from_arg_matches(sub)?),
        Some(("reproduce", sub)) => reproduce(ReproduceArgs::from_arg_matches(sub)?),
        Some((name, sub)) => {
            let entry = registry::find(name).expect("clap only accepts registered studies");
            let args = CommonArgs::from_arg_matches(sub)?;
            study(entry, args)
        }
        None => unreachable!("a subcommand is required"),
    }
}

fn list() {
    let mut out = String::new();
    for s in registry::studies() {
        out.push_str(&format!("{} — {}\n", s.name, s.about));
        for e in s.experiments {
            let default = if e.path == s.default.path {
                " (default)"
            } else {
                ""
            };
            out.push_str(&format!("  {}{default}\n      {}\n", e.path, e.summary()));
        }
    }
    emit(&out);
}

/// Writes to stdout; a closed pipe (`sde-check … | head -1`) ends the output quietly.
fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("error: cannot write to standard output: {e}");
        }
    }
}

/// Largest `--threads` accepted: far more than any machine this runs on needs, small enough
/// that a typo (10 000) is an error instead of a minute of thread creation.
fn max_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (8 * cores).max(64)
}

/// `--threads`, checked (default: all cores).
fn thread_count(threads: Option<usize>) -> anyhow::Result<usize> {
    Ok(match threads {
        Some(0) => anyhow::bail!("--threads must be ≥ 1, got 0"),
        Some(n) if n > max_threads() => anyhow::bail!(
            "--threads must be ≤ {} (8 × the cores, at least 64), got {n}",
            max_threads()
        ),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    })
}

/// The pool for `--threads` (checked as [`thread_count`]) and its size.
fn pool_for(threads: Option<usize>) -> anyhow::Result<(rayon::ThreadPool, usize)> {
    let n = thread_count(threads)?;
    Ok((thread_pool(n)?, n))
}

fn thread_pool(n: usize) -> anyhow::Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .with_context(|| format!("--threads {n}: cannot start the worker threads"))
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
    // Draw at once and keep the spinner moving, so a heavy first block does not look hung.
    pb.tick();
    pb.enable_steady_tick(Duration::from_millis(250));
    pb
}

/// `sde-check merge`: check the shards, fold them, write the study's normal result files.
fn merge(args: MergeArgs) -> anyhow::Result<bool> {
    let files = samsde::shard::file::collect_files(&args.shards)?;
    let set = samsde::shard::file::load(&files)?;
    let out = args.out.clone().unwrap_or_else(|| {
        registry::find(set.study()).map_or_else(
            || PathBuf::from("plots").join(set.study()),
            StudyEntry::default_out,
        )
    });
    samsde::output::check_writable(&out)?;
    let (pool, threads) = pool_for(args.threads)?;
    let (n_shards, n_calls, n_units) = (set.files.len(), set.calls(), set.units());
    let (name, finished) = pool.install(|| samsde::shard::merge(set, threads, None))?;
    let written = finished.write(&out)?;
    if args.json {
        emit(std::str::from_utf8(&finished.json()?)?);
    } else {
        let mut s = format!(
            "{name}: merged {n_shards} shards ({n_units} units of {n_calls} calls)\n{}",
            finished.table()
        );
        for w in &written {
            s.push_str(&format!("wrote {}\n", w.display()));
        }
        emit(&s);
    }
    Ok(finished.all_pass())
}

/// `sde-check reproduce`: every study, one report.
fn reproduce(args: ReproduceArgs) -> anyhow::Result<bool> {
    use samsde::reproduce::{self, Options};
    let opts = Options {
        profile: args.profile,
        out: args.out,
        only: args.only,
        resume: args.resume,
        configs: args.configs,
    };
    let plan = reproduce::plan(&opts)?;
    samsde::output::check_writable(&opts.out)?;
    let (pool, threads) = pool_for(args.threads)?;
    let total: u64 = plan.iter().map(|u| u.work).sum();
    let pb = ProgressBar::with_draw_target(Some(total.max(1)), ProgressDrawTarget::stderr());
    if args.quiet {
        pb.set_draw_target(ProgressDrawTarget::hidden());
    }
    pb.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {percent:>3}% · eta {eta} · {msg}",
        )
        .expect("valid template"),
    );
    pb.enable_steady_tick(Duration::from_millis(250));
    let done = AtomicU64::new(0);
    let events = |e: reproduce::Event| match e {
        reproduce::Event::Start { index, of, unit } => {
            pb.set_message(format!("{}/{} {unit}", index + 1, of));
        }
        reproduce::Event::Work(n) => {
            let v = done.fetch_add(n, Ordering::Relaxed) + n;
            pb.set_position(v.min(total));
        }
        reproduce::Event::Finished {
            unit,
            line,
            skipped_work,
        } => {
            if skipped_work > 0 {
                let v = done.fetch_add(skipped_work, Ordering::Relaxed) + skipped_work;
                pb.set_position(v.min(total));
            }
            pb.println(format!("{unit}: {line}"));
        }
    };
    let summary = pool.install(|| reproduce::run(&opts, &plan, threads, &events))?;
    pb.finish_and_clear();
    emit(&summary.text);
    Ok(summary.all_pass)
}

/// Every study: read and validate the configuration, `--print-config`, check the output
/// folder, run on the thread pool with a progress bar, write atomically, print.
fn study(entry: &StudyEntry, args: CommonArgs) -> anyhow::Result<bool> {
    let text = match &args.config {
        None => entry.default.text.to_string(),
        Some(p) => std::fs::read_to_string(p)
            .with_context(|| format!("cannot read configuration {}", p.display()))?,
    };
    let overrides = Overrides {
        paths: args.paths,
        seeds: args.seeds,
        seed: args.seed,
        profile: args.profile.clone(),
    };
    let threads = thread_count(args.threads)?;
    let limits = Limits {
        threads,
        max_seconds: (!args.yes).then_some(budget::CONFIRM_SECONDS),
        ..Limits::default()
    };
    let prepared =
        (entry.prepare_limited)(&text, &overrides, &limits).context("invalid configuration")?;
    if args.print_config {
        emit(&prepared.config_toml()?);
        return Ok(true);
    }
    let shard: Option<samsde::shard::ShardSpec> = args
        .shard
        .as_deref()
        .map(str::parse)
        .transpose()
        .context("invalid --shard")?;
    samsde::output::check_writable(&args.out)?;
    let estimate = prepared.budget();
    if !args.quiet && estimate.seconds(threads) > budget::ANNOUNCE_SECONDS {
        eprintln!("{}: {}", entry.name, estimate.summary(threads));
    }
    let pool = thread_pool(threads)?;
    if let Some(spec) = shard {
        if args.json {
            anyhow::bail!("--json prints a finished report; a --shard run writes a shard file (merge the shards with `sde-check merge`)");
        }
        // The shard computes about 1/N of the work units.
        let pb = progress_bar(
            prepared.total_work().div_ceil(spec.count as u64),
            args.quiet,
        );
        let done = AtomicU64::new(0);
        let tick = |n: u64| {
            let v = done.fetch_add(n, Ordering::Relaxed) + n;
            pb.set_position(v);
        };
        let file = pool
            .install(|| samsde::shard::run_shard(prepared.as_ref(), spec, threads, Some(&tick)))?;
        pb.finish_and_clear();
        let path = file.write(&args.out)?;
        emit(&format!(
            "{} shard {spec}: {} units of {} calls in {:.1} s\nwrote {}\n",
            entry.name,
            file.units_owned(),
            file.calls.len(),
            file.header.elapsed_s,
            path.display()
        ));
        return Ok(true);
    }
    let pb = progress_bar(prepared.total_work(), args.quiet);
    let done = AtomicU64::new(0);
    let tick = |n: u64| {
        let v = done.fetch_add(n, Ordering::Relaxed) + n;
        pb.set_position(v);
    };
    let finished = pool.install(|| prepared.run(threads, Some(&tick)))?;
    pb.finish_and_clear();
    let written = finished.write(&args.out)?;
    if args.json {
        emit(std::str::from_utf8(&finished.json()?)?);
    } else {
        let mut s = finished.table();
        for w in &written {
            s.push_str(&format!("wrote {}\n", w.display()));
        }
        emit(&s);
    }
    Ok(finished.all_pass())
}
