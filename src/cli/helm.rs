//! `mooring helm template`: render a chart as `helm template` does, with
//! its flags (`-n`, `-f`, `--set`, `--set-string`, `--kube-version`,
//! `--api-versions`, `--include-crds`), and print its output or its error.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use miette::{GraphicalReportHandler, GraphicalTheme};

use super::Exit;
use crate::helm::{self, Chart, KubeVersion, Options};

/// The arguments of `mooring helm template`.
#[derive(Debug, clap::Args)]
pub struct TemplateArgs {
    /// The release name (`.Release.Name`)
    #[arg(value_name = "RELEASE")]
    pub release: String,
    /// The chart: a directory or a .tgz archive
    #[arg(value_name = "CHART")]
    pub chart: PathBuf,
    /// The release namespace (`.Release.Namespace`)
    #[arg(short = 'n', long = "namespace", value_name = "NS", default_value = "default")]
    pub namespace: String,
    /// A values file; repeat (or separate with commas) for several, later ones win
    #[arg(short = 'f', long = "values", value_name = "FILE", value_delimiter = ',')]
    pub values: Vec<PathBuf>,
    /// Set values: a.b=c,list[0]=x,l={a,b} (typed: true, 12, null)
    #[arg(long = "set", value_name = "K=V")]
    pub set: Vec<String>,
    /// Set values as strings
    #[arg(long = "set-string", value_name = "K=V")]
    pub set_string: Vec<String>,
    /// The Kubernetes version for .Capabilities [default: v1.32.0]
    #[arg(long = "kube-version", value_name = "V", value_parser = parse_kube_version)]
    pub kube_version: Option<KubeVersion>,
    /// An API version for .Capabilities.APIVersions (group/version or group/version/Kind); repeat for several
    #[arg(short = 'a', long = "api-versions", value_name = "G/V", value_delimiter = ',')]
    pub api_versions: Vec<String>,
    /// Print the charts' crds/ files too
    #[arg(long = "include-crds")]
    pub include_crds: bool,
}

fn parse_kube_version(s: &str) -> Result<KubeVersion, String> {
    KubeVersion::parse(s)
}

fn read_values(path: &Path) -> Result<(String, String), String> {
    let name = path.display().to_string();
    let text = if name == "-" {
        let mut t = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut t)
            .map_err(|e| format!("reading stdin: {e}"))?;
        t
    } else if name.contains("://") {
        return Err(format!(
            "{name}: values are read from files only; download it first"
        ));
    } else {
        let meta = std::fs::metadata(path).map_err(|e| format!("{name}: {e}"))?;
        if meta.len() > helm::chart::MAX_CHART_BYTES {
            return Err(format!(
                "{name}: larger than {} bytes",
                helm::chart::MAX_CHART_BYTES
            ));
        }
        std::fs::read_to_string(path).map_err(|e| format!("{name}: {e}"))?
    };
    Ok((name, text))
}

pub fn template(args: TemplateArgs) -> Exit {
    let mut values_files = Vec::new();
    for v in &args.values {
        match read_values(v) {
            Ok(f) => values_files.push(f),
            Err(e) => return fail(&helm::Error::Values(e)),
        }
    }
    let chart = match Chart::load(&args.chart) {
        Ok(c) => c,
        Err(e) => return fail(&helm::Error::Chart(e)),
    };
    let opts = Options {
        release: args.release,
        namespace: args.namespace,
        values_files,
        layers: Vec::new(),
        set: args.set,
        set_string: args.set_string,
        kube_version: args.kube_version,
        api_versions: args.api_versions,
        include_crds: args.include_crds,
        only_api_versions: false,
    };
    let mut warnings = Vec::new();
    let result = helm::render(&chart, &opts, &mut warnings);
    for w in &warnings {
        // Helm's own words; most start with "warning: " already.
        if w.starts_with("warning: ") {
            eprintln!("{w}");
        } else {
            eprintln!("warning: {w}");
        }
    }
    match result {
        Ok(r) => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(r.output().as_bytes());
            let _ = out.flush();
            Exit::Success
        }
        Err(e) => fail(&e),
    }
}

fn fail(e: &helm::Error) -> Exit {
    eprint!("{}", report(e));
    Exit::Failure
}

/// A helm error as the project renders diagnostics. Long lines are not
/// wrapped: Helm's messages stay greppable.
pub fn report(e: &helm::Error) -> String {
    let color = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(usize::MAX / 4)
        .with_links(false);
    let mut out = String::new();
    let _ = handler.render_report(&mut out, e);
    out
}
