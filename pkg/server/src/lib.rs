//! rkube-server (being written).
