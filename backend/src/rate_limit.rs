//! Request rates on the API (issue 15): per client address and for the whole service, so one
//! client looping on a public route cannot crowd out everyone else or grow the database at will.
//! Over a limit: `429` with `Retry-After` and the usual error body (`rate_limited`).
//!
//! The client's address is the connection's, or, behind a reverse proxy, the last entry of the
//! header the operator names (`client_address_header`): a header no proxy of ours set is
//! never trusted.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    num::NonZeroU32,
    sync::Arc,
    time::Duration,
};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::{header::RETRY_AFTER, HeaderMap, HeaderName, HeaderValue},
    middleware::Next,
    response::{IntoResponse, Response},
};
use governor::{clock::Clock, DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use protocol::error_code::ErrorCode;

use crate::{config::Settings, error::ApiError};

/// How often the per-client state forgets clients that have gone quiet.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct RateLimits {
    per_client: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    global: Arc<DefaultDirectRateLimiter>,
    client_header: Option<HeaderName>,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits").field("clients", &self.per_client.len()).finish_non_exhaustive()
    }
}

fn non_zero(value: u32, name: &str) -> anyhow::Result<NonZeroU32> {
    NonZeroU32::new(value).ok_or_else(|| anyhow::anyhow!("{name} must be at least 1"))
}

impl RateLimits {
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let per_second = non_zero(settings.rate_limit_per_second, "rate_limit_per_second")?;
        let burst = non_zero(settings.rate_limit_burst, "rate_limit_burst")?;
        let global = non_zero(settings.global_rate_limit_per_second, "global_rate_limit_per_second")?;
        let client_header = settings
            .client_address_header
            .as_deref()
            .map(|name| HeaderName::try_from(name.trim()))
            .transpose()
            .map_err(|_| anyhow::anyhow!("client_address_header is not a header name"))?;
        Ok(Self {
            per_client: Arc::new(RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst))),
            global: Arc::new(RateLimiter::direct(Quota::per_second(global))),
            client_header,
        })
    }

    /// Forgets, every minute, the clients whose allowance is full again: the state stays as
    /// small as the set of clients seen lately.
    pub fn sweep_forever(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let per_client = self.per_client.clone();
        async move {
            let mut tick = tokio::time::interval(SWEEP_EVERY);
            loop {
                tick.tick().await;
                per_client.retain_recent();
                per_client.shrink_to_fit();
            }
        }
    }

    /// Clients remembered right now (the bounded-state tests read it).
    pub fn clients(&self) -> usize {
        self.per_client.len()
    }

    fn client(&self, headers: &HeaderMap, peer: Option<SocketAddr>) -> IpAddr {
        let forwarded = self.client_header.as_ref().and_then(|name| {
            let value = headers.get_all(name).iter().next_back()?.to_str().ok()?;
            value.rsplit(',').next()?.trim().parse().ok()
        });
        // Without a peer (a router driven in-process) every request is one client.
        forwarded.or(peer.map(|p| p.ip())).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    /// `Err(wait)` when this request is over a limit.
    fn admit(&self, client: IpAddr) -> Result<(), Duration> {
        // Each wait is read on the clock of the limiter that set it.
        self.per_client
            .check_key(&client)
            .map_err(|not_until| not_until.wait_time_from(self.per_client.clock().now()))?;
        self.global.check().map_err(|not_until| not_until.wait_time_from(self.global.clock().now()))
    }
}

/// The middleware on `/api`.
pub async fn limit(State(limits): State<RateLimits>, request: Request, next: Next) -> Response {
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|info| info.0);
    let client = limits.client(request.headers(), peer);
    match limits.admit(client) {
        Ok(()) => next.run(request).await,
        Err(wait) => {
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let refused = ApiError::rejected(
                ErrorCode::RateLimited,
                "Too many requests from this computer. Wait a few seconds and try again.",
            );
            let mut response = refused.into_response();
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(seconds.max(1)));
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(header: Option<&str>) -> RateLimits {
        let settings = Settings {
            rate_limit_per_second: 1,
            rate_limit_burst: 3,
            client_address_header: header.map(str::to_owned),
            ..Settings::default()
        };
        RateLimits::from_settings(&settings).unwrap()
    }

    fn peer(last: u8) -> Option<SocketAddr> {
        Some(SocketAddr::from(([10, 0, 0, last], 40000)))
    }

    #[test]
    fn a_client_gets_its_burst_then_is_told_how_long_to_wait() {
        let limits = limits(None);
        let me = limits.client(&HeaderMap::new(), peer(1));
        for _ in 0..3 {
            assert!(limits.admit(me).is_ok());
        }
        let wait = limits.admit(me).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1), "{wait:?}");
        assert!(
            limits.admit(limits.client(&HeaderMap::new(), peer(2))).is_ok(),
            "another client is not held up"
        );
    }

    #[test]
    fn a_forwarded_address_counts_only_from_the_configured_header_and_its_last_entry() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9, 198.51.100.7"));
        assert_eq!(
            limits(None).client(&headers, peer(1)),
            IpAddr::from([10, 0, 0, 1]),
            "not trusted unless configured"
        );
        let behind_proxy = limits(Some("x-forwarded-for"));
        assert_eq!(
            behind_proxy.client(&headers, peer(1)),
            IpAddr::from([198, 51, 100, 7]),
            "what our proxy saw"
        );
        assert_eq!(behind_proxy.client(&HeaderMap::new(), peer(1)), IpAddr::from([10, 0, 0, 1]));
    }
}
