//! Header rules of the request path: request ids, hop-by-hop removal (RFC
//! 9110 7.6.1), and the forwarding headers an origin receives.

use std::sync::atomic::{AtomicU64, Ordering};

use http::header::{self, Entry, HeaderMap, HeaderName, HeaderValue};
use http::request::Parts;
use http::{Request, Uri, Version};
use hyper::body::Incoming;

use super::ConnInfo;

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
pub(super) static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Host as the client named it: the HTTP/2 authority or the Host header.
pub(super) fn request_host(req: &Request<Incoming>) -> Option<&str> {
    match req.uri().authority() {
        Some(a) => Some(a.as_str()),
        None => req
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok()),
    }
}

/// The client's request id, or a new one written into the request.
pub(super) fn ensure_request_id(parts: &mut Parts) -> HeaderValue {
    parts
        .headers
        .entry(X_REQUEST_ID.clone())
        .or_insert_with(new_request_id)
        .clone()
}

/// Turns the client's request head into the one the origin gets: hop-by-hop
/// headers out, Host and the X-Forwarded-* headers set, an upgrade asked
/// for again (it is hop-by-hop), origin-form URI, HTTP/1.1.
pub(super) fn for_upstream(parts: &mut Parts, conn: &ConnInfo, upgrade: Option<&HeaderValue>) {
    // Computed before hop-by-hop removal, which changes nothing they depend on.
    let host = match parts.uri.authority() {
        Some(a) => HeaderValue::from_str(a.as_str()).ok(),
        None => parts.headers.get(header::HOST).cloned(),
    };
    strip_hop_by_hop(&mut parts.headers);
    // One hashed lookup per header through `entry`, not a get or
    // contains_key and then an insert: these run on every request.
    if let Some(h) = &host {
        // The authority routed on, which wins over a Host header that says
        // otherwise (an absolute-form URI, an HTTP/2 `host` beside
        // `:authority`): the origin sees the name cutover chose it for.
        parts.headers.insert(header::HOST, h.clone());
        parts
            .headers
            .entry(X_FORWARDED_HOST.clone())
            .or_insert_with(|| h.clone());
    }
    match parts.headers.entry(X_FORWARDED_FOR.clone()) {
        Entry::Occupied(mut entry) => {
            let prev = entry.get();
            let mut v = Vec::with_capacity(prev.len() + 2 + conn.peer_ip.len());
            v.extend_from_slice(prev.as_bytes());
            v.extend_from_slice(b", ");
            v.extend_from_slice(conn.peer_ip.as_bytes());
            // Replaces every XFF line, as the single joined value says it all.
            entry.insert(HeaderValue::from_bytes(&v).unwrap_or_else(|_| conn.peer_ip.clone()));
        }
        Entry::Vacant(slot) => {
            slot.insert(conn.peer_ip.clone());
        }
    }
    // Over plain HTTP, incoming X-Forwarded-Proto/Host are kept (a TLS
    // terminator in front of cutover sets them); over cutover's own TLS the
    // proto is what cutover saw. X-Forwarded-For is appended to, never
    // replaced.
    if conn.tls {
        parts
            .headers
            .insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("https"));
    } else {
        parts
            .headers
            .entry(X_FORWARDED_PROTO.clone())
            .or_insert_with(|| HeaderValue::from_static("http"));
    }
    if let Some(u) = upgrade {
        parts
            .headers
            .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        parts.headers.insert(header::UPGRADE, u.clone());
    }
    if parts.uri.scheme().is_some() || parts.uri.authority().is_some() {
        let pq = parts.uri.path_and_query().cloned();
        let mut p = http::uri::Parts::default();
        p.path_and_query = pq.or_else(|| Some(http::uri::PathAndQuery::from_static("/")));
        parts.uri = Uri::from_parts(p).unwrap_or_else(|_| Uri::from_static("/"));
    }
    parts.version = Version::HTTP_11;
}

/// Request ids: a per-process random prefix and a counter, hex encoded.
pub(super) fn new_request_id() -> HeaderValue {
    static PREFIX: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = *PREFIX.get_or_init(rand::random::<u32>);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut buf = [0u8; 24];
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in buf[..8].iter_mut().enumerate() {
        *b = HEX[((prefix >> (28 - 4 * i)) & 0xf) as usize];
    }
    for (i, b) in buf[8..].iter_mut().enumerate() {
        *b = HEX[((n >> (60 - 4 * i)) & 0xf) as usize];
    }
    HeaderValue::from_bytes(&buf).expect("hex is a valid header value")
}

