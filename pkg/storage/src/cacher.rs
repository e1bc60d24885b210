//! The watch cache (being written).
