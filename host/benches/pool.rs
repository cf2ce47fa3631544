//! Pool shape: GET throughput of 50 concurrent tasks against a local
//! redis-server, through the gateway's store (shared multiplexed lanes) and
//! through a bb8 pool where each request checks a connection out (with and
//! without bb8's default PING on checkout). `make bench` runs it.

use sluice_test_support as support;

mod common;
use common::{Plain, store_get};
use sluice::config::{BreakerConfig, RedisConfig};
use sluice::store::Store;
use sluice::store::scripts::Scripts;
use sluice::store::tracking::Tracking;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const TASKS: usize = 50;
const RUN: Duration = Duration::from_secs(3);

async fn drive<F, Fut>(name: &str, op: F)
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (op, stop, count) = (op.clone(), stop.clone(), count.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    op().await;
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let started = Instant::now();
    tokio::time::sleep(RUN).await;
    stop.store(true, Ordering::Relaxed);
    let n = count.load(Ordering::Relaxed);
    let secs = started.elapsed().as_secs_f64();
    for t in tasks {
        let _ = t.await;
    }
    println!("{name:<48} {:>10.0} GET/s", n as f64 / secs);
}

#[tokio::main]
async fn main() {
    let redis = support::Redis::start();
    let mut c = redis.conn();
    let _: () = redis::cmd("SET")
        .arg("bench:k")
        .arg("v")
        .query(&mut c)
        .expect("SET");

    let config = RedisConfig {
        url: redis.url().into(),
        pool_size: 16,
        ..RedisConfig::default()
    };
    let scripts = Arc::new(Scripts::load(None).expect("scripts"));
    let store =
        Store::new(&config, BreakerConfig::default(), scripts, Tracking::none()).expect("store");
    drive("store: 2 shared multiplexed lanes (Sluice)", move || {
        let store = store.clone();
        async move {
            store_get(&store, "bench:k").await;
        }
    })
    .await;

    for (name, ping) in [
        ("bb8 pool of 16, checkout per request", false),
        ("bb8 pool of 16, checkout per request + PING", true),
    ] {
        let client = redis::Client::open(redis.url()).expect("client");
        let pool = bb8::Pool::builder()
            .max_size(16)
            .test_on_check_out(ping)
            .build(Plain(client))
            .await
            .expect("pool");
        drive(name, move || {
            let pool = pool.clone();
            async move {
                let mut conn = pool.get().await.expect("checkout");
                let _: Option<String> = redis::cmd("GET")
                    .arg("bench:k")
                    .query_async(&mut *conn)
                    .await
                    .expect("GET");
            }
        })
        .await;
    }
}
