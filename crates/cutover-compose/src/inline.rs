//! Secret and config files replaced by their contents, for a deploy that
//! does not mount them from this machine's disk: one sent to a daemon on
//! another machine, or one a Swarm stores as its own objects.

use cutover_core::compose::{FileRef, FileSource, ResolvedProject};
use cutover_core::diag::Report;

/// Reads every `file:` secret and config of the project into its text.
/// `read_where` says in the hint where the files are read (`where you run
/// cutover`, `on the deploy engine's host`).
pub fn inline_files(project: &mut ResolvedProject, read_where: &str) -> Result<(), Report> {
    let services = project
        .apps
        .iter_mut()
        .map(|a| &mut a.service)
        .chain(project.accessories.iter_mut().map(|a| &mut a.service));
    for spec in services {
        let name = spec.name.clone();
        for (kind, file) in spec
            .secrets
            .iter_mut()
            .map(|f| ("secret", f))
            .chain(spec.configs.iter_mut().map(|f| ("config", f)))
        {
            inline(&name, kind, file, read_where)?;
        }
    }
    Ok(())
}

fn inline(service: &str, kind: &str, file: &mut FileRef, read_where: &str) -> Result<(), Report> {
    let FileSource::File(path) = &file.from else {
        return Ok(());
    };
    let bytes = std::fs::read(path).map_err(|e| {
        Report::new(format!(
            "services.{service}.{kind}s: {}: cannot read {}: {e}",
            file.source,
            path.display()
        ))
        .hint(format!("the file is read {read_where}"))
    })?;
    let text = String::from_utf8(bytes).map_err(|_| {
        Report::new(format!(
            "services.{service}.{kind}s: {}: {} is not UTF-8 text",
            file.source,
            path.display()
        ))
        .hint(
            "a secret read from a file travels with the deploy as text: base64-encode a binary one",
        )
    })?;
    file.from = FileSource::Content(text);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{load_project, LoadOptions};

    /// A project whose accessory `db` has the secret `pw` from `./pw.txt`.
    fn project(dir: &std::path::Path) -> ResolvedProject {
        std::fs::write(
            dir.join("compose.yaml"),
            "name: shop\nservices:\n  db:\n    image: postgres:16\n    secrets: [pw]\nsecrets:\n  pw: {file: ./pw.txt}\n",
        )
        .unwrap();
        load_project(&LoadOptions {
            working_dir: dir.to_path_buf(),
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn a_file_becomes_its_text() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pw.txt"), "hunter2\n").unwrap();
        let mut p = project(dir.path());
        inline_files(&mut p, "here").unwrap();
        assert_eq!(
            p.accessories[0].service.secrets[0].from,
            FileSource::Content("hunter2\n".into())
        );
    }

    #[test]
    fn a_missing_file_names_the_service_and_where_it_was_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = project(dir.path());
        let e = inline_files(&mut p, "on the deploy engine's host").unwrap_err();
        assert!(
            e.message
                .starts_with("services.db.secrets: pw: cannot read"),
            "{}",
            e.message
        );
        assert_eq!(
            e.hint.as_deref(),
            Some("the file is read on the deploy engine's host")
        );
    }
}
