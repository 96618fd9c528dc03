//! The deploy engine. (Being written.)
#![forbid(unsafe_code)]
