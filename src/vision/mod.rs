//! Vision on the host: image decoding with size limits, the one CPU letterbox, person crops for
//! re-identification, drawing.

pub mod crop;
pub mod draw;
pub mod image_io;
pub mod letterbox;
