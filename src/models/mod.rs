//! The model repository: `models/<name>/config.toml` plus `models/<name>/<version>/<file>`.
//! A model can also be given as a bare path to a `model.json` (TF.js) or `.onnx` file.
//! `config` holds the typed config (task, input spec, decoder); `heads` the decoders that
//! turn a model's outputs into typed results.

pub mod config;
pub mod heads;

pub use config::{BatchingConfig, Decoder, Format, InputConfig, ModelConfig, OutputConfig, Task};

use crate::graph::{self, Graph, GraphError};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("model repository {0}: {1}")]
    Repo(String, String),
    #[error("model '{0}' not found (not a repository name, nor a model file)")]
    NotFound(String),
    #[error("{path}: invalid config: {msg}")]
    Config { path: String, msg: String },
    #[error("model '{name}' has no version directory with '{file}'; run scripts/fetch-models")]
    NoVersion { name: String, file: String },
    #[error("{0}: unsupported model format (expected model.json)")]
    Format(String),
    #[error(transparent)]
    Graph(#[from] GraphError),
}

/// A model resolved to a file on disk.
#[derive(Clone, Debug)]
pub struct ResolvedModel {
    pub name: String,
    pub version: Option<u64>,
    pub path: PathBuf,
    pub format: Format,
    pub config: Option<ModelConfig>,
}

impl ResolvedModel {
    /// The model's graph, with the outputs its config names (all when it names none).
    pub fn load_graph(&self) -> Result<Graph, RepoError> {
        let mut g = match self.format {
            Format::Tfjs => graph::tfjs::load(&self.path)?,
            Format::Onnx => graph::onnx::load(&self.path)?,
        };
        if let Some(c) = &self.config {
            g.select_outputs(&c.output.outputs)?;
        }
        Ok(g)
    }
}

/// A directory of models.
#[derive(Clone, Debug)]
pub struct Repository {
    pub root: PathBuf,
}

/// One entry of `walkout models list`.
#[derive(Clone, Debug)]
pub struct ModelEntry {
    pub name: String,
    pub config: Result<ModelConfig, String>,
    pub versions: Vec<u64>,
}

impl Repository {
    pub fn open(root: impl Into<PathBuf>) -> Self {
        Repository { root: root.into() }
    }

    /// The default repository: `$WALKOUT_MODEL_REPOSITORY`, else `./models`.
    pub fn default_root() -> PathBuf {
        std::env::var_os("WALKOUT_MODEL_REPOSITORY").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("models"))
    }

    pub fn read_config(dir: &Path) -> Result<ModelConfig, RepoError> {
        let p = dir.join("config.toml");
        let text = std::fs::read_to_string(&p).map_err(|e| RepoError::Config { path: p.display().to_string(), msg: e.to_string() })?;
        ModelConfig::parse(&text).map_err(|msg| RepoError::Config { path: p.display().to_string(), msg })
    }

    fn versions(dir: &Path, file: Option<&str>) -> Vec<u64> {
        let mut v: Vec<u64> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
            .filter(|ver: &u64| file.is_none_or(|f| dir.join(ver.to_string()).join(f).is_file()))
            .collect();
        v.sort_unstable();
        v
    }

    pub fn list(&self) -> Result<Vec<ModelEntry>, RepoError> {
        let rd = std::fs::read_dir(&self.root).map_err(|e| RepoError::Repo(self.root.display().to_string(), e.to_string()))?;
        let mut out = Vec::new();
        for e in rd.flatten() {
            let dir = e.path();
            if !dir.join("config.toml").is_file() {
                continue;
            }
            let config = Self::read_config(&dir).map_err(|e| e.to_string());
            let file = config.as_ref().ok().map(|c| c.file.clone());
            out.push(ModelEntry {
                name: e.file_name().to_string_lossy().into_owned(),
                versions: Self::versions(&dir, file.as_deref()),
                config,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Resolves a repository name (`name` or `name:version`) or a path to a model file.
    pub fn resolve(&self, spec: &str) -> Result<ResolvedModel, RepoError> {
        let (name, ver) = match spec.rsplit_once(':') {
            Some((n, v)) if v.chars().all(|c| c.is_ascii_digit()) && !v.is_empty() => (n, v.parse().ok()),
            _ => (spec, None),
        };
        let dir = self.root.join(name);
        if !name.contains('/') && dir.join("config.toml").is_file() {
            let config = Self::read_config(&dir)?;
            let versions = Self::versions(&dir, Some(&config.file));
            let version = match ver {
                Some(v) if versions.contains(&v) => v,
                Some(_) | None if versions.is_empty() => return Err(RepoError::NoVersion { name: name.into(), file: config.file.clone() }),
                Some(v) => return Err(RepoError::NotFound(format!("{name}:{v}"))),
                None => *versions.last().unwrap_or(&1),
            };
            let path = dir.join(version.to_string()).join(&config.file);
            // no symlink out of the repository, no device file
            let inside = match (path.canonicalize(), self.root.canonicalize()) {
                (Ok(f), Ok(root)) => f.starts_with(root) && f.is_file(),
                _ => false,
            };
            if !inside {
                return Err(RepoError::Config {
                    path: path.display().to_string(),
                    msg: "the model file must be a regular file inside the repository".into(),
                });
            }
            return Ok(ResolvedModel { name: name.to_string(), version: Some(version), path, format: config.format, config: Some(config) });
        }
        let p = Path::new(spec);
        if p.is_file() {
            let format = match p.extension().and_then(|e| e.to_str()) {
                Some("json") => Format::Tfjs,
                Some("onnx") => Format::Onnx,
                _ => return Err(RepoError::Format(spec.to_string())),
            };
            // A model file inside a repository version directory picks up its config.
            let config = p.parent().and_then(|v| v.parent()).and_then(|d| Self::read_config(d).ok());
            return Ok(ResolvedModel {
                name: p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
                version: None,
                path: p.to_path_buf(),
                format,
                config,
            });
        }
        Err(RepoError::NotFound(spec.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use crate::graph::{DType, Graph};

    #[test]
    fn a_config_picks_and_orders_the_outputs_and_an_unknown_one_names_those_there_are() {
        let mut g = Graph::default();
        let a = g.add_value("Identity_3:0", DType::F32);
        let b = g.add_value("Identity", DType::F32);
        let c = g.add_value("Identity_1", DType::F32);
        g.outputs = vec![a, b, c];
        let mut picked = g.clone();
        picked.select_outputs(&["Identity_1".into(), "Identity_3".into()]).unwrap();
        assert_eq!(picked.outputs, vec![c, a]);
        let mut all = g.clone();
        all.select_outputs(&[]).unwrap();
        assert_eq!(all.outputs, vec![a, b, c]);
        let e = g.select_outputs(&["Identity_9".into()]).unwrap_err().to_string();
        assert!(e.contains("Identity_9") && e.contains("Identity_3:0"), "{e}");
    }
}
