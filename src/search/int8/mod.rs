//! Exact top-k from an int8 copy of the matrix (issue 12). This first part
//! holds the integer kernels over the panel layout ([`kernel`]); the
//! quantized matrix and the bound-and-rescore scan build on them.

pub mod kernel;
