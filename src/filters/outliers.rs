//! Outlier removal (being written).
