//! Helpers for the end-to-end tests: temporary dirs, free ports, process guards.
