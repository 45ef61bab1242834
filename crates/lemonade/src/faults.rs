//! The fault switchboard at the edges of a process: its admin endpoint (`/admin/faults`,
//! behind the cluster token) and `lemonade faults set|clear|show`, the command that calls it.
//! What the switchboard injects and how is `lemonade_cluster::switchboard`.
//!
//! The endpoint wants the **cluster token**, not the public API's access token: the access
//! token is given to every tablet at the counter, and a tablet must not be able to break
//! the cluster; the cluster token is the operator's secret that the processes share (which
//! `lemonade cluster --cluster-token` lets the operator set), and it is the one credential
//! every process of the distributed mode, coordinator or service, already checks.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use lemonade_api::error::ApiError;
use lemonade_cluster::switchboard::{FaultSpec, Injected, Switchboard};
use lemonade_domain::ShopError;
use serde::{Deserialize, Serialize};

/// Where a process serves its switchboard.
pub const FAULTS_PATH: &str = "/admin/faults";
/// Where a process of the distributed mode renders its metrics for the operator (the
/// services have no public API; the coordinator has `/api/v1/metrics` as well).
pub const METRICS_PATH: &str = "/admin/metrics";
/// Largest body of a `PUT /admin/faults`, in bytes: a spec's limit and its JSON around it.
pub const BODY_BYTES_MAX: usize = 2 * lemonade_cluster::switchboard::spec::SPEC_BYTES_MAX;
/// `lemonade faults --timeout-ms`: default and range.
pub const TIMEOUT_MS_DEFAULT: u64 = 5_000;
pub const TIMEOUT_MS_RANGE: std::ops::RangeInclusive<u64> = 100..=60_000;

/// What the endpoint answers: the process, the faults set (in the spec's syntax; empty for
/// none) and what was injected since the process started.
#[derive(Debug, Serialize, Deserialize)]
pub struct FaultsState {
    pub process: String,
    pub faults: String,
    pub injected: Vec<InjectedCount>,
}

/// One line of [`FaultsState::injected`].
#[derive(Debug, Serialize, Deserialize)]
pub struct InjectedCount {
    pub kind: String,
    pub target: String,
    pub count: u64,
}

/// The body of `PUT /admin/faults`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetFaults {
    pub faults: String,
}

#[derive(Clone)]
struct Admin {
    board: Arc<Switchboard>,
    cluster_token: Arc<str>,
}

/// The admin routes of a process of the distributed mode: `GET|PUT|DELETE /admin/faults`
/// and `GET /admin/metrics`, each wanting `Authorization: Bearer <cluster token>`.
pub fn admin_router(board: Arc<Switchboard>, cluster_token: &str) -> Router {
    let admin = Admin {
        board,
        cluster_token: cluster_token.into(),
    };
    Router::new()
        .route(FAULTS_PATH, get(show).put(set).delete(clear))
        .route(METRICS_PATH, get(metrics))
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(middleware::from_fn_with_state(admin.clone(), require_cluster_token))
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .with_state(admin)
}

async fn require_cluster_token(State(admin): State<Admin>, request: Request, next: Next) -> Response {
    let presented = request.headers().get(header::AUTHORIZATION).map(|v| v.as_bytes());
    if !lemonade_api::auth::bearer_matches(presented, &admin.cluster_token) {
        return ApiError::Unauthorized.into_response();
    }
    next.run(request).await
}

fn state(board: &Switchboard) -> FaultsState {
    FaultsState {
        process: board.role().as_str().to_owned(),
        faults: board.spec().to_string(),
        injected: board
            .injected()
            .into_iter()
            .map(|Injected { kind, target, count }| InjectedCount {
                kind: kind.to_owned(),
                target,
                count,
            })
            .collect(),
    }
}

async fn show(State(admin): State<Admin>) -> Response {
    axum::Json(state(&admin.board)).into_response()
}

async fn set(State(admin): State<Admin>, body: Bytes) -> Result<Response, ApiError> {
    let SetFaults { faults } = serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest {
        status: StatusCode::BAD_REQUEST,
        detail: format!("the body must be {{\"faults\": \"<spec>\"}}: {e}"),
    })?;
    let spec: FaultSpec = faults
        .parse()
        .map_err(|e: lemonade_cluster::switchboard::ParseError| ShopError::validation("faults", e.to_string()))?;
    admin
        .board
        .set(spec)
        .map_err(|e| ShopError::validation("faults", e.to_string()))?;
    Ok(axum::Json(state(&admin.board)).into_response())
}

