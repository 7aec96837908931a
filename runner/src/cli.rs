//! The command line. `main` only maps outcomes to exit codes; the work is in fallible functions
//! that return an [`Exit`] or an [`Error`], whose kind decides the code (see [`crate::error`]).

use crate::cluster::Placement;
use crate::error::{Error, Exit};
use crate::plan::{self, Overrides};
use crate::{nightly, plugin, protocol, run, scenario};
use clap::{Parser, Subcommand};
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "runbench",
    // The commit it was built from (runner/build.rs): which build an image holds, for one.
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("RUNBENCH_GIT_COMMIT"), ")"),
    about = "How do Rust async runtimes behave under a given load?"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run scenarios against runtime plugins and write results under --out.
    Run {
        /// Scenario files (TOML) to run, in order; all are checked before the first runs.
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
        /// Output root; each run writes <out>/<scenario>/<UTC timestamp>/.
        #[arg(long, default_value = "output")]
        out: PathBuf,
        #[command(flatten)]
        overrides: Overrides,
        #[command(flatten)]
        options: run::RunOptions,
        /// Print the expanded plan and its estimated time; run nothing.
        #[arg(long)]
        dry_run: bool,
        /// Where plugins are found (default: next to this binary).
        #[arg(long)]
        plugin_dir: Option<PathBuf>,
        /// After the run, compare it with the run saved as baseline NAME of its scenario (as
        /// `compare` does; exits 3 on a confirmed regression).
        #[arg(long, value_name = "NAME", value_parser = crate::results::baseline_name)]
        baseline: Option<String>,
        /// After the run (and any --baseline comparison), save it as baseline NAME of its
        /// scenario: <out>/<scenario>/baselines/NAME, replacing an earlier one of that name.
        #[arg(long, value_name = "NAME", value_parser = crate::results::baseline_name)]
        save_baseline: Option<String>,
        #[command(flatten)]
        cluster: Box<crate::cluster::controller::ControllerArgs>,
    },
    /// Join a run across machines: connect to its controller and run its servers or load here.
    Agent(crate::cluster::agent::AgentArgs),
    /// Kubernetes: `k8s render` writes the manifests of a run across machines.
    K8s {
        #[command(subcommand)]
        command: K8sCommand,
    },
    /// Slurm: `slurm render` writes the batch script of a run across machines.
    Slurm {
        #[command(subcommand)]
        command: SlurmCommand,
    },
    /// Write a fresh 256-bit token (mode 0600) for a run across machines.
    Token {
        /// The file to create (never overwritten).
        file: PathBuf,
    },
    /// Write a commented scenario to start from (scenarios/<name>.toml).
    New {
        /// The scenario's name (also its file name, NAME.toml).
        name: String,
        /// Folder to write it in.
        #[arg(long, default_value = "scenarios")]
        dir: PathBuf,
    },
    /// Print the JSON Schema of scenario files (committed as scenarios/schema.json).
    Schema {
        /// The schema of a run's summary.json (and of `run --export-json`'s elements) instead
        /// (committed as scenarios/summary.schema.json).
        #[arg(long)]
        summary: bool,
    },
    /// Check scenario files without running anything.
    Validate {
        /// Scenario files (TOML) to check.
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
        /// Where plugins are found (default: next to this binary).
        #[arg(long)]
        plugin_dir: Option<PathBuf>,
    },
    /// Redraw a run folder's PNG plots and report.md from its CSV files and meta.json.
    Plot {
        /// A run folder, e.g. output/smoke/latest.
        run_dir: PathBuf,
        /// Write the charts and report.md here instead of into the run folder.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// List the built plugins with their runtime versions.
    List {
        /// Where plugins are found (default: next to this binary).
        #[arg(long)]
        plugin_dir: Option<PathBuf>,
    },
    /// Run every scenario in --scenarios, append the trials to the history, judge them against
    /// the last nights on this machine, draw trend plots and write nightly.md. Exits 3 on a
    /// confirmed regression.
    Nightly {
        /// Folder of nightly scenario files (*.toml).
        #[arg(long, default_value = "scenarios/nightly")]
        scenarios: PathBuf,
        /// Output root: run folders, history/<scenario>.csv and nightly/<UTC time>/.
        #[arg(long, default_value = "output")]
        out: PathBuf,
        /// How many earlier nights (on this machine) form the baseline.
        #[arg(long, default_value_t = nightly::verdict::DEFAULT_BASELINE_NIGHTS)]
        baseline_nights: usize,
        /// Noise threshold in percent: smaller changes of the median are never a regression.
        #[arg(long, default_value_t = nightly::verdict::DEFAULT_NOISE_PCT)]
        noise: f64,
        /// Trials per runtime when the run does not repeat itself (the scenario is run this often).
        #[arg(long, default_value_t = nightly::DEFAULT_TRIALS)]
        trials: usize,
        /// Where plugins are found (default: next to this binary).
        #[arg(long)]
        plugin_dir: Option<PathBuf>,
    },
    /// Compare run folder B with run folder A as the baseline (same verdict rules as nightly),
    /// or with the run saved as baseline NAME (`--baseline NAME B`). Exits 3 on a confirmed
    /// regression.
    Compare {
        /// `A B`: the baseline run folder (output/<scenario>/<time>), then the run folder to
        /// judge; with --baseline, only the run folder to judge.
        #[arg(required = true, num_args = 1..=2, value_name = "RUN")]
        runs: Vec<PathBuf>,
        /// Compare with the run saved as this baseline of B's scenario (`run --save-baseline`).
        #[arg(long, value_name = "NAME", value_parser = crate::results::baseline_name)]
        baseline: Option<String>,
        /// Noise threshold in percent.
        #[arg(long, default_value_t = nightly::verdict::DEFAULT_NOISE_PCT)]
        noise: f64,
        /// Compare even when the runs come from different machines (CPU, cores or kernel).
        #[arg(long)]
        force: bool,
    },
    /// (internal) Host one plugin's server; spawned by `run`.
    #[command(hide = true)]
    Serve {
        /// What to serve, as JSON (written by `run`).
        #[arg(long)]
        spec: String,
    },
    /// (internal) One load-generator process; spawned by `run`.
    #[command(hide = true)]
    Loadgen {
        /// What load to apply, as JSON (written by `run`).
        #[arg(long)]
        spec: String,
    },
}

