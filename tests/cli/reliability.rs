//! Reliability promises (issue 5): faults, bad input, concurrent writers.
