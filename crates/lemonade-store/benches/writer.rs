//! What one order costs the single writer, without HTTP: `place_order` through the real
//! `SqliteShop` and writer, 64 orders in flight at a time (one group commit each round) and
//! one at a time (a commit, and an fsync, each).
//!
//! cargo bench -p lemonade-store --bench writer

use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lemonade_domain::order::{OrderDraft, RawOrderLine};
use lemonade_domain::ports::{IdempotencyKey, PageRequest, PlaceOrder, Shop};
use lemonade_domain::stock::StockAdjustment;
use lemonade_domain::values::Quantity;
use lemonade_store::system::{SystemClock, UuidV7Ids};
use lemonade_store::{Database, ShopConfig, SqliteShop, WriterConfig};

struct Fixture {
    shop: SqliteShop,
    product: String,
    _dir: tempfile::TempDir,
}

fn fixture(rt: &tokio::runtime::Runtime) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(&dir.path().join("bench.db"), WriterConfig::default()).unwrap();
    let clock = Arc::new(SystemClock);
    let ids = Arc::new(UuidV7Ids);
    rt.block_on(lemonade_store::seed::seed_demo_if_empty(
        &db,
        clock.clone(),
        ids.clone(),
    ))
    .unwrap();
    let shop = SqliteShop::new(db, clock, ids, ShopConfig::default());
    let product = rt.block_on(async {
        let p = shop
            .list_products(PageRequest::first(10))
            .await
            .unwrap()
            .items
            .remove(0);
        for item in &p.recipe {
            let restock = StockAdjustment::Restock {
                quantity: Quantity::new(900_000_000).unwrap(),
                note: None,
            };
            shop.adjust_stock(item.ingredient_id.clone(), restock).await.unwrap();
        }
        p.id.to_string()
    });
    Fixture {
        shop,
        product,
        _dir: dir,
    }
}

fn order(product: &str, n: u64) -> PlaceOrder {
    let draft = OrderDraft::from_lines(None, &[RawOrderLine::new(product, 1)]).unwrap();
    PlaceOrder {
        draft,
        idempotency: Some(IdempotencyKey::parse(&format!("bench-{n}-{}", uuid::Uuid::now_v7()), "f".into()).unwrap()),
    }
}

fn bench_writer(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let f = fixture(&rt);
    let mut group = c.benchmark_group("place_order");
    group.sample_size(20);
    group.throughput(Throughput::Elements(64));
    group.bench_function("64_in_flight_group_commit", |b| {
        b.iter(|| {
            rt.block_on(async {
                let tasks: Vec<_> = (0..64)
                    .map(|n| {
                        let shop = f.shop.clone();
                        let request = order(&f.product, n);
                        tokio::spawn(async move { shop.place_order(request).await.unwrap() })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
            })
        })
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("one_at_a_time", |b| {
        b.iter(|| rt.block_on(f.shop.place_order(order(&f.product, 0))).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench_writer);
criterion_main!(benches);
