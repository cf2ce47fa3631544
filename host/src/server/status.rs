//! `GET /admin/`: the status page, one server-rendered HTML page for a
//! person with a browser (no JavaScript): the domains and their plugins,
//! the circuit breaker and its last transitions, the near cache, the last
//! reloads, Redis's memory and clients, and the request rate of the last
//! ten minutes. It shows what `/admin/plugins` and `/metrics` already hold,
//! read from the same places; every string from the config, a plugin or
//! Redis is escaped.

use super::html::{self, escape};
use super::respond::Body;
use crate::generation::{Gateway, PluginRow};
use crate::reload::{Live, ReloadStatus};
use crate::store::breaker::{State, Status};
use crate::telemetry::METRICS;
use hyper::{Response, StatusCode};
use prometheus::core::Collector;
use std::collections::VecDeque;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How often the request rate is sampled, and how many samples are kept:
/// ten minutes, one collection of the request histogram every ten seconds
/// (nothing is added to the request path).
const SAMPLE_EVERY: Duration = Duration::from_secs(10);
const SAMPLES: usize = 60;

/// Requests per second over each sampling interval, oldest first.
static RATES: Mutex<VecDeque<f64>> = Mutex::new(VecDeque::new());

/// The address the server listens on, once bound (the config may say port 0).
static LISTENING: std::sync::OnceLock<std::net::SocketAddr> = std::sync::OnceLock::new();

/// Start the status page's background work, once the listener is bound:
/// note its address, and sample the request rate every [`SAMPLE_EVERY`].
pub fn start(listening: Option<std::net::SocketAddr>) {
    if let Some(addr) = listening {
        let _ = LISTENING.set(addr);
    }
    spawn_sampler();
}

/// Requests served so far, all routes: the sum of the request histogram's counts.
fn requests_so_far() -> u64 {
    METRICS
        .requests
        .collect()
        .iter()
        .flat_map(|family| family.get_metric())
        .map(|m| m.get_histogram().get_sample_count())
        .sum()
}

/// Sample the request rate every [`SAMPLE_EVERY`], forever.
fn spawn_sampler() {
    tokio::spawn(async {
        let mut ticker = tokio::time::interval(SAMPLE_EVERY);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        let mut last = (requests_so_far(), tokio::time::Instant::now());
        loop {
            ticker.tick().await;
            let now = (requests_so_far(), tokio::time::Instant::now());
            let secs = now.1.duration_since(last.1).as_secs_f64().max(0.001);
            let rate = now.0.saturating_sub(last.0) as f64 / secs;
            let mut rates = RATES.lock().unwrap_or_else(|p| p.into_inner());
            if rates.len() == SAMPLES {
                rates.pop_front();
            }
            rates.push_back(rate);
            drop(rates);
            last = now;
        }
    });
}

/// The page.
pub fn page(live: &Live, gateway: &Gateway) -> Response<Body> {
    let now = SystemTime::now();
    let config = gateway.config();
    let mut out = String::with_capacity(16 << 10);
    let _ = write!(
        out,
        "<h1>Sluice</h1><p class=\"sub\">version {} · listening on {} · Redis {} · \
         generated {}</p>",
        env!("CARGO_PKG_VERSION"),
        escape(&LISTENING.get().unwrap_or(&config.server.listen).to_string()),
        escape(&config.redis.url.to_string()),
        escape(&httpdate::fmt_http_date(now)),
    );
    domains(&mut out, &gateway.plugin_rows(), now);
    out.push_str("<div class=\"grid\">");
    breaker(&mut out, gateway.breaker(), now);
    near_cache(&mut out, gateway);
    redis(&mut out, gateway);
    out.push_str("</div>");
    reloads(&mut out, &live.reloads(), now);
    requests(&mut out);
    out.push_str(
        "<form method=\"post\" action=\"/admin/logout\" style=\"margin-top:1.5rem;box-shadow:none;background:none;padding:0\">\
         <button type=\"submit\">Sign out</button></form>",
    );
    html::page(StatusCode::OK, "Sluice status", &out)
}

