//! Serving errors; the API edges map each to a gRPC status code in one place.

/// Serving errors; the API edges map each to a gRPC status code.
#[derive(Clone, Debug, thiserror::Error)]
pub enum ServeError {
    #[error("model '{0}' is not loaded")]
    ModelNotFound(String),
    #[error("model '{name}' version {version} is not loaded (serving version {serving})")]
    VersionNotFound { name: String, version: String, serving: u64 },
    #[error("camera '{0}' not found")]
    CameraNotFound(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("model '{model}': request queue is full ({size}); retry later")]
    QueueFull { model: String, size: usize },
    #[error("{0}")]
    ResourceExhausted(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("loading failed: {0}")]
    Load(String),
    #[error("internal error: {0}")]
    Internal(String),
}
