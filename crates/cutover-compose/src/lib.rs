//! The file side of compose loading: find the files like Docker Compose does,
//! read them, `.env` and `env_file:` entries, then hand the contents to the
//! pure resolver in `cutover_core::compose`.
//!
//! The process environment is passed in, never read here, so the CLI decides
//! what it is and tests do not depend on the machine they run on. This is
//! the only IO of compose loading; it never talks to Docker.
#![forbid(unsafe_code)]

mod inline;
pub use inline::inline_files;

use cutover_core::diag::{Diagnose, Report};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cutover_core::compose::{
    load, parse_dotenv, ComposeError, ComposeFile, LoadInput, ProjectFiles, ResolvedProject, Unset,
    DEFAULT_FILE_NAMES,
};

#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `-f`, in order; empty means discover in `working_dir` and its parents.
    pub files: Vec<PathBuf>,
    /// `-p`.
    pub project_name: Option<String>,
    /// `--env-file`; `.env` beside the first compose file when unset.
    pub env_file: Option<PathBuf>,
    /// `--profile`, in order; when given they replace `COMPOSE_PROFILES`.
    pub profiles: Vec<String>,
    /// Where relative `-f` / `--env-file` paths and discovery start (the cwd).
    pub working_dir: PathBuf,
    /// The process environment; it wins over `.env`.
    pub process_env: BTreeMap<String, String>,
    /// What `-f -` reads: the compose file from stdin, read by the caller
    /// (stdin can be read once, and this module does no terminal IO).
    pub stdin: Option<String>,
}

/// How a compose file read from stdin (`-f -`) is named in messages.
pub const STDIN_NAME: &str = "<stdin>";

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "no compose file found in {} or its parents (looked for {})",
        dir.display(),
        DEFAULT_FILE_NAMES.join(", ")
    )]
    NotFound { dir: PathBuf },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}:{column}: {message}", path.display())]
    EnvFile {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
        hint: Option<String>,
    },
    #[error("{0}")]
    Compose(#[from] ComposeError),
}

impl Diagnose for LoadError {
    fn hint(&self) -> Option<String> {
        match self {
            LoadError::NotFound { .. } => {
                Some("run cutover in the project's folder or pass -f <file>".into())
            }
            LoadError::EnvFile { hint, .. } => hint.clone(),
            LoadError::Read { path, source } => match source.kind() {
                std::io::ErrorKind::NotFound => Some(format!(
                    "check the path: {} is read from the folder cutover runs in{}",
                    path.display(),
                    if path.is_relative() {
                        ", or pass an absolute path"
                    } else {
                        ""
                    }
                )),
                std::io::ErrorKind::PermissionDenied => {
                    Some("make the file readable by the user running cutover".into())
                }
                _ => None,
            },
            LoadError::Compose(_) => None,
        }
    }
}

/// The compose file for a folder: the first of Compose's names found in `dir`,
/// else in its nearest parent that has one.
pub fn discover(dir: &Path) -> Result<PathBuf, LoadError> {
    for d in dir.ancestors() {
        if let Some(found) = DEFAULT_FILE_NAMES
            .iter()
            .map(|n| d.join(n))
            .find(|p| p.is_file())
        {
            return Ok(found);
        }
    }
    Err(LoadError::NotFound {
        dir: dir.to_path_buf(),
    })
}

/// `compose.override.yaml` beside `compose.yaml` (and the same for the other
/// names), which Compose merges automatically when no `-f` is given.
fn override_for(file: &Path) -> Option<PathBuf> {
    let stem = file.file_stem()?.to_str()?;
    let dir = file.parent()?;
    ["yaml", "yml"]
        .iter()
        .map(|ext| dir.join(format!("{stem}.override.{ext}")))
        .find(|p| p.is_file())
}

/// Reads a `.env` file as Compose does, its variables resolved against
/// `env` (the process environment) first, then its own earlier keys.
/// `Ok(None)` when it does not exist.
pub fn read_dotenv(
    path: &Path,
    env: &BTreeMap<String, String>,
) -> Result<Option<BTreeMap<String, String>>, LoadError> {
    let Some(content) = read_if_exists(path)? else {
        return Ok(None);
    };
    let mut vars = BTreeMap::new();
    parse_dotenv(
        &content,
        &mut vars,
        &|k| env.get(k).cloned(),
        &mut Unset::new(),
    )
    .map_err(|e| LoadError::EnvFile {
        path: path.to_path_buf(),
        line: e.line,
        column: e.column,
        message: e.message,
        hint: e.hint,
    })?;
    Ok(Some(vars))
}

