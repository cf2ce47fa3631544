//! The plugin decision: one `plan` call on a warm instance through wasmtime,
//! for each shipped policy, beside the same policy compiled natively (the
//! plugin crates are rlibs too); and the decision per key inside a 100-key
//! batch, one `plan-batch` call. Median of batches; `make bench` runs it.
//! Then what a policy costs by the language it is written in: the
//! component's size, its compile and its load from `plugins.cache_dir`, a
//! new instance (made, configured and asked once), the memory of a warm
//! instance and the median decision.

use sluice::config::Config;
use sluice::generation::{contract_domain, sandbox};
use sluice::plugin::bindings::{AccessStats, Domain, Operation, Request};
use sluice::plugin::{BUDGET, Plugin, Runtime};
use sluice_sdk::Policy;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

const BATCH: u32 = 20_000;
const BATCHES: usize = 21;
/// Keys of the batch row: an mget of the benchmark's size.
const KEYS: u32 = 100;

/// Median ns of one `f` over [`BATCHES`] runs of `n` calls each.
fn median_of(n: u32, mut f: impl FnMut()) -> f64 {
    for _ in 0..n {
        f();
    }
    let mut per_call: Vec<f64> = (0..BATCHES)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..n {
                f();
            }
            t.elapsed().as_nanos() as f64 / f64::from(n)
        })
        .collect();
    per_call.sort_by(f64::total_cmp);
    per_call[BATCHES / 2]
}

fn median_ns(f: impl FnMut()) -> f64 {
    median_of(BATCH, f)
}

fn request(operation: Operation) -> Request {
    let value = rmp_serde::to_vec_named(&serde_json::json!(
        {"type": "tick", "asset": "BTC", "fiat": "USD", "price": 64000.5, "ts": 1_732_550_000_000u64}
    ))
    .ok();
    Request {
        key: if operation == Operation::Publish {
            String::new()
        } else {
            "btc:usd".into()
        },
        operation,
        value: (operation != Operation::Get).then_some(value).flatten(),
        fields: Vec::new(),
        ttl_ms: None,
        now_ms: 1_732_550_000_000,
        entropy: 42,
        stats: AccessStats {
            hits: 3,
            misses: 1,
            writes: 1,
            last_read_ms: 0,
            read_rate: 12.0,
        },
    }
}

/// The same request as the SDK's type, for the native build.
fn sdk_request(r: &Request) -> sluice_sdk::Request {
    let op = match r.operation {
        Operation::Get => sluice_sdk::Operation::Get,
        Operation::Put => sluice_sdk::Operation::Put,
        Operation::Delete => sluice_sdk::Operation::Delete,
        Operation::Publish => sluice_sdk::Operation::Publish,
    };
    let mut s = sluice_sdk::Request::new(r.key.clone(), op).with_entropy(r.entropy);
    s.value = r.value.clone().map(sluice_sdk::Value::from_msgpack);
    s.with_read_rate(r.stats.read_rate)
}

/// A shipped policy, natively, configured as the gateway configures its component.
fn native<P: Policy>(d: &Domain) -> P {
    let domain = sluice_sdk::Domain {
        name: d.name.clone(),
        ttl_ms: d.ttl_ms,
        min_ttl_ms: d.min_ttl_ms,
        max_ttl_ms: d.max_ttl_ms,
    };
    P::from_settings(domain, sluice_sdk::Value::from_msgpack(d.settings.clone()))
        .expect("the example config's settings")
}

