//! The system under test: the real backend (in this process, on a free port) serving the real
//! built SPA from `<workspace>/dist`.

use anyhow::{ensure, Context};
use backend::{config::Settings, startup::Application};

use crate::workspace_root;

#[derive(Debug)]
pub struct RunningBackend {
    pub url: String,
    _data_dir: tempfile::TempDir,
}

impl RunningBackend {
    /// Starts the backend on SQLite in a fresh data directory, serving `dist/`.
    pub async fn start() -> anyhow::Result<Self> {
        let dist = workspace_root().join("dist");
        ensure!(
            dist.join("index.html").is_file(),
            "{} has no built SPA: run scripts/test.sh (it runs trunk build first)",
            dist.display()
        );
        let data_dir = tempfile::tempdir()?;
        let settings = Settings {
            listen: "127.0.0.1:0".parse()?,
            data_dir: data_dir.path().to_owned(),
            dist_dir: dist,
            ..Settings::default()
        };
        let app = Application::build(settings).await.context("Failed to start the backend")?;
        let url = app.url();
        tokio::spawn(app.run_until_stopped());
        Ok(Self { url, _data_dir: data_dir })
    }
}