fn read_if_exists(path: &Path) -> Result<Option<String>, LoadError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(LoadError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// `env_file:` entries, read from disk.
pub struct FsFiles;

impl ProjectFiles for FsFiles {
    fn read_file(&self, path: &Path) -> Result<Option<String>, Report> {
        read_if_exists(path).map_err(|e| e.report())
    }
}

/// Shown in messages as the user would type it: relative to the working
/// directory when inside it.
fn shown(path: &Path, working_dir: &Path) -> PathBuf {
    path.strip_prefix(working_dir)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| path.to_path_buf())
}

/// What [`load_project`] read, before resolution; useful to print which files
/// and env file were used.
#[derive(Debug, Clone)]
pub struct Sources {
    pub input: LoadInput,
    /// The `.env` / `--env-file` that was read, if any.
    pub env_file: Option<PathBuf>,
}

/// `COMPOSE_FILE`, as Compose reads it when no `-f` is given: from the
/// environment, else from `.env` in the working directory; split on
/// `COMPOSE_PATH_SEPARATOR` (`:` by default).
fn compose_file_var(opts: &LoadOptions) -> Result<Vec<PathBuf>, LoadError> {
    let dotenv = match opts.process_env.get("COMPOSE_FILE") {
        Some(_) => None,
        None => read_dotenv(&opts.working_dir.join(".env"), &opts.process_env)?,
    };
    let lookup = |key: &str| {
        opts.process_env
            .get(key)
            .or_else(|| dotenv.as_ref()?.get(key))
            .cloned()
    };
    let Some(list) = lookup("COMPOSE_FILE").filter(|v| !v.is_empty()) else {
        return Ok(Vec::new());
    };
    let sep = lookup("COMPOSE_PATH_SEPARATOR")
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| ":".into());
    Ok(list
        .split(sep.as_str())
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .collect())
}

pub fn read_sources(opts: &LoadOptions) -> Result<Sources, LoadError> {
    let named = if opts.files.is_empty() {
        compose_file_var(opts)?
    } else {
        opts.files.clone()
    };
    // (shown name, absolute path); `None` for `-`, stdin.
    let paths: Vec<(PathBuf, Option<PathBuf>)> = if named.is_empty() {
        let first = discover(&opts.working_dir)?;
        let mut v = vec![first.clone()];
        v.extend(override_for(&first));
        v.into_iter()
            .map(|p| (shown(&p, &opts.working_dir), Some(p)))
            .collect()
    } else {
        named
            .iter()
            .map(|f| {
                if f.as_os_str() == "-" {
                    (PathBuf::from(STDIN_NAME), None)
                } else {
                    (f.clone(), Some(opts.working_dir.join(f)))
                }
            })
            .collect()
    };
    if paths.iter().filter(|(_, abs)| abs.is_none()).count() > 1 {
        return Err(stdin_error(
            "`-f -` is given more than once; stdin holds one file",
        ));
    }
    let mut files = Vec::new();
    for (display, abs) in &paths {
        let content = match abs {
            Some(abs) => std::fs::read_to_string(abs).map_err(|source| LoadError::Read {
                path: display.clone(),
                source,
            })?,
            None => opts
                .stdin
                .clone()
                .ok_or_else(|| stdin_error("nothing was read from stdin for `-f -`"))?,
        };
        files.push(ComposeFile {
            path: display.clone(),
            content,
        });
    }
    // Compose's rule: the first file's folder, or the working directory when
    // the first file comes from stdin.
    let project_dir = paths[0]
        .1
        .as_deref()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| opts.working_dir.clone());

    let (env_path, required) = match &opts.env_file {
        Some(p) => (opts.working_dir.join(p), true),
        None => (project_dir.join(".env"), false),
    };
    let dotenv = read_dotenv(&env_path, &opts.process_env)?;
    if dotenv.is_none() && required {
        return Err(LoadError::Read {
            path: env_path,
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "--env-file does not exist"),
        });
    }
    let env_file = dotenv.is_some().then_some(env_path);
    let mut env = dotenv.unwrap_or_default();
    env.extend(opts.process_env.iter().map(|(k, v)| (k.clone(), v.clone())));
    // The resolver reads the active profiles from COMPOSE_PROFILES, as
    // Compose does when no --profile is given.
    if !opts.profiles.is_empty() {
        env.insert("COMPOSE_PROFILES".into(), opts.profiles.join(","));
    }

    Ok(Sources {
        input: LoadInput {
            files,
            project_dir,
            project_name: opts.project_name.clone(),
            env,
        },
        env_file,
    })
}