/// Median ns of one native `plan` call.
fn native_ns<P: Policy>(d: &Domain, req: &sluice_sdk::Request) -> f64 {
    let policy = native::<P>(d);
    median_ns(|| {
        black_box(policy.plan(black_box(req)).ok());
    })
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let config = Config::load(&root.join("config/sluice.toml")).expect("config/sluice.toml");
    let runtime = Runtime::new().expect("runtime");
    println!(
        "{:<16} {:<8} {:>12} {:>12}",
        "policy", "request", "wasm ns", "native ns"
    );
    for (domain, ops) in [
        ("cache", &[Operation::Get, Operation::Put][..]),
        ("price", &[Operation::Get, Operation::Put]),
        ("market_depth", &[Operation::Get, Operation::Put]),
        ("arbitrage", &[Operation::Publish]),
    ] {
        let dc = config
            .domains
            .iter()
            .find(|(k, _)| k.get_ref() == domain)
            .map(|(_, d)| d.clone())
            .expect("domain in the example config");
        let compiled = runtime
            .compile(&dc.plugin, &config.plugin_path(&dc.plugin), None)
            .expect("compile");
        let contract = contract_domain(domain, &dc);
        let plugin = Plugin::new(compiled, sandbox(&dc), contract.clone()).expect("instantiate");
        for &op in ops {
            let req = request(op);
            let wasm = median_ns(|| {
                black_box(plugin.plan(black_box(&req)).ok());
            });
            let sdk = sdk_request(&req);
            let native = match dc.plugin.as_str() {
                "fixed-ttl" => native_ns::<fixed_ttl::FixedTtl>(&contract, &sdk),
                "price-hash" => native_ns::<price_hash::PriceHash>(&contract, &sdk),
                "adaptive-ttl" => native_ns::<adaptive_ttl::AdaptiveTtl>(&contract, &sdk),
                _ => native_ns::<stream_router::StreamRouter>(&contract, &sdk),
            };
            let op = format!("{op:?}");
            println!(
                "{:<16} {:<8} {:>12.0} {:>12.0}",
                dc.plugin,
                op.rsplit("::").next().unwrap_or(&op),
                wasm,
                native
            );
        }
        // A 100-key mget's decisions in one call: the cost per key.
        if domain == "cache" {
            let reqs: Vec<Request> = (0..KEYS)
                .map(|i| Request {
                    key: format!("k{i}"),
                    ..request(Operation::Get)
                })
                .collect();
            let batch = median_of(BATCH / KEYS, || {
                black_box(plugin.planner().plan_batch(black_box(&reqs)));
            });
            println!(
                "{:<16} {:<8} {:>12.0} {:>12}",
                dc.plugin,
                "Get/key",
                batch / f64::from(KEYS),
                "(batch)"
            );
        }
    }
    languages(&config, &runtime);
}

/// Instances made for the memory and instantiation rows.
const INSTANCES: usize = 16;

/// The process's resident memory, bytes.
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = (statm.split_whitespace().nth(1))
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The per-language rows: each example policy, by the language of its SDK.
fn languages(config: &Config, runtime: &Runtime) {
    println!();
    println!(
        "{:<14} {:<10} {:>8} {:>10} {:>9} {:>12} {:>11} {:>11} {:>9}",
        "policy",
        "language",
        "size MB",
        "compile ms",
        "cache ms",
        "instance ms",
        "memory MiB",
        "RSS MiB",
        "plan ns"
    );
    let cache = tempfile::tempdir().expect("temp dir");
    for (plugin, language, domain) in [
        ("fixed-ttl", "Rust", "cache"),
        ("fixed-ttl-ts", "TypeScript", "cache_ts"),
        ("price-hash", "Rust", "price"),
        ("price-hash-py", "Python", "price_py"),
    ] {
        let path = config.plugin_path(plugin);
        let Ok(meta) = std::fs::metadata(&path) else {
            println!(
                "{plugin:<14} {language:<10} (no {}: make plugins)",
                path.display()
            );
            continue;
        };
        let dc = (config.domains.iter())
            .find(|(k, _)| k.get_ref() == domain)
            .map(|(_, d)| d.clone())
            .expect("domain in the example config");
        let t = Instant::now();
        let compiled = runtime
            .compile(plugin, &path, Some(cache.path()))
            .expect("compile");
        let compile = t.elapsed();
        drop(compiled);
        let t = Instant::now();
        let compiled = runtime
            .compile(plugin, &path, Some(cache.path()))
            .expect("load");
        let load = t.elapsed();
        let contract = contract_domain(domain, &dc);
        let plugin_ = Plugin::new(compiled, sandbox(&dc), contract).expect("instantiate");
        let req = request(if domain == "price_py" {
            Operation::Get
        } else {
            Operation::Put
        });
        // Past the prewarmed ones, each planner held makes a new instance.
        let mut held = Vec::new();
        for _ in 0..4 {
            let mut p = plugin_.planner();
            black_box(p.plan(&req).ok());
            held.push(p);
        }
        let (rss0, mem0) = (rss(), BUDGET.used());
        let t = Instant::now();
        for _ in 0..INSTANCES {
            let mut p = plugin_.planner();
            black_box(p.plan(&req).ok());
            held.push(p);
        }
        let instance = t.elapsed() / INSTANCES as u32;
        let per = |bytes: usize| bytes as f64 / INSTANCES as f64 / f64::from(1 << 20);
        let (rss1, mem1) = (rss(), BUDGET.used());
        drop(held);
        let plan = median_ns(|| {
            black_box(plugin_.plan(black_box(&req)).ok());
        });
        println!(
            "{:<14} {:<10} {:>8.1} {:>10.0} {:>9.1} {:>12.2} {:>11.1} {:>11.1} {:>9.0}",
            plugin,
            language,
            meta.len() as f64 / 1e6,
            ms(compile),
            ms(load),
            ms(instance),
            per(mem1.saturating_sub(mem0)),
            per(rss1.saturating_sub(rss0)),
            plan
        );
    }
}
