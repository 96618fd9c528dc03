//! Compose files to a resolved project: the input side of `cutover deploy`.
//!
//! Pure: the caller reads the files and the environment and passes them in
//! ([`LoadInput`], [`ProjectFiles`]); cutover-docker's `compose` module does
//! that over the filesystem.

mod canonical;
mod dotenv;
mod hash;
mod interpolate;
mod locate;
mod merge;
pub(crate) mod model;
mod options;
mod resolve;

pub use canonical::{canonical, go_duration};
pub use dotenv::{parse_dotenv, DotenvError};
pub use hash::{canonical_json, changed_fields, config_hash, env_changes, version_id, EnvChanges};
pub use interpolate::{interpolate, InterpolateError, Unset};
pub use locate::{locate, KeyPath, Position, Positions, Seg};
pub use model::*;
pub use resolve::{
    called_on, is_valid_project_name, load, normalize_project_name, parse_port_short, shell_split,
    ComposeFile, LoadInput, NoFiles, ProjectFiles, DATASTORE_PORTS,
};

/// File names tried in a folder when no `-f` is given, in Compose's order.
pub const DEFAULT_FILE_NAMES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
];
