//! docs/api.md cannot drift from the wire types: every example marked
//! `<!-- wire: TYPE -->` must parse as that type and say nothing the type
//! does not carry (it serializes back to the same JSON).

use cutover_core::fleet::{ClusterStatus, PreparedAnswer, UnstagedAnswer};
use cutover_core::plan::Plan;
use cutover_core::report::ProjectStatus;
use cutover_core::status::{DrainedAnswer, Event, HealthAnswer, UpgradeAnswer};
use cutover_core::wire::ErrorBody;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

const DOC: &str = include_str!("../../../docs/api.md");

/// `(marker, the JSON block after it, its line in the doc)`.
fn marked_examples() -> Vec<(String, String, usize)> {
    let lines: Vec<&str> = DOC.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(kind) = line
            .strip_prefix("<!-- wire: ")
            .and_then(|l| l.strip_suffix(" -->"))
        else {
            continue;
        };
        assert_eq!(
            lines.get(i + 1).copied(),
            Some("```json"),
            "docs/api.md:{}: a wire marker must stand right above a ```json block",
            i + 1
        );
        let body: Vec<&str> = lines[i + 2..]
            .iter()
            .take_while(|l| **l != "```")
            .copied()
            .collect();
        out.push((kind.to_string(), body.join("\n"), i + 3));
    }
    out
}

/// Parses `json` as `T` and checks it reads back the same: a field the type
/// does not have, or spells differently, fails here.
fn round_trip<T: DeserializeOwned + Serialize>(json: &str, at: usize) {
    let written: Value = serde_json::from_str(json)
        .unwrap_or_else(|e| panic!("docs/api.md:{at}: not JSON: {e}\n{json}"));
    let parsed: T = serde_json::from_value(written.clone()).unwrap_or_else(|e| {
        panic!(
            "docs/api.md:{at}: not a {}: {e}",
            std::any::type_name::<T>()
        )
    });
    let back = serde_json::to_value(&parsed).unwrap();
    assert_eq!(
        strip_nulls(back),
        strip_nulls(written),
        "docs/api.md:{at}: the example says more or other than {}",
        std::any::type_name::<T>()
    );
}

/// `null` and a missing field mean the same on the wire.
fn strip_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(strip_nulls).collect()),
        v => v,
    }
}

#[test]
fn every_marked_example_is_a_wire_value() {
    let examples = marked_examples();
    let kinds: Vec<&str> = examples.iter().map(|(k, _, _)| k.as_str()).collect();
    for expected in [
        "ErrorBody",
        "Event lines",
        "Plan",
        "ProjectStatus",
        "HealthAnswer",
        "DrainedAnswer",
        "UpgradeAnswer",
        "PreparedAnswer",
        "UnstagedAnswer",
        "ClusterStatus",
    ] {
        assert!(
            kinds.contains(&expected),
            "docs/api.md lost its {expected} example"
        );
    }
    for (kind, json, at) in &examples {
        match kind.as_str() {
            "ErrorBody" => round_trip::<ErrorBody>(json, *at),
            "Plan" => round_trip::<Plan>(json, *at),
            "ProjectStatus" => round_trip::<ProjectStatus>(json, *at),
            "HealthAnswer" => round_trip::<HealthAnswer>(json, *at),
            "DrainedAnswer" => round_trip::<DrainedAnswer>(json, *at),
            "UpgradeAnswer" => round_trip::<UpgradeAnswer>(json, *at),
            "PreparedAnswer" => round_trip::<PreparedAnswer>(json, *at),
            "UnstagedAnswer" => round_trip::<UnstagedAnswer>(json, *at),
            "ClusterStatus" => round_trip::<ClusterStatus>(json, *at),
            "Event lines" => {
                for (i, line) in json.lines().enumerate() {
                    round_trip::<Event>(line, at + i);
                }
            }
            other => panic!("docs/api.md:{at}: no wire type named {other:?}"),
        }
    }
}
