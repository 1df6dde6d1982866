//! Helm chart archives on any bytes: the loader (gzip, tar, Chart.yaml,
//! templates, subcharts, Helm's size caps and path rules, in memory) and
//! the renderer with the chart's default values return a chart's
//! manifests or an error; they never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mooring::helm::chart::Chart;
use mooring::helm::render::{Options, render};

fuzz_target!(|data: &[u8]| {
    // Raw bytes as an archive, and (more reachable) wrapped in gzip.
    let mut gz = Vec::new();
    {
        use std::io::Write as _;
        let mut e = flate2::write::GzEncoder::new(&mut gz, flate2::Compression::fast());
        let _ = e.write_all(data);
        let _ = e.finish();
    }
    for bytes in [data, gz.as_slice()] {
        let Ok(chart) = Chart::load_archive(bytes) else {
            continue;
        };
        let opts = Options {
            release: "fuzz".into(),
            namespace: "default".into(),
            ..Options::default()
        };
        let mut warnings = Vec::new();
        let _ = render(&chart, &opts, &mut warnings);
    }
});
