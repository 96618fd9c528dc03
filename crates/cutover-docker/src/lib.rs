//! Docker Engine adapter. (Being written.)
#![forbid(unsafe_code)]
