//! Properties that hold for any input, checked on generated ones (bounded
//! case counts, so CI time stays fixed): the parsers of untrusted text never
//! panic, and the round trips the rest of cutover relies on hold.

use std::collections::BTreeMap;

use cutover_core::compose::{interpolate, load, ComposeFile, InterpolateError, LoadInput, NoFiles};
use cutover_core::dot_segments::remove_dot_segments;
use cutover_core::route::{normalize_host, RouteTable};
use proptest::prelude::*;

fn env() -> BTreeMap<String, String> {
    [("A", "1"), ("EMPTY", ""), ("IMG", "app:42")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn interpolated(s: &str) -> Result<String, InterpolateError> {
    let env = env();
    let lookup = |k: &str| env.get(k).cloned();
    interpolate(s, &lookup, &mut Default::default())
}

/// Text that leans on what interpolation parses: `$`, braces, operators.
fn compose_ish_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("$".to_string()),
        Just("$$".to_string()),
        Just("${".to_string()),
        Just("}".to_string()),
        Just(":-".to_string()),
        Just("-".to_string()),
        Just(":?".to_string()),
        Just("?".to_string()),
        Just(":+".to_string()),
        Just("A".to_string()),
        Just("EMPTY".to_string()),
        "[a-zA-Z0-9_ .:/\"'#]{0,6}",
        any::<String>(),
    ];
    prop::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Any text: a value or an error, never a panic.
    #[test]
    fn interpolation_never_panics(s in compose_ish_text()) {
        let _ = interpolated(&s);
    }

    /// Text without `$` is left as it is.
    #[test]
    fn text_without_dollar_is_unchanged(s in "[^$]{0,64}") {
        prop_assert_eq!(interpolated(&s).unwrap(), s);
    }

    /// `$$` is a literal `$`: escaping every `$` round-trips any text.
    #[test]
    fn escaped_text_comes_back_as_written(s in any::<String>()) {
        let escaped = s.replace('$', "$$");
        prop_assert_eq!(interpolated(&escaped).unwrap(), s);
    }

    /// A set variable in any of the forms that use its value reads as it.
    #[test]
    fn set_variables_read_the_same_in_every_form(default in "[a-z]{0,5}") {
        for form in ["$A", "${A}", &format!("${{A:-{default}}}"), &format!("${{A-{default}}}"), "${A:?x}", "${A?x}"] {
            prop_assert_eq!(interpolated(form).unwrap(), "1", "{}", form);
        }
    }
}

/// YAML-shaped text: keys, indentation, flow collections, anchors and
/// aliases, merge keys and tags, so the generator reaches the loader's
/// paths and not only the YAML parser's errors.
fn yamlish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("services:\n".to_string()),
        Just("  web:\n".to_string()),
        Just("    image: ${IMG}\n".to_string()),
        Just("    x-cutover: {port: 8080}\n".to_string()),
        Just("    ports: [\"8080:80\"]\n".to_string()),
        Just("    environment: [A=1, B]\n".to_string()),
        Just("    volumes: [data:/data, ./x:/x]\n".to_string()),
        Just("    <<: *base\n".to_string()),
        Just("x-base: &base {image: a}\n".to_string()),
        Just("networks: {n: {external: true}}\n".to_string()),
        Just("volumes:\n  data:\n".to_string()),
        Just("    depends_on: [web]\n".to_string()),
        Just("  - ".to_string()),
        Just("!!str ".to_string()),
        Just(": ".to_string()),
        Just("\"".to_string()),
        Just("\n".to_string()),
        "[ a-z0-9:{}\\[\\],&*!-]{0,10}",
    ];
    prop::collection::vec(token, 0..16).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Any compose file: a project or diagnostics, never a panic; and every
    /// diagnostic names the file it is about.
    #[test]
    fn the_loader_never_panics(content in yamlish()) {
        let input = LoadInput {
            files: vec![ComposeFile { path: "compose.yaml".into(), content }],
            project_dir: "/srv/app".into(),
            project_name: None,
            env: env(),
        };
        if let Err(e) = load(&input, &NoFiles) {
            prop_assert!(!e.errors.is_empty());
            for d in &e.errors {
                prop_assert!(d.file.is_none() || d.file.as_deref() == Some("compose.yaml"), "{:?}", d);
            }
        }
    }

    /// Routing on a name does not depend on how the client spelled it: case,
    /// a port, a trailing dot. Normalizing twice changes nothing.
    #[test]
    fn hosts_normalize_once_and_for_all(
        host in "[a-zA-Z0-9-]{1,12}(\\.[a-zA-Z0-9-]{1,12}){0,3}",
        port in any::<u16>(),
        dot in any::<bool>(),
    ) {
        let spelled = format!("{host}{}:{port}", if dot { "." } else { "" });
        let n = normalize_host(&spelled).into_owned();
        prop_assert_eq!(&n, &host.to_ascii_lowercase());
        prop_assert_eq!(normalize_host(&n).into_owned(), n.clone());

        let mut table = RouteTable::new();
        table.insert(&[host.to_ascii_lowercase()], None, "app").unwrap();
        prop_assert_eq!(table.lookup(Some(&spelled), "/").copied(), Some("app"));
    }

    /// Any Host header value: a name or nothing, never a panic.
    #[test]
    fn any_host_header_normalizes(raw in any::<String>()) {
        let _ = normalize_host(&raw);
        let table: RouteTable<()> = RouteTable::new();
        let _ = table.lookup(Some(&raw), "/");
    }
}

/// Paths built from the segments that matter: dots, encoded dots, names.
fn path_ish() -> impl Strategy<Value = String> {
    let seg = prop_oneof![
        Just(".".to_string()),
        Just("..".to_string()),
        Just("%2e".to_string()),
        Just("%2E%2e".to_string()),
        Just("".to_string()),
        "[a-z.]{1,4}",
    ];
    proptest::collection::vec(seg, 0..8).prop_map(|segs| format!("/{}", segs.join("/")))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_normalised_path_has_no_dot_segment_and_normalises_to_itself(path in path_ish()) {
        if let Ok(once) = remove_dot_segments(&path) {
            prop_assert!(once.starts_with('/'));
            for seg in once.split('/') {
                prop_assert!(
                    !matches!(seg.to_ascii_lowercase().as_str(), "." | ".." | "%2e" | "%2e%2e" | ".%2e" | "%2e."),
                    "{path} -> {once}"
                );
            }
            let twice = remove_dot_segments(&once).expect("a normalised path stays inside the root");
            prop_assert_eq!(&*twice, &*once);
        }
    }
}
