//! The command line: parses arguments, runs one verb, renders its results
//! and maps them to exit codes (0 ok, 1 failed or invalid, 2 usage or
//! internal error). Diagnostics are rendered here and nowhere deeper.

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory as _, Parser, Subcommand, ValueEnum};
use clap_complete::engine::ArgValueCompleter;

use crate::config::{self, Diagnostics, Kind, edit};

mod app;
mod client;
mod complete;
mod helm;
mod images;
mod import;
mod kustomize;
mod log;
mod once;
mod patch;
mod run;
mod sops;
mod status;

#[derive(Debug, Parser)]
#[command(
    name = "mooring",
    version,
    about = "A single-binary GitOps agent configured by one KDL file."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

/// Print a list as the JSON that `--format json` promises.
fn print_json_list<T: serde::Serialize>(items: &[T]) {
    println!(
        "{}",
        serde_json::to_string_pretty(items).unwrap_or_else(|_| "[]".into())
    );
}

/// How `status` and `events` reach a running agent, and what they print.
#[derive(Debug, clap::Args)]
struct AgentQuery {
    /// The agent's address [default: $MOORING_ADDR, else `listen` of the config file, else 127.0.0.1:9797]
    #[arg(long, value_name = "HOST:PORT")]
    addr: Option<String>,
    /// Config file to read `listen` from [default: $MOORING_CONFIG, ./mooring.kdl, /etc/mooring/mooring.kdl]
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

impl AgentQuery {
    fn address(&self) -> String {
        client::address(self.addr.as_deref(), self.config.as_deref())
    }

