//! `mooring run`: loads the config, binds the HTTP listener and runs the
//! agent ([`crate::agent::run`]) with the HTTP server ([`crate::server`])
//! wired to it: the agent knows nothing of the server.

use std::path::Path;

use super::Exit;
use crate::config;

pub fn run(path: &Path) -> Exit {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read config file {}: {e}", path.display());
            eprintln!("  help: pass -c FILE, or set MOORING_CONFIG");
            return Exit::Error;
        }
    };
    let checked = match String::from_utf8(text.clone()) {
        Ok(t) => config::from_str(path, t, jiff::Timestamp::now()),
        Err(_) => {
            eprintln!("error: {} is not UTF-8 text", path.display());
            return Exit::Failure;
        }
    };
    let loaded = match super::report_load(checked) {
        Ok(l) => l,
        Err(code) => return code,
    };
    super::state_dir_hint(&loaded.config.agent);
    let _log = super::log::init(&loaded.config.agent);
    let runtime = match super::runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let listen = loaded.config.agent.listen;
    let served = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        // The agent runs; the HTTP server serves it until it stops.
        let ready = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let serve = move |agent, stopped| async move {
            if let Err(e) = crate::server::serve(listener, agent, ready, stopped).await {
                tracing::error!("the HTTP server stopped: {e}");
            }
        };
        crate::agent::run::run(path.to_path_buf(), loaded, &text, serve)
            .await
            .map_err(|e| e.to_string())
    });
    match served {
        Ok(()) => Exit::Success,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("error: {e}");
            Exit::Error
        }
    }
}
