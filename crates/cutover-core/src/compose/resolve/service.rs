//! One service: every key it may have, and whether it is an app (it has an
//! `x-cutover` block) or an accessory.

use super::*;

// Both variants hold a whole service spec, and one lives for a single
// call: boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub(super) enum Resolved {
    App(AppSpec),
    Accessory(AccessorySpec),
}

pub(super) struct ServiceResolver<'a> {
    pub(super) project: &'a str,
    pub(super) networks: &'a BTreeMap<String, NetworkSpec>,
    pub(super) volumes: &'a BTreeMap<String, VolumeSpec>,
    pub(super) services: &'a BTreeSet<String>,
    /// Services left out because their profiles are not active.
    pub(super) inactive: &'a BTreeMap<String, Vec<String>>,
    pub(super) secrets: &'a BTreeMap<String, FileSource>,
    pub(super) configs: &'a BTreeMap<String, FileSource>,
    pub(super) apps: &'a BTreeSet<String>,
    pub(super) files: &'a dyn ProjectFiles,
    pub(super) default_network_used: bool,
}

impl ServiceResolver<'_> {
    pub(super) fn service(
        &mut self,
        cx: &mut Ctx<'_>,
        name: &str,
        v: &Value,
        p: &KeyPath,
    ) -> Option<Resolved> {
        let m = cx.mapping(v, p)?;
        let entries = cx.entries(m, p);
        let is_app = self.apps.contains(name);
        for (k, _) in &entries {
            if SERVICE_KEYS.contains(&k.as_str())
                || CONTAINER_KEYS.contains(&k.as_str())
                || (k.starts_with("x-") && k != "x-cutover")
            {
                continue;
            }
            if let Some((_, why)) = IGNORED_SERVICE_KEYS.iter().find(|(i, _)| i == k) {
                cx.warn(&p.key(k), format!("`{k}` is ignored: {why}"), None);
                continue;
            }
            let known: Vec<&str> = SERVICE_KEYS.iter().chain(CONTAINER_KEYS).copied().collect();
            let refused = REFUSED_SERVICE_KEYS.iter().find(|(r, _)| r == k);
            let (msg, hint) = match (refused, did_you_mean(k, &known)) {
                (Some((_, what)), _) => (format!("`{k}` is not supported by cutover"), what.to_string()),
                _ if ENGINE_KEYS_NOT_YET.contains(&k.as_str()) => (
                    format!("`{k}` is not passed to the engine by cutover yet"),
                    "if the service cannot run without it, run it with docker compose beside cutover; docs/config.md lists every key".into(),
                ),
                (None, Some(s)) => (format!("unknown key `{k}`"), format!("did you mean `{s}`?")),
                (None, None) => (
                    format!("`{k}` is not a Compose key cutover knows"),
                    "check its spelling against the Compose specification; docs/config.md lists every key".into(),
                ),
            };
            cx.error_hint(&p.key(k), msg, hint);
        }
        let get = |k: &str| lookup(&entries, k).filter(|v| !v.is_null());

        let build = get("build").and_then(|b| self.build(cx, b, &p.key("build")));
        let image = match (cx.opt_string(get("image"), &p.key("image")), &build) {
            (Some(i), _) if !i.trim().is_empty() => i,
            (_, Some(_)) => format!("{}-{name}", self.project),
            (Some(_), None) => {
                cx.error_hint(
                    &p.key("image"),
                    "image is empty",
                    "if it comes from a variable such as ${DOCKER_IMAGE}, set it: DOCKER_IMAGE=app:42 cutover deploy",
                );
                return None;
            }
            (None, None) => {
                cx.error_hint(
                    p,
                    format!("service {name} has neither `image` nor `build`"),
                    "add `image: <reference>`",
                );
                return None;
            }
        };
        let command = get("command").and_then(|c| command_words(cx, c, &p.key("command")));
        let entrypoint = get("entrypoint").and_then(|c| command_words(cx, c, &p.key("entrypoint")));

        // Compose reads `env_file:` with `environment:` already in hand:
        // the files' variables may refer to it, and it wins over them.
        let service_env = get("environment")
            .map(|env| cx.str_map(env, &p.key("environment"), true))
            .unwrap_or_default();
        let mut environment = service_env.clone();
        if let Some(ef) = get("env_file") {
            self.env_file(cx, ef, &p.key("env_file"), &service_env, &mut environment);
        }
        environment.extend(service_env);

        let mounts = get("volumes")
            .map(|v| self.mounts(cx, v, &p.key("volumes")))
            .unwrap_or_default();
        let options = container_options(cx, &entries, p, is_app);
        let mut networks = if options.network_mode.is_some() {
            if get("networks").is_some() {
                cx.error_hint(
                    &p.key("networks"),
                    "`networks` and `network_mode` cannot both be set",
                    "keep network_mode to share another network stack, or networks to join project networks",
                );
            }
            Vec::new()
        } else {
            self.service_networks(cx, name, get("networks"), &p.key("networks"))
        };
        if !is_app {
            // Compose's implicit alias: other services reach an accessory by
            // its service name (REDIS_HOST=redis). Apps get none, since two
            // colors answering one name would bypass the proxy's switch.
            for n in &mut networks {
                if !n.aliases.iter().any(|a| a == name) {
                    n.aliases.insert(0, name.to_string());
                }
            }
        }
        let ports = get("ports")
            .map(|v| ports(cx, v, &p.key("ports")))
            .unwrap_or_default();
        let depends_on = get("depends_on")
            .map(|v| self.depends_on(cx, name, v, &p.key("depends_on")))
            .unwrap_or_default();
        let healthcheck =
            get("healthcheck").and_then(|v| healthcheck(cx, v, &p.key("healthcheck")));
        let restart = get("restart").and_then(|v| {
            let rp = p.key("restart");
            let r = cx.string(v, &rp)?;
            let ok = matches!(
                r.as_str(),
                "no" | "always" | "unless-stopped" | "on-failure"
            ) || r
                .strip_prefix("on-failure:")
                .is_some_and(|n| n.parse::<u32>().is_ok());
            if !ok {
                cx.error_hint(
                    &rp,
                    format!("unknown restart policy {r:?}"),
                    "use no, always, unless-stopped, on-failure or on-failure:<max retries>",
                );
            }
            ok.then_some(r)
        });
        let labels = get("labels")
            .map(|v| cx.str_map(v, &p.key("labels"), false))
            .unwrap_or_default();
        for k in labels.keys().filter(|k| k.starts_with("cutover.")) {
            cx.error_hint(
                &p.key("labels").key(k),
                format!("label {k} is reserved"),
                "cutover writes cutover.* labels itself to find its containers; rename the label",
            );
        }
        let user = cx.opt_string(get("user"), &p.key("user"));
        let working_dir = cx.opt_string(get("working_dir"), &p.key("working_dir"));
        let stop_grace_period =
            cx.opt_duration(get("stop_grace_period"), &p.key("stop_grace_period"));
        let extra_hosts = get("extra_hosts")
            .map(|v| extra_hosts(cx, v, &p.key("extra_hosts")))
            .unwrap_or_default();
        let logging = get("logging").and_then(|v| logging(cx, v, &p.key("logging")));
        let expose = get("expose")
            .map(|v| cx.string_list(v, &p.key("expose")))
            .unwrap_or_default();
        let pull_policy = cx.opt_string(get("pull_policy"), &p.key("pull_policy"));
        let pull_policy = match pull_policy.as_deref() {
            None => None,
            Some("build") if build.is_none() => {
                cx.error_hint(
                    &p.key("pull_policy"),
                    "pull_policy: build needs a `build:` section",
                    "add `build: .` (or its context), or use always, never or missing",
                );
                None
            }
            Some("always" | "never" | "missing" | "build") => pull_policy,
            Some("if_not_present") => Some("missing".into()),
            Some(other) => {
                cx.error_hint(
                    &p.key("pull_policy"),
                    format!("unknown pull_policy {other:?}"),
                    "use always, never, missing or build",
                );
                None
            }
        };

        let spec = ServiceSpec {
            name: name.to_string(),
            image,
            build,
            command,
            entrypoint,
            environment,
            mounts,
            networks,
            ports,
            depends_on,
            healthcheck,
            restart,
            labels,
            user,
            working_dir,
            stop_grace_period,
            extra_hosts,
            logging,
            expose,
            pull_policy,
            options,
            secrets: get("secrets")
                .map(|v| service_files(cx, self.secrets, "secrets", v, &p.key("secrets")))
                .unwrap_or_default(),
            configs: get("configs")
                .map(|v| service_files(cx, self.configs, "configs", v, &p.key("configs")))
                .unwrap_or_default(),
            profiles: get("profiles")
                .map(|v| cx.string_list(v, &p.key("profiles")))
                .unwrap_or_default(),
            app_hosts: BTreeMap::new(),
            replicas: replicas(cx, get("scale"), get("deploy"), is_app, p),
            global: global(cx, get("scale"), get("deploy"), p),
        };
        datastore_warnings(cx, &spec, p);
        let container_name = cx.opt_string(get("container_name"), &p.key("container_name"));
        if is_app {
            if let Some(n) = &container_name {
                cx.warn(
                    &p.key("container_name"),
                    format!("an app runs two colors side by side during a deploy: they are named {n}-blue and {n}-green"),
                    Some("scripts that look for the container by name should use `cutover status`; other services reach the app by its service name".into()),
                );
            }
            // `expose: ["8080", "9000-9001/udp"]`: single TCP ports only.
            let exposed = spec.expose.iter().filter_map(|e| {
                let (port, proto) = e.split_once('/').unwrap_or((e, "tcp"));
                (proto == "tcp").then(|| port.parse::<u16>().ok()).flatten()
            });
            let container_ports: BTreeSet<u16> = spec
                .ports
                .iter()
                .filter(|p| p.protocol == "tcp")
                .map(|p| p.target)
                .chain(exposed)
                .collect();
            let cutover = app_settings(
                cx,
                entries
                    .iter()
                    .find(|(k, _)| k == "x-cutover")
                    .map(|(_, v)| *v)
                    .unwrap_or(&Value::Null),
                &p.key("x-cutover"),
                &container_ports,
            )?;
            let mut cutover = cutover;
            cutover.listen = app_listen(cx, &spec, cutover.port, &p.key("ports"));
            Some(Resolved::App(AppSpec {
                service: spec,
                cutover,
                container_name,
            }))
        } else {
            let container_name =
                container_name.unwrap_or_else(|| crate::naming::accessory(self.project, name));
            Some(Resolved::Accessory(AccessorySpec {
                service: spec,
                container_name,
            }))
        }
    }

    pub(super) fn build(&mut self, cx: &mut Ctx<'_>, v: &Value, p: &KeyPath) -> Option<BuildSpec> {
        let mut spec = BuildSpec {
            context: String::new(),
            dockerfile: None,
            args: BTreeMap::new(),
            target: None,
        };
        let context = match v {
            Value::Mapping(m) => {
                let e = cx.entries(m, p);
                cx.check_keys(&e, p, &["context", "dockerfile", "args", "target"], "build");
                for (k, val) in &e {
                    let kp = p.key(k);
                    match k.as_str() {
                        "dockerfile" => spec.dockerfile = cx.string(val, &kp),
                        "args" => spec.args = cx.str_map(val, &kp, true),
                        "target" => spec.target = cx.string(val, &kp),
                        _ => {}
                    }
                }
                match e.iter().find(|(k, _)| k == "context") {
                    Some((_, c)) => cx.string(c, &p.key("context"))?,
                    None => ".".to_string(),
                }
            }
            v => cx.string(v, p)?,
        };
        let is_url = [
            "http://",
            "https://",
            "git://",
            "git@",
            "ssh://",
            "github.com/",
        ]
        .iter()
        .any(|s| context.starts_with(s));
        spec.context = if is_url {
            context
        } else {
            self_path(cx, &context, &p.key("context"))?
                .display()
                .to_string()
        };
        Some(spec)
    }

    pub(super) fn env_file(
        &mut self,
        cx: &mut Ctx<'_>,
        v: &Value,
        p: &KeyPath,
        service_env: &BTreeMap<String, String>,
        env: &mut BTreeMap<String, String>,
    ) {
        let items: Vec<(KeyPath, &Value)> = match v {
            Value::Sequence(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (p.index(i), v))
                .collect(),
            v => vec![(p.clone(), v)],
        };
        for (ip, item) in items {
            let (path, required, raw) = match item {
                Value::Mapping(m) => {
                    let e = cx.entries(m, &ip);
                    cx.check_keys(
                        &e,
                        &ip,
                        &["path", "required", "format"],
                        "an env_file entry",
                    );
                    let Some((_, path)) = e.iter().find(|(k, _)| k == "path") else {
                        cx.error(&ip, "missing `path`");
                        continue;
                    };
                    let Some(path) = cx.string(path, &ip.key("path")) else {
                        continue;
                    };
                    let required = match e.iter().find(|(k, _)| k == "required") {
                        Some((_, r)) => cx.boolean(r, &ip.key("required")).unwrap_or(true),
                        None => true,
                    };
                    let raw = match e.iter().find(|(k, _)| k == "format") {
                        None => false,
                        Some((_, f)) => match cx.string(f, &ip.key("format")).as_deref() {
                            Some("raw") => true,
                            None | Some(".env") => false,
                            Some(other) => {
                                cx.error_hint(
                                    &ip.key("format"),
                                    format!("unsupported env_file format {other:?}"),
                                    "leave `format` out for a dotenv file, or write `format: raw` to take each line's value as written",
                                );
                                continue;
                            }
                        },
                    };
                    (path, required, raw)
                }
                v => match cx.string(v, &ip) {
                    Some(s) => (s, true, false),
                    None => continue,
                },
            };
            let Some(abs) = self_path(cx, &path, &ip) else {
                continue;
            };
            match self.files.read_file(&abs) {
                Ok(Some(content)) if raw => env.extend(raw_env(&content)),
                Ok(Some(content)) => {
                    let project_env = &cx.input.env;
                    let lookup =
                        |k: &str| project_env.get(k).or_else(|| service_env.get(k)).cloned();
                    let mut unset = Unset::new();
                    if let Err(e) = parse_dotenv(&content, env, &lookup, &mut unset) {
                        let d = Diagnostic {
                            file: Some(abs.display().to_string()),
                            line: Some(e.line),
                            column: Some(e.column),
                            key: String::new(),
                            message: e.message,
                            hint: e.hint,
                        };
                        cx.errors.push(d);
                    }
                    for var in unset {
                        cx.warn(
                            &ip,
                            format!("{} uses ${{{var}}}, which is not set; it is read as an empty string", abs.display()),
                            None,
                        );
                    }
                }
                Ok(None) if !required => {}
                Ok(None) => cx.error_hint(
                    &ip,
                    format!("env file {} does not exist", abs.display()),
                    "create it, or write `env_file: {path: ..., required: false}`",
                ),
                Err(e) => {
                    let d = cx.diag(
                        None,
                        &ip,
                        format!("cannot read env file {}: {}", abs.display(), e.message),
                        e.hint,
                    );
                    cx.errors.push(d);
                }
            }
        }
    }
}

