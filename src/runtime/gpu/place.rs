//! Placement of a plan's nodes on a device with a host tail, shared by the device executors
//! (wgpu, OpenCL): which nodes run on the device (`kernels::classify`, limited to the kernels
//! a backend has), which activations fold into the binary kernel before them, and which
//! device buffer each value lives in. Buffers are assigned by lifetime and reused; constants,
//! inputs, outputs and values the host tail reads keep their own for the whole run.

use super::kernels::{classify, Kind, Spec};
use crate::graph::{DType, Graph, ValueId};
use std::collections::HashMap;

/// Where a plan's nodes run and its values live.
#[derive(Debug)]
pub(crate) struct Placement {
    pub kinds: Vec<Kind>,
    /// Activations folded into the binary node at this index.
    pub fused: HashMap<usize, crate::graph::Activation>,
    /// The device buffer of each value that lives on the device.
    pub buf_of: Vec<Option<usize>>,
    /// Byte size of each device buffer.
    pub sizes: Vec<u64>,
    /// Values the host needs: inputs of host nodes and graph outputs.
    pub need_host: Vec<bool>,
}

/// Places `g` (shapes specialised); `avail` says which kernel families the backend has.
pub(crate) fn place(g: &Graph, avail: &dyn Fn(Spec) -> bool) -> Placement {
    place_keeping(g, avail, &HashMap::new())
}

/// `place`, with some values' buffers kept until a later node than their last reader (a
/// fused kernel reads the input of the node it absorbed: `gpu::fuse`).
pub(crate) fn place_keeping(g: &Graph, avail: &dyn Fn(Spec) -> bool, keep: &HashMap<ValueId, usize>) -> Placement {
    let nv = g.values.len();
    // placement
    let mut on_gpu = vec![false; nv]; // value resident on the GPU
    let mut cpu_made = vec![false; nv]; // value produced by a CPU node
    let mut kinds = Vec::with_capacity(g.nodes.len());
    for n in &g.nodes {
        let k = classify(g, n, &cpu_made, avail);
        match k {
            Kind::Cpu => {
                for &o in &n.outputs {
                    cpu_made[o] = true;
                }
            }
            _ => {
                for &o in &n.outputs {
                    on_gpu[o] = true;
                }
                for &i in &n.inputs {
                    on_gpu[i] = true;
                }
            }
        }
        kinds.push(k);
    }
    // fuse `act(binary(a, b))` chains: the binary kernel applies the activation and the
    // activation node becomes a view of its result
    let mut fused: HashMap<usize, crate::graph::Activation> = HashMap::new();
    {
        let uses = g.use_counts();
        let producer: HashMap<ValueId, usize> =
            g.nodes.iter().enumerate().flat_map(|(i, n)| n.outputs.iter().map(move |&o| (o, i))).collect();
        for j in 0..g.nodes.len() {
            let n = &g.nodes[j];
            let (crate::graph::Op::Unary(crate::graph::UnOp::Act(a)), Kind::Gpu(_)) = (&n.op, &kinds[j]) else { continue };
            let x = n.inputs[0];
            let Some(&i) = producer.get(&x) else { continue };
            let arith = matches!(g.nodes[i].op, crate::graph::Op::Binary(b) if !matches!(b, crate::graph::BinOp::Equal | crate::graph::BinOp::Less | crate::graph::BinOp::LessEqual | crate::graph::BinOp::Greater | crate::graph::BinOp::GreaterEqual | crate::graph::BinOp::And | crate::graph::BinOp::Or));
            if arith && matches!(kinds[i], Kind::Gpu(_)) && uses[x] == 1 && g.values[x].dtype.is_float() && !fused.contains_key(&i) {
                fused.insert(i, *a);
                kinds[j] = Kind::View;
            }
        }
    }
    // views alias their input's storage
    let mut storage: Vec<usize> = (0..nv).collect();
    for (n, k) in g.nodes.iter().zip(&kinds) {
        if matches!(k, Kind::View) {
            storage[n.outputs[0]] = storage[n.inputs[0]];
        }
    }
    // lifetimes per storage (node index of first def and last use); consts, inputs and
    // outputs get their own buffers for the whole run
    let pinned = |v: usize| g.consts.contains_key(&v) || g.inputs.iter().any(|i| i.value == v) || g.outputs.contains(&v);
    let mut first = vec![usize::MAX; nv];
    let mut last = vec![0usize; nv];
    // values read back for the CPU tail must survive the whole GPU prefix
    let mut read_back = vec![false; nv];
    for (n, k) in g.nodes.iter().zip(&kinds) {
        if matches!(k, Kind::Cpu) {
            for &i in &n.inputs {
                read_back[i] = true;
            }
        }
    }
    let mut pin = vec![false; nv];
    for v in 0..nv {
        if on_gpu[v] && (pinned(v) || read_back[v]) {
            pin[storage[v]] = true;
        }
    }
    for (i, n) in g.nodes.iter().enumerate() {
        for &v in n.inputs.iter().chain(&n.outputs) {
            if on_gpu[v] {
                let s = storage[v];
                first[s] = first[s].min(i);
                last[s] = last[s].max(i);
            }
        }
    }
    for (&v, &until) in keep {
        if on_gpu[v] {
            last[storage[v]] = last[storage[v]].max(until);
        }
    }
    let size_of = |v: usize| device_bytes(g, v);
    let mut need_size = vec![0u64; nv];
    for v in 0..nv {
        if on_gpu[v] {
            let s = storage[v];
            need_size[s] = need_size[s].max(size_of(v));
        }
    }
    // greedy interval assignment with reuse
    let mut sizes: Vec<u64> = Vec::new();
    let mut buf_of_storage: Vec<Option<usize>> = vec![None; nv];
    let mut free_at: Vec<usize> = Vec::new(); // node index after which the buffer is free
    let mut order: Vec<usize> = (0..nv).filter(|&s| storage[s] == s && first[s] != usize::MAX).collect();
    order.sort_by_key(|&s| first[s]);
    for s in order {
        // whole vec4s, so the tuned kernels' vec4 views cover every element
        let want = need_size[s].max(4).next_multiple_of(16);
        let pick =
            if pin[s] { None } else { (0..sizes.len()).filter(|&b| free_at[b] < first[s] && sizes[b] >= want).min_by_key(|&b| sizes[b]) };
        let b = pick.unwrap_or_else(|| {
            sizes.push(want);
            free_at.push(0);
            sizes.len() - 1
        });
        free_at[b] = if pin[s] { usize::MAX } else { last[s] };
        buf_of_storage[s] = Some(b);
    }
    let buf_of: Vec<Option<usize>> = (0..nv).map(|v| if on_gpu[v] { buf_of_storage[storage[v]] } else { None }).collect();
    let mut need_host = vec![false; nv];
    for (n, k) in g.nodes.iter().zip(&kinds) {
        if matches!(k, Kind::Cpu) {
            for &i in &n.inputs {
                need_host[i] = true;
            }
        }
    }
    for &o in &g.outputs {
        need_host[o] = true;
    }
    Placement { kinds, fused, buf_of, sizes, need_host }
}

