//! walkout: a vision inference server for checkout-free stores.
//!
//! See `ARCHITECTURE.md` for the module map and the path a frame takes.

pub mod api;
pub mod app;
pub mod cli;
pub mod events;
pub mod geometry;
pub mod graph;
pub mod models;
pub mod npy;
pub mod perception;
pub mod pipeline;
pub mod runtime;
pub mod serve;
pub mod sim;
pub mod sources;
pub mod train;
pub mod vision;
