//! What the deploy engine reports to `/metrics`: operations by result, and
//! each app's last time from asking to switched. Kept here, beside the
//! proxy's own counters, so one scrape of the control API has both and the
//! daemon needs no second registry.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use cutover_core::sync::lock;

use crate::metrics::escape;

#[derive(Default)]
pub struct OperationMetrics {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// (project, operation, result) → count.
    operations: BTreeMap<(String, String, String), u64>,
    /// (project, service) → the last deploy's or rollback's time to switch.
    to_switch: BTreeMap<(String, String), Duration>,
    /// (project, service) → versions kept for rollback after the last one.
    kept: BTreeMap<(String, String), usize>,
}

impl OperationMetrics {
    /// A deploy, rollback or down (or a hook) ended with `result`.
    pub fn operation(&self, project: &str, operation: &str, result: &str) {
        *lock(&self.state)
            .operations
            .entry((project.into(), operation.into(), result.into()))
            .or_default() += 1;
    }

    /// `service` switched `took` after its operation was asked for, with
    /// `kept` versions left for rollback.
    pub fn switched(&self, project: &str, service: &str, took: Duration, kept: usize) {
        let mut st = lock(&self.state);
        let key = (project.to_string(), service.to_string());
        st.to_switch.insert(key.clone(), took);
        st.kept.insert(key, kept);
    }

    /// A project taken down: its gauges go (its counters stay, as counters do).
    pub fn forget(&self, project: &str) {
        let mut st = lock(&self.state);
        st.to_switch.retain(|(p, _), _| p != project);
        st.kept.retain(|(p, _), _| p != project);
    }

    pub(crate) fn render(&self, out: &mut String) {
        let st = lock(&self.state);
        out.push_str(
            "# HELP cutover_operations_total Deploys, rollbacks, downs and hooks, by result.\n",
        );
        out.push_str("# TYPE cutover_operations_total counter\n");
        for ((project, op, result), n) in &st.operations {
            let _ = writeln!(
                out,
                "cutover_operations_total{{project=\"{}\",operation=\"{}\",result=\"{}\"}} {n}",
                escape(project),
                escape(op),
                escape(result)
            );
        }
        out.push_str("# HELP cutover_last_switch_seconds Time from the last deploy or rollback being asked for to the app's switch, build and pull included.\n");
        out.push_str("# TYPE cutover_last_switch_seconds gauge\n");
        for ((project, service), d) in &st.to_switch {
            let _ = writeln!(
                out,
                "cutover_last_switch_seconds{{project=\"{}\",service=\"{}\"}} {:.3}",
                escape(project),
                escape(service),
                d.as_secs_f64()
            );
        }
        out.push_str("# HELP cutover_kept_versions Old versions of the app kept for rollback after its last switch.\n");
        out.push_str("# TYPE cutover_kept_versions gauge\n");
        for ((project, service), n) in &st.kept {
            let _ = writeln!(
                out,
                "cutover_kept_versions{{project=\"{}\",service=\"{}\"}} {n}",
                escape(project),
                escape(service)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_gauges_render_as_prometheus_reads_them() {
        let m = OperationMetrics::default();
        m.operation("athens", "deploy", "ok");
        m.operation("athens", "deploy", "ok");
        m.operation("athens", "deploy", "failed");
        m.switched("athens", "backend", Duration::from_millis(4250), 2);
        let mut out = String::new();
        m.render(&mut out);
        assert!(out.contains("cutover_operations_total{project=\"athens\",operation=\"deploy\",result=\"ok\"} 2\n"), "{out}");
        assert!(out.contains("result=\"failed\"} 1\n"), "{out}");
        assert!(
            out.contains(
                "cutover_last_switch_seconds{project=\"athens\",service=\"backend\"} 4.250\n"
            ),
            "{out}"
        );
        assert!(
            out.contains("cutover_kept_versions{project=\"athens\",service=\"backend\"} 2\n"),
            "{out}"
        );
        m.forget("athens");
        let mut out = String::new();
        m.render(&mut out);
        assert!(!out.contains("cutover_kept_versions{"), "{out}");
        assert!(out.contains("result=\"ok\"} 2"), "{out}");
    }
}
