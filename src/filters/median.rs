//! Median filter (being written).
