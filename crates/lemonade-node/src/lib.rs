//! A node: one process of the shop, of any role, assembled in one place.
//!
//! [`build`] makes a node of any [`Role`] — the monolith, the coordinator, or the stock,
//! orders or CRM service — from its settings ([`NodeConfig`]) and its seams ([`Seams`]: the
//! database, the clock, the id source, the transport to the other services, the seed of its
//! randomness). It starts the node's background tasks, registered by name in the database's
//! [`Tasks`](lemonade_store::tasks::Tasks) (which health reports), and returns an
//! [`Assembled`] node: a router to serve, and a [`stop`](Assembled::stop) that ends the
//! tasks, then closes the database. The node's short tasks (a placement's saga, a probe, a
//! scrub) run in the same `Tasks` ([`spawn_short`](lemonade_store::tasks::Tasks::spawn_short)),
//! so the stop ends those too: nothing the node started outlives it.
//!
//! `lemonade serve` (every role), the in-process test cluster and the coming simulation all
//! build their nodes here, so a role is wired the same way wherever it runs. Nothing here
//! reads the wall clock, draws randomness or installs a global (a metrics recorder, a
//! tracing subscriber): those come in through the seams, or are the binary's job.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use lemonade_api::AppState;
use lemonade_cluster::client::BreakerPhase;
use lemonade_cluster::node::Kept;
use lemonade_cluster::orders::OrdersService;
use lemonade_cluster::relay::Relay;
use lemonade_cluster::transport::Transport;
use lemonade_cluster::{CallPolicy, Clients, Coordinator, CoordinatorConfig, Node, Protection, Service};
use lemonade_domain::ShopError;
use lemonade_domain::ports::{Clock, IdSource};
use lemonade_domain::saga::Destination;
use lemonade_store::shop::MINOR_UNITS_PER_POINT_DEFAULT;
use lemonade_store::{Database, ShopConfig, SqliteShop};
use metrics_exporter_prometheus::PrometheusHandle;

pub use lemonade_store::migrations::Role;

/// How often the stock service releases the reservations whose lease ran out.
pub const LEASE_EXPIRY_PERIOD: Duration = Duration::from_millis(200);

/// What a node is and how it behaves: everything but its seams.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// Which part of the shop this node is. Must match the database's role.
    pub role: Role,
    /// The public API's access token (monolith and coordinator): every request must carry
    /// it when set.
    pub token: Option<String>,
    /// The token the services of one cluster require of each other (every role but the
    /// monolith).
    pub cluster_token: Option<String>,
    /// Loyalty: one point per this many minor currency units spent (monolith, coordinator);
    /// at least 1.
    pub minor_units_per_point: u64,
    /// Coordinator: how long stock holds an uncommitted reservation, in ms; longer than
    /// `order_deadline_ms`.
    pub lease_ms: u64,
    /// Coordinator: how long placing an order may take before the answer is 202, in ms.
    pub order_deadline_ms: u64,
    /// Services: requests per second before 429 (also the burst).
    pub rate_per_s: u32,
    /// Create the demo shop if the database is empty (monolith and stock hold what it makes).
    pub seed_demo: bool,
}

impl NodeConfig {
    /// The defaults of `lemonade serve` for `role`: no tokens, no demo shop.
    pub fn new(role: Role) -> Self {
        let coordinator = CoordinatorConfig::default();
        NodeConfig {
            role,
            token: None,
            cluster_token: None,
            minor_units_per_point: MINOR_UNITS_PER_POINT_DEFAULT,
            lease_ms: coordinator.lease_ms,
            order_deadline_ms: coordinator.order_deadline_ms,
            rate_per_s: Protection::default().rate_per_s,
            seed_demo: false,
        }
    }

    fn protection(&self) -> Protection {
        Protection {
            rate_per_s: self.rate_per_s,
            burst: self.rate_per_s.max(1),
            ..Protection::default()
        }
    }
}

