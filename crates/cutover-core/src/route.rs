//! Route table: which service serves a host and path. (Being written.)