async fn clear(State(admin): State<Admin>) -> Response {
    admin.board.clear();
    axum::Json(state(&admin.board)).into_response()
}

async fn metrics() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        lemonade_api::metrics_handle().render(),
    )
        .into_response()
}

/// `lemonade faults`: show, set or clear the faults of a running process.
#[derive(Clone, Debug, clap::Args)]
pub struct FaultsArgs {
    #[command(subcommand)]
    pub action: FaultsAction,
}

/// What `lemonade faults` does.
#[derive(Clone, Debug, clap::Subcommand)]
pub enum FaultsAction {
    /// Print the faults set on a process and what it has injected.
    Show(Where),
    /// Replace the faults of a process, e.g. `"stock: lose-reply 10%, delay 50ms±20ms"`.
    Set {
        #[command(flatten)]
        at: Where,
        /// The faults, in the syntax of `--faults` (see the README).
        #[arg(value_parser = parse_spec)]
        faults: FaultSpec,
    },
    /// Remove every fault of a process.
    Clear(Where),
}

/// Which process, and how to reach it.
#[derive(Clone, Debug, clap::Args)]
pub struct Where {
    /// The process's address, e.g. http://127.0.0.1:8080 (as `lemonade cluster` prints it).
    #[arg(long)]
    pub url: String,
    /// The cluster token (see `cluster --cluster-token`).
    #[arg(long, env = "LEMONADE_CLUSTER_TOKEN", hide_env_values = true)]
    pub cluster_token: String,
    /// How long to wait for the answer, in ms (100 to 60000).
    #[arg(long, default_value_t = TIMEOUT_MS_DEFAULT, value_parser = clap::value_parser!(u64).range(TIMEOUT_MS_RANGE))]
    pub timeout_ms: u64,
}

/// `--faults` and `faults set`: the spec, parsed at the edge.
pub fn parse_spec(text: &str) -> Result<FaultSpec, String> {
    text.parse()
        .map_err(|e: lemonade_cluster::switchboard::ParseError| e.to_string())
}

/// Runs `lemonade faults`: one request to the process's endpoint, its answer printed.
pub async fn run(args: FaultsArgs) -> anyhow::Result<()> {
    let state = call(&args.action).await?;
    let faults = if state.faults.is_empty() { "none" } else { &state.faults };
    crate::output::say(&format!("{} process: faults {faults}", state.process));
    if state.injected.is_empty() {
        crate::output::say("  nothing injected yet");
    }
    for i in &state.injected {
        crate::output::say(&format!("  {:<12} {:<8} {:>8} injected", i.kind, i.target, i.count));
    }
    Ok(())
}

/// The request of `action`, and the process's answer.
pub async fn call(action: &FaultsAction) -> anyhow::Result<FaultsState> {
    let (at, method, body) = match action {
        FaultsAction::Show(at) => (at, reqwest::Method::GET, None),
        FaultsAction::Clear(at) => (at, reqwest::Method::DELETE, None),
        FaultsAction::Set { at, faults } => (
            at,
            reqwest::Method::PUT,
            Some(SetFaults {
                faults: faults.to_string(),
            }),
        ),
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(at.timeout_ms))
        .build()
        .context("making an HTTP client")?;
    let url = format!("{}{FAULTS_PATH}", at.url.trim_end_matches('/'));
    let mut request = client.request(method, &url).bearer_auth(&at.cluster_token);
    if let Some(body) = &body {
        request = request.json(body);
    }
    let response = request.send().await.with_context(|| format!("calling {url}"))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .with_context(|| format!("reading the answer of {url}"))?;
    if !status.is_success() {
        let detail = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("detail").and_then(|d| d.as_str()).map(str::to_owned))
            .unwrap_or(text);
        anyhow::bail!("{url} answered {status}: {detail}");
    }
    serde_json::from_str(&text).with_context(|| format!("reading the answer of {url}"))
}
