//! The few HTML pages the gateway serves (the admin status page and its
//! login form): one layout, and escaping for every string that comes from
//! the config, a plugin or Redis. No JavaScript: the pages are read, not
//! run, and their Content-Security-Policy allows no script at all.

use super::respond::{self, Body};
use hyper::header::{CACHE_CONTROL, HeaderName, HeaderValue};
use hyper::{Response, StatusCode};
use std::fmt::Write;

/// No script, no frames, forms only to this gateway, styles inline.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const STYLE: &str = "body{font:15px/1.45 system-ui,sans-serif;margin:1.5rem 2rem;color:#1d2330;background:#f7f8fa}\
h1{font-size:1.4rem;margin:0 0 .2rem}h2{font-size:1.05rem;margin:1.6rem 0 .5rem}\
.sub{color:#5b6475;margin:0 0 1rem}table{border-collapse:collapse;background:#fff;box-shadow:0 1px 2px #0002}\
th,td{padding:.35rem .7rem;text-align:left;border-bottom:1px solid #e3e6ec;vertical-align:top}\
th{background:#eef0f4;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}\
code{font-size:.85em}.ok{color:#1a7f37}.bad{color:#b42318}.warn{color:#9a6700}\
.grid{display:flex;flex-wrap:wrap;gap:1.5rem}.grid>section{min-width:18rem}\
form{background:#fff;padding:1rem 1.2rem;max-width:24rem;box-shadow:0 1px 2px #0002}\
input{font:inherit;padding:.3rem;width:100%;box-sizing:border-box;margin:.3rem 0 .8rem}\
button{font:inherit;padding:.3rem 1rem}.err{color:#b42318}svg{background:#fff;box-shadow:0 1px 2px #0002}";

/// `text` with `&`, `<`, `>`, `"` and `'` escaped: safe in element
/// content and in quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page: `title` (escaped here) and `body` (already HTML), never
/// cached, never framed.
pub fn page(status: StatusCode, title: &str, body: &str) -> Response<Body> {
    let mut doc = String::with_capacity(body.len() + STYLE.len() + 256);
    let _ = write!(
        doc,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>{}</title><style>{STYLE}</style></head><body>\n{body}\n</body></html>\n",
        escape(title)
    );
    let mut resp = respond::bytes(status, "text/html; charset=utf-8", doc);
    respond::set(
        &mut resp,
        CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    respond::set(
        &mut resp,
        HeaderName::from_static("content-security-policy"),
        HeaderValue::from_static(CSP),
    );
    respond::set(
        &mut resp,
        HeaderName::from_static("referrer-policy"),
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_text_is_escaped() {
        assert_eq!(
            escape(r#"<script>alert("x") & 'y'</script>"#),
            "&lt;script&gt;alert(&quot;x&quot;) &amp; &#39;y&#39;&lt;/script&gt;"
        );
        assert_eq!(escape("price:btc ✓"), "price:btc ✓");
    }

    #[test]
    fn a_page_forbids_scripts_and_caching() {
        let resp = page(StatusCode::OK, "<t>", "<p>hi</p>");
        let h = |n: &str| resp.headers().get(n).and_then(|v| v.to_str().ok());
        assert_eq!(h("content-type"), Some("text/html; charset=utf-8"));
        assert_eq!(h("cache-control"), Some("no-store"));
        assert!(h("content-security-policy").is_some_and(|c| c.starts_with("default-src 'none'")));
    }
}