/// What a node touches outside itself: each one a seam, so a test or a simulation can put
/// its own in.
pub struct Seams {
    /// The node's database, opened for `NodeConfig::role`. The node owns it from here on:
    /// [`Assembled::stop`] closes it (and so does a refused [`build`]).
    pub db: Database,
    /// Where the node reads the time of what it writes.
    pub clock: Arc<dyn Clock>,
    /// Where the node draws the ids of what it makes.
    pub ids: Arc<dyn IdSource>,
    /// The network to the other services: the coordinator calls stock, orders and CRM; the
    /// orders service's relay calls stock and CRM. Unused by the monolith, stock and CRM.
    pub transport: Option<Arc<dyn Transport>>,
    /// The seed of the node's randomness (the jitter of its retries).
    pub seed: u64,
    /// The handle `/metrics` renders (monolith, coordinator), of a recorder the caller
    /// installed; `None` renders nothing.
    pub metrics: Option<PrometheusHandle>,
}

/// Why a node could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("the {} role needs {what}", role.as_str())]
    Missing { role: Role, what: &'static str },
    #[error("the database holds the {} role, not {}", found.as_str(), wanted.as_str())]
    WrongDatabase { wanted: Role, found: Role },
    #[error("{0}")]
    Setting(String),
    #[error("creating the demo shop: {0}")]
    Seed(ShopError),
}

/// A node, built and running its background tasks: serve [`Assembled::router`], then
/// [`Assembled::stop`] it.
pub struct Assembled {
    role: Role,
    router: Router,
    db: Database,
    seeded: bool,
    /// The node's calling side, whose circuit breakers [`Assembled::breakers`] reports: the
    /// coordinator's and the orders service's; `None` for the roles that call no one.
    clients: Option<Arc<Clients>>,
}

impl Assembled {
    /// Which part of the shop this node is.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Everything the node answers: the public API and the web app (monolith, coordinator),
    /// or the internal calls and `/health` (services). Cheap to clone.
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// The names of the background tasks running, as health names them.
    pub fn tasks(&self) -> Vec<String> {
        self.db.tasks.names()
    }

    /// Whether [`build`] created the demo shop.
    pub fn seeded(&self) -> bool {
        self.seeded
    }

    /// The state of each of the node's circuit breakers, one per service it calls, in
    /// [`Service::ALL`] order: the coordinator's `[(Stock, _), (Orders, _), (Crm, _)]`, the
    /// orders service's `[(Stock, _), (Crm, _)]`, and `[]` for the monolith, stock and CRM,
    /// which call no one. What each circuit holds, not read against the clock (an `Open`
    /// circuit whose wait is over stays `Open` until a probe goes; see [`BreakerPhase`]). For
    /// a simulation's checker, at the end of a run.
    pub fn breakers(&self) -> Vec<(Service, BreakerPhase)> {
        self.clients.as_ref().map(|c| c.breakers()).unwrap_or_default()
    }

    /// The node's database (for tests that look inside).
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Stops the node as a whole: ends every task, vital or short, at its next await and
    /// waits for each (a placement cut so is as after a crash: its saga log and the sweeper
    /// take it on), then closes the database (SQLite: the WAL folded back and removed, the
    /// writer and readers closed; see [`Database::close`]). Serve nothing from its router
    /// after this. Says which steps of the database's close were done.
    pub async fn stop(self) -> lemonade_store::db::Closed {
        self.db.close().await
    }
}

/// Builds a node of `config.role` from its seams: creates the demo shop if asked and the
/// database is empty, starts the role's background tasks, and makes its router. A refusal
/// closes the database it was given and leaves nothing running.
///
/// Tasks by role: the monolith forgets old idempotency keys; the coordinator runs the saga
/// sweeper, the circuit prober and its own expiry; every service forgets old step results;
/// stock releases expired leases and forgets applied events; orders relays its outbox to
/// stock and CRM (woken by its commits; with a circuit prober) and forgets delivered events; CRM forgets applied
/// events.
///
/// # Errors
/// A setting the role needs is missing or out of range ([`BuildError::Missing`],
/// [`BuildError::Setting`]), the database is of another role, or the demo shop could not be
/// written.
pub async fn build(config: NodeConfig, seams: Seams) -> Result<Assembled, BuildError> {
    let db = seams.db.clone();
    match assemble(config, seams).await {
        Ok(node) => Ok(node),
        Err(e) => {
            db.close().await;
            Err(e)
        }
    }
}

