//! Pooling and resize kernels (`shaders/spatial.wgsl`).

use super::*;

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable, Default)]
pub(crate) struct SpP {
    pub(crate) n: u32,
    pub(crate) c: u32,
    pub(crate) h: u32,
    pub(crate) w: u32,
    pub(crate) oh: u32,
    pub(crate) ow: u32,
    pub(crate) kh: u32,
    pub(crate) kw: u32,
    pub(crate) sy: u32,
    pub(crate) sx: u32,
    pub(crate) py: u32,
    pub(crate) px: u32,
    pub(crate) kind: u32,
    pub(crate) include_pad: u32,
    pub(crate) dy: u32,
    pub(crate) dx: u32,
    pub(crate) isn: u32,
    pub(crate) isc: u32,
    pub(crate) isy: u32,
    pub(crate) isx: u32,
    pub(crate) osn: u32,
    pub(crate) osc: u32,
    pub(crate) osy: u32,
    pub(crate) osx: u32,
}
