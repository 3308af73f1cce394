//! Convolution kernels (`shaders/conv.wgsl`): tiled implicit GEMM, depthwise and transposed
//! convolution with fused bias, activation and residual.

use super::*;

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable, Default)]
pub(crate) struct ConvP {
    pub(crate) n: u32,
    pub(crate) cin: u32,
    pub(crate) h: u32,
    pub(crate) w: u32,
    pub(crate) cout: u32,
    pub(crate) oh: u32,
    pub(crate) ow: u32,
    pub(crate) kh: u32,
    pub(crate) kw: u32,
    pub(crate) sy: u32,
    pub(crate) sx: u32,
    pub(crate) dy: u32,
    pub(crate) dx: u32,
    pub(crate) py: u32,
    pub(crate) px: u32,
    pub(crate) groups: u32,
    pub(crate) isn: u32,
    pub(crate) isc: u32,
    pub(crate) isy: u32,
    pub(crate) isx: u32,
    pub(crate) osn: u32,
    pub(crate) osc: u32,
    pub(crate) osy: u32,
    pub(crate) osx: u32,
    pub(crate) act: u32,
    pub(crate) res_mode: u32,
    pub(crate) has_bias: u32,
    pub(crate) cpg: u32,
    pub(crate) p0: f32,
    pub(crate) p1: f32,
    pub(crate) opg: u32,
    pub(crate) pad: u32,
}

pub(super) fn conv(g: &Graph, n: &Node, a: &ConvAttrs) -> Result<Launch> {
    let sh = |v: usize| g.values[v].shape.clone().unwrap_or_default();
    let (x, w) = (n.inputs[0], n.inputs[1]);
    let in_shape = sh(x);
    let out_shape = sh(n.outputs[0]);
    let ws = sh(w);
    let [nb, cin, h, wd] = nchw_dims(&in_shape, a.layout).map_err(gpu_err)?;
    let [_, cout, oh, ow] = nchw_dims(&out_shape, a.layout).map_err(gpu_err)?;
    let (_, py) = conv_out_dim(h, ws[0], a.strides[0], a.dilations[0], &a.padding, 0).map_err(gpu_err)?;
    let (_, px) = conv_out_dim(wd, ws[1], a.strides[1], a.dilations[1], &a.padding, 1).map_err(gpu_err)?;
    let _ = Padding::Valid;
    let is = nchw_strides(&in_shape, a.layout);
    let os = nchw_strides(&out_shape, a.layout);
    let (act, p0, p1) = act_code(a.act);
    let mut k = 2;
    let bias = if a.has_bias {
        k += 1;
        Some(n.inputs[2])
    } else {
        None
    };
    let res = a.residual.map(|_| n.inputs[k]);
    let mut p = ConvP {
        n: nb as u32,
        cin: cin as u32,
        h: h as u32,
        w: wd as u32,
        cout: cout as u32,
        oh: oh as u32,
        ow: ow as u32,
        kh: ws[0] as u32,
        kw: ws[1] as u32,
        sy: a.strides[0] as u32,
        sx: a.strides[1] as u32,
        dy: a.dilations[0] as u32,
        dx: a.dilations[1] as u32,
        py: py as u32,
        px: px as u32,
        groups: a.groups as u32,
        act,
        res_mode: match a.residual {
            None => 0,
            Some(ResidualAt::BeforeAct) => 1,
            Some(ResidualAt::AfterAct) => 2,
        },
        has_bias: bias.is_some() as u32,
        cpg: ws[2] as u32,
        p0,
        p1,
        opg: (cout / a.groups.max(1)) as u32,
        pad: 0,
        ..Default::default()
    };
    p.set_strides(is, os);
    let depthwise = ws[2] == 1 && a.groups == cout && cout == cin;
    let which = if depthwise { Which::Depthwise } else { Which::ConvGemm };
    let args = vec![
        (1, Arg::Value(x)),
        (2, Arg::Value(w)),
        (3, Arg::value_or_dummy(bias)),
        (4, Arg::value_or_dummy(res)),
        (5, Arg::Value(n.outputs[0])),
    ];
    let groups = if depthwise {
        groups_1d(numel(&out_shape))
    } else {
        let m = nb * oh * ow;
        let opg = cout / a.groups.max(1);
        [opg.div_ceil(64) as u32, m.div_ceil(64) as u32, a.groups as u32]
    };
    Ok(Launch::one(which, &p, args, groups))
}