async fn assemble(config: NodeConfig, seams: Seams) -> Result<Assembled, BuildError> {
    let role = config.role;
    if seams.db.role != role {
        return Err(BuildError::WrongDatabase {
            wanted: role,
            found: seams.db.role,
        });
    }
    check(&config)?;
    // The clock resumes after the last stamp this process recorded, whatever its wall clock
    // says now.
    if let Some(last) = seams
        .db
        .readers
        .read(lemonade_store::sql::timeline::last_stamp)
        .await
        .map_err(BuildError::Seed)?
    {
        seams.db.hlc.resume(last);
    }
    let seeded = if config.seed_demo && matches!(role, Role::Monolith | Role::Stock) {
        lemonade_store::seed::seed_demo_if_empty(&seams.db, Arc::clone(&seams.clock), Arc::clone(&seams.ids))
            .await
            .map_err(BuildError::Seed)?
    } else {
        false
    };
    let db = seams.db.clone();
    let (router, clients) = match role {
        Role::Monolith => (monolith(&config, seams), None),
        Role::Coordinator => {
            let (router, clients) = coordinator(&config, seams)?;
            (router, Some(clients))
        }
        Role::Stock | Role::Orders | Role::Crm => service(&config, seams)?,
    };
    Ok(Assembled {
        role,
        router,
        db,
        seeded,
        clients,
    })
}

/// Refuses settings the role cannot run with, before anything starts.
fn check(config: &NodeConfig) -> Result<(), BuildError> {
    let role = config.role;
    if role != Role::Monolith && config.cluster_token.as_deref().is_none_or(str::is_empty) {
        return Err(BuildError::Missing {
            role,
            what: "a cluster token",
        });
    }
    if matches!(role, Role::Monolith | Role::Coordinator) && config.minor_units_per_point == 0 {
        return Err(BuildError::Setting("minor units per point must be at least 1".into()));
    }
    if role == Role::Coordinator && config.lease_ms <= config.order_deadline_ms {
        return Err(BuildError::Setting(format!(
            "the lease ({} ms) must be longer than the order deadline ({} ms)",
            config.lease_ms, config.order_deadline_ms
        )));
    }
    Ok(())
}

fn transport(role: Role, seams: &Seams) -> Result<Arc<dyn Transport>, BuildError> {
    seams.transport.clone().ok_or(BuildError::Missing {
        role,
        what: "a transport to the other services",
    })
}

fn monolith(config: &NodeConfig, seams: Seams) -> Router {
    let shop = SqliteShop::new(
        seams.db.clone(),
        seams.clock,
        seams.ids,
        ShopConfig {
            minor_units_per_point: config.minor_units_per_point,
            ..ShopConfig::default()
        },
    );
    shop.spawn_maintenance();
    let state = AppState::new(Arc::new(shop), config.token.clone(), seams.metrics);
    lemonade_api::router(state)
}

/// The coordinator's router, and its clients of every service.
fn coordinator(config: &NodeConfig, seams: Seams) -> Result<(Router, Arc<Clients>), BuildError> {
    let clients = Arc::new(
        Clients::new(transport(Role::Coordinator, &seams)?, CallPolicy::default(), seams.seed)
            .stamping(Arc::clone(&seams.db.hlc), Arc::clone(&seams.clock)),
    );
    let settings = CoordinatorConfig {
        lease_ms: config.lease_ms,
        order_deadline_ms: config.order_deadline_ms,
        minor_units_per_point: config.minor_units_per_point,
        ..CoordinatorConfig::default()
    };
    let coordinator = Coordinator::new(
        Node::new(seams.db.clone(), seams.clock, seams.ids),
        Arc::clone(&clients),
        settings,
    );
    coordinator.spawn_sweeper();
    coordinator.spawn_prober();
    coordinator.spawn_maintenance();
    let state = AppState::new(Arc::new(coordinator), config.token.clone(), seams.metrics);
    Ok((lemonade_api::router(state), clients))
}

