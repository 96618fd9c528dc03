//! Target set lifecycle. (Being written.)
