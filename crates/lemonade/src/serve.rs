//! `lemonade serve`: the monolith on one SQLite database.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use lemonade_api::AppState;
use lemonade_store::shop::MINOR_UNITS_PER_POINT_DEFAULT;
use lemonade_store::system::{SystemClock, UuidV7Ids};
use lemonade_store::writer::BATCH_MAX_DEFAULT;
use lemonade_store::{Database, ShopConfig, SqliteShop, WriterConfig};

#[derive(Clone, Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on. Anything but loopback requires an access token.
    #[arg(long, env = "LEMONADE_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Folder holding the shop's database (created if missing).
    #[arg(long, env = "LEMONADE_DATA", default_value = "data")]
    pub data: PathBuf,
    /// Do not create the demo shop on an empty database.
    #[arg(long, env = "LEMONADE_EMPTY")]
    pub empty: bool,
    /// Access token clients must send as `Authorization: Bearer <token>`. Generated and
    /// printed once when listening beyond loopback without one.
    #[arg(long, env = "LEMONADE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Most orders committed together (group commit). 1 commits each order on its own. A
    /// cap below the number of clients lets one batch sync while the next is written.
    #[arg(long, env = "LEMONADE_BATCH_MAX", default_value_t = BATCH_MAX_DEFAULT as u32, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub batch_max: u32,
    /// Loyalty: one point per this many minor currency units spent.
    #[arg(long, env = "LEMONADE_MINOR_UNITS_PER_POINT", default_value_t = MINOR_UNITS_PER_POINT_DEFAULT, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub minor_units_per_point: u64,
}

impl ServeArgs {
    /// Settings for a test server: loopback, an OS-chosen port, the given folder.
    pub fn for_tests(data: PathBuf) -> Self {
        ServeArgs {
            addr: "127.0.0.1:0".parse().expect("valid address"),
            data,
            empty: false,
            token: None,
            batch_max: BATCH_MAX_DEFAULT as u32,
            minor_units_per_point: MINOR_UNITS_PER_POINT_DEFAULT,
        }
    }

    pub fn database_path(&self) -> PathBuf {
        self.data.join("lemonade.db")
    }
}

/// A started shop: where it listens and the token it wants (if any).
pub struct Running {
    pub addr: SocketAddr,
    pub token: Option<String>,
    pub server: tokio::task::JoinHandle<std::io::Result<()>>,
}

fn generate_token() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..32).map(|_| format!("{:02x}", rng.random::<u8>())).collect()
}

/// Opens the database, seeds the demo shop if asked, binds and starts serving in the
/// background. Returns once the socket is listening.
pub async fn start(
    args: ServeArgs,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Running> {
    let path = args.database_path();
    let db = Database::open(
        &path,
        WriterConfig {
            batch_max: args.batch_max as usize,
            ..WriterConfig::default()
        },
    )
    .with_context(|| format!("opening the database {}", path.display()))?;
    let clock = Arc::new(SystemClock);
    let ids = Arc::new(UuidV7Ids);
    if !args.empty && lemonade_store::seed::seed_demo_if_empty(&db, clock.clone(), ids.clone()).await? {
        tracing::info!("created the demo shop");
    }
    let shop = SqliteShop::new(
        db,
        clock,
        ids,
        ShopConfig {
            minor_units_per_point: args.minor_units_per_point,
            ..ShopConfig::default()
        },
    );
    shop.spawn_maintenance();

    let token = match (&args.token, args.addr.ip().is_loopback()) {
        (Some(t), _) if t.len() < 16 => anyhow::bail!("the access token must be at least 16 characters"),
        (Some(t), _) => Some(t.clone()),
        (None, true) => None,
        (None, false) => {
            let t = generate_token();
            println!("Listening beyond loopback: clients must send this access token (shown once):\n  {t}");
            Some(t)
        }
    };
    let app = lemonade_api::router(AppState::new(Arc::new(shop), token.clone()));
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("listening on {}", args.addr))?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, app).with_graceful_shutdown(shutdown).await });
    Ok(Running { addr, token, server })
}