impl ServiceResolver<'_> {
    pub(super) fn service_networks(
        &mut self,
        cx: &mut Ctx<'_>,
        me: &str,
        v: Option<&Value>,
        p: &KeyPath,
    ) -> Vec<ServiceNetwork> {
        // Each entry as written, its Docker name filled in below.
        let entry = |key: String| ServiceNetwork {
            key,
            name: String::new(),
            aliases: Vec::new(),
            ipv4_address: None,
            ipv6_address: None,
        };
        let mut wanted: Vec<(KeyPath, ServiceNetwork)> = Vec::new();
        match v {
            None => {}
            Some(Value::Sequence(items)) => {
                for (i, item) in items.iter().enumerate() {
                    if let Some(n) = cx.string(item, &p.index(i)) {
                        wanted.push((p.index(i), entry(n)));
                    }
                }
            }
            Some(Value::Mapping(m)) => {
                for (k, val) in cx.entries(m, p) {
                    let kp = p.key(&k);
                    let mut n = entry(k);
                    if let Some(nm) = val.as_mapping() {
                        let e = cx.entries(nm, &kp);
                        cx.check_keys(
                            &e,
                            &kp,
                            &["aliases", "ipv4_address", "ipv6_address"],
                            "a service network",
                        );
                        if let Some(a) = lookup(&e, "aliases") {
                            n.aliases = cx.string_list(a, &kp.key("aliases"));
                        }
                        n.ipv4_address =
                            cx.opt_string(lookup(&e, "ipv4_address"), &kp.key("ipv4_address"));
                        n.ipv6_address =
                            cx.opt_string(lookup(&e, "ipv6_address"), &kp.key("ipv6_address"));
                    } else if !val.is_null() {
                        cx.error(&kp, format!("expected a mapping, found {}", kind(val)));
                    }
                    wanted.push((kp, n));
                }
            }
            Some(other) => cx.error(
                p,
                format!("expected a list or a mapping, found {}", kind(other)),
            ),
        }
        if wanted.is_empty() {
            wanted.push((p.clone(), entry("default".into())));
        }
        let mut out = Vec::new();
        for (kp, mut n) in wanted {
            let key = &n.key;
            n.name = match self.networks.get(key) {
                Some(spec) => spec.name.clone(),
                None if key == "default" => {
                    self.default_network_used = true;
                    format!("{}_default", self.project)
                }
                None => {
                    cx.error_hint(
                        &kp,
                        format!("network {key:?} is not declared"),
                        format!("add it under the top-level `networks:` ({key}: {{}}; add `external: true` if it already exists outside this project)"),
                    );
                    continue;
                }
            };
            if self.apps.contains(me) && (n.ipv4_address.is_some() || n.ipv6_address.is_some()) {
                cx.error_hint(
                    &kp,
                    "an app cannot have a static address: its two colors run side by side during a deploy",
                    "remove ipv4_address/ipv6_address; other services reach the app by its service name",
                );
            }
            out.push(n);
        }
        out
    }

    pub(super) fn depends_on(
        &mut self,
        cx: &mut Ctx<'_>,
        me: &str,
        v: &Value,
        p: &KeyPath,
    ) -> Vec<Dependency> {
        let mut out = Vec::new();
        let mut add = |cx: &mut Ctx<'_>, dep: String, kp: &KeyPath, condition, required| {
            if let Some(profiles) = self.inactive.get(&dep) {
                if required {
                    cx.error_hint(
                        kp,
                        format!(
                            "depends on {dep}, which is in profile {} and not active",
                            profiles.join(", ")
                        ),
                        format!(
                            "activate it: --profile {0} or COMPOSE_PROFILES={0}",
                            profiles[0]
                        ),
                    );
                }
            } else if !self.services.contains(&dep) {
                cx.error_hint(
                    kp,
                    format!("depends on undefined service {dep:?}"),
                    format!(
                        "services in this project: {}",
                        self.services.iter().cloned().collect::<Vec<_>>().join(", ")
                    ),
                );
            } else if dep == me {
                cx.error(kp, "a service cannot depend on itself");
            } else {
                out.push(Dependency {
                    service: dep,
                    condition,
                    required,
                });
            }
        };
        match v {
            Value::Sequence(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let Some(dep) = cx.string(item, &p.index(i)) {
                        add(cx, dep, &p.index(i), DependsCondition::ServiceStarted, true);
                    }
                }
            }
            Value::Mapping(m) => {
                for (dep, val) in cx.entries(m, p) {
                    let kp = p.key(&dep);
                    let mut condition = DependsCondition::ServiceStarted;
                    let mut required = true;
                    if let Some(dm) = val.as_mapping() {
                        let e = cx.entries(dm, &kp);
                        cx.check_keys(
                            &e,
                            &kp,
                            &["condition", "required", "restart"],
                            "a depends_on entry",
                        );
                        for (k, val) in &e {
                            match k.as_str() {
                                "condition" => match cx.string(val, &kp.key(k)).as_deref() {
                                    Some("service_started") => condition = DependsCondition::ServiceStarted,
                                    Some("service_healthy") => condition = DependsCondition::ServiceHealthy,
                                    Some("service_completed_successfully") => condition = DependsCondition::ServiceCompletedSuccessfully,
                                    Some(other) => cx.error_hint(&kp.key(k), format!("unknown condition {other:?}"), "use service_started, service_healthy or service_completed_successfully"),
                                    None => {}
                                },
                                "required" => required = cx.boolean(val, &kp.key(k)).unwrap_or(true),
                                // Compose's restart-with-dependency: the daemon
                                // never restarts an accessory for an app.
                                _ => {}
                            }
                        }
                    } else if !val.is_null() {
                        cx.error(&kp, format!("expected a mapping, found {}", kind(val)));
                    }
                    add(cx, dep, &kp, condition, required);
                }
            }
            other => cx.error(
                p,
                format!("expected a list or a mapping, found {}", kind(other)),
            ),
        }
        out
    }
}

