//! Top-level `networks:` and `volumes:`: one reader for both.

use super::*;

pub(super) fn top_networks(
    cx: &mut Ctx<'_>,
    project: &str,
    v: Option<&Value>,
) -> BTreeMap<String, NetworkSpec> {
    top_level(
        cx,
        "networks",
        v,
        &[
            "name",
            "external",
            "driver",
            "driver_opts",
            "labels",
            "internal",
            "attachable",
            "enable_ipv6",
            "ipam",
        ],
        "a network",
        |key| NetworkSpec::project_default(project, key),
        |cx, spec, k, val, kp| match k {
            "external" => {
                if val.is_mapping() {
                    cx.error_hint(
                        kp,
                        "`external: {name: ...}` is obsolete",
                        "write `external: true` and `name: ...`",
                    );
                } else {
                    spec.external = cx.boolean(val, kp).unwrap_or(false);
                }
            }
            "driver" => spec.driver = cx.string(val, kp),
            "driver_opts" => spec.driver_opts = cx.str_map(val, kp, false),
            "labels" => spec.labels = cx.str_map(val, kp, false),
            "internal" => spec.internal = cx.boolean(val, kp).unwrap_or(false),
            "attachable" => spec.attachable = cx.boolean(val, kp).unwrap_or(false),
            "enable_ipv6" => spec.enable_ipv6 = cx.boolean(val, kp).unwrap_or(false),
            "ipam" => spec.ipam = ipam(cx, val, kp),
            _ => {}
        },
        |spec| (&mut spec.name, spec.external),
    )
}

pub(super) fn top_volumes(
    cx: &mut Ctx<'_>,
    project: &str,
    v: Option<&Value>,
) -> BTreeMap<String, VolumeSpec> {
    top_level(
        cx,
        "volumes",
        v,
        &["name", "external", "driver", "driver_opts", "labels"],
        "a volume",
        |key| VolumeSpec {
            name: crate::naming::project_scoped(project, &key),
            key,
            external: false,
            driver: None,
            driver_opts: BTreeMap::new(),
            labels: BTreeMap::new(),
        },
        |cx, spec, k, val, kp| match k {
            "external" => spec.external = cx.boolean(val, kp).unwrap_or(false),
            "driver" => spec.driver = cx.string(val, kp),
            "driver_opts" => spec.driver_opts = cx.str_map(val, kp, false),
            "labels" => spec.labels = cx.str_map(val, kp, false),
            _ => {}
        },
        |spec| (&mut spec.name, spec.external),
    )
}

/// Top-level `networks:` or `volumes:`: one reader for both, so they share
/// the entry shape and the naming rule. `new` makes the default entry of a
/// key, `field` reads any key of `allowed` but `name`, and `name` gives the
/// entry's name and whether it is external.
#[allow(clippy::too_many_arguments)]
pub(super) fn top_level<T>(
    cx: &mut Ctx<'_>,
    section: &str,
    v: Option<&Value>,
    allowed: &[&str],
    what: &str,
    new: impl Fn(String) -> T,
    mut field: impl FnMut(&mut Ctx<'_>, &mut T, &str, &Value, &KeyPath),
    name: impl Fn(&mut T) -> (&mut String, bool),
) -> BTreeMap<String, T> {
    let mut out = BTreeMap::new();
    let p = KeyPath::root().key(section);
    let Some(m) = v.filter(|v| !v.is_null()).and_then(|v| cx.mapping(v, &p)) else {
        return out;
    };
    for (key, v) in cx.entries(m, &p) {
        let ep = p.key(&key);
        let mut spec = new(key.clone());
        if !v.is_null() {
            let Some(em) = cx.mapping(v, &ep) else {
                continue;
            };
            let e = cx.entries(em, &ep);
            cx.check_keys(&e, &ep, allowed, what);
            let mut given = None;
            for (k, val) in &e {
                let kp = ep.key(k);
                if k == "name" {
                    given = cx.string(val, &kp);
                } else {
                    field(cx, &mut spec, k, val, &kp);
                }
            }
            let (slot, external) = name(&mut spec);
            match given {
                Some(n) => *slot = n,
                // An external one is looked up by its key as written.
                None if external => *slot = key.clone(),
                None => {}
            }
        }
        out.insert(key, spec);
    }
    out
}

/// `ipam: {driver, config: [{subnet, ip_range, gateway, aux_addresses}], options}`.
fn ipam(cx: &mut Ctx<'_>, v: &Value, p: &KeyPath) -> Option<Ipam> {
    let m = cx.mapping(v, p)?;
    let e = cx.entries(m, p);
    cx.check_keys(&e, p, &["driver", "config", "options"], "ipam");
    let mut out = Ipam {
        driver: cx.opt_string(lookup(&e, "driver"), &p.key("driver")),
        options: lookup(&e, "options")
            .map(|o| cx.str_map(o, &p.key("options"), false))
            .unwrap_or_default(),
        config: Vec::new(),
    };
    let cp = p.key("config");
    match lookup(&e, "config") {
        None | Some(Value::Null) => {}
        Some(Value::Sequence(items)) => {
            for (i, item) in items.iter().enumerate() {
                let ip = cp.index(i);
                let Some(pm) = cx.mapping(item, &ip) else {
                    continue;
                };
                let pe = cx.entries(pm, &ip);
                cx.check_keys(
                    &pe,
                    &ip,
                    &["subnet", "ip_range", "gateway", "aux_addresses"],
                    "an ipam pool",
                );
                out.config.push(IpamPool {
                    subnet: cx.opt_string(lookup(&pe, "subnet"), &ip.key("subnet")),
                    ip_range: cx.opt_string(lookup(&pe, "ip_range"), &ip.key("ip_range")),
                    gateway: cx.opt_string(lookup(&pe, "gateway"), &ip.key("gateway")),
                    aux_addresses: lookup(&pe, "aux_addresses")
                        .map(|a| cx.str_map(a, &ip.key("aux_addresses"), false))
                        .unwrap_or_default(),
                });
            }
        }
        Some(other) => cx.error(&cp, format!("expected a list, found {}", kind(other))),
    }
    Some(out)
}