/// A service's router, and its clients if it calls other services (the orders service's
/// relay calls stock and CRM).
fn service(config: &NodeConfig, seams: Seams) -> Result<(Router, Option<Arc<Clients>>), BuildError> {
    let role = config.role;
    let cluster_token = config.cluster_token.as_deref().unwrap_or_default();
    let protection = config.protection();
    // Everything that can be refused is, before any task starts.
    let clients = match role {
        Role::Orders => Some(Arc::new(
            Clients::calling(
                transport(role, &seams)?,
                CallPolicy::default(),
                seams.seed,
                &lemonade_cluster::relay::CALLS,
            )
            .stamping(Arc::clone(&seams.db.hlc), Arc::clone(&seams.clock)),
        )),
        _ => None,
    };
    let node = Node::new(seams.db.clone(), Arc::clone(&seams.clock), Arc::clone(&seams.ids));
    node.spawn_expiry(Kept::StepResults);
    let router = match role {
        Role::Stock => {
            node.spawn_expiry(Kept::AppliedEvents);
            lemonade_cluster::stock::spawn_lease_expiry(node.clone(), LEASE_EXPIRY_PERIOD);
            lemonade_cluster::stock::router(node, cluster_token, protection)
        }
        Role::Orders => {
            let clients = Arc::clone(clients.as_ref().expect("made above for the orders service"));
            node.spawn_expiry(Kept::DeliveredEvents);
            clients.spawn_prober(&node.db.tasks);
            // The one path of events: woken by the commits that write them (the router's
            // steps), with a safety poll.
            let relay = Relay::default();
            for to in Destination::ALL {
                relay.spawn(node.clone(), Arc::clone(&clients), to);
            }
            lemonade_cluster::orders::router(OrdersService { node, relay }, cluster_token, protection)
        }
        Role::Crm => {
            node.spawn_expiry(Kept::AppliedEvents);
            lemonade_cluster::crm::router(node, cluster_token, protection)
        }
        Role::Monolith | Role::Coordinator => unreachable!("services only"),
    };
    Ok((router, clients))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use lemonade_store::WriterConfig;
    use lemonade_store::system::{SystemClock, UuidV7Ids};
    use tower::ServiceExt as _;

    fn seams(db: Database) -> Seams {
        Seams {
            db,
            clock: Arc::new(SystemClock),
            ids: Arc::new(UuidV7Ids),
            transport: None,
            seed: 7,
            metrics: None,
        }
    }

    fn open(dir: &tempfile::TempDir, role: Role) -> (Database, std::path::PathBuf) {
        let path = dir.path().join(format!("{}.db", role.as_str()));
        (Database::open_role(&path, role, WriterConfig::default()).unwrap(), path)
    }

    async fn status(router: &Router, path: &str, token: Option<&str>) -> StatusCode {
        let mut request = Request::get(path);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = router
            .clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        response.status()
    }

    fn wal(path: &std::path::Path) -> std::path::PathBuf {
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        wal.into()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stock_node_runs_its_tasks_serves_its_calls_and_stops_as_a_whole() {
        let dir = tempfile::tempdir().unwrap();
        let (db, path) = open(&dir, Role::Stock);
        let mut config = NodeConfig::new(Role::Stock);
        config.cluster_token = Some("a-cluster-token-of-the-test".into());
        config.seed_demo = true;
        // No metrics recorder and no tracing subscriber are installed in this test.
        let node = build(config, seams(db)).await.unwrap();
        assert!(node.seeded());
        assert_eq!(
            node.tasks(),
            [
                "the expiry of step results",
                "the expiry of applied events",
                "the release of expired leases"
            ]
        );
        let router = node.router();
        assert_eq!(status(&router, "/health", None).await, StatusCode::OK);
        node.stop().await;
        assert!(!wal(&path).exists(), "a stopped node leaves its database one file");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_monolith_node_serves_the_public_api_with_its_token_and_no_global_recorder() {
        let dir = tempfile::tempdir().unwrap();
        let (db, path) = open(&dir, Role::Monolith);
        let mut config = NodeConfig::new(Role::Monolith);
        config.token = Some("a-public-token-of-the-test".into());
        let node = build(config, seams(db)).await.unwrap();
        assert!(!node.seeded());
        assert_eq!(node.tasks(), ["the expiry of idempotency keys"]);
        let router = node.router();
        assert_eq!(
            status(&router, "/api/v1/ingredients", None).await,
            StatusCode::UNAUTHORIZED
        );
        let token = Some("a-public-token-of-the-test");
        assert_eq!(status(&router, "/api/v1/ingredients", token).await, StatusCode::OK);
        assert_eq!(status(&router, "/api/v1/metrics", token).await, StatusCode::OK);
        node.stop().await;
        assert!(!wal(&path).exists());
    }

    /// The services of a cluster that never answer: each call hangs, holding a share of
    /// `held` until it is dropped.
    struct Hangs {
        held: Arc<()>,
        sent: std::sync::atomic::AtomicUsize,
    }

    #[async_trait::async_trait]
    impl Transport for Hangs {
        async fn send(
            &self,
            _: lemonade_cluster::transport::Request,
        ) -> Result<lemonade_cluster::transport::Reply, lemonade_cluster::transport::TransportError> {
            let _held = Arc::clone(&self.held);
            self.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            std::future::pending().await
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stop_cuts_a_placement_under_way_and_leaves_no_task_of_the_node_running() {
        let dir = tempfile::tempdir().unwrap();
        let (db, _) = open(&dir, Role::Coordinator);
        let hangs = Arc::new(Hangs {
            held: Arc::new(()),
            sent: Default::default(),
        });
        let mut config = NodeConfig::new(Role::Coordinator);
        config.cluster_token = Some("a-cluster-token-of-the-test".into());
        let mut seams = seams(db.clone());
        seams.transport = Some(Arc::clone(&hangs) as Arc<dyn Transport>);
        let node = build(config, seams).await.unwrap();
        let order = Request::post("/api/v1/orders")
            .header("content-type", "application/json")
            .body(Body::from(r#"{"lines":[{"product_id":"p-1","quantity":1}]}"#))
            .unwrap();
        let placing = tokio::spawn(node.router().oneshot(order));
        while hangs.sent.load(std::sync::atomic::Ordering::Relaxed) == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(db.tasks.short_running(), 1, "the placement runs in a task of the node");
        tokio::time::timeout(Duration::from_secs(5), node.stop()).await.unwrap();
        assert_eq!(db.tasks.short_running(), 0);
        assert_eq!(Arc::strong_count(&hangs.held), 1, "no call is left under way");
        let answered = placing.await.unwrap().unwrap();
        assert_eq!(answered.status(), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_coordinator_reports_one_closed_breaker_per_service_an_orders_node_its_relays_and_a_stock_node_none() {
        use BreakerPhase::Closed;
        let dir = tempfile::tempdir().unwrap();
        let hangs: Arc<dyn Transport> = Arc::new(Hangs {
            held: Arc::new(()),
            sent: Default::default(),
        });
        let mut nodes = Vec::new();
        for role in [Role::Coordinator, Role::Orders, Role::Stock] {
            let (db, _) = open(&dir, role);
            let mut config = NodeConfig::new(role);
            config.cluster_token = Some("a-cluster-token-of-the-test".into());
            let mut seams = seams(db);
            seams.transport = Some(Arc::clone(&hangs));
            nodes.push(build(config, seams).await.unwrap());
        }
        let breakers: Vec<_> = nodes.iter().map(Assembled::breakers).collect();
        assert_eq!(
            breakers,
            [
                vec![
                    (Service::Stock, Closed),
                    (Service::Orders, Closed),
                    (Service::Crm, Closed)
                ],
                vec![(Service::Stock, Closed), (Service::Crm, Closed)],
                vec![],
            ]
        );
        for node in nodes {
            node.stop().await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_build_says_what_is_missing_and_closes_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let (db, path) = open(&dir, Role::Orders);
        let mut config = NodeConfig::new(Role::Orders);
        config.cluster_token = Some("a-cluster-token-of-the-test".into());
        let refused = build(config, seams(db.clone())).await.err().unwrap();
        assert!(refused.to_string().contains("needs a transport"), "{refused}");
        assert!(db.tasks.names().is_empty(), "no task was left running");
        assert!(!db.writer.is_running());
        assert!(!wal(&path).exists());

        let (db, _) = open(&dir, Role::Crm);
        let refused = build(NodeConfig::new(Role::Crm), seams(db)).await.err().unwrap();
        assert!(refused.to_string().contains("needs a cluster token"), "{refused}");

        let (db, _) = open(&dir, Role::Stock);
        let refused = build(NodeConfig::new(Role::Monolith), seams(db)).await.err().unwrap();
        assert!(matches!(refused, BuildError::WrongDatabase { .. }), "{refused}");
    }
}
