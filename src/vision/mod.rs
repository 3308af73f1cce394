//! Vision on the host: image decoding with size limits, the one CPU letterbox, drawing.

pub mod draw;
pub mod image_io;
pub mod letterbox;