fn stdin_error(message: &str) -> LoadError {
    LoadError::Read {
        path: PathBuf::from(STDIN_NAME),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, message),
    }
}

/// Finds, reads and resolves the project.
pub fn load_project(opts: &LoadOptions) -> Result<ResolvedProject, LoadError> {
    let sources = read_sources(opts)?;
    Ok(load(&sources.input, &FsFiles)?)
}

impl From<LoadError> for Report {
    fn from(e: LoadError) -> Self {
        e.report()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn write(dir: &Path, name: &str, content: &str) {
        let p = dir.join(name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }

    fn opts(dir: &Path) -> LoadOptions {
        LoadOptions {
            working_dir: dir.to_path_buf(),
            ..LoadOptions::default()
        }
    }

    #[test]
    fn discovery_follows_compose_precedence() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        write(d, "docker-compose.yaml", "");
        assert_eq!(discover(d).unwrap(), d.join("docker-compose.yaml"));
        write(d, "docker-compose.yml", "");
        assert_eq!(discover(d).unwrap(), d.join("docker-compose.yml"));
        write(d, "compose.yml", "");
        assert_eq!(discover(d).unwrap(), d.join("compose.yml"));
        write(d, "compose.yaml", "");
        assert_eq!(discover(d).unwrap(), d.join("compose.yaml"));
    }

    #[test]
    fn discovery_walks_up_and_reports_where_it_looked() {
        let tmp = tempfile::tempdir().unwrap();
        let sub = tmp.path().join("a/b");
        fs::create_dir_all(&sub).unwrap();
        let err = discover(&sub).unwrap_err().report().to_string();
        assert!(
            err.starts_with(&format!("no compose file found in {}", sub.display())),
            "{err}"
        );
        assert!(err.contains("\nhint: "), "{err}");
        write(tmp.path(), "a/compose.yaml", "");
        assert_eq!(discover(&sub).unwrap(), tmp.path().join("a/compose.yaml"));
    }

    #[test]
    fn dotenv_beside_the_first_file_and_process_env_wins() {
        let tmp = tempfile::tempdir().unwrap();
        let proj = tmp.path().join("athens");
        write(&proj, "compose.yaml", "services:\n  web:\n    image: ${IMG}\n    environment: {TAG: '${TAG}', FROM: '${FROM}'}\n");
        write(
            &proj,
            ".env",
            "IMG=from-dotenv:1\nTAG=dotenv\nFROM=dotenv\n",
        );
        // A .env in the working directory is not the project's.
        write(tmp.path(), ".env", "IMG=wrong\n");
        let mut o = opts(tmp.path());
        o.files = vec!["athens/compose.yaml".into()];
        o.process_env = BTreeMap::from([("TAG".into(), "process".into())]);
        let p = load_project(&o).unwrap();
        let web = &p.accessory("web").unwrap().service;
        assert_eq!(web.image, "from-dotenv:1");
        assert_eq!(web.environment["TAG"], "process");
        assert_eq!(web.environment["FROM"], "dotenv");
        assert_eq!(p.name, "athens");
        assert_eq!(p.project_dir, proj);
    }

    #[test]
    fn env_file_flag_replaces_dotenv() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        write(
            d,
            "compose.yaml",
            "services:\n  web:\n    image: ${IMG:-none}\n",
        );
        write(d, ".env", "IMG=dotenv:1\n");
        write(d, "envs/staging.env", "IMG=staging:1\n");
        let mut o = opts(d);
        o.env_file = Some("envs/staging.env".into());
        assert_eq!(
            load_project(&o)
                .unwrap()
                .accessory("web")
                .unwrap()
                .service
                .image,
            "staging:1"
        );
        o.env_file = Some("envs/missing.env".into());
        let err = load_project(&o).unwrap_err().to_string();
        assert!(
            err.contains("missing.env") && err.contains("does not exist"),
            "{err}"
        );
    }

