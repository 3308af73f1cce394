//! Vision: image loading with limits, letterboxing, pose decoding and drawing.

pub mod draw;
pub mod image_io;
pub mod pose;
