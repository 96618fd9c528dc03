//! The certificates served right now, by host name: what a handshake reads.
//! Written by the static-file watcher and the ACME orders under a mutex,
//! read by every handshake from an immutable snapshot (one ArcSwap load).
//!
//! Lookup, like the route table: the exact name, then a `*.` wildcard one
//! label up, then the default certificate (a client without SNI, or a
//! name nothing covers, still completes the handshake; its browser then
//! says the name does not match, which tells the user more than a reset).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use cutover_core::sync::lock;
use rustls::sign::CertifiedKey;

#[derive(Default)]
pub(crate) struct Store {
    snapshot: ArcSwap<Table>,
    write: Mutex<Table>,
}

#[derive(Default, Clone)]
struct Table {
    /// Lowercase names; a wildcard is kept as `*.example.com`.
    by_name: HashMap<String, Arc<CertifiedKey>>,
    default: Option<Arc<CertifiedKey>>,
}

impl Store {
    /// Serves `key` for each of `names` (replacing what served them).
    pub fn put(&self, names: &[String], key: Arc<CertifiedKey>) {
        self.change(|t| {
            for n in names {
                t.by_name.insert(n.to_ascii_lowercase(), key.clone());
            }
        });
    }

    /// Stops serving `names`.
    pub fn remove(&self, names: &[String]) {
        self.change(|t| {
            for n in names {
                t.by_name.remove(&n.to_ascii_lowercase());
            }
        });
    }

    pub fn set_default(&self, key: Arc<CertifiedKey>) {
        self.change(|t| t.default = Some(key));
    }

    /// The certificate for `name` alone, with no default.
    pub fn exact(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        let table = self.snapshot.load();
        find(&table, name).cloned()
    }

    /// What a handshake for `sni` is answered with.
    pub fn for_handshake(&self, sni: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let table = self.snapshot.load();
        sni.and_then(|name| find(&table, name))
            .or(table.default.as_ref())
            .cloned()
    }

    fn change(&self, f: impl FnOnce(&mut Table)) {
        let mut table = lock(&self.write);
        f(&mut table);
        self.snapshot.store(Arc::new(table.clone()));
    }
}

fn find<'a>(table: &'a Table, name: &str) -> Option<&'a Arc<CertifiedKey>> {
    // rustls hands SNI over lowercase already (RFC 6066 names are ASCII).
    if let Some(k) = table.by_name.get(name) {
        return Some(k);
    }
    let (_, parent) = name.split_once('.')?;
    table.by_name.get(&format!("*.{parent}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pem::{load, tests::self_signed};

    fn key(name: &str) -> Arc<CertifiedKey> {
        let (c, k) = self_signed(&[name]);
        load(c.as_bytes(), k.as_bytes()).unwrap().key
    }

    #[test]
    fn exact_beats_wildcard_beats_default() {
        let store = Store::default();
        let (exact, wild, default) = (key("a.example.com"), key("*.example.com"), key("cutover"));
        store.put(&["a.example.com".into()], exact.clone());
        store.put(&["*.Example.com".into()], wild.clone());
        assert!(store.for_handshake(Some("x.example.com")).is_some());
        assert!(Arc::ptr_eq(
            &store.for_handshake(Some("a.example.com")).unwrap(),
            &exact
        ));
        assert!(Arc::ptr_eq(
            &store.for_handshake(Some("b.example.com")).unwrap(),
            &wild
        ));
        // A wildcard covers one label, not two.
        assert!(store.for_handshake(Some("c.b.example.com")).is_none());
        assert!(store.for_handshake(None).is_none());
        store.set_default(default.clone());
        assert!(Arc::ptr_eq(&store.for_handshake(None).unwrap(), &default));
        assert!(store.exact("c.b.example.com").is_none());
        store.remove(&["a.example.com".into()]);
        assert!(Arc::ptr_eq(
            &store.for_handshake(Some("a.example.com")).unwrap(),
            &wild
        ));
    }
}
