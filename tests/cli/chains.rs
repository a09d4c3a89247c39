//! Chains (`imfilter run --step …`): one read, one write, the same result as the steps run one
//! by one, and a clear error for a chain that cannot run.