    fn json(&self) -> bool {
        self.format == Format::Json
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum GraphFormat {
    Tree,
    Mermaid,
    Dot,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a config file; report every problem at once.
    ///
    /// Exit 0 when valid (warnings allowed), 1 when invalid, 2 when the file
    /// cannot be read.
    Validate {
        /// Config file [default: $MOORING_CONFIG, ./mooring.kdl, /etc/mooring/mooring.kdl]
        #[arg(short = 'c', long = "config", value_name = "FILE")]
        config: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Suspend an object by adding a `suspend` node to the config file.
    ///
    /// The rest of the file stays byte for byte as it was.
    Suspend {
        /// What to suspend: source/NAME, app/NAME, image/NAME or automation/NAME
        #[arg(value_name = "KIND/NAME", value_parser = parse_target, add = ArgValueCompleter::new(complete::any))]
        target: (Kind, String),
        /// Why; shown in status
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        /// Resume by itself at this time: RFC 3339, or a duration from now ("2h")
        #[arg(long, value_name = "RFC3339|DURATION", value_parser = parse_until)]
        until: Option<jiff::Timestamp>,
        /// Config file [default: $MOORING_CONFIG, ./mooring.kdl, /etc/mooring/mooring.kdl]
        #[arg(short = 'c', long = "config", value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Resume an object by removing its `suspend` node from the config file.
    Resume {
        /// What to resume: source/NAME, app/NAME, image/NAME or automation/NAME
        #[arg(value_name = "KIND/NAME", value_parser = parse_target, add = ArgValueCompleter::new(complete::any))]
        target: (Kind, String),
        /// Config file [default: $MOORING_CONFIG, ./mooring.kdl, /etc/mooring/mooring.kdl]
        #[arg(short = 'c', long = "config", value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Run the agent: reconcile every object on its interval, hot-reload
    /// the config file, serve status and metrics.
    ///
    /// SIGHUP reloads now; SIGTERM or SIGINT stops scheduling, lets runs in
    /// flight finish (at most 30 s) and exits 0.
    Run {
        /// Config file [default: $MOORING_CONFIG, ./mooring.kdl, /etc/mooring/mooring.kdl]
        #[arg(short = 'c', long = "config", value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// One pass: reconcile every object (or the named ones and what they
    /// read) in dependency order, then exit.
    ///
    /// Exit 0 when everything succeeded, 1 when something failed.
    Once {
        /// What to reconcile: KIND/NAME (source, app, image, automation); without any, everything
        #[arg(value_name = "KIND/NAME", value_parser = parse_target, add = ArgValueCompleter::new(complete::any))]
        targets: Vec<(Kind, String)>,
        /// Config file [default: $MOORING_CONFIG, ./mooring.kdl, /etc/mooring/mooring.kdl]
        #[arg(short = 'c', long = "config", value_name = "FILE")]
        config: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Log to stderr as the agent does (the configured level); -vv debug, -vvv trace [default: warnings only]
        #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
        verbose: u8,
    },
    /// Show what a running agent is doing: config generation, last reload,
    /// and the state of every object; or one object in full.
    ///
    /// Exit 0 when the agent answered, 1 when it runs no such object, 2
    /// when it cannot be reached.
    Status {
        /// One object to show in full (every field and its events): KIND/NAME
        #[arg(value_name = "KIND/NAME", value_parser = parse_target, add = ArgValueCompleter::new(complete::any))]
        target: Option<(Kind, String)>,
        #[command(flatten)]
        agent: AgentQuery,
    },
    /// Show the last events of a running agent's objects (or of one), oldest
    /// first: results of runs, waits, suspensions.
    ///
    /// Exit 0 when the agent answered, 1 when it runs no such object, 2
    /// when it cannot be reached.
    Events {
        /// Only this object's events: KIND/NAME
        #[arg(value_name = "KIND/NAME", value_parser = parse_target, add = ArgValueCompleter::new(complete::any))]
        target: Option<(Kind, String)>,
        #[command(flatten)]
        agent: AgentQuery,
    },
    /// Ask a running agent to reconcile an object now.
    ///
    /// Exit 0 when accepted, 1 when the agent has no such object or it is
    /// suspended, 2 when the agent cannot be reached or refuses the token.
    Reconcile {
        /// What to reconcile: source/NAME, app/NAME, image/NAME or automation/NAME
        #[arg(value_name = "KIND/NAME", value_parser = parse_target, add = ArgValueCompleter::new(complete::any))]
        target: (Kind, String),
        /// The agent's address [default: $MOORING_ADDR, else `listen` of the config file, else 127.0.0.1:9797]
        #[arg(long, value_name = "HOST:PORT")]
        addr: Option<String>,
        /// File holding the API token [default: the config's `agent { api-token-file }`]
        #[arg(long, value_name = "FILE")]
        token_file: Option<PathBuf>,
        /// Config file [default: $MOORING_CONFIG, ./mooring.kdl, /etc/mooring/mooring.kdl]
        #[arg(short = 'c', long = "config", value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Fetch an app's source and print its rendered manifests.
    Render {
        /// The app: app/NAME
        #[arg(value_name = "app/NAME", value_parser = parse_target, add = ArgValueCompleter::new(complete::apps))]
        target: (Kind, String),
        /// Config file [default: $MOORING_CONFIG, ./mooring.kdl, /etc/mooring/mooring.kdl]
        #[arg(short = 'c', long = "config", value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Show what applying an app would change in its cluster (server-side
    /// dry run), as a unified diff.
    ///
    /// Exit 0 when nothing would change, 1 when something would, 2 on error.
    Diff {
        /// The app: app/NAME
        #[arg(value_name = "app/NAME", value_parser = parse_target, add = ArgValueCompleter::new(complete::apps))]
        target: (Kind, String),
        /// Config file [default: $MOORING_CONFIG, ./mooring.kdl, /etc/mooring/mooring.kdl]
        #[arg(short = 'c', long = "config", value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Scan registries now and print each image policy's pick.
    ///
    /// Exit 0 when every scan succeeded, 1 when one failed.
    Images {
        /// Which policies: image/NAME; without any, every image
        #[arg(value_name = "image/NAME", value_parser = parse_target, add = ArgValueCompleter::new(complete::images))]
        targets: Vec<(Kind, String)>,
        /// Config file [default: $MOORING_CONFIG, ./mooring.kdl, /etc/mooring/mooring.kdl]
        #[arg(short = 'c', long = "config", value_name = "FILE")]
        config: Option<PathBuf>,
        /// Also resolve and print the digest of each picked tag
        #[arg(long)]
        digest: bool,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Set the image references marked with `$imagepolicy` in the YAML files
    /// under DIR, as an automation would.
    ///
    /// Exit 0 when done (or nothing to change), 1 when a file could not be
    /// patched, 2 on a usage error.
    Patch {
        /// The directory to patch (recursively)
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// A policy's pick: NAME=IMAGE[:TAG][@DIGEST]; repeat for several
        #[arg(long = "set", value_name = "NAME=IMAGE[:TAG][@DIGEST]", required = true)]
        sets: Vec<String>,
        /// The policies' namespace, for Flux markers NS:NAME (default: the one the markers name most)
        #[arg(long, short = 'n', value_name = "NS")]
        namespace: Option<String>,
        /// Print what would change; write nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Build a kustomization, as `kubectl kustomize DIR` does.
    ///
    /// Exit 0 with the objects on standard output, 1 with diagnostics when
    /// the build fails.
    Kustomize {
        /// The directory holding kustomization.yaml
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// Print who reads whom in the config: sources → apps and
    /// automations, apps → the apps that depend on them, images →
    /// automations.
    ///
    /// Exit 0 when printed, 1 when the config is invalid.
    Graph {
        /// Config file [default: $MOORING_CONFIG, ./mooring.kdl, /etc/mooring/mooring.kdl]
        #[arg(short = 'c', long = "config", value_name = "FILE")]
        config: Option<PathBuf>,
        /// `tree` for the terminal, `mermaid` for Markdown, `dot` for Graphviz
        #[arg(long, value_enum, default_value_t = GraphFormat::Tree)]
        format: GraphFormat,
    },
    /// Render Helm charts without the helm binary.
    #[command(subcommand)]
    Helm(HelmCommand),
    /// Print the config schema (a KDL Schema document).
    Schema,
    /// Print the shell code that completes mooring's verbs, flags and the
    /// names of the config's objects; load it from your shell's startup
    /// file.
    Completions {
        #[arg(value_enum)]
        shell: complete::Shell,
    },
    /// Print mooring's man page (roff), or write one page per verb into
    /// DIR (mooring.1, mooring-validate.1, …) for a man1 directory.
    Man {
        /// Write every page here instead of printing mooring.1
        #[arg(value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Translate another tool's objects into mooring config.
    Import {
        #[command(subcommand)]
        command: ImportCommand,
    },
    /// SOPS-encrypted files, decrypted with age keys as Flux does.
    Sops {
        #[command(subcommand)]
        command: SopsCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ImportCommand {
    /// Print the mooring config equivalent to the Flux objects under PATH…
    /// (GitRepository, OCIRepository, HelmRepository, Kustomization,
    /// HelmRelease, ImageRepository, ImagePolicy, ImageUpdateAutomation), following Kustomizations whose
    /// path is in the same repository.
    ///
    /// Exit 0 when the output validates, 1 when it does not (it is written
    /// all the same) or a path cannot be read, 2 on a usage error.
    Flux {
        /// Files or directories of one repository
        #[arg(value_name = "PATH", required = true)]
        paths: Vec<PathBuf>,
        /// Write the config to this file instead of standard output
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum SopsCommand {
    /// Print the plaintext of a sops-encrypted file, in the file's format
    /// (from its extension, as sops picks it).
    ///
    /// Exit 0 when decrypted, 1 when the file cannot be decrypted, 2 on a
    /// usage error.
    Decrypt {
        /// The encrypted file: .yaml/.yml, .json, .env, .ini; any other name is sops's binary format
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// age identity file; repeat for several [default: $SOPS_AGE_KEY_FILE, else $SOPS_AGE_KEY, else ~/.config/sops/age/keys.txt]
        #[arg(long = "key", value_name = "KEYFILE")]
        keys: Vec<PathBuf>,
        /// Do not verify the file's MAC (Flux's default; sops's --ignore-mac)
        #[arg(long)]
        ignore_mac: bool,
    },
}

#[derive(Debug, Subcommand)]
enum HelmCommand {
    /// Render a chart as `helm template` does (same flags, same output).
    ///
    /// Exit 0 when it rendered, 1 when the chart or its values failed.
    Template(helm::TemplateArgs),
}

fn parse_target(s: &str) -> Result<(Kind, String), String> {
    let kinds = "source, app, image or automation";
    let (kind, name) = s
        .split_once('/')
        .ok_or_else(|| format!("expected KIND/NAME, such as app/podinfo (KIND is {kinds})"))?;
    let kind = Kind::parse(kind).ok_or_else(|| format!("unknown kind \"{kind}\": use {kinds}"))?;
    if name.is_empty() {
        return Err("the name after the / is empty".into());
    }
    Ok((kind, name.to_string()))
}

fn parse_until(s: &str) -> Result<jiff::Timestamp, String> {
    let now = jiff::Timestamp::now();
    let at = match config::value::parse_timestamp(s) {
        Ok(t) => t,
        // Meant as a time: say what is wrong with it.
        Err(p) if s.contains('T') && s.contains('-') => return Err(p.message),
        Err(_) => {
            let d = config::value::parse_duration(s).map_err(|_| {
                format!("\"{s}\" is neither an RFC 3339 time (2026-12-01T09:00:00Z) nor a duration (2h, 90m)")
            })?;
            let d = jiff::SignedDuration::try_from(d).map_err(|_| format!("\"{s}\" is too long"))?;
            now.checked_add(d)
                .map_err(|_| format!("\"{s}\" is too far in the future"))?
        }
    };
    if at <= now {
        return Err(format!("{at} is in the past"));
    }
    Ok(at)
}

/// How a verb ends: the exit codes of docs/cli.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// 0: done.
    Success = 0,
    /// 1: the verb ran and found a problem (an invalid config, a failed
    /// run, a difference).
    Failure = 1,
    /// 2: a usage error, or the verb could not run (a file it cannot read,
    /// an agent it cannot reach).
    Error = 2,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

pub fn main() -> ExitCode {
    dispatch().into()
}

fn dispatch() -> Exit {
    // A shell asking for completions (`COMPLETE=bash mooring -- …`) is
    // answered here, before anything else is printed.
    clap_complete::CompleteEnv::with_factory(Cli::command).complete();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                Exit::Error
            } else {
                Exit::Success
            };
        }
    };
    if matches!(
        cli.command,
        Command::Validate { .. } | Command::Kustomize { .. } | Command::Helm(_)
    ) {
        one_shot_heap();
    }
    match cli.command {
        Command::Validate { config, format } => validate(&config::resolve_path(config.as_deref()), format),
        Command::Suspend {
            target: (kind, name),
            reason,
            until,
            config,
        } => run_edit(
            &config::resolve_path(config.as_deref()),
            edit::Change::Suspend {
                kind,
                name,
                reason,
                until,
            },
        ),
        Command::Resume {
            target: (kind, name),
            config,
        } => run_edit(
            &config::resolve_path(config.as_deref()),
            edit::Change::Resume { kind, name },
        ),
        Command::Once {
            targets,
            config,
            format,
            verbose,
        } => once::run(
            &config::resolve_path(config.as_deref()),
            &targets,
            format == Format::Json,
            verbose,
        ),
        Command::Run { config } => run::run(&config::resolve_path(config.as_deref())),
        Command::Status { target, agent } => client::status(&agent.address(), target.as_ref(), agent.json()),
        Command::Events { target, agent } => client::events(&agent.address(), target.as_ref(), agent.json()),
        Command::Reconcile {
            target: (kind, name),
            addr,
            token_file,
            config,
        } => client::reconcile(
            &client::address(addr.as_deref(), config.as_deref()),
            kind,
            &name,
            token_file.as_deref(),
            config.as_deref(),
        ),
        Command::Render { target, config } => app::render(&config::resolve_path(config.as_deref()), target),
        Command::Diff { target, config } => app::diff(&config::resolve_path(config.as_deref()), target),
        Command::Images {
            targets,
            config,
            digest,
            format,
        } => images::run(
            &config::resolve_path(config.as_deref()),
            &targets,
            format == Format::Json,
            digest,
        ),
        Command::Patch {
            dir,
            sets,
            namespace,
            dry_run,
        } => patch::run(&dir, &sets, namespace.as_deref(), dry_run),
        Command::Sops {
            command:
                SopsCommand::Decrypt {
                    file,
                    keys,
                    ignore_mac,
                },
        } => sops::decrypt(&file, &keys, ignore_mac),
        Command::Kustomize { dir } => kustomize::run(&dir),
        Command::Import {
            command: ImportCommand::Flux { paths, output },
        } => import::flux(&paths, output.as_deref()),
        Command::Graph { config, format } => graph(&config::resolve_path(config.as_deref()), format),
        Command::Completions { shell } => complete::registration(shell),
        Command::Man { dir } => man(dir.as_deref()),
        Command::Helm(HelmCommand::Template(args)) => helm::template(args),
        Command::Schema => {
            print!("{}", config::schema::to_kdl_schema());
            Exit::Success
        }
    }
}

fn man(dir: Option<&Path>) -> Exit {
    let written = match dir {
        Some(dir) => std::fs::create_dir_all(dir)
            .and_then(|()| clap_mangen::generate_to(Cli::command(), dir))
            .map_err(|e| format!("{}: {e}", dir.display())),
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(Cli::command())
                .render(&mut page)
                .and_then(|()| std::io::stdout().lock().write_all(&page))
                .map_err(|e| e.to_string())
        }
    };
    match written {
        Ok(()) => Exit::Success,
        Err(e) => {
            eprintln!("error: cannot write the man page: {e}");
            Exit::Error
        }
    }
}

fn graph(path: &Path, format: GraphFormat) -> Exit {
    let loaded = match report_load(config::load(path)) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let graph = config::graph::Graph::of(&loaded.config);
    let text = match format {
        GraphFormat::Tree => graph.tree(),
        GraphFormat::Mermaid => graph.mermaid(),
        GraphFormat::Dot => graph.dot(),
    };
    if std::io::stdout().lock().write_all(text.as_bytes()).is_err() {
        return Exit::Error;
    }
    Exit::Success
}

/// One line when the config leaves `state-dir` to the default and that is
/// the user's own directory rather than the system's.
pub(crate) fn state_dir_hint(agent: &config::Settings) {
    let default = config::defaults::state_dir();
    if agent.state_dir == default && default != Path::new(config::defaults::STATE_DIR) {
        eprintln!(
            "note: the config sets no state-dir and {} is not writable by this user: state goes to {} (set `agent {{ state-dir … }}` to choose)",
            config::defaults::STATE_DIR,
            default.display()
        );
    }
}

/// The async runtime of `run` and `once`: two workers are plenty for an
/// agent that mostly waits; blocking work (git, file writes) has its own pool.
fn runtime() -> Result<tokio::runtime::Runtime, Exit> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(32)
        .thread_keep_alive(std::time::Duration::from_secs(10))
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("error: cannot start the runtime: {e}");
            Exit::Error
        })
}

/// For a command that builds one large result and exits: let the heap
/// grow 32 MiB at a time instead of by what each allocation needs. glibc
/// otherwise extends a thread's arena a few pages per system call
/// (`helm template` of a large chart: over a thousand `mprotect`s), and
/// the address space reserved beyond what is used is never touched, so it
/// costs no memory. Not for `run`: there, freed memory should go back.
fn one_shot_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes a malloc tunable; it is called before
    // any other thread exists.
    unsafe {
        libc::mallopt(libc::M_TOP_PAD, 32 << 20);
    }
}

fn validate(path: &Path, format: Format) -> Exit {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read config file {}: {e}", path.display());
            eprintln!("  help: pass -c FILE, or set MOORING_CONFIG");
            return Exit::Error;
        }
    };
    let (_, diagnostics) = config::check(path, text, jiff::Timestamp::now());
    match format {
        Format::Json => {
            let json = serde_json::to_string_pretty(&diagnostics.to_json()).unwrap_or_else(|_| "[]".into());
            println!("{json}");
        }
        Format::Text => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(render(&diagnostics, std::io::stdout().is_terminal()).as_bytes());
        }
    }
    if diagnostics.has_errors() {
        Exit::Failure
    } else {
        Exit::Success
    }
}

fn run_edit(path: &Path, change: edit::Change) -> Exit {
    match edit::edit_file(path, &change, jiff::Timestamp::now()) {
        Ok(edit::Outcome::Written(msg)) => {
            println!("{msg} in {}", path.display());
            Exit::Success
        }
        Ok(edit::Outcome::Unchanged(msg)) => {
            println!("{msg}; {} not changed", path.display());
            Exit::Success
        }
        Ok(edit::Outcome::Refused(msg)) => {
            eprintln!("error: {msg}; {} not changed", path.display());
            Exit::Error
        }
        Err(edit::Error::Invalid { diagnostics }) => {
            eprint!("{}", render(&diagnostics, std::io::stderr().is_terminal()));
            eprintln!(
                "error: {} was not changed: fix the errors above first",
                path.display()
            );
            Exit::Failure
        }
        Err(e @ edit::Error::UnknownTarget { .. }) => {
            eprintln!("error: {e}");
            Exit::Failure
        }
        Err(e @ edit::Error::Produced { .. }) => {
            if let edit::Error::Produced { diagnostics } = &e {
                eprint!("{}", render(diagnostics, false));
            }
            eprintln!("error: {e}");
            Exit::Error
        }
        Err(e) => {
            eprintln!("error: {e}");
            Exit::Error
        }
    }
}

/// Load the config for a verb that acts on it: diagnostics (and warnings)
/// go to stderr; `None` means the verb should exit with the returned code.
fn load_for_action(path: &Path) -> Result<config::Loaded, Exit> {
    report_load(config::load(path))
}

fn report_load(loaded: Result<config::Loaded, config::Error>) -> Result<config::Loaded, Exit> {
    match loaded {
        Ok(loaded) => {
            if !loaded.warnings.items.is_empty() {
                eprint!("{}", render(&loaded.warnings, std::io::stderr().is_terminal()));
            }
            Ok(loaded)
        }
        Err(config::Error::Invalid { diagnostics }) => {
            eprint!("{}", render(&diagnostics, std::io::stderr().is_terminal()));
            Err(Exit::Failure)
        }
        Err(e @ config::Error::Read { .. }) => {
            eprintln!("error: {e}");
            eprintln!("  help: pass -c FILE, or set MOORING_CONFIG");
            Err(Exit::Error)
        }
    }
}

/// Whether to colour what goes to a stream: a terminal (`tty`), with
/// `NO_COLOR` unset or empty.
fn colour(tty: bool) -> bool {
    tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Render diagnostics for a terminal or a pipe.
fn render(diagnostics: &Diagnostics, tty: bool) -> String {
    let color = colour(tty);
    let width = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(100);
    diagnostics.render(color, width)
}
