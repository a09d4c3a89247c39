//! The operations added as steps (issue 12), each against its numpy reference (golden files
//! made by `fixtures/ops/make_ops_fixtures.py`).
