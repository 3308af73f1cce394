//! Serving: camera sources, and (to come) the dynamic batcher and scheduling.

pub mod source;
