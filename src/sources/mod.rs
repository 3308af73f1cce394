//! Camera sources. Every frame carries a camera id, a capture timestamp and a sequence
//! number. Video files and streams come through an `ffmpeg` subprocess, image sequences from
//! disk, push frames over gRPC (no source object: the edge queues them), synthetic frames for
//! benchmarks, and the synthetic store as one source that feeds all of its cameras.
//!
//! Sources know nothing of the server: `serve::camera` runs each one on its own thread and
//! queues what it yields.

mod ffmpeg;
mod images;
mod sim;
mod synthetic;

pub use ffmpeg::{is_stream_url, ChildPid, FfmpegSource};
pub use images::ImageSeqSource;
pub use sim::{sim_cameras, sim_options, sim_store, SimSource};
pub use synthetic::SyntheticSource;

use image::RgbImage;

/// One decoded camera frame.
#[derive(Clone, Debug)]
pub struct CameraFrame {
    pub camera: String,
    /// Per-camera sequence number, from 0.
    pub seq: u64,
    /// Capture time in seconds since the source started.
    pub capture_ts: f64,
    pub image: RgbImage,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The source cannot go on (a stream dropped, a file is unreadable); streams reconnect.
    #[error("source '{source_id}': {msg}")]
    Failed { source_id: String, msg: String },
    /// One frame is bad (an undecodable image); the source goes on with the next one.
    #[error("source '{source_id}': frame {seq}: {msg}")]
    BadFrame { source_id: String, seq: u64, msg: String },
    #[error(transparent)]
    Sim(#[from] crate::sim::SimError),
}

/// A producer of frames for one or more cameras.
pub trait FrameSource: Send {
    /// Camera ids this source feeds.
    fn cameras(&self) -> Vec<String>;
    /// The next frame of every camera, or `None` at the end.
    fn next_frames(&mut self) -> Result<Option<Vec<CameraFrame>>, SourceError>;
    /// Nominal frame rate, if any.
    fn fps(&self) -> Option<f64>;
}
