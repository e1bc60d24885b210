//! rkube-storage-sqlite (being written).
