//! Loading one compose file from memory, for the smaller test files.
#![allow(dead_code)] // each test file uses a part of it

use std::collections::BTreeMap;
use std::path::PathBuf;

use cutover_core::compose::{load, ComposeError, ComposeFile, LoadInput, NoFiles, ResolvedProject};

/// `compose.yaml` of `src` in `/srv/<name>`, with no environment.
pub fn load_yaml(src: &str) -> Result<ResolvedProject, ComposeError> {
    let input = LoadInput {
        files: vec![ComposeFile {
            path: PathBuf::from("compose.yaml"),
            content: src.into(),
        }],
        project_dir: PathBuf::from("/srv/shop"),
        project_name: None,
        env: BTreeMap::new(),
    };
    load(&input, &NoFiles)
}

/// [`load_yaml`] that must succeed.
pub fn ok(src: &str) -> ResolvedProject {
    load_yaml(src).unwrap_or_else(|e| panic!("{e}"))
}

/// Errors and warnings as the CLI prints them: each with its hint.
pub trait Shown {
    fn shown(&self) -> String;
}

impl Shown for cutover_core::compose::Diagnostic {
    fn shown(&self) -> String {
        cutover_core::diag::Diagnose::report(self).to_string()
    }
}

impl Shown for cutover_core::compose::ComposeError {
    fn shown(&self) -> String {
        let shown: Vec<String> = self.errors.iter().map(Shown::shown).collect();
        shown.join("\n")
    }
}