fn domains(out: &mut String, rows: &[PluginRow], now: SystemTime) {
    out.push_str(
        "<h2>Domains</h2><table><tr><th>domain</th><th>plugin</th><th>sha256</th>\
         <th>loaded</th><th>calls</th><th>traps</th><th>timeouts</th><th>last error</th></tr>",
    );
    for r in rows {
        let short = r.sha256.get(..12).unwrap_or(&r.sha256);
        let error = r.last_error.as_deref().map_or_else(
            || "<span class=\"ok\">none</span>".to_owned(),
            |e| format!("<span class=\"bad\">{}</span>", escape(e)),
        );
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td><code title=\"{}\">{}…</code></td><td>{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{error}</td></tr>",
            escape(&r.domain),
            escape(&r.plugin),
            escape(&r.sha256),
            escape(short),
            ago(UNIX_EPOCH + Duration::from_secs(r.loaded_at), now),
            r.calls,
            r.traps,
            r.timeouts,
        );
    }
    if rows.is_empty() {
        out.push_str("<tr><td colspan=\"8\">no domains are configured</td></tr>");
    }
    out.push_str("</table>");
}

fn breaker(out: &mut String, status: Status, now: SystemTime) {
    let class = |state: State| match state {
        State::Closed => "ok",
        State::HalfOpen => "warn",
        State::Open => "bad",
    };
    let _ = write!(
        out,
        "<section><h2>Circuit breaker</h2><p>state: <strong class=\"{}\">{}</strong></p>",
        class(status.state),
        status.state.name()
    );
    // On a cluster, a breaker per primary.
    if !status.nodes.is_empty() {
        out.push_str("<table><tr><th>primary</th><th>state</th></tr>");
        for (addr, state) in &status.nodes {
            let _ = write!(
                out,
                "<tr><td>{}</td><td class=\"{}\">{}</td></tr>",
                escape(addr),
                class(*state),
                state.name()
            );
        }
        out.push_str("</table>");
    }
    out.push_str("<table><tr><th>when</th><th>transition</th></tr>");
    let transitions = status.transitions;
    for t in &transitions {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{} → {}</td></tr>",
            ago(t.at, now),
            t.from.name(),
            t.to.name()
        );
    }
    if transitions.is_empty() {
        out.push_str("<tr><td colspan=\"2\">none since start</td></tr>");
    }
    out.push_str("</table></section>");
}

fn near_cache(out: &mut String, gateway: &Gateway) {
    let (entries, bytes) = gateway.near_cache_usage();
    let max = gateway.config().near_cache.max_bytes;
    let l1 = |result: &str| METRICS.l1.with_label_values(&[result]).get();
    let (hits, stale) = (l1("hit"), l1("stale"));
    // As the dashboard's panel: hits over hits plus plans the policies made
    // (there is no count of lookups that went on to Redis).
    let plans: f64 = METRICS
        .plugin_calls
        .collect()
        .iter()
        .flat_map(|family| family.get_metric())
        .filter(|m| {
            m.get_label()
                .iter()
                .any(|l| l.name() == "result" && l.value() == "ok")
        })
        .map(|m| m.get_counter().get_value())
        .sum();
    // A hot single-key read is answered before its policy runs.
    let answered = hits as f64 + plans;
    let ratio = if answered < 1.0 {
        "–".to_owned()
    } else {
        format!("{:.1} %", 100.0 * hits as f64 / answered)
    };
    let _ = write!(
        out,
        "<section><h2>Near cache</h2><table>\
         <tr><th>copies</th><td class=\"n\">{entries}</td></tr>\
         <tr><th>memory</th><td class=\"n\">{} of {}</td></tr>\
         <tr><th>hits</th><td class=\"n\">{hits}</td></tr>\
         <tr><th>stale answers</th><td class=\"n\">{stale}</td></tr>\
         <tr><th>hit ratio</th><td class=\"n\" title=\"near-cache hits over hits plus plans the policies made\">{ratio}</td></tr>\
         </table></section>",
        size(bytes),
        size(max),
    );
}

fn redis(out: &mut String, gateway: &Gateway) {
    let (open, idle) = gateway.pool_state();
    let used = METRICS.redis_memory_used.get();
    let _ = write!(
        out,
        "<section><h2>Redis</h2><table>\
         <tr><th>memory used</th><td class=\"n\">{}</td></tr>\
         <tr><th>memory peak</th><td class=\"n\">{}</td></tr>\
         <tr><th>fragmentation</th><td class=\"n\">{:.2}</td></tr>\
         <tr><th>connected clients</th><td class=\"n\">{}</td></tr>\
         <tr><th>gateway connections</th><td class=\"n\">{} in use, {} idle, budget {}</td></tr>\
         </table>{}</section>",
        size(used.max(0) as u64),
        size(METRICS.redis_memory_peak.get().max(0) as u64),
        METRICS.redis_fragmentation.get(),
        METRICS.redis_connected_clients.get(),
        open.saturating_sub(idle),
        idle,
        METRICS.pool_size.get(),
        if used == 0 {
            "<p class=\"sub\">(no INFO read yet: one comes every metrics.info_interval_ms)</p>"
        } else {
            ""
        },
    );
}