    #[test]
    fn multiple_files_merge_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        write(
            d,
            "compose.yaml",
            "name: shop\nservices:\n  web:\n    image: app:1\n    x-cutover: {port: 8080}\n",
        );
        write(
            d,
            "prod/compose.prod.yaml",
            "services:\n  web:\n    image: app:2\n    volumes: [./data:/data]\n",
        );
        let mut o = opts(d);
        o.files = vec!["compose.yaml".into(), "prod/compose.prod.yaml".into()];
        let p = load_project(&o).unwrap();
        let web = &p.app("web").unwrap().service;
        assert_eq!(web.image, "app:2");
        // Relative paths of every file resolve against the first file's folder.
        assert_eq!(
            web.mounts[0],
            cutover_core::compose::Mount::Bind {
                source: d.join("data"),
                target: "/data".into(),
                read_only: false,
                create_host_path: true,
                selinux: None,
            }
        );
    }

    #[test]
    fn compose_file_variable_names_the_files_when_there_is_no_dash_f() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        write(
            d,
            "compose.yaml",
            "services:\n  web: {image: app:default}\n",
        );
        write(d, "base.yaml", "services:\n  web: {image: app:base}\n");
        write(d, "prod.yaml", "services:\n  web: {image: app:prod}\n");
        let image = |o: &LoadOptions| {
            load_project(o)
                .unwrap()
                .accessory("web")
                .unwrap()
                .service
                .image
                .clone()
        };
        let mut o = opts(d);
        o.process_env = BTreeMap::from([("COMPOSE_FILE".into(), "base.yaml:prod.yaml".into())]);
        assert_eq!(image(&o), "app:prod");
        o.process_env = BTreeMap::from([
            ("COMPOSE_FILE".into(), "prod.yaml;base.yaml".into()),
            ("COMPOSE_PATH_SEPARATOR".into(), ";".into()),
        ]);
        assert_eq!(image(&o), "app:base");
        // -f wins over the variable.
        o.files = vec!["compose.yaml".into()];
        assert_eq!(image(&o), "app:default");

        // From .env in the working directory, as Compose reads it.
        write(d, ".env", "COMPOSE_FILE=base.yaml\n");
        assert_eq!(image(&opts(d)), "app:base");
        // A file it names that is missing is named in the error.
        write(d, ".env", "COMPOSE_FILE=missing.yaml\n");
        let err = load_project(&opts(d)).unwrap_err().to_string();
        assert!(err.starts_with("cannot read missing.yaml"), "{err}");
    }

    #[test]
    fn compose_project_name_comes_after_dash_p_and_before_name() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        write(
            d,
            "compose.yaml",
            "name: fromfile\nservices:\n  web: {image: app}\n",
        );
        let name = |o: &LoadOptions| load_project(o).map(|p| p.name);
        assert_eq!(name(&opts(d)).unwrap(), "fromfile");
        write(d, ".env", "COMPOSE_PROJECT_NAME=fromdotenv\n");
        assert_eq!(name(&opts(d)).unwrap(), "fromdotenv");
        let mut o = opts(d);
        o.process_env = BTreeMap::from([("COMPOSE_PROJECT_NAME".into(), "fromenv".into())]);
        assert_eq!(name(&o).unwrap(), "fromenv");
        o.project_name = Some("fromflag".into());
        assert_eq!(name(&o).unwrap(), "fromflag");

        o.project_name = None;
        o.process_env = BTreeMap::from([("COMPOSE_PROJECT_NAME".into(), "Bad Name".into())]);
        let err = name(&o).unwrap_err().to_string();
        assert!(
            err.contains("COMPOSE_PROJECT_NAME \"Bad Name\" is not a valid project name"),
            "{err}"
        );
    }

    #[test]
    fn override_file_is_merged_when_discovering() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        write(d, "compose.yaml", "services:\n  web: {image: app:1}\n");
        write(
            d,
            "compose.override.yml",
            "services:\n  web: {image: app:dev}\n",
        );
        assert_eq!(
            load_project(&opts(d))
                .unwrap()
                .accessory("web")
                .unwrap()
                .service
                .image,
            "app:dev"
        );
    }

    #[test]
    fn env_file_entries_are_relative_to_the_project() {
        let tmp = tempfile::tempdir().unwrap();
        let proj = tmp.path().join("proj");
        write(&proj, "compose.yaml", "services:\n  web:\n    image: app\n    env_file: [config/app.env, {path: config/opt.env, required: false}]\n    environment: {B: override}\n");
        write(
            &proj,
            "config/app.env",
            "# comment\nA=1\nB=2\nQUOTED=\"a b\"\n",
        );
        let mut o = opts(tmp.path());
        o.files = vec!["proj/compose.yaml".into()];
        let env = load_project(&o)
            .unwrap()
            .accessory("web")
            .unwrap()
            .service
            .environment
            .clone();
        assert_eq!(
            env,
            BTreeMap::from([
                ("A".into(), "1".into()),
                ("B".into(), "override".into()),
                ("QUOTED".into(), "a b".into())
            ])
        );
        // A required env_file that is missing names the compose line.
        write(
            &proj,
            "compose.yaml",
            "services:\n  web:\n    image: app\n    env_file: gone.env\n",
        );
        let err = load_project(&o).unwrap_err().to_string();
        assert!(
            err.starts_with("proj/compose.yaml:4:5: services.web.env_file: env file "),
            "{err}"
        );
        assert!(err.contains("gone.env does not exist"), "{err}");
    }

    #[test]
    fn bad_dotenv_line_is_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        write(d, "compose.yaml", "services:\n  web: {image: app}\n");
        write(d, ".env", "GOOD=1\nBAD LINE\n");
        let err = load_project(&opts(d)).unwrap_err().to_string();
        assert!(
            err.contains(".env:2:1: variable name \"BAD LINE\" contains a space"),
            "{err}"
        );
    }

    #[test]
    fn project_name_precedence() {
        let tmp = tempfile::tempdir().unwrap();
        let proj = tmp.path().join("My_Project");
        write(&proj, "compose.yaml", "services:\n  web: {image: app}\n");
        let mut o = opts(&proj);
        assert_eq!(load_project(&o).unwrap().name, "my_project");
        write(
            &proj,
            "compose.yaml",
            "name: from-file\nservices:\n  web: {image: app}\n",
        );
        assert_eq!(load_project(&o).unwrap().name, "from-file");
        o.project_name = Some("from-flag".into());
        assert_eq!(load_project(&o).unwrap().name, "from-flag");
    }

    #[test]
    fn dash_reads_the_compose_file_from_stdin_beside_the_working_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("Work_Dir");
        // `.env` and relative paths resolve against the working directory,
        // as Compose does for `-f -`.
        write(&d, ".env", "TAG=7\n");
        write(
            &d,
            "override.yaml",
            "services:\n  web:\n    environment: [B=2]\n",
        );
        let mut o = opts(&d);
        o.files = vec!["-".into(), "override.yaml".into()];
        o.stdin = Some("services:\n  web:\n    image: app:${TAG}\n    environment: [A=1]\n".into());
        let p = load_project(&o).unwrap();
        assert_eq!(p.name, "work_dir");
        assert_eq!(p.project_dir, d);
        let web = &p.accessories[0].service;
        assert_eq!(web.image, "app:7");
        let env: Vec<_> = web.environment.keys().map(String::as_str).collect();
        assert_eq!(env, ["A", "B"]);

        // Errors name stdin where they would name the file.
        o.files = vec!["-".into()];
        o.stdin = Some("services:\n  web:\n    imagee: app\n".into());
        let err = load_project(&o).unwrap_err().to_string();
        assert!(
            err.contains("<stdin>:3:5: services.web.imagee: unknown key `imagee`"),
            "{err}"
        );

        o.files = vec!["-".into(), "-".into()];
        let err = load_project(&o).unwrap_err().to_string();
        assert!(err.contains("`-f -` is given more than once"), "{err}");

        o.files = vec!["-".into()];
        o.stdin = None;
        let err = load_project(&o).unwrap_err().to_string();
        assert!(err.contains("nothing was read from stdin"), "{err}");
    }

    #[test]
    fn missing_f_file_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let mut o = opts(tmp.path());
        o.files = vec!["nope.yaml".into()];
        let err = load_project(&o).unwrap_err().to_string();
        assert!(err.starts_with("cannot read nope.yaml: "), "{err}");
    }
}