#[derive(Subcommand)]
enum K8sCommand {
    /// Plain manifests (`kubectl apply -f DIR`) and the image's Dockerfile.
    Render(crate::deploy::K8sRender),
}

#[derive(Subcommand)]
enum SlurmCommand {
    /// A heterogeneous batch script (`sbatch FILE`).
    Render(crate::deploy::SlurmRender),
}

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let exit = if e.use_stderr() {
                Exit::BadInput
            } else {
                Exit::Ok
            };
            let _ = e.print();
            return exit.code();
        }
    };
    let result = match cli.command {
        // The children are in their own process group: the terminal's signals reach only the
        // runner, which stops them in order.
        Command::Serve { spec } => {
            return match serde_json::from_str::<protocol::ServeSpec>(&spec) {
                Ok(spec) => crate::plugin::serve::run(&spec),
                Err(e) => {
                    eprintln!("runbench serve: bad --spec: {e}");
                    Exit::BadInput.code()
                }
            }
        }
        Command::Loadgen { spec } => {
            return match serde_json::from_str::<protocol::LoadgenSpec>(&spec) {
                Ok(spec) => crate::loadgen::child_main(&spec),
                Err(e) => {
                    eprintln!("runbench loadgen: bad --spec: {e}");
                    Exit::BadInput.code()
                }
            }
        }
        Command::Agent(args) => return crate::cluster::agent::main(&args),
        command => crate::os::interrupt::install()
            .map_err(|e| Error::system(anyhow::anyhow!("installing the signal handlers: {e}")))
            .and_then(|()| dispatch(command)),
    };
    let exit = match result {
        Ok(exit) => exit,
        Err(e) => {
            eprintln!("error: {e}");
            e.kind()
        }
    };
    // A signal that came while a short command finished its (atomic) writes still ends it as
    // that signal would have.
    match (exit, crate::os::interrupt::requested()) {
        (Exit::Signal(_), _) | (_, None) => exit.code(),
        (_, Some(sig)) => Exit::Signal(sig).code(),
    }
}

