//! `volumes:` of a service: short and long syntax, binds, named volumes and
//! tmpfs.

use super::*;

impl ServiceResolver<'_> {
    pub(super) fn mounts(&mut self, cx: &mut Ctx<'_>, v: &Value, p: &KeyPath) -> Vec<Mount> {
        let Value::Sequence(items) = v else {
            cx.error(p, format!("expected a list, found {}", kind(v)));
            return Vec::new();
        };
        let mut out: Vec<Mount> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let ip = p.index(i);
            let mount = match item {
                Value::String(s) => self.mount_short(cx, s, &ip),
                Value::Mapping(m) => self.mount_long(cx, m, &ip),
                v => {
                    cx.error(
                        &ip,
                        format!("expected \"source:target\" or a mapping, found {}", kind(v)),
                    );
                    None
                }
            };
            if let Some(m) = mount {
                if !m.target().starts_with('/') {
                    cx.error(
                        &ip,
                        format!("the container path {:?} must be absolute", m.target()),
                    );
                } else if out.iter().any(|o| o.target() == m.target()) {
                    cx.error(&ip, format!("{} is mounted twice", m.target()));
                } else {
                    out.push(m);
                }
            }
        }
        out
    }

    pub(super) fn named_volume(
        &mut self,
        cx: &mut Ctx<'_>,
        key: &str,
        p: &KeyPath,
    ) -> Option<String> {
        match self.volumes.get(key) {
            Some(v) => Some(v.name.clone()),
            None => {
                cx.error_hint(
                    p,
                    format!("volume {key:?} is not declared"),
                    format!("add it under the top-level `volumes:` ({key}: {{}}), or write ./{key} for a folder beside the compose file"),
                );
                None
            }
        }
    }

    pub(super) fn mount_short(&mut self, cx: &mut Ctx<'_>, s: &str, p: &KeyPath) -> Option<Mount> {
        let parts: Vec<&str> = s.split(':').collect();
        let (source, target, mode) = match parts.as_slice() {
            [t] => (None, *t, ""),
            [s, t] => (Some(*s), *t, ""),
            [s, t, m] => (Some(*s), *t, *m),
            _ => {
                cx.error(p, format!("expected \"source:target[:mode]\", found {s:?}"));
                return None;
            }
        };
        let (mut read_only, mut selinux, mut nocopy) = (false, None, false);
        for opt in mode.split(',').filter(|o| !o.is_empty()) {
            match opt {
                "ro" => read_only = true,
                "rw" => read_only = false,
                "z" | "Z" => selinux = Some(opt.to_string()),
                "nocopy" => nocopy = true,
                // Docker Desktop consistency hints; no effect on Linux.
                "cached" | "delegated" | "consistent" => {}
                _ => {
                    cx.error_hint(
                        p,
                        format!("unknown volume mode {opt:?}"),
                        "use ro, rw, z, Z or nocopy",
                    );
                    return None;
                }
            }
        }
        let target = clean_container_path(target);
        Some(match source {
            None => Mount::Volume {
                source: None,
                target,
                read_only,
                nocopy,
            },
            Some(src) if src.starts_with(['.', '/', '~']) => Mount::Bind {
                source: self_path(cx, src, p)?,
                target,
                read_only,
                create_host_path: true,
                selinux,
            },
            Some(src) => Mount::Volume {
                source: Some(self.named_volume(cx, src, p)?),
                target,
                read_only,
                nocopy,
            },
        })
    }

    pub(super) fn mount_long(
        &mut self,
        cx: &mut Ctx<'_>,
        m: &serde_norway::Mapping,
        p: &KeyPath,
    ) -> Option<Mount> {
        let e = cx.entries(m, p);
        cx.check_keys(
            &e,
            p,
            &[
                "type",
                "source",
                "target",
                "read_only",
                "bind",
                "volume",
                "tmpfs",
                "consistency",
            ],
            "a volume entry",
        );
        let get = |k: &str| lookup(&e, k);
        let Some(ty) = get("type").and_then(|t| cx.string(t, &p.key("type"))) else {
            cx.error_hint(p, "missing `type`", "use type: volume, bind or tmpfs");
            return None;
        };
        let Some(target) = get("target").and_then(|t| cx.string(t, &p.key("target"))) else {
            cx.error(p, "missing `target`");
            return None;
        };
        let target = clean_container_path(&target);
        let read_only = get("read_only")
            .and_then(|v| cx.boolean(v, &p.key("read_only")))
            .unwrap_or(false);
        let source = cx.opt_string(get("source"), &p.key("source"));
        let sub = |cx: &mut Ctx<'_>, k: &str, allowed: &[&str]| -> BTreeMap<String, Value> {
            let Some(v) = get(k) else {
                return BTreeMap::new();
            };
            let sp = p.key(k);
            let Some(m) = cx.mapping(v, &sp) else {
                return BTreeMap::new();
            };
            let e = cx.entries(m, &sp);
            cx.check_keys(&e, &sp, allowed, k);
            e.into_iter().map(|(k, v)| (k, v.clone())).collect()
        };
        match ty.as_str() {
            "bind" => {
                let opts = sub(cx, "bind", &["create_host_path", "selinux", "propagation"]);
                let Some(src) = source else {
                    cx.error(p, "a bind mount needs `source`");
                    return None;
                };
                let create_host_path = opts
                    .get("create_host_path")
                    .and_then(|v| cx.boolean(v, &p.key("bind").key("create_host_path")))
                    // Compose's long syntax creates no missing folder unless
                    // asked; the short syntax always does.
                    .unwrap_or(false);
                let selinux = opts
                    .get("selinux")
                    .and_then(|v| cx.string(v, &p.key("bind").key("selinux")));
                Some(Mount::Bind {
                    source: self_path(cx, &src, &p.key("source"))?,
                    target,
                    read_only,
                    create_host_path,
                    selinux,
                })
            }
            "volume" => {
                let opts = sub(cx, "volume", &["nocopy"]);
                let nocopy = opts
                    .get("nocopy")
                    .and_then(|v| cx.boolean(v, &p.key("volume").key("nocopy")))
                    .unwrap_or(false);
                let source = match source {
                    Some(s) => Some(self.named_volume(cx, &s, &p.key("source"))?),
                    None => None,
                };
                Some(Mount::Volume {
                    source,
                    target,
                    read_only,
                    nocopy,
                })
            }
            "tmpfs" => {
                let opts = sub(cx, "tmpfs", &["size", "mode"]);
                let size = opts
                    .get("size")
                    .and_then(|v| cx.uint(v, &p.key("tmpfs").key("size"), u64::MAX));
                let mode = opts
                    .get("mode")
                    .and_then(|v| cx.uint(v, &p.key("tmpfs").key("mode"), 0o7777))
                    .map(|m| m as u32);
                Some(Mount::Tmpfs { target, size, mode })
            }
            other => {
                cx.error_hint(
                    &p.key("type"),
                    format!("mount type {other:?} is not supported"),
                    "use volume, bind or tmpfs",
                );
                None
            }
        }
    }
}
