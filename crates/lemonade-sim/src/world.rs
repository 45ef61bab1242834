//! The simulated cluster: the four nodes built by `lemonade_node::build` as production
//! builds them, on SQLite files in one data folder laid out as `lemonade cluster` lays it
//! out (so the checker and `lemonade check` read it as they read a real one), each with its
//! own clock, ids, disk and transport; crashed and restarted, partitioned and healed, its
//! clocks jumped, by the nemesis.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use lemonade_cluster::client::BreakerPhase;
use lemonade_node::{Assembled, NodeConfig, Role, Seams};
use lemonade_store::Database;
use lemonade_store::audit::database_path;
use lemonade_store::db::Closed;
use lemonade_store::writer::{DiskDelay, DiskOp, Execution, WriterConfig};
use parking_lot::Mutex;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::clock::{SimClock, SimIds};
use crate::faults::FaultKind;
use crate::net::{Net, NodeId};
use crate::trace::Trace;

/// The token the simulated services require of each other.
pub const CLUSTER_TOKEN: &str = "simulated-cluster-token";

/// The most a slow disk adds to one commit or one read.
pub const SLOW_DISK_MS_MAX: u64 = 200;

/// A node's disk: how slow its commits and reads are now (a probability that one is slow,
/// and the most it then takes), drawn from the node's own seeded stream.
struct Disk {
    rng: SmallRng,
    slow_rate: f64,
}

/// The cluster of one run.
pub struct World {
    data: PathBuf,
    net: Net,
    trace: Trace,
    seed: u64,
    clocks: [Arc<SimClock>; 4],
    disks: [Arc<Mutex<Disk>>; 4],
    nodes: [Option<Assembled>; 4],
    /// How many times each node was started, for its seeds.
    starts: [u64; 4],
    /// How many read connections each node's database opens: 1 to
    /// [`READERS_MAX`](lemonade_store::db::READERS_MAX), drawn per seed, so that reads queue
    /// for their connections and hang up while they hold one.
    readers: [usize; 4],
    /// Reads each node's crashed runs refused for a permit without a connection
    /// (`Readers::strays`), kept past the crash as a process's log would be.
    strays: [u64; 4],
}

/// How a node ended the run: its read pool's strays over all its runs, and how its last,
/// clean stop went.
pub struct NodeEnd {
    pub node: NodeId,
    pub read_strays: u64,
    pub closed: Closed,
}

fn role(node: NodeId) -> Role {
    match node {
        NodeId::Coordinator => Role::Coordinator,
        NodeId::Stock => Role::Stock,
        NodeId::Orders => Role::Orders,
        NodeId::Crm => Role::Crm,
    }
}

impl World {
    /// The cluster of seed `seed` in `data` (an empty folder), no node started yet.
    pub fn new(data: PathBuf, seed: u64, net: Net, trace: Trace) -> World {
        let disk = |i: u64| {
            Arc::new(Mutex::new(Disk {
                rng: SmallRng::seed_from_u64(seed ^ (0xD15C << 8) ^ i),
                slow_rate: 0.0,
            }))
        };
        let mut pools = SmallRng::seed_from_u64(seed ^ 0x9EAD);
        let readers = std::array::from_fn(|_| pools.random_range(1..=lemonade_store::db::READERS_MAX));
        World {
            data,
            net,
            trace,
            seed,
            readers,
            clocks: std::array::from_fn(|_| Arc::new(SimClock::new())),
            disks: [disk(0), disk(1), disk(2), disk(3)],
            nodes: [None, None, None, None],
            starts: [0; 4],
            strays: [0; 4],
        }
    }

    pub fn data(&self) -> &Path {
        &self.data
    }

    pub fn clock(&self, node: NodeId) -> &Arc<SimClock> {
        &self.clocks[node as usize]
    }

    pub fn is_up(&self, node: NodeId) -> bool {
        self.nodes[node as usize].is_some()
    }

    /// Sets the chance that one of `node`'s commits is slow (0 for none).
    pub fn set_slow_disk(&self, node: NodeId, rate: f64) {
        self.disks[node as usize].lock().slow_rate = rate;
    }

