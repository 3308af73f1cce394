//! Training walkout's own models: the person re-identification network, on crops the
//! synthetic store renders (identities come free there), with candle-nn; evaluation as
//! the ReID benchmarks score it; export to ONNX so the repository serves it like any model.

pub mod data;
pub mod eval;
pub mod reid;
