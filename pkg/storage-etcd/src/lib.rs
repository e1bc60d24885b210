//! rkube-storage-etcd (being written).
