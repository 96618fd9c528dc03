//! Test support: in-process origins and clients. (Being written.)
#![forbid(unsafe_code)]