fn dispatch(command: Command) -> Result<Exit, Error> {
    match command {
        Command::Serve { .. } | Command::Loadgen { .. } | Command::Agent(_) => {
            unreachable!("handled by main")
        }
        Command::K8s {
            command: K8sCommand::Render(a),
        } => crate::deploy::k8s_render(&a),
        Command::Slurm {
            command: SlurmCommand::Render(a),
        } => crate::deploy::slurm_render(&a),
        Command::Token { file } => {
            crate::cluster::token::Token::write_new(&file).map_err(Error::input)?;
            println!("wrote a new token to {} (mode 0600)", file.display());
            Ok(Exit::Ok)
        }
        Command::List { plugin_dir } => list(plugin_dir),
        Command::Plot { run_dir, out } => plot(&run_dir, out.as_deref().unwrap_or(&run_dir)),
        Command::Nightly {
            scenarios,
            out,
            baseline_nights,
            noise,
            trials,
            plugin_dir,
        } => run_nightly(scenarios, out, baseline_nights, noise, trials, plugin_dir),
        Command::Compare {
            runs,
            baseline,
            noise,
            force,
        } => {
            let (a, b) = match (&runs[..], baseline) {
                ([a, b], None) => (a.clone(), b.clone()),
                ([b], Some(name)) => (
                    crate::results::find_baseline(b, &name)
                        .map_err(|e| Error::input(anyhow::anyhow!(e)))?,
                    b.clone(),
                ),
                ([_], None) => {
                    return Err(Error::input(anyhow::anyhow!(
                        "compare needs two run folders (A B), or --baseline NAME and one"
                    )))
                }
                (_, Some(_)) => {
                    return Err(Error::input(anyhow::anyhow!(
                        "with --baseline NAME, compare takes one run folder (the one to judge)"
                    )))
                }
                _ => unreachable!("clap takes one or two run folders"),
            };
            compare(&a, &b, noise, force)
        }
        Command::Validate {
            scenarios,
            plugin_dir,
        } => validate(&scenarios, plugin_dir),
        Command::New { name, dir } => {
            let path = crate::authoring::new_scenario(&name, &dir)?;
            println!("wrote {}", path.display());
            Ok(Exit::Ok)
        }
        Command::Schema { summary } => {
            match summary {
                true => println!("{}", crate::results::SummaryJson::schema()),
                false => println!("{}", crate::authoring::schema_json()),
            }
            Ok(Exit::Ok)
        }
        Command::Run {
            scenarios,
            out,
            overrides,
            options,
            dry_run,
            plugin_dir,
            baseline,
            save_baseline,
            cluster,
        } => {
            // Across machines the scenarios are checked and planned before any agent is waited
            // for; the plans then place their processes on the agents that joined.
            let across = cluster.agents.is_some() && !dry_run;
            let plans = plan_all(&scenarios, &overrides, plugin_dir, across)?;
            let placement = match across {
                true => Placement::agents(crate::cluster::controller::start(&cluster)?),
                false => Placement::local(),
            };
            let plans: Vec<plan::Plan> = plans
                .into_iter()
                .map(|p| p.placed(placement.clone()))
                .collect();
            let baselines = Baselines {
                compare: baseline,
                save: save_baseline,
            };
            let r = run_plans(&plans, &out, &options, dry_run, &baselines);
            if let Some(c) = placement.cluster() {
                // Agents told of a failed or stopped run exit non-zero.
                c.shut_down(match &r {
                    Err(e) => Some(e.to_string()),
                    Ok(Exit::Signal(sig)) => Some(format!(
                        "the controller was stopped by {}",
                        crate::os::interrupt::name(*sig)
                    )),
                    Ok(_) => None,
                });
            }
            r
        }
    }
}

fn resolve_dir(dir: Option<PathBuf>) -> Result<PathBuf, Error> {
    match dir {
        Some(d) => Ok(d),
        None => plugin::plugin_dir().map_err(Error::system),
    }
}

fn list(dir: Option<PathBuf>) -> Result<Exit, Error> {
    let dir = resolve_dir(dir)?;
    let files = plugin::discover(&dir).map_err(Error::input)?;
    if files.is_empty() {
        return Err(Error::input(anyhow::anyhow!(
            "no plugins in {}; build them with `cargo build --release`",
            dir.display()
        )));
    }
    println!("{:<16} {:<12} path", "runtime", "version");
    for f in files {
        match plugin::load(&f.path) {
            Ok(p) => {
                println!(
                    "{:<16} {:<12} {}",
                    p.name(),
                    p.runtime_version(),
                    f.path.display()
                );
                if !p.http_stack().is_empty() {
                    println!("{:<16} http: {}", "", p.http_stack());
                }
                if let Some(note) = crate::plugin::notes::runtime_note(p.name()) {
                    println!("{:<16} note: {note}", "");
                }
            }
            Err(e) => println!("{:<16} {:<12} {} ({e})", f.name, "-", f.path.display()),
        }
    }
    Ok(Exit::Ok)
}

