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