pub(crate) fn connection_has(headers: &HeaderMap, token: &str) -> bool {
    headers.get_all(header::CONNECTION).iter().any(|v| {
        v.to_str()
            .map(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
            .unwrap_or(false)
    })
}

/// The hop-by-hop names RFC 9110 7.6.1 lists, besides those the Connection
/// header names. Connection comes first: its bit says whether to parse it.
static HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
];

/// Where `name` is in HOP_BY_HOP. Matching the lowercase text is cheaper
/// than comparing HeaderNames, which compares custom names' bytes one by one.
fn hop_by_hop_index(name: &HeaderName) -> Option<usize> {
    match name.as_str() {
        "connection" => Some(0),
        "keep-alive" => Some(1),
        "te" => Some(2),
        "trailer" => Some(3),
        "transfer-encoding" => Some(4),
        "upgrade" => Some(5),
        "proxy-connection" => Some(6),
        "proxy-authenticate" => Some(7),
        "proxy-authorization" => Some(8),
        _ => None,
    }
}

/// Removes hop-by-hop headers (RFC 9110 7.6.1) including those the
/// Connection header names.
pub(super) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // One pass over the names present instead of a hashed remove per listed
    // name: a proxied request usually carries none of them and a response
    // only Connection, and the nine removes were ~6 % of the proxy's
    // user-space instructions per request (docs/benchmarks.md, profile).
    let mut present: u16 = 0;
    for name in headers.keys() {
        if let Some(i) = hop_by_hop_index(name) {
            present |= 1 << i;
        }
    }
    if present == 0 {
        return;
    }
    if present & 1 != 0 {
        let mut values = headers.get_all(header::CONNECTION).iter();
        let first = values.next().expect("Connection is present");
        // The usual lone `keep-alive`/`close`/`upgrade` names nothing else to
        // remove; only other shapes pay for parsing.
        let plain = values.next().is_none()
            && [&b"keep-alive"[..], b"close", b"upgrade"]
                .iter()
                .any(|t| first.as_bytes().eq_ignore_ascii_case(t));
        if !plain {
            let named: Vec<HeaderName> = headers
                .get_all(header::CONNECTION)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|s| s.split(','))
                .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
                .collect();
            for n in named {
                headers.remove(n);
            }
        }
    }
    for (i, name) in HOP_BY_HOP.iter().enumerate() {
        if present & (1 << i) != 0 {
            headers.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_are_removed() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("connection", "keep-alive, x-private"),
            ("x-private", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("trailer", "x"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("proxy-connection", "keep-alive"),
            ("proxy-authorization", "secret"),
            ("x-kept", "yes"),
        ] {
            h.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        strip_hop_by_hop(&mut h);
        let left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["x-kept"]);

        // Several Connection headers: each one's names go.
        let mut h = HeaderMap::new();
        h.append(header::CONNECTION, HeaderValue::from_static("Keep-Alive"));
        h.append(header::CONNECTION, HeaderValue::from_static("x-a"));
        h.insert(
            HeaderName::from_static("x-a"),
            HeaderValue::from_static("1"),
        );
        strip_hop_by_hop(&mut h);
        assert!(h.is_empty(), "{h:?}");
    }

    #[test]
    fn each_hop_by_hop_name_is_found_and_removed() {
        for (i, name) in HOP_BY_HOP.iter().enumerate() {
            assert_eq!(hop_by_hop_index(name), Some(i), "{name}");
            // Repeated, so that removal has to take every value.
            let mut h = HeaderMap::new();
            h.append(name.clone(), HeaderValue::from_static("close"));
            h.append(name.clone(), HeaderValue::from_static("close"));
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            strip_hop_by_hop(&mut h);
            let left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
            assert_eq!(left, ["content-type"], "{name}");
        }
        assert_eq!(hop_by_hop_index(&header::CONTENT_LENGTH), None);
        assert_eq!(hop_by_hop_index(&X_REQUEST_ID), None);
    }

    #[test]
    fn request_ids_are_unique_hex() {
        let a = new_request_id();
        let b = new_request_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 24);
        assert!(a.as_bytes().iter().all(u8::is_ascii_hexdigit));
    }

    #[test]
    fn connection_tokens_are_case_insensitive() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        assert!(connection_has(&h, "upgrade"));
        assert!(!connection_has(&h, "close"));
    }
}