fn plot(dir: &std::path::Path, out: &std::path::Path) -> Result<Exit, Error> {
    let r = crate::plot::render::render_into(dir, out).map_err(Error::input)?;
    println!("{}: wrote {}", out.display(), r.files.join(", "));
    for w in &r.warnings {
        eprintln!("note: {w}");
    }
    if r.failures.is_empty() {
        return Ok(Exit::Ok);
    }
    for f in &r.failures {
        eprintln!("plot not drawn: {f}");
    }
    eprintln!(
        "{} plot(s) could not be drawn (listed above and in report.md)",
        r.failures.len()
    );
    Ok(Exit::SomeFailed)
}

fn validate(paths: &[PathBuf], dir: Option<PathBuf>) -> Result<Exit, Error> {
    let dir = resolve_dir(dir)?;
    let host = scenario::Host::current();
    let mut failed = 0;
    for path in paths {
        let checked = scenario::load(path, &host)
            .map_err(anyhow::Error::from)
            .and_then(|s| plan::check(&s, &dir).map(|notes| (s, notes)));
        match checked {
            Ok((s, notes)) => {
                println!("{}: ok ({})", path.display(), s.name);
                for n in notes {
                    println!("  note: {n}");
                }
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        return Err(Error::input(anyhow::anyhow!(
            "{failed} of {} scenario(s) invalid",
            paths.len()
        )));
    }
    Ok(Exit::Ok)
}

/// Every scenario loaded and planned, before any runs, so a typo in the third file costs
/// nothing; `across`: the hosts are the agents', not this one.
fn plan_all(
    paths: &[PathBuf],
    overrides: &Overrides,
    dir: Option<PathBuf>,
    across: bool,
) -> Result<Vec<plan::Plan>, Error> {
    let dir = resolve_dir(dir)?;
    let host = match across {
        true => scenario::Host::elsewhere(),
        false => scenario::Host::current(),
    };
    let mut plans = Vec::new();
    for path in paths {
        let s = scenario::load(path, &host)?;
        plans.push(plan::plan(&s, overrides, &dir).map_err(Error::input)?);
    }
    Ok(plans)
}

/// `run --baseline NAME` and `--save-baseline NAME`.
struct Baselines {
    compare: Option<String>,
    save: Option<String>,
}

fn run_plans(
    plans: &[plan::Plan],
    out: &std::path::Path,
    options: &run::RunOptions,
    dry_run: bool,
    baselines: &Baselines,
) -> Result<Exit, Error> {
    if dry_run {
        for p in plans {
            print!("{}", plan::describe(p));
        }
        return Ok(Exit::Ok);
    }
    let mut exit = Exit::Ok;
    let mut exported = Vec::new();
    for p in plans {
        let outcome = run::run_plan(p, out, options)?;
        // Results on stdout (`run ... > out` keeps them), progress and logs on stderr.
        let terminal = std::io::stdout().is_terminal();
        let colour = crate::console::format::colour(terminal);
        let width = terminal
            .then(|| ::console::Term::stdout().size_checked())
            .flatten()
            .map(|(_, cols)| usize::from(cols));
        print!(
            "{}",
            crate::console::terminal::final_table_fitted(&outcome.summary, colour, width)
        );
        exported.push(crate::results::SummaryJson::new(
            &outcome.meta,
            &outcome.summary,
        ));
        export(options, &exported)?;
        if let Some(e) = outcome.stopped_by {
            return Err(e);
        }
        if let Some(sig) = outcome.interrupted {
            // The scenarios after this one are not started.
            return Ok(Exit::Signal(sig));
        }
        if let Some(name) = &baselines.compare {
            let a = crate::results::find_baseline(&outcome.dir, name)
                .map_err(|e| Error::input(anyhow::anyhow!(e)))?;
            if compare(&a, &outcome.dir, nightly::verdict::DEFAULT_NOISE_PCT, false)?
                == Exit::Regression
            {
                exit = Exit::Regression;
            }
        }
        if let Some(name) = &baselines.save {
            let link = crate::results::save_baseline(&outcome.dir, name)?;
            crate::console::log(&format!("saved as baseline {name}: {}", link.display()));
        }
        // A skipped runtime cannot take part by its nature; it is not a failure.
        if outcome.summary.iter().any(|r| {
            matches!(
                r.status,
                crate::results::RowStatus::Failed | crate::results::RowStatus::Interrupted
            )
        }) {
            exit = Exit::SomeFailed;
        } else if p.scenario.search.is_none()
            && outcome.summary.iter().any(|r| r.slo == "fail")
            && exit == Exit::Ok
        {
            // A capacity search fails probes by design; elsewhere a broken threshold is news.
            exit = Exit::SloFailed;
        }
    }
    Ok(exit)
}

/// `--export-json` and `--export-markdown`: the rows of every scenario run so far, rewritten
/// after each (a later failure keeps the earlier ones).
fn export(options: &run::RunOptions, runs: &[crate::results::SummaryJson]) -> Result<(), Error> {
    let write = |path: &std::path::Path, bytes: &[u8]| {
        crate::results::write_atomic(path, bytes).map_err(Error::from)
    };
    if let Some(path) = &options.export_json {
        let mut json = serde_json::to_vec_pretty(runs).expect("summaries serialise");
        json.push(b'\n');
        write(path, &json)?;
    }
    if let Some(path) = &options.export_markdown {
        let md: Vec<String> = runs
            .iter()
            .map(|r| {
                let name = r.scenario.pointer("/name").and_then(|n| n.as_str());
                let rows = crate::results::summary_markdown(&r.rows);
                format!("## {}\n\n{rows}", name.unwrap_or("scenario"))
            })
            .collect();
        write(path, md.join("\n").as_bytes())?;
    }
    Ok(())
}

fn settings(baseline_nights: usize, noise_pct: f64) -> Result<nightly::verdict::Settings, Error> {
    if !(noise_pct.is_finite() && (0.0..100.0).contains(&noise_pct)) {
        return Err(Error::input(anyhow::anyhow!(
            "--noise is a percentage between 0 and 100, got {noise_pct}"
        )));
    }
    Ok(nightly::verdict::Settings {
        baseline_nights,
        noise: noise_pct / 100.0,
        ..Default::default()
    })
}

fn run_nightly(
    scenarios: PathBuf,
    out: PathBuf,
    baseline_nights: usize,
    noise: f64,
    trials: usize,
    plugin_dir: Option<PathBuf>,
) -> Result<Exit, Error> {
    let opts = nightly::Options {
        scenarios_dir: scenarios,
        out,
        settings: settings(baseline_nights, noise)?,
        trials,
        plugin_dir: resolve_dir(plugin_dir)?,
    };
    let night = nightly::run(&opts)?;
    let md = &night.markdown;
    println!("{md}");
    Ok(if let Some(sig) = night.interrupted {
        Exit::Signal(sig)
    } else if night.regressions > 0 {
        Exit::Regression
    } else if night.failed_trials > 0 {
        Exit::SomeFailed
    } else {
        Exit::Ok
    })
}

fn compare(
    a: &std::path::Path,
    b: &std::path::Path,
    noise: f64,
    force: bool,
) -> Result<Exit, Error> {
    let (md, regressions) =
        nightly::compare(a, b, &settings(1, noise)?, force).map_err(Error::input)?;
    println!("{md}");
    Ok(if regressions > 0 {
        Exit::Regression
    } else {
        Exit::Ok
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// `--help` explains every argument of every command (`run`'s scenarios, `validate
    /// --plugin-dir` and `slurm render --partition` had none).
    #[test]
    fn every_argument_of_every_command_has_help_text() {
        fn walk(c: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for a in c.get_arguments() {
                let builtin = matches!(a.get_id().as_str(), "help" | "version");
                if a.get_help().is_none() && !a.is_hide_set() && !builtin {
                    missing.push(format!("{path} {}", a.get_id()));
                }
            }
            for sub in c.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "runbench", &mut missing);
        assert!(missing.is_empty(), "arguments without help: {missing:?}");
    }
}