/// `format: raw`: each `KEY=value` line as written, no quotes, comments or
/// variables; a line without `=` is a key with an empty value.
fn raw_env(content: &str) -> impl Iterator<Item = (String, String)> + '_ {
    content
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l.to_string(), String::new()),
        })
}

/// An app's published `ports:` as the addresses the daemon listens on for
/// it. Only the port the app serves (`x-cutover.port`) can be forwarded,
/// over TCP; an unpublished entry needs nothing.
fn app_listen(cx: &mut Ctx<'_>, spec: &ServiceSpec, port: u16, p: &KeyPath) -> Vec<String> {
    let mut out = Vec::new();
    for (i, ps) in spec.ports.iter().enumerate() {
        let Some(published) = ps.published else {
            continue;
        };
        if ps.protocol != "tcp" || ps.target != port {
            cx.error_hint(
                &p.index(i),
                format!(
                    "cutover forwards one port of an app, x-cutover.port {port} over TCP; this entry publishes {}/{}",
                    ps.target, ps.protocol
                ),
                format!("publish {port} here, or run what serves {} in an accessory", ps.target),
            );
            continue;
        }
        let host = match ps.host_ip.as_deref() {
            None | Some("") => "0.0.0.0".to_string(),
            Some(ip) if ip.contains(':') => format!("[{ip}]"),
            Some(ip) => ip.to_string(),
        };
        let addr = format!("{host}:{published}");
        if !out.contains(&addr) {
            out.push(addr);
        }
    }
    out
}
