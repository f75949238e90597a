//! Builds the application: database, migrations, the SPA in memory, the router, the listener.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use axum::{extract::DefaultBodyLimit, middleware, Router};
use tokio::net::TcpListener;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::trace::TraceLayer;

use card_ca::CertificateAuthority;

use crate::{
    config::Settings,
    db::Database,
    hashing::{AnswerHasher, CodeHasher},
    keys,
    mail::{self, Outbox},
    rate_limit::RateLimits,
    request_id::RequestIds,
    routes,
    security_headers::SecurityHeaders,
    static_files::StaticFiles,
    vault::Vault,
};

/// JSON bodies of this API are small; anything larger is refused before it is read.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    pub db: Database,
    pub settings: Arc<Settings>,
    pub outbox: Outbox,
    pub answers: AnswerHasher,
    pub codes: CodeHasher,
    pub vault: Vault,
    /// Certifies the keys generated on cards the RA issues.
    pub ca: Arc<CertificateAuthority>,
    /// Signs every envelope released to a card agent.
    pub signer: Arc<envelope::EnvelopeSigner>,
    /// Card makers' attestation roots; empty: issuance is not attested.
    pub attestation_roots: Arc<Vec<x509_cert::Certificate>>,
}

impl AppState {
    /// Everything the journeys use, from the settings. Mail is only queued here: the server runs
    /// the outbox (so `backend admin`, which queues a notice, needs no relay of its own).
    pub fn new(db: Database, settings: Settings) -> anyhow::Result<Self> {
        let transport = mail::Transport::from_settings(
            settings.smtp_url.as_deref(),
            settings.smtp_ca_file.as_deref(),
            settings.data_dir.join("mail"),
        )?;
        let vault = Vault::from_settings(&settings)?;
        let outbox = Outbox::new(db.clone(), transport, &settings.mail_from, vault.clone())?;
        Ok(Self {
            codes: CodeHasher::new(keys::server_key(&settings)?),
            ca: Arc::new(CertificateAuthority::load_or_create(&settings.ca_dir())?),
            signer: Arc::new(crate::trust::envelope_signer(&settings)?),
            attestation_roots: Arc::new(crate::trust::attestation_roots(&settings)?),
            answers: AnswerHasher::default(),
            db,
            settings: Arc::new(settings),
            outbox,
            vault,
        })
    }
}

/// The whole HTTP surface: `/api/*` JSON routes (rate-limited), everything else the SPA.
pub fn app(
    state: AppState,
    files: StaticFiles,
    headers: SecurityHeaders,
    limits: RateLimits,
    ids: RequestIds,
) -> Router {
    let spa = Router::new().fallback(crate::static_files::serve).with_state(files);
    let timeout = Duration::from_secs(state.settings.request_timeout_seconds.max(1));
    let concurrency = state.settings.max_concurrent_requests.max(1);
    let api = routes::router().layer(middleware::from_fn_with_state(limits, crate::rate_limit::limit));
    Router::new()
        .nest("/api", api)
        .with_state(state)
        .merge(spa)
        .layer(middleware::map_response_with_state(headers, crate::security_headers::apply))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        // A request that takes too long is answered rather than left hanging; what waits for a
        // turn is bounded.
        .layer(middleware::from_fn_with_state(timeout, crate::deadline::limit))
        .layer(GlobalConcurrencyLimitLayer::new(concurrency))
        .layer(TraceLayer::new_for_http().make_span_with(crate::request_id::span_for))
        // Outermost: the id is given before the trace's span is made.
        .layer(middleware::from_fn_with_state(ids, crate::request_id::tag))
}

#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    router: Router,
    address: SocketAddr,
    /// The metrics listener, when `metrics_listen` is set.
    metrics: Option<TcpListener>,
    db: Database,
}

impl Application {
    /// Connects and migrates the database, loads the SPA and binds the listener.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let db = Database::connect(&settings).await?;
        db.migrate().await?;
        let dist = settings.dist_dir.clone();
        // Compressing the SPA takes a moment of CPU: keep it off the async workers.
        let files = tokio::task::spawn_blocking(move || StaticFiles::load(&dist))
            .await?
            .context("Failed to load the SPA")?;
        if files.is_empty() {
            tracing::warn!(dist = %settings.dist_dir.display(), "no SPA found; serving the API only");
        }
        let headers = SecurityHeaders::new(&files.index_htmls(), &settings.agent_urls)?;
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("Failed to listen on {}", settings.listen))?;
        let address = listener.local_addr()?;
        let metrics = match settings.metrics_listen {
            Some(at) => Some(
                TcpListener::bind(at)
                    .await
                    .with_context(|| format!("Failed to listen for metrics on {at}"))?,
            ),
            None => None,
        };
        let state = AppState::new(db.clone(), settings)?;
        tokio::spawn(state.outbox.clone().run());
        let limits = RateLimits::from_settings(&state.settings)?;
        tokio::spawn(limits.sweep_forever());
        let ids = RequestIds::new(state.settings.request_id_header.as_deref())?;
        Ok(Self { listener, router: app(state, files, headers, limits, ids), address, metrics, db })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The metrics listener's URL (`…/metrics`), if there is one.
    pub fn metrics_url(&self) -> Option<String> {
        let address = self.metrics.as_ref()?.local_addr().ok()?;
        Some(format!("http://{address}/metrics"))
    }

    /// Serves until Ctrl-C or SIGTERM, then finishes in-flight requests and closes the pool.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        if let Some(listener) = self.metrics {
            let metrics = crate::metrics::router(self.db.clone());
            tokio::spawn(async move {
                if let Err(error) = axum::serve(listener, metrics).await {
                    tracing::error!(%error, "the metrics listener stopped");
                }
            });
        }
        // The peer's address is what the rate limits count by (unless a proxy header is trusted).
        let service = self.router.into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(self.listener, service).with_graceful_shutdown(shutdown_signal()).await?;
        self.db.close().await;
        Ok(())
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