    /// Starts `node` on its database as production does (`lemonade_node::build`), the demo
    /// shop created by stock on its first start. Inline execution: the writer is a task of
    /// this runtime and reads run on their callers.
    pub async fn start(&mut self, node: NodeId) {
        assert!(!self.is_up(node), "{} is already up", node.as_str());
        let i = node as usize;
        self.starts[i] += 1;
        let (disk_state, trace) = (Arc::clone(&self.disks[i]), self.trace.clone());
        let disk: DiskDelay = Arc::new(move |op| {
            let mut disk = disk_state.lock();
            let Disk { rng, slow_rate } = &mut *disk;
            let slow = rng.random::<f64>() < *slow_rate;
            let ms = rng.random_range(1..=SLOW_DISK_MS_MAX);
            if !slow {
                return Duration::ZERO;
            }
            let what = match op {
                DiskOp::Commit => "commit",
                DiskOp::Read => "read",
            };
            trace.fault(
                node.as_str(),
                FaultKind::SlowDisk,
                format_args!("a {what} takes {ms} ms"),
            );
            Duration::from_millis(ms)
        });
        let config = WriterConfig {
            execution: Execution::Inline { disk: Some(disk) },
            readers: self.readers[i],
            ..WriterConfig::default()
        };
        let db = Database::open_role(&database_path(&self.data, role(node)), role(node), config)
            .unwrap_or_else(|e| panic!("the {} database opens: {e}", node.as_str()));
        let mut settings = NodeConfig::new(role(node));
        settings.cluster_token = Some(CLUSTER_TOKEN.into());
        settings.seed_demo = node == NodeId::Stock;
        // A rate limit the workload cannot reach: 429s come from the fault, not the load.
        settings.rate_per_s = 100_000;
        let clock = Arc::clone(&self.clocks[i]);
        let node_seed = self
            .seed
            .wrapping_mul(31)
            .wrapping_add((i as u64) << 32 | self.starts[i]);
        let seams = Seams {
            db,
            clock: Arc::clone(&clock) as _,
            ids: Arc::new(SimIds::new(clock, node_seed)),
            transport: Some(self.net.transport(node)),
            seed: node_seed,
            metrics: None,
        };
        let assembled = lemonade_node::build(settings, seams)
            .await
            .unwrap_or_else(|e| panic!("the {} node builds: {e}", node.as_str()));
        self.net.up(node, assembled.router());
        self.nodes[i] = Some(assembled);
        self.trace.event(
            node.as_str(),
            format_args!("started ({} read connections)", self.readers[i]),
        );
    }

    /// Crashes `node`: the network drops it (every request it handles is cut where it
    /// stands), its tasks are cut at their next await, and its writer stops as in a crash
    /// (what it committed stays; answers not yet given are lost).
    pub async fn crash(&mut self, node: NodeId) {
        let Some(assembled) = self.nodes[node as usize].take() else {
            return;
        };
        self.net.down(node);
        assembled.database().crash().await;
        self.strays[node as usize] += assembled.database().readers.strays();
        drop(assembled);
        self.trace
            .fault("nemesis", FaultKind::Crash, format_args!("{} crashed", node.as_str()));
    }

    /// The breakers of every node up, as (node, target, phase).
    pub fn breakers(&self) -> Vec<(NodeId, &'static str, BreakerPhase)> {
        NodeId::ALL
            .into_iter()
            .filter_map(|node| self.nodes[node as usize].as_ref().map(|a| (node, a)))
            .flat_map(|(node, a)| {
                a.breakers()
                    .into_iter()
                    .map(move |(service, phase)| (node, service.as_str(), phase))
            })
            .collect()
    }

    /// Stops every node cleanly (as `lemonade cluster` does at Ctrl-C), so that each
    /// database is one file the checker can read; how each ended.
    pub async fn stop(&mut self) -> Vec<NodeEnd> {
        let mut ends = Vec::new();
        for node in NodeId::ALL {
            if let Some(assembled) = self.nodes[node as usize].take() {
                self.net.down(node);
                let read_strays = self.strays[node as usize] + assembled.database().readers.strays();
                let closed = assembled.stop().await;
                ends.push(NodeEnd {
                    node,
                    read_strays,
                    closed,
                });
            }
        }
        ends
    }
}
