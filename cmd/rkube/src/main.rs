//! rkube (being written).
fn main() {}