fn reloads(out: &mut String, reloads: &[ReloadStatus], now: SystemTime) {
    out.push_str(
        "<h2>Reloads</h2><table><tr><th>when</th><th>trigger</th><th>outcome</th>\
         <th>needs restart</th><th>error</th></tr>",
    );
    for r in reloads {
        let at = UNIX_EPOCH + Duration::from_secs(r.at.unwrap_or(0));
        let outcome = match (r.applied, r.unchanged) {
            (true, true) => "<span class=\"ok\">unchanged</span>",
            (true, false) => "<span class=\"ok\">applied</span>",
            (false, _) => "<span class=\"bad\">refused</span>",
        };
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{outcome}</td><td>{}</td><td>{}</td></tr>",
            ago(at, now),
            escape(&r.trigger),
            escape(&r.needs_restart.join("; ")),
            escape(r.error.as_deref().unwrap_or("")),
        );
    }
    if reloads.is_empty() {
        out.push_str("<tr><td colspan=\"5\">none since start</td></tr>");
    }
    out.push_str("</table>");
}

/// The request rate as an SVG line chart, newest sample on the right.
fn requests(out: &mut String) {
    let rates: Vec<f64> = RATES
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .copied()
        .collect();
    out.push_str("<h2>Requests per second, last 10 minutes</h2>");
    if rates.len() < 2 {
        out.push_str("<p class=\"sub\">collecting: one sample every 10 s</p>");
        return;
    }
    out.push_str(&chart(&rates));
}

fn chart(rates: &[f64]) -> String {
    let (w, h, pad) = (600.0, 140.0, 24.0);
    let top = rates.iter().copied().fold(1.0_f64, f64::max);
    let step = (w - 2.0 * pad) / (SAMPLES - 1) as f64;
    // Right-aligned: the newest sample at the right edge.
    let first = SAMPLES - rates.len();
    let points: Vec<(f64, f64)> = rates
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let x = pad + (first + i) as f64 * step;
            let y = h - pad - (r / top) * (h - 2.0 * pad);
            (x, y)
        })
        .collect();
    let line: Vec<String> = points
        .iter()
        .map(|(x, y)| format!("{x:.1},{y:.1}"))
        .collect();
    let dots: String = points
        .iter()
        .map(|(x, y)| format!("<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"2.5\" fill=\"#2f6fde\"/>"))
        .collect();
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"request rate\">\
         <line x1=\"{pad}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#c9ced8\"/>\
         <line x1=\"{pad}\" y1=\"{pad}\" x2=\"{r}\" y2=\"{pad}\" stroke=\"#eef0f4\"/>\
         <polyline fill=\"none\" stroke=\"#2f6fde\" stroke-width=\"2\" points=\"{}\"/>{dots}\
         <text x=\"{pad}\" y=\"{t}\" font-size=\"11\" fill=\"#5b6475\">{top:.1}/s</text>\
         <text x=\"{pad}\" y=\"{l}\" font-size=\"11\" fill=\"#5b6475\">−10 min</text>\
         <text x=\"{r}\" y=\"{l}\" font-size=\"11\" fill=\"#5b6475\" text-anchor=\"end\">now: {:.1}/s</text></svg>",
        line.join(" "),
        rates.last().copied().unwrap_or(0.0),
        b = h - pad,
        r = w - pad,
        t = pad - 6.0,
        l = h - 6.0,
    )
}

/// How long before `now`, as a person says it; the exact date in a tooltip.
fn ago(at: SystemTime, now: SystemTime) -> String {
    let secs = now.duration_since(at).map_or(0, |d| d.as_secs());
    let text = match secs {
        0..=59 => format!("{secs} s ago"),
        60..=3599 => format!("{} min ago", secs / 60),
        3600..=86_399 => format!("{} h ago", secs / 3600),
        _ => format!("{} days ago", secs / 86_400),
    };
    format!(
        "<span title=\"{}\">{text}</span>",
        escape(&httpdate::fmt_http_date(at))
    )
}

/// Bytes as a person reads them.
fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_ages_read_as_a_person_says_them() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(64 << 20), "64.0 MiB");
        let now = SystemTime::now();
        assert!(ago(now - Duration::from_secs(90), now).contains("1 min ago"));
        assert!(ago(now, now).contains("0 s ago"));
    }

    #[test]
    fn the_chart_puts_the_newest_sample_on_the_right() {
        let svg = chart(&[1.0, 4.0]);
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("now: 4.0/s"));
        assert!(svg.contains("576.0,24.0"), "{svg}");
    }
}