/// Bytes of a value on the device: 4 per element (f32, i32, i64 as i32, bool as a word), 2 for
/// f16; at least one element.
pub(crate) fn device_bytes(g: &Graph, v: ValueId) -> u64 {
    let n = g.values[v].shape.as_ref().map(|s| crate::graph::numel(s)).unwrap_or(0).max(1) as u64;
    n * if g.values[v].dtype == DType::F16 { 2 } else { 4 }
}

/// Runs the host nodes (`on_host`) in order on the host values (inputs, constants and what
/// was read back from the device) and returns the graph's outputs. Nothing on the device
/// depends on a host node, so this is one tail after one readback.
pub(crate) fn host_tail(
    g: &Graph,
    on_host: &[bool],
    host: &mut [Option<crate::graph::Tensor>],
    err: fn(String) -> crate::runtime::RuntimeError,
) -> crate::runtime::Result<Vec<crate::graph::Tensor>> {
    for (node, _) in g.nodes.iter().zip(on_host).filter(|(_, h)| **h) {
        let args: Vec<&crate::graph::Tensor> = node
            .inputs
            .iter()
            .map(|&v| host[v].as_ref().ok_or_else(|| err(format!("value '{}' missing on the host (this is a bug)", g.values[v].name))))
            .collect::<crate::runtime::Result<_>>()?;
        let outs = crate::graph::eval::eval(node, &args)?;
        for (&o, t) in node.outputs.iter().zip(outs) {
            host[o] = Some(t);
        }
    }
    g.outputs.iter().map(|&o| host[o].clone().ok_or_else(|| err(format!("output '{}' was not computed", g.values[o].name)))).collect()
}
